"""The daemon's asyncio shell: listeners, the session table, and the loop between layers.

Owns: the TCP and unix listening sockets, the quota, private-name reservations during the
handshake, and carrying out what the group layer and the ring engine return (writes to
sessions, submissions, gates). `serve()` is the entry point the command line calls.
It must not decide protocol questions: those live in spread.groups and spread.ring.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import resource
import signal
import socket
import stat
import time
from collections.abc import Iterable
from typing import Any

from spread.config import alarm as A
from spread.config.model import IfType, SpreadConfig
from spread.config.report import conf_print
from spread.daemon.log import (
    Logger,
    MembershipLog,
    log_begin,
    log_connect,
    log_disconnect,
    log_membership,
    membership_columns,
)
from spread.daemon.monitor import build_status
from spread.daemon.sessions import AUTH, DOOMED, HELLO, OPEN, ClientSession
from spread.daemon.transport import StartupError
from spread.groups.access import ACCESS_FILES, AccessRules, parse_access
from spread.groups.bits import DEFAULT_MAX_SESSION_MESSAGES, KILL_MESS, MAX_SESSIONS
from spread.groups.layer import (
    GroupLayer,
    ReadClients,
    Send,
    SessionGone,
    SetDeliveryThreshold,
    Submit,
    UseGroupsQueue,
)
from spread.groups.session import anonymous_name, private_group
from spread.ring.api import Deliver, Log, RegularConfiguration, RingEngine
from spread.ring.single import SingleRing
from spread.wire.daemon import Status

log = logging.getLogger("spread.daemon")

OP_STATE = 1  # membership state OP, as STATUS reports it

_AUTH_ORDER = ("NULL", "IP")  # registration order: the auth list is sent in this order


def raise_nofile() -> int:
    """Lift RLIMIT_NOFILE to the hard limit (1,000 sessions need the descriptors)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return hard
    return soft


class Daemon:
    """One running daemon: sessions, group layer and ring engine on one event loop."""

    def __init__(
        self,
        config: SpreadConfig,
        *,
        loop: asyncio.AbstractEventLoop,
        engine: RingEngine | None = None,
        membership_log: bool = False,
        max_sessions: int = MAX_SESSIONS,
        logger: Logger | None = None,
    ) -> None:
        my = config.my
        assert my is not None, "the configuration must say which daemon I am"
        self.config = config
        self.loop = loop
        self.name = my.name
        self.max_sessions = max_sessions
        self.max_session_messages = getattr(
            config, "max_session_messages", DEFAULT_MAX_SESSION_MESSAGES
        )
        allowed = set(getattr(config, "auth_allowed", ("NULL",)))
        required = tuple(getattr(config, "auth_required", ()))
        self.auth_allowed = allowed | set(required)
        self.auth_methods = [m for m in _AUTH_ORDER if m in self.auth_allowed]
        self.auth_required = required
        self.layer = GroupLayer(my.vid, my.name, [(d.vid, d.name) for d in config.daemons])
        wall = time.time() - time.monotonic()
        self.engine: RingEngine = engine or SingleRing(my.vid, wall_offset=wall)
        self.sessions: dict[int, ClientSession] = {}
        self.reserved: set[bytes] = set()
        self.conns: set[ClientSession] = set()  # every counted connection, handshakes included
        self.count = 0
        self.dirty: list[ClientSession] = []
        self.reading = True
        self._next_sid = 0
        self._rand = random.Random()
        self.logger = logger
        self.access = self._load_access() if "IP" in self.auth_allowed else None
        self.membership_log = membership_log
        self.mlog: MembershipLog | None = None  # opened by start(): inside the chroot
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.started = loop.time()  # STATUS reports seconds since start
        # the one-daemon ring has no flow control of its own: FC commands land here
        self.windows = (config.window, config.personal_window, config.accelerated_window)
        self.exit_status = 0
        self.stopped = asyncio.Event()  # set to end run(): a signal or the monitor's Terminate

    # ---- session table --------------------------------------------------------------------

    def new_sid(self) -> int:
        self._next_sid += 1
        return self._next_sid

    def admit(self, s: ClientSession) -> bool:
        if self.count >= self.max_sessions:
            self.log_session("Sess_accept: rejecting session due to quota")
            return False
        self.count += 1
        self.conns.add(s)
        return True

    def uncount(self, s: ClientSession) -> None:
        self.count -= 1
        self.conns.discard(s)

    def name_taken(self, group: bytes) -> bool:
        return group in self.reserved or self.layer.name_taken(group)

    def reserve_name(self, group: bytes) -> None:
        self.reserved.add(group)

    def release_name(self, group: bytes) -> None:
        self.reserved.discard(group)

    def invent_name(self, fd: int) -> bytes:
        while True:
            name = anonymous_name(self._rand.randrange(9999), fd)
            if not self.name_taken(private_group(name, self.name)):
                return name

    def authenticate(self, method: str, peer: str | None) -> bool:
        """NULL always succeeds; IP checks the peer against spread.access_ip (none: refuse)."""
        if method == "NULL":
            return True
        if method == "IP":
            return self.access is not None and self.access.allows(peer)
        return False

    def _load_access(self) -> AccessRules | None:
        for path in ACCESS_FILES:
            try:
                with open(path) as f:
                    rules = parse_access(f.read())
            except OSError:
                continue
            self.alarm(A.INFO, A.ACM, f"ip_init: using file: {path}")
            return rules
        self.alarm(A.ERROR, A.ACM, "ip_init: IP access control file not found.")
        return None

    def open_session(self, s: ClientSession) -> None:
        self.reserved.discard(s.group)
        self.sessions[s.sid] = s
        assert s.hello is not None
        self.layer.open_session(s.sid, s.group, s.hello.membership)
        self.log_session(f"Sess_session_authorized: Accepting with private name "
                         f"{_text(s.name)} on mailbox {s.fd}")
        if self.mlog is not None:
            name = s.name.decode("latin-1")
            self.mlog.write(log_connect(int(time.time()), 0, s.fd, s.peer, name))

    def session_failed(self, s: ClientSession) -> None:
        """The daemon ends a session (EOF, error, bad header, slow reader): KILL|SAFE for it."""
        if s.state not in (OPEN, DOOMED):
            return
        self._closed(s)
        self.log_session(f"Sess_kill: killing session {_text(s.name)} ( mailbox {s.fd} )")
        self._submit(self.layer.kill_message(s.sid))
        self._flush()

    def internal_error(self, s: ClientSession, e: Exception) -> None:
        """An exception escaped while handling this session's bytes: end only the session."""
        log.exception("session %r: internal error", s.group)
        self.alarm(A.ERROR, A.SESSION | A.EXIT, f"Sess_read: internal error {e!r}; session closed")
        if s.state in (OPEN, DOOMED):
            self.session_failed(s)
        else:
            self.release_name(s.group)
            s.close_now()

    def _closed(self, s: ClientSession) -> None:
        queued = len(s.out) + len(s.backlog)  # the original logs its write-queue length
        s.close_now()
        if self.mlog is not None:
            name = s.name.decode("latin-1")
            self.mlog.write(log_disconnect(int(time.time()), 0, s.fd, s.peer, name, queued))

    # ---- the hot path ---------------------------------------------------------------------

    def client_frames(self, s: ClientSession, frames: list[tuple[int, bytes]]) -> None:
        now = self.loop.time()
        submit = self.engine.submit
        for t, msg in frames:
            if t & KILL_MESS:
                self._closed(s)
                self.log_session(f"Sess_read: disconnecting session {_text(s.name)} "
                                 f"( mailbox {s.fd} )")
                self._ring(submit(now, msg))
                break
            self._ring(submit(now, msg))
        self._flush()

    def _submit(self, message: bytes) -> None:
        self._ring(self.engine.submit(self.loop.time(), message))

    def _ring(self, actions: Iterable[Any]) -> None:
        layer = self.layer
        sessions = self.sessions
        for a in actions:
            if type(a) is Deliver:
                for g in layer.on_deliver(a.message):
                    if type(g) is Send:
                        data = g.data
                        for sid in g.sessions:
                            s = sessions.get(sid)
                            if s is not None:
                                s.send(data)
                    else:
                        self._group_action(g)
            elif isinstance(a, Log):
                if a.text.startswith("Membership id is"):  # INFO/PRINT in the original
                    self.alarm(A.INFO, A.PRINT_TYPE, a.text)
                else:
                    self.alarm(a.priority, A.MEMB, a.text)
            else:
                if isinstance(a, RegularConfiguration):
                    self._on_regular(a)
                for g in layer.on_ring(a):
                    self._group_action(g)
        self._arm_timer()

    def _group_action(self, g: Any) -> None:
        if type(g) is Send:
            for sid in g.sessions:
                s = self.sessions.get(sid)
                if s is not None:
                    s.send(g.data)
        elif type(g) is Submit:
            self._submit(g.message)
        elif type(g) is SessionGone:
            self.sessions.pop(g.session, None)
        elif type(g) is SetDeliveryThreshold:
            self.engine.set_delivery_threshold(g.threshold)
        elif type(g) is UseGroupsQueue:
            self.engine.use_groups_queue(g.on)
        elif type(g) is ReadClients:
            self._set_reading(g.on)
        elif isinstance(g, Log):
            self.alarm(g.priority, A.GROUPS, g.text)

    def _flush(self) -> None:
        dirty = self.dirty
        if dirty:
            self.dirty = []
            for s in dirty:
                s.flush()

    def _set_reading(self, on: bool) -> None:
        self.reading = on
        for s in self.conns:
            if s.transport is not None and s.state in (HELLO, AUTH, OPEN):
                if on:
                    s.transport.resume_reading()
                else:
                    s.transport.pause_reading()

    def _arm_timer(self) -> None:
        when = self.engine.next_timer()
        if when is None or when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_at(max(when, self.loop.time()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._ring(self.engine.on_timer(self.loop.time()))
        self._flush()

    # ---- monitor commands (spread/daemon/monitor.py decides, these carry out) ---------------

    def status(self) -> Status:
        """The STATUS figures: the engine's, plus uptime, groups and sessions."""
        ring_status = getattr(self.engine, "status", None)
        if ring_status is not None:
            ring = ring_status()
        else:  # the one-daemon ring: always OP, alone, nothing on the wire
            cfg = self.config
            ring = dict.fromkeys(
                ("packet_sent", "packet_recv", "packet_delivered", "retrans", "u_retrans",
                 "s_retrans", "b_retrans", "aru", "my_aru", "highest_seq", "token_hurry",
                 "token_rounds"), 0)
            ring.update(state=OP_STATE, my_id=self.layer.my_vid, leader_id=self.layer.my_vid,
                        membership_changes=1, num_procs=1, num_segments=1,
                        window=self.windows[0], personal_window=self.windows[1],
                        accelerated_ring=int(cfg.ring_runs_accelerated),
                        accelerated_window=self.windows[2])
        return build_status(
            ring,
            sec=int(self.loop.time() - self.started),
            gstate=int(self.layer.state),
            message_delivered=self.layer.data_delivered,
            num_sessions=len(self.sessions) + len(self.reserved),
            num_groups=len(self.layer.groups),
        )

    def set_partition(self, components: tuple[int, ...]) -> None:
        setter = getattr(self.engine, "set_partition", None)
        if setter is not None:
            setter(self.loop.time(), components)
            self._arm_timer()  # the partition lifts itself after 60 s

    def set_flow_control(self, window: int, personal: int, accelerated: int) -> None:
        """FC: -1 keeps a value; logs the values then in force."""
        setter = getattr(self.engine, "set_flow_control", None)
        if setter is not None:
            setter(window, personal, accelerated)
        w, p, a = (old if new == -1 else new
                   for old, new in zip(self.windows, (window, personal, accelerated)))
        self.windows = (w, p, a)
        self.alarm(A.WARNING, A.FLOW_CONTROL,
                   f"FC_handle_message: Got monitor mess, Window {w} Personal {p} "
                   f"Accelerated {a}")

    def exit_fatal(self, text: str, types: int) -> None:
        """A FATAL alarm that ends the daemon (the original aborts; we close down cleanly)."""
        if self.logger is not None:
            self.logger.fatal([text], types)
        else:
            log.critical(text)
        self.exit_status = 1
        self.stopped.set()

    # ---- start / stop ---------------------------------------------------------------------

    def start(self) -> None:
        if self.membership_log and self.mlog is None:
            self.mlog = MembershipLog(self.name)  # the original's Log_init, after the drop
        if self.mlog is not None:
            self.mlog.write(log_begin(int(time.time())))
        self._ring(self.engine.start(self.loop.time()))
        self._flush()

    def alarm(self, priority: int, types: int, text: str) -> None:
        """One log line: through the daemon's Logger when it has one, else `logging`."""
        if self.logger is not None:
            self.logger.alarm(priority, types, text if text.endswith("\n") else text + "\n")
        else:
            log.log(_level(priority), text.rstrip("\n"))

    def log_session(self, text: str) -> None:
        self.alarm(A.WARNING, A.SESSION, text)  # the original's Alarm(SESSION, ...)

    def _on_regular(self, a: RegularConfiguration) -> None:
        """What the original prints and logs at every regular membership."""
        if self.logger is not None:
            for rec in conf_print(self.config.segments, self.name, a.members):
                self.logger.emit(rec)
            self.logger.alarm(A.INFO, A.PRINT_TYPE, "\n")
        if self.mlog is not None:
            self._memb_log(a)

    def _memb_log(self, a: RegularConfiguration) -> None:
        assert self.mlog is not None
        cols = membership_columns([d.vid for d in self.config.daemons], a.members)
        try:
            self.mlog.write(log_membership(int(time.time()), a.ring_id.time, 0, cols))
        except OSError as e:
            self.alarm(A.ERROR, A.SESSION, f"membership log: {e}")


def _text(name: bytes) -> str:
    """A private name as printf("%s") shows it."""
    return name.split(b"\0", 1)[0].decode("latin-1")


def _level(priority: int) -> int:
    return {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}.get(
        priority, logging.CRITICAL
    )


# ---- listeners -----------------------------------------------------------------------------


def tcp_addresses(config: SpreadConfig) -> list[tuple[str, bool]]:
    """(address, is_specific) to listen on: wildcard for the implicit interface, else each C."""
    my = config.my
    assert my is not None
    out: list[tuple[str, bool]] = []
    for itf in my.interfaces:
        if itf.types & IfType.ANY:
            out.append(("::" if my.address.family == 6 else "0.0.0.0", False))
        elif itf.types & IfType.CLIENT:
            out.append((itf.address.ip, True))
    return out


def unix_path(port: int) -> str:
    return f"/tmp/{port}"


def claim_unix_path(path: str) -> None:
    """Remove a stale socket file from a crashed run; refuse to steal a live one."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISSOCK(st.st_mode):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        try:
            probe.connect(path)
        except OSError:
            pass  # nobody listening: stale
        else:
            raise OSError(f"{path} is in use by a running daemon")
        finally:
            probe.close()
    os.unlink(path)


async def start_listeners(
    daemon: Daemon, config: SpreadConfig, port: int
) -> tuple[list[asyncio.AbstractServer], str, int]:
    """Open TCP listeners and /tmp/<port>; returns (servers, unix path, inode of our file)."""
    loop = daemon.loop
    servers: list[asyncio.AbstractServer] = []
    reuse_setting = getattr(config, "port_reuse", None)
    for addr, specific in tcp_addresses(config):
        auto = reuse_setting is None or int(reuse_setting) == 2
        reuse = specific if auto else bool(reuse_setting)
        try:
            servers.append(await loop.create_server(
                lambda: ClientSession(daemon), addr, port, backlog=25, reuse_address=reuse))
        except OSError as e:
            raise StartupError(e.errno, f"Sess_init: unable to bind to port [{addr}]:{port}; "
                               f"likely already bound by another process: -1 {e.errno} "
                               f"'{os.strerror(e.errno or 0)}'") from e
    path = unix_path(port)
    claim_unix_path(path)
    try:
        servers.append(
            await loop.create_unix_server(lambda: ClientSession(daemon), path, backlog=5))
    except OSError as e:
        raise StartupError(e.errno, f"Sess_init: AF_UNIX unable to bind to name '{path}': "
                           f"{e.errno} '{os.strerror(e.errno or 0)}'") from e
    os.chmod(path, 0o666)
    return servers, path, os.lstat(path).st_ino


async def run(
    config: SpreadConfig,
    *,
    membership_log: bool = False,
    logger: Logger | None = None,
    drop_privileges: bool = True,
) -> int:
    """Run the daemon until SIGTERM or SIGINT; the unix socket file is removed on the way out.

    As root (and unless `drop_privileges` is False, for tests and benchmarks) it then does
    what the original does once its sockets exist: chroot to RuntimeDir and become
    DaemonUser/DaemonGroup.
    """
    from spread.daemon import privileges
    from spread.daemon.transport import attach_engine, attach_monitor

    loop = asyncio.get_running_loop()
    daemon = Daemon(config, loop=loop, membership_log=membership_log, logger=logger)
    my = config.my
    assert my is not None
    if drop_privileges:
        try:
            privileges.check_socket_dir(daemon.alarm)
        except privileges.Fatal as e:
            daemon.exit_fatal(e.text, e.types)
            return daemon.exit_status
    if len(config.daemons) > 1:  # a real ring: the engine on UDP P and P+1
        udp = attach_engine(daemon, config)
    else:
        udp = attach_monitor(daemon, config)
    servers: list[asyncio.AbstractServer] = []
    sock_dir = -1  # /tmp, held open so the socket file can go even from inside the chroot
    try:
        servers, path, ino = await start_listeners(daemon, config, my.port)
        sock_dir = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
        if drop_privileges:
            privileges.drop(config, daemon.alarm)
        daemon.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, daemon.stopped.set)
        await daemon.stopped.wait()
    except privileges.Fatal as e:
        daemon.exit_fatal(e.text, e.types)
    finally:
        for srv in servers:
            srv.close()
        for s in list(daemon.sessions.values()):
            s.close_now()
        udp.close()
        if sock_dir >= 0:
            name = os.path.basename(path)
            with contextlib.suppress(OSError):  # after the drop it may not be ours to remove
                if os.stat(name, dir_fd=sock_dir, follow_symlinks=False).st_ino == ino:
                    os.unlink(name, dir_fd=sock_dir)
            os.close(sock_dir)
    if daemon.exit_status == 0:
        daemon.alarm(A.PRINT, A.SYSTEM, "Spread daemon exiting normally!")
    return daemon.exit_status


def serve(
    config: SpreadConfig, *, membership_log: bool = False, drop_privileges: bool = True
) -> int:
    """Entry point for the command line: returns the exit status."""
    raise_nofile()
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    logger = Logger()
    logger.configure(config.logging)
    try:
        return asyncio.run(run(config, membership_log=membership_log, logger=logger,
                               drop_privileges=drop_privileges))
    except OSError as e:  # a socket that cannot be bound: the original's FATAL alarm
        logger.fatal([str(e)], A.DATA_LINK)
        return 1
