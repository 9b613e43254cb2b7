"""spmonitor steering a real three-host ring: status of every daemon, a monitor partition and
its cancellation, flow control, and Terminate (daemon protocol §10)."""

from __future__ import annotations

import os
import re

import pytest

from spread.client import MembershipMessage
from tests.netns.netlab import Host, NetLab, wait_until
from tests.netns.ring import FORM, GROUP, Client, client, conf_text, is_memb, start_daemon
from tests.support_monitor import Monitor

pytestmark = pytest.mark.netns

MON_PORT = 16543


def _ring(lab: NetLab, extra: str) -> tuple[list[Host], list, list[Client]]:
    names = ["d1", "d2", "d3"]
    body = conf_text(names, extra=extra)
    hosts = [lab.add_host(f"h{i + 1}", i + 1) for i in range(3)]
    daemons = [start_daemon(h, n, body) for h, n in zip(hosts, names)]
    clients = [client(h, f"u{i + 1}") for i, h in enumerate(hosts)]
    for c in clients:
        c.mbox.join(GROUP)
    for c in clients:
        c.until(is_memb(GROUP, 3), FORM)
    return hosts, daemons, clients


def _monitor(h: Host, program: str | None = None) -> Monitor:
    return Monitor(["-n", "d1", "-c", str(h.dir / "spread.conf"), "-p", str(MON_PORT),
                    "-t", "1"], prefix=["ip", "netns", "exec", h.netns], program=program)


def _program(which: str) -> str | None:
    """Our spmonitor, or the original's when SPMONITOR_ORIG names its binary."""
    if which == "ours":
        return None
    path = os.environ.get("SPMONITOR_ORIG")
    if not path:
        pytest.skip("set SPMONITOR_ORIG to the original C spmonitor to run this side by side")
    return path


def _members(c: Client, n: int) -> MembershipMessage:
    m, _ = c.until(is_memb(GROUP, n), FORM)
    assert isinstance(m, MembershipMessage)
    return m


@pytest.mark.parametrize("which", ["ours", "original"])
def test_monitor_sees_every_daemon_partitions_the_ring_and_heals_it(
    lab: NetLab, which: str
) -> None:
    program = _program(which)
    hosts, daemons, clients = _ring(lab, "DangerousMonitor = true\n")
    m = _monitor(hosts[0], program)
    try:
        m.type("0", "all", "")
        for name in ("d1", "d2", "d3"):
            at = m.wait_for(f"Status at {name} V 5.00. 1 (state 1, gstate 1)")
            m.wait_for("Membership  :  3  procs in 1 segments, leader is d", start=at)
        # d3 alone in component 1: both sides install their own membership
        # One command per write: the original reads stdin through stdio but waits for the
        # descriptor to be readable, so a command queued behind another waits for more input.
        m.type("1", "0", "0", "1")
        m.wait_for("Partition Map:")
        m.type("2")
        m.wait_for("Monitor: send partition\n")
        assert _members(clients[0], 2).members == _members(clients[1], 2).members
        assert len(_members(clients[2], 1).members) == 1
        text_at = len(m.text)
        at = m.wait_for("Status at d3", start=text_at)
        m.wait_for("Membership  :  1  procs in 1 segments, leader is d3", start=at)
        m.type("4")  # cancel: the daemons find each other again
        for c in clients:
            _members(c, 3)
        assert all(d.alive() for d in daemons)
        for d in daemons:
            assert "Got monitor partition message; I'm in component" in d.output()
    finally:
        m.close()


@pytest.mark.parametrize("which", ["ours", "original"])
def test_flow_control_and_terminate_from_the_monitor(lab: NetLab, which: str) -> None:
    program = _program(which)
    hosts, daemons, clients = _ring(lab, "DangerousMonitor = true\n")
    m = _monitor(hosts[0], program)
    try:
        m.type("5", "100", "7", "", "9")  # Window 100; d1 7, d2 kept, d3 9
        m.wait_for("Flow Control Parameters:")
        m.type("6")
        m.wait_for("Monitor: send flow control params\n")
        m.type("0", "all", "")
        windows = {}
        for name in ("d1", "d2", "d3"):
            at = m.wait_for(f"Status at {name} ", timeout=15)
            end = m.wait_for("==================================\n", start=at)
            block = m.text[at:end]
            w = re.search(r"Window     :\s+(-?\d+)", block)
            p = re.search(r"P/A Window :\s+(-?\d+)/", block)
            assert w and p, block
            windows[name] = (int(w.group(1)), int(p.group(1)))
        assert windows == {"d1": (100, 7), "d2": (100, 20), "d3": (100, 9)}
        m.type("8", "d2", "")
        m.wait_for("Monitor: Terminating d2\n")
        assert wait_until(lambda: not daemons[1].alive(), 10)
        assert daemons[1].popen.returncode == 1
        assert "Instructed to exit by monitor!" in daemons[1].output()
        for c in (clients[0], clients[2]):
            _members(c, 2)
    finally:
        m.close()


def test_without_dangerous_monitor_the_ring_ignores_partition_and_flow_control(
    lab: NetLab
) -> None:
    hosts, daemons, clients = _ring(lab, "")
    m = _monitor(hosts[0])
    try:
        m.type("1", "0", "1", "2", "2", "5", "3", "3", "3", "3", "6", "8", "all", "")
        m.wait_for("Monitor: Terminating d3\n")
        assert wait_until(lambda: all("denied. Daemon in safe mode!" in d.output()
                                      for d in daemons), 10)
        m.type("0", "d2", "")
        at = m.wait_for("Status at d2 ")
        m.wait_for("Membership  :  3  procs", start=at)
        m.wait_for("Window     :     160", start=at)
        assert all(d.alive() for d in daemons)
        clients[0].mbox.multicast(0x08, GROUP, 1, b"still one ring")
        for c in clients:
            got, _ = c.until(lambda x: getattr(x, "data", None) == b"still one ring", 10)
            assert got is not None
    finally:
        m.close()


def test_monitor_reads_an_ipv6_ring(lab: NetLab) -> None:
    """Status queries and replies over IPv6: the monitor binds [fd00::1], replies come back."""
    hosts = [lab.add_host(f"h{i}", i) for i in (1, 2)]
    for i, h in enumerate(hosts, 1):
        h.add_address(f"fd00::{i}/64")
    timeouts = conf_text(["d1"]).split("Spread_Segment")[0]
    body = timeouts + "Spread_Segment [ff12::1234]:24903 {\n\td1\t[fd00::1]\n\td2\t[fd00::2]\n}\n"
    for i, h in enumerate(hosts, 1):
        start_daemon(h, f"d{i}", body)
    clients = [client(h, f"u{i}") for i, h in enumerate(hosts, 1)]
    for c in clients:
        c.mbox.join(GROUP)
    for c in clients:
        c.until(is_memb(GROUP, 2), FORM)
    m = _monitor(hosts[0])
    try:
        m.type("0", "all", "")
        for name in ("d1", "d2"):
            at = m.wait_for(f"Status at {name} ")
            m.wait_for("Membership  :  2  procs in 1 segments", start=at)
    finally:
        m.close()
