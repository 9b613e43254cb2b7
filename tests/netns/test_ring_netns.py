"""Real `spread` daemons, one per network namespace on one bridge: ring, order, crash, merge."""

from __future__ import annotations

import pytest

from spread.client import (
    AGREED_MESS,
    CAUSED_BY_NETWORK,
    MembershipMessage,
    RegularMessage,
    TransitionalMessage,
)
from tests.netns.netlab import NetLab, wait_until
from tests.netns.ring import FORM, GROUP, Client, client, conf_text, is_memb, start_daemon, traffic

pytestmark = pytest.mark.netns



def _ring(
    lab: NetLab, n: int, **conf: str
) -> tuple[list, list[Client], list[MembershipMessage]]:
    names = [f"d{i + 1}" for i in range(n)]
    body = conf_text(names, **conf)  # type: ignore[arg-type]
    hosts = [lab.add_host(f"h{i + 1}", i + 1) for i in range(n)]
    daemons = [start_daemon(h, name, body) for h, name in zip(hosts, names)]
    clients = [client(h, f"u{i + 1}") for i, h in enumerate(hosts)]
    for c in clients:
        c.mbox.join(GROUP)
    last = []
    for c in clients:
        m, _ = c.until(is_memb(GROUP, n), FORM)
        assert isinstance(m, MembershipMessage)
        last.append(m)
    return daemons, clients, last


@pytest.mark.parametrize("n", [2, 3])
def test_daemons_in_separate_namespaces_form_one_ring_with_one_agreed_order(
    lab: NetLab, n: int
) -> None:
    daemons, clients, memb = _ring(lab, n)
    assert len({m.gid for m in memb}) == 1  # one group id on every daemon
    got = traffic(clients, 15)
    for seq in got[1:]:
        assert seq == got[0]
    for c in clients:  # FIFO per sender inside the total order
        mine = [d for s, d in got[0] if s == f"#{c.name}#d{c.name[1:]}"]
        assert mine == [f"{c.name}-{i}".encode() for i in range(15)]
    assert all(d.alive() for d in daemons)


@pytest.mark.parametrize(
    "conf",
    [
        pytest.param({"segment": "225.0.1.1"}, id="multicast-segment"),
        pytest.param({"interfaces": "D {ip}\nC {ip}"}, id="explicit-interfaces"),
        pytest.param({"segment": "225.0.1.1", "interfaces": "D {ip}\nC {ip}"},
                     id="multicast-explicit-interfaces"),
    ],
)
def test_ring_forms_over_multicast_and_with_explicit_daemon_interfaces(
    lab: NetLab, conf: dict[str, str]
) -> None:
    """The transport's other socket plans ([conf] §8.2): a joined multicast group, and
    daemon sockets bound to the interface address plus the segment address (REUSEADDR)."""
    daemons, clients, _ = _ring(lab, 2, **conf)
    got = traffic(clients, 5)
    assert got[0] == got[1] and len(got[0]) == 10
    assert all(d.alive() for d in daemons)
    for c in clients:
        udp = c.host.run("ss", "-uan").stdout
        groups = c.host.run("ip", "maddr", "show", "dev", "eth0").stdout
        if "interfaces" in conf:
            seg = conf.get("segment", "192.0.2.255")
            for bound in (f"{c.host.ip}:24903", f"{c.host.ip}:24904", f"{seg}:24903"):
                assert bound in udp, udp
            assert "0.0.0.0:24903" not in udp, udp
        else:
            assert "0.0.0.0:24903" in udp and "0.0.0.0:24904" in udp, udp
        if conf.get("segment", "").startswith("225."):
            assert "225.0.1.1" in groups, groups


def test_ring_forms_over_ipv6_with_a_multicast_segment(lab: NetLab) -> None:
    """IPv6 sockets: wildcard [::] binds, ff12::1234 joined, sends from fd00::N with the
    interface's scope id."""
    hosts = [lab.add_host(f"h{i}", i) for i in (1, 2)]
    for i, h in enumerate(hosts, 1):
        h.add_address(f"fd00::{i}/64")
    timeouts = conf_text(["d1"]).split("Spread_Segment")[0]
    body = timeouts + "Spread_Segment [ff12::1234]:24903 {\n\td1\t[fd00::1]\n\td2\t[fd00::2]\n}\n"
    daemons = [start_daemon(h, f"d{i}", body) for i, h in enumerate(hosts, 1)]
    clients = [client(h, f"u{i}") for i, h in enumerate(hosts, 1)]
    for c in clients:
        c.mbox.join(GROUP)
    for c in clients:
        c.until(is_memb(GROUP, 2), FORM)
    got = traffic(clients, 5)
    assert got[0] == got[1] and len(got[0]) == 10
    for h in hosts:
        assert "ff12::1234" in h.run("ip", "-6", "maddr", "show", "dev", "eth0").stdout
    assert all(d.alive() for d in daemons)


def test_kill9_of_a_daemon_gives_transition_then_network_membership(lab: NetLab) -> None:
    daemons, (c1, _c2), (before, _) = _ring(lab, 2)
    daemons[1].kill9()
    m, seen = c1.until(lambda m: isinstance(m, MembershipMessage), FORM)
    # A5 layout: TRANSITION_MESS for the group carrying the previous group id, then
    # CAUSED_BY_NETWORK with the survivors under a new id of a new ring
    assert [type(x) for x in seen] == [TransitionalMessage], seen
    trans = seen[0]
    assert isinstance(trans, TransitionalMessage)
    assert trans.sender == GROUP and trans.gid == before.gid
    assert m.gid is not None and before.gid is not None
    assert (m.gid.proc_id, m.gid.time) != (before.gid.proc_id, before.gid.time)
    assert m.service_type & CAUSED_BY_NETWORK
    assert m.members == ("#u1#d1",)
    assert m.vs_sets == (("#u1#d1",),)
    assert daemons[0].alive()


def test_partition_then_heal_merges_back_into_one_membership(lab: NetLab) -> None:
    daemons, clients, _ = _ring(lab, 3)
    c1, c2, c3 = clients
    h3 = c3.host
    h3.partition()
    for c, members in ((c1, ("#u1#d1", "#u2#d2")), (c2, ("#u1#d1", "#u2#d2")),
                       (c3, ("#u3#d3",))):
        m, seen = c.until(lambda m: isinstance(m, MembershipMessage), FORM)
        assert [type(x) for x in seen] == [TransitionalMessage], (c.name, seen)
        assert m.service_type & CAUSED_BY_NETWORK and m.members == members, (c.name, m)
    # both sides keep working while apart
    c1.mbox.multicast(AGREED_MESS, GROUP, 2, b"majority")
    c3.mbox.multicast(AGREED_MESS, GROUP, 2, b"minority")
    for c, data in ((c1, b"majority"), (c2, b"majority"), (c3, b"minority")):
        m, _ = c.until(lambda m: isinstance(m, RegularMessage), 10)
        assert m.data == data
    h3.heal()
    gids = []
    for c in clients:
        m, seen = c.until(is_memb(GROUP, 3), FORM + 15)
        # A5: a merge is one CAUSED_BY_NETWORK membership, no TRANSITION_MESS first
        assert not any(isinstance(x, TransitionalMessage) for x in seen), (c.name, seen)
        assert m.service_type & CAUSED_BY_NETWORK
        assert sorted(m.members) == ["#u1#d1", "#u2#d2", "#u3#d3"]
        assert sorted(map(sorted, m.vs_sets)) == [["#u1#d1", "#u2#d2"], ["#u3#d3"]]
        gids.append(m.gid)
    assert gids[0] == gids[1] == gids[2]
    got = traffic(clients, 5)
    assert got[0] == got[1] == got[2]
    assert all(d.alive() for d in daemons)


def test_the_configuration_block_lists_the_members_then_a_blank_line(lab: NetLab) -> None:
    """As the captured original (vectors/config good_two_daemons_bcast): d1 alone in a
    two-daemon configuration prints only itself, then an empty line."""
    h1 = lab.add_host("h1", 1)
    d1 = start_daemon(h1, "d1", conf_text(["d1", "d2"]))
    block = ("Membership id is ( 1552775919, {t})\n--------------------\n"
             "Configuration at d1 is:\nNum Segments 1\n\t1\t[192.0.2.255]:24903\n"
             "\t\td1                  \t192.0.2.1\tID: 1552775919      \n"
             "====================\n\n")
    assert wait_until(lambda: "====================\n\n" in d1.output(), FORM)
    out = d1.output()
    at = out.index("Membership id is")
    t = out[at:].split(", ", 1)[1].split(")", 1)[0]
    assert out[at:].startswith(block.format(t=t))
