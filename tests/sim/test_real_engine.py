"""The real ring engine under the simulator: EVS holds, timing follows the timeouts, and the
checkers notice when the engine's output is tampered with.

Skipped only when spread.ring.engine cannot be imported; an engine that misbehaves fails.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings

from spread.ring.api import Action, Deliver, RingConfig, RingTimeouts
from spread.sim.faults import Crash, Fault, FaultProfile, Partition, Schedule
from spread.sim.runner import SimParams, run_seed
from tests.sim.support import ENGINE_MISSING, RealEngine, schedules

pytestmark = pytest.mark.skipif(RealEngine is None, reason=ENGINE_MISSING)

SHORT = SimParams(
    daemons=4,
    duration=10.0,
    settle=12.0,
    drain=3.0,
    rate=2.0,
    timeouts=RingTimeouts(lookup=4.0),
)


def test_clean_network_forms_one_ring_and_keeps_evs() -> None:
    quiet = replace(
        SHORT, profile=FaultProfile(partitions=False, crashes=False, link_changes=False)
    )
    for seed in range(3):
        res = run_seed(seed, quiet, factory=RealEngine)
        assert res.violations == [], res.violations[:3]
        assert res.stats.delivered >= res.stats.submitted * 3  # every daemon got traffic


def test_same_seed_gives_the_same_run_on_the_real_engine() -> None:
    a = run_seed(5, SHORT, factory=RealEngine)
    b = run_seed(5, SHORT, factory=RealEngine)
    assert a.digest == b.digest
    assert [str(v) for v in a.violations] == [str(v) for v in b.violations]


def _token_arrivals(seed: int, params: SimParams, daemon: str) -> list[float]:
    res = run_seed(seed, params, factory=RealEngine, schedule=(), trace_packets=True)
    return [
        float(line.split()[0])
        for line in res.trace
        if line.split()[1] == daemon and "recv TOKEN" in line
    ]


def test_crash_to_new_membership_takes_the_originals_2_96_s() -> None:
    # The capture (B3): an idle two-daemon ring, the non-leader killed 0.04 s after the
    # leader last processed the token; the leader's singleton ring came 2.96 s after the kill.
    idle = SimParams(daemons=2, duration=16.0, settle=4.0, drain=4.0, rate=0.0, clock_offsets=0.0)
    arrivals = [t for t in _token_arrivals(1, idle, "d0") if 6.0 < t < 8.0]
    assert arrivals, "the idle ring must pass the token around"
    last = arrivals[-1]
    crash_at = round(last + 0.04, 6)
    res = run_seed(1, idle, factory=RealEngine, schedule=(Fault(crash_at, Crash(1)),), trace=True)
    regular = [
        float(line.split()[0])
        for line in res.trace
        if line.split()[1] == "d0" and " REGULAR " in line and float(line.split()[0]) > crash_at
    ]
    assert regular, "the survivor must install a new membership"
    assert regular[0] - crash_at == pytest.approx(2.96, abs=0.01)
    assert res.violations == []


def test_crash_timing_in_a_five_daemon_ring_with_traffic_follows_the_timeouts() -> None:
    params = SimParams(
        daemons=5, duration=16.0, settle=10.0, rate=4.0, timeouts=RingTimeouts(lookup=6.0)
    )
    seen: list[float] = []
    for seed in range(3):
        sims = []
        res = run_seed(
            seed,
            params,
            factory=RealEngine,
            schedule=(Fault(8.0, Crash(seed % 5)),),
            attach=sims.append,
        )
        assert res.violations == [], res.violations[:3]
        seen += sims[0].checker.timings
    assert len(seen) == 12  # four survivors per run, each measured
    t = RingTimeouts()
    base = t.token + t.seg + t.gather
    assert all(base - t.hurry <= x <= base + t.hurry for x in seen), seen


class DroppingEngine:
    """The real engine whose daemon d1 loses its 10th delivery: checkers must notice."""

    def __init__(self, config: RingConfig, wall_offset: float) -> None:
        self.inner = RealEngine(config, wall_offset)
        self.victim = any(d.name == "d1" and d.vid == config.my_vid for d in config.daemons)
        self.count = 0

    def _filter(self, actions: list[Action]) -> list[Action]:
        out = []
        for a in actions:
            if self.victim and isinstance(a, Deliver):
                self.count += 1
                if self.count == 10:
                    continue
            out.append(a)
        return out

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        attr = getattr(self.inner, name)
        if name in ("start", "on_datagram", "on_timer", "submit"):
            return lambda *a: self._filter(attr(*a))
        return attr


def test_checkers_flag_a_real_engine_that_drops_one_delivery() -> None:
    quiet = replace(
        SHORT, profile=FaultProfile(partitions=False, crashes=False, link_changes=False)
    )
    res = run_seed(0, quiet, factory=DroppingEngine)
    assert {v.check for v in res.violations} & {"same-set", "self-delivery", "no-gaps"}


def test_partition_and_heal_on_the_real_engine() -> None:
    schedule: Schedule = (Fault(4.0, Partition(((0, 1), (2, 3)))),)
    for seed in range(2):
        res = run_seed(seed, SHORT, factory=RealEngine, schedule=schedule)
        assert res.violations == [], res.violations[:3]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules(4, 10.0, max_faults=6))
def test_hypothesis_fault_schedules_keep_evs_on_the_real_engine(schedule: Schedule) -> None:
    res = run_seed(0, SHORT, factory=RealEngine, schedule=schedule)
    assert res.violations == [], [str(v) for v in res.violations[:3]]


def test_a_quickly_restarted_leader_never_reuses_its_former_ring_id() -> None:
    # Soak seed 133571: d0 led ring (d0, T) with ids running ahead of its clock after a burst
    # of formations, crashed, restarted 0.35 s later with a fresh Last_time_used, and led the
    # next ring while the survivors still held (d0, T) as their ring: the original would
    # reuse T for a different membership.
    res = run_seed(133571, SimParams(daemons=5), factory=RealEngine)
    assert res.violations == [], res.violations[:3]
    restarted = run_seed(133571, SimParams(daemons=5), trace=True).trace
    assert any(" d0.1 " in line and "REGULAR" in line for line in restarted)
