"""The blocking client API: one Mailbox per daemon connection, like libspread's mailbox."""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
import time
from collections.abc import Sequence
from types import TracebackType

from spread.client.errors import SpreadError
from spread.client.messages import SpreadMessage
from spread.client.protocol import (
    SP_UNIX_SOCKET,
    Address,
    Handshake,
    SessionLife,
    join_bytes,
    leave_bytes,
    multicast_bytes,
    parse_spread_name,
)
from spread.wire import client as w

SOCKET_BUFFER = 200 * 1024  # libspread raises both buffers up to 200 KiB


def open_socket(addr: Address, timeout: float | None) -> socket.socket:
    """Connect like SP_connect: unix socket, or TCP with TCP_NODELAY and SO_KEEPALIVE."""
    try:
        if addr.host is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: object = addr.path
        else:
            try:
                infos = socket.getaddrinfo(
                    addr.host, addr.port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP
                )
            except socket.gaierror as e:
                code = w.ILLEGAL_SPREAD if e.errno == socket.EAI_NONAME else w.COULD_NOT_CONNECT
                raise SpreadError(code, f"{addr.host}: {e}") from e
            usable = [i for i in infos if i[0] in (socket.AF_INET, socket.AF_INET6)]
            if not usable:
                raise SpreadError(w.COULD_NOT_CONNECT, f"no address for {addr.host}")
            family, _t, _p, _c, target = usable[0]
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    except OSError as e:
        raise SpreadError(w.COULD_NOT_CONNECT, str(e)) from e
    for opt in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        try:
            s.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
        except OSError:
            break
    s.settimeout(timeout)
    try:
        s.connect(target)  # type: ignore[arg-type]
    except OSError as e:
        s.close()
        raise SpreadError(w.COULD_NOT_CONNECT, str(e)) from e
    return s


class Mailbox(SessionLife):
    """A connected session. Use `connect()` to make one.

    Errors are SpreadError with libspread's codes: a failed read or write gives
    CONNECTION_CLOSED once and NET_ERROR_ON_SESSION afterwards; anything after
    disconnect() gives ILLEGAL_SESSION.
    """

    def __init__(self, sock: socket.socket, private_group: str, leftover: bytes = b"") -> None:
        super().__init__(private_group, leftover)
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()

    # -- sending ---------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        self._check()
        try:
            self._sock.sendall(data)
        except OSError as e:
            raise self._fail(f"send: {e}") from e

    def join(self, group: str) -> int:
        self._check()
        self._send(join_bytes(self.private_group, group))
        return 0

    def leave(self, group: str) -> int:
        self._check()
        self._send(leave_bytes(self.private_group, group))
        return 0

    def multicast(
        self,
        service_type: int,
        group: str,
        mess_type: int,
        data: bytes | bytearray | memoryview,
    ) -> int:
        """SP_multicast: returns the number of data bytes sent."""
        return self.multigroup_multicast(service_type, [group], mess_type, data)

    def multigroup_multicast(
        self,
        service_type: int,
        groups: Sequence[str],
        mess_type: int,
        data: bytes | bytearray | memoryview,
    ) -> int:
        self._check()
        self._send(multicast_bytes(self.private_group, service_type, groups, mess_type, data))
        return len(data)

    def disconnect(self) -> int:
        """SP_disconnect: KILL, then close without waiting. Returns 0."""
        if self._state == "closed":
            raise SpreadError(w.ILLEGAL_SESSION)
        if self._state == "active":
            try:
                self._sock.sendall(w.encode_kill(self.private_group))
            except OSError:
                pass
        self.kill()
        return 0

    def kill(self) -> None:
        """SP_kill: close the socket without telling the daemon."""
        self._state = "closed"
        try:
            self._sock.close()
        except OSError:
            pass

    # -- receiving -------------------------------------------------------------------------

    def _fill(self, n: int) -> None:
        try:
            chunk = self._sock.recv(max(n, 65536))
        except OSError as e:
            raise self._fail(f"recv: {e}") from e
        if not chunk:
            raise self._fail("daemon closed the connection")
        self._rx.feed(chunk)

    def receive(
        self,
        max_groups: int | None = None,
        max_mess_len: int | None = None,
        drop_recv: bool = False,
    ) -> SpreadMessage:
        """SP_receive: block until a whole message is in, return it typed.

        With limits, an oversized message raises ShortBuffer as SP_receive returns
        GROUPS_TOO_SHORT/BUFFER_TOO_SHORT (see Receiver.next_message).
        """
        self._check()
        while True:
            msg, need = self._ready(max_groups, max_mess_len, drop_recv)
            if msg is not None:
                return msg
            self._fill(need)

    def has_message(self) -> bool:
        """A whole message is already buffered (select() on fileno() would not show it)."""
        return self._state == "active" and self._rx.buffered > 0 and self._rx.needed() == 0

    def poll(self) -> int:
        """SP_poll: bytes waiting to be read, buffered here or in the kernel."""
        if self._state == "closed":
            raise SpreadError(w.ILLEGAL_SESSION)
        try:
            raw = fcntl.ioctl(self._sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except OSError as e:
            raise SpreadError(w.ILLEGAL_SESSION, str(e)) from e
        return self._rx.buffered + struct.unpack("i", raw)[0]

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> Mailbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state != "closed":
            self.disconnect()


def connect(
    spread_name: str | None = None,
    private_name: str | None = None,
    priority: int = 0,
    group_membership: bool = True,
    timeout: float | None = None,
    socket_dir: str = SP_UNIX_SOCKET,
    auth_methods: Sequence[str] = ("NULL",),
) -> Mailbox:
    """SP_connect / SP_connect_timeout. `timeout` None or 0 waits forever.

    `socket_dir` replaces libspread's compiled-in /tmp for unix sockets.
    """
    if timeout is not None and timeout < 0:
        raise SpreadError(w.ILLEGAL_TIME)
    deadline = time.monotonic() + timeout if timeout else None
    addr = parse_spread_name(spread_name, socket_dir)
    sock = open_socket(addr, timeout or None)
    hs = Handshake(private_name, group_membership, priority, auth_methods)
    try:
        try:
            sock.sendall(hs.start())
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused at accept (quota) before our hello went out: its answer is queued
        while not hs.done:
            if deadline is not None:
                sock.settimeout(max(0.0, deadline - time.monotonic()))
            chunk = sock.recv(4096)
            if not chunk:
                hs.eof()
            out = hs.feed(chunk)
            if out:
                sock.sendall(out)
    except OSError as e:
        sock.close()
        raise SpreadError(w.CONNECTION_CLOSED, f"handshake: {e}") from e
    except SpreadError:
        sock.close()
        raise
    sock.settimeout(None)
    assert hs.private_group is not None
    return Mailbox(sock, hs.private_group, hs.leftover)
