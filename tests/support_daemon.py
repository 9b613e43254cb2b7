"""Start and stop a real one-daemon `spread` process for tests (reusable by any test package).

`start_daemon(tmp_path)` writes a spread.conf with one daemon on 127.0.0.1 and a free high
port, starts `.venv/bin/spread -n NAME -c FILE`, waits for /tmp/<port> to answer, and returns
a handle.
`stop()` always ends the process by its PID and removes /tmp/<port>.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_SPREAD = ROOT / ".venv" / "bin" / "spread"


def free_port() -> int:
    """A port P with TCP P, UDP P and P+1 free and no /tmp/P file."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port > 65000 or port < 20000 or os.path.exists(f"/tmp/{port}"):
            continue
        try:
            for p in (port, port + 1):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


@dataclass
class RunningDaemon:
    proc: subprocess.Popen[bytes]
    name: str
    port: int
    conf: Path
    log: Path
    _stopped: bool = field(default=False)

    @property
    def unix_path(self) -> str:
        return f"/tmp/{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def connect(self, transport: str = "unix", timeout: float = 5.0) -> socket.socket:
        if transport == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(self.unix_path)
        else:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return s

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 5 s; by PID only. Returns the exit status."""
        if not self._stopped:
            self._stopped = True
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(5)
            with contextlib.suppress(OSError):
                os.unlink(self.unix_path)
        return self.proc.returncode


def write_conf(
    path: Path, name: str, port: int, extra: str = "", peers: tuple[tuple[str, str], ...] = ()
) -> Path:
    """One segment: this daemon on 127.0.0.1, then `peers` (name, address) if any."""
    conf = path / "spread.conf"
    lines = [f"\t{name}\t127.0.0.1\n"] + [f"\t{n}\t{a}\n" for n, a in peers]
    conf.write_text(f"{extra}{as_root(path)}"
                    f"Spread_Segment 127.0.0.255:{port} {{\n{''.join(lines)}}}\n")
    return conf


def as_root(path: Path) -> str:
    """Run as root, the daemon chroots to RuntimeDir and becomes DaemonUser: make that
    <path>/run and root, so tests need no `spread` account (the original needs the same)."""
    if os.geteuid() != 0:
        return ""
    (path / "run").mkdir(exist_ok=True)
    return f"RuntimeDir = {path / 'run'}\nDaemonUser = root\nDaemonGroup = root\n"


def start_daemon(
    tmp_path: Path,
    name: str = "testvm",
    max_session_messages: int | None = None,
    extra_conf: str = "",
    peers: tuple[tuple[str, str], ...] = (),
    membership_log: bool = False,
) -> RunningDaemon:
    """`extra_conf` lines go before the segment; they and `peers` need the real command line."""
    port = free_port()
    extra = f"MaxSessionMessages = {max_session_messages}\n" if max_session_messages else ""
    conf = write_conf(tmp_path, name, port, extra + extra_conf, peers)
    log = tmp_path / f"daemon-{port}.log"
    if not VENV_SPREAD.exists():
        raise RuntimeError(f"{VENV_SPREAD} is missing: install the project (README) first")
    cmd = [str(VENV_SPREAD), "-n", name, "-c", str(conf)]
    if membership_log:
        cmd[1:1] = ["-l", "y"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True
        )
    d = RunningDaemon(proc, name, port, conf, log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            d.stop()
            raise RuntimeError(f"daemon exited with {proc.returncode}:\n{d.output()}")
        try:
            d.connect("unix", 1.0).close()
            return d
        except OSError:
            time.sleep(0.05)
    d.stop()
    raise RuntimeError(f"daemon did not come up:\n{d.output()}")


@contextlib.contextmanager
def running_daemon(tmp_path: Path, **kw: object) -> Iterator[RunningDaemon]:
    d = start_daemon(tmp_path, **kw)  # type: ignore[arg-type]
    try:
        yield d
    finally:
        d.stop()
