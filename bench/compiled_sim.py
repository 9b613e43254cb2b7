"""Build a compiled copy of the ring engine and simulator for long soaks, and prove it equal.

    .venv/bin/pip install mypy
    .venv/bin/python bench/compiled_sim.py /tmp/spread-compiled
    PYTHONPATH=/tmp/spread-compiled .venv/bin/python bench/soak.py --daemons 5 --jobs 2 ...

The soak runs the same sources, compiled by mypyc into a scratch folder (never into the
checkout), at about 2.5x the interpreter's speed. One textual change is made to the copy:
`@dataclass(frozen=True` becomes `@dataclass(unsafe_hash=True`, because mypyc builds a
frozen dataclass's `__init__` through `object.__setattr__`. Both spellings generate the
same `__eq__` and the same field-tuple `__hash__`, so sets and dicts iterate in the same
order; immutability itself is enforced by the interpreted build the test suite runs.

The copy is only used once it agrees with the interpreter: both run the same seeds (both
ring variants) and every run's digest (each datagram sent, delivery and configuration,
with its simulated time), violation count and event count must match. Exit status 1 if
anything differs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = [
    "spread/ring/api.py",
    "spread/ring/engine.py",
    "spread/ring/timers.py",
    "spread/ring/membership.py",
    "spread/ring/topology.py",
    "spread/ring/fastpath.py",
    "spread/wire/daemon.py",
    "spread/wire/packing.py",
    "spread/wire/endian.py",
    "spread/wire/client.py",
    "spread/sim/network.py",
    "spread/sim/checkers.py",
    "spread/sim/clients.py",
    "spread/sim/faults.py",
    "spread/sim/runner.py",
]


def digests(start: int, count: int, accelerated: bool) -> dict[str, list[object]]:
    import spread.ring.engine
    from spread.sim.runner import SimParams, run_seed

    params = SimParams(daemons=5, accelerated=accelerated)
    out: dict[str, list[object]] = {"engine": [spread.ring.engine.__file__]}
    for seed in range(start, start + count):
        r = run_seed(seed, params)
        out[str(seed)] = [r.digest, len(r.violations), r.stats.events]
    return out


def run_digests(pythonpath: Path | None, start: int, count: int, accelerated: bool) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    cmd = [sys.executable, str(Path(__file__)), "--digests", str(start), str(count)]
    if accelerated:
        cmd.append("--accelerated")
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def build(dest: Path) -> None:
    if (dest / "spread").exists():
        shutil.rmtree(dest / "spread")
    shutil.rmtree(dest / "build", ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        ROOT / "spread", dest / "spread", ignore=shutil.ignore_patterns("__pycache__", "*.so")
    )
    for mod in MODULES:
        path = dest / mod
        text = path.read_text()
        path.write_text(text.replace("@dataclass(frozen=True", "@dataclass(unsafe_hash=True"))
    subprocess.run([sys.executable, "-m", "mypyc", *MODULES], cwd=dest, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", nargs="?", type=Path, help="scratch folder for the build")
    parser.add_argument("--check-seeds", type=int, default=40, help="seeds per ring variant")
    parser.add_argument("--check-start", type=int, default=100_000)
    parser.add_argument("--no-build", action="store_true", help="only compare an existing build")
    parser.add_argument(
        "--digests", nargs=2, type=int, metavar=("START", "COUNT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--accelerated", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.digests:
        print(json.dumps(digests(*args.digests, args.accelerated)))
        return 0
    if args.dest is None:
        parser.error("the scratch folder is required")
    dest = args.dest.resolve()
    if dest == ROOT or ROOT in dest.parents:
        parser.error("build outside the checkout: the compiled modules would shadow the sources")
    if not args.no_build:
        build(dest)
    mismatches = 0
    for accelerated in (False, True):
        start, n = args.check_start, args.check_seeds
        plain = run_digests(None, start, n, accelerated)
        compiled = run_digests(dest, start, n, accelerated)
        engine = str(compiled.pop("engine")[0])
        plain.pop("engine")
        if not engine.endswith(".so"):
            print(f"the engine was not loaded from the compiled build but from {engine}")
            return 1
        bad = [s for s in plain if plain[s] != compiled.get(s)]
        mismatches += len(bad)
        variant = "accelerated" if accelerated else "original"
        print(
            f"{variant} ring, seeds {start}-{start + n - 1}: "
            f"{n - len(bad)} identical, {len(bad)} differ {bad}"
        )
    if mismatches:
        print("the compiled build differs from the interpreter: do not soak with it")
        return 1
    print(f"identical; soak with PYTHONPATH={dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
