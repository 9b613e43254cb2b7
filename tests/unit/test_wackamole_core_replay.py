"""The sans-IO wackamole node replays the captured C sessions (vector D) byte for byte.

Each captured wackamole's Spread session is fed to a Node: the daemon's frames in order,
with the node's timers firing at their simulated times in between (as the C event loop runs
due timers before reading the next message). Every message the node multicasts must equal
the C program's, in order, and the allocation it ends with must list like `wackatrl -l`
did on that host.
"""

from __future__ import annotations

import heapq
import json
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from spread.client import MembershipMessage, RegularMessage
from spread.client.protocol import Receiver
from wackamole.config import parse_config_text
from wackamole.control import VifState
from wackamole.core import (
    Acquire,
    CancelTimer,
    Connect,
    Multicast,
    Node,
    Release,
    SampleArpCache,
    SetTimer,
    Timer,
)
from wackamole.peer import decode_arp_cache
from wackamole.wackatrl import format_listing

VECTOR = Path(__file__).parent.parent / "vectors" / "wackamole" / "D_wackamole_peer.json"
D = json.loads(VECTOR.read_text())
CONFIG = parse_config_text(D["wackamole_conf"])


class Replay:
    """One captured connection driven through a Node on simulated time."""

    def __init__(self, conn: dict) -> None:
        self.conn = conn
        host = D["hosts"][conn["host"]]
        self.node = Node(CONFIG, IPv4Address(host["ip"]))
        sent = [m for m in D["messages_sent"] if m["run"] == conn["id"]]
        self.expected = [(m["mess_type"], bytes.fromhex(m["payload_hex"])) for m in sent]
        # The node's ARP table at each sample: what the C program sent each time.
        self.arp_tables = [
            decode_arp_cache(bytes.fromhex(m["payload_hex"])) for m in sent if m["mess_type"] == 5
        ]
        self.sent: list[tuple[int, bytes]] = []
        self.acquired: list[int] = []
        self.released: list[int] = []
        self.timers: list[tuple[float, int, Timer]] = []
        self.armed: dict[Timer, tuple[float, int]] = {}
        self.seq = 0
        self.now = conn["frames"][0]["t"]

    def run(self, until: float | None = None) -> None:
        self.apply(self.node.start())
        rx = None
        for frame in self.conn["frames"]:
            if frame["dir"] != "d2c":
                continue
            if until is not None and frame["t"] > until:
                break
            if rx is None:  # the handshake's last daemon frame is the ACCEPT
                if "ACCEPT_SESSION" in frame["note"]:
                    private = frame["note"].split("private group '")[1].split("'")[0]
                    rx = Receiver(private)
                continue
            self.fire_until(frame["t"])
            self.now = frame["t"]
            rx.feed(bytes.fromhex(frame["hex"]))
            while (msg := rx.next_message()) is not None:
                self.deliver(msg)
        if until is not None:
            self.fire_until(until)

    def deliver(self, msg: object) -> None:
        if isinstance(msg, MembershipMessage):
            assert msg.gid is not None
            self.apply(self.node.on_membership(msg.group, msg.members, msg.mess_type, msg.gid))
        else:
            assert isinstance(msg, RegularMessage)
            self.apply(
                self.node.on_message(
                    msg.sender, msg.mess_type, msg.data, bool(msg.endian_mismatch)
                )
            )

    def fire_until(self, t: float) -> None:
        while self.timers and self.timers[0][0] <= t:
            due, seq, timer = heapq.heappop(self.timers)
            if self.armed.get(timer) != (due, seq):
                continue  # re-armed or cancelled since
            del self.armed[timer]
            self.now = due
            self.apply(self.node.on_timer(timer))

    def apply(self, actions: list) -> None:
        for a in actions:
            if isinstance(a, Connect):
                self.apply(self.node.connected_ok())
            elif isinstance(a, SampleArpCache):
                self.apply(self.node.local_arp_cache(self.arp_tables[0]))
            elif isinstance(a, Multicast):
                self.sent.append((int(a.mess_type), a.body))
            elif isinstance(a, SetTimer):
                self.seq += 1
                entry = (self.now + a.delay, self.seq)
                self.armed[a.timer] = entry
                heapq.heappush(self.timers, (*entry, a.timer))
            elif isinstance(a, CancelTimer):
                self.armed.pop(a.timer, None)
            elif isinstance(a, Acquire):
                self.acquired.append(a.vif)
            elif isinstance(a, Release) and not a.cleanup:
                self.released.append(a.vif)

    def listing(self) -> str:
        return format_listing(
            tuple(
                VifState.from_config(v, s.owner, s.claim)
                for v, s in zip(CONFIG.vifs, self.node.alloc, strict=True)
            )
        )


def connection(run_id: str) -> dict:
    return next(c for c in D["connections"] if c["id"] == run_id)


def listing_at(host: str, state: str) -> str:
    return next(
        w["wackatrl_l_stdout"] for w in D["wackatrl"] if w["host"] == host and w["state"] == state
    )


@pytest.mark.parametrize("run_id", [c["id"] for c in D["connections"]])
def test_every_message_the_c_wackamole_sent_is_sent_byte_for_byte(run_id: str) -> None:
    replay = Replay(connection(run_id))
    replay.run()
    assert replay.sent == replay.expected


def test_a_lone_first_node_waits_for_maturity_then_takes_every_vif() -> None:
    replay = Replay(connection("wack-h1-run1"))
    replay.run(until=5.6)
    assert replay.acquired == []
    assert replay.listing() == listing_at("h1", "h1 started, not mature yet")
    replay = Replay(connection("wack-h1-run1"))
    replay.run(until=11.55)
    assert replay.acquired == [0, 1, 2, 3]
    assert replay.listing() == listing_at("h1", "h1 mature and alone")


def test_the_second_node_is_given_half_by_the_balance_message() -> None:
    h1 = Replay(connection("wack-h1-run1"))
    h1.run()
    assert h1.released == [0, 1]
    assert h1.listing() == listing_at("h1", "both running, balanced")
    h2 = Replay(connection("wack-h2"))
    h2.run(until=15.6)
    assert h2.acquired == [0, 1]
    assert h2.listing() == listing_at("h2", "both running, balanced")


def test_a_survivor_takes_over_and_gives_back_when_the_peer_returns() -> None:
    h2 = Replay(connection("wack-h2"))
    h2.run(until=19.67)
    assert h2.listing() == listing_at("h2", "h1's wackamole killed (-9)")
    h2 = Replay(connection("wack-h2"))
    h2.run()
    assert h2.acquired == [0, 1, 2, 3]
    assert h2.released == [0, 1]  # the first movable VIFs of the busiest node
    h1 = Replay(connection("wack-h1-run2"))
    h1.run()
    assert h1.listing() == listing_at("h1", "after rejoin and rebalance")
