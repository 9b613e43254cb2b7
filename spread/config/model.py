"""Typed, immutable configuration objects a parsed spread.conf turns into.

Owns the shapes (addresses, interfaces, daemons, segments, the whole config) and the
address text forms the original prints. It does not parse and does no I/O except
`socket.getnameinfo` / `if_indextoname`, which only format numbers.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

# ---- limits and defaults (spread_params.h / configuration.c) --------------------------------
MAX_SEGMENTS = 20
MAX_PROCS_RING = 128
MAX_PROCS_SEGMENT = 128
MAX_ADDRS_SEGMENT = 5
MAX_INTERFACES_PROC = 10
MAX_PROC_NAME = 20  # names keep at most MAX_PROC_NAME - 1 bytes
DEFAULT_SPREAD_PORT = 4803
DEFAULT_WINDOW = 160
DEFAULT_PERSONAL_WINDOW = 20
DEFAULT_ACCELERATED_WINDOW = 15
DEFAULT_MAX_SESSION_MESSAGES = 1000
SP_RUNTIME_DIR = "/var/run/spread"
SP_USER = "spread"
SP_GROUP = "spread"
SP_UNIX_SOCKET_DIR = "/tmp"
AF_INET_NUM = 2  # the numbers the original prints for address families (Linux)
AF_INET6_NUM = 10


class IfType(IntFlag):
    """Interface roles of a daemon's interface line (M, C, D; no letter = all three)."""

    MONITOR = 0x1
    CLIENT = 0x2
    DAEMON = 0x4
    ALL = 0x7
    ANY = 0x8  # the implicit interface of a daemon without an interface block


class PortReuse(IntEnum):
    """SocketPortReuse: SO_REUSEADDR on the client TCP listeners."""

    OFF = 0
    ON = 1
    AUTO = 2


@dataclass(frozen=True, slots=True)
class IpAddress:
    """One IPv4 or IPv6 literal from the file (never a name; DNS results become these too)."""

    family: int  # 4 or 6
    packed: bytes
    scope_id: int = 0  # IPv6 only: from `%ifname` in the file, or found at start-up
    scope_name: str = ""  # the `%ifname` as written (without `%`), if any

    @property
    def ip(self) -> str:
        """Plain address text, no scope (what sockets take together with scope_id)."""
        fam = socket.AF_INET if self.family == 4 else socket.AF_INET6
        return socket.inet_ntop(fam, self.packed)

    @property
    def ntop(self) -> str:
        """The text the original prints for an address (`getnameinfo` NI_NUMERICHOST)."""
        if self.family == 4 or not self.scope_id:
            return self.ip
        try:
            host, _ = socket.getnameinfo((self.ip, 0, 0, self.scope_id), socket.NI_NUMERICHOST)
            return host
        except OSError:
            return f"{self.ip}%{self.scope_id}"

    @property
    def canon(self) -> str:
        """Canonical text used in the configuration hash (no `::`, no scope)."""
        if self.family == 4:
            return ".".join(str(b) for b in self.packed)
        return ":".join(self.packed[i : i + 2].hex() for i in range(0, 16, 2))

    @property
    def is_unspecified(self) -> bool:
        return not any(self.packed)

    @property
    def is_loopback(self) -> bool:
        if self.family == 4:
            return self.packed[0] == 127
        return self.packed == bytes(15) + b"\x01"

    @property
    def is_multicast(self) -> bool:
        if self.family == 4:
            return self.packed[0] & 0xF0 == 224
        return self.packed[0] == 0xFF

    def same_ip(self, other: IpAddress) -> bool:
        """The original's address comparison without port: family and bytes, never scope."""
        return self.family == other.family and self.packed == other.packed

    def sockaddr(self, port: int) -> tuple:
        if self.family == 4:
            return (self.ip, port)
        return (self.ip, port, 0, self.scope_id)


@dataclass(frozen=True, slots=True)
class InterfaceSpec:
    types: IfType
    address: IpAddress


@dataclass(frozen=True, slots=True)
class DaemonSpec:
    """One daemon entry: identity (name, VID) and where it listens."""

    name: str  # already truncated to 19 bytes, as every comparison and the hash use it
    vid: int  # unsigned 32-bit virtual id (explicit or automatic)
    address: IpAddress
    port: int  # its segment's port P (data); tokens use P + 1
    segment: int  # index of its segment, file order
    index_in_segment: int
    interfaces: tuple[InterfaceSpec, ...]  # the implicit one is (ALL|ANY, address)
    explicit_vid: bool = False

    @property
    def ip(self) -> str:
        return self.address.ip

    @property
    def token_port(self) -> int:
        return self.port + 1

    @property
    def has_interface_block(self) -> bool:
        return not (len(self.interfaces) == 1 and self.interfaces[0].types & IfType.ANY)


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    port: int
    addresses: tuple[IpAddress, ...]  # 1..5 broadcast / multicast / other addresses
    daemons: tuple[DaemonSpec, ...]

    @property
    def bcast_needed(self) -> bool:
        """Segment traffic goes to the segment addresses only with two or more daemons."""
        return len(self.daemons) >= 2


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Membership timeouts in milliseconds, as spread.conf writes them."""

    token: int
    hurry: int
    alive: int
    join: int
    rep: int
    seg: int
    gather: int
    form: int
    lookup: int


LAN_TIMEOUTS = Timeouts(1250, 500, 250, 250, 625, 500, 1250, 1250, 30000)
WAN_TIMEOUTS = Timeouts(5000, 1500, 250, 250, 1250, 500, 2500, 2500, 45000)
TIMEOUT_NAMES = ("token", "hurry", "alive", "join", "rep", "seg", "gather", "form", "lookup")


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    """The logging directives as the file left them (the parse log replays them in order)."""

    debug_flags: int = 0x111  # PRINT | EXIT | CONFIGURATION
    priority: int = 2  # INFO
    log_file: str | None = None  # EventLogFile, %h/%H already expanded
    timestamp_format: str | None = None  # strftime format, None = no timestamps
    precise_timestamp: bool = False


@dataclass(frozen=True, slots=True)
class SpreadConfig:
    """Everything a daemon start needs from spread.conf, defaults resolved."""

    segments: tuple[SegmentSpec, ...]
    daemons: tuple[DaemonSpec, ...]  # configuration order: segments in file order
    my: DaemonSpec | None  # None only from parse_config_text (no self-discovery)
    conf_hash: int
    hash_text: str
    filename: str
    active_ip_version: int  # 4 or 6
    window: int = DEFAULT_WINDOW
    personal_window: int = DEFAULT_PERSONAL_WINDOW
    accelerated_window: int = DEFAULT_ACCELERATED_WINDOW
    accelerated_ring_set: bool | None = None  # AcceleratedRing as written, None if absent
    wide_area_set: bool | None = None  # WideAreaNetwork as written, None if absent
    timeouts_set: tuple[tuple[str, int], ...] = ()  # (name, ms) of timeouts written
    max_session_messages: int = DEFAULT_MAX_SESSION_MESSAGES
    dangerous_monitor: bool = False
    port_reuse: PortReuse = PortReuse.AUTO
    runtime_dir: str = SP_RUNTIME_DIR
    daemon_user: str = SP_USER
    daemon_group: str = SP_GROUP
    auth_allowed: tuple[str, ...] = ("NULL",)
    auth_required: tuple[str, ...] = ()
    access_control_policy: str = "PERMIT"
    exclude_seg_addrs_from_hash: bool = False
    ignore_multicast_join_errors: bool = False
    logging: LoggingSettings = field(default_factory=LoggingSettings)

    # ---- values resolved the way the original's start-up resolves them --------------------

    @property
    def wide_area_network(self) -> bool:
        if self.wide_area_set is not None:
            return self.wide_area_set
        return len(self.segments) > 1

    @property
    def accelerated_ring(self) -> bool:
        """The protocol actually run: set after the hash, so an absent key is not hashed."""
        if self.accelerated_ring_set is not None:
            return self.accelerated_ring_set
        return not self.wide_area_network

    @property
    def ring_runs_accelerated(self) -> bool:
        """The ordering protocol 5.0.1 really runs: flow control copies the flag in FC_init(),
        before Memb_init() applies the "not WAN" default above, so only a written
        `AcceleratedRing = yes` turns it on. C peers of a default config run the original ring."""
        return bool(self.accelerated_ring_set)

    @property
    def timeouts(self) -> Timeouts:
        if not self.timeouts_set:
            return WAN_TIMEOUTS if self.wide_area_network else LAN_TIMEOUTS
        given = dict(self.timeouts_set)
        missing = [n for n in TIMEOUT_NAMES if n not in given]
        if missing:  # load_config refuses this file; parse_config_text alone does not
            raise ValueError("only some membership timeouts were given; missing: "
                             + ", ".join(missing))
        return Timeouts(**{n: given[n] for n in TIMEOUT_NAMES})

    @property
    def port(self) -> int:
        """P of my segment: data on P, tokens on P+1, clients on TCP P and /tmp/P."""
        if self.my is None:
            raise ValueError("no daemon identity: use load_config, not parse_config_text")
        return self.my.port

    @property
    def token_port(self) -> int:
        return self.port + 1

    @property
    def client_port(self) -> int:
        """TCP port for clients: P itself."""
        return self.port

    @property
    def unix_socket_path(self) -> str:
        return f"{SP_UNIX_SOCKET_DIR}/{self.port}"

    @property
    def my_segment(self) -> SegmentSpec:
        if self.my is None:
            raise ValueError("no daemon identity")
        return self.segments[self.my.segment]

    def daemon_by_name(self, name: str) -> DaemonSpec | None:
        return next((d for d in self.daemons if d.name == name), None)

    def daemon_by_vid(self, vid: int) -> DaemonSpec | None:
        return next((d for d in self.daemons if d.vid == vid), None)

    def to_ring_config(self):  # -> spread.ring.api.RingConfig (imported lazily: no cycle)
        from spread.ring.api import RingConfig, RingDaemon, RingSegment, RingTimeouts

        if self.my is None:
            raise ValueError("no daemon identity: use load_config, not parse_config_text")
        t = self.timeouts
        return RingConfig(
            my_vid=self.my.vid,
            daemons=tuple(RingDaemon(d.vid, d.name, d.ip, d.segment) for d in self.daemons),
            segments=tuple(
                RingSegment(s.port, tuple(a.ip for a in s.addresses)) for s in self.segments
            ),
            conf_hash=self.conf_hash,
            timeouts=RingTimeouts(
                *(getattr(t, n) / 1000.0 for n in TIMEOUT_NAMES)
            ),
            window=self.window,
            personal_window=self.personal_window,
            accelerated_ring=self.ring_runs_accelerated,
            wide_area_network=self.wide_area_network,
            accelerated_window=self.accelerated_window,
        )
