"""Shared by the simulator tests: the real engine (if it exists), seed sweeps that report
failing seeds with the command that replays them, and Hypothesis fault schedules."""

from __future__ import annotations

import os
from collections.abc import Iterable

from hypothesis import strategies as st

from spread.sim.faults import Crash, Fault, Heal, Links, Partition, Restart, Schedule
from spread.sim.runner import SimParams, cli_args, run_seeds

try:
    from spread.ring.engine import Engine as RealEngine
except ImportError as exc:  # only a missing engine may skip the real-engine tests
    RealEngine = None
    ENGINE_MISSING = f"spread.ring.engine.Engine is not importable yet: {exc}"
else:
    ENGINE_MISSING = ""

JOBS = max(1, min(4, os.cpu_count() or 1))


def sweep(params: SimParams, seeds: Iterable[int]) -> tuple[int, list[str]]:
    """Run the seeds; (how many ran, one report line per failing seed)."""
    failures: list[str] = []
    ran = 0
    for seed, violations, _ in run_seeds(seeds, params, JOBS):
        ran += 1
        if violations:
            shown = "; ".join(str(v) for v in violations[:2])
            failures.append(
                f"seed {seed}: {len(violations)} violations: {shown}\n"
                f"    replay: python -m spread.sim {cli_args(params)} --seed {seed} --trace"
            )
    return ran, failures


def assert_clean(params: SimParams, seeds: Iterable[int]) -> None:
    ran, failures = sweep(params, seeds)
    assert ran > 0
    assert not failures, f"{len(failures)} of {ran} seeds violate EVS:\n" + "\n".join(failures)


def schedules(n: int, duration: float, max_faults: int = 8) -> st.SearchStrategy[Schedule]:
    """Fault schedules Hypothesis can shrink: fewer faults, earlier, simpler."""
    daemon = st.integers(0, n - 1)
    groups = st.lists(st.integers(0, 3), min_size=n, max_size=n).map(
        lambda labels: Partition(
            tuple(tuple(d for d in range(n) if labels[d] == g) for g in sorted(set(labels)))
        )
    )
    links = st.builds(
        Links,
        loss=st.sampled_from([0.0, 0.01, 0.05, 0.2]),
        dup=st.sampled_from([0.0, 0.02, 0.1]),
        reorder=st.sampled_from([0.0, 0.05, 0.2]),
        jitter=st.sampled_from([0.0005, 0.002]),
    )
    what = st.one_of(
        groups,
        st.just(Heal()),
        st.builds(Crash, daemon),
        st.builds(Restart, daemon, st.sampled_from([0.0, -3.0, 4.5])),
        links,
    )
    at = st.integers(20, int(duration * 10)).map(lambda x: x / 10)
    return st.lists(st.builds(Fault, at, what), max_size=max_faults).map(
        lambda fs: tuple(sorted(fs, key=lambda f: f.at))
    )
