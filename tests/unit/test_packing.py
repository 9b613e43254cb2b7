"""Fragmentation, packing and reassembly against the captured ring and Hypothesis round trips."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spread.ring.api import Channel, RingId
from spread.wire import client as cw
from spread.wire import daemon as d
from spread.wire import packing as pk
from tests.support_pcap import read_udp

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
B2 = VECTORS / "daemon" / "B2_agreed_safe_traffic.pcap"
B5 = VECTORS / "daemon" / "B5_token_loss_hurry.pcap"
CAPTURES = [
    *sorted((VECTORS / "daemon").glob("B*.pcap")),
    VECTORS / "wackamole" / "D_spread_traffic.pcap",
]
DATA_PORT = {"D_spread_traffic.pcap": 4805}
RING = RingId(1, 1000)


def message(service: int, payload: bytes = b"", groups: tuple[str, ...] = ("grp",)) -> bytes:
    """A client-level message as a little-endian daemon builds it."""
    head = struct.pack(
        "<I32siIi", service | 0x80000080, b"#u#d1", len(groups), 0x80000080, len(payload)
    )
    return head + b"".join(g.encode().ljust(32, b"\0") for g in groups) + payload


def drain(packer: pk.Packer) -> list[pk.PacketBody]:
    out = []
    while (body := packer.next_body()) is not None:
        out.append(body)
    return out


def as_packets(bodies: list[pk.PacketBody], origin: int = 7, first_seq: int = 1) -> list:
    """Through the real codec: encode each packet and decode it again."""
    out = []
    for i, body in enumerate(bodies):
        pkt = body.packet(
            proc_id=origin, memb_id=RING, seq=first_seq + i, token_round=1, conf_hash=5
        )
        out.append(d.decode(pkt.encode(), Channel.DATA))
    return out


def delivered(reassembler: pk.Reassembler, packets: list) -> list[bytes]:
    return [m.message for p in packets for m in reassembler.push(p)]


# ---- the captured ring -------------------------------------------------------------------------


def captured_data_packets(path: Path) -> list[d.DataPacket]:
    """Each data packet once (retransmissions and routed copies removed), in ring/seq order."""
    seen: dict[tuple[RingId, int], d.DataPacket] = {}
    rings: list[RingId] = []
    for u in read_udp(path):
        if u.dst_port != DATA_PORT.get(path.name, 24903):
            continue
        pkt = d.decode(u.payload, Channel.DATA)
        if isinstance(pkt, d.DataPacket):
            key = (pkt.header.memb_id, pkt.header.seq)
            seen.setdefault(key, pkt)
            if pkt.header.memb_id not in rings:
                rings.append(pkt.header.memb_id)
    return sorted(seen.values(), key=lambda p: (rings.index(p.header.memb_id), p.header.seq))


def test_captured_multi_fragment_messages_reassemble_to_their_declared_sizes() -> None:
    packets = captured_data_packets(B2)
    r = pk.Reassembler()
    msgs = [m for p in packets for m in r.push(p)]
    sizes = []
    for m in msgs:
        num_groups, data_len = (
            struct.unpack_from("<i", m.message, 36)[0],
            struct.unpack_from("<i", m.message, 44)[0],
        )
        assert len(m.message) == 48 + 32 * num_groups + data_len
        assert m.service == pk.message_service(m.message)
        sizes.append(data_len)
    assert 2000 in sizes and 3000 in sizes  # SAFE 2000 (1, -2) and AGREED 3000 (1, 2, -3)
    assert r.dropped == 0


def _starts(packet: d.DataPacket) -> int:
    """How many messages begin in this packet (its first fragment may end an older one)."""
    return (packet.fragments[0].index in (1, -1)) + len(packet.fragments) - 1


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_repacking_captured_messages_gives_the_captured_packets(path: Path) -> None:
    """Per sender and token visit (same token_round), the messages that began in that visit,
    queued together, pack into exactly the packets the C daemon sent."""
    packets = captured_data_packets(path)
    r = pk.Reassembler()
    msgs = {origin: [] for origin in {p.header.proc_id for p in packets}}
    ring = None
    for p in packets:
        if p.header.memb_id != ring:
            ring = p.header.memb_id
            r.drop_partial()
        msgs[p.header.proc_id] += [m.message for m in r.push(p)]
    assert r.dropped == 0
    for origin, queue in msgs.items():
        mine = [p for p in packets if p.header.proc_id == origin]
        visits: dict[tuple[RingId, int], list[d.DataPacket]] = {}
        for p in mine:
            visits.setdefault((p.header.memb_id, p.header.token_round), []).append(p)
        packer = pk.Packer()
        for group in visits.values():
            for _ in range(sum(_starts(p) for p in group)):
                packer.submit(queue.pop(0))
            bodies = [packer.next_body() for _ in group]
            assert [(b.type, b.fragments) for b in bodies if b] == [
                (p.header.type, p.fragments) for p in group
            ]
        assert not queue and not packer.pending()


def test_captures_hold_multi_fragment_and_packed_packets() -> None:
    b2 = [p.fragments[0].index for p in captured_data_packets(B2) if p.fragments[0].index != -1]
    assert b2 == [1, -2, 1, 2, -3]
    packed = [len(p.fragments) for p in captured_data_packets(B5) if len(p.fragments) > 1]
    assert packed == [15, 10]  # 25 queued 88-byte messages: a 16th does not fit in 1432


# ---- packet type and fragmentation rules ------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "ptype"),
    [
        (cw.UNRELIABLE_MESS, d.RELIABLE_TYPE),
        (cw.RELIABLE_MESS, d.RELIABLE_TYPE),
        (cw.FIFO_MESS, d.FIFO_TYPE),
        (cw.CAUSAL_MESS, d.AGREED_TYPE),
        (cw.AGREED_MESS, d.AGREED_TYPE),
        (cw.SAFE_MESS, d.SAFE_TYPE),
        (cw.JOIN_MESS, d.AGREED_TYPE),
        (cw.LEAVE_MESS, d.AGREED_TYPE),
        (cw.KILL_MESS, d.AGREED_TYPE),
        (cw.KILL_MESS | cw.SAFE_MESS, d.SAFE_TYPE),
        (cw.GROUPS_MESS | cw.RELIABLE_MESS, d.RELIABLE_TYPE),
        (cw.GROUPS_MESS | cw.AGREED_MESS, d.AGREED_TYPE),
        (cw.RELIABLE_MESS | cw.SAFE_MESS, d.RELIABLE_TYPE),
    ],
)
def test_packet_type_comes_from_the_first_matching_service_bit(service: int, ptype: int) -> None:
    packer = pk.Packer()
    packer.submit(message(service))
    assert drain(packer)[0].type == ptype


def test_messages_without_a_legal_service_or_too_big_are_refused() -> None:
    packer = pk.Packer()
    with pytest.raises(ValueError):
        packer.submit(message(cw.GROUPS_MESS))
    with pytest.raises(ValueError):
        packer.submit(b"\x80\x00\x00\x80")
    with pytest.raises(ValueError):
        packer.submit(message(cw.AGREED_MESS, b"x" * (pk.MAX_MESSAGE - 48 - 32 + 1)))
    packer.submit(message(cw.AGREED_MESS, b"x" * (pk.MAX_MESSAGE - 48 - 32)))
    frags = [f for b in drain(packer) for f in b.fragments]
    assert [f.index for f in frags] == [*range(1, 100), -100]


def test_fragment_indexes_count_up_and_the_last_is_minus_n() -> None:
    packer = pk.Packer()
    packer.submit(message(cw.AGREED_MESS, b"a" * 3000))
    bodies = drain(packer)
    assert [[(f.index, len(f.data)) for f in b.fragments] for b in bodies] == [
        [(1, 1432)],
        [(2, 1432)],
        [(-3, 216)],
    ]


def test_whole_small_messages_are_packed_after_a_last_fragment_with_padding() -> None:
    packer = pk.Packer()
    packer.submit(message(cw.AGREED_MESS, b"a" * 1500))  # fragments 1432 + 148
    packer.submit(message(cw.FIFO_MESS, b"b" * 1))  # 81 bytes: FIFO may join AGREED
    packer.submit(message(cw.AGREED_MESS, b"c" * 2))  # 82 bytes
    bodies = drain(packer)
    assert [[(f.index, len(f.data)) for f in b.fragments] for b in bodies] == [
        [(1, 1432)],
        [(-2, 148), (-1, 81), (-1, 82)],
    ]
    raw = bodies[1].packet(proc_id=1, memb_id=RING, seq=2, token_round=0, conf_hash=0).encode()
    assert len(raw) - 40 == 148 + 0 + 4 + 81 + 3 + 4 + 82


@pytest.mark.parametrize(
    ("first", "second", "packed"),
    [
        (cw.AGREED_MESS, cw.AGREED_MESS, True),
        (cw.FIFO_MESS, cw.AGREED_MESS, True),
        (cw.AGREED_MESS, cw.FIFO_MESS, True),
        (cw.RELIABLE_MESS, cw.RELIABLE_MESS, True),
        (cw.SAFE_MESS, cw.SAFE_MESS, True),
        (cw.AGREED_MESS, cw.SAFE_MESS, False),
        (cw.SAFE_MESS, cw.AGREED_MESS, False),
        (cw.RELIABLE_MESS, cw.FIFO_MESS, False),
        (cw.FIFO_MESS, cw.RELIABLE_MESS, False),
    ],
)
def test_only_same_type_or_fifo_with_agreed_share_a_packet(
    first: int, second: int, packed: bool
) -> None:
    packer = pk.Packer()
    packer.submit(message(first))
    packer.submit(message(second))
    assert len(drain(packer)) == (1 if packed else 2)


def test_a_packed_message_must_fit_with_its_pad_and_fragment_header() -> None:
    first = message(cw.AGREED_MESS, b"x" * 1)  # 81 bytes -> pad 3 -> 84 + 4 header
    room = d.PACKET_BODY - 84 - 4
    fits = message(cw.AGREED_MESS, b"y" * (room - 80))
    too_big = message(cw.AGREED_MESS, b"y" * (room - 80 + 1))
    packer = pk.Packer()
    packer.submit(first)
    packer.submit(fits)
    bodies = drain(packer)
    assert (
        len(bodies) == 1
        and bodies[0].packet(proc_id=1, memb_id=RING, seq=1, token_round=0, conf_hash=0).data_len
        == d.PACKET_BODY
    )
    packer.submit(first)
    packer.submit(too_big)
    assert len(drain(packer)) == 2


# ---- queues -------------------------------------------------------------------------------


def test_groups_queue_sends_while_client_messages_wait() -> None:
    packer = pk.Packer()
    client_msg = message(cw.AGREED_MESS, b"client")
    groups_msg = message(cw.GROUPS_MESS | cw.AGREED_MESS, b"state", groups=())
    packer.use_groups_queue(True)
    packer.submit(client_msg, groups=False)
    packer.submit(groups_msg)  # the active queue, as the original does
    assert packer.queued(groups=False) == 1 and len(packer) == 1
    sent = delivered(pk.Reassembler(), as_packets(drain(packer)))
    assert sent == [groups_msg]
    assert not packer.pending()
    packer.use_groups_queue(False)
    assert delivered(pk.Reassembler(), as_packets(drain(packer))) == [client_msg]


def test_partially_sent_message_restarts_from_fragment_one_on_a_new_ring() -> None:
    packer = pk.Packer()
    big = message(cw.SAFE_MESS, b"z" * 4000)
    packer.submit(big)
    first = packer.next_body()
    assert first is not None and first.fragments[0].index == 1
    assert packer.partially_sent()
    r = pk.Reassembler()
    assert delivered(r, as_packets([first])) == []
    # ring change: receivers forget partial messages, the sender starts the message again
    r.drop_partial()
    packer.restart_partial()
    bodies = drain(packer)
    assert [b.fragments[0].index for b in bodies] == [1, 2, -3]
    assert delivered(r, as_packets(bodies)) == [big]
    assert r.dropped == 0


# ---- reassembly robustness ----------------------------------------------------------------------


def test_out_of_order_fragments_are_dropped_and_counted_not_fatal() -> None:
    packer = pk.Packer()
    big = message(cw.AGREED_MESS, b"q" * 3000)
    packer.submit(big)
    p1, p2, p3 = as_packets(drain(packer))
    r = pk.Reassembler()
    assert r.push(p2) == []  # fragment 2 with nothing before it
    assert r.dropped == 1
    assert r.push(p1) == [] and r.push(p3) == []  # 1 then -3: 2 is missing
    assert r.dropped == 2 and not r.has_partial(7)
    assert delivered(r, [p1, p2, p3]) == [big]


def test_a_new_message_start_discards_a_broken_partial_one() -> None:
    packer = pk.Packer()
    big = message(cw.AGREED_MESS, b"q" * 2000)
    small = message(cw.AGREED_MESS, b"s")
    packer.submit(big)
    a1, _a2 = as_packets(drain(packer))
    packer.submit(small)
    (s,) = as_packets(drain(packer))
    r = pk.Reassembler()
    assert r.push(a1) == []
    assert [m.message for m in r.push(s)] == [small]
    assert r.dropped == 1 and not r.has_partial(7)


def test_reliable_single_packet_message_overtakes_a_partial_message() -> None:
    packer = pk.Packer()
    big = message(cw.AGREED_MESS, b"q" * 2000)
    rel = message(cw.RELIABLE_MESS, b"r")
    packer.submit(big)
    a1, a2 = as_packets(drain(packer))
    packer.submit(rel)
    (rp,) = as_packets(drain(packer))
    r = pk.Reassembler()
    assert r.push(a1) == []
    assert [m.message for m in r.push(rp)] == [rel]
    assert [m.message for m in r.push(a2)] == [big]
    assert r.dropped == 0


def test_partial_messages_are_bounded_by_originator_count() -> None:
    r = pk.Reassembler(max_originators=2)
    frag = d.Fragment(1, b"x" * 10)
    for origin in (1, 2, 3):
        header = d.PacketHeader(d.AGREED_TYPE, origin, origin, RING, origin)
        r.push(d.DataPacket(header, (frag,)))
    assert r.has_partial(1) and r.has_partial(2) and not r.has_partial(3)
    assert r.dropped == 1


# ---- Hypothesis round trips ---------------------------------------------------------------------

SERVICES = [
    cw.UNRELIABLE_MESS,
    cw.RELIABLE_MESS,
    cw.FIFO_MESS,
    cw.CAUSAL_MESS,
    cw.AGREED_MESS,
    cw.SAFE_MESS,
    cw.JOIN_MESS,
    cw.KILL_MESS | cw.SAFE_MESS,
]
sizes = st.one_of(st.integers(0, 200), st.integers(0, 3000), st.integers(0, 20000))
messages = st.lists(
    st.builds(
        lambda svc, n, g: message(svc, bytes([n % 251]) * n, ("g",) * g),
        st.sampled_from(SERVICES),
        sizes,
        st.integers(0, 3),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(messages)
def test_any_message_list_packs_and_reassembles_to_the_same_list(msgs: list[bytes]) -> None:
    packer = pk.Packer()
    for m in msgs:
        packer.submit(m)
    bodies = drain(packer)
    for b in bodies:
        assert all(f.index == -1 for f in b.fragments[1:])
        raw_len = len(b.packet(proc_id=7, memb_id=RING, seq=1, token_round=0, conf_hash=0).encode())
        assert raw_len <= d.MAX_PACKET
    r = pk.Reassembler()
    assert delivered(r, as_packets(bodies)) == msgs
    assert r.dropped == 0


@settings(max_examples=100, deadline=None)
@given(messages, messages, st.randoms(use_true_random=False))
def test_interleaved_originators_each_get_their_messages_in_order(
    a: list[bytes], b: list[bytes], rnd
) -> None:
    pa, pb = pk.Packer(), pk.Packer()
    for m in a:
        pa.submit(m)
    for m in b:
        pb.submit(m)
    qa, qb = as_packets(drain(pa), origin=1), as_packets(drain(pb), origin=2)
    merged = []
    while qa or qb:
        src = qa if qa and (not qb or rnd.random() < 0.5) else qb
        merged.append(src.pop(0))
    r = pk.Reassembler()
    out = [m for p in merged for m in r.push(p)]
    assert [m.message for m in out if m.origin_vid == 1] == a
    assert [m.message for m in out if m.origin_vid == 2] == b


@settings(max_examples=100, deadline=None)
@given(messages, st.lists(st.integers(0, 3), max_size=60))
def test_sending_while_messages_keep_arriving_still_delivers_each_once_in_order(
    msgs: list[bytes], takes: list[int]
) -> None:
    packer = pk.Packer()
    bodies: list[pk.PacketBody] = []
    pending = list(msgs)
    for n in takes:  # alternate: one message arrives, then up to n packets are sent
        if pending:
            packer.submit(pending.pop(0))
        for _ in range(n):
            if (body := packer.next_body()) is not None:
                bodies.append(body)
    for m in pending:
        packer.submit(m)
    bodies += drain(packer)
    assert delivered(pk.Reassembler(), as_packets(bodies)) == msgs
