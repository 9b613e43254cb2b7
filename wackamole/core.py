"""The wackamole node as a sans-IO state machine: who owns which virtual interface.

Owns the peer protocol's decisions (reference §4): the state exchange after each Spread
membership, the merge of claims and prefer lists, maturity, Priority_claim, Claim_unclaimed,
balancing by the node at index 0, and the connect / clean-up / retry cycle. It is fed
events (connected, membership, message, timer fired, control request, signal) and returns
actions (multicast, acquire, release, re-up, hooks, timers, log lines, exit) for the shell
to carry out in order. It opens no socket, touches no interface and reads no clock.

Addresses are IPv4Address; 0.0.0.0 means "nobody". Every node computes the same allocation
because STATE, MATURING and BALANCE arrive in the same (AGREED) order everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from ipaddress import IPv4Address

from spread.wire.client import GroupId
from wackamole.config.model import Action as HookKind
from wackamole.config.model import WackamoleConfig
from wackamole.peer import (
    ArpEntry,
    BalanceMessage,
    Claim,
    MessageType,
    PeerProtocolError,
    StateMessage,
    decode_arp_cache,
    encode_arp_cache,
)

NOBODY = IPv4Address(0)

# Spread error codes the reconnect routine accepts; any other one is fatal.
CONNECTION_CLOSED = -8
ILLEGAL_SESSION = -11
COULD_NOT_CONNECT = -2
RETRIED_ERRORS = (CONNECTION_CLOSED, ILLEGAL_SESSION, COULD_NOT_CONNECT)


class NodeState(IntEnum):
    BOOT = 1
    RUN = 2
    GATHER = 3
    BALANCE = 4  # only while the balance routine runs


class Timer(Enum):
    MATURE = "mature"  # Turn_mature: multicast MATURING
    BALANCE = "balance"
    RECONNECT = "reconnect"
    ARP_CACHE = "arp-cache"  # the one-shot re-send of the local ARP cache


class LogLevel(Enum):
    PRINT = "print"  # syslog in daemon mode, stdout with -d
    DEBUG = "debug"  # stdout with -d only
    ARPING = "arping"  # stdout with -d only


# --- actions ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Connect:
    """SP_connect then SP_join; answer with connected(), connect_failed() or join_failed()."""


@dataclass(frozen=True)
class Disconnect:
    pass


@dataclass(frozen=True)
class Multicast:
    mess_type: MessageType
    body: bytes


@dataclass(frozen=True)
class SampleArpCache:
    """Read the local ARP table and hand it to Node.local_arp_cache()."""


@dataclass(frozen=True)
class Acquire:
    """Bring up every address of VIF `vif`, start its ARP notifier, run the on-up hooks.

    `real`: the table's owner when the decision was taken, which the original hands the
    hooks (it updates the table after calling them)."""

    vif: int
    real: IPv4Address = NOBODY


@dataclass(frozen=True)
class Release:
    """Take down every address of VIF `vif` (on-down hook per address).

    `cleanup`: the clean-up pass over every VIF, owned or not; its ARP notifier is
    cancelled first.
    """

    vif: int
    cleanup: bool = False
    real: IPv4Address = NOBODY  # as for Acquire


@dataclass(frozen=True)
class Reup:
    """Linux re-up after a release: bring these owned VIFs up again and re-announce them."""

    vifs: tuple[int, ...]


@dataclass(frozen=True)
class RunHooks:
    kind: HookKind  # POST_UP or POST_DOWN


@dataclass(frozen=True)
class SetTimer:
    """Arm `timer` `delay` seconds from now; an armed timer is re-armed."""

    timer: Timer
    delay: float


@dataclass(frozen=True)
class CancelTimer:
    timer: Timer


@dataclass(frozen=True)
class Log:
    level: LogLevel
    text: str


@dataclass(frozen=True)
class Exit:
    code: int


NodeAction = (
    Connect | Disconnect | Multicast | SampleArpCache | Acquire | Release | Reup | RunHooks
    | SetTimer | CancelTimer | Log | Exit
)


# --- state -----------------------------------------------------------------------------------

def _host_order(ip: IPv4Address) -> int:
    """The 4 network-order bytes read as an x86 integer, as the original sorts its cache."""
    return int.from_bytes(ip.packed, "little")


@dataclass
class Member:
    name: str
    address: IPv4Address = NOBODY  # known once its STATE arrived
    count: int = 0  # VIFs it holds, as this node reckons
    got_state: bool = False


@dataclass
class Slot:
    """One VIF's entry in the allocation table."""

    owner: IPv4Address = NOBODY
    claim: int = Claim.UNCLAIMED


@dataclass
class Node:
    config: WackamoleConfig
    my_ip: IPv4Address
    state: NodeState = NodeState.BOOT
    mature: bool = False
    connected: bool = False
    spread_lock: bool = False  # wackatrl -f: stay away from Spread until -s
    gid: GroupId | None = None
    my_index: int = 0
    pending: int = 0
    members: list[Member] = field(default_factory=list)
    alloc: list[Slot] = field(default_factory=list)
    old: list[Slot] = field(default_factory=list)  # snapshot from before the membership change
    my_count: int = 0  # the original's own tally of VIFs brought up
    shared_arp: dict[IPv4Address, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.config.vifs)
        self.alloc = [Slot() for _ in range(n)]
        self.old = [Slot() for _ in range(n)]
        self._primaries = [v.primary.address for v in self.config.vifs]
        self._out: list[NodeAction] = []

    # --- queries -----------------------------------------------------------------------------

    def owned(self) -> tuple[int, ...]:
        return tuple(i for i, s in enumerate(self.alloc) if s.owner == self.my_ip)

    def shared_arp_cache(self) -> tuple[ArpEntry, ...]:
        """The shared cache in the original's order: the address read as a host-order int."""
        ordered = sorted(self.shared_arp, key=_host_order)
        return tuple(ArpEntry(ip, self.shared_arp[ip]) for ip in ordered)

    # --- events ------------------------------------------------------------------------------

    def start(self) -> list[NodeAction]:
        """Start-up: clean up, connect, and send the local ARP cache now and once more later."""
        self._reconnect(CONNECTION_CLOSED)
        self._send_arp_cache()
        self._emit(SetTimer(Timer.ARP_CACHE, self.config.arp_cache))
        return self._flush()

    def connected_ok(self) -> list[NodeAction]:
        """Connect and join both succeeded."""
        self.connected = True
        self.state = NodeState.BOOT
        self.mature = False
        self.my_count = 0
        self._emit(SetTimer(Timer.MATURE, self.config.mature))
        return self._flush()

    def connect_failed(self, code: int) -> list[NodeAction]:
        self.connected = False
        self._log(f"Spread connect failed [{code}].")
        self._emit(SetTimer(Timer.RECONNECT, self.config.spread_retry_interval))
        return self._flush()

    def join_failed(self, code: int) -> list[NodeAction]:
        """The shell has already disconnected the half-open session."""
        self.connected = False
        self._log(f"Spread join on reconnect failed [{code}].")
        self._emit(SetTimer(Timer.RECONNECT, self.config.spread_retry_interval))
        return self._flush()

    def spread_error(self, code: int) -> list[NodeAction]:
        """A receive or multicast on the Spread session failed with `code`."""
        self._reconnect(code)
        return self._flush()

    def on_timer(self, timer: Timer) -> list[NodeAction]:
        if timer is Timer.MATURE:
            self._multicast(MessageType.MATURING, b"")
        elif timer is Timer.BALANCE:
            self._balance()
        elif timer is Timer.RECONNECT:
            self._reconnect(COULD_NOT_CONNECT)
        elif timer is Timer.ARP_CACHE:
            self._send_arp_cache()  # one-shot, as in the original: not re-armed
        return self._flush()

    def on_membership(
        self, group: str, members: Sequence[str], my_index: int, gid: GroupId
    ) -> list[NodeAction]:
        """A regular membership of our group (transitional ones are not passed in)."""
        if group != self.config.group:
            self._log("Disconnecting from Spread", LogLevel.DEBUG)
            self._emit(Disconnect())
            self.connected = False
            self._clean_up()
            self._log(f"Handle_membership:  Bug! got a membership for group {group}")
            self._emit(Exit(0))
            return self._flush()
        self.gid = gid
        self.pending = len(members)
        self.members = [Member(name) for name in members]
        self.my_index = my_index
        if self.state not in (NodeState.GATHER, NodeState.BOOT):
            self.old = [Slot(s.owner, s.claim) for s in self.alloc]
        for s in self.alloc:
            s.owner, s.claim = NOBODY, Claim.UNCLAIMED
        self._send_state()
        self.state = NodeState.GATHER
        self._emit(CancelTimer(Timer.BALANCE))
        self._send_arp_cache()
        return self._flush()

    def on_message(
        self, sender: str, mess_type: int, body: bytes, endian_mismatch: bool = False
    ) -> list[NodeAction]:
        """A regular (data) message to our group; our own come back here too."""
        try:
            if mess_type == MessageType.STATE:
                self._handle_state(sender, StateMessage.decode(body, endian_mismatch))
            elif mess_type == MessageType.MATURING:
                self._handle_mature()
            elif mess_type == MessageType.BALANCE:
                self._handle_balance(BalanceMessage.decode(body, endian_mismatch))
            elif mess_type == MessageType.ARPCACHE:
                self._handle_arp_cache(decode_arp_cache(body))
            # OPERATOR and unknown types are ignored, as in the original.
        except PeerProtocolError as exc:
            self._log(f"Ignoring a malformed message from {sender}: {exc}")
        return self._flush()

    def on_unknown_service(self, service_type: int, ret: int) -> list[NodeAction]:
        """Neither a data message nor a membership (e.g. a reject): the original gives up.

        It exits without releasing anything; we release first (docs/compat.md).
        """
        self._clean_up()
        self._log(
            f"Error: received message of unknown message type {service_type} with ret {ret}"
        )
        self._emit(Exit(0))
        return self._flush()

    def local_arp_cache(self, entries: Sequence[ArpEntry]) -> list[NodeAction]:
        """The local ARP table just sampled (after a SampleArpCache action): share it."""
        body = encode_arp_cache(list(entries))
        self._log(f"Sending {len(body) // 12} local arp entries", LogLevel.DEBUG)
        self._multicast(MessageType.ARPCACHE, body)
        return self._flush()

    def service_failure(self) -> list[NodeAction]:
        """wackatrl -f: drop everything and stay off Spread until -s."""
        self.spread_lock = True
        if self.connected:
            self._emit(Disconnect())
            self.connected = False
        self._clean_up()
        self._reconnect(CONNECTION_CLOSED)
        return self._flush()

    def service_success(self) -> list[NodeAction]:
        """wackatrl -s: clear the lock and reconnect now (a full drop and rejoin)."""
        self.spread_lock = False
        # The original leaves the locked retry armed, which later drops everything again.
        self._emit(CancelTimer(Timer.RECONNECT))
        self._reconnect(CONNECTION_CLOSED)
        return self._flush()

    def shutdown(self, signal_name: str) -> list[NodeAction]:
        """SIGINT, SIGTERM, SIGQUIT (and the fatal ones): release everything, exit 0."""
        self._log("Sig_handler called", LogLevel.DEBUG)
        self._log(f"{signal_name} Detected!", LogLevel.DEBUG)
        self._clean_up()
        self._emit(Exit(0))
        return self._flush()

    # --- connection cycle --------------------------------------------------------------------

    def _reconnect(self, code: int) -> None:
        if code not in RETRIED_ERRORS:
            self._log(f"Spread_reconnnect: Unexpected Error ({code})")
            # The original exits here and leaves every address up; release them first.
            self._clean_up()
            self._emit(Exit(0))
            return
        self._log(f"connecting to {self.config.spread}")
        self._clean_up()
        if self.connected:
            self._emit(Disconnect())
            self.connected = False
        if self.spread_lock:
            self._emit(SetTimer(Timer.RECONNECT, self.config.spread_retry_interval))
            return
        self._emit(Connect())

    def _clean_up(self) -> None:
        """Take down every configured address of every VIF, owned or not."""
        self._log("Clean_up called", LogLevel.DEBUG)
        for i in range(len(self.alloc)):
            self._emit(Release(i, cleanup=True, real=self.alloc[i].owner))
            self.my_count -= 1
            self.alloc[i].owner = NOBODY
            self.old[i].owner = NOBODY

    # --- peer messages -----------------------------------------------------------------------

    def _send_state(self) -> None:
        assert self.gid is not None
        claims = tuple(
            (self._primaries[i], s.claim) for i, s in enumerate(self.old) if s.owner == self.my_ip
        )
        if len(claims) != self.my_count:
            # The original aborts here (assert); the real list is what peers need.
            self._log(
                f"sending state: holding {len(claims)} interfaces, counted {self.my_count}",
                LogLevel.DEBUG,
            )
        msg = StateMessage(
            self.gid, self.my_ip, self.my_index, self.mature, claims, self.config.prefer
        )
        self._multicast(MessageType.STATE, msg.encode())

    def _send_arp_cache(self) -> None:
        # Unconditional: at start-up the Connect before it is still being carried out.
        self._emit(SampleArpCache())

    def _handle_state(self, sender: str, msg: StateMessage) -> None:
        if msg.gid != self.gid:
            return  # from an earlier membership
        s = msg.index
        if not 0 <= s < len(self.members) or self.members[s].name != sender:
            self._log(f"Ignoring a STATE from {sender} with index {s}")
            return
        member = self.members[s]
        if member.got_state:
            self._log(f"Ignoring a second STATE from {sender}")
            return
        member.address, member.count, member.got_state = msg.address, len(msg.claims), True

        released = 0
        for vip, prio in msg.claims:
            j = self._find(vip)
            if j is None:
                continue
            slot = self.alloc[j]
            if slot.owner == NOBODY:
                slot.owner, slot.claim = msg.address, prio
            elif slot.claim == Claim.PREFER_CLAIMED or slot.claim == prio:
                # The sender loses: the entry already there stays.
                member.count -= 1
                if msg.address == self.my_ip:
                    released += 1
                    self._release(j)
                self.old[j] = Slot(slot.owner, slot.claim)
            elif slot.claim == Claim.CLAIMED and prio > Claim.PREFER:
                # A preferred claim beats a plain one: the current owner loses.
                if slot.owner == self.my_ip:
                    released += 1
                    self._release(j)
                for m in self.members:
                    if m.address == slot.owner:
                        m.count -= 1
                slot.owner, slot.claim = msg.address, prio
                self.old[j] = Slot(slot.owner, slot.claim)
        if released:
            self._post_release()

        for vip in msg.prefer:
            j = self._find(vip)
            if j is not None and self.alloc[j].claim < Claim.PREFER:
                self.alloc[j].owner, self.alloc[j].claim = msg.address, Claim.PREFER

        if not self.mature and msg.mature:
            self._handle_mature()

        self.pending -= 1
        if self.pending == 0:
            if self.mature:
                self._priority_claim()
                self._claim_unclaimed()
                self.state = NodeState.RUN
                self._emit(SetTimer(Timer.BALANCE, self.config.balance_interval))
            else:
                self.state = NodeState.BOOT

    def _handle_mature(self) -> None:
        if self.mature:
            return
        self.mature = True
        self._emit(CancelTimer(Timer.MATURE))
        if self.state != NodeState.GATHER and self.members:
            self._priority_claim()
            self._claim_unclaimed()
            self.state = NodeState.RUN
            self._emit(SetTimer(Timer.BALANCE, self.config.balance_interval))

    def _handle_balance(self, msg: BalanceMessage) -> None:
        if self.state != NodeState.RUN:
            return
        acquired = released = 0
        for new_owner, vip in msg.moves:
            j = self._find(vip)
            if j is None:
                continue
            slot = self.alloc[j]
            if new_owner == self.my_ip:
                acquired += 1
                self._acquire(j)
            if slot.owner == self.my_ip:
                released += 1
                self._release(j)
            for m in self.members:
                if m.address == slot.owner:
                    m.count -= 1
                if m.address == new_owner:
                    m.count += 1
            slot.owner = new_owner
        if acquired:
            self._emit(RunHooks(HookKind.POST_UP))
        if released:
            self._post_release()

    def _handle_arp_cache(self, entries: tuple[ArpEntry, ...]) -> None:
        self._log(f"Reading {len(entries)} shared arp entries", LogLevel.DEBUG)
        for e in entries:
            self._log(f"Adding {e.ip} to the shared arp cache", LogLevel.DEBUG)
            self.shared_arp[e.ip] = e.mac

    # --- allocation --------------------------------------------------------------------------

    def _priority_claim(self) -> None:
        released = 0
        for i, slot in enumerate(self.alloc):
            if slot.claim != Claim.PREFER:
                continue
            before = self.old[i].owner
            if slot.owner == self.my_ip and before != self.my_ip:
                self._acquire(i)
            if before == self.my_ip and slot.owner != self.my_ip:
                released += 1
                self._release(i)
            slot.claim = Claim.PREFER_CLAIMED
        if released:
            self._post_release()
        # Every node recounts from the agreed table. The original recounts only at a node's
        # first maturity and otherwise adjusts the counts from its own snapshot, which can
        # differ between nodes (e.g. after a node with Prefer rejoins quickly): then
        # Claim_unclaimed picks different owners at different nodes and an address is served
        # by nobody (docs/compat.md). Where the original's nodes agree, the counts are equal.
        for m in self.members:
            m.count = sum(1 for s in self.alloc if s.owner == m.address)

    def _claim_unclaimed(self) -> None:
        for i, slot in enumerate(self.alloc):
            if slot.claim != Claim.UNCLAIMED:
                continue
            t = 0
            for x in range(1, len(self.members)):
                if self.members[x].count < self.members[t].count:
                    t = x
            if self.my_index == t:
                self._acquire(i)
            self.members[t].count += 1
            slot.owner, slot.claim = self.members[t].address, Claim.CLAIMED

    def _balance(self) -> None:
        """The balance timer: only the node at index 0 decides, one message for all moves."""
        if self.my_index != 0:
            self._rearm_balance()
            return
        if self.state != NodeState.RUN:
            return
        counts = [m.count for m in self.members]
        owners = [s.owner for s in self.alloc]
        lo = hi = 0  # kept across rounds, as the original keeps them
        moves: list[tuple[IPv4Address, IPv4Address]] = []
        for k in range(self.config.balance_rate):
            for i, c in enumerate(counts):
                if c < counts[lo]:
                    lo = i
                if c > counts[hi]:
                    hi = i
            if counts[hi] - counts[lo] <= 1:
                if k == 0:
                    self._rearm_balance()
                    return
                break
            busiest = self.members[hi].address
            for j, owner in enumerate(owners):
                if owner == busiest and self.alloc[j].claim < Claim.PREFER:
                    moves.append((self.members[lo].address, self._primaries[j]))
                    counts[lo] += 1
                    counts[hi] -= 1
                    owners[j] = self.members[lo].address
                    break
        self._multicast(MessageType.BALANCE, BalanceMessage(tuple(moves)).encode())
        self._rearm_balance()

    def _rearm_balance(self) -> None:
        if not self.config.balance_all:
            self._emit(SetTimer(Timer.BALANCE, self.config.balance_interval))

    def _acquire(self, vif: int) -> None:
        self._emit(Acquire(vif, self.alloc[vif].owner))
        self.my_count += 1

    def _release(self, vif: int) -> None:
        self._emit(Release(vif, real=self.alloc[vif].owner))
        self.my_count -= 1

    def _post_release(self) -> None:
        self._emit(Reup(self.owned()))
        self._emit(RunHooks(HookKind.POST_DOWN))

    def _find(self, vip: IPv4Address) -> int | None:
        try:
            return self._primaries.index(vip)
        except ValueError:
            return None

    # --- output ------------------------------------------------------------------------------

    def _multicast(self, mess_type: MessageType, body: bytes) -> None:
        if self.connected:
            self._emit(Multicast(mess_type, body))

    def _log(self, text: str, level: LogLevel = LogLevel.PRINT) -> None:
        self._emit(Log(level, text))

    def _emit(self, action: NodeAction) -> None:
        self._out.append(action)

    def _flush(self) -> list[NodeAction]:
        out, self._out = self._out, []
        return out
