"""The client side of the protocol without I/O: address parsing, the connect handshake,
request building with libspread's checks, and receive framing with its short-buffer rules.

The blocking (`blocking.py`) and asyncio (`aio.py`) mailboxes only move bytes between a
socket and these objects.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from spread.client.errors import ShortBuffer, SpreadError
from spread.client.messages import SpreadMessage, build_message
from spread.wire import client as w

SP_UNIX_SOCKET = "/tmp"
MAX_SPREAD_NAME = 71  # libspread refuses names this long (MAXHOSTNAMELEN + 7), ILLEGAL_SPREAD

_NAME = re.compile(r"\s*([+-]?\d+)(.*)", re.S)


@dataclass(frozen=True)
class Address:
    """Where to connect: `host` None means the unix socket `path`."""

    port: int
    host: str | None
    path: str | None


def parse_spread_name(spread_name: str | None, socket_dir: str = SP_UNIX_SOCKET) -> Address:
    """libspread's naming: None/""/"4803" = unix socket <dir>/4803; "4803@host" = TCP.

    Raises SpreadError(ILLEGAL_SPREAD) for anything else, as SP_connect returns.
    """
    if not spread_name:
        spread_name = str(w.DEFAULT_SPREAD_PORT)
    if len(spread_name) >= MAX_SPREAD_NAME:
        raise SpreadError(w.ILLEGAL_SPREAD, "spread name too long")
    m = _NAME.match(spread_name)
    if not m:
        raise SpreadError(w.ILLEGAL_SPREAD, f"no port in {spread_name!r}")
    port = int(m.group(1)) & 0xFFFF  # scanf %hu wraps
    rest = m.group(2).lstrip()
    if not rest:
        return Address(port, None, f"{socket_dir}/{port}")
    # scanf's %s stops at whitespace: only the first word after the port counts.
    word = rest.split()[0]
    if not word.startswith("@") or len(word) == 1:
        raise SpreadError(w.ILLEGAL_SPREAD, f"bad host part in {spread_name!r}")
    return Address(port, word[1:], None)


class Handshake:
    """SP_connect's byte exchange, fed with whatever the daemon sends.

    `start()` gives the hello; `feed(data)` returns bytes to send next (the auth choice)
    and, once done, sets `private_group` and leaves any extra bytes in `leftover`.
    Failures raise SpreadError with the code SP_connect would return.
    """

    def __init__(
        self,
        private_name: str | None,
        membership: bool,
        priority: int = 0,
        auth_methods: Sequence[str] = ("NULL",),
    ) -> None:
        self.hello = w.Hello.for_library(private_name, membership, priority)
        self.priority = priority
        self.auth_methods = tuple(auth_methods)
        self._buf = bytearray()
        self._state = "auth_list"
        self.private_group: str | None = None
        self.daemon_version: tuple[int, int, int] | None = None
        self.leftover = b""

    @property
    def done(self) -> bool:
        return self.private_group is not None

    def start(self) -> bytes:
        return self.hello.encode()

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = b""
        if self._state == "auth_list":
            got = w.decode_auth_list(self._buf)
            if isinstance(got, w.NeedMore):
                return out
            if isinstance(got, w.Rejected):
                raise SpreadError(got.code)
            for method in self.auth_methods:
                if method not in got.methods:
                    raise SpreadError(w.REJECT_AUTH, f"daemon does not offer {method}")
            del self._buf[: got.size]
            out = w.encode_auth_choice(self.auth_methods)
            self._state = "accept"
        if self._state == "accept":
            acc = w.decode_accept(self._buf, with_patch=True)
            if isinstance(acc, w.NeedMore):
                return out
            if isinstance(acc, w.Rejected):
                raise SpreadError(acc.code)
            if self.priority > 0 and acc.major == 3 and acc.minor < 8:
                raise SpreadError(w.REJECT_VERSION, "priority needs a 3.8 daemon")
            self.private_group = acc.private_group
            self.daemon_version = (acc.major, acc.minor, acc.patch or 0)
            self.leftover = bytes(self._buf[acc.size :])
            self._buf.clear()
            self._state = "done"
        return out

    def eof(self) -> None:
        """The daemon closed before the handshake finished."""
        if self._state == "accept" and self._buf and self._buf[0] != w.ACCEPT_SESSION:
            raise SpreadError(w._signed8(self._buf[0]))
        raise SpreadError(w.CONNECTION_CLOSED, "daemon closed during the handshake")


# ---------------------------------------------------------------------------------------------
# Requests


def check_group(group: str) -> None:
    """SP_join/SP_leave's check: 1..31 characters, each in '$'..'~'."""
    if not w.legal_group_name(group):
        raise SpreadError(w.ILLEGAL_GROUP, repr(group))


def join_bytes(private_group: str, group: str) -> bytes:
    check_group(group)
    return w.encode_join(private_group, group)


def leave_bytes(private_group: str, group: str) -> bytes:
    check_group(group)
    return w.encode_leave(private_group, group)


def multicast_bytes(
    private_group: str,
    service_type: int,
    groups: Sequence[str],
    mess_type: int,
    data: bytes | bytearray | memoryview,
) -> bytes:
    """SP_multigroup_multicast's checks, then the frame. mess_type is an int16."""
    if not w.is_regular(service_type):
        raise SpreadError(w.ILLEGAL_SERVICE, f"service 0x{service_type:x}")
    if len(data) + len(groups) * w.MAX_GROUP_NAME > w.MAX_MESSAGE_BODY_LEN:
        raise SpreadError(w.MESSAGE_TOO_LONG)
    mess_type = ((mess_type + 0x8000) & 0xFFFF) - 0x8000
    return w.encode_multicast(private_group, service_type, groups, mess_type, data)


# ---------------------------------------------------------------------------------------------
# Receiving


class Receiver:
    """Buffers daemon bytes and hands out messages the way SP_receive does."""

    def __init__(self, private_group: str) -> None:
        self.private_group = private_group
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        elif self._pos > 65536:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def _header(self) -> tuple[int, str, int, bytes, int, bool] | None:
        if self.buffered < w.HEADER_LEN:
            return None
        t, sender, ng, hint, dl = w.frame_header(self._buf, self._pos)
        return (
            t,
            w.decode_name(sender),
            ng,
            bytes(hint),
            dl,
            not w.header_is_ours(self._buf, self._pos),
        )

    def needed(self) -> int:
        """Bytes still missing for the next whole message (0 when one is ready).

        Raises SpreadError(ILLEGAL_MESSAGE) for a header with negative counts.
        """
        head = self._header()
        if head is None:
            return w.HEADER_LEN - self.buffered
        t, _s, ng, _h, dl, _big = head
        if ng < 0 or dl < 0:
            raise SpreadError(w.ILLEGAL_MESSAGE, f"num_groups {ng} data_len {dl}")
        extra = 4 if t & w.REJECT_MESS else 0
        return max(0, w.HEADER_LEN + extra + 32 * ng + dl - self.buffered)

    def check_limits(self, max_groups: int | None, max_mess_len: int | None) -> None:
        """Raise ShortBuffer (consuming nothing) when the next message does not fit.

        Needs only the header to be buffered, like SP_receive.
        """
        head = self._header()
        if head is None:
            return
        t, sender, ng, hint, dl, _big = head
        if ng < 0 or dl < 0:
            raise SpreadError(w.ILLEGAL_MESSAGE, f"num_groups {ng} data_len {dl}")
        short_g = max_groups is not None and ng > max_groups
        short_d = max_mess_len is not None and dl > max_mess_len
        if not (short_g or short_d):
            return
        mt = w.hint_mess_type(hint)[0] if w.is_regular(t) or t & w.REJECT_MESS else 0
        code = w.GROUPS_TOO_SHORT if short_g else w.BUFFER_TOO_SHORT
        raise ShortBuffer(code, t, sender, mt, -ng if short_g else 0, -dl if short_d else 0)

    def next_message(
        self,
        max_groups: int | None = None,
        max_mess_len: int | None = None,
        drop_recv: bool = False,
    ) -> SpreadMessage | None:
        """The next whole message, or None if more bytes are needed.

        Limits follow SP_receive: without drop_recv an oversized message raises ShortBuffer
        and stays; with drop_recv it is consumed, groups beyond max_groups are dropped
        (num_groups reported negative) and data beyond max_mess_len raises ShortBuffer
        carrying the truncated message.
        """
        if not drop_recv:
            self.check_limits(max_groups, max_mess_len)
        if self.needed():
            return None
        buf, pos = self._buf, self._pos
        t, sender, ng, hint, dl, big = self._header()  # type: ignore[misc]
        p = pos + w.HEADER_LEN
        old_type = None
        if t & w.REJECT_MESS:
            raw_old = (w.U32_BE if big else w.U32_LE).unpack_from(buf, p)[0]
            old_type = raw_old & ~w.ENDIAN_MARKER & 0xFFFFFFFF
            p += 4
        keep = ng if max_groups is None else min(ng, max_groups)
        groups = tuple(w.decode_name(buf[q : q + 32]) for q in range(p, p + 32 * keep, 32))
        p += 32 * ng
        dkeep = dl if max_mess_len is None else min(dl, max_mess_len)
        data = bytes(buf[p : p + dkeep])
        self._pos = p + dl
        num_groups = -ng if keep < ng else ng
        msg = build_message(
            t, sender, groups, num_groups, hint, data, old_type, big, self.private_group
        )
        if dkeep < dl:
            raise ShortBuffer(
                w.BUFFER_TOO_SHORT,
                msg.service_type,
                sender,
                msg.mess_type,
                num_groups,
                msg.endian_mismatch,
                msg,
            )
        return msg


class SessionLife:
    """libspread's session states, shared by the blocking and asyncio mailboxes.

    A failed read or write gives CONNECTION_CLOSED once and NET_ERROR_ON_SESSION afterwards;
    anything after disconnect() gives ILLEGAL_SESSION.
    """

    def __init__(self, private_group: str, leftover: bytes = b"") -> None:
        self.private_group = private_group
        self._rx = Receiver(private_group)
        self._rx.feed(leftover)
        self._state = "active"

    def _check(self) -> None:
        if self._state == "closed":
            raise SpreadError(w.ILLEGAL_SESSION)
        if self._state == "failed":
            raise SpreadError(w.NET_ERROR_ON_SESSION)

    def _fail(self, why: str) -> SpreadError:
        if self._state == "closed":  # closed under a pending call: that call sees the close
            return SpreadError(w.ILLEGAL_SESSION, why)
        self._state = "failed"
        return SpreadError(w.CONNECTION_CLOSED, why)

    @property
    def closed(self) -> bool:
        return self._state == "closed"

    def _ready(
        self, max_groups: int, max_mess_len: int, drop_recv: bool
    ) -> tuple[SpreadMessage | None, int]:
        """The next whole buffered message, or None and how many more bytes it needs.
        Raises the short-buffer errors before anything is consumed, as libspread does."""
        if self._rx.buffered >= w.HEADER_LEN and not drop_recv:
            self._rx.check_limits(max_groups, max_mess_len)
        need = self._rx.needed()
        if need:
            return None, need
        msg = self._rx.next_message(max_groups, max_mess_len, drop_recv)
        assert msg is not None  # needed() == 0 means a whole message is buffered
        return msg, 0
