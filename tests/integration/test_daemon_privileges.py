"""Started as root, the daemon chroots to RuntimeDir and becomes DaemonUser/DaemonGroup once
its sockets exist, as the original's main() does (root only)."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import time
from pathlib import Path

import pytest

from tests.support_daemon import VENV_SPREAD, free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

RISK = ("Spread: SECURITY RISK! running as root, but unix domain socket is not in a root-only "
        "writable directory. May risk denial of service or malicious deletion of unexpected "
        "file in directory: /tmp\n")


def _unprivileged() -> tuple[str, str]:
    for name in ("nobody", "daemon"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return name, grp.getgrgid(pw.pw_gid).gr_name
    pytest.skip("no unprivileged account on this host")


def _start(tmp_path: Path, user: str, group: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(0o755)
    conf = tmp_path / "spread.conf"
    conf.write_text(f"RuntimeDir = {run}\nDaemonUser = {user}\nDaemonGroup = {group}\n"
                    f"Spread_Segment 127.0.0.255:{port} {{\n\ttestvm\t127.0.0.1\n}}\n")
    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(VENV_SPREAD), "-n", "testvm", "-c", str(conf)],
                                stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
                                start_new_session=True)
    return proc, port, log


def _stop(proc: subprocess.Popen[bytes], port: int) -> int:
    if proc.poll() is None:
        proc.terminate()
    status = proc.wait(10)
    if os.path.exists(f"/tmp/{port}"):
        os.unlink(f"/tmp/{port}")  # the dropped daemon may not remove root's socket file
    return status


def test_root_start_warns_then_runs_chrooted_as_daemon_user(tmp_path: Path) -> None:
    user, group = _unprivileged()
    proc, port, log = _start(tmp_path, user, group)
    try:
        deadline = time.monotonic() + 15
        while "setugid" not in _status_text(proc) and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        status = _status_text(proc)
        uid = pwd.getpwnam(user).pw_uid
        assert f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}" in status, status
        assert os.readlink(f"/proc/{proc.pid}/root") == str(tmp_path / "run")
        from spread.client import connect

        mbox = connect(str(port), "after", timeout=5)  # clients still get in
        mbox.join("g")
        mbox.disconnect()
    finally:
        assert _stop(proc, port) == 0
    out = log.read_text()
    assert RISK in out
    assert out.index(RISK) < out.index("Membership id is")
    assert out.endswith("Spread daemon exiting normally!\n")


def _status_text(proc: subprocess.Popen[bytes]) -> str:
    """/proc status once the drop happened (its Uid line changes), else 'setugid' missing."""
    try:
        text = Path(f"/proc/{proc.pid}/status").read_text()
    except OSError:
        return ""
    return text + ("setugid" if "Uid:\t0\t" not in text else "")


def test_a_missing_daemon_user_is_fatal(tmp_path: Path) -> None:
    proc, port, log = _start(tmp_path, "no-such-user-x", "root")
    try:
        status = proc.wait(15)
        left_behind = os.path.exists(f"/tmp/{port}")
    finally:
        _stop(proc, port)
    assert status == 1 and not left_behind  # still root then: the socket file is removed
    assert log.read_text().endswith(
        "Spread: FAILED privilege drop to user/group 'no-such-user-x/root' (defined in "
        "spread.conf or spread_params.h)\nExit caused by Alarm!\n")


def test_a_missing_runtime_dir_is_fatal(tmp_path: Path) -> None:
    port = free_port()
    conf = tmp_path / "spread.conf"
    conf.write_text(f"RuntimeDir = {tmp_path}/absent\nDaemonUser = root\nDaemonGroup = root\n"
                    f"Spread_Segment 127.0.0.255:{port} {{\n\ttestvm\t127.0.0.1\n}}\n")
    r = subprocess.run([str(VENV_SPREAD), "-n", "testvm", "-c", str(conf)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stdout.endswith(f"Spread: FAILED chroot to '{tmp_path}/absent'\n"
                             "Exit caused by Alarm!\n")
