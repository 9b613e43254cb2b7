"""A minimal blocking Spread client over raw sockets, for tests against the real daemon."""

from __future__ import annotations

import socket
import struct

from spread.wire import client as wire
from tests.support_daemon import RunningDaemon

NULL_AUTH = wire.encode_auth_choice(["NULL"])


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


class Client:
    def __init__(
        self,
        d: RunningDaemon,
        name: str,
        membership: bool = True,
        transport: str = "unix",
        timeout: float = 10.0,
        auth: tuple[str, ...] = ("NULL",),
    ) -> None:
        self.sock = d.connect(transport, timeout)
        hello = wire.Hello.for_library(name, membership).encode()
        try:
            self.sock.sendall(hello)
        except BrokenPipeError:
            pass  # the daemon refused us at accept (quota) and closed first; its byte waits
        n = recv_exact(self.sock, 1)[0]
        if n >= 128:
            raise ConnectionRefusedError(n - 256)
        recv_exact(self.sock, n)
        self.sock.sendall(wire.encode_auth_choice(list(auth)))
        first = recv_exact(self.sock, 1)[0]
        if first != 1:
            raise ConnectionRefusedError(first - 256)
        head = b"\x01" + recv_exact(self.sock, 4)
        self.group = recv_exact(self.sock, head[4]).decode()

    def join(self, group: str) -> None:
        self.sock.sendall(wire.encode_join(self.group, group))

    def leave(self, group: str) -> None:
        self.sock.sendall(wire.encode_leave(self.group, group))

    def mcast(
        self, groups: list[str], data: bytes, service: int = wire.AGREED_MESS, mess_type: int = 0
    ) -> None:
        self.sock.sendall(wire.encode_multicast(self.group, service, groups, mess_type, data))

    def recv(self) -> wire.Message:
        head = recv_exact(self.sock, 48)
        ng, dl = struct.unpack_from("<i", head, 36)[0], struct.unpack_from("<i", head, 44)[0]
        extra = 4 if struct.unpack_from("<I", head)[0] & wire.REJECT_MESS else 0
        body = recv_exact(self.sock, extra + 32 * ng + dl)
        return wire.decode_message(head + body)[0]

    def disconnect(self) -> None:
        try:
            self.sock.sendall(wire.encode_kill(self.group))
        except OSError:
            pass
        self.sock.close()

    def close(self) -> None:
        self.sock.close()
