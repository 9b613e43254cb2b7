"""Test-only toy engines: an oracle sequencer that is EVS-correct by construction, and flawed
variants of it, each breaking one guarantee so the checkers can be seen to catch it.

The oracle cheats: it reads the simulator's partition and liveness directly instead of running
a protocol. Daemons in one network component share a view once the topology has been stable
for `delay` seconds (the real engine's token + seg + gather timeouts are about 3 s).
Every message is ordered at submission and queued, in one global order, to every live member
of the sender's view; members hand their queue out at their next tick.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spread.ring.api import (
    Action,
    Channel,
    Deliver,
    DeliveryThreshold,
    RegularConfiguration,
    RingConfig,
    RingId,
    TransitionalConfiguration,
)
from spread.sim.clients import SAFE_MESS, is_ordered, parse_message
from spread.sim.network import Simulator


@dataclass
class Flaws:
    reorder: bool = False  # daemon 1 swaps pairs of ordered deliveries
    drop: bool = False  # daemon 1 silently skips every 4th message of others
    duplicate: bool = False  # daemon 1 delivers every 5th message twice
    safe_early: bool = False  # SAFE goes only to members the sender can reach right now
    disagree: bool = False  # daemon 1 reports regular configurations without its last peer
    no_merge: bool = False  # components never merge back after a heal
    no_self: bool = False  # a sender never gets its own messages


@dataclass
class Oracle:
    delay: float = 2.9
    tick: float = 0.05
    flaws: Flaws = field(default_factory=Flaws)
    sim: Simulator | None = None
    engines: dict[int, OracleEngine] = field(default_factory=dict)
    topology: frozenset[frozenset[int]] | None = None
    changed_at: float = 0.0
    rings: int = 0

    @classmethod
    def new_run(cls) -> Oracle:
        """For `--engine tests.sim.toys:Oracle`: one fresh oracle per seed."""
        return cls()

    def attach(self, sim: Simulator) -> None:
        self.sim = sim

    def factory(self, config: RingConfig, wall_offset: float) -> OracleEngine:
        return OracleEngine(self, config)

    # ---- the cheat: who is alive and who can talk --------------------------------------

    def _live(self) -> list[OracleEngine]:
        assert self.sim is not None
        return [e for i, e in self.engines.items() if self.sim.daemons[i].engine is e]

    def _groups(self, live: list[OracleEngine]) -> frozenset[frozenset[int]]:
        assert self.sim is not None
        by: dict[int, set[int]] = {}
        for e in live:
            by.setdefault(self.sim.component[e.index], set()).add(e.index)
        return frozenset(frozenset(g) for g in by.values())

    def sync(self, now: float) -> None:
        live = self._live()
        topo = self._groups(live)
        if topo != self.topology:
            self.topology, self.changed_at = topo, now
        if now - self.changed_at < self.delay:
            return
        by_index = {e.index: e for e in live}
        for group in sorted(topo, key=min):
            members = [by_index[i] for i in sorted(group)]
            if self.flaws.no_merge:
                rings = {m.ring for m in members if m.ring is not None}
                if len(rings) > 1:
                    continue
            if all(m.ring is not None and m.members == tuple(sorted(group)) for m in members):
                continue
            self._install(now, members)

    def _install(self, now: float, members: list[OracleEngine]) -> None:
        self.rings += 1
        first = members[0]
        in_order = sorted((m.index for m in members), key=first.position.__getitem__)
        vids = tuple(first.vid_of(i) for i in in_order)
        ring = RingId(vids[0], 1_000_000 + self.rings)
        for m in members:
            if m.ring is not None:
                here = {x.index for x in members}
                old = sorted((i for i in m.members if i in here), key=first.position.__getitem__)
                trans = tuple(m.vid_of(i) for i in old)
                m.push(TransitionalConfiguration(RingId(trans[0], 2_000_000 + self.rings), trans))
            shown = vids
            if self.flaws.disagree and m.index == 1 and len(vids) > 2:
                shown = vids[:-1] if vids[-1] != m.my_vid else vids[:-2] + vids[-1:]
            m.push(RegularConfiguration(ring, shown))
            m.ring, m.members = ring, tuple(sorted(x.index for x in members))
        for m in members:
            waiting, m.unsent = m.unsent, []
            for msg in waiting:
                self.order(now, m, msg)

    def order(self, now: float, sender: OracleEngine, message: bytes) -> None:
        if sender.ring is None:
            sender.unsent.append(message)
            return
        parsed = parse_message(message)
        msg_type = parsed[1] if parsed else 0
        deliver = Deliver(message, sender.my_vid, msg_type)
        for i in sender.members:
            e = self.engines.get(i)
            if e is None or e.ring != sender.ring or e not in self._live():
                continue
            if self.flaws.no_self and e is sender:
                continue
            if self.flaws.safe_early and msg_type & SAFE_MESS and e is not sender:
                assert self.sim is not None
                if self.sim.component[e.index] != self.sim.component[sender.index]:
                    continue
            e.push(deliver)


class OracleEngine:
    """One daemon's face of the oracle: the RingEngine calls, nothing on the wire."""

    def __init__(self, oracle: Oracle, config: RingConfig) -> None:
        self.oracle = oracle
        self.config = config
        self.my_vid = config.my_vid
        self.by_index = {int(d.name[1:]): d.vid for d in config.daemons}
        self.index = next(i for i, v in self.by_index.items() if v == config.my_vid)
        self.position = {int(d.name[1:]): p for p, d in enumerate(config.daemons)}
        self.ring: RingId | None = None
        self.members: tuple[int, ...] = ()
        self.unsent: list[bytes] = []
        self.pending: list[Action] = []
        self.held: Deliver | None = None
        self.count = 0
        self.next_at = 0.0
        oracle.engines[self.index] = self

    def vid_of(self, index: int) -> int:
        return self.by_index[index]

    def push(self, action: Action) -> None:
        flaws = self.oracle.flaws
        if self.index == 1 and isinstance(action, Deliver):
            self.count += 1
            if flaws.drop and action.origin_vid != self.my_vid and self.count % 4 == 0:
                return
            if flaws.duplicate and self.count % 5 == 0:
                self.pending.append(action)
            if flaws.reorder:
                parsed = parse_message(action.message)
                if parsed and is_ordered(parsed[1]):
                    if self.held is None:
                        self.held = action
                        return
                    self.pending += [action, self.held]
                    self.held = None
                    return
        if self.held is not None and not isinstance(action, Deliver):
            self.pending.append(self.held)
            self.held = None
        self.pending.append(action)

    def _flush(self) -> list[Action]:
        out, self.pending = self.pending, []
        return out

    def start(self, now: float) -> list[Action]:
        self.next_at = now
        return []

    def on_datagram(self, now: float, channel: Channel, src_ip: str, data: bytes) -> list[Action]:
        return []

    def on_timer(self, now: float) -> list[Action]:
        self.oracle.sync(now)
        self.next_at = now + self.oracle.tick
        return self._flush()

    def next_timer(self) -> float | None:
        return self.next_at

    def submit(self, now: float, message: bytes) -> list[Action]:
        self.oracle.sync(now)
        self.oracle.order(now, self, message)
        return self._flush()

    def set_delivery_threshold(self, threshold: DeliveryThreshold) -> None:
        pass

    def use_groups_queue(self, on: bool) -> None:
        pass


class ReorderingOracle(Oracle):
    """For the command-line tests: an engine that breaks the total order."""

    @classmethod
    def new_run(cls) -> Oracle:
        return cls(flaws=Flaws(reorder=True))
