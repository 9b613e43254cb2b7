"""`python -m spread.sim`: run many seeds and list the violating ones, or replay one seed.

    python -m spread.sim --daemons 5 --seeds 1000        ends with `seeds=1000 violations=0`
    python -m spread.sim --daemons 5 --seed 17 --trace   one run as a readable timeline

`violations` counts the seeds that broke at least one invariant; each such seed is listed
with its first violations and the command that replays it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

from spread.ring.api import RingTimeouts
from spread.sim.faults import FaultProfile
from spread.sim.runner import DEFAULT_ENGINE, SimParams, run_seed, run_seeds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m spread.sim",
        description="Deterministic network simulator for the Spread ring engine, "
        "with Extended Virtual Synchrony invariant checks after every step.",
    )
    p.add_argument("--daemons", type=int, default=5, help="daemons in the ring (3..16 usual)")
    p.add_argument("--segments", type=int, default=1, help="spread the daemons over K segments")
    p.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    p.add_argument("--start", type=int, default=0, help="first seed of the range")
    p.add_argument("--seed", type=int, help="run only this seed (replay)")
    p.add_argument("--trace", action="store_true", help="with --seed: print the timeline")
    p.add_argument("--trace-packets", action="store_true", help="timeline with every datagram")
    p.add_argument("--duration", type=float, default=20.0, help="fault phase, seconds")
    p.add_argument("--settle", type=float, help="after the final heal (default Lookup + 20 s)")
    p.add_argument("--rate", type=float, default=3.0, help="client messages/s per daemon")
    p.add_argument("--loss", type=float, default=0.05, help="max loss probability")
    p.add_argument("--dup", type=float, default=0.05, help="max duplication probability")
    p.add_argument("--reorder", type=float, default=0.05, help="max reorder probability")
    p.add_argument("--jitter", type=float, default=0.002, help="max delay jitter, seconds")
    p.add_argument("--clock-offset", type=float, default=5.0, help="max wall-clock offset, s")
    p.add_argument("--no-partitions", action="store_true")
    p.add_argument("--no-crashes", action="store_true")
    p.add_argument("--no-timing", action="store_true", help="skip the crash timing check")
    p.add_argument(
        "--accelerated", action="store_true",
        help="run the accelerated ring (AcceleratedRing = yes); default: the original ring",
    )
    p.add_argument(
        "--no-groups", action="store_true", help="open delivery at once, no GROUPS exchange"
    )
    p.add_argument("--lookup", type=float, help="Lookup timeout (default 30 s)")
    p.add_argument("--engine", default=DEFAULT_ENGINE, help="module:attr of the engine")
    p.add_argument(
        "--jobs",
        type=int,
        default=min(8, os.cpu_count() or 1),
        help="worker processes (default: CPUs, at most 8); results do not depend on it",
    )
    p.add_argument("--show", type=int, default=3, help="violations shown per failing seed")
    p.add_argument("--progress", action="store_true", help="progress on stderr")
    return p


def params_from(args: argparse.Namespace) -> SimParams:
    timeouts = RingTimeouts()
    if args.lookup is not None:
        timeouts = replace(timeouts, lookup=args.lookup)
    profile = FaultProfile(
        max_loss=args.loss,
        max_dup=args.dup,
        max_reorder=args.reorder,
        max_jitter=args.jitter,
        partitions=not args.no_partitions,
        crashes=not args.no_crashes,
        max_clock_offset=args.clock_offset,
    )
    return SimParams(
        daemons=args.daemons,
        segments=args.segments,
        duration=args.duration,
        settle=args.settle,
        rate=args.rate,
        profile=profile,
        timeouts=timeouts,
        clock_offsets=args.clock_offset,
        engine=args.engine,
        timing=not args.no_timing,
        groups=not args.no_groups,
        accelerated=args.accelerated,
    )


def replay_command(args: argparse.Namespace, seed: int) -> str:
    argv = [a for a in sys.argv[1:] if a not in ("--progress",)]
    out: list[str] = []
    skip = False
    for a in argv:  # drop the range options, keep everything that shapes a run
        if skip:
            skip = False
            continue
        if a in ("--seeds", "--start", "--seed", "--jobs"):
            skip = True
            continue
        if a.split("=")[0] in ("--seeds", "--start", "--seed", "--jobs"):
            continue
        out.append(a)
    return " ".join(["python -m spread.sim", *out, f"--seed {seed} --trace"])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    params = params_from(args)
    if args.seed is not None:
        res = run_seed(
            args.seed,
            params,
            trace=args.trace or args.trace_packets,
            trace_packets=args.trace_packets,
        )
        if args.trace or args.trace_packets:
            print(f"# seed {res.seed}: {params.daemons} daemons, schedule:")
            for f in res.schedule:
                print(f"#   {f}")
            for line in res.trace:
                print(line)
        for v in res.violations:
            print(v)
        s = res.stats
        print(
            f"seed={res.seed} events={s.events} datagrams={s.datagrams} lost={s.lost} "
            f"submitted={s.submitted} delivered={s.delivered} digest={res.digest[:16]}"
        )
        print(f"seeds=1 violations={1 if res.violations else 0}")
        return 1 if res.violations else 0

    seeds = range(args.start, args.start + args.seeds)
    bad = 0
    started = time.monotonic()
    for done, (seed, violations, _events) in enumerate(run_seeds(seeds, params, args.jobs), 1):
        if violations:
            bad += 1
            print(f"seed={seed} FAILED with {len(violations)} violations:")
            for v in violations[: args.show]:
                print(f"  {v}")
            print(f"  replay: {replay_command(args, seed)}", flush=True)
        if args.progress and done % 50 == 0:
            rate = done / (time.monotonic() - started)
            print(f"... {done}/{len(seeds)} seeds, {bad} failing, {rate:.1f}/s", file=sys.stderr)
    print(f"seeds={len(seeds)} violations={bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
