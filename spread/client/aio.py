"""The asyncio client API: AsyncMailbox over asyncio streams, same semantics as Mailbox."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Sequence
from types import TracebackType

from spread.client.blocking import SOCKET_BUFFER
from spread.client.errors import SpreadError
from spread.client.messages import SpreadMessage
from spread.client.protocol import (
    SP_UNIX_SOCKET,
    Handshake,
    SessionLife,
    join_bytes,
    leave_bytes,
    multicast_bytes,
    parse_spread_name,
)
from spread.wire import client as w


class AsyncMailbox(SessionLife):
    """A connected session for asyncio code. Make one with `await aconnect(...)`.

    Sends are written at once (ordering is kept) and `await`ed only for flow control.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        private_group: str,
        leftover: bytes = b"",
    ) -> None:
        super().__init__(private_group, leftover)
        self._reader = reader
        self._writer = writer

    async def _send(self, data: bytes) -> None:
        self._check()
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (OSError, RuntimeError) as e:
            raise self._fail(f"send: {e}") from e

    async def join(self, group: str) -> int:
        self._check()
        await self._send(join_bytes(self.private_group, group))
        return 0

    async def leave(self, group: str) -> int:
        self._check()
        await self._send(leave_bytes(self.private_group, group))
        return 0

    async def multicast(
        self, service_type: int, group: str, mess_type: int, data: bytes | bytearray | memoryview
    ) -> int:
        return await self.multigroup_multicast(service_type, [group], mess_type, data)

    async def multigroup_multicast(
        self,
        service_type: int,
        groups: Sequence[str],
        mess_type: int,
        data: bytes | bytearray | memoryview,
    ) -> int:
        self._check()
        await self._send(multicast_bytes(self.private_group, service_type, groups, mess_type, data))
        return len(data)

    async def receive(
        self,
        max_groups: int | None = None,
        max_mess_len: int | None = None,
        drop_recv: bool = False,
    ) -> SpreadMessage:
        """As Mailbox.receive."""
        self._check()
        while True:
            msg, need = self._ready(max_groups, max_mess_len, drop_recv)
            if msg is not None:
                return msg
            try:
                chunk = await self._reader.read(max(need, 65536))
            except OSError as e:
                raise self._fail(f"recv: {e}") from e
            if not chunk:
                raise self._fail("daemon closed the connection")
            self._rx.feed(chunk)

    def poll(self) -> int:
        """Bytes already read from the socket and not yet returned as messages."""
        if self._state == "closed":
            raise SpreadError(w.ILLEGAL_SESSION)
        return self._rx.buffered

    async def disconnect(self) -> int:
        if self._state == "closed":
            raise SpreadError(w.ILLEGAL_SESSION)
        if self._state == "active":
            try:
                self._writer.write(w.encode_kill(self.private_group))
                await self._writer.drain()
            except (OSError, RuntimeError):
                pass
        self.kill()
        return 0

    def kill(self) -> None:
        self._state = "closed"
        self._writer.close()

    async def __aenter__(self) -> AsyncMailbox:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state != "closed":
            await self.disconnect()

    def __aiter__(self) -> AsyncIterator[SpreadMessage]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[SpreadMessage]:
        """Messages until the connection fails or is closed."""
        while self._state == "active":
            try:
                yield await self.receive()
            except SpreadError:
                return


async def aconnect(
    spread_name: str | None = None,
    private_name: str | None = None,
    priority: int = 0,
    group_membership: bool = True,
    timeout: float | None = None,
    socket_dir: str = SP_UNIX_SOCKET,
    auth_methods: Sequence[str] = ("NULL",),
) -> AsyncMailbox:
    """The asyncio SP_connect."""
    if timeout is not None and timeout < 0:
        raise SpreadError(w.ILLEGAL_TIME)
    addr = parse_spread_name(spread_name, socket_dir)
    try:
        if addr.host is None:
            conn = asyncio.open_unix_connection(addr.path)
        else:
            conn = asyncio.open_connection(addr.host, addr.port)
        reader, writer = await asyncio.wait_for(conn, timeout or None)
    except socket.gaierror as e:
        code = w.ILLEGAL_SPREAD if e.errno == socket.EAI_NONAME else w.COULD_NOT_CONNECT
        raise SpreadError(code, str(e)) from e
    except (OSError, TimeoutError) as e:
        raise SpreadError(w.COULD_NOT_CONNECT, str(e)) from e
    sock = writer.get_extra_info("socket")
    if sock is not None:
        if addr.host is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for opt in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
            except OSError:
                break
    hs = Handshake(private_name, group_membership, priority, auth_methods)

    async def run() -> None:
        writer.write(hs.start())
        await writer.drain()
        while not hs.done:
            chunk = await reader.read(4096)
            if not chunk:
                hs.eof()
            out = hs.feed(chunk)
            if out:
                writer.write(out)
                await writer.drain()

    try:
        await asyncio.wait_for(run(), timeout or None)
    except (OSError, TimeoutError) as e:
        writer.close()
        raise SpreadError(w.CONNECTION_CLOSED, f"handshake: {e}") from e
    except SpreadError:
        writer.close()
        raise
    assert hs.private_group is not None
    return AsyncMailbox(reader, writer, hs.private_group, hs.leftover)
