"""Extended Virtual Synchrony invariants, checked incrementally as a run unfolds.

The checker sees only what the engines return (deliveries, transitional and regular
configurations) plus what the simulator knows (submissions, crashes, the fault schedule). It
never trusts an engine's own account of a message: ids come from the tagged payload.

One daemon *incarnation* is one process: a restarted daemon is a new one, and what the old
one delivered is never compared with what the new one delivers. An incarnation's *epoch* is
the regular configuration it installed last, with the transitional one that may follow it;
deliveries are attributed to that epoch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from spread.ring.api import RingId, RingTimeouts
from spread.sim.clients import MsgId, is_ordered, is_safe, service_name

Inc = tuple[int, int]  # (daemon index, incarnation)


def label(inc: Inc) -> str:
    return f"d{inc[0]}" if inc[1] == 0 else f"d{inc[0]}.{inc[1]}"


def ring_text(ring: RingId | None) -> str:
    return "-" if ring is None else f"{ring.proc_id}/{ring.time}"


@dataclass(frozen=True, slots=True)
class Violation:
    seed: int
    time: float
    check: str
    daemons: tuple[str, ...]
    detail: str

    def __str__(self) -> str:
        return (
            f"seed={self.seed} t={self.time:.4f} [{self.check}] "
            f"{','.join(self.daemons)}: {self.detail}"
        )


@dataclass(slots=True)
class _Epoch:
    ring: RingId | None  # None before the first regular configuration
    members: tuple[int, ...]
    started: float
    trans: tuple[int, ...] | None = None
    delivered: set[MsgId] = field(default_factory=set)
    safe_in_regular: set[MsgId] = field(default_factory=set)
    # sender -> highest ordered counter delivered from it in this epoch
    high: dict[Inc, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Proc:
    inc: Inc
    alive: bool = True
    delivered: set[MsgId] = field(default_factory=set)
    pos: dict[MsgId, int] = field(default_factory=dict)  # ordered deliveries only
    last_fifo: dict[Inc, int] = field(default_factory=dict)
    epoch: _Epoch = field(default_factory=lambda: _Epoch(None, (), 0.0))
    submitted: list[MsgId] = field(default_factory=list)


@dataclass(slots=True)
class _CleanCrash:
    at: float
    victim: Inc
    victim_vid: int
    survivors: tuple[Inc, ...]
    done: dict[Inc, float] = field(default_factory=dict)


class EvsChecker:
    """Every invariant of the simulator; `violations` grows as they are found."""

    def __init__(
        self,
        seed: int,
        vids: tuple[int, ...],
        timeouts: RingTimeouts,
        config_order: tuple[int, ...] | None = None,
    ) -> None:
        self.seed = seed
        self.vids = vids  # by daemon index
        self.index_of = {vid: i for i, vid in enumerate(vids)}
        self.rank = {vid: i for i, vid in enumerate(config_order or vids)}  # configuration order
        self.timeouts = timeouts
        self.violations: list[Violation] = []
        self.failures = 0  # all of them, kept or not
        self.procs: dict[Inc, _Proc] = {}
        self.types: dict[MsgId, int] = {}
        self.holders: dict[MsgId, list[Inc]] = defaultdict(list)  # ordered messages only
        self.maxpos: dict[tuple[Inc, Inc], int] = {}
        self.regular_members: dict[RingId, tuple[int, ...]] = {}
        self.trans_members: dict[RingId, tuple[int, ...]] = {}
        # (old ring, new ring) -> incarnation -> what it delivered in the old ring
        self.moved: dict[tuple[RingId, RingId], dict[Inc, frozenset[MsgId]]] = defaultdict(dict)
        # ring -> sender -> ordered counters anyone delivered in that ring
        self.ring_msgs: dict[RingId, dict[Inc, set[int]]] = defaultdict(lambda: defaultdict(set))
        self.ring_safe: dict[RingId, dict[MsgId, Inc]] = defaultdict(dict)
        self.closed: dict[RingId, list[tuple[Inc, _Epoch]]] = defaultdict(list)
        self.clean_crashes: list[_CleanCrash] = []
        self.crash_times: list[float] = []
        self.timings: list[float] = []  # measured crash-to-membership times (s)
        self.now = 0.0

    # ---- reporting ---------------------------------------------------------------------

    MAX_KEPT = 500  # a broken engine can produce thousands; the first ones tell the story

    def fail(self, check: str, incs: tuple[Inc, ...], detail: str) -> None:
        self.failures += 1
        if len(self.violations) < self.MAX_KEPT:
            daemons = tuple(label(i) for i in incs)
            self.violations.append(Violation(self.seed, self.now, check, daemons, detail))

    def names(self, vids: tuple[int, ...] | set[int]) -> str:
        idx = self.index_of
        return "[" + ",".join(f"d{idx[v]}" if v in idx else str(v) for v in vids) + "]"

    # ---- events from the simulator -----------------------------------------------------

    def on_start(self, now: float, inc: Inc) -> None:
        self.now = now
        self.procs[inc] = _Proc(inc)

    def on_submit(self, now: float, inc: Inc, msg_id: MsgId, msg_type: int) -> None:
        self.types[msg_id] = msg_type
        self.procs[inc].submitted.append(msg_id)

    def on_crash(self, now: float, inc: Inc) -> None:
        self.now = now
        self.procs[inc].alive = False
        self.crash_times.append(now)

    # ---- deliveries ----------------------------------------------------------------------

    def on_deliver(self, now: float, inc: Inc, msg_id: MsgId | None, msg_type: int) -> None:
        self.now = now
        me = self.procs[inc]
        if msg_id is None:
            self.fail("integrity", (inc,), "delivered a message that no client sent")
            return
        sent_type = self.types.get(msg_id)
        if sent_type is None:
            self.fail("integrity", (inc,), f"delivered {msg_id}, which was never submitted")
            return
        if msg_id in me.delivered:
            self.fail("no-duplicates", (inc,), f"delivered {msg_id} twice")
            return
        me.delivered.add(msg_id)
        ep = me.epoch
        ep.delivered.add(msg_id)
        sender: Inc = (msg_id.origin, msg_id.incarnation)
        if not is_ordered(sent_type):
            return
        # Sender FIFO among ordered messages.
        last = me.last_fifo.get(sender, 0)
        if msg_id.counter < last:
            self.fail(
                "fifo-order",
                (inc,),
                f"delivered {msg_id} after {MsgId(sender[0], sender[1], last)} "
                "from the same sender",
            )
        me.last_fifo[sender] = max(last, msg_id.counter)
        # Total order: pairwise, against every incarnation that delivered the same message.
        me.pos[msg_id] = len(me.pos)
        for other in self.holders[msg_id]:
            op = self.procs[other].pos[msg_id]
            if self.maxpos.get((inc, other), -1) > op:
                self.fail(
                    "total-order",
                    (inc, other),
                    f"{msg_id} ({service_name(sent_type)}) delivered in a different order "
                    f"relative to earlier messages",
                )
            self.maxpos[(inc, other)] = max(self.maxpos.get((inc, other), -1), op)
            self.maxpos[(other, inc)] = max(self.maxpos.get((other, inc), -1), me.pos[msg_id])
        self.holders[msg_id].append(inc)
        if ep.ring is None:
            self.fail("membership", (inc,), f"delivered {msg_id} before any configuration")
            return
        # No loss inside a configuration: no gap in one sender's ordered messages.
        ep.high[sender] = max(ep.high.get(sender, 0), msg_id.counter)
        self.ring_msgs[ep.ring][sender].add(msg_id.counter)
        for q, q_ep in self.closed[ep.ring]:
            if q_ep.high.get(sender, 0) > msg_id.counter and msg_id not in q_ep.delivered:
                self.fail(
                    "no-gaps",
                    (q, inc),
                    f"{label(q)} left ring {ring_text(ep.ring)} without {msg_id} but with "
                    f"a later message of that sender",
                )
        # SAFE only when stable.
        if is_safe(sent_type) and ep.trans is None:
            ep.safe_in_regular.add(msg_id)
            self.ring_safe[ep.ring].setdefault(msg_id, inc)
            for q, q_ep in self.closed[ep.ring]:
                if msg_id not in q_ep.delivered:
                    self.fail(
                        "safe-stable",
                        (inc, q),
                        f"SAFE {msg_id} delivered in regular ring {ring_text(ep.ring)}, but "
                        f"member {label(q)} already left that ring without it",
                    )

    # ---- configurations ----------------------------------------------------------------

    def _check_members(self, inc: Inc, kind: str, members: tuple[int, ...]) -> None:
        vid = self.vids[inc[0]]
        if vid not in members:
            self.fail("membership", (inc,), f"{kind} configuration without me")
        ranks = [self.rank.get(v, -1) for v in members]
        if -1 in ranks:
            self.fail("membership", (inc,), f"{kind} configuration has unknown VIDs {members}")
        elif ranks != sorted(set(ranks)):
            self.fail("membership", (inc,), f"{kind} members not in configuration order")

    def on_transitional(self, now: float, inc: Inc, ring: RingId, members: tuple[int, ...]) -> None:
        self.now = now
        me = self.procs[inc]
        ep = me.epoch
        self._check_members(inc, "transitional", members)
        if ep.trans is not None:
            self.fail("membership", (inc,), "two transitional configurations in a row")
        old = set(ep.members) if ep.ring is not None else {self.vids[inc[0]]}
        if not set(members) <= old:
            self.fail(
                "membership",
                (inc,),
                f"transitional {self.names(members)} not within the regular "
                f"{self.names(ep.members)} before it",
            )
        known = self.trans_members.setdefault(ring, members)
        if known != members:
            self.fail(
                "membership-agreement",
                (inc,),
                f"transitional {ring_text(ring)} is {self.names(members)} here but "
                f"{self.names(known)} elsewhere",
            )
        ep.trans = members

    def on_regular(self, now: float, inc: Inc, ring: RingId, members: tuple[int, ...]) -> None:
        self.now = now
        me = self.procs[inc]
        old = me.epoch
        self._check_members(inc, "regular", members)
        known = self.regular_members.setdefault(ring, members)
        if known != members:
            self.fail(
                "membership-agreement",
                (inc,),
                f"regular {ring_text(ring)} is {self.names(members)} here but "
                f"{self.names(known)} elsewhere",
            )
        if old.trans is not None and not set(old.trans) <= set(members):
            self.fail(
                "membership",
                (inc,),
                f"transitional {self.names(old.trans)} not within the next regular "
                f"{self.names(members)}",
            )
        if old.ring == ring:
            self.fail("membership", (inc,), f"installed regular {ring_text(ring)} twice")
        if old.ring is not None:
            self._close_epoch(inc, old, ring)
        me.epoch = _Epoch(ring, members, now)
        self._timing_on_regular(inc, members)

    def _comparable(self, ep: _Epoch) -> frozenset[MsgId]:
        """What daemons moving together must agree on.

        (UN)RELIABLE messages from daemons outside the transitional configuration are left
        out: one daemon may have delivered such a message early, on receipt, while its peer
        skips the retransmitted copy at install because it lies after the first hole and its
        originator is not in the commit set (§7.6, §8.8 step 3). The original does the same.
        """
        if ep.trans is None:
            return frozenset(ep.delivered)
        stay = set(ep.trans)
        return frozenset(
            m
            for m in ep.delivered
            if is_ordered(self.types[m]) or self.vids[m.origin] in stay
        )

    def _close_epoch(self, inc: Inc, ep: _Epoch, new_ring: RingId) -> None:
        assert ep.ring is not None
        got = self._comparable(ep)
        # Daemons that move together deliver the same set in the old configuration.
        peers = self.moved[(ep.ring, new_ring)]
        for other, other_got in peers.items():
            if other_got != got:
                only_me = sorted(got - other_got)[:3]
                only_other = sorted(other_got - got)[:3]
                self.fail(
                    "same-set",
                    (inc, other),
                    f"moved together {ring_text(ep.ring)} -> {ring_text(new_ring)} with "
                    f"different messages: only {label(inc)} {list(map(str, only_me))}, "
                    f"only {label(other)} {list(map(str, only_other))}",
                )
                break
        peers[inc] = got
        # Gaps against what others delivered in that ring.
        for sender, high in ep.high.items():
            for c in self.ring_msgs[ep.ring].get(sender, ()):
                mid = MsgId(sender[0], sender[1], c)
                if c < high and mid not in ep.delivered:
                    self.fail(
                        "no-gaps",
                        (inc,),
                        f"left ring {ring_text(ep.ring)} without {mid} but with a later "
                        f"message of that sender",
                    )
                    break
        # SAFE delivered by anyone in the regular part must have reached me too.
        for mid, who in self.ring_safe[ep.ring].items():
            if mid not in ep.delivered:
                self.fail(
                    "safe-stable",
                    (who, inc),
                    f"SAFE {mid} delivered in regular ring {ring_text(ep.ring)} by "
                    f"{label(who)}, but member {label(inc)} left that ring without it",
                )
        self.closed[ep.ring].append((inc, ep))

    # ---- timing ----------------------------------------------------------------------------

    def expect_crash_timing(self, now: float, victim: Inc) -> bool:
        """Register a crash in a quiet stretch; True if it qualifies for the timing check.

        Qualifies when every live incarnation, the victim included, sits in the same regular
        configuration with no transitional pending.
        """
        live = [p for p in self.procs.values() if p.alive]
        rings = {(p.epoch.ring, p.epoch.trans) for p in live}
        vid = self.vids[victim[0]]
        if len(rings) != 1:
            return False
        ring, trans = next(iter(rings))
        if ring is None or trans is not None or len(live) < 2:
            return False
        if set(self.procs[victim].epoch.members) != {self.vids[p.inc[0]] for p in live}:
            return False
        survivors = tuple(p.inc for p in live if p.inc != victim)
        self.clean_crashes.append(_CleanCrash(now, victim, vid, survivors))
        return True

    def timing_bounds(self) -> tuple[float, float]:
        """Crash to new membership: token loss + seg + gather after the last token (or data
        packet) a survivor handled. An idle ring moves its token once per Hurry timeout, so
        that last token may come up to one Hurry before the crash, or up to one Hurry after
        it (a hurry or a client's HURRY sends it round once more, until it reaches the dead
        daemon)."""
        t = self.timeouts
        base = t.token + t.seg + t.gather
        return base - t.hurry - 0.05, base + t.hurry + 0.1

    def _timing_on_regular(self, inc: Inc, members: tuple[int, ...]) -> None:
        for cc in self.clean_crashes:
            if inc in cc.survivors and inc not in cc.done and cc.victim_vid not in members:
                cc.done[inc] = self.now
                lo, hi = self.timing_bounds()
                took = self.now - cc.at
                self.timings.append(took)
                if not lo <= took <= hi:
                    self.fail(
                        "timing",
                        (inc, cc.victim),
                        f"new membership {took:.3f}s after the crash of {label(cc.victim)}; "
                        f"the configured timeouts give {lo:.3f}..{hi:.3f}s",
                    )

    def advance(self, now: float) -> None:
        """Deadlines that pass without an event (called after every simulator step)."""
        self.now = now
        if not self.clean_crashes:
            return
        _, hi = self.timing_bounds()
        keep = []
        for cc in self.clean_crashes:
            if now <= cc.at + hi:
                keep.append(cc)
                continue
            late = [s for s in cc.survivors if s not in cc.done and self.procs[s].alive]
            if late:
                self.fail(
                    "timing",
                    (*late, cc.victim),
                    f"no new membership {hi:.3f}s after the crash of {label(cc.victim)}",
                )
        self.clean_crashes = keep

    def cancel_timing(self) -> None:
        """Another fault struck inside a pending timing window: its expectation is void."""
        self.clean_crashes = []

    # ---- end of run ------------------------------------------------------------------------

    def finish(self, now: float) -> None:
        """After the final heal and a quiet drain: one ring, and nothing left undelivered."""
        self.now = now
        live = [p for p in self.procs.values() if p.alive]
        all_vids = tuple(self.vids[p.inc[0]] for p in sorted(live, key=lambda p: p.inc))
        rings = {p.epoch.ring for p in live}
        incs = tuple(p.inc for p in live)
        if len(rings) != 1 or any(p.epoch.trans is not None for p in live):
            views = "; ".join(f"{label(p.inc)}:{ring_text(p.epoch.ring)}" for p in live)
            self.fail("one-ring", incs, f"not one ring after the network healed: {views}")
            return
        members = live[0].epoch.members
        if set(members) != set(all_vids):
            self.fail(
                "one-ring",
                incs,
                f"final ring {self.names(members)} is not every live daemon "
                f"{self.names(all_vids)}",
            )
        sets = {p.inc: frozenset(p.epoch.delivered) for p in live}
        first = live[0]
        for p in live[1:]:
            if sets[p.inc] != sets[first.inc]:
                diff = sorted(sets[p.inc] ^ sets[first.inc])[:3]
                self.fail(
                    "same-set",
                    (first.inc, p.inc),
                    f"different messages in the final ring, e.g. {list(map(str, diff))}",
                )
        for p in live:
            missing = [m for m in p.submitted if m not in p.delivered]
            if missing:
                self.fail(
                    "self-delivery",
                    (p.inc,),
                    f"{len(missing)} own messages never delivered, first {missing[0]} "
                    f"({service_name(self.types[missing[0]])})",
                )
