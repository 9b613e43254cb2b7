"""Hosts as Linux network namespaces on one bridge, for multi-daemon tests (root only).

Owns building and tearing down the lab: a hub namespace holding a bridge, one namespace per
host joined to it by a veth pair, addresses 192.0.2.x/24, `lo` up in every namespace. All
names start with a per-run tag (`spt<pid>`), and everything is removed by name and by PID,
even when a test fails. It never touches the root namespace's interfaces or routes.

Each process started on a host gets its own /tmp (a bind mount of `<host dir>/tmp`, inside the
mount namespace `ip netns exec` makes), so several daemons can use /tmp/<port> at once; the
test reaches those unix sockets at `<host dir>/tmp/<port>`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SUBNET = "192.0.2"
TAG_PREFIX = "spt"


def lab_unavailable() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "network-namespace tests need root (ip netns add)"
    if shutil.which("ip") is None:
        return "iproute2 `ip` is not installed"
    probe = f"{TAG_PREFIX}{os.getpid()}probe"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"`ip netns add` does not work here: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


def reap_stale_labs() -> None:
    """Delete namespaces of earlier runs whose process is gone (`spt<pid>...`, pid dead)."""
    r = _ip("netns", "list", check=False)
    for line in r.stdout.splitlines():
        m = re.match(rf"{TAG_PREFIX}(\d+)", line)
        if m is None or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            _ip("netns", "del", line.split()[0], check=False)
        except PermissionError:
            pass


@dataclass
class Proc:
    """A process the lab started on a host; stopped by its PID only."""

    host: Host
    popen: subprocess.Popen[bytes]
    log: Path
    name: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def kill9(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)

    def stop(self, grace: float = 3.0) -> int | None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.popen.returncode


# $0 = the host's tmp dir, $1 = the host dir, $2 = paths under /tmp to keep; then argv.
# The real /tmp is first bound at <host dir>/.outer (reached through the cwd once /tmp is
# covered), so kept paths can be bound back at their own names inside the private /tmp.
_PRIVATE_TMP = """
cd "$1" || exit 1
keep="$2"
mkdir -p .outer && mount --bind /tmp .outer && mount --bind "$0" /tmp || exit 1
for p in $keep; do
    rel="${p#/tmp/}"
    mkdir -p "/tmp/$rel" && mount --bind ".outer/$rel" "/tmp/$rel" || exit 1
done
shift 2
exec "$@"
"""


def _kept_under_tmp() -> list[str]:
    """The project root and the interpreter's environment, where they live under /tmp."""
    root = Path(__file__).resolve().parents[2]
    paths = {str(root), str(Path(sys.prefix).resolve())}
    return sorted(p for p in paths if p.startswith("/tmp/") and " " not in p)


@dataclass
class Host:
    lab: NetLab
    name: str  # short: h1, h2, ...
    netns: str  # <tag><name>
    ip: str
    dir: Path  # files of this host; <dir>/tmp is its /tmp
    hub_if: str  # the veth end in the hub namespace (partition = set it down)

    @property
    def tmp(self) -> Path:
        return self.dir / "tmp"

    def run(
        self, *argv: str, check: bool = True, timeout: float = 20
    ) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(["ip", "netns", "exec", self.netns, *argv], capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(argv)}: {r.stdout}{r.stderr}")
        return r

    def spawn(self, argv: list[str], name: str, env: dict[str, str] | None = None) -> Proc:
        """Start argv in this namespace with cwd = host dir and a private /tmp.

        Paths under /tmp are hidden from it (give files relative to the host dir), except the
        project and its virtual environment, which are bound back in when a checkout lives
        under /tmp (CI may clone anywhere)."""
        log = self.dir / f"{name}.log"
        cmd = ["ip", "netns", "exec", self.netns, "sh", "-c", _PRIVATE_TMP, str(self.tmp),
               str(self.dir), " ".join(_kept_under_tmp()), *argv]
        with open(log, "wb") as out:
            popen = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        p = Proc(self, popen, log, name)
        self.lab.procs.append(p)
        return p

    def add_address(self, cidr: str) -> None:
        """Another address on eth0 (IPv6 without duplicate detection, so usable at once)."""
        extra = ["nodad"] if ":" in cidr else []
        _ip("-n", self.netns, "addr", "add", cidr, "dev", "eth0", *extra)

    def partition(self) -> None:
        """Cut this host off the bridge (its veth's hub end down)."""
        _ip("-n", self.lab.hub, "link", "set", self.hub_if, "down")

    def heal(self) -> None:
        _ip("-n", self.lab.hub, "link", "set", self.hub_if, "up")


@dataclass
class NetLab:
    base: Path  # a scratch directory for host files
    tag: str = field(default_factory=lambda: f"{TAG_PREFIX}{os.getpid()}")
    hosts: list[Host] = field(default_factory=list)
    procs: list[Proc] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    hub: str = ""
    bridge: str = ""

    def __post_init__(self) -> None:
        self.hub = f"{self.tag}hub"
        self.bridge = f"{self.tag}br"

    def _add_ns(self, name: str) -> None:
        _ip("netns", "add", name)
        self.namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def start(self) -> NetLab:
        reap_stale_labs()
        self._add_ns(self.hub)
        _ip("-n", self.hub, "link", "add", self.bridge, "type", "bridge")
        _ip("-n", self.hub, "link", "set", self.bridge, "up")
        return self

    def add_host(self, name: str, octet: int) -> Host:
        ns = f"{self.tag}{name}"
        self._add_ns(ns)
        hub_if = f"{self.tag}{name}"[:15]
        _ip("-n", self.hub, "link", "add", hub_if, "type", "veth", "peer", "name", "eth0",
            "netns", ns)
        _ip("-n", self.hub, "link", "set", hub_if, "master", self.bridge)
        _ip("-n", self.hub, "link", "set", hub_if, "up")
        ip = f"{SUBNET}.{octet}"
        _ip("-n", ns, "addr", "add", f"{ip}/24", "brd", f"{SUBNET}.255", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        d = self.base / name
        (d / "tmp").mkdir(parents=True, exist_ok=True)
        h = Host(self, name, ns, ip, d, hub_if)
        self.hosts.append(h)
        return h

    def close(self) -> None:
        """Stop every process this lab started (by PID), then delete its namespaces by name."""
        for p in self.procs:
            with contextlib.suppress(Exception):
                p.stop(grace=2.0)
        for p in self.procs:  # pytest shows this only when the test failed
            print(f"---- {p.host.name}/{p.name} (pid {p.pid}, exit {p.popen.returncode})")
            print(p.output()[-6000:])
        for ns in reversed(self.namespaces):
            _ip("netns", "del", ns, check=False)
        self.namespaces.clear()

    def __enter__(self) -> NetLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_until(pred, timeout: float, step: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())
