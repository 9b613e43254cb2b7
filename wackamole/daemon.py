"""The wackamole daemon: an asyncio shell that carries out what the sans-IO Node decides.

Owns the process (foreground with -d, or detached with a pid file), logging (stdout with
timestamps, or syslog), the Spread session, timers, the control socket, signals, the raw
socket for ARP frames, interfaces and hooks. Every input (message, timer, control request,
signal) goes through one queue and is handled to the end, actions included, before the
next one starts: the node sees events one at a time, as in the original's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import signal
import socket
import sys
import syslog
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address
from typing import Any, TextIO, TypeVar

from spread.client import (
    MembershipMessage,
    RegularMessage,
    RejectMessage,
    SpreadError,
    aconnect,
)
from spread.client.aio import AsyncMailbox
from spread.client.errors import error_line
from wackamole import control
from wackamole.arp import ROUND_SECONDS, Announcement, Frame, read_local_arp_cache
from wackamole.config.model import Action as HookKind
from wackamole.config.model import WackamoleConfig
from wackamole.core import (
    Acquire,
    CancelTimer,
    Connect,
    Disconnect,
    Exit,
    Log,
    LogLevel,
    Multicast,
    Node,
    NodeAction,
    Release,
    Reup,
    RunHooks,
    SampleArpCache,
    SetTimer,
    Timer,
)
from wackamole.hooks import Hooks
from wackamole.netif import (
    ACQUIRE_LINE,
    RELEASE_LINE,
    InterfaceError,
    Interfaces,
    dotted,
)
from wackamole.peer import MAX_BODY, SERVICE

PID_FILE = "/var/run/wackamole.pid"
MAX_MEMBERS = 254  # the original's receive buffer for group names
SIGNALS = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM", signal.SIGQUIT: "SIGQUIT"}
T = TypeVar("T")


class Logger:
    """-d: every level on stdout with the original's timestamp; else PRINT lines to syslog."""

    def __init__(self, debug: bool, out: TextIO | None = None) -> None:
        self.debug = debug
        self.out = out or sys.stdout
        if not debug:
            syslog.openlog("wackamole", syslog.LOG_PID, syslog.LOG_DAEMON)

    def __call__(self, level: LogLevel, text: str) -> None:
        if self.debug:
            stamp = time.strftime("[%a %d %b %Y %H:%M:%S] ", time.localtime())
            self.out.write(f"{stamp}{text}\n")
            self.out.flush()
        elif level is LogLevel.PRINT:
            syslog.syslog(syslog.LOG_NOTICE, text)  # passed as data, never as a format

    def print(self, text: str) -> None:
        self(LogLevel.PRINT, text)


def open_control_socket(path: str, out: TextIO) -> socket.socket | None:
    """The control socket, made before daemonizing (mode 0600; a file there is replaced)."""
    if not path:
        return None  # the original binds an unreachable abstract address; we make none
    with contextlib.suppress(OSError):
        os.unlink(path)
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    except OSError:
        out.write("could not open socket\ndisabling wackatrl support.\n")
        return None
    old = os.umask(0o177)
    try:
        sock.bind(path)
    except OSError:
        sock.close()
        out.write(f"bind to {path} failed.\ndisabling wackatrl support.\n")
        return None
    finally:
        os.umask(old)
    try:
        sock.listen(5)
    except OSError:
        sock.close()
        out.write(f"listen on {path} failed.\ndisabling wackatrl support.\n")
        return None
    return sock


class Daemon:
    def __init__(
        self,
        config: WackamoleConfig,
        my_ip: IPv4Address,
        log: Logger,
        raw: socket.socket,
        control_sock: socket.socket | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self.config = config
        self.node = Node(config, my_ip)
        self.log = log
        self.raw = raw
        self.control_sock = control_sock
        # pyroute2's blocking API cannot run inside an event loop: netlink work happens on
        # one thread of its own, in order.
        self.netlink = ThreadPoolExecutor(1, thread_name_prefix="netlink")
        self.netif: Interfaces | None = None
        self.hooks = hooks if hooks is not None else Hooks(config.hooks, log.print)
        self.private_name = config.private_name or f"wack{os.getpid()}"
        self.mailbox: AsyncMailbox | None = None
        self.receiver: asyncio.Task[None] | None = None
        self.timers: dict[Timer, asyncio.TimerHandle] = {}
        self.notifiers: dict[int, asyncio.Task[None]] = {}
        # Started once the current event is handled, as the original queues them for later.
        self.announcing: dict[int, Announcement] = {}
        self.events: asyncio.Queue[tuple[Callable[[], list[NodeAction]], asyncio.Future | None]]
        self.exit_code: asyncio.Future[int]

    # --- the event queue ---------------------------------------------------------------------

    def post(
        self, event: Callable[[], list[NodeAction]], done: asyncio.Future | None = None
    ) -> None:
        self.events.put_nowait((event, done))

    async def _nl(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.netlink, functools.partial(fn, *args))

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self.netif = await self._nl(Interfaces)
        self.events = asyncio.Queue()
        self.exit_code = loop.create_future()
        for signum, name in SIGNALS.items():
            loop.add_signal_handler(signum, self.post, lambda n=name: self.node.shutdown(n))
        server = None
        if self.control_sock is not None:
            server = await asyncio.start_unix_server(
                self._control_session, sock=self.control_sock, backlog=5)  # listen(fd, 5)
        worker = asyncio.create_task(self._work())
        self.post(self.node.start)
        try:
            return await self.exit_code
        finally:
            worker.cancel()
            if server is not None:
                server.close()
            for handle in self.timers.values():
                handle.cancel()
            for task in self.notifiers.values():
                task.cancel()
            await self._drop_session()
            for signum in SIGNALS:
                loop.remove_signal_handler(signum)
            await self._nl(self.netif.close)
            self.netlink.shutdown()

    async def _work(self) -> None:
        while True:
            event, done = await self.events.get()
            try:
                await self.apply(event())
            except Exception as exc:  # one failed event must not silently stop the daemon
                self.log.print(f"error while handling an event: {exc!r}")
            finally:
                for index, ann in self.announcing.items():
                    self.notifiers[index] = asyncio.create_task(self._announce(index, ann))
                self.announcing.clear()
                if done is not None and not done.done():
                    done.set_result(None)

    # --- actions -----------------------------------------------------------------------------

    async def apply(self, actions: list[NodeAction]) -> None:
        for a in actions:
            if self.exit_code.done():
                return
            if isinstance(a, Log):
                self.log(a.level, a.text)
            elif isinstance(a, Multicast):
                await self._multicast(a)
            elif isinstance(a, Acquire):
                await self._acquire(a.vif, a.real)
            elif isinstance(a, Release):
                await self._release(a.vif, a.cleanup, a.real)
            elif isinstance(a, Reup):
                await self._reup(a.vifs)
            elif isinstance(a, RunHooks):
                self.hooks.run(a.kind)
            elif isinstance(a, SetTimer):
                self._set_timer(a.timer, a.delay)
            elif isinstance(a, CancelTimer):
                handle = self.timers.pop(a.timer, None)
                if handle is not None:
                    handle.cancel()
            elif isinstance(a, SampleArpCache):
                entries, lines = read_local_arp_cache()
                for line in lines:
                    self.log(LogLevel.ARPING, line)
                await self.apply(self.node.local_arp_cache(entries))
            elif isinstance(a, Connect):
                await self._connect()
            elif isinstance(a, Disconnect):
                await self._drop_session()
            elif isinstance(a, Exit):
                self.exit_code.set_result(a.code)

    def _set_timer(self, timer: Timer, delay: float) -> None:
        old = self.timers.pop(timer, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            self.timers.pop(timer, None)
            self.post(lambda: self.node.on_timer(timer))

        self.timers[timer] = asyncio.get_running_loop().call_later(delay, fire)

    # --- Spread ------------------------------------------------------------------------------

    async def _connect(self) -> None:
        try:
            mailbox = await aconnect(self.config.spread, self.private_name, 0, True, timeout=10)
        except SpreadError as exc:
            await self.apply(self.node.connect_failed(exc.code))
            return
        try:
            await mailbox.join(self.config.group)
        except SpreadError as exc:
            print(error_line(exc.code), flush=True)  # SP_error goes to stdout, as in C
            mailbox.kill()
            await self.apply(self.node.join_failed(exc.code))
            return
        self.mailbox = mailbox
        await self.apply(self.node.connected_ok())
        self.receiver = asyncio.create_task(self._receive(mailbox))

    async def _drop_session(self) -> None:
        if self.receiver is not None:
            self.receiver.cancel()
            self.receiver = None
        mailbox, self.mailbox = self.mailbox, None
        if mailbox is not None:
            with contextlib.suppress(SpreadError):
                await mailbox.disconnect()

    async def _receive(self, mailbox: AsyncMailbox) -> None:
        while True:
            try:
                msg = await mailbox.receive(MAX_MEMBERS, MAX_BODY)
            except SpreadError as exc:
                print(error_line(exc.code), flush=True)
                if self.mailbox is mailbox:
                    self.post(lambda code=exc.code: self.node.spread_error(code))
                return
            self.post(lambda m=msg: self._dispatch(m, mailbox))

    def _dispatch(self, msg: object, mailbox: AsyncMailbox) -> list[NodeAction]:
        if self.mailbox is not mailbox:
            return []  # read before a reconnect: the original never sees these
        if isinstance(msg, MembershipMessage):
            if msg.gid is None:
                return []
            return self.node.on_membership(msg.group, msg.members, msg.mess_type, msg.gid)
        if isinstance(msg, RegularMessage):
            return self.node.on_message(
                msg.sender, msg.mess_type, msg.data, bool(msg.endian_mismatch)
            )
        if isinstance(msg, RejectMessage):
            return self.node.on_unknown_service(msg.service_type, len(msg.data))
        return []  # transitional and self-leave memberships are ignored

    async def _multicast(self, a: Multicast) -> None:
        mailbox = self.mailbox
        if mailbox is None:
            return
        try:
            await mailbox.multicast(SERVICE[a.mess_type], self.config.group, a.mess_type, a.body)
        except SpreadError as exc:
            print(error_line(exc.code), flush=True)
            await self.apply(self.node.spread_error(exc.code))

    # --- interfaces, ARP and hooks -----------------------------------------------------------

    async def _acquire(self, index: int, real: IPv4Address) -> None:
        assert self.netif is not None
        vif = self.config.vifs[index]
        for spec in vif.addresses:
            try:
                label = await self._nl(self.netif.up, spec)
            except InterfaceError as exc:
                self.log.print(f"{ACQUIRE_LINE} {exc}")
            else:
                self.log.print(f"  UP: {label}:{spec.address}/{spec.netmask}")
        self._invoke_spoofer(index)
        self.hooks.run(HookKind.ON_UP, vif, real)

    async def _release(self, index: int, cleanup: bool, real: IPv4Address) -> None:
        assert self.netif is not None
        vif = self.config.vifs[index]
        self._cancel_spoofer(index, logged=cleanup)
        for spec in vif.addresses:
            try:
                label, prefixlen = await self._nl(self.netif.down, spec)
            except InterfaceError as exc:
                self.log.print(f"{RELEASE_LINE} {exc}")
            else:
                self.log.print(f"DOWN: {label}:{spec.address}/{dotted(prefixlen)}")
            self.hooks.run(HookKind.ON_DOWN, vif, real)

    async def _reup(self, vifs: tuple[int, ...]) -> None:
        assert self.netif is not None
        for index in vifs:
            for spec in self.config.vifs[index].addresses:
                try:
                    label = await self._nl(self.netif.up, spec)
                except InterfaceError as exc:
                    self.log.print(str(exc))
                else:
                    self.log.print(f"  (re)UP: {label}:{spec.address}/{spec.netmask}")
            self._invoke_spoofer(index)

    def _cancel_spoofer(self, index: int, logged: bool = True) -> None:
        task = self.notifiers.pop(index, None)
        if task is not None:
            task.cancel()
        self.announcing.pop(index, None)
        if logged:
            self.log(LogLevel.ARPING, "Dequeued arp spoof notifier.")

    def _invoke_spoofer(self, index: int) -> None:
        self._cancel_spoofer(index)
        vif = self.config.vifs[index]
        ann = Announcement(vif, self.config.notifications, self.node.shared_arp_cache())
        self.announcing[index] = ann
        self.log(LogLevel.ARPING, "Queued arp spoof notifier for virtual entry.")

    async def _announce(self, index: int, ann: Announcement) -> None:
        """Rounds one second apart until a round has nothing left to send."""
        assert self.netif is not None
        names = sorted({spec.ifname for spec in self.config.vifs[index].addresses})
        while True:
            macs = {name: await self._nl(self.netif.mac, name) for name in names}
            result = ann.round(macs)
            for line in result.log:
                self.log(LogLevel.ARPING, line)
            for frame in result.frames:
                self._send_frame(frame)
            if not result.again:
                break
            self.log.print("Re-queued arp spoof notifier for virtual entry.")
            await asyncio.sleep(ROUND_SECONDS)
        if self.notifiers.get(index) is asyncio.current_task():
            del self.notifiers[index]

    def _send_frame(self, frame: Frame) -> None:
        with contextlib.suppress(OSError):
            self.raw.sendto(frame.data, (frame.ifname, 0))

    # --- the control socket ------------------------------------------------------------------

    async def _control_session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.log(LogLevel.DEBUG, "starting wackatrl session")
        fd = writer.get_extra_info("socket").fileno()
        state, operation = 0, 100  # the original's READ_OP state and "nothing read yet"
        try:
            while True:
                state, operation = 0, 100
                op = await reader.read(1)
                if not op:
                    break
                operation = op[0] - 256 if op[0] > 127 else op[0]  # a C char, printed as %d
                try:
                    request = control.decode_request(op)
                except control.ControlProtocolError:
                    self.log.print(f"control session error: [fd={fd}] Success\n"
                                   f"\tState=0, Operation={operation}")
                    break
                if request is control.Op.GET_WACK_STATE:
                    reply = control.encode_state(self._vif_states())
                    self.log(
                        LogLevel.DEBUG,
                        f"Going to write state: {len(reply)} bytes, filled {len(reply)}",
                    )
                else:
                    handler = (
                        self.node.service_failure
                        if request is control.Op.WACK_SERVICE_FAILURE
                        else self.node.service_success
                    )
                    done = asyncio.get_running_loop().create_future()
                    self.post(handler, done)
                    await done
                    reply = control.encode_ack(0)
                state = 1  # writing the reply
                writer.write(reply)
                await writer.drain()
        except (OSError, ConnectionError) as exc:  # e.g. wackatrl gone before its reply
            self.log.print(f"control session error: [fd={fd}] "
                           f"{exc.strerror or type(exc).__name__}\n"
                           f"\tState={state}, Operation={operation}")
        finally:
            writer.close()

    def _vif_states(self) -> list[control.VifState]:
        return [
            control.VifState.from_config(vif, slot.owner, slot.claim)
            for vif, slot in zip(self.config.vifs, self.node.alloc, strict=True)
        ]


def open_raw_socket() -> socket.socket | None:
    try:
        return socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    except PermissionError:
        return None


def _write_pid_file(log: Logger) -> bool:
    path = os.environ.get("WACKAMOLE_PID_FILE", PID_FILE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError:
        log.print(f"Cannot write PID file {path}")
        return False
    with os.fdopen(fd, "w") as f:
        f.write(f"{os.getpid()}\n")
    return True


def run(config: WackamoleConfig, debug: bool, my_ip: str) -> int:
    """Start the daemon as the original does (§7.1); the exit status."""
    out = sys.stdout
    if not config.private_name:  # the original names itself after the launcher's pid
        config = dataclasses.replace(config, private_name=f"wack{os.getpid()}")
    # the original opens its hook libraries while reading the config, before its control
    # socket: errors reach the terminal, not the log
    hooks = Hooks(config.hooks, lambda text: print(text, file=out))
    control_sock = open_control_socket(config.control, out)
    out.flush()
    if not debug:
        import daemon as python_daemon  # python-daemon

        context = python_daemon.DaemonContext(
            working_directory="/",
            umask=0o027,
            detach_process=True,
            files_preserve=[control_sock] if control_sock is not None else [],
            signal_map={},  # our own handlers, installed in the event loop
            prevent_core=False,  # the original leaves RLIMIT_CORE alone
        )
        context.open()
    log = Logger(debug)
    if not debug and not _write_pid_file(log):
        return 0
    raw = open_raw_socket()
    if raw is None:
        sys.stderr.write("socket: Operation not permitted\n")
        return 1
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    node_daemon = Daemon(config, IPv4Address(my_ip), log, raw, control_sock, hooks)
    try:
        return asyncio.run(node_daemon.run())
    finally:
        raw.close()
