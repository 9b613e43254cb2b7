"""One seeded run, and many: parameters, engine loading, results.

`run_seed` draws the fault schedule from the seed's generator (unless one is given, e.g. by
Hypothesis), then hands the same generator to the simulator, so one integer replays a run.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace

from spread.ring.api import RingTimeouts
from spread.sim.checkers import Violation
from spread.sim.clients import ClientMix
from spread.sim.faults import FaultProfile, Links, Schedule, random_schedule
from spread.sim.network import EngineFactory, SimSetup, Simulator, Stats

DEFAULT_ENGINE = "spread.ring.engine:Engine"


@dataclass(frozen=True, slots=True)
class SimParams:
    """What a user chooses on the command line; the seed picks everything else."""

    daemons: int = 5
    segments: int = 1
    duration: float = 20.0
    settle: float | None = None  # default: Lookup timeout + 20 s
    drain: float = 6.0
    rate: float = 3.0
    profile: FaultProfile = field(default_factory=FaultProfile)
    timeouts: RingTimeouts = field(default_factory=RingTimeouts)
    clock_offsets: float = 5.0
    engine: str = DEFAULT_ENGINE
    timing: bool = True
    groups: bool = True
    accelerated: bool = False

    def settle_time(self) -> float:
        return self.settle if self.settle is not None else self.timeouts.lookup + 20.0


@dataclass(slots=True)
class RunResult:
    seed: int
    violations: list[Violation]
    digest: str
    schedule: Schedule
    stats: Stats
    trace: list[str]
    end_time: float


def cli_args(params: SimParams) -> str:
    """The `python -m spread.sim` options that reproduce `params` (for replay hints)."""
    d, p, t = SimParams(), params.profile, params.timeouts
    out = [f"--daemons {params.daemons}"]
    pairs = [
        ("--segments", params.segments, d.segments),
        ("--duration", params.duration, d.duration),
        ("--settle", params.settle, d.settle),
        ("--rate", params.rate, d.rate),
        ("--loss", p.max_loss, d.profile.max_loss),
        ("--dup", p.max_dup, d.profile.max_dup),
        ("--reorder", p.max_reorder, d.profile.max_reorder),
        ("--jitter", p.max_jitter, d.profile.max_jitter),
        ("--clock-offset", params.clock_offsets, d.clock_offsets),
        ("--lookup", t.lookup, d.timeouts.lookup),
        ("--engine", params.engine, d.engine),
    ]
    out += [f"{flag} {value}" for flag, value, default in pairs if value != default]
    if not p.partitions:
        out.append("--no-partitions")
    if not p.crashes:
        out.append("--no-crashes")
    if not params.timing:
        out.append("--no-timing")
    if params.accelerated:
        out.append("--accelerated")
    if not params.groups:
        out.append("--no-groups")
    return " ".join(out)


def load_engine(spec: str) -> object:
    """`module:attr` → an engine class/factory, called as `factory(config, wall_offset)`.

    An object with a `new_run()` method is a per-run harness instead (test engines that need
    to see the simulator): `new_run()` returns something with `.factory` and `.attach(sim)`.
    """
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr or "Engine")


def _for_run(
    spec: str,
) -> tuple[EngineFactory, Callable[[Simulator], None] | None]:
    obj = load_engine(spec)
    new_run = getattr(obj, "new_run", None)
    if new_run is not None:
        harness = new_run()
        return harness.factory, harness.attach
    return obj, None  # type: ignore[return-value]


def run_seed(
    seed: int,
    params: SimParams,
    factory: EngineFactory | None = None,
    schedule: Schedule | None = None,
    trace: bool = False,
    trace_packets: bool = False,
    traffic: ClientMix | None = None,
    attach: Callable[[Simulator], None] | None = None,
) -> RunResult:
    """One run. `attach` sees the simulator before it starts (test engines use it)."""
    rng = random.Random(seed)
    if factory is None:
        factory, own_attach = _for_run(params.engine)
        attach = attach or own_attach
    if schedule is None:
        schedule = random_schedule(rng, params.daemons, params.duration, params.profile)
    setup = SimSetup(
        n=params.daemons,
        schedule=schedule,
        factory=factory,
        timeouts=params.timeouts,
        segments=params.segments,
        duration=params.duration,
        settle=params.settle_time(),
        drain=params.drain,
        rate=params.rate,
        mix=traffic or ClientMix(),
        clock_offsets=params.clock_offsets,
        links=Links(),
        timing=params.timing,
        groups=params.groups,
        accelerated=params.accelerated,
    )
    sim = Simulator(seed, setup, trace=trace, trace_packets=trace_packets, rng=rng)
    if attach is not None:
        attach(sim)
    sim.run()
    return RunResult(
        seed,
        list(sim.checker.violations),
        sim.digest.hexdigest(),
        schedule,
        sim.stats,
        sim.trace,
        sim.now,
    )


def _run_quiet(args: tuple[int, SimParams]) -> tuple[int, list[Violation], int]:
    seed, params = args
    res = run_seed(seed, params)
    return seed, res.violations, res.stats.events


def run_seeds(
    seeds: Iterable[int], params: SimParams, jobs: int = 1
) -> Iterator[tuple[int, list[Violation], int]]:
    """(seed, violations, events) per seed, in seed order; `jobs` > 1 uses processes."""
    if jobs <= 1:
        for s in seeds:
            yield _run_quiet((s, params))
        return
    with ProcessPoolExecutor(jobs) as pool:
        yield from pool.map(_run_quiet, ((s, params) for s in seeds), chunksize=4)


def with_profile(params: SimParams, **changes: object) -> SimParams:
    return replace(params, profile=replace(params.profile, **changes))  # type: ignore[arg-type]
