"""A deterministic stand-in for Spread under several wackamole Nodes.

One group, one agreed order: every message and membership change goes through a single
queue, so each member sees the same sequence, its own messages included (as Spread delivers
them without SELF_DISCARD). A membership change queued behind messages is delivered after
them, as EVS delivers a configuration's messages before the next configuration. The network
can be split into sides: each side then has its own memberships, and a message reaches only
the members on its sender's side. Timers run on simulated time. Each node's interfaces are
tracked from its Acquire/Release actions, so tests can ask who really has an address up.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from spread.wire.client import GroupId
from wackamole.config.model import WackamoleConfig
from wackamole.core import Acquire as AcquireAction
from wackamole.core import (
    CancelTimer,
    Connect,
    Disconnect,
    Exit,
    Multicast,
    Node,
    NodeAction,
    Release,
    SampleArpCache,
    SetTimer,
    Timer,
)
from wackamole.peer import ArpEntry


@dataclass
class Host:
    name: str
    ip: IPv4Address
    config: WackamoleConfig
    node: Node | None = None
    private: str = ""
    up: set[int] = field(default_factory=set)  # VIFs whose addresses are on this host
    incarnation: int = 0
    exited: int | None = None


class Cluster:
    def __init__(self, configs: list[WackamoleConfig]) -> None:
        self.hosts = [
            Host(f"h{i}", IPv4Address(f"192.0.2.{i + 1}"), cfg) for i, cfg in enumerate(configs)
        ]
        self.now = 0.0
        self.members: list[Host] = []
        self.queue: deque[tuple[str, object]] = deque()
        self.timers: list[tuple[float, int, int, Timer]] = []
        self.armed: dict[tuple[int, Timer], tuple[float, int]] = {}
        self.seq = itertools.count()
        self.view = 0
        self.side: dict[str, int] = {h.name: 0 for h in self.hosts}

    # --- driving -----------------------------------------------------------------------------

    def start(self, i: int) -> None:
        h = self.hosts[i]
        assert h.node is None
        h.incarnation += 1
        h.private = f"#wack{i}{h.incarnation}#{h.name}"
        h.node = Node(h.config, h.ip)
        h.exited = None
        self.apply(i, h.node.start())

    def crash(self, i: int) -> None:
        """kill -9: the process is gone, its addresses stay on the host."""
        h = self.hosts[i]
        if h.node is None:
            return
        h.node = None
        self._leave(h)

    def stop(self, i: int, signal: str = "SIGTERM") -> None:
        h = self.hosts[i]
        if h.node is None:
            return
        self.apply(i, h.node.shutdown(signal))
        h.node = None
        self._leave(h)

    def partition(self, away: set[int]) -> None:
        """Cut the hosts `away` off the others: each side gets a membership of its own."""
        for i, h in enumerate(self.hosts):
            self.side[h.name] = 1 if i in away else 0
        self._membership(0)
        self._membership(1)

    def heal(self) -> None:
        if any(self.side.values()):
            self.side = dict.fromkeys(self.side, 0)
            self._membership(0)

    def run(self, until: float) -> None:
        """Deliver everything queued and fire timers up to `until` (simulated seconds)."""
        while True:
            if self.queue:
                self._deliver(*self.queue.popleft())
                continue
            if self.timers and self.timers[0][0] <= until:
                due, seq, i, timer = heapq.heappop(self.timers)
                if self.armed.get((i, timer)) != (due, seq):
                    continue
                del self.armed[(i, timer)]
                self.now = max(self.now, due)
                h = self.hosts[i]
                if h.node is not None:
                    self.apply(i, h.node.on_timer(timer))
                continue
            break
        self.now = max(self.now, until)

    # --- the Spread stand-in -----------------------------------------------------------------

    def _join(self, h: Host) -> None:
        self.members.append(h)
        self._membership(self.side[h.name])

    def _leave(self, h: Host) -> None:
        for k in [k for k in self.armed if k[0] == self.hosts.index(h)]:
            del self.armed[k]
        if h in self.members:
            self.members.remove(h)
            self._membership(self.side[h.name])

    def _membership(self, side: int) -> None:
        self.view += 1
        # One order for every member of the side.
        names = sorted(m.private for m in self.members if self.side[m.name] == side)
        if names:
            self.queue.append(("memb", (side, GroupId(1, 1000, self.view), tuple(names))))

    def _deliver(self, kind: str, what: object) -> None:
        if kind == "memb":
            side, gid, names = what  # type: ignore[misc]
            for h in list(self.members):
                if h.node is not None and h.private in names and self.side[h.name] == side:
                    i = self.hosts.index(h)
                    self.apply(i, h.node.on_membership("wack1", names, names.index(h.private), gid))
        else:
            side, sender, mess_type, body = what  # type: ignore[misc]
            for h in list(self.members):
                if h.node is not None and self.side[h.name] == side:
                    self.apply(self.hosts.index(h), h.node.on_message(sender, mess_type, body))

    def apply(self, i: int, actions: list[NodeAction]) -> None:
        h = self.hosts[i]
        for a in actions:
            if isinstance(a, Connect):
                assert h.node is not None
                self.apply(i, h.node.connected_ok())
                self._join(h)
            elif isinstance(a, Disconnect):
                if h in self.members:
                    self.members.remove(h)
                    self._membership(self.side[h.name])
            elif isinstance(a, Multicast):
                if h in self.members:
                    message = (self.side[h.name], h.private, int(a.mess_type), a.body)
                    self.queue.append(("mess", message))
            elif isinstance(a, SampleArpCache):
                assert h.node is not None
                self.apply(i, h.node.local_arp_cache([ArpEntry(h.ip, bytes(6))]))
            elif isinstance(a, AcquireAction):
                h.up.add(a.vif)
            elif isinstance(a, Release):
                h.up.discard(a.vif)
            elif isinstance(a, SetTimer):
                entry = (self.now + a.delay, next(self.seq))
                self.armed[(i, a.timer)] = entry
                heapq.heappush(self.timers, (entry[0], entry[1], i, a.timer))
            elif isinstance(a, CancelTimer):
                self.armed.pop((i, a.timer), None)
            elif isinstance(a, Exit):
                h.exited = a.code

    # --- what tests look at ------------------------------------------------------------------

    def live(self) -> list[Host]:
        return [h for h in self.hosts if h.node is not None]

    def holders(self, vif: int) -> list[str]:
        """Live hosts that have the VIF's addresses up."""
        return [h.name for h in self.live() if vif in h.up]
