"""The daemon's group state and who receives what (daemon protocol §9, client protocol §6–§8).

Owns: which local session is which private group, every group's members per daemon, group
ids, the GOP/GTRANS/GGATHER/GGT state machine, GROUPS messages (built, stored, merged) and the
membership notices local members get. It is fed the ring engine's actions in delivery order
and answers with actions: bytes for local sessions, messages to submit to the ring, and gates
for the engine and the session shell. It must not know sockets, clocks or the ring's packets.
"""

from __future__ import annotations

import struct
from bisect import insort
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import cmp_to_key

from spread.groups import memb
from spread.groups.bits import (
    AGREED_MESS,
    CAUSED_BY_DISCONNECT,
    CAUSED_BY_JOIN,
    CAUSED_BY_LEAVE,
    ENDIAN_MARKER,
    GROUPS_MESS,
    JOIN_MESS,
    KILL_MESS,
    LEAVE_MESS,
    RELIABLE_MESS,
    SAFE_MESS,
    SELF_DISCARD,
)
from spread.ring.api import (
    Deliver,
    DeliveryThreshold,
    Log,
    RegularConfiguration,
    RingId,
    TransitionalConfiguration,
)

GROUPS_BUF_SIZE = 100_000
_DATA_HEADER = 48  # the C code reserves a message header's worth in every GROUPS buffer
_GROUP_INFO = 32 + 12 + 2 + 2
_DAEMON_INFO = 4 + 8 + 2
_CONTROL = JOIN_MESS | LEAVE_MESS | KILL_MESS | GROUPS_MESS
_LE_HEAD = struct.Struct("<I32siIi")
_BE_HEAD = struct.Struct(">I32siIi")
_U32LE = struct.Struct("<I")

PRINT, ERROR, WARNING, INFO, PDEBUG = 6, 4, 3, 2, 1  # EventPriority numbers (6 = always)


class GState(IntEnum):
    GOP = 1
    GTRANS = 2
    GGATHER = 3
    GGT = 4


# ---- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Queue `data` (a whole client message) to each of these local sessions."""

    sessions: Sequence[int]
    data: bytes


@dataclass(frozen=True, slots=True)
class Submit:
    """Hand `message` (header+groups+payload, little-endian) to the ring engine for ordering."""

    message: bytes


@dataclass(frozen=True, slots=True)
class SetDeliveryThreshold:
    threshold: DeliveryThreshold


@dataclass(frozen=True, slots=True)
class UseGroupsQueue:
    on: bool


@dataclass(frozen=True, slots=True)
class ReadClients:
    """Stop (False) or resume (True) reading client sockets: the state exchange holds them."""

    on: bool


@dataclass(frozen=True, slots=True)
class SessionGone:
    """The session's kill went through the total order: its name is free, forget it."""

    session: int


GroupAction = (
    Send | Submit | SetDeliveryThreshold | UseGroupsQueue | ReadClients | SessionGone | Log
)


# ---- state -----------------------------------------------------------------------------------


class _Daemon:
    __slots__ = ("memb_id", "members", "vid")

    def __init__(self, vid: int, memb_id: RingId | None) -> None:
        self.vid = vid
        self.memb_id = memb_id  # None: partitioned from us (the C code's unknown id)
        self.members: list[bytes] = []  # private group names, sorted


class _Group:
    __slots__ = ("changed", "daemons", "index", "local", "memb_id", "name")

    def __init__(self, name: bytes, memb_id: RingId, index: int) -> None:
        self.name = name
        self.memb_id = memb_id
        self.index = index
        self.changed = False
        self.daemons: dict[int, _Daemon] = {}
        self.local: list[int] = []  # session ids of local members (the C `mboxes`)

    def gid(self) -> memb.GroupId:
        return (self.memb_id.proc_id, self.memb_id.time, self.index)

    def size(self) -> int:
        return sum(len(d.members) for d in self.daemons.values())


class _Session:
    __slots__ = ("memb", "name", "sid")

    def __init__(self, sid: int, name: bytes, wants_membership: bool) -> None:
        self.sid = sid
        self.name = name
        self.memb = wants_membership


def _i32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - 0x1_0000_0000 if x & 0x8000_0000 else x


def _cmp_memb_ids(a: RingId | None, b: RingId | None) -> int:
    """The C ordering of membership ids: unknown last, then int32 differences (they wrap)."""
    if a is None or b is None:
        return (a is None) - (b is None)
    if a.proc_id != b.proc_id:
        return _i32(_i32(a.proc_id) - _i32(b.proc_id))
    if a.time != b.time:
        return _i32(_i32(a.time) - _i32(b.time))
    return 0


def name_of(field: bytes) -> bytes:
    """A name field read as C reads it: up to the first NUL."""
    n = field.find(b"\0")
    return field if n < 0 else field[:n]


def proc_of(private_group: bytes) -> bytes | None:
    """The daemon part of `#priv#proc`, or None if the name does not parse (G_private_to_names)."""
    if not private_group.startswith(b"#"):
        return None
    cut = private_group.find(b"#", 1)
    if cut < 2 or cut > 11:
        return None
    proc = private_group[cut + 1 :]
    if not 1 <= len(proc) <= 19:
        return None
    return proc


def to_little_endian(message: bytes) -> bytes:
    """A client message as the originating daemon built it, re-stamped in our order (Flip_mess)."""
    if message[0] & 0x80 and message[3] & 0x80:
        return message
    t, name, ng, _hint, dl = _BE_HEAD.unpack_from(message)
    hint_raw = message[40:44]  # hint is never swapped
    head = _LE_HEAD.pack(t | ENDIAN_MARKER, name, ng, 0, dl)
    return head[:40] + hint_raw + head[44:] + message[48:]


class GroupLayer:
    """One daemon's group layer. Feed it sessions and ring actions; carry out what it returns."""

    def __init__(self, my_vid: int, my_name: str, daemons: Sequence[tuple[int, str]]) -> None:
        self.my_vid = my_vid
        self.my_name = my_name.encode()
        self._conf = {vid: i for i, (vid, _) in enumerate(daemons)}
        self._vid_by_name = {name.encode(): vid for vid, name in daemons}
        self.state = GState.GOP
        self.reg_id: RingId | None = None
        self.reg_members: tuple[int, ...] = (my_vid,)
        self.trans_id: RingId | None = None
        self.trans_members: tuple[int, ...] = (my_vid,)
        self.synced: list[int] = [my_vid]
        self.groups: dict[bytes, _Group] = {}
        self.sessions: dict[int, _Session] = {}
        self.by_name: dict[bytes, int] = {}
        # GROUPS exchange bookkeeping (the C `Gathered` list and counters)
        self._gathered: dict[int, list[bytes]] = {}
        self._gathered_big: dict[int, bool] = {}  # per stored sender: payloads are big-endian
        self._complete: dict[int, bool] = {}
        self._own_complete = False
        self._num_daemons_gathered = 0
        self._bufs: list[bytes] = []
        self._bufs_fresh = False
        self.data_delivered = 0  # client data messages in the total order (STATUS "Deliver M")

    # ---- sessions -------------------------------------------------------------------------

    def name_taken(self, private_group: bytes) -> bool:
        return private_group in self.by_name

    def open_session(self, sid: int, private_group: bytes, wants_membership: bool) -> None:
        self.sessions[sid] = _Session(sid, private_group, wants_membership)
        self.by_name[private_group] = sid

    def kill_message(self, sid: int) -> bytes:
        """The KILL_MESS|SAFE_MESS the daemon sends for a session it found dead (Sess_kill)."""
        name = memb.field(self.sessions[sid].name)
        head = _LE_HEAD.pack(KILL_MESS | SAFE_MESS | ENDIAN_MARKER, name, 1, ENDIAN_MARKER, 0)
        return head + name

    # ---- ring actions ---------------------------------------------------------------------

    def on_ring(self, action: object) -> list[GroupAction]:
        if isinstance(action, Deliver):
            return self.on_deliver(action.message)
        if isinstance(action, TransitionalConfiguration):
            return self.on_transitional(action.ring_id, action.members)
        if isinstance(action, RegularConfiguration):
            return self.on_regular(action.ring_id, action.members)
        return []

    def on_deliver(self, message: bytes) -> list[GroupAction]:
        """One client-level message at its place in the total order."""
        if len(message) < 48:
            return [Log(ERROR, f"G: a {len(message)}-byte message has no header, ignored")]
        big = not (message[0] & 0x80 and message[3] & 0x80)
        if big:
            message = to_little_endian(message)
        t = _U32LE.unpack_from(message)[0]
        if not t & _CONTROL:
            self.data_delivered += 1
            targets = self.targets(message, t)
            return [Send(targets, message)] if targets else []
        sender = name_of(message[4:36])
        if t & GROUPS_MESS:
            return self._on_groups(message, t, big)
        if t & JOIN_MESS:
            gname = _first_group(message)
            said = Log(INFO, f"G_handle_join: {_text(sender)} joins group {_text(gname)}")
        elif t & LEAVE_MESS:
            gname = _first_group(message)
            said = Log(INFO, f"G_handle_leave: {_text(sender)} leaves group {_text(gname)}")
        else:
            said = Log(INFO, f"G_handle_kill: {_text(sender)} is killed")
        if self.state not in (GState.GOP, GState.GTRANS):
            return [said, Log(ERROR, f"G_handle_{_kind(t)}: in state {self.state.name}, "
                                     "ignored")]
        if t & JOIN_MESS:
            return [said, *self._join(sender, gname)]
        if t & LEAVE_MESS:
            return [said, *self._leave(sender, gname)]
        return [said, *self._kill(sender)]

    def targets(self, message: bytes, t: int) -> list[int]:
        """Local sessions that get this data message: one copy each (G_analize_groups)."""
        ng = int.from_bytes(message[36:40], "little")
        if ng == 1:
            key = name_of(message[48:80])
            if key[:1] == b"#":
                sid = self.by_name.get(key)
                out = [] if sid is None else [sid]
            else:
                grp = self.groups.get(key)
                out = [] if grp is None else grp.local
        else:
            seen: dict[int, None] = {}
            for off in range(48, 48 + 32 * ng, 32):
                key = name_of(message[off : off + 32])
                if key[:1] == b"#":
                    sid = self.by_name.get(key)
                    if sid is not None:
                        seen[sid] = None
                else:
                    grp = self.groups.get(key)
                    if grp is not None:
                        for sid in grp.local:
                            seen[sid] = None
            out = list(seen)
        if t & SELF_DISCARD and out:
            me = self.by_name.get(name_of(message[4:36]))
            if me is not None and me in out:
                out = [s for s in out if s != me]
        return out

    # ---- join / leave / kill (GOP and GTRANS) ---------------------------------------------

    def _daemon_key(self, vid: int) -> tuple[int, int]:
        i = self._conf.get(vid)
        return (0, i) if i is not None else (1, vid)

    def _sorted_daemons(self, grp: _Group) -> list[_Daemon]:
        return sorted(grp.daemons.values(), key=lambda d: self._daemon_key(d.vid))

    def _members(self, grp: _Group) -> list[bytes]:
        out: list[bytes] = []
        for d in self._sorted_daemons(grp):
            out.extend(d.members)
        return out

    def _flagged(self, grp: _Group, skip: int | None = None) -> list[int]:
        return [s for s in grp.local if s != skip and self.sessions[s].memb]

    def _join(self, who: bytes, gname: bytes) -> list[GroupAction]:
        proc = proc_of(who)
        vid = self._vid_by_name.get(proc) if proc is not None else None
        if vid is None:
            return [Log(ERROR, f"G_handle_join: unknown proc for {who!r}, ignored")]
        grp = self.groups.get(gname)
        if grp is None:
            rid = self.reg_id if self.state == GState.GOP else self.trans_id
            grp = _Group(gname, rid or RingId(self.my_vid, 0), 0)
            self.groups[gname] = grp
        dmn = grp.daemons.get(vid)
        if dmn is None:
            known = self.state == GState.GOP or vid in self.trans_members
            dmn = _Daemon(vid, grp.memb_id if known else None)
            grp.daemons[vid] = dmn
        if who in dmn.members:
            return [Log(ERROR, f"G_handle_join: {_text(who)} is already in group "
                               f"{_text(gname)}")]
        insort(dmn.members, who)
        grp.index += 1
        new_sid = None
        if vid == self.my_vid:
            new_sid = self.by_name.get(who)
            if new_sid is not None:
                grp.local.append(new_sid)
        if dmn.memb_id is None:
            grp.changed = True
        if not grp.local:
            return []
        if grp.changed:
            return [*self._heavyweight(grp, who, new_sid), *self._trans(grp)]
        return self._lightweight(grp, CAUSED_BY_JOIN, who)

    def _leave(self, who: bytes, gname: bytes) -> list[GroupAction]:
        proc = proc_of(who)
        vid = self._vid_by_name.get(proc) if proc is not None else None
        grp = self.groups.get(gname)
        if grp is None:
            return [Log(ERROR, f"G_handle_leave: group {_text(gname)} does not exist")]
        pname = _text(proc or b"")
        dmn = grp.daemons.get(vid) if vid is not None else None
        if dmn is None:
            return [Log(ERROR, f"G_handle_leave: daemon {pname} doesn't exist in group "
                               f"{_text(gname)}")]
        if who not in dmn.members:
            return [Log(ERROR, f"G_handle_leave: member {_text(who)} does not exist in "
                               f"daemon/group {pname}/{_text(gname)}")]
        out: list[GroupAction] = []
        if vid == self.my_vid:
            sid = self.by_name.get(who)
            if sid is not None:
                if self.sessions[sid].memb:
                    out.append(Send([sid], memb.self_leave(grp.name)))
                if sid in grp.local:
                    grp.local.remove(sid)
        dmn.members.remove(who)
        return out + self._after_removal(grp, dmn, CAUSED_BY_LEAVE, who)

    def _kill(self, who: bytes) -> list[GroupAction]:
        proc = proc_of(who)
        vid = self._vid_by_name.get(proc) if proc is not None else None
        if vid is None:
            return [Log(ERROR, f"G_handle_kill: unknown proc for {who!r}, ignored")]
        sid = self.by_name.get(who) if vid == self.my_vid else None
        out: list[GroupAction] = []
        for gname in sorted(self.groups):
            grp = self.groups[gname]
            dmn = grp.daemons.get(vid)
            if dmn is None or who not in dmn.members:
                continue
            if sid is not None and sid in grp.local:
                grp.local.remove(sid)
            dmn.members.remove(who)
            out += self._after_removal(grp, dmn, CAUSED_BY_DISCONNECT, who)
        if sid is not None:
            del self.sessions[sid]
            del self.by_name[who]
            out.append(SessionGone(sid))
        return out

    def _after_removal(
        self, grp: _Group, dmn: _Daemon, cause: int, who: bytes
    ) -> list[GroupAction]:
        if not dmn.members:
            del grp.daemons[dmn.vid]
        if not grp.daemons:
            del self.groups[grp.name]
            return []
        grp.index += 1
        if not grp.local:
            return []
        if grp.changed:
            return [*self._heavyweight(grp, None, None), *self._trans(grp)]
        return self._lightweight(grp, cause, who)

    # ---- notices --------------------------------------------------------------------------

    def _lightweight(self, grp: _Group, cause: int, who: bytes) -> list[GroupAction]:
        to = self._flagged(grp)
        if not to:
            return []
        return [Send(to, memb.lightweight(grp.name, self._members(grp), grp.gid(), cause, who))]

    def _trans(self, grp: _Group) -> list[GroupAction]:
        to = self._flagged(grp)
        return [Send(to, memb.transition(grp.name, grp.gid()))] if to else []

    def vs_sets(self, grp: _Group, joiner: bytes | None) -> tuple[list[list[bytes]], int]:
        """The vs sets of a CAUSED_BY_NETWORK notice and the index of my daemon's set."""
        order = sorted(
            grp.daemons.values(),
            key=cmp_to_key(
                lambda a, b: (
                    _cmp_memb_ids(a.memb_id, b.memb_id)
                    or _cmp_keys(self._daemon_key(a.vid), self._daemon_key(b.vid))
                )
            ),
        )
        sets: list[list[bytes]] = []
        mine = 0
        cur: RingId | None = None
        for d in order:
            if cur is None or d.memb_id != cur:
                sets.append([])
                cur = d.memb_id
            if d.vid == self.my_vid:
                mine = len(sets) - 1
            sets[-1].extend(m for m in d.members if m != joiner)
        if joiner is not None:
            sets.append([joiner])
        return sets, mine

    def _heavyweight(
        self, grp: _Group, joiner: bytes | None, joiner_sid: int | None
    ) -> list[GroupAction]:
        sets, mine = self.vs_sets(grp, joiner)
        offsets = memb.vs_offsets(sets)
        members = self._members(grp)
        out: list[GroupAction] = []
        to = self._flagged(grp, skip=joiner_sid)
        if to:
            data = memb.heavyweight(grp.name, members, grp.gid(), sets, offsets[mine])
            out.append(Send(to, data))
        if joiner_sid is not None and self.sessions[joiner_sid].memb:
            data = memb.heavyweight(grp.name, members, grp.gid(), sets, offsets[-1])
            out.append(Send([joiner_sid], data))
        return out

    # ---- configuration changes ------------------------------------------------------------

    def on_transitional(self, tid: RingId, members: Sequence[int]) -> list[GroupAction]:
        members = tuple(members)
        if self.state == GState.GOP:
            self.trans_id, self.trans_members = tid, members
            out: list[GroupAction] = []
            for gname in sorted(self.groups):
                grp = self.groups[gname]
                changed = False
                for d in grp.daemons.values():
                    if d.vid not in members:
                        d.memb_id = None
                        changed = True
                if changed:
                    out += self._trans(grp)
                    grp.memb_id, grp.index, grp.changed = tid, 1, True
                    self._update_daemon_memb_ids(grp)
            self.state = GState.GTRANS
            self.synced = [v for v in self.synced if v in members]
            return out
        if self.state == GState.GGATHER:
            self.trans_id, self.trans_members = tid, members
            for grp in self.groups.values():
                if any(v not in members for v in grp.daemons):
                    grp.changed = True
            self.state = GState.GGT
            return []
        return [Log(ERROR, f"G_handle_trans_memb in {self.state.name}: ignored")]

    def on_regular(self, rid: RingId, members: Sequence[int]) -> list[GroupAction]:
        members = tuple(members)
        if self.state == GState.GOP:
            if self.reg_id is None:  # first install: every state is empty, hence in sync
                self.reg_id, self.reg_members = rid, members
                self.trans_id, self.trans_members = rid, members
                self.synced = sorted(set(members) | {self.my_vid}, key=self._daemon_key)
                return [SetDeliveryThreshold(DeliveryThreshold.ALL)]
            return [Log(ERROR, "G_handle_reg_memb in GOP: ignored")]
        if self.state == GState.GTRANS:
            self.reg_id, self.reg_members = rid, members
            if len(self.trans_members) == len(members):
                out: list[GroupAction] = []
                for gname in sorted(self.groups):
                    grp = self.groups[gname]
                    if not grp.changed:
                        continue
                    self._eliminate_partitioned(grp, by_trans=False)
                    if not grp.daemons:
                        del self.groups[gname]
                        continue
                    grp.memb_id, grp.index, grp.changed = rid, 1, False
                    self._update_daemon_memb_ids(grp)
                    if grp.local:
                        out += self._heavyweight(grp, None, None)
                self.state = GState.GOP
                out.append(SetDeliveryThreshold(DeliveryThreshold.ALL))
                return out
            for gname in sorted(self.groups):
                grp = self.groups[gname]
                if grp.changed:
                    self._eliminate_partitioned(grp, by_trans=False)
                    if not grp.daemons:
                        del self.groups[gname]
            out = [
                ReadClients(False),
                UseGroupsQueue(True),
                SetDeliveryThreshold(DeliveryThreshold.AGREED),
            ]
            if self.synced[0] == self.my_vid:
                self._bufs = self._build_bufs()
                self._bufs_fresh = True
                out += self._send_bufs()
            self.state = GState.GGATHER
            return out
        if self.state == GState.GGT:
            self.reg_id, self.reg_members = rid, members
            for rep, payloads in list(self._gathered.items()):
                if self._own_complete and self._complete.get(rep):
                    sset: list[int] = []
                    for p in payloads:
                        sset = self._payload_to_groups(p, self._gathered_big[rep]) or sset
                    self._bufs_fresh = False
                    self._add_to_synced(sset)
            self._gathered.clear()
            self._complete.clear()
            self._gathered_big.clear()
            for gname in sorted(self.groups):
                grp = self.groups[gname]
                if self._eliminate_partitioned(grp, by_trans=True):
                    self._bufs_fresh = False
                    if not grp.daemons:
                        del self.groups[gname]
                    else:
                        grp.changed = True
            before = len(self.synced)
            self.synced = [v for v in self.synced if v in self.trans_members]
            if len(self.synced) != before:
                self._bufs_fresh = False
            self._own_complete = False
            self._num_daemons_gathered = 0
            out = []
            if self.synced and self.synced[0] == self.my_vid:
                if self._bufs_fresh:
                    stamp = _rid_bytes(rid)
                    self._bufs = [stamp + b[8:] for b in self._bufs]
                else:
                    self._bufs = self._build_bufs()
                    self._bufs_fresh = True
                out += self._send_bufs()
            self.state = GState.GGATHER
            return out
        return [Log(ERROR, f"G_handle_reg_memb in {self.state.name}: ignored")]

    def dump(self) -> list[GroupAction]:
        """The original's G_print after a state exchange: every group and its members."""
        lines = ["++++++++++++++++++++++\n", f"Num of groups: {len(self.groups)}\n"]
        for i, gname in enumerate(sorted(self.groups), 1):
            grp = self.groups[gname]
            name = gname.decode("latin-1")
            lines.append(f"[{i}] group {name} with {grp.size()} members:\n")
            for d in self._sorted_daemons(grp):
                lines += [f"\t[{k}] {m.decode('latin-1')}\n" for k, m in enumerate(d.members, 1)]
            lines.append("----------------------\n")
        return [Log(PRINT, line) for line in lines]

    def _eliminate_partitioned(self, grp: _Group, by_trans: bool) -> bool:
        gone = [
            d
            for d in grp.daemons.values()
            if (d.vid not in self.trans_members if by_trans else d.memb_id is None)
        ]
        for d in gone:
            del grp.daemons[d.vid]
        return bool(gone)

    def _update_daemon_memb_ids(self, grp: _Group) -> None:
        for d in grp.daemons.values():
            if d.memb_id is not None:
                d.memb_id = grp.memb_id

    def _add_to_synced(self, sset: Sequence[int]) -> None:
        merged = set(self.synced) | set(sset)
        self.synced = sorted(merged, key=self._daemon_key)

    # ---- GROUPS messages (§9.3) -----------------------------------------------------------

    def _build_bufs(self) -> list[bytes]:
        """My group state as GROUPS payloads, first one first; one daemon's part never split."""
        assert self.reg_id is not None
        rid = _rid_bytes(self.reg_id)
        bufs: list[bytes] = []
        cur = bytearray(rid + b"\x01" + _U32LE.pack(len(self.synced)))
        for v in self.synced:
            cur += struct.pack("<I", v & 0xFFFFFFFF)
        for gname in sorted(self.groups):
            grp = self.groups[gname]
            daemons = self._sorted_daemons(grp)
            i = 0
            while True:
                if GROUPS_BUF_SIZE - len(cur) < _GROUP_INFO + _DATA_HEADER:
                    bufs.append(bytes(cur))
                    cur = bytearray(rid + b"\x00")
                    continue
                cur += memb.field(grp.name) + memb.GID.pack(
                    grp.memb_id.proc_id & 0xFFFFFFFF, grp.memb_id.time & 0xFFFFFFFF, grp.index
                )
                cur += struct.pack("<H", 1 if grp.changed else 0)
                count_at = len(cur)
                cur += b"\0\0"
                n = 0
                while i < len(daemons):
                    d = daemons[i]
                    need = _DAEMON_INFO + 32 * len(d.members) + _DATA_HEADER
                    if need > GROUPS_BUF_SIZE - len(cur):
                        break
                    cur += struct.pack(
                        "<IIIH",
                        d.vid & 0xFFFFFFFF,
                        grp.memb_id.proc_id & 0xFFFFFFFF,
                        grp.memb_id.time & 0xFFFFFFFF,
                        len(d.members),
                    )
                    cur += b"".join(memb.field(m) for m in d.members)
                    n += 1
                    i += 1
                struct.pack_into("<H", cur, count_at, n)
                if i >= len(daemons):
                    break
                bufs.append(bytes(cur))
                cur = bytearray(rid + b"\x00")
        bufs.append(bytes(cur))
        return bufs

    def _send_bufs(self) -> list[GroupAction]:
        """Later buffers first as RELIABLE, the first one last as AGREED (the C send order)."""
        out: list[GroupAction] = []
        name = bytearray(memb.field(self.my_name))
        name[28:32] = _U32LE.pack(len(self.synced))
        for k, buf in enumerate(reversed(self._bufs)):
            last = k == len(self._bufs) - 1
            t = GROUPS_MESS | (AGREED_MESS if last else RELIABLE_MESS) | ENDIAN_MARKER
            head = _LE_HEAD.pack(t, bytes(name), 0, ENDIAN_MARKER, len(buf))
            out.append(Submit(head + buf))
        return out

    def _on_groups(self, message: bytes, t: int, big: bool) -> list[GroupAction]:
        if self.state not in (GState.GGATHER, GState.GGT):
            return [Log(ERROR, f"G_handle_groups in {self.state.name}: ignored")]
        payload = message[48:]
        rid = payload[:8]
        if big:
            rid = rid[3::-1] + rid[7:3:-1]
        proc = name_of(message[4:32])
        if len(payload) < 9 or rid != _rid_bytes(self.reg_id):
            pid, ptime = struct.unpack("<ii", rid.ljust(8, b"\0"))
            return [Log(INFO, f"G_handle_groups: GROUPS message received from bad memb id "
                              f"proc {pid}, time {ptime}, daemon {_text(proc)}.")]
        vid = self._vid_by_name.get(proc)
        if vid is None:
            return [Log(ERROR, f"G_handle_groups: Groups message from someone ({_text(proc)}) "
                               "not in conf")]
        mine = vid == self.synced[0]
        if not mine:
            self._gathered.setdefault(vid, []).append(payload)
            self._gathered_big[vid] = big
        if t & AGREED_MESS:
            self._num_daemons_gathered += struct.unpack_from(">I" if big else "<I", message, 32)[0]
            if mine:
                self._own_complete = True
            else:
                self._complete[vid] = True
        if self._num_daemons_gathered != len(self.reg_members):
            return []
        return self._finish_exchange()

    def _finish_exchange(self) -> list[GroupAction]:
        assert self.reg_id is not None
        out: list[GroupAction] = [UseGroupsQueue(False), ReadClients(True)]
        for rep, payloads in self._gathered.items():
            sset: list[int] = []
            for p in payloads:
                sset = self._payload_to_groups(p, self._gathered_big[rep]) or sset
            self._add_to_synced(sset)
        self._gathered.clear()
        self._complete.clear()
        self._gathered_big.clear()
        for gname in sorted(self.groups):
            grp = self.groups[gname]
            if not grp.changed:
                continue
            grp.memb_id, grp.index, grp.changed = self.reg_id, 1, False
            if grp.local:
                out += self._heavyweight(grp, None, None)
            self._update_daemon_memb_ids(grp)
        self._own_complete = False
        self._num_daemons_gathered = 0
        self._bufs = []
        self._bufs_fresh = False
        out += self.dump()
        was_ggt = self.state == GState.GGT
        self.state = GState.GOP
        out.append(SetDeliveryThreshold(DeliveryThreshold.ALL))
        if was_ggt and self.trans_id is not None:
            out += self.on_transitional(self.trans_id, self.trans_members)
        return out

    def _payload_to_groups(self, p: bytes, big: bool) -> list[int]:
        """Merge one stored GROUPS payload into my groups (G_mess_to_groups); its synced set.

        A payload cut short (a peer's bug) merges what is whole and drops the rest.
        """
        try:
            return self._merge_payload(p, big)
        except (struct.error, IndexError):
            return []

    def _merge_payload(self, p: bytes, big: bool) -> list[int]:
        e = ">" if big else "<"
        at = 8
        sset: list[int] = []
        first = p[at] == 1
        at += 1
        if first:
            (n,) = struct.unpack_from(e + "I", p, at)
            at += 4
            sset = list(struct.unpack_from(f"{e}{n}I", p, at))
            at += 4 * n
        while at + _GROUP_INFO <= len(p):
            gname = name_of(p[at : at + 32])
            at += 32
            proc_id, time, index = struct.unpack_from(e + "IIi", p, at)
            at += 12
            changed = p[at : at + 2] != b"\0\0"  # never swapped by C receivers
            (ndmn,) = struct.unpack_from(e + "H", p, at + 2)
            at += 4
            grp = self.groups.get(gname)
            if grp is None:
                grp = _Group(gname, RingId(proc_id, time), index)
                self.groups[gname] = grp
            if changed:
                grp.changed = True
            for _ in range(ndmn):
                vid, mp, mt, nm = struct.unpack_from(e + "IIIH", p, at)
                at += 14
                d = _Daemon(vid, RingId(mp, mt))
                grp.daemons[vid] = d
                if not grp.changed and d.memb_id != grp.memb_id:
                    grp.changed = True
                for _ in range(nm):
                    insort(d.members, name_of(p[at : at + 32]))
                    at += 32
        return sset


def _rid_bytes(rid: RingId | None) -> bytes:
    if rid is None:
        return b"\xff" * 8
    return struct.pack("<II", rid.proc_id & 0xFFFFFFFF, rid.time & 0xFFFFFFFF)


def _cmp_keys(a: tuple[int, int], b: tuple[int, int]) -> int:
    return (a > b) - (a < b)


def _first_group(message: bytes) -> bytes:
    """Join and leave use only the first group; byte 31 is forced to NUL (client §14.4)."""
    return name_of(message[48:79])


def _text(name: bytes) -> str:
    """A name as printf("%s") shows it."""
    return name.split(b"\0", 1)[0].decode("latin-1")


def _kind(t: int) -> str:
    return "join" if t & JOIN_MESS else "leave" if t & LEAVE_MESS else "kill"
