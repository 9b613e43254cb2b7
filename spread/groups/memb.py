"""What the daemon itself writes to clients, in the group layer's terms (client protocol §6.2).

Thin adapters over `spread.wire.client`: names stay bytes here, group ids are unsigned 32-bit
(proc_id, time) plus index. Nothing here knows about groups or sessions.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from spread.wire import client as wire

GID = struct.Struct("<IIi")  # proc_id, time, index as the group layer keeps them

GroupId = tuple[int, int, int]  # (proc_id, time, index), proc_id and time as unsigned 32-bit


def field(name: bytes) -> bytes:
    """A 32-byte name field."""
    return wire.encode_name(name)


def _gid(gid: GroupId) -> wire.GroupId:
    return wire.GroupId(wire.GroupId.signed(gid[0]), wire.GroupId.signed(gid[1]), gid[2])


def lightweight(
    group: bytes, members: Sequence[bytes], gid: GroupId, cause: int, changed: bytes
) -> bytes:
    """REG_MEMB_MESS|cause with one vs set holding the joiner, leaver or disconnected member."""
    return wire.encode_membership(cause, group, members, _gid(gid), [[changed]], 0)  # type: ignore[arg-type]


def heavyweight(
    group: bytes,
    members: Sequence[bytes],
    gid: GroupId,
    vs_sets: Sequence[Sequence[bytes]],
    local_offset: int,
) -> bytes:
    """REG_MEMB_MESS|CAUSED_BY_NETWORK with one vs set per set of daemons that stayed together."""
    return wire.encode_membership(
        wire.CAUSED_BY_NETWORK,
        group,
        members,
        _gid(gid),
        vs_sets,
        local_offset,  # type: ignore[arg-type]
    )


def vs_offsets(vs_sets: Sequence[Sequence[bytes]]) -> list[int]:
    """Byte offset of each vs set's count field, measured from the first one."""
    return wire.vs_set_offsets(vs_sets)  # type: ignore[arg-type]


def transition(group: bytes, gid: GroupId) -> bytes:
    """TRANSITION_MESS: no members, body = the group's id before the change."""
    return wire.encode_transition(group, _gid(gid))  # type: ignore[arg-type]


def self_leave(group: bytes) -> bytes:
    """CAUSED_BY_LEAVE alone: the leaver's own notice, 48 bytes, no body."""
    return wire.encode_self_leave(group)  # type: ignore[arg-type]
