"""The EVS checkers catch each kind of broken engine, and pass a correct one.

The engines here are the oracle sequencer of toys.py and its deliberately flawed variants.
Each flawed variant must be flagged by the check written for what it breaks.
"""

from __future__ import annotations

import pytest

from spread.ring.api import RingId, RingTimeouts
from spread.sim.checkers import EvsChecker
from spread.sim.clients import AGREED_MESS, RELIABLE_MESS, SAFE_MESS, MsgId
from spread.sim.faults import Crash, Fault, Links, Partition
from spread.sim.runner import SimParams, run_seed
from tests.sim.toys import Flaws, Oracle

FAST = SimParams(daemons=4, duration=14.0, settle=8.0, drain=3.0, rate=4.0)


def run_toy(seed: int, flaws: Flaws | None = None, delay: float = 2.9, **kw: object):
    oracle = Oracle(delay=delay, flaws=flaws or Flaws())
    return run_seed(seed, FAST, factory=oracle.factory, attach=oracle.attach, **kw)


def checks_flagged(flaws: Flaws, seeds: range = range(6), **kw: object) -> set[str]:
    found: set[str] = set()
    for seed in seeds:
        found |= {v.check for v in run_toy(seed, flaws, **kw).violations}
    return found


def test_oracle_sequencer_passes_every_invariant() -> None:
    for seed in range(12):
        res = run_toy(seed)
        assert res.violations == [], res.violations[:3]
        assert res.stats.delivered > 100  # the run really carried traffic


@pytest.mark.parametrize(
    ("flaw", "check"),
    [
        ("reorder", "total-order"),
        ("reorder", "fifo-order"),
        ("drop", "same-set"),
        ("duplicate", "no-duplicates"),
        ("disagree", "membership-agreement"),
        ("no_self", "self-delivery"),
    ],
)
def test_flawed_engine_is_flagged_by_its_check(flaw: str, check: str) -> None:
    assert check in checks_flagged(Flaws(**{flaw: True}), range(3))


def test_safe_delivered_before_everyone_has_it_is_flagged() -> None:
    # SAFE traffic, then a partition: the flawed engine hands SAFE only to reachable members.
    schedule = (Fault(6.0, Partition(((0, 1), (2, 3)))),)
    found = set()
    for seed in range(4):
        res = run_toy(seed, Flaws(safe_early=True), schedule=schedule)
        found |= {v.check for v in res.violations}
    assert "safe-stable" in found


def test_components_that_never_merge_are_flagged_after_the_heal() -> None:
    schedule = (Fault(4.0, Partition(((0, 1), (2, 3)))),)
    res = run_toy(1, Flaws(no_merge=True), schedule=schedule)
    assert "one-ring" in {v.check for v in res.violations}
    assert run_toy(1, schedule=schedule).violations == []


@pytest.mark.parametrize("delay", [0.4, 6.0])
def test_membership_faster_or_slower_than_the_timeouts_is_flagged(delay: float) -> None:
    schedule = (Fault(8.0, Crash(2)),)
    res = run_toy(0, delay=delay, schedule=schedule)
    assert "timing" in {v.check for v in res.violations}


def test_membership_at_the_timeouts_passes_the_timing_check() -> None:
    schedule = (Fault(8.0, Crash(2)),)
    oracle = Oracle(delay=2.9)
    seen = []
    res = run_seed(
        0,
        FAST,
        factory=oracle.factory,
        attach=lambda sim: (oracle.attach(sim), seen.append(sim)),
        schedule=schedule,
    )
    assert res.violations == []
    assert len(seen[0].checker.timings) == 3  # every survivor was measured
    assert all(2.9 <= t <= 3.0 for t in seen[0].checker.timings)


def test_lossy_links_void_the_timing_expectation() -> None:
    schedule = (Fault(3.0, Links(loss=0.1)), Fault(8.0, Crash(2)))
    res = run_toy(0, delay=0.4, schedule=schedule)
    assert "timing" not in {v.check for v in res.violations}


def test_violation_names_seed_time_and_daemons() -> None:
    res = run_toy(5, Flaws(duplicate=True))
    v = res.violations[0]
    text = str(v)
    assert text.startswith("seed=5 t=")
    assert v.daemons and all(d in text for d in v.daemons)


# ---- the checker fed by hand ------------------------------------------------------------

VIDS = (101, 102, 103)
R1 = RingId(101, 10)


def fresh() -> EvsChecker:
    ch = EvsChecker(7, VIDS, RingTimeouts())
    for d in range(3):
        ch.on_start(0.0, (d, 0))
        ch.on_regular(1.0, (d, 0), R1, VIDS)
    return ch


def submit(ch: EvsChecker, origin: int, counter: int, msg_type: int = AGREED_MESS) -> MsgId:
    m = MsgId(origin, 0, counter)
    ch.on_submit(1.0, (origin, 0), m, msg_type)
    return m


def test_order_inversion_is_caught_whatever_the_interleaving() -> None:
    # d0: a, b; d1: b, a, with the deliveries interleaved so neither sees both first.
    ch = fresh()
    a, b = submit(ch, 2, 1), submit(ch, 2, 2)
    ch.on_deliver(2.0, (0, 0), a, AGREED_MESS)
    ch.on_deliver(2.1, (1, 0), b, AGREED_MESS)
    ch.on_deliver(2.2, (0, 0), b, AGREED_MESS)
    assert ch.violations == []
    ch.on_deliver(2.3, (1, 0), a, AGREED_MESS)
    assert "total-order" in {v.check for v in ch.violations}


def test_reliable_messages_may_overtake_without_an_order_violation() -> None:
    ch = fresh()
    a, b = submit(ch, 2, 1), submit(ch, 2, 2, RELIABLE_MESS)
    ch.on_deliver(2.0, (0, 0), a, AGREED_MESS)
    ch.on_deliver(2.0, (0, 0), b, RELIABLE_MESS)
    ch.on_deliver(2.1, (1, 0), b, RELIABLE_MESS)
    ch.on_deliver(2.2, (1, 0), a, AGREED_MESS)
    assert ch.violations == []


def test_message_nobody_submitted_is_flagged() -> None:
    ch = fresh()
    ch.on_deliver(2.0, (0, 0), MsgId(1, 0, 99), AGREED_MESS)
    assert [v.check for v in ch.violations] == ["integrity"]


def test_gap_in_one_senders_messages_is_flagged() -> None:
    ch = fresh()
    m1, m2 = submit(ch, 2, 1), submit(ch, 2, 2)
    for m in (m1, m2):
        ch.on_deliver(2.0, (2, 0), m, AGREED_MESS)
    ch.on_deliver(2.0, (0, 0), m2, AGREED_MESS)  # d0 skipped m1
    ch.on_transitional(3.0, (0, 0), RingId(101, 11), (101,))
    ch.on_regular(3.0, (0, 0), RingId(101, 12), (101,))
    assert "no-gaps" in {v.check for v in ch.violations}


def test_safe_seen_by_one_member_must_reach_every_member_that_survives() -> None:
    ch = fresh()
    s = submit(ch, 0, 1, SAFE_MESS)
    ch.on_deliver(2.0, (0, 0), s, SAFE_MESS)
    ch.on_transitional(3.0, (1, 0), RingId(102, 11), (102,))
    ch.on_regular(3.0, (1, 0), RingId(102, 12), (102,))
    assert "safe-stable" in {v.check for v in ch.violations}


def test_safe_delivered_in_the_transitional_configuration_needs_no_stability() -> None:
    ch = fresh()
    s = submit(ch, 0, 1, SAFE_MESS)
    ch.on_transitional(3.0, (0, 0), RingId(101, 11), (101,))
    ch.on_deliver(3.0, (0, 0), s, SAFE_MESS)
    ch.on_regular(3.0, (0, 0), RingId(101, 12), (101,))
    ch.on_transitional(3.0, (1, 0), RingId(102, 11), (102,))
    ch.on_regular(3.0, (1, 0), RingId(102, 12), (102,))
    assert ch.violations == []


def test_transitional_members_must_come_from_the_old_ring_and_go_to_the_new() -> None:
    ch = fresh()
    ch.on_transitional(3.0, (0, 0), RingId(101, 11), (101, 102))
    ch.on_regular(3.0, (0, 0), RingId(101, 12), (101, 103))
    assert "membership" in {v.check for v in ch.violations}


def test_crashed_member_is_excused_from_later_deliveries() -> None:
    ch = fresh()
    s = submit(ch, 0, 1, SAFE_MESS)
    ch.on_crash(2.5, (2, 0))
    for d in (0, 1):
        ch.on_deliver(2.0, (d, 0), s, SAFE_MESS)
        ch.on_transitional(3.0, (d, 0), RingId(101, 11), (101, 102))
        ch.on_regular(3.0, (d, 0), RingId(101, 12), (101, 102))
    ch.finish(9.0)
    assert ch.violations == []


def _move_together(ch: EvsChecker, got: dict[int, list[tuple[MsgId, int]]]) -> None:
    for d, msgs in got.items():
        for m, t in msgs:
            ch.on_deliver(2.0, (d, 0), m, t)
        ch.on_transitional(3.0, (d, 0), RingId(101, 11), (101, 102))
        ch.on_regular(3.0, (d, 0), RingId(101, 12), (101, 102))


def test_early_reliable_from_a_departed_daemon_may_differ_as_in_the_original() -> None:
    ch = fresh()
    a, b = submit(ch, 2, 1, RELIABLE_MESS), submit(ch, 2, 2, RELIABLE_MESS)
    _move_together(ch, {0: [(a, RELIABLE_MESS)], 1: [(b, RELIABLE_MESS)]})
    assert ch.violations == []


@pytest.mark.parametrize(("origin", "msg_type"), [(2, AGREED_MESS), (0, RELIABLE_MESS)])
def test_daemons_moving_together_must_agree_otherwise(origin: int, msg_type: int) -> None:
    # An ordered message from anyone, or a RELIABLE one from a daemon that stays.
    ch = fresh()
    m = submit(ch, origin, 1, msg_type)
    if origin == 2:
        ch.on_deliver(2.0, (2, 0), m, msg_type)
    _move_together(ch, {0: [(m, msg_type)], 1: []})
    assert "same-set" in {v.check for v in ch.violations}
