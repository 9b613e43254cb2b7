"""Ring engine membership: discovery, FORM tokens, token loss, crash, partition, merge, EVS."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from spread.ring.api import (
    Channel,
    Deliver,
    DeliveryThreshold,
    RegularConfiguration,
    RingConfig,
    RingDaemon,
    RingSegment,
    RingTimeouts,
    TransitionalConfiguration,
)
from spread.ring.harness import Harness, client_message, make_configs
from spread.wire.client import AGREED_MESS, SAFE_MESS
from spread.wire.daemon import (
    ROUTED_TYPE,
    Alive,
    DataPacket,
    Form1,
    Hurry,
    Join,
    Refer,
    Token,
    arq_of,
    decode,
    retrans_of,
)
from tests.support_pcap import UdpDatagram, read_udp

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "daemon"


def captured_ring() -> tuple[dict, dict[int, RingConfig]]:
    caps = json.loads((VECTORS / "B_captures.json").read_text())
    daemons = tuple(
        RingDaemon(caps["daemons"][n]["vid"], n, caps["daemons"][n]["ip"], 0) for n in ("d1", "d2")
    )
    host, port = caps["segment"].split()[0].split(":")
    seg = (RingSegment(int(port), (host,)),)
    cfgs = {
        d.vid: RingConfig(d.vid, daemons, seg, caps["conf_hash"], accelerated_ring=False)
        for d in daemons
    }
    return caps, cfgs


def tokens(h: Harness, src: int | None = None) -> list[tuple[float, Token]]:
    out = []
    for s in h.sent:
        if src is not None and s.src != src:
            continue
        base = 4803 if s.datagram.port in (4803, 4804) else None
        if base is None:
            continue
        if s.datagram.port == base + 1:
            tok = decode(s.datagram.payload, Channel.TOKEN)
            if isinstance(tok, Token):
                out.append((s.time, tok))
    return out


def two_ring() -> tuple[Harness, int, int]:
    cfg = make_configs(["d1", "d2"])
    h = Harness(cfg)
    d1, d2 = list(cfg)
    h.start(d1, 0.0)
    h.start(d2, 0.3)
    h.run_until(4.0)
    for v in (d1, d2):
        h.engines[v].set_delivery_threshold(DeliveryThreshold.ALL)
    return h, d1, d2


# ---- cold start ---------------------------------------------------------------------------


def test_cold_start_replays_the_whole_b1_capture_byte_for_byte_at_the_captured_times() -> None:
    """ALIVE, JOIN, FORM1, FORM2, the first tokens, the GROUPS data packets and the idle
    hurried tokens: every datagram each daemon sent, in its order, to the same address."""
    _caps, cfgs = captured_ring()
    d1, d2 = list(cfgs)
    captured = list(read_udp(VECTORS / "B1_ring_cold_start.pcap"))
    ip = {d1: "192.0.2.1", d2: "192.0.2.2"}
    # the group layer's GROUPS message, submitted when the regular configuration arrives
    groups_msg = {u.src_ip: u.payload[40:] for u in captured if len(u.payload) == 105}
    assert set(groups_msg) == set(ip.values())
    h = Harness(cfgs, latency=0.00005, wall_offset=1_795_573_237.3)
    installed: list[int] = []
    h.on_action = lambda vid, a: (
        installed.append(vid) if isinstance(a, RegularConfiguration) else None
    )
    h.start(d1, 0.0)
    h.start(d2, next(u.t for u in captured if u.src_ip == ip[d2]))
    end = captured[-1].t + 0.01
    while h.step(end):
        while installed:
            v = installed.pop(0)
            h.engines[v].use_groups_queue(True)
            h.submit(v, groups_msg[ip[v]])
    for vid in (d1, d2):
        theirs = [u for u in captured if u.src_ip == ip[vid]]
        mine = [s for s in h.sent if s.src == vid]
        assert len(mine) == len(theirs)
        assert [s.datagram.payload for s in mine] == [u.payload for u in theirs]
        assert [(s.datagram.ip, s.datagram.port) for s in mine] == [
            (u.dst_ip, u.dst_port) for u in theirs
        ]
        for s, u in zip(mine, theirs):
            # the C daemon's hurry cadence drifts ~1 ms per period; ours is exact
            assert s.time == pytest.approx(u.t, abs=0.012)


def test_cold_start_forms_one_ring_with_both_members_and_the_leader_clock_plus_one() -> None:
    _caps, cfgs = captured_ring()
    d1, d2 = list(cfgs)
    h = Harness(cfgs, wall_offset=1_795_573_237.3)
    h.start(d1, 0.0)
    h.start(d2, 0.3)
    h.run_until(3.0)
    form1 = [
        decode(s.datagram.payload, Channel.TOKEN) for s in h.sent if len(s.datagram.payload) == 796
    ]
    assert isinstance(form1[0], Form1)
    form_time = form1[0].header.memb_id.time
    for v in (d1, d2):
        trans, reg = h.configurations(v)
        assert isinstance(trans, TransitionalConfiguration)
        assert trans.members == (v,)
        assert isinstance(reg, RegularConfiguration)
        assert reg.members == (d1, d2)
        # Last_time_used: FORM1 used t, the leader's memb_time is t+1, the ring is t+2
        assert reg.ring_id.proc_id == d1
        assert reg.ring_id.time == form_time + 2
        assert h.engines[v].state_name == "OP"


def test_idle_ring_holds_the_token_and_hurries_it_every_hurry_timeout() -> None:
    h, d1, _d2 = two_ring()
    toks = [(t, tok) for t, tok in tokens(h, d1) if t > 2.5]
    assert all(retrans_of(tok.header.type) == 1 for _, tok in toks)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(toks)]
    assert gaps and all(g == pytest.approx(0.5, abs=0.001) for g in gaps)
    arqs = [arq_of(tok.header.type) for _, tok in toks]
    assert all((b - a) % 16 == 1 for a, b in itertools.pairwise(arqs))


def test_single_daemon_forms_its_ring_alone_and_delivers_its_own_messages() -> None:
    cfg = make_configs(["solo"])
    h = Harness(cfg)
    (v,) = list(cfg)
    h.start(v, 0.0)
    h.run_until(2.5)
    _trans, reg = h.configurations(v)
    assert reg.members == (v,)
    assert h.sent == []  # one daemon in its segment: nothing goes on the wire, not even FORM
    h.engines[v].set_delivery_threshold(DeliveryThreshold.ALL)
    for i in range(5):
        h.submit(v, client_message(SAFE_MESS if i % 2 else AGREED_MESS, b"p%d" % i))
    h.run_until(3.0)
    assert [m[80:] for m in h.delivered(v)] == [b"p%d" % i for i in range(5)]
    assert h.sent == []


# ---- token loss, crash, restart ---------------------------------------------------------


def test_lost_token_is_resent_by_the_leader_with_retrans_2_three_times() -> None:
    h, d1, d2 = two_ring()
    lost: list[float] = []

    def drop_one_token(t: float, src: int, dst: int, ch: Channel, data: bytes) -> bool:
        if src == d1 and ch == Channel.TOKEN and not lost:
            lost.append(t)
            return True
        return False

    h.drop = drop_one_token
    h.submit(d1, client_message(AGREED_MESS, b"x" * 2000))
    h.run_until(h.now + 1.0)
    assert lost
    resent = [(t, tok) for t, tok in tokens(h, d1) if t > lost[0]][:3]
    assert [retrans_of(tok.header.type) for _, tok in resent] == [2, 2, 2]
    assert all(t == pytest.approx(lost[0] + 0.5, abs=0.001) for t, _ in resent)
    # the non-leader answers with RETRANS 2 as well, three copies
    answers = [tok for t, tok in tokens(h, d2) if t > lost[0]][:3]
    assert [retrans_of(tok.header.type) for tok in answers] == [2, 2, 2]
    assert [len(m) for m in h.delivered(d2)] == [48 + 32 + 2000]
    assert h.engines[d1].counters["token_loss"] == 1  # no membership change


def test_crash_installs_a_singleton_ring_token_seg_and_gather_timeouts_after_the_last_token():
    h, d1, d2 = two_ring()
    crash_at = 10.0
    h.run_until(crash_at)
    h.crash(d2)
    h.run_until(20.0)
    last_token_seen = max(t for t, _ in tokens(h, d2)) + h.latency
    reg = h.regular(d1)[-1]
    assert reg.members == (d1,)
    installed_at = h.event_times[d1][h.events[d1].index(reg)]
    assert installed_at - last_token_seen == pytest.approx(1.25 + 0.5 + 1.25, abs=0.001)
    # the idle ring hurries every 0.5 s, so a crash is noticed 2.5-3.0 s after it happened
    assert 2.5 <= installed_at - crash_at <= 3.0
    trans = h.configurations(d1)[-2]
    assert isinstance(trans, TransitionalConfiguration) and trans.members == (d1,)


def test_restarted_daemon_merges_back_as_seg_rep_that_creates_form1() -> None:
    h, d1, d2 = two_ring()
    h.crash(d2)
    h.run_until(15.0)
    n_before = len(h.sent)
    h.start(d2, 17.0)
    h.run_until(22.0)
    after = h.sent[n_before:]
    form1 = [s for s in after if len(s.datagram.payload) == 796]
    assert form1 and all(s.src == d2 for s in form1)
    joins = [
        (s.src, len(s.datagram.payload))
        for s in after
        if isinstance(
            decode(s.datagram.payload, Channel.DATA) if s.datagram.port == 4803 else None, Join
        )
    ]
    # d2 as SEG_REP (scast, 60 bytes), d1 answering from its ring as RING_REP (56 bytes)
    assert (d2, 60) in joins and (d1, 56) in joins
    for v in (d1, d2):
        assert h.regular(v)[-1].members == (d1, d2)
    assert h.regular(d1)[-1].ring_id == h.regular(d2)[-1].ring_id


def test_crash_during_traffic_recovers_old_ring_packets_in_evs_with_the_install_order() -> None:
    cfg = make_configs(["d1", "d2", "d3"])
    h = Harness(cfg)
    d1, d2, d3 = list(cfg)
    for i, v in enumerate((d1, d2, d3)):
        h.start(v, 0.1 * i)
    h.run_until(4.0)
    for v in (d1, d2, d3):
        h.engines[v].set_delivery_threshold(DeliveryThreshold.ALL)

    def d3_misses_d1(t: float, src: int, dst: int, ch: Channel, data: bytes) -> bool:
        return src == d1 and dst == d3 and ch == Channel.DATA

    h.drop = d3_misses_d1
    for i in range(5):
        h.submit(d1, client_message(AGREED_MESS, b"agreed%d" % i))
    h.submit(d1, client_message(SAFE_MESS, b"safe"))
    h.submit(d1, client_message(AGREED_MESS, b"after-safe"))
    h.run_until(h.now + 0.0003)  # d1 has sent its packets; d3 got none of them
    h.crash(d1)
    h.drop = None
    h.run_until(12.0)
    expected = [
        ("D", b"agreed0"),
        ("D", b"agreed1"),
        ("D", b"agreed2"),
        ("D", b"agreed3"),
        ("D", b"agreed4"),
        ("T", (d2, d3)),
        ("D", b"safe"),
        ("D", b"after-safe"),
        ("R", (d2, d3)),
    ]
    for v in (d2, d3):
        seen = []
        for a in h.events[v]:
            if isinstance(a, Deliver):
                seen.append(("D", a.message[80:]))
            elif isinstance(a, TransitionalConfiguration):
                seen.append(("T", a.members))
            elif isinstance(a, RegularConfiguration):
                seen.append(("R", a.members))
        assert seen[-len(expected) :] == expected
    assert h.engines[d2].counters["retrans"] > 0  # d3 got d1's packets from d2 during EVS


# ---- partition and merge ------------------------------------------------------------------


def test_partition_gives_each_side_a_transitional_then_a_regular_configuration() -> None:
    cfg = make_configs(["d1", "d2", "d3"])
    h = Harness(cfg)
    d1, d2, d3 = list(cfg)
    for i, v in enumerate((d1, d2, d3)):
        h.start(v, 0.1 * i)
    h.run_until(5.0)
    old = h.regular(d1)[-1].ring_id
    h.cut(d1, d3)
    h.cut(d2, d3)
    h.run_until(12.0)
    for side, members in (((d1, d2), (d1, d2)), ((d3,), (d3,))):
        for v in side:
            trans, reg = h.configurations(v)[-2:]
            assert isinstance(trans, TransitionalConfiguration) and trans.members == members
            assert isinstance(reg, RegularConfiguration) and reg.members == members
            assert reg.ring_id != old
    # healed: the leaders find each other at a lookup (30 s after install) and merge
    h.heal()
    h.run_until(50.0)
    for v in (d1, d2, d3):
        trans, reg = h.configurations(v)[-2:]
        assert reg.members == (d1, d2, d3)
        assert trans.members == ((d3,) if v == d3 else (d1, d2))
    assert len({h.regular(v)[-1].ring_id for v in (d1, d2, d3)}) == 1


def test_three_segments_route_packets_to_each_segment_head() -> None:
    cfg = make_configs([["a1", "a2"], ["b1"], ["c1", "c2"]])
    h = Harness(cfg)
    vids = list(cfg)
    for i, v in enumerate(vids):
        h.start(v, 0.05 * i)
    h.run_until(12.0)
    for v in vids:
        assert h.regular(v)[-1].members == tuple(vids)
        h.engines[v].set_delivery_threshold(DeliveryThreshold.ALL)
    for i, v in enumerate(vids):
        h.submit(v, client_message(AGREED_MESS, b"m%d" % i))
    n = len(h.sent)
    h.run_until(14.0)
    orders = [h.delivered(v) for v in vids]
    assert all(o == orders[0] for o in orders) and len(orders[0]) == 5
    # b1 is alone in its segment: it only hears other segments' data as ROUTED unicasts
    b1 = vids[2]
    to_b1 = [s.datagram.payload for s in h.sent[n:] if s.dst == (b1,) and s.datagram.port == 4813]
    routed = [p for p in to_b1 if isinstance(decode(p, Channel.DATA), DataPacket)]
    assert len(routed) == 4
    assert all(decode(p, Channel.DATA).header.type & ROUTED_TYPE for p in routed)


def test_message_on_an_idle_ring_sends_the_captured_hurry_packet_to_the_leader() -> None:
    _caps, cfgs = captured_ring()
    d1, d2 = list(cfgs)
    captured = [
        u.payload
        for u in read_udp(VECTORS / "B2_agreed_safe_traffic.pcap")
        if u.dst_port == 24903 and len(u.payload) == 40
    ]
    h = Harness(cfgs, wall_offset=1_795_573_237.3)
    h.start(d1, 0.0)
    h.start(d2, 0.3)
    h.run_until(4.1)  # idle: the leader holds the token between hurries
    for v in (d1, d2):
        h.engines[v].set_delivery_threshold(DeliveryThreshold.ALL)
    n = len(h.sent)
    h.submit(d2, client_message(AGREED_MESS, b"wake up", sender="#u2#d2"))
    hurry = h.sent[n]
    assert (hurry.datagram.ip, hurry.datagram.port) == ("192.0.2.1", 24903)
    assert hurry.datagram.payload == captured[0]
    h.run_until(h.now + 0.01)  # the leader lets the token go at once, not at its next hurry
    assert [m[80:] for m in h.delivered(d1)] == [b"wake up"]


def test_after_a_hole_only_messages_from_the_commit_set_are_delivered() -> None:
    cfg = make_configs(["d1", "d2", "d3"])
    h = Harness(cfg)
    d1, d2, d3 = list(cfg)
    for i, v in enumerate((d1, d2, d3)):
        h.start(v, 0.1 * i)
    h.run_until(4.0)
    for v in (d1, d2, d3):
        h.engines[v].set_delivery_threshold(DeliveryThreshold.ALL)
    first_from_d1: list[int] = []

    def lose_d1s_first_packet(t: float, src: int, dst: int, ch: Channel, data: bytes) -> bool:
        if src == d1 and ch == Channel.DATA:
            key = data[20:24]  # the seq: the first one d1 sends is lost for everybody
            if not first_from_d1:
                first_from_d1.append(key)
            return key == first_from_d1[0]
        return False

    h.drop = lose_d1s_first_packet
    h.submit(d2, client_message(AGREED_MESS, b"m3 from d2" + b"." * 1000))
    h.submit(d1, client_message(AGREED_MESS, b"m1 from d1" + b"." * 1000))
    h.submit(d1, client_message(AGREED_MESS, b"m2 from d1" + b"." * 1000))
    # d1 dies right after broadcasting its two packets, before anyone can ask it for m1
    while not any(s.src == d1 and s.datagram.port == 4803 for s in h.sent[-3:]):
        assert h.step(h.now + 1.0)
    h.run_until(h.now + h.latency * 1.5)
    for v in (d2, d3):  # they hold m2 but not m1: a hole nobody can fill once d1 is gone
        e = h.engines[v]
        assert e.my_aru + 1 not in e.packets
        assert [slot.origin for seq, slot in e.packets.items() if seq > e.my_aru] == [d1]
    h.crash(d1)
    h.drop = None
    h.run_until(h.now + 8.0)
    for v in (d2, d3):
        got = [m[80:90] for m in h.delivered(v)]
        assert got == [b"m3 from d2"]  # m2 came after the hole from a daemon not committed
        trans, reg = h.configurations(v)[-2:]
        assert trans.members == (d2, d3) and reg.members == (d2, d3)
        assert h.engines[v].packets == {}


def test_monitor_partition_splits_the_ring_and_clears_itself_after_60_s() -> None:
    cfg = make_configs(["d1", "d2", "d3"])
    h = Harness(cfg)
    d1, d2, d3 = list(cfg)
    for i, v in enumerate((d1, d2, d3)):
        h.start(v, 0.1 * i)
    h.run_until(4.0)
    for v in (d1, d2, d3):
        h.engines[v].set_partition(h.now, (0, 0, 1))
    h.run_until(10.0)
    assert h.regular(d1)[-1].members == (d1, d2)
    assert h.regular(d3)[-1].members == (d3,)
    assert h.engines[d3].counters["dropped_partitioned"] > 0
    # no new command: the partition lapses and the next lookup merges the ring again
    h.run_until(4.0 + 60.0 + 35.0)
    for v in (d1, d2, d3):
        assert h.regular(v)[-1].members == (d1, d2, d3)


def test_ring_ids_keep_increasing_when_rings_form_within_one_wall_second() -> None:
    fast = RingTimeouts(
        token=0.02,
        hurry=0.008,
        alive=0.004,
        join=0.004,
        rep=0.01,
        seg=0.008,
        gather=0.02,
        form=0.02,
        lookup=0.3,
    )
    cfg = make_configs(["d1", "d2"], timeouts=fast)
    h = Harness(cfg, latency=0.0001, wall_offset=1_795_573_000.0)
    d1, d2 = list(cfg)
    h.start(d1, 0.0)
    h.start(d2, 0.001)
    h.run_until(0.2)
    h.crash(d2)
    h.run_until(0.4)
    h.start(d2)
    h.run_until(0.9)  # three memberships, all inside wall second ...000
    ids = [c.ring_id for c in h.regular(d1)]
    assert len(ids) >= 3
    assert all(i.time < 1_795_573_000 + 30 for i in ids)
    times = [i.time for i in ids]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times[0] > 1_795_573_000  # Last_time_used pushed them past the wall clock


def test_a_ring_member_refers_an_outside_joiner_to_its_leader() -> None:
    cfg = make_configs([["a1"], ["b1", "b2"]])
    h = Harness(cfg)
    a1, b1, b2 = list(cfg)
    h.start(a1, 0.0)
    h.start(b2, 0.05)
    h.run_until(10.0)
    assert h.regular(a1)[-1].members == (a1, b2)
    n = len(h.sent)
    h.start(b1, 10.0)
    h.run_until(20.0)
    refers = [
        (s.src, s.dst, decode(s.datagram.payload, Channel.DATA))
        for s in h.sent[n:]
        if s.datagram.port in (4803, 4813) and len(s.datagram.payload) == 40
    ]
    refers = [(src, dst, p) for src, dst, p in refers if isinstance(p, Refer)]
    assert refers, "b2 must answer b1's JOIN with a REFER"
    src, dst, p = refers[0]
    assert (src, dst) == (b2, (b1,))
    assert (p.header.memb_id.proc_id, p.header.memb_id.time) == (a1, 2)  # (leader, RING_REP)
    for v in (a1, b1, b2):
        assert h.regular(v)[-1].members == (a1, b1, b2)


def test_a_foreign_data_packet_makes_the_leader_look_for_the_other_ring_at_once() -> None:
    cfg = make_configs(["d1", "d2", "d3"])
    h = Harness(cfg)
    d1, d2, d3 = list(cfg)
    for i, v in enumerate((d1, d2, d3)):
        h.start(v, 0.1 * i)
    h.run_until(5.0)
    h.cut(d1, d3)
    h.cut(d2, d3)
    h.run_until(12.0)
    h.heal()
    lookup_due = h.engines[d1].timers.deadline("lookup")
    assert lookup_due is not None and lookup_due / 1e6 > 30.0
    h.engines[d3].set_delivery_threshold(DeliveryThreshold.ALL)
    h.submit(d3, client_message(AGREED_MESS, b"hello from the other ring"))
    h.run_until(17.0)  # long before the lookup timer
    for v in (d1, d2, d3):
        assert h.regular(v)[-1].members == (d1, d2, d3)


def test_crash_and_restart_send_the_captured_alive_and_join_packets() -> None:
    """B3: the survivor's singleton gather (SEG_REP JOINs keep rep_index 1 from its last
    FORM1), the restarted daemon's SEG_REP JOINs and the RING_REP answers, byte for byte."""
    _caps, cfgs = captured_ring()
    d1, d2 = list(cfgs)
    ip = {d1: "192.0.2.1", d2: "192.0.2.2"}
    captured: dict[int, set[bytes]] = {d1: set(), d2: set()}
    for u in read_udp(VECTORS / "B3_kill9_restart.pcap"):
        if u.dst_port == 24903 and isinstance(decode(u.payload, Channel.DATA), Alive | Join):
            captured[d1 if u.src_ip == ip[d1] else d2].add(u.payload)
    h = Harness(cfgs, wall_offset=1_795_573_237.3)
    h.start(d1, 0.0)
    h.start(d2, 0.3)
    h.run_until(5.0)
    h.crash(d2)
    n = len(h.sent)
    h.run_until(12.0)
    h.start(d2, 12.0)
    h.run_until(16.0)
    mine: dict[int, set[bytes]] = {d1: set(), d2: set()}
    for s in h.sent[n:]:
        if s.datagram.port == 24903 and isinstance(
            decode(s.datagram.payload, Channel.DATA), Alive | Join
        ):
            mine[s.src].add(s.datagram.payload)
    assert mine == captured
    assert len(captured[d1]) == 4 and len(captured[d2]) == 3


def test_partition_merge_lookup_sends_the_captured_join_packets() -> None:
    """B4: both singleton leaders' lookup JOINs (scast, RING_REP, no members) and the
    unicast JOINs of the gather that follows, byte for byte (the capture missed d2's own
    ALIVE/JOINs during the partition: its bridge port was down)."""
    _caps, cfgs = captured_ring()
    d1, d2 = list(cfgs)
    ip = {d1: "192.0.2.1", d2: "192.0.2.2"}
    captured: dict[int, set[bytes]] = {d1: set(), d2: set()}
    for u in read_udp(VECTORS / "B4_partition_merge.pcap"):
        if u.dst_port == 24903 and u.t > 30 and isinstance(decode(u.payload, Channel.DATA), Join):
            captured[d1 if u.src_ip == ip[d1] else d2].add(u.payload)
    h = Harness(cfgs, wall_offset=1_795_573_237.3)
    h.start(d1, 0.0)
    h.start(d2, 0.3)
    h.run_until(5.0)
    h.cut(d1, d2)
    h.run_until(14.5)
    h.heal()
    n = len(h.sent)
    h.run_until(50.0)
    mine: dict[int, set[bytes]] = {d1: set(), d2: set()}
    for s in h.sent[n:]:
        if s.datagram.port == 24903 and isinstance(decode(s.datagram.payload, Channel.DATA), Join):
            mine[s.src].add(s.datagram.payload)
    assert mine == captured
    for v in (d1, d2):
        assert h.regular(v)[-1].members == (d1, d2)


def test_b5_capture_replays_byte_for_byte_hurry_per_message_token_loss_and_packing() -> None:
    """B5 is the B1 cold start (its ring id from the clock) followed, from the first
    ARQ 11 hurry, by u2's and u1's JOIN, 60 AGREED messages 20 ms apart, a token lost in a
    0.1 s link outage (the leader re-sends it with RETRANS 2 three times, the queued messages
    go out packed in two packets) and u1's disconnect. Submitting the captured messages at
    the captured wake-up times reproduces all 376 datagrams."""
    _caps, cfgs = captured_ring()
    d1, d2 = list(cfgs)
    ip = {d1: "192.0.2.1", d2: "192.0.2.2"}
    b1 = list(read_udp(VECTORS / "B1_ring_cold_start.pcap"))
    groups_msg = {u.src_ip: u.payload[40:] for u in b1 if len(u.payload) == 105}
    cap = list(read_udp(VECTORS / "B5_token_loss_hurry.pcap"))

    # when each client message entered its daemon: the leader hurries its token at once
    # (RETRANS 1), a non-leader sends HURRY; messages queued behind the lost token were
    # sent by the client every 20 ms from the lost hurry on
    def decoded(u: UdpDatagram) -> object:
        return decode(u.payload, Channel.TOKEN if u.dst_port == 24904 else Channel.DATA)

    resend = next(
        u.t for u in cap if isinstance(p := decoded(u), Token) and retrans_of(p.header.type) == 2
    )
    lost_at = resend - 0.5  # Hurry timeout
    submits: list[tuple[float, int, bytes]] = []
    wake: dict[int, float | None] = {d1: None, d2: None}
    queued: list[tuple[int, bytes]] = []
    for u in cap:
        src = d1 if u.src_ip == ip[d1] else d2
        p = decoded(u)
        if isinstance(p, Hurry) or (
            isinstance(p, Token) and src == d1 and retrans_of(p.header.type) == 1
        ):
            wake[src] = u.t
        elif isinstance(p, DataPacket):
            if len(p.fragments) == 1 and wake[src] is not None:
                submits.append((wake[src], src, p.fragments[0].data))
                wake[src] = None
            else:
                queued += [(src, f.data) for f in p.fragments]
    submits += [(lost_at + 0.0201 * k, src, m) for k, (src, m) in enumerate(queued)]
    submits.sort(key=lambda s: s[0])
    assert len(submits) == 63

    h = Harness(cfgs, latency=0.00005, wall_offset=1_795_573_936.5)
    installed: list[int] = []
    h.on_action = lambda vid, a: (
        installed.append(vid) if isinstance(a, RegularConfiguration) else None
    )

    def run(end: float) -> None:
        while h.step(end):
            while installed:  # the group layer's GROUPS exchange, as in B1
                v = installed.pop(0)
                h.engines[v].use_groups_queue(True)
                h.submit(v, groups_msg[ip[v]])
        h.run_until(end)

    h.start(d1, 0.0)
    h.start(d2, 0.3)
    run(4.0)
    for v in (d1, d2):
        h.engines[v].use_groups_queue(False)  # the exchange is over
    start = h.engines[d1].timers.deadline("hurry") / 1e6  # the capture starts at this hurry
    assert h.engines[d1].token_rounds == h.engines[d2].token_rounds == 11
    n = len(h.sent)
    h.drop = lambda t, s, d, ch, data: start + lost_at - 1e-4 <= t < start + lost_at + 0.1
    for t, v, m in submits:
        run(start + t)
        h.submit(v, m)
    run(start + cap[-1].t + 0.01)
    for vid in (d1, d2):
        theirs = [u for u in cap if u.src_ip == ip[vid]]
        mine = [s for s in h.sent[n:] if s.src == vid]
        assert [s.datagram.payload for s in mine] == [u.payload for u in theirs]
        for s, u in zip(mine, theirs):
            assert s.time - start == pytest.approx(u.t, abs=0.012)
