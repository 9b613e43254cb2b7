"""Daemon-to-daemon codecs against the packets captured from a ring of C 5.0.1 daemons."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spread.ring.api import Channel, RingId
from spread.wire import daemon as d
from tests.support_pcap import read_udp

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
CAPTURES = [
    *sorted((VECTORS / "daemon").glob("B*.pcap")),
    VECTORS / "wackamole" / "D_spread_traffic.pcap",
]
DATA_PORT = {"D_spread_traffic.pcap": 4805}  # the B captures use 24903
REP_TYPES = {"POTENTIAL": d.POTENTIAL_REP, "SEG_REP": d.SEG_REP, "RING_REP": d.RING_REP}


@cache
def captured(path: Path) -> list[tuple[Channel, bytes]]:
    port = DATA_PORT.get(path.name, 24903)
    out = []
    for u in read_udp(path):
        assert u.dst_port in (port, port + 1), f"{path.name} frame {u.index}: port {u.dst_port}"
        out.append((Channel.TOKEN if u.dst_port == port + 1 else Channel.DATA, u.payload))
    return out


def all_captured() -> list[tuple[Channel, bytes]]:
    return [item for path in CAPTURES for item in captured(path)]


def samples() -> list[tuple[str, dict]]:
    data = json.loads((VECTORS / "daemon" / "B_decoded_packets.json").read_text())
    return [(kind, s) for kind, lst in data["samples"].items() for s in lst]


# ---- captures: decode and re-encode byte for byte ------------------------------------------


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_every_captured_datagram_reencodes_to_identical_bytes(path: Path) -> None:
    items = captured(path)
    assert items, "capture holds no UDP datagrams"
    for channel, payload in items:
        packet = d.decode(payload, channel)
        assert d.encode(packet) == payload


def test_captures_cover_every_kind_the_readme_lists() -> None:
    kinds = {type(d.decode(p, ch)).__name__ for ch, p in all_captured()}
    assert {"Alive", "Join", "Hurry", "DataPacket", "Token", "Form1", "Form2"} <= kinds


def test_decoded_headers_and_bodies_equal_reference_decoding() -> None:
    checked = 0
    for kind, sample in samples():
        raw = bytes.fromhex(sample["hex"])
        token = sample["channel"].startswith("token")
        packet = d.decode(raw, Channel.TOKEN if token else Channel.DATA)
        hdr = sample["header"]
        h = packet.header
        assert (h.type | 0x80000080) == int(hdr["type"], 16), kind
        assert h.transmiter_id == hdr["transmiter_id"]
        assert h.proc_id == hdr["proc_id"]
        assert [h.memb_id.proc_id, h.memb_id.time] == hdr["memb_id"]
        assert h.seq == hdr["seq"]
        assert h.conf_hash == hdr["conf_hash"]
        if token:
            assert isinstance(packet, d.Token | d.Form1 | d.Form2)
            assert (h.aru, h.aru_last_id, h.flow_control) == (
                hdr["aru"],
                hdr["aru_last_id"],
                hdr["flow_control"],
            )
            assert len(raw) - d.HEADER_SIZE == hdr["rtr_len"]
            if "ARQ=" in hdr["type_names"]:
                arq, retrans = (int(x.split("=")[1]) for x in hdr["type_names"].split("|"))
                assert (h.arq, h.retrans) == (arq, retrans)
        else:
            assert h.token_round == hdr["token_round"]
            assert h.padding == bytes.fromhex(hdr["padding_raw"])
            assert len(raw) - d.HEADER_SIZE == hdr["data_len"]
        _check_body(kind, packet, sample)
        checked += 1
    assert checked >= 20


def _check_body(kind: str, packet: d.Decoded, sample: dict) -> None:
    body = sample.get("body")
    if isinstance(packet, d.Alive):
        assert list(packet.members or ()) == body["members"]["members"]
    elif isinstance(packet, d.Join):
        assert list(packet.members) == body["members"]["members"]
        assert packet.num_pending == body["members"]["num_pending"]
        _check_reps(packet.reps, packet.rep_index, body["reps"])
    elif isinstance(packet, d.Form1 | d.Form2):
        mi = body["members_info"]
        assert packet.members.num_members == mi["num_members"]
        assert packet.members.num_pending == mi["num_pending"]
        assert list(packet.members.members) == mi["members"]
        if isinstance(packet, d.Form1):
            _check_reps(packet.reps.reps, packet.reps.rep_index, body["reps_info"])
        else:
            slot = body["new_ring_id_slot"]
            assert packet.new_ring_id == RingId(slot[0] & 0xFFFFFFFF, slot[1])
        rl = body["ring_list"]
        assert len(packet.rings) == rl["num_rings"]
        for ring, ref in zip(packet.rings, rl["rings"]):
            assert [ring.memb_id.proc_id, ring.memb_id.time] == ref["memb_id"]
            assert (ring.trans_time, ring.aru, ring.highest_seq) == (
                ref["trans_time"],
                ref["aru"],
                ref["highest_seq"],
            )
            assert (len(ring.holes), len(ring.ids), ring.num_trans) == (
                ref["num_holes"],
                ref["num_commit"],
                ref["num_trans"],
            )
            assert (list(ring.holes), list(ring.ids)) == (ref["holes"], ref["ids"])
    elif isinstance(packet, d.DataPacket):
        frags = sample["fragments"]
        assert [(f.index, len(f.data)) for f in packet.fragments] == [
            (f["fragment_index"], f["fragment_len"]) for f in frags
        ]
        assert (packet.fragments[0].index, len(packet.fragments[0].data)) == (
            sample["header"]["fragment_index"],
            sample["header"]["fragment_len"],
        )
        for frag, ref in zip(packet.fragments, frags):
            if "message_header" in ref:  # the carried client message starts in fragment 1
                assert struct.unpack_from("<I", frag.data)[0] == ref["message_header"]["type"]
            if "payload_hex" in ref:
                assert frag.data.endswith(bytes.fromhex(ref["payload_hex"]))
    elif isinstance(packet, d.Hurry | d.Refer | d.Token):
        assert body is None or body == {}, kind


def _check_reps(reps: tuple[d.RepInfo, ...], rep_index: int, ref: dict) -> None:
    assert rep_index == ref["rep_index"]
    assert [(r.proc_id, r.type, r.seg_index) for r in reps] == [
        (x["proc_id"], REP_TYPES[x["type"]], x["seg_index"]) for x in ref["reps"]
    ]


def test_reference_alive_bytes_from_section_13_decode() -> None:
    raw = bytes.fromhex(
        "80010080 9ed1ca03 9ed1ca03 00000000 00000000 00000000 00000000 f42351b7"
        " 0800 0000 00000000 01000000 9ed1ca03".replace(" ", "")
    )
    packet = d.decode(raw, Channel.DATA)
    assert isinstance(packet, d.Alive)
    assert packet.members == (0x03CAD19E,)
    assert packet.header.conf_hash == 0xB75123F4


# ---- byte order: a big-endian sender --------------------------------------------------------


def _to_big_endian_token(raw: bytes) -> bytes:
    """Re-encode a captured little-endian regular token as a big-endian C daemon would."""
    vals = struct.unpack_from("<IIIIiiiIhHI", raw)
    t = vals[0] & ~0x80000080
    return struct.pack(">IIIIiiiIhHI", t, *vals[1:]) + raw[40:]


def test_big_endian_token_decodes_to_same_values_and_encodes_little_endian() -> None:
    raw = next(p for ch, p in all_captured() if ch == Channel.TOKEN and len(p) == 40 and p[2] != 0)
    be = _to_big_endian_token(raw)
    assert d.is_big_endian_sender(be)
    assert d.decode(be, Channel.TOKEN) == d.decode(raw, Channel.TOKEN)
    assert d.encode(d.decode(be, Channel.TOKEN)) == raw


def test_big_endian_data_packet_swaps_fragment_headers_but_not_payload_or_padding() -> None:
    header = d.PacketHeader(d.AGREED_TYPE, 7, 7, RingId(7, 100), 5, 2, 99, b"\x12\x34")
    frags = (d.Fragment(-1, b"abc"), d.Fragment(-1, b"defgh"))
    le = d.DataPacket(header, frags).encode()
    # build the big-endian twin by hand: header fields swapped except padding
    be = struct.pack(">IIIIiiiIH", d.AGREED_TYPE, 7, 7, 7, 100, 5, 2, 99, len(le) - 40)
    be += b"\x12\x34" + struct.pack(">hh", -1, 3) + b"abc" + b"\x00"
    be += struct.pack(">hh", -1, 5) + b"defgh"
    assert len(be) == len(le)
    assert d.decode(be, Channel.DATA) == d.DataPacket(header, frags)


# ---- structures the captures do not contain --------------------------------------------------


def test_packed_data_packet_pads_each_extra_fragment_to_four_bytes() -> None:
    header = d.PacketHeader(d.FIFO_TYPE, 1, 1, RingId(1, 2), 3)
    frags = (d.Fragment(-1, b"x" * 49), d.Fragment(-1, b"y" * 50), d.Fragment(-1, b"z"))
    raw = d.DataPacket(header, frags).encode()
    # 49 + pad 3 + 4 + 50 + pad 2 + 4 + 1
    assert len(raw) - 40 == 113 == d.data_len_of(frags)
    assert raw[40 + 49 : 40 + 52] == b"\x00\x00\x00"
    assert d.decode(raw, Channel.DATA) == d.DataPacket(header, frags)


def test_token_with_retransmission_requests_round_trips() -> None:
    header = d.TokenHeader(d.with_retrans(d.with_arq(0, 3), 1), 5, 5, RingId(5, 9), 40, 30, 5, 4)
    rtr = (
        d.RtrRequest(RingId(5, 9), 0xFFFFFFFF, -1, (31, 32, 35)),
        d.RtrRequest(RingId(4, 8), 6, 0, ()),
    )
    raw = d.Token(header, rtr).encode()
    assert len(raw) == 40 + 16 + 12 + 16
    back = d.decode(raw, Channel.TOKEN)
    assert back == d.Token(header, rtr)
    assert (back.header.arq, back.header.retrans) == (3, 1)


def test_refer_carries_the_referred_rep_in_memb_id() -> None:
    header = d.PacketHeader(d.REFER_TYPE, 5, 5, RingId(77, d.RING_REP))
    packet = d.decode(d.Refer(header).encode(), Channel.DATA)
    assert isinstance(packet, d.Refer)
    assert (packet.referred.proc_id, packet.referred.type) == (77, d.RING_REP)


def test_monitor_packets_round_trip() -> None:
    status = d.Status(*range(1, 28))
    reply = d.StatusReply(d.PacketHeader(d.STATUS_TYPE, 0, 9), status)
    raw = reply.encode()
    assert len(raw) == 40 + 96
    assert d.decode(raw, Channel.DATA) == reply
    req = d.decode(
        d.StatusRequest(d.PacketHeader(d.STATUS_TYPE, 9, 9, seq=6543)).encode(), Channel.DATA
    )
    assert isinstance(req, d.StatusRequest) and req.reply_port == 6543
    part = d.Partition(d.PacketHeader(d.PARTITION_TYPE, 9, 9), tuple([0, 1, -1] + [0] * 125))
    assert d.decode(part.encode(), Channel.DATA) == part
    assert len(part.encode()) == 40 + 256
    fc = d.FlowControlCmd(d.PacketHeader(d.FC_TYPE, 9, 9), ((20, 15), (-1, -1), (160, -1)))
    assert d.decode(fc.encode(), Channel.DATA) == fc
    reload = d.Reload(d.PacketHeader(d.RELOAD_TYPE, 9, 9))
    assert d.decode(reload.encode(), Channel.DATA) == reload


def test_port_p_datagrams_beyond_1472_bytes_are_refused_like_the_truncating_original() -> None:
    header = d.PacketHeader(d.AGREED_TYPE, 1, 1, RingId(1, 1), 1)
    ok = d.DataPacket(header, (d.Fragment(-1, b"x" * d.PACKET_BODY),)).encode()
    assert len(ok) == d.MAX_PACKET
    assert isinstance(d.decode(ok, Channel.DATA), d.DataPacket)
    big = d.DataPacket(header, (d.Fragment(-1, b"x" * (d.PACKET_BODY + 1)),)).encode()
    with pytest.raises(d.PacketError):
        d.decode(big, Channel.DATA)


def test_alive_with_garbage_body_is_accepted_because_receivers_ignore_it() -> None:
    raw = d.Alive(d.PacketHeader(d.ALIVE_TYPE, 3, 3), None, b"\xff\xff").encode()
    packet = d.decode(raw, Channel.DATA)
    assert isinstance(packet, d.Alive) and packet.members is None
    assert d.encode(packet) == raw


# ---- screening and raw patches ----------------------------------------------------------------


def test_screen_sender_drops_wrong_hash_unknown_transmitter_and_wrong_source_ip() -> None:
    ips = {10: "192.0.2.1", 11: "192.0.2.2"}
    ok = d.screen_sender(10, 55, "192.0.2.1", my_conf_hash=55, ip_of_vid=ips)
    assert ok is None
    hash_bad = d.screen_sender(10, 56, "192.0.2.1", my_conf_hash=55, ip_of_vid=ips)
    assert hash_bad and "different spread configuration" in hash_bad
    unknown = d.screen_sender(12, 55, "192.0.2.1", my_conf_hash=55, ip_of_vid=ips)
    assert unknown and "not in my configuration" in unknown
    spoofed = d.screen_sender(11, 55, "192.0.2.1", my_conf_hash=55, ip_of_vid=ips)
    assert spoofed and "src_addr doesn't match" in spoofed


def test_own_looped_copies_are_recognised_but_control_packets_are_not() -> None:
    assert d.is_own_copy(d.AGREED_TYPE, 4, 4)
    assert not d.is_own_copy(d.STATUS_TYPE, 4, 4)
    assert not d.is_own_copy(d.AGREED_TYPE, 5, 4)


def test_peek_sender_reads_conf_hash_from_each_header_layout() -> None:
    for channel, raw in all_captured()[:80]:
        packet = d.decode(raw, channel)
        assert d.peek_sender(raw, channel) == (
            packet.header.type,
            packet.header.transmiter_id,
            packet.header.conf_hash,
        )
    assert d.peek_sender(b"\x00" * 39, Channel.DATA) is None


def test_rebroadcast_clears_routed_and_restamps_in_the_senders_byte_order() -> None:
    routed = d.AGREED_TYPE | d.ROUTED_TYPE
    le = d.DataPacket(d.PacketHeader(routed, 1, 1, RingId(1, 1), 4), (d.Fragment(-1, b"m"),))
    out = d.decode(d.rebroadcast_routed(le.encode(), 2), Channel.DATA)
    assert out.header.type == d.AGREED_TYPE and out.header.transmiter_id == 2
    be = bytearray(struct.pack(">IIIIiiiIH2shh", routed, 1, 1, 1, 1, 4, 0, 0, 1, b"\0\0", -1, 1))
    be += b"m"
    out_be = d.rebroadcast_routed(bytes(be), 2)
    assert struct.unpack_from(">II", out_be) == (d.AGREED_TYPE, 2)
    assert out_be[8:] == bytes(be[8:])


def test_restamp_rewrites_only_the_transmitter() -> None:
    _ch, raw = next(item for item in all_captured() if item[0] == Channel.DATA)
    out = d.restamp(raw, 0xDEADBEEF)
    assert d.decode(out, Channel.DATA).header.transmiter_id == 0xDEADBEEF
    assert out[:4] == raw[:4] and out[8:] == raw[8:]


# ---- hostile input: only PacketError, never anything else -----------------------------------


def _only_packet_error(raw: bytes, channel: Channel) -> None:
    try:
        packet = d.decode(raw, channel)
    except d.PacketError:
        return
    assert d.decode(d.encode(packet), channel) == packet


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from(list(Channel)))
def test_random_datagrams_only_raise_packet_error(raw: bytes, channel: Channel) -> None:
    _only_packet_error(raw, channel)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_captured_datagrams_only_raise_packet_error(data: st.DataObject) -> None:
    items = all_captured()
    channel, raw = items[data.draw(st.integers(0, len(items) - 1))]
    buf = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    if data.draw(st.booleans()):
        buf = buf[:cut]
    _only_packet_error(bytes(buf), channel)


@given(st.integers(0, 0xFFFF), st.integers(-0x8000, 0x7FFF), st.integers(-0x8000, 0x7FFF))
def test_absurd_lengths_and_counts_are_refused_without_allocating(
    data_len: int, count_a: int, count_b: int
) -> None:
    header = struct.pack("<IIIIiiiIH2shh", 0x80000208, 1, 1, 0, 0, 0, 0, 0, data_len, b"\0\0", 0, 0)
    body = struct.pack("<hh", count_a, count_b)
    for channel in Channel:
        _only_packet_error(header + body, channel)


def _be_members_info(m: d.MembersInfo) -> bytes:
    n = len(m.members)
    raw = struct.pack(f">hh{n}I", m.num_members, n - m.num_members, *m.members)
    return raw.ljust(d.MEMBERS_INFO_SIZE, b"\xee")


def _be_rings(rings: tuple[d.RingInfo, ...]) -> bytes:
    out = struct.pack(">i", len(rings))
    for r in rings:
        out += struct.pack(
            ">Iiiiiihh",
            r.memb_id.proc_id,
            r.memb_id.time,
            r.trans_time,
            r.aru,
            r.highest_seq,
            len(r.holes),
            len(r.ids),
            r.num_trans,
        )
        out += struct.pack(f">{len(r.holes)}i{len(r.ids)}I", *r.holes, *r.ids)
    return out


def _be_token_header(h: d.TokenHeader, rtr_len: int) -> bytes:
    return struct.pack(
        ">IIIIiiiIhHI",
        h.type,
        h.transmiter_id,
        h.proc_id,
        h.memb_id.proc_id,
        h.memb_id.time,
        h.seq,
        h.aru,
        h.aru_last_id,
        h.flow_control,
        rtr_len,
        h.conf_hash,
    )


def _be_packet_header(h: d.PacketHeader, data_len: int) -> bytes:
    return struct.pack(
        ">IIIIiiiIH2shh",
        h.type,
        h.transmiter_id,
        h.proc_id,
        h.memb_id.proc_id,
        h.memb_id.time,
        h.seq,
        h.token_round,
        h.conf_hash,
        data_len,
        h.padding,
        0,
        0,
    )


def _big_endian_twin(packet: d.Decoded) -> bytes:
    """The same packet as a big-endian C daemon would send it, built from the layout."""
    if isinstance(packet, d.Form1 | d.Form2):
        if isinstance(packet, d.Form1):
            reps = packet.reps
            mid = struct.pack(">hh", len(reps.reps), reps.rep_index) + b"".join(
                struct.pack(">Ihh", r.proc_id, r.type, r.seg_index) for r in reps.reps
            )
            mid = mid.ljust(d.REPS_INFO_SIZE, b"\xee")
        else:
            mid = struct.pack(">Ii", packet.new_ring_id.proc_id, packet.new_ring_id.time)
        body = _be_members_info(packet.members) + mid + _be_rings(packet.rings)
        return _be_token_header(packet.header, len(body)) + body
    if isinstance(packet, d.Join):
        n = len(packet.members)
        body = struct.pack(f">hh{n}I", n, packet.num_pending, *packet.members)
        body += struct.pack(">hh", len(packet.reps), packet.rep_index)
        body += b"".join(struct.pack(">Ihh", r.proc_id, r.type, r.seg_index) for r in packet.reps)
        return _be_packet_header(packet.header, len(body)) + body
    assert isinstance(packet, d.Alive) and packet.members is not None
    n = len(packet.members)
    body = struct.pack(f">hh{n}I", n, 0, *packet.members)
    return _be_packet_header(packet.header, len(body)) + body


def _without_slack(packet: d.Decoded) -> d.Decoded:
    if isinstance(packet, d.Form1):
        return replace(
            packet,
            members=replace(packet.members, slack=b""),
            reps=replace(packet.reps, slack=b""),
        )
    if isinstance(packet, d.Form2):
        return replace(packet, members=replace(packet.members, slack=b""))
    return packet


def test_big_endian_membership_packets_and_form_tokens_decode_to_the_same_values() -> None:
    kinds = set()
    for channel, raw in all_captured():
        packet = d.decode(raw, channel)
        if not isinstance(packet, d.Form1 | d.Form2 | d.Join | d.Alive):
            continue
        be = _big_endian_twin(packet)
        assert len(be) == len(raw)
        assert d.is_big_endian_sender(be)
        assert _without_slack(d.decode(be, channel)) == _without_slack(packet)
        kinds.add(type(packet).__name__)
    assert kinds == {"Form1", "Form2", "Join", "Alive"}


def test_a_type_with_partition_and_status_bits_is_a_partition_like_the_original() -> None:
    header = d.PacketHeader(d.PARTITION_TYPE | d.STATUS_TYPE, 1, 1)
    raw = d.Partition(header, (0, 0)).encode()
    assert isinstance(d.decode(raw, Channel.DATA), d.Partition)
