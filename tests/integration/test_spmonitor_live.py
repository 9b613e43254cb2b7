"""The real `spmonitor` against the real `spread` on loopback: status screen and Terminate."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from spread.client import connect
from tests.support_daemon import RunningDaemon, start_daemon
from tests.support_monitor import Monitor


def _monitor(d: RunningDaemon) -> Monitor:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return Monitor(["-n", d.name, "-c", str(d.conf), "-p", str(port), "-t", "1"])


def test_status_screen_of_a_live_daemon_counts_its_sessions_and_groups(tmp_path: Path) -> None:
    d = start_daemon(tmp_path, "testvm")
    m = _monitor(d)
    try:
        m.wait_for("Monitor> ")
        m.type("0", "all", "")
        first = m.wait_for("Status at testvm V 5.00. 1 (state 1, gstate 1) after ")
        assert m.wait_for("Membership  :  1  procs in 1 segments, leader is testvm, regular "
                          "protocol\n", start=first) > first
        mbox = connect(str(d.port), "watcher", socket_dir="/tmp", timeout=5)
        mbox.join("grp")
        mbox.multicast(0x08, "grp", 0, b"hello")  # AGREED, to a group no one else is in
        seen = m.wait_for("Sessions :       1\tGroups    :       1", timeout=10)
        m.wait_for("Deliver M:       1\t", start=seen)
        mbox.disconnect()
        m.type("9")
        m.wait_for("Bye.\n")
        assert m.proc.wait(5) == 0
    finally:
        m.close()
        assert d.stop() == 0, d.output()


def test_terminate_ends_a_daemon_that_allows_dangerous_commands(tmp_path: Path) -> None:
    d = start_daemon(tmp_path, "testvm", extra_conf="DangerousMonitor = true\n")
    m = _monitor(d)
    try:
        m.type("8", "testvm", "")
        m.wait_for("Monitor: Terminating testvm\n")
        d.proc.wait(10)
        assert d.proc.returncode == 1
        out = d.output()
        assert "Net_handle_monitor: Instructed to exit by monitor!\nExit caused by Alarm!\n" in out
        assert out.count("Instructed to exit") == 1  # the monitor sends it twice
        assert "exiting normally" not in out
        assert not os.path.exists(d.unix_path)  # cleaned up, unlike the original's abort()
    finally:
        m.close()
        d.stop()


def test_flow_control_reaches_a_one_daemon_configuration(tmp_path: Path) -> None:
    d = start_daemon(tmp_path, "testvm", extra_conf="DangerousMonitor = true\n")
    m = _monitor(d)
    try:
        m.type("5", "90", "9")
        m.wait_for("Flow Control Parameters:")
        m.type("6")
        m.wait_for("Monitor: send flow control params\n")
        m.type("0", "all", "")
        at = m.wait_for("Status at testvm")
        m.wait_for("Window     :      90\n", start=at)
        # without AcceleratedRing the monitor never asks for that window and sends 0, which
        # the daemon applies: the original does the same
        m.wait_for("P/A Window :       9/0\n", start=at)
    finally:
        m.close()
        assert d.stop() == 0, d.output()


def test_a_daemon_in_safe_mode_refuses_terminate_and_keeps_serving(tmp_path: Path) -> None:
    d = start_daemon(tmp_path, "testvm")
    m = _monitor(d)
    try:
        m.type("8", "testvm", "")
        m.wait_for("Monitor: Terminating testvm\n")
        deadline = time.monotonic() + 10
        while "denied. Daemon in safe mode!" not in d.output():
            assert time.monotonic() < deadline, d.output()
            time.sleep(0.05)
        assert ("Net_handle_monitor: Request to set partition or kill daemons from "
                "[127.0.0.1]:") in d.output()
        m.type("0", "testvm", "")
        m.wait_for("Status at testvm")
        assert d.alive()
        d.connect("unix").close()
    finally:
        m.close()
        assert d.stop() == 0, d.output()
