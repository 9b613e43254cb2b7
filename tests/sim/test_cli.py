"""`python -m spread.sim`: the summary line, the list of violating seeds, exact replays, and
Hypothesis shrinking a failing fault schedule down to the fault that matters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, find, settings

from spread.sim.__main__ import main
from spread.sim.faults import Crash, Partition, Schedule
from spread.sim.runner import SimParams, run_seed
from tests.sim.support import ENGINE_MISSING, RealEngine, schedules
from tests.sim.toys import Flaws, Oracle

SHORT = ["--duration", "8", "--settle", "6", "--daemons", "3"]


def test_correct_engine_ends_with_zero_violations(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--engine", "tests.sim.toys:Oracle", "--seeds", "4", *SHORT])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    assert out == ["seeds=4 violations=0"]


def test_each_violating_seed_is_listed_with_its_replay(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--engine", "tests.sim.toys:ReorderingOracle", "--seeds", "3", *SHORT])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 1
    assert out[-1] == "seeds=3 violations=3"
    for seed in range(3):
        assert f"seed={seed} FAILED with" in "\n".join(out)
        assert any(line.strip().endswith(f"--seed {seed} --trace") for line in out)


def test_trace_replays_the_same_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--engine", "tests.sim.toys:Oracle", "--seed", "7", "--trace", *SHORT]
    main(argv)
    first = capsys.readouterr().out
    main(argv)
    assert capsys.readouterr().out == first
    assert " REGULAR " in first and " DELIVER " in first and " SUBMIT " in first
    assert first.strip().endswith("seeds=1 violations=0")


@pytest.mark.skipif(RealEngine is None, reason=ENGINE_MISSING)
def test_module_runs_the_real_engine_by_default() -> None:
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "spread.sim", "--seeds", "2", "--lookup", "3", *SHORT]
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "seeds=2 violations=0", done.stdout


def test_hypothesis_finds_and_shrinks_a_schedule_that_breaks_a_flawed_engine() -> None:
    params = SimParams(daemons=3, duration=8.0, settle=4.0, drain=2.0, rate=6.0)

    def breaks_safe(schedule: Schedule) -> bool:
        oracle = Oracle(flaws=Flaws(safe_early=True))
        res = run_seed(0, params, factory=oracle.factory, attach=oracle.attach, schedule=schedule)
        return any(v.check == "safe-stable" for v in res.violations)

    assert not breaks_safe(())  # without faults the flaw never shows
    found = find(
        schedules(3, 8.0, max_faults=6),
        breaks_safe,
        settings=settings(
            max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None
        ),
    )
    assert breaks_safe(found)  # the shrunk schedule still fails: it replays exactly
    splits = [
        f
        for f in found
        if isinstance(f.what, Crash) or (isinstance(f.what, Partition) and len(f.what.groups) > 1)
    ]
    assert splits, found  # and it keeps the fault that splits the ring
