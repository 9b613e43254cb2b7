"""What a daemon does with spmonitor's control packets (daemon protocol §4.1 and §10), sans-IO.

A `MonitorDesk` is fed the raw datagrams of port P whose type word carries a control bit and
returns actions for the daemon shell: answer a STATUS query, install or lift a monitor
partition, change the flow-control windows, or exit when told to. It screens each packet the
way the original's Net_recv does (size, configuration hash, configured transmitter, source IP),
and applies DangerousMonitor. The shell gathers the status figures and carries the actions out.

RELOAD is answered with a log line and otherwise ignored: dynamic reconfiguration needs the
ring engine to change its daemon list, which it cannot do yet (docs/compat.md).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from spread.config import alarm as A
from spread.wire.daemon import (
    CONTROL_TYPE,
    FC_TYPE,
    PARTITION_TYPE,
    RELOAD_TYPE,
    STATUS_TYPE,
    FlowControlCmd,
    PacketError,
    PacketHeader,
    Partition,
    Reload,
    Status,
    StatusReply,
    decode_packet,
    is_big_endian_sender,
    screen_sender,
)
from spread.wire.endian import ENDIAN_MARKER

KILL_COMPONENT = -1  # component[me] == -1: "Terminate" in spmonitor's menu


@dataclass(frozen=True, slots=True)
class ReplyStatus:
    """Send my status to `ip`:`port` from the status socket."""

    ip: str
    port: int


@dataclass(frozen=True, slots=True)
class SetPartition:
    """Drop traffic from daemons whose component differs from mine (config order)."""

    components: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SetFlowControl:
    """New windows; -1 keeps a value."""

    window: int
    personal_window: int
    accelerated_window: int


@dataclass(frozen=True, slots=True)
class ExitByMonitor:
    """The monitor's Terminate: log `text` as FATAL and end the daemon."""

    text: str


@dataclass(frozen=True, slots=True)
class Note:
    """One log line (the original's Alarm priority, type and wording)."""

    priority: int
    types: int
    text: str


MonitorAction = ReplyStatus | SetPartition | SetFlowControl | ExitByMonitor | Note


def is_control_datagram(data: bytes) -> bool:
    """True for a port-P datagram whose type word (in either byte order) has a control bit."""
    if len(data) < 4:
        return False
    (raw,) = struct.unpack_from("<I", data)
    if raw & ENDIAN_MARKER != ENDIAN_MARKER:
        (raw,) = struct.unpack_from(">I", data)
    return bool(raw & CONTROL_TYPE)


class MonitorDesk:
    """One daemon's handling of monitor commands.

    `daemons` is the configuration in config order as (vid, ip) pairs; `my_vid` is mine.
    """

    def __init__(
        self,
        daemons: Sequence[tuple[int, str]],
        my_vid: int,
        conf_hash: int,
        *,
        dangerous: bool,
    ) -> None:
        self.order = [vid for vid, _ in daemons]
        self.ip_of: Mapping[int, str] = dict(daemons)
        self.my_vid = my_vid
        self.my_index = self.order.index(my_vid)
        self.conf_hash = conf_hash
        self.dangerous = dangerous
        self.counters: Counter[str] = Counter()

    def on_datagram(self, src_ip: str, src_port: int, data: bytes) -> list[MonitorAction]:
        """One control datagram from [src_ip]:src_port; what the daemon must do about it."""
        where = f"[{src_ip}]:{src_port}"
        try:
            pkt = decode_packet(data)
        except PacketError as e:
            self.counters["malformed"] += 1
            return [Note(A.WARNING, A.NETWORK, f"Net_recv: ignoring monitor msg from {where}: "
                                               f"{e}")]
        h: PacketHeader = pkt.header  # type: ignore[union-attr]
        why = screen_sender(h.transmiter_id, h.conf_hash, src_ip,
                            my_conf_hash=self.conf_hash, ip_of_vid=self.ip_of)
        if why is not None:
            self.counters["screened"] += 1
            priority = A.INFO if "not in my configuration" in why else A.WARNING
            bare = f"; from {src_ip}"  # screen_sender names the IP; the original adds the port
            why = why[: -len(bare)] if why.endswith(bare) else why
            return [Note(priority, A.NETWORK, f"{why}; from {where}")]
        # the type as the original logs it: in host order after its flip, so a big-endian
        # sender's word has no marker
        shown = h.type if is_big_endian_sender(data) else (h.type | ENDIAN_MARKER) & 0xFFFFFFFF
        out: list[MonitorAction] = [
            Note(A.INFO, A.NETWORK, f"Net_recv: got monitor control msg of type "
                                    f"0x{shown:08X} from {where}")
        ]
        # the original tests PARTITION in its network layer, then STATUS, FC, RELOAD
        if h.type & PARTITION_TYPE:
            out += self._partition(pkt, where)  # type: ignore[arg-type]
        elif h.type & STATUS_TYPE:
            out += self._status(h)
        elif h.type & FC_TYPE:
            out += self._flow_control(pkt)  # type: ignore[arg-type]
        elif h.type & RELOAD_TYPE:
            out += self._reload(pkt)  # type: ignore[arg-type]
        return out

    # ---- the four commands ------------------------------------------------------------------

    def _partition(self, pkt: Partition, where: str) -> list[MonitorAction]:
        if not self.dangerous:
            self.counters["denied"] += 1
            return [Note(A.PRINT, A.NETWORK,
                         f"Net_handle_monitor: Request to set partition or kill daemons from "
                         f"{where} denied. Daemon in safe mode!")]
        n = len(self.order)
        if len(pkt.components) < n:
            self.counters["short"] += 1
            return [Note(A.WARNING, A.NETWORK,
                         f"Net_handle_monitor: received monitor partition packet from {where}; "
                         f"proc_id = {_vid_text(pkt.header.proc_id)}; msg too small! "
                         "Ignoring!")]
        components = tuple(pkt.components[:n])
        self.counters["partition"] += 1
        mine = components[self.my_index]
        if mine == KILL_COMPONENT:
            return [SetPartition(components),
                    ExitByMonitor("Net_handle_monitor: Instructed to exit by monitor!")]
        return [SetPartition(components),
                Note(A.PRINT, A.NETWORK, f"Net_handle_monitor: Got monitor partition message; "
                                         f"I'm in component {mine}")]

    def _status(self, h: PacketHeader) -> list[MonitorAction]:
        ip = self.ip_of.get(h.proc_id)
        if ip is None:
            self.counters["illegal"] += 1
            return [Note(A.WARNING, A.STATUS, "Stat_handle_message: Illegal monitor request")]
        self.counters["status"] += 1
        return [ReplyStatus(ip, h.seq & 0xFFFF)]  # the monitor's port travels in `seq`

    def _flow_control(self, pkt: FlowControlCmd) -> list[MonitorAction]:
        who = _vid_text(pkt.header.proc_id)
        if not self.dangerous:
            self.counters["denied"] += 1
            return [Note(A.WARNING, A.FLOW_CONTROL,
                         f"FC_handle_message: Request to change flow control from ({who}) "
                         "denied. Monitor in safe mode")]
        if pkt.header.proc_id not in self.ip_of:
            self.counters["illegal"] += 1
            return [Note(A.WARNING, A.FLOW_CONTROL,
                         "FC_handle_message: Illegal monitor request")]
        n = len(self.order)
        if len(pkt.entries) < n + 1:  # the original reads past a short packet; we refuse it
            self.counters["short"] += 1
            return [Note(A.WARNING, A.FLOW_CONTROL,
                         f"FC_handle_message: flow control packet from ({who}) has "
                         f"{len(pkt.entries)} entries, {n + 1} needed; ignored")]
        self.counters["flow_control"] += 1
        personal, accelerated = pkt.entries[self.my_index]
        return [SetFlowControl(pkt.entries[n][0], personal, accelerated)]

    def _reload(self, pkt: Reload) -> list[MonitorAction]:
        self.counters["reload"] += 1
        return [Note(A.PRINT, A.PROTOCOL,
                     "Prot_handle_conf_reload: configuration reload requested by monitor "
                     f"({_vid_text(pkt.header.proc_id)}); this daemon cannot reload its "
                     "configuration while running: restart it instead. Ignored.")]


def status_reply(my_vid: int, status: Status) -> bytes:
    """The STATUS answer as the original sends it: conf_hash and transmitter 0."""
    return StatusReply(PacketHeader(STATUS_TYPE, 0, my_vid), status).encode()


def build_status(ring: Mapping[str, int], **daemon_part: int) -> Status:
    """A Status from the engine's `status()` figures plus the daemon's own ones."""
    values = dict(ring)
    values.update(daemon_part)
    return Status(**{k: _fit(k, v) for k, v in values.items()})


_INT16_FIELDS = frozenset({
    "membership_changes", "num_procs", "num_segments", "window", "personal_window",
    "accelerated_ring", "accelerated_window", "num_sessions", "num_groups",
})


_UNSIGNED_FIELDS = frozenset({"my_id", "leader_id"})


def _fit(name: str, v: int) -> int:
    """Wrap a counter into its C field (int16 or int32), as the C struct would hold it."""
    if name in _UNSIGNED_FIELDS:
        return v & 0xFFFFFFFF
    bits = 16 if name in _INT16_FIELDS or name.endswith("_version") else 32
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _vid_text(vid: int) -> str:
    v = vid & 0xFFFFFFFF
    return f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}"

