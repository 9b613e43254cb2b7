"""Simulated clients: the client-level messages they submit and how a delivery is identified.

A message is what a daemon hands its engine: 48-byte message header + 32-byte group names +
payload, little-endian with the marker set, built with spread/wire/client.py. The payload
starts with a tag naming the origin daemon, its incarnation and a counter, so the checkers
can tell every message apart without trusting anything the engine says about it.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from spread.wire.client import (
    AGREED_MESS,
    CAUSAL_MESS,
    FIFO_MESS,
    GROUPS_MESS,
    JOIN_MESS,
    KILL_MESS,
    LEAVE_MESS,
    RELIABLE_MESS,
    SAFE_MESS,
    UNRELIABLE_MESS,
    encode_header,
    encode_name,
)
from spread.wire.endian import ENDIAN_MARKER, order_of

SERVICES: dict[str, int] = {
    "UNRELIABLE": UNRELIABLE_MESS,
    "RELIABLE": RELIABLE_MESS,
    "FIFO": FIFO_MESS,
    "CAUSAL": CAUSAL_MESS,
    "AGREED": AGREED_MESS,
    "SAFE": SAFE_MESS,
    "JOIN": JOIN_MESS,
    "LEAVE": LEAVE_MESS,
    "KILL": KILL_MESS,
}

HEADER_SIZE = 48
GROUP_NAME_SIZE = 32
TAG = b"SIMM"
_TAG_FMT = "<4sHHI"  # tag, origin daemon index, incarnation, counter
TAG_SIZE = struct.calcsize(_TAG_FMT)
_RAMP = bytes(range(256))


GROUP_LAYER = 0x8000  # incarnation bit: sent by the daemon's group layer, not a client


@dataclass(frozen=True, slots=True, order=True)
class MsgId:
    """Who made a message: daemon index, incarnation, counter within that sender.

    The group layer of an incarnation is a sender of its own (GROUP_LAYER bit): its GROUPS
    messages are queued apart from client messages and may overtake them."""

    origin: int
    incarnation: int
    counter: int

    def __str__(self) -> str:
        inc = self.incarnation
        if inc & GROUP_LAYER:
            return f"d{self.origin}.{inc & ~GROUP_LAYER}g:{self.counter}"
        return f"d{self.origin}.{inc}:{self.counter}"


def service_name(msg_type: int) -> str:
    if msg_type & GROUPS_MESS:
        return "GROUPS"
    for name in ("SAFE", "AGREED", "CAUSAL", "FIFO", "RELIABLE", "UNRELIABLE"):
        if msg_type & SERVICES[name]:
            return name
    if msg_type & JOIN_MESS:
        return "JOIN"
    if msg_type & LEAVE_MESS:
        return "LEAVE"
    if msg_type & KILL_MESS:
        return "KILL"
    return "AGREED"  # membership requests without a service bit travel AGREED


def is_ordered(msg_type: int) -> bool:
    """Totally ordered in delivery: everything except (UN)RELIABLE, which may be delivered early."""
    return not msg_type & (UNRELIABLE_MESS | RELIABLE_MESS)


def is_safe(msg_type: int) -> bool:
    return bool(msg_type & SAFE_MESS)


def build_message(
    msg_type: int, sender: str, groups: tuple[str, ...], mess_type: int, payload: bytes
) -> bytes:
    """A client message as a little-endian daemon hands it to its engine (client §4.1)."""
    header = encode_header(msg_type | ENDIAN_MARKER, sender, len(groups), mess_type, len(payload))
    return header + b"".join(encode_name(g) for g in groups) + payload


def tag_payload(msg_id: MsgId, size: int) -> bytes:
    head = struct.pack(_TAG_FMT, TAG, msg_id.origin, msg_id.incarnation, msg_id.counter)
    # Filler derived from the id, so a corrupted or mixed-up body is detectable too.
    # Byte i of the filler is (counter + i) mod 256: a slice of a repeated 0..255 ramp.
    n = max(0, size - TAG_SIZE)
    start = msg_id.counter & 0xFF
    return head + (_RAMP * ((start + n) // 256 + 1))[start : start + n]


def parse_message(message: bytes) -> tuple[MsgId, int] | None:
    """(id, type without marker) of a delivered message, or None if it is not one of ours."""
    if len(message) < HEADER_SIZE:
        return None
    order = order_of(struct.unpack_from("<I", message, 0)[0])
    msg_type, num_groups, data_len = struct.unpack_from(order + "I32xi4xi", message, 0)
    start = HEADER_SIZE + GROUP_NAME_SIZE * num_groups
    if num_groups < 0 or data_len < TAG_SIZE or start + data_len != len(message):
        return None
    tag, origin, inc, counter = struct.unpack_from(_TAG_FMT, message, start)
    if tag != TAG or message[start:] != tag_payload(MsgId(origin, inc, counter), data_len):
        return None
    return MsgId(origin, inc, counter), msg_type & ~ENDIAN_MARKER & 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Submission:
    msg_id: MsgId
    msg_type: int
    message: bytes


@dataclass(slots=True)
class ClientMix:
    """How simulated clients behave: weights per service type and message sizes."""

    weights: tuple[tuple[str, int], ...] = (
        ("UNRELIABLE", 1),
        ("RELIABLE", 3),
        ("FIFO", 3),
        ("CAUSAL", 1),
        ("AGREED", 6),
        ("SAFE", 4),
        ("JOIN", 1),
        ("LEAVE", 1),
        ("KILL", 1),  # a client's SP_disconnect: AGREED, to its own private group
    )
    large_fraction: float = 0.08  # multi-fragment messages (1432-byte packet bodies)
    max_large: int = 6000


class ClientSet:
    """The clients of one daemon incarnation: they make the next message to submit."""

    GROUPS = ("grp", "wack1", "g2", "g3")

    def __init__(self, daemon: int, incarnation: int, mix: ClientMix) -> None:
        self.daemon = daemon
        self.incarnation = incarnation
        self.mix = mix
        self.counter = 0
        self.groups_counter = 0

    def next_message(self, rng: random.Random) -> Submission:
        names = [n for n, _ in self.mix.weights]
        service = rng.choices(names, weights=[w for _, w in self.mix.weights])[0]
        msg_type = SERVICES[service]
        sender = f"#c{rng.randint(1, 3)}#d{self.daemon}"
        if service in ("JOIN", "LEAVE"):
            groups: tuple[str, ...] = (rng.choice(self.GROUPS),)
        elif service == "KILL":
            groups = (sender,)
        else:
            groups = tuple(rng.sample(self.GROUPS, rng.randint(1, 2)))
        if rng.random() < self.mix.large_fraction:
            size = rng.randint(1433, self.mix.max_large)
        else:
            size = rng.randint(TAG_SIZE, 200)
        self.counter += 1
        msg_id = MsgId(self.daemon, self.incarnation, self.counter)
        message = build_message(
            msg_type, sender, groups, rng.randint(0, 20), tag_payload(msg_id, size)
        )
        return Submission(msg_id, msg_type, message)

    def groups_message(self) -> Submission:
        """The group layer's GROUPS message for a state exchange (§9.3): AGREED, sender =
        the daemon name, no groups. Its body is our tag; the exchange it belongs to is kept
        by the simulator, not in the bytes."""
        self.groups_counter += 1
        msg_id = MsgId(self.daemon, self.incarnation | GROUP_LAYER, self.groups_counter)
        msg_type = GROUPS_MESS | AGREED_MESS
        message = build_message(msg_type, f"d{self.daemon}", (), 0, tag_payload(msg_id, 40))
        return Submission(msg_id, msg_type, message)
