"""What a client receives, as typed messages carrying exactly what SP_receive reports.

Every message has SP_receive's outputs (service_type, sender, groups, num_groups,
mess_type, endian_mismatch, data); the subclasses add what SP_get_memb_info and
SP_get_vs_sets_info would extract.
"""

from __future__ import annotations

from dataclasses import dataclass

from spread.wire import client as w

_SERVICE_NAMES = (
    (w.UNRELIABLE_MESS, "UNRELIABLE"),
    (w.RELIABLE_MESS, "RELIABLE"),
    (w.FIFO_MESS, "FIFO"),
    (w.CAUSAL_MESS, "CAUSAL"),
    (w.AGREED_MESS, "AGREED"),
    (w.SAFE_MESS, "SAFE"),
)


def service_name(service_type: int) -> str:
    """The lowest service bit's name, in the order spuser tests them."""
    for bit, name in _SERVICE_NAMES:
        if service_type & bit:
            return name
    return ""


@dataclass(frozen=True)
class SpreadMessage:
    """SP_receive's view. `num_groups` is negative when DROP_RECV dropped group names."""

    service_type: int
    sender: str
    groups: tuple[str, ...]
    num_groups: int
    mess_type: int
    endian_mismatch: int
    data: bytes


@dataclass(frozen=True)
class RegularMessage(SpreadMessage):
    """A data message; `service_type` keeps SELF_DISCARD when the sender set it."""

    @property
    def service(self) -> str:
        return service_name(self.service_type)


@dataclass(frozen=True)
class RejectMessage(SpreadMessage):
    """A refused message returned to its sender; service_type = old type | REJECT_MESS."""


@dataclass(frozen=True)
class MembershipMessage(SpreadMessage):
    """REG_MEMB_MESS: `sender` is the group, `groups` the members, `mess_type` my index
    in them (-1 when absent). gid/vs_sets are None/() if the body did not parse."""

    gid: w.GroupId | None = None
    vs_sets: tuple[tuple[str, ...], ...] = ()
    local_vs_set_offset: int = 0

    @property
    def group(self) -> str:
        return self.sender

    @property
    def members(self) -> tuple[str, ...]:
        return self.groups

    @property
    def reason(self) -> str:
        t = self.service_type
        if t & w.CAUSED_BY_JOIN:
            return "join"
        if t & w.CAUSED_BY_LEAVE:
            return "leave"
        if t & w.CAUSED_BY_DISCONNECT:
            return "disconnect"
        if t & w.CAUSED_BY_NETWORK:
            return "network"
        return ""

    @property
    def changed_member(self) -> str:
        """Who joined/left/disconnected (SP_get_memb_info); "" for network changes."""
        if self.reason in ("join", "leave", "disconnect") and self.vs_sets and self.vs_sets[0]:
            return self.vs_sets[0][0]
        return ""

    @property
    def my_vs_set_index(self) -> int:
        offsets = w.vs_set_offsets(self.vs_sets)
        local = self.local_vs_set_offset
        return offsets.index(local) if local in offsets else -1

    @property
    def my_vs_set(self) -> tuple[str, ...]:
        i = self.my_vs_set_index
        return self.vs_sets[i] if i >= 0 else ()


@dataclass(frozen=True)
class TransitionalMessage(SpreadMessage):
    """TRANSITION_MESS: `sender` is the group; `gid` the group's id before the change."""

    gid: w.GroupId | None = None

    @property
    def group(self) -> str:
        return self.sender


@dataclass(frozen=True)
class SelfLeaveMessage(SpreadMessage):
    """CAUSED_BY_LEAVE alone: this connection left `sender`."""

    @property
    def group(self) -> str:
        return self.sender


def build_message(
    service_type: int,
    sender: str,
    groups: tuple[str, ...],
    num_groups: int,
    hint: bytes,
    data: bytes,
    old_type: int | None,
    big_endian_daemon: bool,
    private_group: str,
) -> SpreadMessage:
    """Turn decoded frame parts into the typed message SP_receive would describe.

    `service_type` is the header type with the marker cleared; `num_groups` is what the
    caller reports (negative if groups were dropped).
    """
    if service_type & w.REJECT_MESS:
        mt, mismatch = w.hint_mess_type(hint)
        stype = (old_type or 0) | w.REJECT_MESS
        return RejectMessage(stype, sender, groups, num_groups, mt, int(mismatch), data)
    index = -1
    if service_type & w.REG_MEMB_MESS and num_groups >= 0:
        # libspread looks for itself whenever the bit is there, even on a data message.
        index = next((i for i, g in enumerate(groups) if g == private_group), -1)
    if w.is_regular(service_type):
        mt, mismatch = w.hint_mess_type(hint)
        if index >= 0:
            mt = index
        return RegularMessage(service_type, sender, groups, num_groups, mt, int(mismatch), data)
    if w.is_reg_memb(service_type):
        try:
            body = w.decode_membership_body(data, big=big_endian_daemon)
        except w.WireError:
            return MembershipMessage(service_type, sender, groups, num_groups, index, 0, data)
        return MembershipMessage(
            service_type,
            sender,
            groups,
            num_groups,
            index,
            0,
            data,
            body.gid,
            body.vs_sets,
            body.local_vs_set_offset,
        )
    if w.is_transition(service_type):
        try:
            gid: w.GroupId | None = w.GroupId.decode(data, 0, big_endian_daemon)
        except w.WireError:
            gid = None
        return TransitionalMessage(service_type, sender, groups, num_groups, -1, 0, data, gid)
    if w.is_self_leave(service_type):
        return SelfLeaveMessage(service_type, sender, groups, num_groups, -1, 0, data)
    # Anything else (unknown bits, other membership causes) is reported raw, as libspread does.
    return SpreadMessage(service_type, sender, groups, num_groups, -1, 0, data)
