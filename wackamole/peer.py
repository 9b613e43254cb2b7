"""The messages wackamole nodes multicast to each other over Spread: byte layouts only.

Owns the four payloads (STATE, MATURING, BALANCE, ARPCACHE), their Spread message types and
service levels, and the claim priorities they carry. Integers travel in the sender's byte
order (our client library declares little-endian, as x86 C peers do); a receiver told of an
endian mismatch reads them big-endian. IPv4 addresses are the 4 raw network-order bytes and
are never swapped (the C receiver swaps them too, which only breaks the already broken
mixed-endian cluster). Nothing here knows about sockets, timers or interfaces.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address

from spread.wire.client import AGREED_MESS, RELIABLE_MESS, GroupId

# SP_receive buffer of the C program: a larger body is fatal to every C peer.
MAX_BODY = 100_000
ARP_ENTRY_SIZE = 12
MAX_ARP_ENTRIES = MAX_BODY // ARP_ENTRY_SIZE  # 8333, where the C sender stops too


class MessageType(IntEnum):
    """The Spread `mess_type` that tells wackamole messages apart."""

    STATE = 1
    MATURING = 2
    BALANCE = 3
    OPERATOR = 4  # defined, never sent; received ones are ignored
    ARPCACHE = 5


SERVICE = {
    MessageType.STATE: AGREED_MESS,
    MessageType.MATURING: AGREED_MESS,
    MessageType.BALANCE: AGREED_MESS,
    MessageType.ARPCACHE: RELIABLE_MESS,
}


class Claim(IntEnum):
    """How strongly a node holds a VIF (sent in STATE messages and the control dump)."""

    UNCLAIMED = 0
    CLAIMED_BOOT = 1  # defined, never produced
    CLAIMED = 2
    PREFER_BOOT = 3  # defined, never produced
    PREFER = 4  # transient, while prefer lists are merged
    PREFER_CLAIMED = 5


class PeerProtocolError(ValueError):
    """A peer message body that cannot be read as its type says."""


def _order(endian_mismatch: bool) -> str:
    return ">" if endian_mismatch else "<"


def _addr(buf: bytes, offset: int) -> IPv4Address:
    return IPv4Address(bytes(buf[offset : offset + 4]))


@dataclass(frozen=True)
class StateMessage:
    """A node's view after a membership change: who it is and which VIFs it held."""

    gid: GroupId
    address: IPv4Address
    index: int
    mature: bool
    claims: tuple[tuple[IPv4Address, int], ...]  # (VIF primary, claim priority), VIF order
    prefer: tuple[IPv4Address, ...]

    def encode(self, big: bool = False) -> bytes:
        o = ">" if big else "<"
        out = [
            struct.pack(f"{o}3i", self.gid.proc_id, self.gid.time, self.gid.index),
            self.address.packed,
            struct.pack(f"{o}3i", self.index, int(self.mature), len(self.claims)),
        ]
        for vip, prio in self.claims:
            out.append(vip.packed + struct.pack(f"{o}i", prio))
        out.append(struct.pack(f"{o}i", len(self.prefer)))
        out.extend(p.packed for p in self.prefer)
        return b"".join(out)

    @classmethod
    def decode(cls, body: bytes, endian_mismatch: bool = False) -> StateMessage:
        o = _order(endian_mismatch)
        if len(body) < 28:
            raise PeerProtocolError(f"STATE of {len(body)} bytes is shorter than its header")
        gid = GroupId(*struct.unpack_from(f"{o}3i", body, 0))
        index, maturity, n = struct.unpack_from(f"{o}3i", body, 16)
        if n < 0 or 28 + 8 * n + 4 > len(body):
            raise PeerProtocolError(f"STATE claims {n} VIFs in {len(body)} bytes")
        claims = tuple(
            (_addr(body, 28 + 8 * i), struct.unpack_from(f"{o}i", body, 32 + 8 * i)[0])
            for i in range(n)
        )
        pos = 28 + 8 * n
        (p,) = struct.unpack_from(f"{o}i", body, pos)
        if p < 0 or pos + 4 + 4 * p > len(body):
            raise PeerProtocolError(f"STATE lists {p} preferred addresses in {len(body)} bytes")
        prefer = tuple(_addr(body, pos + 4 + 4 * i) for i in range(p))
        return cls(gid, _addr(body, 12), index, maturity == 1, claims, prefer)


@dataclass(frozen=True)
class BalanceMessage:
    """Moves decided by the node at index 0: (new owner's real address, VIF primary)."""

    moves: tuple[tuple[IPv4Address, IPv4Address], ...]
    count: int | None = None  # the count word as received, when it differs from len(moves)

    def encode(self, big: bool = False) -> bytes:
        o = ">" if big else "<"
        # The count written is the number of pairs written (the C sender can overstate it).
        return struct.pack(f"{o}i", len(self.moves)) + b"".join(
            owner.packed + vip.packed for owner, vip in self.moves
        )

    @classmethod
    def decode(cls, body: bytes, endian_mismatch: bool = False) -> BalanceMessage:
        if len(body) < 4:
            raise PeerProtocolError(f"BALANCE of {len(body)} bytes has no count")
        (count,) = struct.unpack_from(f"{_order(endian_mismatch)}i", body, 0)
        # Only the pairs that are really there: C would read stale bytes past a short body.
        n = max(0, min(count, (len(body) - 4) // 8))
        moves = tuple((_addr(body, 4 + 8 * i), _addr(body, 8 + 8 * i)) for i in range(n))
        return cls(moves, None if count == n else count)


@dataclass(frozen=True)
class ArpEntry:
    """One ARP cache entry as shared between nodes."""

    ip: IPv4Address
    mac: bytes  # 6 bytes

    def __str__(self) -> str:
        return f"{self.ip} [{self.mac.hex(':')}]"


def encode_arp_cache(entries: tuple[ArpEntry, ...] | list[ArpEntry]) -> bytes:
    """At most MAX_ARP_ENTRIES entries of 12 bytes (IP, MAC, two zero bytes)."""
    return b"".join(e.ip.packed + e.mac + b"\0\0" for e in entries[:MAX_ARP_ENTRIES])


def decode_arp_cache(body: bytes) -> tuple[ArpEntry, ...]:
    """Every whole 12-byte entry; a trailing partial entry is ignored, as C ignores it."""
    return tuple(
        ArpEntry(_addr(body, i), bytes(body[i + 4 : i + 10]))
        for i in range(0, len(body) - ARP_ENTRY_SIZE + 1, ARP_ENTRY_SIZE)
    )

