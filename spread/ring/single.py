"""A ring of one daemon: the RingEngine contract with nothing to agree on.

Used when the configuration has a single daemon (and by tests). Every submitted message is its
own total order: it is delivered at once, unless the group layer has closed the gate
(delivery threshold BLOCK, or a GROUPS exchange holding client messages), in which case it
waits in arrival order until the gate opens and `on_timer` is called.
"""

from __future__ import annotations

from collections import deque

from spread.ring.api import (
    Action,
    Channel,
    Deliver,
    DeliveryThreshold,
    Log,
    RegularConfiguration,
    RingId,
)

_GROUPS_MESS = 0x00080000
_MARKER = 0x80000080


class SingleRing:
    """RingEngine for one daemon: start → RegularConfiguration({me}); submit → Deliver."""

    def __init__(self, my_vid: int, wall_offset: float = 0.0) -> None:
        self.my_vid = my_vid
        self.wall_offset = wall_offset
        self.ring_id: RingId | None = None
        self._threshold = DeliveryThreshold.ALL
        self._groups_queue = False
        self._held: deque[bytes] = deque()

    def start(self, now: float) -> list[Action]:
        self.ring_id = RingId(self.my_vid, int(now + self.wall_offset))
        return [
            Log(2, f"Membership id is ( {_i32(self.my_vid)}, {_i32(self.ring_id.time)})\n"),
            RegularConfiguration(self.ring_id, (self.my_vid,)),
        ]

    def on_datagram(self, now: float, channel: Channel, src_ip: str, data: bytes) -> list[Action]:
        return []

    def on_timer(self, now: float) -> list[Action]:
        out: list[Action] = []
        while self._held and self._open(self._held[0]):
            out.append(self._deliver(self._held.popleft()))
        return out

    def next_timer(self) -> float | None:
        return 0.0 if self._held and self._open(self._held[0]) else None

    def submit(self, now: float, message: bytes) -> list[Action]:
        if self._held or not self._open(message):
            self._held.append(message)
            return self.on_timer(now)
        t = int.from_bytes(message[:4], "little") & ~_MARKER
        return [Deliver(message, self.my_vid, t)]

    def set_delivery_threshold(self, threshold: DeliveryThreshold) -> None:
        self._threshold = threshold

    def use_groups_queue(self, on: bool) -> None:
        self._groups_queue = on

    def _open(self, message: bytes) -> bool:
        if self._threshold == DeliveryThreshold.BLOCK:
            return False
        return not self._groups_queue or bool(int.from_bytes(message[:4], "little") & _GROUPS_MESS)

    def _deliver(self, message: bytes) -> Deliver:
        t = int.from_bytes(message[:4], "little") & ~_MARKER
        return Deliver(message, self.my_vid, t)


def _i32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x
