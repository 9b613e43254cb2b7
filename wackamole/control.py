"""The control-socket protocol between wackatrl and wackamole: byte layouts only.

Pure encode/decode functions shared by the client (wackatrl.py) and the daemon's control
server. Requests are one opcode byte; replies are big-endian (unlike the peer protocol);
addresses are the 4 raw network-order bytes. No sockets here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address

from wackamole.config.model import IFNAMSIZ, MAX_EXTRAS, IpSpec, Vif

RECORD_SIZE = 900  # int32 claim + 32 interface records of 28 bytes
IFACE_RECORD_SIZE = IFNAMSIZ + 12
IFACE_SLOTS = 32  # owner, primary, then up to 30 extras (the daemon fills at most 29)
LENGTH_SIZE = 4
_IFACE = struct.Struct(f">{IFNAMSIZ}s4s4s4s")
_INT = struct.Struct(">i")
_UINT = struct.Struct(">I")
_ZERO = IPv4Address(0)


class Op(IntEnum):
    """Request opcodes (one byte on the wire)."""

    GET_WACK_STATE = 0
    WACK_SERVICE_FAILURE = 1
    WACK_SERVICE_SUCCESS = 2


class ControlProtocolError(ValueError):
    """Bytes that are not a valid control message."""


@dataclass(frozen=True)
class IfaceEntry:
    """One interface record of the state dump."""

    name: str
    address: IPv4Address
    broadcast: IPv4Address = _ZERO
    netmask: IPv4Address = _ZERO

    @classmethod
    def from_spec(cls, spec: IpSpec) -> IfaceEntry:
        return cls(spec.ifname, spec.address, spec.broadcast, spec.netmask)


@dataclass(frozen=True)
class VifState:
    """One VIF as the daemon reports it: claim priority, owner (0.0.0.0 = nobody), addresses."""

    claim: int
    owner: IPv4Address
    primary: IfaceEntry
    extras: tuple[IfaceEntry, ...] = ()

    @classmethod
    def from_config(cls, vif: Vif, owner: IPv4Address = _ZERO, claim: int = 0) -> VifState:
        return cls(claim, owner, IfaceEntry.from_spec(vif.primary),
                   tuple(IfaceEntry.from_spec(e) for e in vif.extras))


# --- requests -------------------------------------------------------------------------------

def encode_request(op: Op | int) -> bytes:
    return bytes([int(op)])


def decode_request(data: bytes | int) -> Op:
    """The opcode of one request byte; ControlProtocolError (carrying the code) if unknown."""
    code = data if isinstance(data, int) else data[0]
    try:
        return Op(code)
    except ValueError:
        raise ControlProtocolError(code) from None


# --- replies to FAILURE / SUCCESS -----------------------------------------------------------

def encode_ack(status: int = 0) -> bytes:
    return _INT.pack(status)


def decode_ack(data: bytes) -> int:
    if len(data) != _INT.size:
        raise ControlProtocolError(f"ack must be 4 bytes, got {len(data)}")
    return _INT.unpack(data)[0]


# --- reply to GET_WACK_STATE ----------------------------------------------------------------

def _encode_iface(entry: IfaceEntry | None) -> bytes:
    if entry is None:
        return bytes(IFACE_RECORD_SIZE)
    name = entry.name.encode("utf-8", "surrogateescape")
    if len(name) >= IFNAMSIZ:
        raise ControlProtocolError(f"interface name too long: {entry.name!r}")
    return _IFACE.pack(name, entry.address.packed, entry.broadcast.packed,
                       entry.netmask.packed)


def encode_state(vifs: tuple[VifState, ...] | list[VifState]) -> bytes:
    """The whole reply: uint32 length, then one 900-byte record per VIF in config order."""
    out = [_UINT.pack(RECORD_SIZE * len(vifs))]
    for vif in vifs:
        if len(vif.extras) > MAX_EXTRAS + 1:
            raise ControlProtocolError(f"too many extra addresses: {len(vif.extras)}")
        slots: list[IfaceEntry | None] = [IfaceEntry("", vif.owner), vif.primary, *vif.extras]
        slots += [None] * (IFACE_SLOTS - len(slots))
        out.append(_INT.pack(vif.claim))
        out.extend(_encode_iface(s) for s in slots)
    return b"".join(out)


def decode_state_length(data: bytes) -> int:
    """The length word that precedes the records."""
    if len(data) != LENGTH_SIZE:
        raise ControlProtocolError(f"length must be 4 bytes, got {len(data)}")
    return _UINT.unpack(data)[0]


def _decode_iface(data: bytes) -> IfaceEntry:
    name, addr, bcast, mask = _IFACE.unpack(data)
    return IfaceEntry(name.split(b"\0", 1)[0].decode("utf-8", "surrogateescape"),
                      IPv4Address(addr), IPv4Address(bcast), IPv4Address(mask))


def decode_state_records(body: bytes) -> tuple[VifState, ...]:
    """The records after the length word; a trailing partial record is ignored."""
    vifs = []
    for start in range(0, len(body) - RECORD_SIZE + 1, RECORD_SIZE):
        record = body[start : start + RECORD_SIZE]
        claim = _INT.unpack_from(record)[0]
        entries = [
            _decode_iface(record[4 + i * IFACE_RECORD_SIZE : 4 + (i + 1) * IFACE_RECORD_SIZE])
            for i in range(IFACE_SLOTS)
        ]
        extras = []
        for entry in entries[2:]:
            if entry.address == _ZERO:  # address 0 ends the list, as in the original
                break
            extras.append(entry)
        vifs.append(VifState(claim, entries[0].address, entries[1], tuple(extras)))
    return tuple(vifs)


def mask_bits_x86(netmask: IPv4Address) -> int:
    """The bit count the original wackatrl prints for a netmask on x86 (quirk).

    It reads the network-order mask as a little-endian int and counts from the low bit,
    so every mask from /8 to /32 shows as 32 and /1../7 as 25..31.
    """
    s = int.from_bytes(netmask.packed, "little", signed=True)
    bits = 32
    while bits:
        if (s | 1) == s:
            return bits
        s >>= 1  # arithmetic shift, like C on a signed int
        bits -= 1
    return 0
