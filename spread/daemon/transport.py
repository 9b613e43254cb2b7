"""The ring engine's UDP shell: the sockets on P and P+1, the send socket, nothing more.

Owns which UDP sockets a daemon opens and how ([conf] §8.2: bcast channel on P, token
channel on P+1, extra segment-address binds, a send socket bound to My's configured IP),
reading datagrams into a callback and sending `SendDatagram` actions without ever blocking.
It must not know packet layouts or protocol rules: the engine validates everything it is given,
and monitor commands go to a MonitorDesk (spread/daemon/monitor.py). `attach_engine()` wires a
transport and a ring engine into a `server.Daemon`; `attach_monitor()` serves spmonitor alone.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from spread.config import alarm as A
from spread.config.model import IfType, IpAddress, SpreadConfig
from spread.daemon.monitor import (
    ExitByMonitor,
    MonitorDesk,
    Note,
    ReplyStatus,
    SetFlowControl,
    SetPartition,
    is_control_datagram,
    status_reply,
)
from spread.ring.api import Action, Channel, RingEngine, SendDatagram

log = logging.getLogger("spread.daemon.transport")

DatagramCallback = Callable[[Channel, str, bytes, int], None]  # channel, ip, data, port
AlarmFn = Callable[[int, int, str], None]  # (priority, alarm types, text): Daemon.alarm

RECV_SIZE = 65536  # the engine checks sizes; a UDP datagram is never larger
READ_BATCH = 64  # datagrams read per wake-up before letting the loop breathe
DRAIN_LIMIT = 1024  # data datagrams handed in ahead of one token, at most
_DROP_ERRNOS = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS})
_LEVELS = {A.DEBUG: logging.DEBUG, A.INFO: logging.INFO, A.WARNING: logging.WARNING}


class StartupError(OSError):
    """A socket the daemon cannot open; str() is the original's FATAL line."""

    def __str__(self) -> str:
        return str(self.strerror)


@dataclass(frozen=True, slots=True)
class Binding:
    """One receiving socket: what it carries, where it is bound, which groups it joins."""

    channel: Channel
    address: IpAddress | None  # None = the wildcard of My's family
    port: int
    reuse: bool  # SO_REUSEADDR, as the original sets it for segment/multicast binds
    joins: tuple[IpAddress, ...] = ()  # multicast groups joined on My's address
    origin: str = "implicit"  # which part of Net_init opens it: its log lines say so


def plan_bindings(config: SpreadConfig) -> list[Binding]:
    """The receiving sockets the original's Net_init opens for this configuration.

    Implicit interface: wildcard:P and wildcard:P+1. Explicit interfaces: each D address on P
    and P+1, then (segments with >= 2 configured daemons) each segment address not yet covered
    on P with SO_REUSEADDR. Every multicast segment address is joined on every P socket.
    """
    my = config.my
    if my is None:
        raise ValueError("no daemon identity: use load_config, not parse_config_text")
    seg = config.segments[my.segment]
    port = my.port
    groups = tuple(a for a in seg.addresses if a.is_multicast)
    itfs = my.interfaces
    if len(itfs) == 1 and itfs[0].types & IfType.ANY:
        return [
            Binding(Channel.DATA, None, port, False, groups),
            Binding(Channel.TOKEN, None, port + 1, False),
        ]
    out: list[Binding] = []
    covered = [False] * len(seg.addresses)
    for itf in itfs:
        if not itf.types & IfType.DAEMON:
            continue
        a = itf.address
        reuse = False
        if a.is_unspecified and a.family == my.address.family:
            covered = [True] * len(seg.addresses)
        else:
            for j, s in enumerate(seg.addresses):
                if a.same_ip(s):
                    covered[j] = True
                    reuse = True
                    break
        if a.is_multicast:
            reuse = True
        bound = None if a.is_unspecified else a
        out.append(Binding(Channel.DATA, bound, port, reuse, groups, "explicit"))
        out.append(Binding(Channel.TOKEN, bound, port + 1, False, (), "explicit"))
    if seg.bcast_needed:
        for j, s in enumerate(seg.addresses):
            if not covered[j]:
                out.append(Binding(Channel.DATA, s, port, True, (s,) if s.is_multicast else (),
                                   "explicit: extras"))
    return out


def _family(a: IpAddress) -> socket.AddressFamily:
    return socket.AF_INET if a.family == 4 else socket.AF_INET6


def _join(sock: socket.socket, group: IpAddress, me: IpAddress) -> None:
    if group.family == 4:
        mreq = group.packed + me.packed
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    else:
        index = group.scope_id or me.scope_id
        mreq = group.packed + struct.pack("@I", index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)


class UdpTransport:
    """Receiving sockets on P / P+1 and one non-blocking send socket on My's configured IP.

    Incoming datagrams go to `on_datagram(channel, src_ip, data, src_port)`, the source IP
    without scope (the engine compares it with the sender's configured IP). `send()` drops
    and counts a datagram the kernel cannot take right now instead of stalling the daemon.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        me: IpAddress,
        bindings: Iterable[Binding],
        on_datagram: DatagramCallback,
        *,
        ignore_join_errors: bool = False,
        alarm: AlarmFn | None = None,
    ) -> None:
        self.loop = loop
        self.alarm = alarm
        self.me = me
        self.bindings = list(bindings)
        self.on_datagram = on_datagram
        self.ignore_join_errors = ignore_join_errors
        self.counters: Counter[str] = Counter()
        self.recv_socks: list[tuple[socket.socket, Channel]] = []
        self.send_sock: socket.socket | None = None
        self.extra_socks: list[socket.socket] = []  # owned by helpers, closed with us
        self._scope = me.scope_id if me.family == 6 else 0
        self._logged_errnos: Counter[int] = Counter()

    def _say(self, priority: int, types: int, text: str) -> None:
        """The daemon's log (its Alarm types and priorities) when wired, else `logging`."""
        if self.alarm is not None:
            self.alarm(priority, types, text)
        else:
            log.log(_LEVELS.get(priority, logging.ERROR), text)

    @classmethod
    def for_config(
        cls,
        loop: asyncio.AbstractEventLoop,
        config: SpreadConfig,
        on_datagram: DatagramCallback,
        alarm: AlarmFn | None = None,
    ) -> UdpTransport:
        my = config.my
        if my is None:
            raise ValueError("no daemon identity")
        return cls(
            loop,
            my.address,
            plan_bindings(config),
            on_datagram,
            ignore_join_errors=config.ignore_multicast_join_errors,
            alarm=alarm,
        )

    # ---- opening and closing ---------------------------------------------------------------

    def open(self) -> None:
        """Bind every socket (raises OSError like the original's fatal bind error)."""
        try:
            for b in self.bindings:
                self.recv_socks.append((self._open_recv(b), b.channel))
            self.send_sock = self._open_send()
        except BaseException:
            self.close()
            raise
        for sock, channel in self.recv_socks:
            self.loop.add_reader(sock.fileno(), self._readable, sock, channel)

    def _open_recv(self, b: Binding) -> socket.socket:
        fam = _family(self.me)
        sock = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if fam == socket.AF_INET:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            if b.reuse:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if b.address is None:
                addr: tuple[Any, ...] = ("0.0.0.0", b.port) if fam == socket.AF_INET else (
                    "::", b.port, 0, 0)
            else:
                addr = b.address.sockaddr(b.port)
            kind = "token" if b.channel == Channel.TOKEN else "bcast"
            what = (f"binding {kind} recv channel" if b.origin == "implicit"
                    else f"binding a recv {kind} channel")
            self._say(A.INFO, A.NETWORK,
                      f"Net_init: {b.origin}: {what} to [{addr[0]}]:{b.port}")
            try:
                sock.bind(addr)
            except OSError as e:
                raise StartupError(e.errno, f"DL_init_channel_gen: bind error ({e.errno}: "
                                   f"{e.strerror}) for [{addr[0]}]:{b.port}; probably "
                                   "already running!") from e
            for g in b.joins:
                try:
                    _join(sock, g, self.me)
                except OSError as e:
                    line = (f"Net_init: {b.origin}: error joining multicast group {g.ntop} on "
                            f"channel {sock.fileno()}: {e.errno} {e.strerror}")
                    if b.origin != "explicit: extras":
                        line += "; Won't send/recv to/from this segment address!"
                    if not self.ignore_join_errors:
                        raise StartupError(e.errno, line) from e
                    self._say(A.ERROR, A.NETWORK, line)
                else:
                    self._say(A.INFO, A.NETWORK, f"Net_init: {b.origin}: joined multicast "
                                                 f"group {g.ntop} on channel {sock.fileno()}")
        except BaseException:
            sock.close()
            raise
        return sock

    def _open_send(self) -> socket.socket:
        fam = _family(self.me)
        sock = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if fam == socket.AF_INET:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
            sock.bind(self.me.sockaddr(0))  # receivers check that the source is My's IP
            self._say(A.INFO, A.NETWORK,
                      f"Net_init: creating send channel bound to {self.me.ntop}")
        except BaseException:
            sock.close()
            raise
        return sock

    def close(self) -> None:
        for sock, _ in self.recv_socks:
            try:
                self.loop.remove_reader(sock.fileno())
            except (ValueError, RuntimeError):
                pass  # never registered, or the loop is already closed
            sock.close()
        self.recv_socks = []
        if self.send_sock is not None:
            self.send_sock.close()
            self.send_sock = None
        for sock in self.extra_socks:
            sock.close()
        self.extra_socks = []

    @property
    def send_address(self) -> tuple[str, int]:
        """(ip, ephemeral port) the send socket is bound to."""
        assert self.send_sock is not None, "not open"
        host, port = self.send_sock.getsockname()[:2]
        return host, port

    # ---- the data path ---------------------------------------------------------------------

    def _readable(self, sock: socket.socket, channel: Channel) -> None:
        if channel == Channel.TOKEN:
            # Data that is already here was (nearly always) sent before this token: hand it in
            # first, then one token per wake-up. Reading tokens greedily starved the data
            # socket under load and made every round ask for retransmissions (docs/interop.md).
            for s, ch in self.recv_socks:
                if ch == Channel.DATA:
                    self._read(s, ch, DRAIN_LIMIT)
            self._read(sock, channel, 1)
        else:
            self._read(sock, channel, READ_BATCH)

    def _read(self, sock: socket.socket, channel: Channel, limit: int) -> None:
        recv = sock.recvfrom
        deliver = self.on_datagram
        counters = self.counters
        for _ in range(limit):
            try:
                data, src = recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # e.g. an ICMP error queued on the socket: keep reading
                counters["recv_error"] += 1
                self._log_errno("recv", e)
                continue
            counters["received"] += 1
            host: str = src[0]
            if "%" in host:
                host = host.split("%", 1)[0]
            try:
                deliver(channel, host, data, src[1])
            except Exception:
                counters["callback_error"] += 1
                log.exception("datagram handler failed on a %d-byte datagram from %s",
                              len(data), host)
                if self.alarm is not None:
                    self.alarm(A.ERROR, A.NETWORK, f"Net_recv: internal error on a "
                               f"{len(data)}-byte datagram from {host}; dropped")

    def send(self, action: SendDatagram) -> bool:
        """Send one datagram now; False (and counted) if it had to be dropped."""
        sock = self.send_sock
        if sock is None:
            self.counters["send_closed"] += 1
            return False
        dest: tuple[Any, ...] = (action.ip, action.port)
        if self._scope and ":" in action.ip:
            dest = (action.ip, action.port, 0, self._scope)
        try:
            sock.sendto(action.payload, dest)
        except OSError as e:
            if e.errno in _DROP_ERRNOS:
                self.counters["send_dropped"] += 1
            else:  # unreachable network while partitioned, firewall EPERM, ...
                self.counters["send_error"] += 1
                self._log_errno("send", e, action.ip, action.port)
            return False
        self.counters["sent"] += 1
        return True

    def _log_errno(self, what: str, e: OSError, ip: str = "", port: int = 0) -> None:
        """First occurrence of each errno at ERROR, then every 1000th, so a partition cannot
        flood the log."""
        n = self._logged_errnos[e.errno or 0]
        self._logged_errnos[e.errno or 0] += 1
        if n % 1000 == 0:
            where = f" to [{ip}]:{port}" if ip else ""
            self._say(A.ERROR, A.DATA_LINK,
                      f"DL_{what}: error {e.errno} '{e.strerror}'{where} (seen {n + 1} times)")


# ---- wiring into the daemon ------------------------------------------------------------------


class SendingEngine:
    """A RingEngine wrapper that sends its SendDatagram actions at once and hides them.

    The daemon then sees only deliveries, configurations and logs, exactly as with the
    one-daemon ring, so server.py needs no transport knowledge.
    """

    def __init__(self, engine: RingEngine, transport: UdpTransport) -> None:
        self.inner = engine
        self.transport = transport

    def _out(self, actions: list[Action]) -> list[Action]:
        send = self.transport.send
        rest: list[Action] = []
        for a in actions:
            if type(a) is SendDatagram:
                send(a)
            else:
                rest.append(a)
        return rest

    def start(self, now: float) -> list[Action]:
        return self._out(self.inner.start(now))

    def on_datagram(self, now: float, channel: Channel, src_ip: str, data: bytes) -> list[Action]:
        return self._out(self.inner.on_datagram(now, channel, src_ip, data))

    def on_timer(self, now: float) -> list[Action]:
        return self._out(self.inner.on_timer(now))

    def next_timer(self) -> float | None:
        return self.inner.next_timer()

    def submit(self, now: float, message: bytes) -> list[Action]:
        return self._out(self.inner.submit(now, message))

    def set_delivery_threshold(self, threshold: Any) -> None:
        self.inner.set_delivery_threshold(threshold)

    def use_groups_queue(self, on: bool) -> None:
        self.inner.use_groups_queue(on)

    def __getattr__(self, name: str) -> Any:  # counters, state, ... of the real engine
        return getattr(self.inner, name)


def make_engine(config: SpreadConfig, loop: asyncio.AbstractEventLoop) -> RingEngine:
    """The real ring engine for this configuration, its wall clock tied to the loop's clock."""
    from spread.ring.engine import Engine

    # to_ring_config() runs the accelerated ring only when the file asks for it, as 5.0.1
    # does (SpreadConfig.ring_runs_accelerated); a C peer asks for retransmissions otherwise.
    return Engine(config.to_ring_config(), wall_offset=time.time() - loop.time())


def attach_engine(
    daemon: Any, config: SpreadConfig, engine: RingEngine | None = None
) -> UdpTransport:
    """Give `daemon` (a server.Daemon, before `start()`) the real ring engine on real UDP.

    Opens the sockets (OSError if a bind fails), replaces `daemon.engine` with a
    SendingEngine around `engine` (default: `make_engine`), and feeds every datagram into it,
    carrying the resulting actions out through the daemon like its own timer does. Monitor
    commands go to a MonitorPort instead. Call `transport.close()` on the way out.
    """
    loop: asyncio.AbstractEventLoop = daemon.loop
    inner = engine if engine is not None else make_engine(config, loop)
    monitor = MonitorPort(daemon, config)

    def on_datagram(channel: Channel, src_ip: str, data: bytes, src_port: int) -> None:
        if channel == Channel.DATA and is_control_datagram(data):
            monitor.on_datagram(src_ip, src_port, data)
            return
        daemon._ring(wrapped.on_datagram(loop.time(), channel, src_ip, data))
        daemon._flush()

    transport = UdpTransport.for_config(loop, config, on_datagram,
                                        getattr(daemon, "alarm", None))
    wrapped = SendingEngine(inner, transport)
    transport.open()
    monitor.open(transport)
    daemon.engine = wrapped
    return transport


def attach_monitor(daemon: Any, config: SpreadConfig) -> UdpTransport:
    """A one-daemon configuration has no ring traffic, but spmonitor still talks to port P:
    open P only and serve monitor commands there (the original binds it in every case)."""
    loop: asyncio.AbstractEventLoop = daemon.loop
    monitor = MonitorPort(daemon, config)

    def on_datagram(channel: Channel, src_ip: str, data: bytes, src_port: int) -> None:
        if is_control_datagram(data):
            monitor.on_datagram(src_ip, src_port, data)

    alarm = getattr(daemon, "alarm", None)
    plan = [b for b in plan_bindings(config) if b.channel == Channel.DATA]
    my = config.my
    assert my is not None
    transport = UdpTransport(loop, my.address, plan, on_datagram,
                             ignore_join_errors=config.ignore_multicast_join_errors,
                             alarm=alarm)
    transport.open()
    monitor.open(transport)
    return transport


class MonitorPort:
    """Carries out a MonitorDesk's decisions for one daemon: answers STATUS from a socket of
    its own (My's IP, any port, as the original's status channel), applies partitions and
    flow control to the engine, and ends the daemon when the monitor says so."""

    def __init__(self, daemon: Any, config: SpreadConfig) -> None:
        my = config.my
        assert my is not None
        self.daemon = daemon
        self.me = my.address
        self.desk = MonitorDesk([(d.vid, d.ip) for d in config.daemons], my.vid,
                                config.conf_hash, dangerous=config.dangerous_monitor)
        self.sock: socket.socket | None = None

    def open(self, transport: UdpTransport) -> None:
        sock = socket.socket(_family(self.me), socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(self.me.sockaddr(0))
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        transport.extra_socks.append(sock)  # closed with the transport

    def on_datagram(self, src_ip: str, src_port: int, data: bytes) -> None:
        daemon = self.daemon
        if daemon.stopped.is_set():  # told to exit: the monitor's second copy changes nothing
            return
        for a in self.desk.on_datagram(src_ip, src_port, data):
            if type(a) is Note:
                daemon.alarm(a.priority, a.types, a.text)
            elif type(a) is ReplyStatus:
                self._reply(a)
            elif type(a) is SetPartition:
                daemon.set_partition(a.components)
            elif type(a) is SetFlowControl:
                daemon.set_flow_control(a.window, a.personal_window, a.accelerated_window)
            elif type(a) is ExitByMonitor:
                daemon.exit_fatal(a.text, A.NETWORK)

    def _reply(self, a: ReplyStatus) -> None:
        if self.sock is None:
            return
        data = status_reply(self.desk.my_vid, self.daemon.status())
        dest: tuple[Any, ...] = (a.ip, a.port) if self.me.family == 4 else (
            a.ip, a.port, 0, self.me.scope_id)
        try:
            self.sock.sendto(data, dest)
        except OSError as e:  # the monitor is gone or unreachable: nothing to do
            self.desk.counters["reply_error"] += 1
            log.debug("status reply to [%s]:%d failed: %s", a.ip, a.port, e)
