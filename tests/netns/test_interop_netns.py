"""Our daemon and the original C daemon in one ring (only with SPREAD_ORIG_DAEMON set).

Set SPREAD_ORIG_DAEMON to the original Spread 5.0.1 `spread` binary (built elsewhere; nothing
here builds it). The recorded evidence and a replay that needs no binary are in
docs/interop.md and tests/unit/test_interop_replay.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from spread.client import CAUSED_BY_NETWORK, MembershipMessage, TransitionalMessage
from tests.netns.netlab import Host, NetLab
from tests.netns.ring import FORM, GROUP, Client, client, conf_text, is_memb, start_daemon, traffic

pytestmark = pytest.mark.netns



@pytest.fixture
def orig() -> Path:
    path = os.environ.get("SPREAD_ORIG_DAEMON")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("set SPREAD_ORIG_DAEMON to the original C `spread` binary to run these")
    return Path(path)


def _start(host: Host, name: str, body: str, orig: Path | None) -> object:
    if orig is None:
        return start_daemon(host, name, body)
    shutil.copy(orig, host.dir / "spread-orig")  # /tmp is private to the process: copy in
    return start_daemon(host, name, body, program="./spread-orig")


@pytest.mark.parametrize("c_first", [True, False], ids=["c-starts-first", "python-first"])
def test_c_and_python_daemons_form_one_ring_with_one_order(
    lab: NetLab, orig: Path, c_first: bool
) -> None:
    body = conf_text(["d1", "d2"])
    h1, h2 = lab.add_host("h1", 1), lab.add_host("h2", 2)
    order = [(h1, "d1", orig), (h2, "d2", None)]
    for host, name, binary in order if c_first else order[::-1]:
        _start(host, name, body, binary)
    clients: list[Client] = [client(h1, "u1"), client(h2, "u2")]
    for c in clients:
        c.mbox.join(GROUP)
    for c in clients:
        c.until(is_memb(GROUP, 2), FORM)
    got = traffic(clients, 50)
    assert got[0] == got[1] and len(got[0]) == 100


def test_python_client_sees_the_c_daemon_die(lab: NetLab, orig: Path) -> None:
    body = conf_text(["d1", "d2"])
    h1, h2 = lab.add_host("h1", 1), lab.add_host("h2", 2)
    c_daemon = _start(h1, "d1", body, orig)
    _start(h2, "d2", body, None)
    c1, c2 = client(h1, "u1"), client(h2, "u2")
    for c in (c1, c2):
        c.mbox.join(GROUP)
    before, _ = c2.until(is_memb(GROUP, 2), FORM)
    c1.until(is_memb(GROUP, 2), FORM)
    c_daemon.kill9()  # type: ignore[attr-defined]
    m, seen = c2.until(lambda m: isinstance(m, MembershipMessage), FORM)
    assert [type(x) for x in seen] == [TransitionalMessage]
    assert seen[0].gid == before.gid  # type: ignore[attr-defined]
    assert m.service_type & CAUSED_BY_NETWORK and m.members == ("#u2#d2",)


def test_our_monitor_reads_and_partitions_a_mixed_ring(lab: NetLab, orig: Path) -> None:
    """A C daemon answers our spmonitor's STATUS and obeys its PARTITION like ours do."""
    from tests.support_monitor import Monitor

    body = conf_text(["d1", "d2", "d3"], extra="DangerousMonitor = true\n")
    hosts = [lab.add_host(f"h{i}", i) for i in (1, 2, 3)]
    _start(hosts[0], "d1", body, None)
    _start(hosts[1], "d2", body, orig)
    _start(hosts[2], "d3", body, None)
    clients = [client(h, f"u{i + 1}") for i, h in enumerate(hosts)]
    for c in clients:
        c.mbox.join(GROUP)
    for c in clients:
        c.until(is_memb(GROUP, 3), FORM)
    m = Monitor(["-n", "d1", "-c", str(hosts[0].dir / "spread.conf"), "-p", "16543", "-t", "1"],
                prefix=["ip", "netns", "exec", hosts[0].netns])
    try:
        m.type("0", "all", "")
        for name in ("d1", "d2", "d3"):
            at = m.wait_for(f"Status at {name} V 5.00. 1 (state 1, gstate 1)")
            m.wait_for("Membership  :  3  procs in 1 segments, leader is d", start=at)
        m.type("1", "0", "1", "0")  # the C daemon alone
        m.wait_for("Partition Map:")
        m.type("2")
        solo, _ = clients[1].until(is_memb(GROUP, 1), FORM)
        assert isinstance(solo, MembershipMessage) and solo.members == ("#u2#d2",)
        clients[0].until(is_memb(GROUP, 2), FORM)
        m.type("4")
        for c in clients:
            c.until(is_memb(GROUP, 3), FORM)
    finally:
        m.close()
