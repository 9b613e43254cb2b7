"""A tiny deterministic network for driving a few ring engines in one process.

Owns: a heap of datagrams ordered by arrival time, the engines' timers, crash/restart and
simple link cuts. Used by the ring unit tests and bench/engine.py. It is deliberately small;
the randomized simulator with EVS checkers lives in spread/sim/.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

from spread.ring.api import (
    Action,
    Channel,
    Deliver,
    RegularConfiguration,
    RingConfig,
    RingDaemon,
    RingSegment,
    RingTimeouts,
    SendDatagram,
    TransitionalConfiguration,
)
from spread.ring.engine import Engine
from spread.wire.client import encode_header, encode_name


def make_configs(
    names: list[list[str]] | list[str],
    *,
    port: int = 4803,
    conf_hash: int = 0x83A521D0,
    timeouts: RingTimeouts | None = None,
    accelerated_ring: bool = False,
    **kw: int,
) -> dict[int, RingConfig]:
    """One RingConfig per daemon. `names` is one segment's daemon names, or a list of
    segments. Daemon k of segment s gets IP 10.0.s.(k+1) and VID = that IP as an int."""
    segs: list[list[str]] = [names] if names and isinstance(names[0], str) else names  # type: ignore[assignment,list-item]
    daemons: list[RingDaemon] = []
    segments: list[RingSegment] = []
    for s, seg in enumerate(segs):
        segments.append(RingSegment(port + 10 * s, (f"10.0.{s}.255",)))
        for k, name in enumerate(seg):
            ip = f"10.0.{s}.{k + 1}"
            vid = (10 << 24) | (s << 8) | (k + 1)
            daemons.append(RingDaemon(vid, name, ip, s))
    out = {}
    for d in daemons:
        out[d.vid] = RingConfig(
            my_vid=d.vid,
            daemons=tuple(daemons),
            segments=tuple(segments),
            conf_hash=conf_hash,
            timeouts=timeouts or RingTimeouts(),
            accelerated_ring=accelerated_ring,
            **kw,
        )
    return out


@dataclass(order=True)
class _Flight:
    time: float
    order: int
    dst: int = field(compare=False)
    channel: Channel = field(compare=False)
    src_ip: str = field(compare=False)
    data: bytes = field(compare=False)


@dataclass
class Sent:
    time: float
    src: int
    dst: tuple[int, ...]
    datagram: SendDatagram


class Harness:
    """Engines keyed by VID on a lossless network with a fixed one-way latency."""

    def __init__(
        self,
        configs: dict[int, RingConfig],
        *,
        latency: float = 0.0001,
        wall_offset: float = 1_795_573_000.0,
        record: bool = True,
    ) -> None:
        self.configs = configs
        self.latency = latency
        self.wall_offset = wall_offset
        self.engines: dict[int, Engine] = {}
        self.now = 0.0
        self.heap: list[_Flight] = []
        self._order = 0
        self.record = record
        self.sent: list[Sent] = []
        self.events: dict[int, list[Action]] = {vid: [] for vid in configs}
        self.event_times: dict[int, list[float]] = {vid: [] for vid in configs}
        self.blocked: set[tuple[int, int]] = set()
        self.drop: Callable[[float, int, int, Channel, bytes], bool] | None = None
        # called for every non-datagram action, e.g. to play the group layer
        self.on_action: Callable[[int, Action], None] | None = None
        any_cfg = next(iter(configs.values()))
        self.vid_of_ip = {d.ip: d.vid for d in any_cfg.daemons}
        self.seg_of_addr: dict[tuple[str, int], int] = {}
        self.port_of_seg: dict[int, int] = {}
        for i, seg in enumerate(any_cfg.segments):
            self.port_of_seg[i] = seg.port
            for a in seg.addresses:
                self.seg_of_addr[(a, seg.port)] = i
        self.seg_members = {
            i: [d.vid for d in any_cfg.daemons if d.segment == i]
            for i in range(len(any_cfg.segments))
        }
        self.ip_of = {d.vid: d.ip for d in any_cfg.daemons}
        self.seg_of = {d.vid: d.segment for d in any_cfg.daemons}

    # ---- life cycle ----

    def start(self, vid: int, at: float | None = None) -> None:
        if at is not None:
            self.run_until(at)
        eng = Engine(self.configs[vid], self.wall_offset)
        self.engines[vid] = eng
        self._dispatch(vid, eng.start(self.now))

    def crash(self, vid: int) -> None:
        self.engines.pop(vid, None)

    def cut(self, a: int, b: int) -> None:
        self.blocked.add((a, b))
        self.blocked.add((b, a))

    def heal(self) -> None:
        self.blocked.clear()

    def submit(self, vid: int, message: bytes) -> None:
        self._dispatch(vid, self.engines[vid].submit(self.now, message))

    # ---- running ----

    def step(self, until: float) -> bool:
        """Run the earliest event at or before `until`; False when there is none."""
        t_msg = self.heap[0].time if self.heap else float("inf")
        t_tim = float("inf")
        who = -1
        for vid, eng in self.engines.items():
            nt = eng.next_timer()
            if nt is not None and nt < t_tim:
                t_tim, who = nt, vid
        t = min(t_msg, t_tim)
        if t > until:
            return False
        self.now = max(self.now, t)
        if t_tim <= t_msg:
            eng = self.engines[who]
            self._dispatch(who, eng.on_timer(self.now))
            return True
        f = heapq.heappop(self.heap)
        eng2 = self.engines.get(f.dst)
        if eng2 is not None:
            self._dispatch(f.dst, eng2.on_datagram(self.now, f.channel, f.src_ip, f.data))
        return True

    def run_until(self, until: float) -> None:
        while self.step(until):
            pass
        self.now = max(self.now, until)

    def send_at(self, t: float, dst: int, channel: Channel, src: int, data: bytes) -> None:
        """Put a datagram from daemon `src` on the wire to arrive at `dst` at time `t`."""
        self._order += 1
        heapq.heappush(self.heap, _Flight(t, self._order, dst, channel, self.ip_of[src], data))

    def inject(self, dst: int, channel: Channel, src_ip: str, data: bytes) -> list[Action]:
        acts = self.engines[dst].on_datagram(self.now, channel, src_ip, data)
        self._dispatch(dst, acts)
        return acts

    def _dispatch(self, src: int, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, SendDatagram):
                self._route(src, a)
            else:
                if self.record or not isinstance(a, Deliver):
                    self.events[src].append(a)
                    self.event_times[src].append(self.now)
                if self.on_action is not None:
                    self.on_action(src, a)

    def _route(self, src: int, a: SendDatagram) -> None:
        seg = self.seg_of_addr.get((a.ip, a.port))
        if seg is not None:
            dsts = tuple(self.seg_members[seg])
            channel = Channel.DATA
        else:
            vid = self.vid_of_ip.get(a.ip)
            if vid is None:
                return
            dsts = (vid,)
            base = self.port_of_seg[self.seg_of[vid]]
            channel = Channel.TOKEN if a.port == base + 1 else Channel.DATA
        if self.record:
            self.sent.append(Sent(self.now, src, dsts, a))
        src_ip = self.ip_of[src]
        for d in dsts:
            if (src, d) in self.blocked:
                continue
            if self.drop is not None and self.drop(self.now, src, d, channel, a.payload):
                continue
            self._order += 1
            heapq.heappush(
                self.heap,
                _Flight(self.now + self.latency, self._order, d, channel, src_ip, a.payload),
            )

    # ---- reading results ----

    def delivered(self, vid: int) -> list[bytes]:
        return [a.message for a in self.events[vid] if isinstance(a, Deliver)]

    def configurations(self, vid: int) -> list[TransitionalConfiguration | RegularConfiguration]:
        return [
            a
            for a in self.events[vid]
            if isinstance(a, TransitionalConfiguration | RegularConfiguration)
        ]

    def regular(self, vid: int) -> list[RegularConfiguration]:
        return [a for a in self.events[vid] if isinstance(a, RegularConfiguration)]


def client_message(
    service: int, payload: bytes, sender: str = "#user#d1", groups: tuple[str, ...] = ("grp",)
) -> bytes:
    """A whole client-level message (header + groups + payload) as a daemon queues it."""
    names = b"".join(encode_name(g) for g in groups)
    return encode_header(service, sender, len(groups), 0, len(payload)) + names + payload
