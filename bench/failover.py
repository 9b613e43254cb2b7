"""How long a virtual address is unserved when its wackamole or its whole host goes away.

    sudo .venv/bin/python bench/failover.py --trials 5

Builds the blog's two-host cluster (our spread and our wackamole on each, four /32 VIPs,
LAN timeouts with a 3 s Lookup) in network namespaces of its own, then for each trial
measures, from the moment of the fault to the moment the survivor has every address up:

* `kill -9` of one wackamole: Spread sees the client go at once; the target is well under
  a second (state exchange plus netlink);
* the host cut off the LAN: Spread must first notice the daemon is gone (token loss, then
  gather: 2.96 s with default timeouts in the original), then the state exchange runs.

Prints each figure and the median against those targets. Root only; everything it makes is
removed by name, and it ends only the processes it started.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.netns.netlab import NetLab, lab_unavailable, wait_until
from tests.netns.ring import conf_text, start_daemon
from tests.netns.test_wackamole_netns import VIPS, held, start_wackamole

TARGET_KILL = 1.0
TARGET_CUT = 2.96 + 0.5  # the original's membership time, plus the exchange and some slack


def until_all(host, since: float, limit: float = 30.0) -> float:  # type: ignore[no-untyped-def]
    if not wait_until(lambda: held(host) == set(VIPS), limit, step=0.01):
        raise RuntimeError("the survivor never took every address")
    return time.monotonic() - since


def balanced(h1, h2) -> bool:  # type: ignore[no-untyped-def]
    return len(held(h1)) == 2 and len(held(h2)) == 2


def _quietly(fn) -> None:  # type: ignore[no-untyped-def]
    with contextlib.redirect_stdout(io.StringIO()):
        fn()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    why = lab_unavailable()
    if why:
        print(f"cannot run: {why}")
        return 2
    kills: list[float] = []
    cuts: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        lab = NetLab(Path(tmp)).start()
        stack.callback(_quietly, lab.close)  # its processes' logs are not figures
        h1, h2 = lab.add_host("h1", 1), lab.add_host("h2", 2)
        # LAN timeouts, all nine (the original refuses a partial set), with a short Lookup so
        # the healed host rejoins quickly between trials.
        conf = conf_text(["h1", "h2"])
        start_daemon(h1, "h1", conf)
        start_daemon(h2, "h2", conf)
        w1, _w2 = start_wackamole(h1), start_wackamole(h2)
        for trial in range(args.trials):
            if not wait_until(lambda: balanced(h1, h2), 60):
                raise RuntimeError("the cluster did not settle")
            w1.kill9()
            kills.append(until_all(h2, time.monotonic()))
            w1 = start_wackamole(h1, f"wackamole-{trial}")
            if not wait_until(lambda: balanced(h1, h2), 60):
                raise RuntimeError("the cluster did not settle after a restart")
            h1.partition()
            cuts.append(until_all(h2, time.monotonic()))
            h1.heal()
            print(f"trial {trial + 1}: kill -9 {kills[-1]:.3f} s, host cut {cuts[-1]:.3f} s",
                  flush=True)
    for name, figures, target in (("kill -9", kills, TARGET_KILL), ("host cut", cuts, TARGET_CUT)):
        median = statistics.median(figures)
        verdict = "meets" if median <= target else "MISSES"
        print(f"{name}: median {median:.3f} s (min {min(figures):.3f}, max {max(figures):.3f}) "
              f"over {len(figures)} trials; target <= {target:.2f} s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
