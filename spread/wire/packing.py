"""Fragmentation, packing and reassembly of client-level messages in data packets (sans-IO).

Owns: splitting a message into 1432-byte fragments, the send queues (normal and GROUPS) and
which fragments go into the next packet (§6.2 of the protocol reference, as the C
`Send_new_packets` does it), and per-originator reassembly of delivered packets.

Must not know: sequence numbers, tokens, flow control or delivery order. The engine asks the
`Packer` for the next packet body when it has a sequence number for it, and feeds packets to
the `Reassembler` in delivery order.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from spread.ring.api import Deliver, RingId
from spread.wire import client as cw
from spread.wire.daemon import (
    AGREED_TYPE,
    FIFO_TYPE,
    PACKET_BODY,
    RELIABLE_TYPE,
    SAFE_TYPE,
    DataPacket,
    Fragment,
    PacketHeader,
)
from spread.wire.endian import ENDIAN_MARKER

MAX_FRAGMENTS = 100  # MAX_SCATTER_ELEMENTS: the largest message is 100 * 1432 bytes
MAX_MESSAGE = MAX_FRAGMENTS * PACKET_BODY  # 143,200
MESSAGE_HEADER_SIZE = 48
WATER_MARK = 500  # queued messages at which the original stops reading client sockets

_U32_LE = struct.Struct("<I")
_U32_BE = struct.Struct(">I")


def message_service(message: bytes) -> int:
    """The message header `type` in the message's own byte order, marker removed."""
    raw = _U32_LE.unpack_from(message)[0]
    if raw & ENDIAN_MARKER != ENDIAN_MARKER:
        raw = _U32_BE.unpack_from(message)[0]
    return raw & ~ENDIAN_MARKER & 0xFFFFFFFF


def packet_type_for(service: int) -> int | None:
    """Packet type for a message service type (first match, as the original); None = illegal."""
    if service & (cw.UNRELIABLE_MESS | cw.RELIABLE_MESS):
        return RELIABLE_TYPE
    if service & cw.FIFO_MESS:
        return FIFO_TYPE
    if service & (cw.CAUSAL_MESS | cw.AGREED_MESS):
        return AGREED_TYPE
    if service & cw.SAFE_MESS:
        return SAFE_TYPE
    if service & (cw.JOIN_MESS | cw.LEAVE_MESS | cw.KILL_MESS):
        return AGREED_TYPE
    return None


def fragment(message: bytes) -> tuple[bytes, ...]:
    """Consecutive 1432-byte pieces; the last may be shorter. At least one piece."""
    if not message:
        return (b"",)
    return tuple(message[i : i + PACKET_BODY] for i in range(0, len(message), PACKET_BODY))


def _may_share_packet(packet_type: int, other: int) -> bool:
    """Same packet type, or FIFO and AGREED together (the original lets those two mix)."""
    if packet_type == other:
        return True
    fifo_agreed = FIFO_TYPE | AGREED_TYPE
    return bool(packet_type & fifo_agreed) and bool(other & fifo_agreed)


# ---- sending -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    packet_type: int
    fragments: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class PacketBody:
    """What goes into one new data packet: its type and its fragments (first one first)."""

    type: int
    fragments: tuple[Fragment, ...]

    def packet(
        self, *, proc_id: int, memb_id: RingId, seq: int, token_round: int, conf_hash: int
    ) -> DataPacket:
        """The data packet as I send it (I am both originator and transmitter)."""
        header = PacketHeader(self.type, proc_id, proc_id, memb_id, seq, token_round, conf_hash)
        return DataPacket(header, self.fragments)


class _SendQueue:
    __slots__ = ("cur", "messages")

    def __init__(self) -> None:
        self.messages: deque[QueuedMessage] = deque()
        self.cur = 0  # fragments of the head message already put in packets


class Packer:
    """My outgoing messages: two queues (normal, GROUPS), one of them active at a time.

    `next_body()` takes one fragment of the head message, then, while they fit, whole
    single-fragment messages of a compatible type: exactly the packets a C daemon builds.
    """

    def __init__(self) -> None:
        self._normal = _SendQueue()
        self._groups = _SendQueue()
        self._active = self._normal

    # queue management

    def submit(self, message: bytes, *, groups: bool | None = None) -> None:
        """Queue one whole message (header + groups + payload).

        `groups=None` puts it on the active queue, as the original's `Prot_new_message` does;
        True/False picks the GROUPS or the normal queue. Raises ValueError for a message the
        original would refuse (too short, no legal service type, more than 100 fragments).
        """
        if len(message) < MESSAGE_HEADER_SIZE:
            raise ValueError(f"message of {len(message)} bytes is shorter than its header")
        if len(message) > MAX_MESSAGE:
            raise ValueError(f"message of {len(message)} bytes needs more than 100 fragments")
        service = message_service(message)
        ptype = packet_type_for(service)
        if ptype is None:
            raise ValueError(f"illegal message type 0x{service:08x}")
        queue = self._active if groups is None else (self._groups if groups else self._normal)
        queue.messages.append(QueuedMessage(ptype, fragment(message)))

    def use_groups_queue(self, on: bool) -> None:
        """During a group-state exchange only the GROUPS queue is sent from."""
        self._active = self._groups if on else self._normal

    @property
    def using_groups_queue(self) -> bool:
        return self._active is self._groups

    def __len__(self) -> int:
        """Messages waiting on the active queue (compare with WATER_MARK)."""
        return len(self._active.messages)

    def pending(self) -> bool:
        """Is there anything to send on the active queue?"""
        return bool(self._active.messages)

    def queued(self, *, groups: bool) -> int:
        return len((self._groups if groups else self._normal).messages)

    def restart_partial(self) -> None:
        """A new ring is installed: a partially sent message is sent again from fragment 1.

        The original resets only the active queue; the other one is never partially sent at
        that point (switches happen only between membership changes), so resetting both is
        the same and cannot go wrong.
        """
        self._normal.cur = 0
        self._groups.cur = 0

    def clear(self, *, groups: bool) -> None:
        """Forget every message on one queue (e.g. stale GROUPS messages)."""
        queue = self._groups if groups else self._normal
        queue.messages.clear()
        queue.cur = 0

    def partially_sent(self) -> bool:
        """Has the head message of the active queue been sent only in part?"""
        return self._active.cur > 0

    # building packets

    def next_body(self) -> PacketBody | None:
        """The body of the next new packet from the active queue, or None if it is empty."""
        queue = self._active
        messages = queue.messages
        if not messages:
            return None
        head = messages[0]
        ptype = head.packet_type
        data = head.fragments[queue.cur]
        data_len = len(data)
        out: list[Fragment] = []
        while True:
            msg = messages[0]
            queue.cur += 1
            n = len(msg.fragments)
            if queue.cur < n:
                out.append(Fragment(queue.cur, data))
            else:
                out.append(Fragment(-n, data))
                messages.popleft()
                queue.cur = 0
            if not messages:
                break
            nxt = messages[0]
            data = nxt.fragments[queue.cur]
            pad = -data_len % 4
            if len(data) > PACKET_BODY - data_len - pad - 4:
                break
            if not _may_share_packet(ptype, nxt.packet_type):
                break
            data_len += pad + 4 + len(data)
        return PacketBody(ptype, tuple(out))


# ---- receiving -----------------------------------------------------------------------------------


class Reassembler:
    """Delivered data packets in, whole messages out, keyed by originator (header.proc_id).

    Fragments of one originator's message must come as 1, 2, ..., -N. Where the original
    aborts on anything else, this drops the broken partial message and counts it. Memory is
    bounded: at most `max_originators` partial messages of at most 100 fragments each.
    """

    def __init__(self, max_originators: int = 128) -> None:
        self._partial: dict[int, list[bytes]] = {}
        self._max_originators = max_originators
        self.dropped = 0  # fragments or partial messages thrown away as out of order

    def push(self, packet: DataPacket) -> list[Deliver]:
        """Feed one packet at its delivery time; returns the messages it completes, in order.

        A packet's first fragment completes (or continues) the originator's message; the
        packed fragments after it are whole messages delivered after that one.
        """
        header = packet.header
        origin = header.proc_id
        frags = packet.fragments
        first = frags[0]
        out: list[Deliver] = []
        index = first.index
        if index == -1 and (
            header.type & RELIABLE_TYPE or origin not in self._partial
        ):  # a whole message; RELIABLE ones use their own slot and never disturb a partial one
            out.append(_deliver(first.data, origin))
        else:
            done = self._add(origin, first)
            if done is not None:
                out.append(_deliver(done, origin))
        for extra in frags[1:]:
            out.append(_deliver(extra.data, origin))
        return out

    def _add(self, origin: int, frag: Fragment) -> bytes | None:
        index = frag.index
        position = -index if index < 0 else index
        parts = self._partial.get(origin)
        have = 0 if parts is None else len(parts)
        if position != have + 1 or position > MAX_FRAGMENTS:
            self.dropped += 1
            if parts is not None:
                del self._partial[origin]  # the partial message can never complete now
            if position != 1:
                return None
            parts = None  # a valid first fragment: start over with it
        if index < 0:
            if parts is None:
                return frag.data
            del self._partial[origin]
            parts.append(frag.data)
            return b"".join(parts)
        if parts is None:
            if len(self._partial) >= self._max_originators:
                self.dropped += 1
                return None
            self._partial[origin] = [frag.data]
        else:
            parts.append(frag.data)
        return None

    def drop_partial(self) -> None:
        """A new ring is installed: every incomplete message is forgotten (senders restart)."""
        self._partial.clear()

    def has_partial(self, origin: int) -> bool:
        return origin in self._partial


def _deliver(message: bytes, origin: int) -> Deliver:
    service = message_service(message) if len(message) >= 4 else 0
    return Deliver(message, origin, service)
