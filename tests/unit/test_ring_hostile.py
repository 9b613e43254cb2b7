"""Ring engine input hygiene: every bad datagram is dropped and counted, never fatal."""

from __future__ import annotations

import dataclasses
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spread.ring.api import Channel, DeliveryThreshold
from spread.ring.harness import Harness, client_message, make_configs
from spread.ring.topology import (
    POTENTIAL_REP,
    RING_REP,
    SEG_REP,
    Rep,
    Topology,
    insert_rep,
)
from spread.wire.client import AGREED_MESS, RELIABLE_MESS, SAFE_MESS
from spread.wire.daemon import (
    DataPacket,
    Fragment,
    PacketHeader,
    Token,
    TokenHeader,
    arq_of,
    with_arq,
)


def ring() -> tuple[Harness, list[int]]:
    cfg = make_configs(["d1", "d2", "d3"])
    h = Harness(cfg)
    vids = list(cfg)
    for i, v in enumerate(vids):
        h.start(v, 0.1 * i)
    h.run_until(4.0)
    for v in vids:
        h.engines[v].set_delivery_threshold(DeliveryThreshold.ALL)
    return h, vids


def a_data_packet(h: Harness, src: int, dst: int, seq: int, **kw: object) -> bytes:
    eng = h.engines[dst]
    hdr = PacketHeader(
        0x8,  # AGREED_TYPE
        src,
        src,
        eng.membership_id,
        seq,
        0,
        eng.conf_hash,
    )
    hdr = dataclasses.replace(hdr, **kw)
    return DataPacket(hdr, (Fragment(-1, client_message(AGREED_MESS, b"evil")),)).encode()


def state_of(h: Harness, v: int) -> tuple:
    e = h.engines[v]
    return (e.state, e.membership_id, e.highest_seq, e.my_aru, len(e.packets))


def test_wrong_hash_unknown_sender_and_forged_source_are_dropped_and_counted() -> None:
    h, (d1, d2, _d3) = ring()
    before = state_of(h, d2)
    e = h.engines[d2]
    good = a_data_packet(h, d1, d2, 1)
    h.inject(d2, Channel.DATA, "10.0.0.1", a_data_packet(h, d1, d2, 1, conf_hash=12345))
    h.inject(d2, Channel.DATA, "10.0.0.1", a_data_packet(h, d1, d2, 1, transmiter_id=99))
    h.inject(d2, Channel.DATA, "10.9.9.9", good)  # right VID, wrong source address
    assert e.counters["dropped_conf_hash"] == 1
    assert e.counters["dropped_unknown_sender"] == 1
    assert e.counters["dropped_source_ip"] == 1
    assert state_of(h, d2) == before


def test_truncated_and_absurd_length_datagrams_are_dropped() -> None:
    h, (d1, d2, _d3) = ring()
    e = h.engines[d2]
    good = a_data_packet(h, d1, d2, 1)
    for bad in (good[:39], good[:-1], good + b"\0", b"", b"\xff" * 40):
        h.inject(d2, Channel.DATA, "10.0.0.1", bad)
        h.inject(d2, Channel.TOKEN, "10.0.0.1", bad)
    assert e.counters["dropped_malformed"] == 10
    assert e.highest_seq == 0


def test_a_packet_far_ahead_of_the_window_is_dropped_not_stored() -> None:
    h, (d1, d2, _d3) = ring()
    e = h.engines[d2]
    h.inject(d2, Channel.DATA, "10.0.0.1", a_data_packet(h, d1, d2, 1_000_000))
    assert e.counters["dropped_seq_out_of_window"] == 1
    assert e.packets == {} and e.highest_seq == 0
    # a forged token from the right predecessor far ahead is refused the same way
    pred = e.topo.predecessor(e.membership, e.me)
    last = e.last_token
    next_arq = with_arq(last.type, (arq_of(last.type) + 1) % 16)  # would be accepted
    forged = Token(
        TokenHeader(next_arq, pred, pred, e.membership_id, 999_999, 0, 0, 0, e.conf_hash)
    ).encode()
    h.inject(d2, Channel.TOKEN, e.topo.ip_of[pred], forged)
    assert e.counters["dropped_seq_out_of_window"] == 2
    assert e.highest_seq == 0
    # inside the original's 8192-slot ring but beyond Aru + MAX_SEQ_GAP + windows: a ring
    # holding it could never form again (FORM2 refuses more than 1600 holes)
    bound = 1600 + 2 * (160 + 20)
    h.inject(d2, Channel.DATA, "10.0.0.1", a_data_packet(h, d1, d2, bound + 1))
    assert e.counters["dropped_seq_out_of_window"] == 3
    h.inject(d2, Channel.DATA, "10.0.0.1", a_data_packet(h, d1, d2, bound))
    assert e.highest_seq == bound  # the bound itself is still a legal seq


def test_the_ring_keeps_working_after_garbage() -> None:
    h, vids = ring()
    for v in vids:
        for junk in (b"\x80\x00\x00\x80" * 10, bytes(range(200)), b"\x00" * 1472):
            h.inject(v, Channel.DATA, "10.0.0.1", junk)
            h.inject(v, Channel.TOKEN, "10.0.0.2", junk)
    h.submit(vids[0], client_message(AGREED_MESS, b"still here"))
    h.run_until(h.now + 1.0)
    for v in vids:
        assert [m[80:] for m in h.delivered(v)] == [b"still here"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=900),
    channel=st.sampled_from(list(Channel)),
    src=st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3", "1.2.3.4"]),
)
def test_random_datagrams_never_raise(data: bytes, channel: Channel, src: str) -> None:
    h = _FUZZ_RING
    h.inject(h_vid(), channel, src, data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    idx=st.integers(min_value=0, max_value=10_000),
    pos=st.integers(min_value=0, max_value=2000),
    byte=st.integers(min_value=0, max_value=255),
)
def test_mutated_real_ring_traffic_never_raises(idx: int, pos: int, byte: int) -> None:
    """Real datagrams with one byte changed (but a valid size and hash) are the nastiest."""
    h = _FUZZ_RING
    s = _FUZZ_SENT[idx % len(_FUZZ_SENT)]
    data = bytearray(s.datagram.payload)
    p = pos % len(data)
    if 28 <= p < 32 or 36 <= p < 40:
        p = 8  # keep the hash valid so the mutation gets past the screening
    data[p] = byte
    channel = Channel.TOKEN if s.datagram.port == 4804 else Channel.DATA
    for dst in s.dst:
        if dst in h.engines:
            h.inject(dst, channel, h.ip_of[s.src], bytes(data))
    h.run_until(h.now + 0.01)


def _fuzz_ring() -> tuple[Harness, list]:
    h, vids = ring()
    for i in range(30):
        h.submit(vids[i % 3], client_message(AGREED_MESS, b"m" * (i * 97)))
    h.run_until(h.now + 1.0)
    h.crash(vids[2])
    h.run_until(h.now + 5.0)  # membership traffic: ALIVE, JOIN, FORM1, FORM2
    return h, list(h.sent)


_FUZZ_RING, _FUZZ_SENT = _fuzz_ring()


def h_vid() -> int:
    return next(iter(_FUZZ_RING.engines))


def test_packet_store_stays_bounded_under_a_flood_of_forged_sequence_numbers() -> None:
    h, (d1, d2, _d3) = ring()
    e = h.engines[d2]
    for seq in range(1, 20_000, 3):
        h.inject(d2, Channel.DATA, "10.0.0.1", a_data_packet(h, d1, d2, seq))
    assert len(e.packets) <= 8192


# ---- rep ordering (pure) ----------------------------------------------------------------


def test_seg_reps_rank_before_ring_reps_and_insert_rep_follows_the_original_rules() -> None:
    cfg = make_configs([["a1", "a2"], ["b1", "b2"]])
    a1, _a2, b1, b2 = list(cfg)
    topo = Topology(cfg[a1])
    reps = [Rep(a1, RING_REP, 0), Rep(b2, SEG_REP, 1), Rep(b1, RING_REP, 1)]
    assert reps[topo.smallest_rep_index(reps)].vid == b2
    assert [r.vid for r in topo.sort_reps(reps)] == [b2, a1, b1]
    lst: list[Rep] = [Rep(b1, POTENTIAL_REP, 1)]
    assert not insert_rep(topo, lst, Rep(b2, POTENTIAL_REP, 1))  # segment already has one
    assert insert_rep(topo, lst, Rep(b2, SEG_REP, 1))  # replaces the POTENTIAL
    assert lst == [Rep(b2, SEG_REP, 1)]
    assert insert_rep(topo, lst, Rep(b2, RING_REP, 1))  # same VID: SEG becomes RING
    assert lst == [Rep(b2, RING_REP, 1)]
    assert not insert_rep(topo, lst, Rep(b2, RING_REP, 1))
    assert not insert_rep(topo, lst, Rep(12345, SEG_REP, 0))  # unknown VID refused


def test_corrupted_live_traffic_in_every_state_never_raises_and_the_ring_reforms() -> None:
    """5 % of datagrams get 1-4 random bytes changed (hash kept valid, so they pass the
    screening) while daemons crash, restart and send: every state sees corrupt input."""
    rnd = random.Random(4)
    cfg = make_configs([["a", "b"], ["c", "d"]])
    h = Harness(cfg, latency=0.0002)
    vids = list(cfg)

    def corrupt(t: float, src: int, dst: int, ch: Channel, data: bytes) -> bool:
        if rnd.random() < 0.05:
            b = bytearray(data)
            for _ in range(rnd.randint(1, 4)):
                p = rnd.randrange(len(b))
                if not (28 <= p < 32 or 36 <= p < 40):
                    b[p] = rnd.randrange(256)
            h.send_at(t + 0.0002, dst, ch, src, bytes(b))
            return True
        return rnd.random() < 0.02

    h.drop = corrupt
    for v in vids:
        h.start(v, rnd.random())
    t = 0.0
    while t < 30.0:
        t += rnd.expovariate(30)
        h.run_until(t)
        r = rnd.random()
        if r < 0.004:
            h.crash(rnd.choice(vids))
        elif r < 0.008:
            for v in vids:
                if v not in h.engines:
                    h.start(v)
        elif h.engines:
            v = rnd.choice(list(h.engines))
            service = rnd.choice([AGREED_MESS, SAFE_MESS, RELIABLE_MESS])
            h.submit(v, client_message(service, b"x" * rnd.choice([5, 900, 3000])))
    h.drop = None
    for v in vids:
        if v not in h.engines:
            h.start(v)
    h.run_until(t + 50.0)
    assert len({h.engines[v].membership_id for v in vids}) == 1
    assert h.engines[vids[0]].membership == tuple(vids)
    assert sum(h.engines[v].counters["dropped"] for v in vids) > 0
