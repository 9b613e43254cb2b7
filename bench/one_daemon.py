"""One Python daemon's throughput: a sender with 200 messages in flight, a receiver, 1 KB AGREED.

Usage: .venv/bin/python bench/one_daemon.py [--messages N] [--size BYTES] [--window W]
                                           [--compare-with PATH_TO_ANOTHER_SPREAD]

Starts the `spread` command on a free port with a one-daemon spread.conf, measures its idle RSS,
then runs a raw-socket sender (a member of the group, so its own copies tell it how many are in
flight) and a raw-socket receiver in separate processes. Prints msgs/s and Mbit/s against the C
daemon's 55,000-72,000 msgs/s on this kind of host (target >= 1.0x, below 0.5x fails).
With --compare-with, the same clients then drive that daemon binary (e.g. an original C spread
built by hand outside the project) with the same kind of spread.conf, and the ratio of the two
runs is printed: the issue's "same run, same client" comparison. Not a test.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spread.wire import client as wire  # noqa: E402

C_LOW, C_HIGH = 55_000, 72_000
GROUP = "bench"


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if 20000 < port < 65000 and not os.path.exists(f"/tmp/{port}"):
            return port


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def connect(port: int, name: str) -> tuple[socket.socket, str]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(f"/tmp/{port}")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.sendall(wire.Hello.for_library(name, False).encode())
    n = s.recv(1)[0]
    s.recv(n)
    s.sendall(wire.encode_auth_choice(["NULL"]))
    head = s.recv(5)
    group = s.recv(head[4]).decode()
    s.sendall(wire.encode_join(group, GROUP))
    return s, group


def receiver(
    port: int, total: int, frame: int, ready: mp.Event, out: mp.Queue, progress: Any
) -> None:
    s, _ = connect(port, "receiver")
    ready.set()
    buf = bytearray(1 << 22)
    view = memoryview(buf)
    got = 0
    first = 0.0
    need = total * frame
    while got < need:
        n = s.recv_into(view)
        if not n:
            break
        if not got:
            first = time.perf_counter()
        got += n
        progress.value = got // frame
    out.put((first, time.perf_counter(), got // frame))
    s.close()


def sender(port: int, total: int, size: int, window: int, progress: Any) -> None:
    """Keeps `window` messages in flight: sent but not yet seen by both members."""
    s, group = connect(port, "sender")
    msg = wire.encode_multicast(group, wire.AGREED_MESS, [GROUP], 1, bytes(size))
    frame = len(msg)
    sent = back = 0
    buf = bytearray(1 << 22)
    view = memoryview(buf)
    pending = 0
    while back < total:
        room = min(window - (sent - min(back, progress.value)), total - sent)
        if room > 0:
            s.sendall(msg * room)
            sent += room
        elif back >= sent:  # only the receiver is behind: give it a moment
            time.sleep(0.0002)
            continue
        n = s.recv_into(view)
        if not n:
            raise SystemExit("daemon closed the sender")
        pending += n
        back += pending // frame
        pending %= frame
    s.close()


def write_conf(directory: Path, port: int) -> Path:
    conf = directory / "spread.conf"
    text = f"Spread_Segment 127.0.0.1:{port} {{\n\tbench\t127.0.0.1\n}}\n"
    if os.geteuid() == 0:  # a C daemon run as root chroots and drops to `spread` otherwise
        (directory / "run").mkdir(exist_ok=True)
        text += f"RuntimeDir = {directory / 'run'}\nDaemonUser = root\nDaemonGroup = root\n"
    conf.write_text(text)
    return conf


def run_daemon(program: list[str], args: argparse.Namespace) -> tuple[float, int, int]:
    """One measured run against `program -n bench -c CONF`: (msgs/s, idle RSS KB, busy RSS KB)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="spread-bench-") as tmp:
        conf = write_conf(Path(tmp), port)
        daemon = subprocess.Popen(
            [*program, "-n", "bench", "-c", str(conf)],
            cwd=tmp,
            stdout=None if os.environ.get("BENCH_DAEMON_LOG") else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            return measure(daemon, port, args)
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(5)
            except subprocess.TimeoutExpired:
                daemon.kill()


def measure(
    daemon: subprocess.Popen, port: int, args: argparse.Namespace
) -> tuple[float, int, int]:
    for _ in range(200):
        if os.path.exists(f"/tmp/{port}"):
            break
        time.sleep(0.05)
    time.sleep(0.3)
    idle = rss_kb(daemon.pid)
    frame = 48 + 32 + args.size
    ready = mp.Event()
    out: mp.Queue = mp.Queue()
    progress = mp.Value("q", 0, lock=False)
    rx = mp.Process(target=receiver, args=(port, args.messages, frame, ready, out, progress))
    rx.start()
    ready.wait(10)
    time.sleep(0.2)  # the receiver's join goes first
    t0 = time.perf_counter()
    sender(port, args.messages, args.size, args.window, progress)
    first, last, count = out.get(timeout=120)
    rx.join(10)
    elapsed = last - min(first, t0) if first else time.perf_counter() - t0
    if count < args.messages:
        raise SystemExit(f"the receiver got {count} of {args.messages} messages")
    return count / elapsed, idle, rss_kb(daemon.pid)


def verdict(ratio: float) -> str:
    return "OK (>= 1.0x)" if ratio >= 1.0 else "below target" if ratio >= 0.5 else "FAIL"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=300_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--window", type=int, default=200)
    ap.add_argument("--compare-with", metavar="PATH", help="another spread binary to run too")
    args = ap.parse_args()
    ours = [sys.executable, "-m", "spread"]
    rate, idle, busy = run_daemon(ours, args)
    mbit = rate * args.size * 8 / 1e6
    ratio = rate / C_LOW
    print(f"one daemon, {args.size}-byte AGREED, window {args.window}, {args.messages} messages")
    print(f"  ours: {rate:,.0f} msgs/s  {mbit:,.1f} Mbit/s payload")
    print(f"  C daemon {C_LOW:,}-{C_HIGH:,} msgs/s: {ratio:.2f}x of the low end: {verdict(ratio)}")
    print(f"  daemon RSS idle {idle / 1024:.1f} MB (limit 40 MB), after run {busy / 1024:.1f} MB")
    ok = ratio >= 0.5 and idle <= 40 * 1024
    if args.compare_with:
        other, other_idle, _ = run_daemon([args.compare_with], args)
        same_run = rate / other
        print(f"  {args.compare_with}: {other:,.0f} msgs/s, idle RSS {other_idle / 1024:.1f} MB")
        print(f"  same run, same client: ours / theirs = {same_run:.2f}x: {verdict(same_run)}")
        ok = ok and same_run >= 0.5
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
