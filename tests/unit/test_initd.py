"""The CentOS 5 SysV scripts init.d/spread and init.d/wackamole, run in a throwaway directory."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent.parent
INITD = REPO / "init.d"
VECTORS = Path(__file__).parent.parent / "vectors" / "config" / "wackamole"


def script(tmp: Path, name: str, body: str) -> Path:
    path = tmp / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)
    return path


class Env:
    """Paths of one throwaway installation; runs an init script against them."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.pidfile = tmp / "prog.pid"
        self.lockfile = tmp / "subsys-lock"
        self.config = tmp / "prog.conf"
        self.config.write_text("# config\n")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SYSCONFIG": str(tmp / "no-sysconfig"),
            "FUNCTIONS": str(tmp / "no-functions"),
            "PIDFILE": str(self.pidfile),
            "LOCKFILE": str(self.lockfile),
            "CONFIG": str(self.config),
            "START_WAIT": "0.3",
            "STOP_DELAY": "2",
        }
        self.started: list[int] = []

    def run(self, name: str, action: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(INITD / name), action], capture_output=True,
                              text=True, env={**self.env, **extra}, timeout=30)

    def pid(self) -> int:
        return int(self.pidfile.read_text().split()[0])

    def cleanup(self) -> None:
        for pid in self.started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    if e.pidfile.exists():
        try:
            e.started.append(e.pid())
        except ValueError:
            pass
    e.cleanup()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of this test process still answers kill 0; reap it first.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        done = 0
    return done == 0 and Path(f"/proc/{pid}").exists()


def fake_wackamole(env: Env, check_status: int = 0, start_status: int = 0) -> Path:
    """Behaves like wackamole at start: checks, detaches, writes the pid file, returns."""
    return script(env.tmp, "wackamole", f"""
if [ "$1" = "--check-config" ]; then echo "checked $*"; exit {check_status}; fi
[ {start_status} -ne 0 ] && exit {start_status}
sleep 30 </dev/null >/dev/null 2>&1 &
echo $! > "$PIDFILE"
exit 0
""")


@pytest.mark.parametrize("name", ["spread", "wackamole"])
def test_scripts_are_valid_bash_with_chkconfig_headers(name: str) -> None:
    path = INITD / name
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    assert os.access(path, os.X_OK)
    text = path.read_text()
    assert re.search(r"^# chkconfig: 2345 \d\d \d\d$", text, re.M)
    assert re.search(rf"^# processname: {name}$", text, re.M)
    assert re.search(rf"^# pidfile: /var/run/{name}\.pid$", text, re.M)
    assert re.search(r"^# description: ", text, re.M)


def test_spread_starts_before_and_stops_after_wackamole() -> None:
    def order(name: str) -> tuple[int, int]:
        m = re.search(r"^# chkconfig: 2345 (\d\d) (\d\d)$", (INITD / name).read_text(), re.M)
        assert m
        return int(m[1]), int(m[2])

    assert order("spread")[0] < order("wackamole")[0]
    assert order("spread")[1] > order("wackamole")[1]


def test_wackamole_status_stopped(env: Env) -> None:
    proc = env.run("wackamole", "status")
    assert (proc.returncode, proc.stdout) == (3, "wackamole is stopped\n")


def test_wackamole_status_running_from_the_pid_file(env: Env) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    env.started.append(sleeper.pid)
    env.pidfile.write_text(f"{sleeper.pid}\n")
    proc = env.run("wackamole", "status")
    assert (proc.returncode, proc.stdout) == (0, f"wackamole (pid {sleeper.pid}) is running...\n")


def test_wackamole_status_dead_with_pid_file_or_lock(env: Env) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    env.pidfile.write_text(f"{gone.pid}\n")
    assert env.run("wackamole", "status").returncode == 1
    env.pidfile.unlink()
    env.lockfile.touch()
    proc = env.run("wackamole", "status")
    assert (proc.returncode, proc.stdout) == (2, "wackamole dead but subsys locked\n")


def test_wackamole_start_status_stop_without_initscripts(env: Env) -> None:
    binary = fake_wackamole(env)
    started = env.run("wackamole", "start", WACKAMOLE=str(binary))
    assert (started.returncode, started.stdout) == (0, "Starting wackamole: [  OK  ]\n")
    pid = env.pid()
    env.started.append(pid)
    assert env.lockfile.exists() and alive(pid)
    assert env.run("wackamole", "status").returncode == 0
    again = env.run("wackamole", "start", WACKAMOLE=str(binary))
    assert again.returncode == 0 and env.pid() == pid  # already running: not started twice
    stopped = env.run("wackamole", "stop")
    assert (stopped.returncode, stopped.stdout) == (0, "Stopping wackamole: [  OK  ]\n")
    assert not alive(pid) and not env.pidfile.exists() and not env.lockfile.exists()


def test_wackamole_start_fails_when_the_program_fails(env: Env) -> None:
    binary = fake_wackamole(env, start_status=255)
    proc = env.run("wackamole", "start", WACKAMOLE=str(binary))
    assert (proc.returncode, proc.stdout) == (1, "Starting wackamole: [FAILED]\n")
    assert not env.lockfile.exists()


def test_restart_refuses_a_config_that_cannot_start(env: Env) -> None:
    good = fake_wackamole(env)
    assert env.run("wackamole", "start", WACKAMOLE=str(good)).returncode == 0
    pid = env.pid()
    env.started.append(pid)
    bad = fake_wackamole(env, check_status=255)
    proc = env.run("wackamole", "restart", WACKAMOLE=str(bad))
    assert proc.returncode == 6 and "checked --check-config -c" in proc.stdout
    assert alive(pid)  # the running daemon was left alone


def test_condrestart_does_nothing_when_not_started(env: Env) -> None:
    binary = fake_wackamole(env)
    proc = env.run("wackamole", "condrestart", WACKAMOLE=str(binary))
    assert (proc.returncode, proc.stdout) == (0, "")
    assert not env.pidfile.exists()


def test_unknown_action_prints_usage_without_reload(env: Env) -> None:
    proc = env.run("wackamole", "reload")
    assert proc.returncode == 2 and proc.stdout.startswith("Usage: ")
    assert "reload" not in proc.stdout


def test_initscripts_helpers_are_used_when_present(env: Env) -> None:
    calls = env.tmp / "calls"
    functions = env.tmp / "functions"
    functions.write_text(f"""
daemon() {{ echo "daemon $*" >> {calls}; return 0; }}
killproc() {{ echo "killproc $*" >> {calls}; return 0; }}
status() {{ echo "status $*" >> {calls}; return 3; }}
""")
    binary = fake_wackamole(env)
    for action in ("start", "status", "stop"):
        env.run("wackamole", action, WACKAMOLE=str(binary), FUNCTIONS=str(functions))
    assert calls.read_text().splitlines() == [
        f"daemon --pidfile {env.pidfile} {binary} -c {env.config}",
        f"status -p {env.pidfile} wackamole",
        f"killproc -p {env.pidfile} -d 2 wackamole",
    ]


def test_configtest_runs_the_real_check(env: Env) -> None:
    wrapper = script(env.tmp, "wackamole-py",
                     f'cd {REPO} && exec {sys.executable} -m wackamole "$@"\n')
    proc = env.run("wackamole", "configtest", WACKAMOLE=str(wrapper),
                   CONFIG=str(VECTORS / "bad_group_keyword.conf"))
    assert proc.returncode == 255
    assert "Offending token: all" in proc.stderr and "Traceback" not in proc.stderr


def test_spread_is_backgrounded_with_a_pid_file_and_stopped(env: Env) -> None:
    binary = script(env.tmp, "spread", 'echo "args $*"\nexec sleep 30\n')
    out = env.tmp / "spread.out"
    started = env.run("spread", "start", SPREAD=str(binary), NAME="h1", OUTPUT=str(out))
    assert (started.returncode, started.stdout) == (0, "Starting spread: [  OK  ]\n")
    pid = env.pid()
    env.started.append(pid)
    assert alive(pid) and env.lockfile.exists()
    assert out.read_text() == f"args -c {env.config} -n h1\n"
    assert env.run("spread", "status").stdout == f"spread (pid {pid}) is running...\n"
    stopped = env.run("spread", "stop")
    assert stopped.returncode == 0 and not alive(pid)
    assert not env.pidfile.exists() and not env.lockfile.exists()


def test_spread_that_exits_at_once_is_reported_failed(env: Env) -> None:
    binary = script(env.tmp, "spread", "exit 1\n")
    proc = env.run("spread", "start", SPREAD=str(binary))
    assert (proc.returncode, proc.stdout) == (1, "Starting spread: [FAILED]\n")
    assert not env.pidfile.exists() and not env.lockfile.exists()


def test_stop_gives_up_waiting_and_kills(env: Env) -> None:
    stubborn = script(env.tmp, "stubborn", "trap '' TERM\nwhile :; do sleep 0.1; done\n")
    proc = subprocess.Popen([str(stubborn)], start_new_session=True)
    env.started.append(proc.pid)
    time.sleep(0.2)
    env.pidfile.write_text(f"{proc.pid}\n")
    result = env.run("wackamole", "stop", STOP_DELAY="1")
    assert result.returncode == 0
    proc.wait(5)
    assert proc.returncode == -signal.SIGKILL
