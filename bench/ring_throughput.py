"""Ordered throughput of a real ring: N hosts, one spflooder each, 1 KB AGREED messages.

    sudo .venv/bin/python bench/ring_throughput.py [--hosts 3] [--messages 20000] [--size 1024]
                                [--compare-with PATH_TO_C_SPREAD] [--flooder PATH_TO_C_SPFLOODER]

Builds N network namespaces on one bridge (tests/netns/netlab.py), starts our `spread` on
each, then one `spflooder -n N` per host: every flooder waits for all N members, multicasts
its messages with the original's multi-sender flow control and receives everyone's. The
figure is messages ordered by the ring per second: N x messages over the time from the start
of the flooders to the last one finishing (connect and membership wait included, so it
slightly understates the rate). Target: the original's 3-host ring, ~30,000 msgs/s on this
kind of host. With --compare-with, the same run is repeated with that daemon binary (the
original, built by hand outside the project) and the ratio is printed. --flooder drives the
rings with another spflooder (the C one, so the client is not what is measured); it prints no
timing, so the run's wall time is used. Root only; everything
it makes is removed by name and it ends only the processes it started. Not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.netns.netlab import NetLab, lab_unavailable, wait_until
from tests.netns.ring import conf_text, start_daemon

ROOT = Path(__file__).resolve().parent.parent
SPFLOODER = ROOT / ".venv" / "bin" / "spflooder"
TARGET = 30_000  # msgs/s, the original's 3-host ring here


def run_ring(hosts: int, messages: int, size: int, program: Path | None,
             flooder: Path | None) -> float:
    """One run; returns ordered messages per second."""
    noise = io.StringIO()  # the lab prints every process's output when it closes
    with contextlib.redirect_stdout(noise):
        return _run(hosts, messages, size, program, flooder)


def _run(hosts: int, messages: int, size: int, program: Path | None,
         flooder: Path | None) -> float:
    with tempfile.TemporaryDirectory(prefix="ringbench") as tmp, NetLab(Path(tmp)) as lab:
        names = [f"d{i + 1}" for i in range(hosts)]
        body = conf_text(names)
        hs = [lab.add_host(f"h{i + 1}", i + 1) for i in range(hosts)]
        for h, name in zip(hs, names):
            prog = None
            if program is not None:
                shutil.copy(program, h.dir / "spread-c")
                prog = "./spread-c"
            start_daemon(h, name, body, program=prog)
        time.sleep(4.0)  # let the ring settle into one membership
        started = time.monotonic()
        if flooder:  # /tmp is private to each host: copy the binary in
            for h in hs:
                shutil.copy(flooder, h.dir / "spflooder-c")
        argv = ["./spflooder-c"] if flooder else [str(SPFLOODER)]
        timing = [] if flooder else ["-t"]
        floods = [h.spawn([*argv, "-u", f"f{i + 1}", "-n", str(hosts), "-m", str(messages),
                           "-b", str(size), "-s", "24903", *timing], f"flood{i + 1}")
                  for i, h in enumerate(hs)]
        if not wait_until(lambda: not any(f.alive() for f in floods), 600, step=0.01):
            raise RuntimeError("the flooders did not finish within 10 minutes")
        elapsed = time.monotonic() - started
        spans = []
        for f in floods:
            if f.popen.returncode != 0:
                raise RuntimeError(f"{f.name} failed:\n{f.output()[-2000:]}")
            if flooder:
                spans.append(elapsed)
                continue
            m = re.search(r"in ([0-9.]+) s:", f.output())
            if m is None:
                raise RuntimeError(f"{f.name} printed no timing:\n{f.output()[-2000:]}")
            spans.append(float(m.group(1)))
        # the slowest flooder's own span: from its first send to its last delivery
        sys.__stdout__.write(f"    flooders took {', '.join(f'{x:.2f}' for x in spans)} s "
                             f"({elapsed:.2f} s with start-up)\n")
        return hosts * messages / max(spans)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--messages", type=int, default=20000, help="per sender")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--compare-with", type=Path, default=None)
    parser.add_argument("--flooder", type=Path, default=None)
    args = parser.parse_args()
    why = lab_unavailable()
    if why:
        print(f"cannot run: {why}")
        return 2
    print(f"{args.hosts} hosts, {args.messages} x {args.size} B AGREED per sender")
    ours = run_ring(args.hosts, args.messages, args.size, None, args.flooder)
    print(f"  ours: {ours:,.0f} msgs/s ordered; target {TARGET:,} (the original's 3-host ring):"
          f" {ours / TARGET:.2f}x")
    if args.compare_with is not None:
        theirs = run_ring(args.hosts, args.messages, args.size, args.compare_with, args.flooder)
        print(f"  {args.compare_with}: {theirs:,.0f} msgs/s ordered; ours is "
              f"{ours / theirs:.2f}x of it")
    return 0 if ours >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
