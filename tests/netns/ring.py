"""Spread-specific helpers for the namespace lab: configs, daemons, clients with timeouts."""

from __future__ import annotations

import select
import time
from dataclasses import dataclass
from pathlib import Path

from spread.client import AGREED_MESS, Mailbox, MembershipMessage, RegularMessage, connect
from spread.client.messages import SpreadMessage
from tests.netns.netlab import SUBNET, Host, Proc

ROOT = Path(__file__).resolve().parents[2]
VENV_SPREAD = ROOT / ".venv" / "bin" / "spread"
PORT = 24903
GROUP = "g"
FORM = 20.0  # seconds allowed for a ring to form or re-form

# Daemons run as root here: chroot to the host's private /tmp/run, stay root (no `spread`
# account needed; the original C daemon reads the same lines, they are hashed).
AS_ROOT = "RuntimeDir = /tmp/run\nDaemonUser = root\nDaemonGroup = root\n"

# All nine or none (the original refuses a partial set). LAN values, except a short lookup
# (how long a lone daemon waits before it counts others gone) so tests stay quick.
FAST_TIMEOUTS = (("Token", 1250), ("Hurry", 500), ("Alive", 250), ("Join", 250), ("Rep", 625),
                 ("Seg", 500), ("Gather", 1250), ("Form", 1250), ("Lookup", 3000))


def conf_text(
    names: list[str],
    port: int = PORT,
    extra: str = "",
    segment: str = f"{SUBNET}.255",
    interfaces: str | None = None,
) -> str:
    """One segment of daemons d1.. at 192.0.2.1..; `interfaces` is an interface block body
    template (`{ip}` = the daemon's address) given to every daemon, e.g. "D {ip}\\nC {ip}"."""
    lines = [f"{k}Timeout = {v}" for k, v in FAST_TIMEOUTS]
    body = ""
    for i, n in enumerate(names):
        ip = f"{SUBNET}.{i + 1}"
        block = ""
        if interfaces is not None:
            block = " {\n" + "".join(f"\t\t{x}\n" for x in interfaces.format(ip=ip).split("\n"))
            block += "\t}"
        body += f"\t{n}\t{ip}{block}\n"
    return (extra + AS_ROOT + "\n".join(lines)
            + f"\nSpread_Segment {segment}:{port} {{\n{body}}}\n")


def daemon_argv(name: str, conf: Path) -> list[str]:
    """The real command line: `spread -n NAME -c FILE` runs the ring engine on UDP."""
    return [str(VENV_SPREAD), "-n", name, "-c", str(conf)]


def start_daemon(
    host: Host, name: str, conf_body: str, port: int = PORT, program: str | None = None
) -> Proc:
    """Start our daemon (or `program`, a path relative to the host dir) and wait for its
    unix socket."""
    conf = host.dir / "spread.conf"
    conf.write_text(conf_body)
    (host.tmp / "run").mkdir(exist_ok=True)
    argv = daemon_argv(name, Path(conf.name))
    if program is not None:
        argv[0] = program
    p = host.spawn(argv, f"daemon-{name}")
    sock = host.tmp / str(port)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if not p.alive():
            raise RuntimeError(f"{name} exited {p.popen.returncode}:\n{p.output()}")
        if sock.exists():
            return p
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not open {sock}:\n{p.output()}")


@dataclass
class Client:
    mbox: Mailbox
    host: Host
    name: str

    def receive(self, timeout: float) -> SpreadMessage:
        if not self.mbox.has_message():
            r, _, _ = select.select([self.mbox.fileno()], [], [], timeout)
            if not r:
                raise TimeoutError(f"{self.name}: nothing within {timeout} s")
        return self.mbox.receive()

    def until(self, pred, timeout: float) -> tuple[SpreadMessage, list[SpreadMessage]]:  # type: ignore[no-untyped-def]
        """Receive until pred(msg); returns (that message, everything received before it)."""
        seen: list[SpreadMessage] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: condition not met; got {seen!r}")
            m = self.receive(left)
            if pred(m):
                return m, seen
            seen.append(m)


def client(host: Host, name: str, port: int = PORT) -> Client:
    return Client(connect(str(port), name, socket_dir=str(host.tmp), timeout=5), host, name)


def is_memb(group: str, n: int | None = None):  # type: ignore[no-untyped-def]
    def pred(m: SpreadMessage) -> bool:
        return (isinstance(m, MembershipMessage) and m.group == group
                and (n is None or len(m.members) == n))
    return pred


def traffic(clients: list[Client], per_client: int) -> list[list[tuple[str, bytes]]]:
    """Every client multicasts AGREED in turn; returns what each one received, in order."""
    for i in range(per_client):
        for c in clients:
            c.mbox.multicast(AGREED_MESS, GROUP, 1, f"{c.name}-{i}".encode())
    total = per_client * len(clients)
    got: list[list[tuple[str, bytes]]] = []
    for c in clients:
        seq: list[tuple[str, bytes]] = []
        while len(seq) < total:
            m = c.receive(10.0)
            if isinstance(m, RegularMessage):
                seq.append((m.sender, m.data))
        got.append(seq)
    return got
