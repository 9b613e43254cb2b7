"""The asyncio side of one client connection: read, hand bytes to the sans-IO session code, write.

Owns the socket-facing state of a session (handshake deadlines, the read buffer, the outgoing
queue and the slow-reader rule). What the bytes mean is decided in `spread.groups.session`;
who gets what is decided by the group layer through `spread.daemon.server.Daemon`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from typing import TYPE_CHECKING

from spread.groups.bits import REJECT_AUTH, REJECT_NOT_UNIQUE
from spread.groups.session import (
    CLOSE,
    BadFrame,
    FrameReader,
    accept_message,
    auth_list,
    decode_auth,
    decode_hello,
    private_group,
)
from spread.wire import client as wire

if TYPE_CHECKING:
    from spread.daemon.server import Daemon

HELLO_DEADLINE = 1.0  # the original's wait for the first bytes of a new connection
GRACE = 0.1  # how long the rest of a hello or auth choice may trail its first bytes

HELLO, AUTH, OPEN, CLOSED, DOOMED = 0, 1, 2, 3, 4  # DOOMED: open, but its kill is on the way


class ClientSession(asyncio.Protocol):
    """One accepted client socket (TCP or unix)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.sid = daemon.new_sid()
        self.state = HELLO
        self.transport: asyncio.Transport | None = None
        self.fd = -1
        self.peer = ""
        self.peer_ip: str | None = None
        self.counted = False
        self.buf = b""
        self.timer: asyncio.TimerHandle | None = None
        self.grace: asyncio.TimerHandle | None = None
        self.hello: wire.Hello | None = None
        self.name = b""  # private name, without the '#…#daemon' parts
        self.group = b""  # private group name '#name#daemon'
        self.reader: FrameReader | None = None
        self.out: list[bytes] = []  # written at the end of this loop turn
        self.dirty = False
        self.backlog: deque[bytes] = deque()  # held while the transport is full
        self.paused = False

    # ---- asyncio callbacks ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self.fd = sock.fileno()
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                except OSError:
                    pass
        peer = transport.get_extra_info("peername")
        self.peer_ip = peer[0] if isinstance(peer, tuple) else None  # None: unix socket
        self.peer = self.peer_ip or "localhost"
        if sock is not None:  # the original raises both buffers towards 200 KiB
            for opt in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, opt, 200 * 1024)
        if not self.daemon.admit(self):
            transport.write(wire.encode_reject_byte(wire.REJECT_QUOTA))
            self.state = CLOSED
            transport.close()
            return
        self.counted = True
        if not self.daemon.reading:
            transport.pause_reading()
        self.timer = self.daemon.loop.call_later(HELLO_DEADLINE, self._hello_deadline)

    def data_received(self, data: bytes) -> None:
        try:
            if self.state == OPEN:
                assert self.reader is not None
                try:
                    frames = self.reader.feed(data)
                except BadFrame as e:
                    self.daemon.log_session(f"Sess_read: bad message from {self.group!r}: {e}")
                    self.daemon.session_failed(self)
                    return
                if frames:
                    self.daemon.client_frames(self, frames)
            elif self.state == HELLO:
                self._on_hello(data, False)
            elif self.state == AUTH:
                self._on_auth(data, False)
        except Exception as e:  # a bug of ours costs this session, never the daemon
            self.daemon.internal_error(self, e)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        if self.state in (OPEN, DOOMED):
            self.daemon.session_failed(self)
        elif self.state in (HELLO, AUTH):
            self.state = CLOSED
            self.daemon.release_name(self.group)
        if self.counted:
            self.counted = False
            self.daemon.uncount(self)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.backlog and self.state == OPEN and self.transport is not None:
            data = b"".join(self.backlog)
            self.backlog.clear()
            self.transport.write(data)

    # ---- handshake ------------------------------------------------------------------------

    def _hello_deadline(self) -> None:
        self.timer = None
        if self.state == HELLO:
            self._on_hello(b"", True)

    def _cancel_timers(self) -> None:
        for t in (self.timer, self.grace):
            if t is not None:
                t.cancel()
        self.timer = self.grace = None

    def _reject(self, code: int, why: str) -> None:
        self.daemon.log_session(f"Sess_accept: {why}; rejected with {code}")
        self._cancel_timers()
        if self.transport is not None:
            if code != CLOSE:
                self.transport.write(wire.encode_reject_byte(code))
            self.transport.close()
        if self.state in (HELLO, AUTH):
            self.daemon.release_name(self.group)
        self.state = CLOSED

    def _start_grace(self, phase: int) -> None:
        if self.grace is None:
            self.grace = self.daemon.loop.call_later(GRACE, self._grace_over, phase)

    def _grace_over(self, phase: int) -> None:
        self.grace = None
        if self.state == phase == HELLO:
            self._on_hello(b"", True)
        elif self.state == phase == AUTH:
            self._on_auth(b"", True)

    def _on_hello(self, data: bytes, final: bool) -> None:
        self.buf += data
        r = decode_hello(self.buf, final)
        if r is None:
            self._start_grace(HELLO)
            return
        if isinstance(r, int):
            self._reject(r, "bad hello")
            return
        self._cancel_timers()
        rest = self.buf[r.size :]
        self.buf = b""
        self.hello = r
        name = r.name.encode("latin-1")
        if not name:
            name = self.daemon.invent_name(self.fd)
        group = private_group(name, self.daemon.name)
        if self.daemon.name_taken(group):
            self._reject(REJECT_NOT_UNIQUE, f"name {name!r} not unique")
            return
        self.name, self.group = name, group
        self.daemon.reserve_name(group)
        if not r.wants_auth:  # 3.1 .. 3.15 libraries: no auth exchange at all
            allowed = self.daemon.auth_allowed
            if "IP" in allowed:
                ok = self.daemon.authenticate("IP", self.peer_ip)
            else:
                ok = "NULL" in allowed
            if ok:
                self._accept(rest)
            else:
                self._reject(REJECT_AUTH, "old library refused (IP rules or NULL disabled)")
            return
        methods = self.daemon.auth_methods
        assert self.transport is not None
        self.transport.write(auth_list(methods))
        if not methods:
            self._reject(REJECT_AUTH, "no auth method enabled")
            return
        self.state = AUTH
        if rest:
            self._on_auth(rest, False)

    def _on_auth(self, data: bytes, final: bool) -> None:
        self.buf += data
        r = decode_auth(self.buf, final, set(self.daemon.auth_methods))
        if r is None:
            self._start_grace(AUTH)
            return
        if isinstance(r, int):
            self._reject(r, "auth choice refused")
            return
        self._cancel_timers()
        rest = self.buf[wire.AUTH_CHOICE_LEN :]
        self.buf = b""
        wanted = list(r) + [m for m in self.daemon.auth_required if m not in r]
        if not wanted or not all(self.daemon.authenticate(m, self.peer_ip) for m in wanted):
            self._reject(REJECT_AUTH, f"authentication {wanted} failed")
            return
        self._accept(rest)

    def _accept(self, rest: bytes) -> None:
        assert self.transport is not None and self.hello is not None
        self.transport.write(accept_message(self.hello, self.group))
        self.state = OPEN
        self.reader = FrameReader(self.name.decode("latin-1"), self.daemon.name)
        self.daemon.open_session(self)
        if rest:
            self.data_received(rest)

    # ---- output ---------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue one message for this client (the slow-reader rule applies)."""
        if self.state != OPEN:
            return
        if self.paused:
            if len(self.backlog) >= self.daemon.max_session_messages:
                # ended after this delivery, not inside it: the group lists are being walked
                self.daemon.log_session(f"Sess_write: killing mbox {self.fd} for not reading")
                self.state = DOOMED
                self.backlog.clear()
                self.daemon.loop.call_soon(self.daemon.session_failed, self)
                return
            self.backlog.append(data)
            return
        self.out.append(data)
        if not self.dirty:
            self.dirty = True
            self.daemon.dirty.append(self)

    def flush(self) -> None:
        self.dirty = False
        out = self.out
        if not out or self.transport is None or self.state != OPEN:
            out.clear()
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self.transport.write(data)

    def close_now(self) -> None:
        """End the session: queued output is dropped, the socket closed."""
        self.state = CLOSED
        self._cancel_timers()
        self.out.clear()
        self.backlog.clear()
        if self.transport is not None:
            self.transport.abort()
