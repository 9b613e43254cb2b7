"""The discrete-event simulator: a heap of timed events driving sans-IO ring engines.

It owns simulated time, the network (routing, loss, duplication, delay, reordering,
partitions), daemon life (start, crash, restart, clock offsets) and the simulated clients.
Every random choice comes from one `random.Random(seed)`, and events at the same time run in
the order they were scheduled, so a seed always replays the same run.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from spread.ring.api import (
    Action,
    Channel,
    Deliver,
    DeliveryThreshold,
    Log,
    RegularConfiguration,
    RingConfig,
    RingDaemon,
    RingEngine,
    RingId,
    RingSegment,
    RingTimeouts,
    SendDatagram,
    TransitionalConfiguration,
)
from spread.sim.checkers import EvsChecker, Inc, label, ring_text
from spread.sim.clients import (
    GROUPS_MESS,
    ClientMix,
    ClientSet,
    MsgId,
    parse_message,
    service_name,
)
from spread.sim.faults import Crash, Fault, Heal, Links, Partition, Restart, Schedule

EngineFactory = Callable[[RingConfig, float], RingEngine]

WALL_BASE = 1_795_570_000.0  # wall clock of the simulated world at t=0 (November 2026)
BASE_DELAY = 0.0002  # one-way latency of every copy (s)
LOOP_DELAY = 0.00002  # a daemon's own multicast copy or a datagram to itself
CONF_HASH = 0x5EED5EED
SPIN_LIMIT = 2000  # engine calls at one instant for one daemon before we call it a livelock

# event kinds (ints keep the heap cheap)
_DATAGRAM, _TIMER, _FAULT, _CLIENT, _START, _FINAL, _END, _GROUPS = range(8)


def vid_of(name: str) -> int:
    """A VID that looks like the original's name hash: config order is not VID order."""
    vid = zlib.crc32(name.encode()) & 0xFFFFFFFF
    return vid if vid not in (0, 0xFFFFFFFF) else 1


def ring_configs(
    n: int,
    segments: int = 1,
    timeouts: RingTimeouts | None = None,
    port: int = 4803,
    accelerated: bool = False,
) -> list[RingConfig]:
    """One RingConfig per daemon: daemons dealt round-robin into `segments` segments."""
    segs = max(1, min(segments, n))
    per_seg: list[list[int]] = [[d for d in range(n) if d % segs == s] for s in range(segs)]
    daemons: list[RingDaemon] = []
    for s, members in enumerate(per_seg):
        for d in members:
            daemons.append(RingDaemon(vid_of(f"d{d}"), f"d{d}", f"10.0.{s}.{d + 1}", s))
    segments_t = tuple(RingSegment(port, (f"10.0.{s}.255",)) for s in range(segs))
    tmo = timeouts or RingTimeouts()
    return [
        RingConfig(vid_of(f"d{d}"), tuple(daemons), segments_t, CONF_HASH, tmo,
                   accelerated_ring=accelerated)
        for d in range(n)
    ]


@dataclass(slots=True)
class Stats:
    events: int = 0
    datagrams: int = 0
    lost: int = 0
    delivered: int = 0
    configurations: int = 0
    submitted: int = 0


@dataclass(slots=True)
class _Daemon:
    index: int
    config: RingConfig
    engine: RingEngine | None = None
    incarnation: int = -1
    wall_offset: float = 0.0
    timer_at: float | None = None
    clients: ClientSet | None = None
    spin_at: float = -1.0
    spins: int = 0
    exchange: RingId | None = None  # the ring whose GROUPS exchange is under way
    awaiting: set[int] = field(default_factory=set)  # VIDs whose GROUPS message is due

    @property
    def inc(self) -> Inc:
        return (self.index, self.incarnation)


@dataclass(slots=True)
class SimSetup:
    """Everything a run needs besides the seed's generator."""

    n: int
    schedule: Schedule
    factory: EngineFactory
    timeouts: RingTimeouts = field(default_factory=RingTimeouts)
    segments: int = 1
    duration: float = 20.0  # fault phase; the final heal happens here
    settle: float = 50.0  # after the final heal, until the end of the run
    drain: float = 6.0  # no new client messages during the last `drain` seconds
    rate: float = 3.0  # client messages per second per daemon
    mix: ClientMix = field(default_factory=ClientMix)
    clock_offsets: float = 5.0  # initial wall-clock offsets drawn from +-this
    links: Links = field(default_factory=Links)
    max_events: int = 3_000_000
    timing: bool = True
    groups: bool = True  # emulate the group layer's GROUPS exchange after each configuration
    accelerated: bool = False  # the accelerated ring (spread.conf `AcceleratedRing = yes`)


class Simulator:
    def __init__(
        self,
        seed: int,
        setup: SimSetup,
        trace: bool = False,
        trace_packets: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.seed = seed
        self.setup = setup
        self.rng = rng or random.Random(seed)
        self.now = 0.0
        self.heap: list[tuple[float, int, int, object]] = []
        self.seq = 0
        configs = ring_configs(
            setup.n, setup.segments, setup.timeouts, accelerated=setup.accelerated
        )
        self.daemons = [_Daemon(i, c) for i, c in enumerate(configs)]
        self.vids = tuple(c.my_vid for c in configs)
        cfg = configs[0]
        # Daemon indexes are the numbers in the names; config order groups them by segment.
        where = {int(rd.name[1:]): rd for rd in cfg.daemons}
        self.by_ip = {rd.ip: i for i, rd in where.items()}
        self.seg_of = [where[i].segment for i in range(setup.n)]
        self.ip_of = [where[i].ip for i in range(setup.n)]
        self.seg_addr = {a: s for s, seg in enumerate(cfg.segments) for a in seg.addresses}
        self.links = setup.links
        self.component = [0] * setup.n
        order = tuple(rd.vid for rd in cfg.daemons)
        self.checker = EvsChecker(seed, self.vids, setup.timeouts, order)
        self.stats = Stats()
        self.tracing = trace or trace_packets
        self.trace_packets = trace_packets
        self.trace: list[str] = []
        self.digest = hashlib.sha256()
        self.stopped = False
        self.end = setup.duration + setup.settle
        self.traffic_end = self.end - setup.drain
        self._fault_times = sorted(f.at for f in setup.schedule)
        self.groups_ring: dict[MsgId, RingId] = {}

    # ---- plumbing ----------------------------------------------------------------------

    def _push(self, at: float, kind: int, data: object) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, kind, data))

    def _log(self, who: str, text: str) -> None:
        if self.tracing:
            self.trace.append(f"{self.now:10.4f} {who:6} {text}")

    # ---- the run -----------------------------------------------------------------------

    def run(self) -> None:
        s = self.setup
        for d in self.daemons:
            d.wall_offset = self.rng.uniform(-s.clock_offsets, s.clock_offsets)
            self._push(self.rng.uniform(0.0, 0.5), _START, d.index)
        for f in s.schedule:
            self._push(f.at, _FAULT, f)
        self._push(s.duration, _FINAL, None)
        self._push(self.end, _END, None)
        while self.heap and not self.stopped:
            at, _, kind, data = heapq.heappop(self.heap)
            self.now = at
            self.stats.events += 1
            if self.stats.events > s.max_events:
                self.checker.fail("livelock", (), f"more than {s.max_events} events")
                break
            if kind == _DATAGRAM:
                self._arrive(data)  # type: ignore[arg-type]
            elif kind == _TIMER:
                self._timer(data)  # type: ignore[arg-type]
            elif kind == _CLIENT:
                self._client(data)  # type: ignore[arg-type]
            elif kind == _GROUPS:
                self._submit_groups(data)  # type: ignore[arg-type]
            elif kind == _FAULT:
                self._fault(data)  # type: ignore[arg-type]
            elif kind == _START:
                d = self.daemons[data]  # type: ignore[call-overload]
                self._start(d, d.wall_offset)
            elif kind == _FINAL:
                self._final_heal()
            elif kind == _END:
                self.checker.finish(self.now)
                self._log("sim", "end of run")
                break
            self.checker.advance(self.now)

    # ---- daemon life -------------------------------------------------------------------

    def _start(self, d: _Daemon, wall_offset: float) -> None:
        """Start or restart. A restart never sets a daemon's clock back: ring ids are
        (VID, wall seconds), and a clock stepped back would make the original reuse ids."""
        d.incarnation += 1
        d.wall_offset = wall_offset
        d.timer_at = None
        d.engine = None
        d.exchange, d.awaiting = None, set()
        try:
            engine = self.setup.factory(d.config, WALL_BASE + wall_offset)
        except Exception as exc:  # an engine that cannot even be built
            self._engine_error(d, "construct", exc)
            return
        d.engine = engine
        d.clients = ClientSet(d.index, d.incarnation, self.setup.mix)
        self.checker.on_start(self.now, d.inc)
        self._log(label(d.inc), f"START clock{wall_offset:+.3f}s vid={d.config.my_vid}")
        self._call(d, lambda e: e.start(self.now))
        self._schedule_client(d)

    def _crash(self, d: _Daemon) -> None:
        if d.engine is None:
            return
        d.engine = None
        d.timer_at = None
        self.checker.on_crash(self.now, d.inc)
        self._log(label(d.inc), "CRASH")

    def _engine_error(self, d: _Daemon, what: str, exc: BaseException) -> None:
        self.checker.fail("engine-error", (d.inc,), f"{what} raised {type(exc).__name__}: {exc}")
        self._log(label(d.inc), f"ENGINE ERROR in {what}: {exc!r}")
        self.stopped = True

    def _call(self, d: _Daemon, fn: Callable[[RingEngine], list[Action]], what: str = "") -> None:
        engine = d.engine
        if engine is None:
            return
        if self.now == d.spin_at:
            d.spins += 1
            if d.spins > SPIN_LIMIT:
                self.checker.fail(
                    "livelock", (d.inc,), f"{SPIN_LIMIT} engine calls at one instant"
                )
                self.stopped = True
                return
        else:
            d.spin_at, d.spins = self.now, 0
        try:
            actions = fn(engine)
        except Exception as exc:
            self._engine_error(d, what or "engine call", exc)
            return
        for a in actions:
            if d.engine is not engine or self.stopped:
                break
            self._act(d, a)
        if d.engine is engine:
            self._reschedule(d)

    def _reschedule(self, d: _Daemon) -> None:
        assert d.engine is not None
        try:
            at = d.engine.next_timer()
        except Exception as exc:
            self._engine_error(d, "next_timer", exc)
            return
        if at is not None and at != d.timer_at:
            d.timer_at = at
            self._push(max(at, self.now), _TIMER, (d.index, d.incarnation, at))

    def _timer(self, data: tuple[int, int, float]) -> None:
        index, inc, at = data
        d = self.daemons[index]
        if d.engine is None or d.incarnation != inc or d.timer_at != at:
            return  # stale: rescheduled, crashed or restarted since
        d.timer_at = None
        self._call(d, lambda e: e.on_timer(self.now), "on_timer")

    # ---- what engines do ---------------------------------------------------------------

    def _act(self, d: _Daemon, a: Action) -> None:
        who = label(d.inc)
        if isinstance(a, SendDatagram):
            self._send(d, a)
        elif isinstance(a, Deliver):
            parsed = parse_message(a.message)
            self.stats.delivered += 1
            if parsed is None:
                self._log(who, f"DELIVER ? ({len(a.message)} bytes, not a simulated message)")
                self.checker.on_deliver(self.now, d.inc, None, 0)
                return
            msg_id, msg_type = parsed
            self.digest.update(f"D{self.now:.6f}{d.inc}{msg_id}".encode())
            self._log(who, f"DELIVER {service_name(msg_type):10} {msg_id}")
            self.checker.on_deliver(self.now, d.inc, msg_id, msg_type)
            if msg_type & GROUPS_MESS:
                self._group_layer_on_groups(d, msg_id)
            if a.origin_vid != self.vids[msg_id.origin] or a.service != msg_type:
                self.checker.fail(
                    "integrity",
                    (d.inc,),
                    f"{msg_id} delivered as origin {a.origin_vid} service {a.service:#x}; "
                    f"it came from {self.vids[msg_id.origin]} with type {msg_type:#x}",
                )
        elif isinstance(a, TransitionalConfiguration):
            self.stats.configurations += 1
            self.digest.update(f"T{self.now:.6f}{d.inc}{a.ring_id}{a.members}".encode())
            self._log(who, f"TRANSITIONAL {ring_text(a.ring_id)} {self._names(a.members)}")
            self.checker.on_transitional(self.now, d.inc, a.ring_id, a.members)
        elif isinstance(a, RegularConfiguration):
            self.stats.configurations += 1
            self.digest.update(f"R{self.now:.6f}{d.inc}{a.ring_id}{a.members}".encode())
            self._log(who, f"REGULAR      {ring_text(a.ring_id)} {self._names(a.members)}")
            self.checker.on_regular(self.now, d.inc, a.ring_id, a.members)
            self._group_layer_on_regular(d, a)
        elif isinstance(a, Log):
            self._log(who, f"log[{a.priority}] {a.text}")
        else:
            self.checker.fail("engine-error", (d.inc,), f"unknown action {a!r}")

    # ---- the group layer's part (§9): gate delivery around a GROUPS exchange -------------

    def _group_layer_on_regular(self, d: _Daemon, a: RegularConfiguration) -> None:
        """A new regular configuration: exchange GROUPS messages with every member, with
        delivery at AGREED and client messages held, as the group layer does (GGATHER)."""
        engine = d.engine
        if engine is None:
            return
        if not self.setup.groups or d.clients is None:
            engine.set_delivery_threshold(DeliveryThreshold.ALL)
            return
        engine.set_delivery_threshold(DeliveryThreshold.AGREED)
        engine.use_groups_queue(True)
        d.exchange, d.awaiting = a.ring_id, set(a.members)
        sub = d.clients.groups_message()
        self.groups_ring[sub.msg_id] = a.ring_id
        self.checker.on_submit(self.now, d.inc, sub.msg_id, sub.msg_type)
        self._log(label(d.inc), f"SUBMIT  GROUPS     {sub.msg_id} for {ring_text(a.ring_id)}")
        # Submitted after this action list is handled, as the group layer would.
        self._push(self.now, _GROUPS, (d.index, d.incarnation, sub.message))

    def _group_layer_on_groups(self, d: _Daemon, msg_id: MsgId) -> None:
        if d.exchange is None or self.groups_ring.get(msg_id) != d.exchange:
            return  # from an older exchange: the group layer ignores it
        d.awaiting.discard(self.vids[msg_id.origin])
        if not d.awaiting and d.engine is not None:
            d.exchange = None
            d.engine.set_delivery_threshold(DeliveryThreshold.ALL)
            d.engine.use_groups_queue(False)
            self._log(label(d.inc), "GROUPS exchange complete: delivery open")

    def _submit_groups(self, data: tuple[int, int, bytes]) -> None:
        index, inc, message = data
        d = self.daemons[index]
        if d.engine is None or d.incarnation != inc:
            return
        self._call(d, lambda e: e.submit(self.now, message), "submit")

    def _names(self, vids: tuple[int, ...]) -> str:
        return self.checker.names(vids)

    def _send(self, d: _Daemon, a: SendDatagram) -> None:
        self.stats.datagrams += 1
        targets: list[tuple[int, Channel]] = []
        seg = self.seg_addr.get(a.ip)
        if seg is not None:
            if a.port == d.config.segments[seg].port:
                targets = [(i, Channel.DATA) for i in range(self.setup.n) if self.seg_of[i] == seg]
        elif a.ip in self.by_ip:
            dst = self.by_ip[a.ip]
            port = d.config.segments[self.seg_of[dst]].port
            if a.port == port:
                targets = [(dst, Channel.DATA)]
            elif a.port == port + 1:
                targets = [(dst, Channel.TOKEN)]
        if not targets:
            self.checker.fail(
                "routing", (d.inc,), f"datagram to {a.ip}:{a.port}, which no daemon listens on"
            )
            return
        self.digest.update(f"S{self.now:.6f}{d.inc}{a.ip}{a.port}".encode())
        self.digest.update(a.payload)
        if self.trace_packets:
            self._log(label(d.inc), f"send {a.ip}:{a.port} {len(a.payload)}B")
        src_ip = self.ip_of[d.index]
        for dst, channel in targets:
            self._copy(d.index, dst, channel, src_ip, a.payload)

    def _copy(self, src: int, dst: int, channel: Channel, src_ip: str, payload: bytes) -> None:
        if src == dst:
            self._push(self.now + LOOP_DELAY, _DATAGRAM, (src, dst, channel, src_ip, payload))
            return
        if self.component[src] != self.component[dst]:
            return
        links = self.links
        rng = self.rng
        copies = 2 if links.dup and rng.random() < links.dup else 1
        for _ in range(copies):
            if links.loss and rng.random() < links.loss:
                self.stats.lost += 1
                continue
            delay = BASE_DELAY + (rng.uniform(0.0, links.jitter) if links.jitter else 0.0)
            if links.reorder and rng.random() < links.reorder:
                delay += rng.uniform(0.0, links.reorder_delay)
            self._push(self.now + delay, _DATAGRAM, (src, dst, channel, src_ip, payload))

    def _arrive(self, data: tuple[int, int, Channel, str, bytes]) -> None:
        src, dst, channel, src_ip, payload = data
        if self.component[src] != self.component[dst]:
            return  # the partition came up while it was in flight
        d = self.daemons[dst]
        if d.engine is None:
            return
        if self.trace_packets:
            self._log(label(d.inc), f"recv {channel.name} from {src_ip} {len(payload)}B")
        self._call(d, lambda e: e.on_datagram(self.now, channel, src_ip, payload), "on_datagram")

    # ---- clients -----------------------------------------------------------------------

    def _schedule_client(self, d: _Daemon) -> None:
        if self.setup.rate <= 0:
            return
        at = self.now + self.rng.expovariate(self.setup.rate)
        if at < self.traffic_end:
            self._push(at, _CLIENT, (d.index, d.incarnation))

    def _client(self, data: tuple[int, int]) -> None:
        index, inc = data
        d = self.daemons[index]
        if d.engine is None or d.incarnation != inc or d.clients is None:
            return
        sub = d.clients.next_message(self.rng)
        self.stats.submitted += 1
        self.checker.on_submit(self.now, d.inc, sub.msg_id, sub.msg_type)
        self._log(label(d.inc), f"SUBMIT  {service_name(sub.msg_type):10} {sub.msg_id}")
        self._call(d, lambda e: e.submit(self.now, sub.message), "submit")
        self._schedule_client(d)

    # ---- faults ------------------------------------------------------------------------

    def _fault(self, f: Fault) -> None:
        what = f.what
        self._log("fault", str(what))
        self.digest.update(str(f).encode())
        if self.checker.clean_crashes and not isinstance(what, Links):
            self.checker.cancel_timing()
        if isinstance(what, Links):
            if what.loss or what.dup or what.reorder:
                self.checker.cancel_timing()
            self.links = what
        elif isinstance(what, Partition):
            self.component = [-1 - d for d in range(self.setup.n)]
            for g, members in enumerate(what.groups):
                for m in members:
                    if 0 <= m < self.setup.n:
                        self.component[m] = g
        elif isinstance(what, Heal):
            self.component = [0] * self.setup.n
        elif isinstance(what, Crash):
            d = self.daemons[what.daemon]
            if d.engine is not None and self.setup.timing and self._quiet_around(f.at):
                self.checker.expect_crash_timing(self.now, d.inc)
            self._crash(d)
        elif isinstance(what, Restart):
            d = self.daemons[what.daemon]
            if d.engine is None:
                self._start(d, max(what.clock_offset, d.wall_offset))

    def _quiet_around(self, at: float) -> bool:
        """No other fault near a crash and clean links: its timing must follow the timeouts."""
        _, hi = self.checker.timing_bounds()
        links = self.links
        if links.loss or links.dup or links.reorder:
            return False
        if at + hi + 0.5 > self.setup.duration:
            return False
        near = [t for t in self._fault_times if at - 4.0 < t < at + hi + 0.5]
        return len(near) == 1

    def _final_heal(self) -> None:
        self._log("fault", "final heal: network whole, clean links, crashed daemons restart")
        self.checker.cancel_timing()
        self.component = [0] * self.setup.n
        self.links = Links()
        for d in self.daemons:
            if d.engine is None:
                self._start(d, d.wall_offset)
