"""Long soak of the ring engine under the simulator: 100,000 seeds by default, resumable.

    .venv/bin/python bench/soak.py --daemons 5 --jobs 2            # start or resume
    .venv/bin/python bench/soak.py --state /tmp/soak.json --seeds 200000

About 2.5x faster on a compiled copy of the same sources (see bench/compiled_sim.py, which
refuses a copy whose runs differ from the interpreter's):

    .venv/bin/python bench/compiled_sim.py /tmp/spread-compiled
    PYTHONPATH=/tmp/spread-compiled .venv/bin/python bench/soak.py --daemons 5 --jobs 2

Uses the default (LAN) timeouts, Lookup 30 s included, unlike the short CI sweeps. Progress
and every violating seed are printed as they come; the state file (next seed, failures) is
rewritten after every chunk, so an interrupted soak continues where it stopped when started
again with the same options. A soak counts only for the code it ran: the state records a
fingerprint of the engine, codec and simulator sources, and a change to them starts the soak
afresh (the old result is kept under "superseded"). Takes all `python -m spread.sim` options.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

from spread.sim.__main__ import build_parser, params_from
from spread.sim.runner import cli_args, run_seeds

ROOT = Path(__file__).resolve().parent.parent
SOAKED = ("spread/ring", "spread/wire", "spread/sim")


def fingerprint(root: Path = ROOT) -> str:
    """A hash of the sources a soak exercises (the checkout's, whatever build runs them)."""
    h = hashlib.sha256()
    for folder in SOAKED:
        for path in sorted((root / folder).glob("*.py")):
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.prog = "bench/soak.py"
    parser.set_defaults(seeds=100_000)
    parser.add_argument("--state", default="soak-state.json", help="resumable progress file")
    parser.add_argument("--chunk", type=int, default=500, help="seeds between state saves")
    args = parser.parse_args(argv)
    params = params_from(args)
    state_path = Path(args.state)
    key = cli_args(params) + f" --start {args.start} --seeds {args.seeds}"
    code = fingerprint()
    state: dict = {"key": key, "code": code, "next": args.start, "failures": [], "elapsed": 0.0}
    if state_path.exists():
        saved = json.loads(state_path.read_text())
        superseded = saved.pop("superseded", [])
        if saved.get("key") == key and saved.get("code") == code:
            state = {**saved, "superseded": superseded}
            print(f"resuming at seed {state['next']} ({len(state['failures'])} failing so far)")
        else:
            why = "options" if saved.get("key") != key else "engine or simulator sources"
            print(f"{state_path} is for other {why}; starting afresh")
            state["superseded"] = [*superseded, saved]
    end = args.start + args.seeds
    replay = f"python -m spread.sim {cli_args(params)}"
    while state["next"] < end:
        chunk = range(state["next"], min(end, state["next"] + args.chunk))
        started = time.monotonic()
        for seed, violations, _ in run_seeds(chunk, params, args.jobs):
            if violations:
                state["failures"].append(seed)
                print(f"seed={seed} FAILED with {len(violations)} violations:")
                for v in violations[: args.show]:
                    print(f"  {v}")
                print(f"  replay: {replay} --seed {seed} --trace", flush=True)
        state["elapsed"] += time.monotonic() - started
        state["next"] = chunk.stop
        state_path.write_text(json.dumps(state, indent=1))
        done = state["next"] - args.start
        rate = done / state["elapsed"] if state["elapsed"] else 0.0
        print(
            f"progress {done}/{args.seeds} seeds, {len(state['failures'])} failing, "
            f"{rate:.1f} seeds/s, eta {(end - state['next']) / rate / 60 if rate else 0:.0f} min",
            flush=True,
        )
    print(f"seeds={args.seeds} violations={len(state['failures'])}")
    return 1 if state["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
