"""The contract between the ring engine (ordering + membership) and everything above it.

The engine is sans-IO: the daemon shell, the single-daemon ring and the simulator all drive it
through the same calls and read back the same actions. Nothing here opens a socket or reads a
clock; `now` is monotonic seconds handed in by the caller, and wall-clock seconds (needed for
ring ids) are `now + wall_offset`, so the simulator can give each daemon its own clock offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol


class Channel(IntEnum):
    """Which UDP port a datagram belongs to (P or P+1 of the receiving daemon's segment)."""

    DATA = 0  # port P: data packets, ALIVE/JOIN/REFER/HURRY, monitor commands
    TOKEN = 1  # port P+1: regular tokens and FORM1/FORM2


class DeliveryThreshold(IntEnum):
    """What the group layer currently lets the engine deliver (original's `Prot_set_delivery`)."""

    BLOCK = 0  # nothing: before the group layer reaches GOP, after token loss
    AGREED = 1  # ordered delivery only; RELIABLE early delivery is off (state exchange)
    ALL = 2  # normal operation


@dataclass(frozen=True, slots=True, order=True)
class RingId:
    """A `membership_id`: leader VID and the second it was created (wall clock)."""

    proc_id: int
    time: int


# ---- configuration the engine needs (built by the daemon from SpreadConfig) ----------------


@dataclass(frozen=True, slots=True)
class RingDaemon:
    vid: int  # virtual id (proc_id) as an unsigned 32-bit int
    name: str
    ip: str  # the configured address: datagrams are sent from and to it
    segment: int  # index into RingConfig.segments


@dataclass(frozen=True, slots=True)
class RingSegment:
    port: int  # P: data port; tokens go to P+1
    addresses: tuple[str, ...]  # broadcast/multicast addresses (1..5); unused with one daemon


@dataclass(frozen=True, slots=True)
class RingTimeouts:
    """Seconds. Defaults are the original's LAN defaults; WAN ones come from the config."""

    token: float = 1.250
    hurry: float = 0.500
    alive: float = 0.250
    join: float = 0.250
    rep: float = 0.625
    seg: float = 0.500
    gather: float = 1.250
    form: float = 1.250
    lookup: float = 30.0


@dataclass(frozen=True, slots=True)
class RingConfig:
    my_vid: int
    daemons: tuple[RingDaemon, ...]  # configuration order (segments in file order)
    segments: tuple[RingSegment, ...]
    conf_hash: int  # unsigned 32-bit configuration hash, checked on every packet
    timeouts: RingTimeouts = field(default_factory=RingTimeouts)
    window: int = 160
    personal_window: int = 20
    # 5.0.1 runs the accelerated ring only when spread.conf says `AcceleratedRing = yes`
    accelerated_ring: bool = False
    accelerated_window: int = 15  # spread.conf defaults: Window 160, PersonalWindow 20
    # WideAreaNetwork as resolved from spread.conf; None: "more than one segment", its default
    wide_area_network: bool | None = None


# ---- actions the engine returns --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendDatagram:
    """Send `payload` from my configured IP to (ip, port). Ports are already resolved."""

    ip: str
    port: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Deliver:
    """One client-level message, in the agreed delivery order.

    `message` is the whole reassembled message as the originating daemon built it:
    48-byte message header + 32 * num_groups group names + payload, in the originator's byte
    order (its marker is in the header type). The group layer decodes it.
    """

    message: bytes
    origin_vid: int
    service: int  # the message header's service type bits (with the marker removed)


@dataclass(frozen=True, slots=True)
class TransitionalConfiguration:
    ring_id: RingId
    members: tuple[int, ...]  # VIDs, configuration order


@dataclass(frozen=True, slots=True)
class RegularConfiguration:
    ring_id: RingId
    members: tuple[int, ...]  # VIDs, configuration order


@dataclass(frozen=True, slots=True)
class Log:
    """A line for the daemon's log, in the original's words where users grep for them."""

    priority: int  # 1 pDEBUG .. 6 FATAL, as spread.conf's EventPriority
    text: str


Action = SendDatagram | Deliver | TransitionalConfiguration | RegularConfiguration | Log


class RingEngine(Protocol):
    """What the daemon shell, the group layer and the simulator may call."""

    def start(self, now: float) -> list[Action]:
        """Begin life (the original starts in OP with {me}, then loses the token at once)."""

    def on_datagram(self, now: float, channel: Channel, src_ip: str, data: bytes) -> list[Action]:
        """A datagram arrived on P (DATA) or P+1 (TOKEN) from `src_ip`. Bad ones are dropped."""

    def on_timer(self, now: float) -> list[Action]:
        """Fire every timer due at or before `now`."""

    def next_timer(self) -> float | None:
        """When `on_timer` must next be called (monotonic seconds), or None."""

    def submit(self, now: float, message: bytes) -> list[Action]:
        """Queue one client-level message (header+groups+payload, my byte order) for ordering."""

    def set_delivery_threshold(self, threshold: DeliveryThreshold) -> None:
        """The group layer's gate on what may be delivered (see DeliveryThreshold)."""

    def use_groups_queue(self, on: bool) -> None:
        """During a group-state exchange only GROUPS messages are sent; client ones wait."""
