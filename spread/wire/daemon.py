"""Byte layouts of every daemon-to-daemon datagram (Spread 5.0.1), as pure codecs.

Owns: the packet type bits, `packet_header` / `token_header`, membership bodies (ALIVE, JOIN,
REFER, HURRY), FORM1/FORM2 bodies, retransmission requests, data packet fragment chains and
the monitor packets, plus small pure checks (conf hash, sender screening) and raw-datagram
patches (re-stamping the transmitter, re-broadcasting ROUTED packets).

Must not know: ring state, timers, sockets. Fragmenting/packing messages is `packing.py`.

Decoding reads the sender's byte order from the marker and returns logical values; encoding
always writes little-endian with the marker. Fields the C code never swaps (`padding`, garbage
tails of FORM arrays) are kept as raw bytes so captured packets re-encode byte for byte.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, fields

from spread.ring.api import Channel, RingId
from spread.wire.endian import ENDIAN_MARKER

# ---- packet type bits (net_types.h) ----------------------------------------------------------

UNRELIABLE_TYPE = 0x00000001
RELIABLE_TYPE = 0x00000002
FIFO_TYPE = 0x00000004
AGREED_TYPE = 0x00000008
SAFE_TYPE = 0x00000010
REGULAR_TYPE = 0x0000001F
ROUTED_TYPE = 0x00000020
HURRY_TYPE = 0x00000040
ALIVE_TYPE = 0x00000100
JOIN_TYPE = 0x00000200
REFER_TYPE = 0x00000400
MEMBERSHIP_TYPE = 0x00000700
FORM1_TYPE = 0x00001000
FORM2_TYPE = 0x00002000
FORM_TYPE = 0x00003000
ARQ_MASK = 0x000F0000
RETRANS_MASK = 0x00F00000
STATUS_TYPE = 0x01000000
PARTITION_TYPE = 0x02000000
FC_TYPE = 0x04000000
RELOAD_TYPE = 0x08000000
CONTROL_TYPE = 0x0F000000

# ---- sizes and limits --------------------------------------------------------------------------

HEADER_SIZE = 40  # packet_header and token_header alike
MAX_PACKET = 1472  # one Ethernet-sized UDP payload: header + packet_body
PACKET_BODY = MAX_PACKET - HEADER_SIZE  # 1432
MAX_TOKEN = 65535 - 20 - 8  # 65507: the biggest UDP payload
MAX_PROCS_RING = 128  # members_info array size
MAX_REPS = 25  # reps_info array size
MEMBERS_INFO_SIZE = 4 + 4 * MAX_PROCS_RING  # 516
REPS_INFO_SIZE = 4 + 8 * MAX_REPS  # 204
STATUS_SIZE = 96

NO_RING = RingId(0, 0)  # memb_id of ALIVE/JOIN/HURRY

# rep_info.type
POTENTIAL_REP = 0
SEG_REP = 1
RING_REP = 2


class PacketError(ValueError):
    """A datagram that is truncated, inconsistent or hostile. The only error `decode` raises."""


# ---- precompiled layouts, one per byte order -------------------------------------------------


def _pair(fmt: str) -> tuple[struct.Struct, struct.Struct]:
    return struct.Struct("<" + fmt), struct.Struct(">" + fmt)


# type tx proc memb.proc memb.time seq token_round conf_hash data_len padding frag_index frag_len
_PKT_LE, _PKT_BE = _pair("IIIIiiiIH2shh")
# type tx proc memb.proc memb.time seq aru aru_last_id flow_control rtr_len conf_hash
_TOK_LE, _TOK_BE = _pair("IIIIiiiIhHI")
_H2_LE, _H2_BE = _pair("hh")  # fragment_header; compact list counts
_REP_LE, _REP_BE = _pair("Ihh")  # rep_info
_RTR_LE, _RTR_BE = _pair("IiIhh")  # ring_rtr: memb_id, proc_id, seg_index, num_seq
_RING_LE, _RING_BE = _pair("Iiiiiihh")  # ring_info
_MID_LE, _MID_BE = _pair("Ii")  # membership_id
_I32_LE, _I32_BE = _pair("i")
_STATUS_LE, _STATUS_BE = _pair("15iIIi12h")
_U32_AT = struct.Struct("<I")
assert _PKT_LE.size == _TOK_LE.size == HEADER_SIZE
assert _RING_LE.size == 28 and _RTR_LE.size == 16 and _STATUS_LE.size == STATUS_SIZE


def _u32s(order: str, n: int) -> struct.Struct:
    return struct.Struct(f"{order}{n}I")


def _i32s(order: str, n: int) -> struct.Struct:
    return struct.Struct(f"{order}{n}i")


# ---- type word helpers -------------------------------------------------------------------------


def arq_of(token_type: int) -> int:
    return (token_type & ARQ_MASK) >> 16


def retrans_of(token_type: int) -> int:
    return (token_type & RETRANS_MASK) >> 20


def with_arq(token_type: int, arq: int) -> int:
    return (token_type & ~ARQ_MASK) | ((arq << 16) & ARQ_MASK)


def with_retrans(token_type: int, retrans: int) -> int:
    return (token_type & ~RETRANS_MASK) | ((retrans << 20) & RETRANS_MASK)


def is_big_endian_sender(datagram: bytes) -> bool:
    """True when the first word's marker says the sender was big-endian (marker clear)."""
    return len(datagram) >= 4 and _U32_AT.unpack_from(datagram)[0] & ENDIAN_MARKER != ENDIAN_MARKER


# ---- headers -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PacketHeader:
    """`packet_header` without the fields derived from the body (data_len, first fragment).

    `type` has the endian marker removed. `padding` is never swapped by C; it is kept raw.
    """

    type: int
    transmiter_id: int
    proc_id: int
    memb_id: RingId = NO_RING
    seq: int = 0
    token_round: int = 0
    conf_hash: int = 0
    padding: bytes = b"\x00\x00"


@dataclass(frozen=True, slots=True)
class TokenHeader:
    """`token_header` without `rtr_len` (derived from the body). `type` has no marker."""

    type: int
    transmiter_id: int
    proc_id: int
    memb_id: RingId
    seq: int = 0
    aru: int = 0
    aru_last_id: int = 0
    flow_control: int = 0
    conf_hash: int = 0

    @property
    def arq(self) -> int:
        return arq_of(self.type)

    @property
    def retrans(self) -> int:
        return retrans_of(self.type)


def _pack_header(h: PacketHeader, data_len: int, frag_index: int = 0, frag_len: int = 0) -> bytes:
    return _PKT_LE.pack(
        (h.type | ENDIAN_MARKER) & 0xFFFFFFFF,
        h.transmiter_id,
        h.proc_id,
        h.memb_id.proc_id,
        h.memb_id.time,
        h.seq,
        h.token_round,
        h.conf_hash,
        data_len,
        h.padding,
        frag_index,
        frag_len,
    )


def _pack_token_header(h: TokenHeader, rtr_len: int) -> bytes:
    return _TOK_LE.pack(
        (h.type | ENDIAN_MARKER) & 0xFFFFFFFF,
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


# ---- shared body pieces ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RepInfo:
    proc_id: int
    type: int  # POTENTIAL_REP / SEG_REP / RING_REP (raw int16: peers may send anything)
    seg_index: int


@dataclass(frozen=True, slots=True)
class RingInfo:
    """One old ring's state on a FORM token. `ids[:num_trans]` are its transitional members."""

    memb_id: RingId
    trans_time: int
    aru: int
    highest_seq: int
    num_trans: int  # raw: the membership layer checks 1 <= num_trans <= len(ids)
    holes: tuple[int, ...] = ()
    ids: tuple[int, ...] = ()

    @property
    def trans(self) -> tuple[int, ...]:
        return self.ids[: max(self.num_trans, 0)]


@dataclass(frozen=True, slots=True)
class RtrRequest:
    """One retransmission request block of a regular token body."""

    memb_id: RingId
    proc_id: int  # VID that needs them, or 0xFFFFFFFF for "more than one"
    seg_index: int  # segment to send to, or -1 for everyone
    seqs: tuple[int, ...]


# ---- port P packets ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fragment:
    """One fragment in a data packet: `index` k (1-based) or -N for the last of N."""

    index: int
    data: bytes


@dataclass(frozen=True, slots=True)
class DataPacket:
    """A data packet: the header's `type` carries the service (and maybe ROUTED) bits."""

    header: PacketHeader
    fragments: tuple[Fragment, ...]

    @property
    def data_len(self) -> int:
        return data_len_of(self.fragments)

    def encode(self) -> bytes:
        frags = self.fragments
        first = frags[0]
        if len(frags) == 1:
            return _pack_header(self.header, len(first.data), first.index, len(first.data)) + (
                first.data
            )
        parts = [first.data]
        offset = len(first.data)
        for frag in frags[1:]:
            pad = -offset % 4
            parts.append(b"\x00" * pad + _H2_LE.pack(frag.index, len(frag.data)) + frag.data)
            offset += pad + 4 + len(frag.data)
        return _pack_header(self.header, offset, first.index, len(first.data)) + b"".join(parts)


def data_len_of(fragments: tuple[Fragment, ...]) -> int:
    """Body size of a packet holding `fragments` (later fragment headers 4-byte aligned)."""
    offset = len(fragments[0].data)
    for frag in fragments[1:]:
        offset += -offset % 4 + 4 + len(frag.data)
    return offset


@dataclass(frozen=True, slots=True)
class Alive:
    """ALIVE: receivers ignore the body; `members` is None when it is not a compact list."""

    header: PacketHeader
    members: tuple[int, ...] | None
    extra: bytes = b""  # bytes after the list, or the whole body when members is None

    def encode(self) -> bytes:
        if self.members is None:
            body = self.extra
        else:
            body = _compact_members(self.members, 0) + self.extra
        return _pack_header(self.header, len(body)) + body


@dataclass(frozen=True, slots=True)
class Join:
    """JOIN: compact member list then compact rep list (`reps[0]` is the sender)."""

    header: PacketHeader
    members: tuple[int, ...]
    reps: tuple[RepInfo, ...]
    rep_index: int = 0
    num_pending: int = 0  # sent, always 0 in practice; no entries follow for it
    extra: bytes = b""

    def encode(self) -> bytes:
        body = (
            _compact_members(self.members, self.num_pending)
            + _H2_LE.pack(len(self.reps), self.rep_index)
            + b"".join(_REP_LE.pack(r.proc_id, r.type, r.seg_index) for r in self.reps)
            + self.extra
        )
        return _pack_header(self.header, len(body)) + body


@dataclass(frozen=True, slots=True)
class Refer:
    """REFER: the referred rep and its type travel in header.memb_id (proc_id, time)."""

    header: PacketHeader
    extra: bytes = b""

    @property
    def referred(self) -> RepInfo:
        return RepInfo(self.header.memb_id.proc_id, self.header.memb_id.time, 0)

    def encode(self) -> bytes:
        return _pack_header(self.header, len(self.extra)) + self.extra


@dataclass(frozen=True, slots=True)
class Hurry:
    """HURRY: a non-leader asks the leader to release the token now."""

    header: PacketHeader
    extra: bytes = b""

    def encode(self) -> bytes:
        return _pack_header(self.header, len(self.extra)) + self.extra


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """spmonitor's STATUS query: the reply goes to the sender's IP, port header.seq."""

    header: PacketHeader
    extra: bytes = b""

    @property
    def reply_port(self) -> int:
        return self.header.seq & 0xFFFF

    def encode(self) -> bytes:
        return _pack_header(self.header, len(self.extra)) + self.extra


@dataclass(frozen=True, slots=True)
class Status:
    """The 96-byte `status` struct of a STATUS reply."""

    sec: int
    state: int
    gstate: int
    packet_sent: int
    packet_recv: int
    packet_delivered: int
    retrans: int
    u_retrans: int
    s_retrans: int
    b_retrans: int
    aru: int
    my_aru: int
    highest_seq: int
    token_hurry: int
    token_rounds: int
    my_id: int
    leader_id: int
    message_delivered: int
    membership_changes: int
    num_procs: int
    num_segments: int
    window: int
    personal_window: int
    accelerated_ring: int
    accelerated_window: int
    num_sessions: int
    num_groups: int
    major_version: int = 5
    minor_version: int = 0
    patch_version: int = 1


@dataclass(frozen=True, slots=True)
class StatusReply:
    """A daemon's STATUS answer (conf_hash 0 and transmiter_id 0 in the original)."""

    header: PacketHeader
    status: Status

    def encode(self) -> bytes:
        s = self.status
        body = _STATUS_LE.pack(*(getattr(s, f) for f in _STATUS_FIELDS))
        return _pack_header(self.header, len(body)) + body


_STATUS_FIELDS = tuple(f.name for f in fields(Status))


@dataclass(frozen=True, slots=True)
class Partition:
    """Monitor PARTITION: component per configured daemon (config order); -1 for me = exit."""

    header: PacketHeader
    components: tuple[int, ...]
    extra: bytes = b""  # an odd trailing byte

    def encode(self) -> bytes:
        n = len(self.components)
        body = struct.pack(f"<{n}h", *self.components) + self.extra
        return _pack_header(self.header, len(body)) + body


@dataclass(frozen=True, slots=True)
class FlowControlCmd:
    """Monitor FC: `entries[i] = (window_or_personal, accelerated)`, -1 = unchanged."""

    header: PacketHeader
    entries: tuple[tuple[int, int], ...]
    extra: bytes = b""

    def encode(self) -> bytes:
        flat = [v for pair in self.entries for v in pair]
        body = struct.pack(f"<{len(flat)}h", *flat) + self.extra
        return _pack_header(self.header, len(body)) + body


@dataclass(frozen=True, slots=True)
class Reload:
    """Monitor RELOAD: re-read the configuration file."""

    header: PacketHeader
    extra: bytes = b""

    def encode(self) -> bytes:
        return _pack_header(self.header, len(self.extra)) + self.extra


# ---- port P+1 tokens -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    """A regular token with its retransmission requests."""

    header: TokenHeader
    rtr: tuple[RtrRequest, ...] = ()

    def encode(self) -> bytes:
        body = b"".join(
            _RTR_LE.pack(r.memb_id.proc_id, r.memb_id.time, r.proc_id, r.seg_index, len(r.seqs))
            + _i32s("<", len(r.seqs)).pack(*r.seqs)
            for r in self.rtr
        )
        return _pack_token_header(self.header, len(body)) + body


@dataclass(frozen=True, slots=True)
class MembersInfo:
    """Full `members_info`: the first `num_members` are confirmed, the rest are pending.

    `slack` is the raw garbage after the used entries (zeros when we build it).
    """

    members: tuple[int, ...]
    num_members: int
    slack: bytes = b""

    @property
    def num_pending(self) -> int:
        return len(self.members) - self.num_members

    def encode(self) -> bytes:
        n = len(self.members)
        raw = (
            _H2_LE.pack(self.num_members, n - self.num_members)
            + _u32s("<", n).pack(*self.members)
            + self.slack
        )
        return raw + b"\x00" * (MEMBERS_INFO_SIZE - len(raw))


@dataclass(frozen=True, slots=True)
class RepsInfo:
    """Full `reps_info`; `slack` is the raw garbage after the used entries."""

    reps: tuple[RepInfo, ...]
    rep_index: int
    slack: bytes = b""

    def encode(self) -> bytes:
        raw = (
            _H2_LE.pack(len(self.reps), self.rep_index)
            + b"".join(_REP_LE.pack(r.proc_id, r.type, r.seg_index) for r in self.reps)
            + self.slack
        )
        return raw + b"\x00" * (REPS_INFO_SIZE - len(raw))


@dataclass(frozen=True, slots=True)
class Form1:
    header: TokenHeader
    members: MembersInfo
    reps: RepsInfo
    rings: tuple[RingInfo, ...]
    extra: bytes = b""

    def encode(self) -> bytes:
        body = self.members.encode() + self.reps.encode() + _encode_rings(self.rings) + self.extra
        return _pack_token_header(self.header, len(body)) + body


@dataclass(frozen=True, slots=True)
class Form2:
    """FORM2: `new_ring_id` is set by the future leader; before that it holds stale bytes."""

    header: TokenHeader
    members: MembersInfo
    new_ring_id: RingId
    rings: tuple[RingInfo, ...]
    extra: bytes = b""

    def encode(self) -> bytes:
        body = (
            self.members.encode()
            + _MID_LE.pack(self.new_ring_id.proc_id, self.new_ring_id.time)
            + _encode_rings(self.rings)
            + self.extra
        )
        return _pack_token_header(self.header, len(body)) + body


Packet = (
    DataPacket
    | Alive
    | Join
    | Refer
    | Hurry
    | StatusRequest
    | StatusReply
    | Partition
    | FlowControlCmd
    | Reload
)
TokenPacket = Token | Form1 | Form2
Decoded = Packet | TokenPacket


def encode(packet: Decoded) -> bytes:
    """Little-endian bytes with the marker set, exactly as an x86 C daemon sends them."""
    return packet.encode()


def _compact_members(members: tuple[int, ...], num_pending: int) -> bytes:
    n = len(members)
    return _H2_LE.pack(n, num_pending) + _u32s("<", n).pack(*members)


def _encode_rings(rings: tuple[RingInfo, ...]) -> bytes:
    parts = [_I32_LE.pack(len(rings))]
    for r in rings:
        parts.append(
            _RING_LE.pack(
                r.memb_id.proc_id,
                r.memb_id.time,
                r.trans_time,
                r.aru,
                r.highest_seq,
                len(r.holes),
                len(r.ids),
                r.num_trans,
            )
        )
        parts.append(_i32s("<", len(r.holes)).pack(*r.holes))
        parts.append(_u32s("<", len(r.ids)).pack(*r.ids))
    return b"".join(parts)


# ---- decoding ------------------------------------------------------------------------------------


def decode(datagram: bytes, channel: Channel) -> Decoded:
    """Decode one UDP payload received on port P (DATA) or P+1 (TOKEN).

    Raises PacketError, and nothing else, for anything a C daemon would not have sent.
    """
    try:
        if channel == Channel.TOKEN:
            return _decode_token(datagram)
        return _decode_packet(datagram)
    except PacketError:
        raise
    except (struct.error, IndexError, ValueError, OverflowError, TypeError) as exc:
        raise PacketError(f"malformed datagram: {exc}") from None


def decode_packet(datagram: bytes) -> Packet:
    """`decode` for port P only."""
    return decode(datagram, Channel.DATA)  # type: ignore[return-value]


def decode_token(datagram: bytes) -> TokenPacket:
    """`decode` for port P+1 only."""
    return decode(datagram, Channel.TOKEN)  # type: ignore[return-value]


def _decode_packet(data: bytes) -> Packet:
    size = len(data)
    if size < HEADER_SIZE:
        raise PacketError(f"packet of {size} bytes is shorter than its header")
    if size > MAX_PACKET:  # the original receives into 40 + 1432 bytes, so it never sees more
        raise PacketError(f"packet of {size} bytes is larger than {MAX_PACKET}")
    raw_type = _U32_AT.unpack_from(data)[0]
    little = raw_type & ENDIAN_MARKER == ENDIAN_MARKER
    (t, tx, proc, mpid, mtime, seq, rnd, chash, dlen, pad, findex, flen) = (
        _PKT_LE if little else _PKT_BE
    ).unpack_from(data)
    if size != HEADER_SIZE + dlen:
        raise PacketError(f"received {size} bytes but header says {HEADER_SIZE} + {dlen}")
    t &= ~ENDIAN_MARKER & 0xFFFFFFFF
    header = PacketHeader(t, tx, proc, RingId(mpid, mtime), seq, rnd, chash, pad)
    if t & CONTROL_TYPE:
        return _decode_control(header, data, little)
    if t & ALIVE_TYPE:
        return _decode_alive(header, data, little)
    if t & JOIN_TYPE:
        return _decode_join(header, data, little)
    if t & REFER_TYPE:
        return Refer(header, data[HEADER_SIZE:])
    if t & HURRY_TYPE:
        return Hurry(header, data[HEADER_SIZE:])
    if t & REGULAR_TYPE:
        if flen == dlen and flen > 0:  # the common case: one fragment fills the body
            return DataPacket(header, (Fragment(findex, data[HEADER_SIZE:]),))
        return DataPacket(header, _decode_fragments(data, dlen, findex, flen, little))
    raise PacketError(f"unknown packet type 0x{t:08x}")


def _decode_fragments(
    data: bytes, dlen: int, findex: int, flen: int, little: bool
) -> tuple[Fragment, ...]:
    if flen < 0 or flen > dlen:
        raise PacketError(f"first fragment length {flen} outside data_len {dlen}")
    frags = [Fragment(findex, data[HEADER_SIZE : HEADER_SIZE + flen])]
    h2 = _H2_LE if little else _H2_BE
    offset = flen
    while offset < dlen:
        offset += -offset % 4
        if offset + 4 > dlen:
            raise PacketError("fragment header beyond data_len")
        index, length = h2.unpack_from(data, HEADER_SIZE + offset)
        offset += 4
        if length < 0 or offset + length > dlen:
            raise PacketError(f"fragment length {length} beyond data_len {dlen}")
        start = HEADER_SIZE + offset
        frags.append(Fragment(index, data[start : start + length]))
        offset += length
    return tuple(frags)


def _compact_list(
    data: bytes, pos: int, end: int, little: bool
) -> tuple[tuple[int, ...], int, int]:
    """(members, num_pending, next offset) of a compact member list at `pos`."""
    if pos + 4 > end:
        raise PacketError("member list truncated")
    n, pending = (_H2_LE if little else _H2_BE).unpack_from(data, pos)
    if not 0 <= n <= MAX_PROCS_RING:
        raise PacketError(f"absurd member count {n}")
    pos += 4
    if pos + 4 * n > end:
        raise PacketError("member list beyond the datagram")
    members = _u32s("<" if little else ">", n).unpack_from(data, pos)
    return members, pending, pos + 4 * n


def _decode_alive(header: PacketHeader, data: bytes, little: bool) -> Alive:
    try:
        members, _pending, pos = _compact_list(data, HEADER_SIZE, len(data), little)
    except PacketError:
        return Alive(header, None, data[HEADER_SIZE:])  # C ignores ALIVE bodies entirely
    return Alive(header, members, data[pos:])


def _decode_join(header: PacketHeader, data: bytes, little: bool) -> Join:
    end = len(data)
    members, pending, pos = _compact_list(data, HEADER_SIZE, end, little)
    if pos + 4 > end:
        raise PacketError("JOIN rep list truncated")
    nreps, rep_index = (_H2_LE if little else _H2_BE).unpack_from(data, pos)
    if not 0 <= nreps <= MAX_REPS:
        raise PacketError(f"absurd rep count {nreps}")
    pos += 4
    if pos + 8 * nreps > end:
        raise PacketError("JOIN rep list beyond the datagram")
    reps = _reps_at(data, pos, nreps, little)
    pos += 8 * nreps
    return Join(header, members, reps, rep_index, pending, data[pos:])


def _reps_at(data: bytes, pos: int, n: int, little: bool) -> tuple[RepInfo, ...]:
    rep = _REP_LE if little else _REP_BE
    return tuple(RepInfo(*rep.unpack_from(data, pos + 8 * i)) for i in range(n))


def _decode_control(header: PacketHeader, data: bytes, little: bool) -> Packet:
    t = header.type
    body = data[HEADER_SIZE:]
    order = "<" if little else ">"
    # the original checks PARTITION in its network layer first, then STATUS, FC, RELOAD
    if t & PARTITION_TYPE:
        n = len(body) // 2
        return Partition(header, struct.unpack_from(f"{order}{n}h", body), body[2 * n :])
    if t & STATUS_TYPE:
        if len(body) == STATUS_SIZE:
            values = (_STATUS_LE if little else _STATUS_BE).unpack(body)
            return StatusReply(header, Status(*values))
        return StatusRequest(header, body)
    if t & FC_TYPE:
        n = len(body) // 4
        flat = struct.unpack_from(f"{order}{2 * n}h", body)
        pairs = tuple(zip(flat[0::2], flat[1::2]))
        return FlowControlCmd(header, pairs, body[4 * n :])
    return Reload(header, body)


def _decode_token(data: bytes) -> TokenPacket:
    size = len(data)
    if size < HEADER_SIZE:
        raise PacketError(f"token of {size} bytes is shorter than its header")
    if size > MAX_TOKEN:
        raise PacketError(f"token of {size} bytes is larger than a UDP datagram")
    raw_type = _U32_AT.unpack_from(data)[0]
    little = raw_type & ENDIAN_MARKER == ENDIAN_MARKER
    (t, tx, proc, mpid, mtime, seq, aru, aru_last, fc, rtr_len, chash) = (
        _TOK_LE if little else _TOK_BE
    ).unpack_from(data)
    if size != HEADER_SIZE + rtr_len:
        raise PacketError(f"received {size} bytes but token says {HEADER_SIZE} + {rtr_len}")
    t &= ~ENDIAN_MARKER & 0xFFFFFFFF
    header = TokenHeader(t, tx, proc, RingId(mpid, mtime), seq, aru, aru_last, fc, chash)
    if t & FORM1_TYPE:
        return _decode_form(header, data, little, form1=True)
    if t & FORM2_TYPE:
        return _decode_form(header, data, little, form1=False)
    if rtr_len == 0:
        return Token(header)
    return Token(header, _decode_rtr(data, little))


def _decode_rtr(data: bytes, little: bool) -> tuple[RtrRequest, ...]:
    rtr = _RTR_LE if little else _RTR_BE
    order = "<" if little else ">"
    end = len(data)
    pos = HEADER_SIZE
    blocks = []
    while pos < end:
        if pos + 16 > end:
            raise PacketError("retransmission request truncated")
        mpid, mtime, proc, seg, nseq = rtr.unpack_from(data, pos)
        pos += 16
        if nseq < 0 or pos + 4 * nseq > end:
            raise PacketError(f"retransmission request of {nseq} seqs beyond the token")
        seqs = _i32s(order, nseq).unpack_from(data, pos)
        pos += 4 * nseq
        blocks.append(RtrRequest(RingId(mpid, mtime), proc, seg, seqs))
    return tuple(blocks)


def _decode_form(header: TokenHeader, data: bytes, little: bool, form1: bool) -> Form1 | Form2:
    order = "<" if little else ">"
    end = len(data)
    pos = HEADER_SIZE
    fixed = MEMBERS_INFO_SIZE + (REPS_INFO_SIZE if form1 else 8) + 4
    if pos + fixed > end:
        raise PacketError("FORM token shorter than its fixed part")
    nm, npend = (_H2_LE if little else _H2_BE).unpack_from(data, pos)
    if nm < 0 or npend < 0 or nm + npend > MAX_PROCS_RING:
        raise PacketError(f"absurd FORM member counts {nm}+{npend}")
    used = nm + npend
    members = MembersInfo(
        _u32s(order, used).unpack_from(data, pos + 4),
        nm,
        data[pos + 4 + 4 * used : pos + MEMBERS_INFO_SIZE],
    )
    pos += MEMBERS_INFO_SIZE
    if form1:
        nreps, rep_index = (_H2_LE if little else _H2_BE).unpack_from(data, pos)
        if not 0 <= nreps <= MAX_REPS:
            raise PacketError(f"absurd FORM rep count {nreps}")
        reps = RepsInfo(
            _reps_at(data, pos + 4, nreps, little),
            rep_index,
            data[pos + 4 + 8 * nreps : pos + REPS_INFO_SIZE],
        )
        pos += REPS_INFO_SIZE
    else:
        mpid, mtime = (_MID_LE if little else _MID_BE).unpack_from(data, pos)
        new_id = RingId(mpid, mtime)
        pos += 8
    (num_rings,) = (_I32_LE if little else _I32_BE).unpack_from(data, pos)
    pos += 4
    if num_rings < 0 or pos + 28 * num_rings > end:
        raise PacketError(f"absurd ring count {num_rings}")
    ring = _RING_LE if little else _RING_BE
    rings = []
    for _ in range(num_rings):
        if pos + 28 > end:
            raise PacketError("ring_info truncated")
        mpid, mtime, trans_time, aru, highest, nholes, ncommit, ntrans = ring.unpack_from(data, pos)
        pos += 28
        if nholes < 0 or ncommit < 0 or pos + 4 * (nholes + ncommit) > end:
            raise PacketError(f"ring_info lists {nholes} holes + {ncommit} ids beyond the token")
        holes = _i32s(order, nholes).unpack_from(data, pos)
        pos += 4 * nholes
        ids = _u32s(order, ncommit).unpack_from(data, pos)
        pos += 4 * ncommit
        rings.append(RingInfo(RingId(mpid, mtime), trans_time, aru, highest, ntrans, holes, ids))
    extra = data[pos:]
    if form1:
        return Form1(header, members, reps, tuple(rings), extra)
    return Form2(header, members, new_id, tuple(rings), extra)


# ---- checks a receiver makes before acting (pure) --------------------------------------------


def peek_sender(datagram: bytes, channel: Channel) -> tuple[int, int, int] | None:
    """(type without marker, transmiter_id, conf_hash) of a datagram, or None if too short.

    Cheap screening before a full decode: conf_hash sits at offset 28 in a packet header and
    at 36 in a token header.
    """
    if len(datagram) < HEADER_SIZE:
        return None
    little = _U32_AT.unpack_from(datagram)[0] & ENDIAN_MARKER == ENDIAN_MARKER
    t, tx = struct.unpack_from("<II" if little else ">II", datagram)
    at = 36 if channel == Channel.TOKEN else 28
    (chash,) = struct.unpack_from("<I" if little else ">I", datagram, at)
    return t & ~ENDIAN_MARKER & 0xFFFFFFFF, tx, chash


def conf_hash_ok(received: int, mine: int) -> bool:
    """Every packet and token must carry my configuration hash (unsigned 32-bit)."""
    return received & 0xFFFFFFFF == mine & 0xFFFFFFFF


def screen_sender(
    transmiter_id: int,
    conf_hash: int,
    src_ip: str,
    *,
    my_conf_hash: int,
    ip_of_vid: Mapping[int, str],
) -> str | None:
    """Why a datagram must be dropped before dispatch (§4 steps 4-6), or None to accept.

    The text is the original's log wording, so users can grep for it.
    """
    if not conf_hash_ok(conf_hash, my_conf_hash):
        return (
            "Net_recv: ignoring msg from different spread configuration; "
            f"hash ({conf_hash & 0xFFFFFFFF}) != local hash ({my_conf_hash & 0xFFFFFFFF})"
        )
    ip = ip_of_vid.get(transmiter_id)
    if ip is None:
        return (
            f"Net_recv: ignoring msg from transmitter (0x{transmiter_id:08X}) "
            "bc not in my configuration"
        )
    if ip != src_ip:
        return (
            f"Net_recv: ignoring msg from transmitter (0x{transmiter_id:08X}) "
            f"bc src_addr doesn't match my configuration; from {src_ip}"
        )
    return None


def is_own_copy(packet_type: int, transmiter_id: int, my_vid: int) -> bool:
    """My own looped-back multicast (control packets may legitimately carry my VID)."""
    return not packet_type & CONTROL_TYPE and transmiter_id == my_vid


def is_control(packet_type: int) -> bool:
    return bool(packet_type & CONTROL_TYPE)


# ---- raw datagram patches (keep the body bytes exactly as received) ---------------------------


def restamp(datagram: bytes, transmiter_id: int) -> bytes:
    """The same datagram with `transmiter_id` rewritten in the datagram's own byte order."""
    little = _U32_AT.unpack_from(datagram)[0] & ENDIAN_MARKER == ENDIAN_MARKER
    return datagram[:4] + struct.pack("<I" if little else ">I", transmiter_id) + datagram[8:]


def rebroadcast_routed(datagram: bytes, my_vid: int) -> bytes:
    """What a segment head sends into its segment for a ROUTED packet it received.

    ROUTED cleared and the transmitter set to me, in the *original sender's* byte order, so
    the header and the untouched body still agree.
    """
    little = _U32_AT.unpack_from(datagram)[0] & ENDIAN_MARKER == ENDIAN_MARKER
    fmt = "<II" if little else ">II"
    t, _tx = struct.unpack_from(fmt, datagram)
    return struct.pack(fmt, t & ~ROUTED_TYPE, my_vid) + datagram[8:]


def packet_type_name(packet_type: int) -> str:
    """Short readable name of a port-P type word, for logs and tests."""
    t = packet_type & ~ENDIAN_MARKER
    names = []
    for bit, name in (
        (STATUS_TYPE, "STATUS"),
        (PARTITION_TYPE, "PARTITION"),
        (FC_TYPE, "FC"),
        (RELOAD_TYPE, "RELOAD"),
        (ALIVE_TYPE, "ALIVE"),
        (JOIN_TYPE, "JOIN"),
        (REFER_TYPE, "REFER"),
        (HURRY_TYPE, "HURRY"),
        (FORM1_TYPE, "FORM1"),
        (FORM2_TYPE, "FORM2"),
        (UNRELIABLE_TYPE, "UNRELIABLE"),
        (RELIABLE_TYPE, "RELIABLE"),
        (FIFO_TYPE, "FIFO"),
        (AGREED_TYPE, "AGREED"),
        (SAFE_TYPE, "SAFE"),
        (ROUTED_TYPE, "ROUTED"),
    ):
        if t & bit:
            names.append(name)
    return "|".join(names) or "0"
