"""One client connection's protocol, sans-IO: handshake decoding and message framing (client §3–§5).

Owns the hello/auth/accept byte rules, the per-header validation that decides whether a session
lives, and the splitting of a session's byte stream into whole messages. The asyncio shell feeds
it bytes and a "the grace period is over" flag; it never sees a socket or a clock itself.
"""

from __future__ import annotations

import struct

from spread.groups.bits import (
    AGREED_MESS,
    CAUSAL_MESS,
    ENDIAN_MARKER,
    FIFO_MESS,
    HEADER_LEN,
    JOIN_MESS,
    KILL_MESS,
    LEAVE_MESS,
    MAX_GROUPS_PER_MESSAGE,
    MAX_MESSAGE_BODY_LEN,
    MAX_PRIVATE_NAME,
    REJECT_AUTH,
    REJECT_ILLEGAL_NAME,
    RELIABLE_MESS,
    SAFE_MESS,
    SELF_DISCARD,
    UNRELIABLE_MESS,
)
from spread.wire import client as wire

CLOSE = 0  # "close without a word", as the original does for a short hello
AUTH_SLOT = 30
AUTH_LEN = 90

_SERVICES = (UNRELIABLE_MESS, RELIABLE_MESS, FIFO_MESS, CAUSAL_MESS, AGREED_MESS, SAFE_MESS)
_CONTROLS = (JOIN_MESS, LEAVE_MESS, KILL_MESS)
# Every `type` (with our marker) a client may send; anything else ends its session.
VALID_TYPES = frozenset(
    s | sd | ENDIAN_MARKER for s in _SERVICES + _CONTROLS for sd in (0, SELF_DISCARD)
)
_LE = struct.Struct("<I32siIi")
_BE = struct.Struct(">I32siIi")
_HINT_BAD = ~0x80FFFF80 & 0xFFFFFFFF
_BODY_MAX = MAX_MESSAGE_BODY_LEN - HEADER_LEN


# ---- handshake ---------------------------------------------------------------------------------

Hello = wire.Hello


def decode_hello(buf: bytes, final: bool) -> wire.Hello | int | None:
    """The client's hello: a Hello, a reject code to send, CLOSE, or None for "wait for more".

    `final` means the bytes that came with the first arrival are all there will be: the
    original reads the hello with single non-blocking reads, so what is missing then is missing
    (a short name is an illegal name, anything shorter is closed without a word).
    """
    r = wire.decode_hello(buf)
    if isinstance(r, wire.Malformed):
        return CLOSE if r.reject is None else r.reject
    if isinstance(r, wire.NeedMore):
        if not final:
            return None
        head = 2
        if len(buf) >= 2 and _s8(buf[0]) * 10000 + _s8(buf[1]) * 100 > 31400:
            head = 3
        return REJECT_ILLEGAL_NAME if len(buf) >= head + 2 else CLOSE
    length = len(r.name.encode("latin-1"))
    if 0 < length < MAX_PRIVATE_NAME and len(buf) > r.size:
        return REJECT_ILLEGAL_NAME  # its one read of up to 10 bytes got more than the name
    return r


def _s8(b: int) -> int:
    return b - 256 if b > 127 else b


def anonymous_name(rand: int, fd: int) -> bytes:
    """`r<R>-<fd>` cut to 9 characters, as the original invents for an empty name."""
    return f"r{rand}-{fd}".encode()[:9]


def auth_list(methods: list[str]) -> bytes:
    """Length byte and the enabled method names, each followed by a space."""
    return wire.encode_auth_list(methods)


def decode_auth(buf: bytes, final: bool, allowed: set[str]) -> list[str] | int | None:
    """The 90-byte auth choice: the requested methods, REJECT_AUTH, or None (wait)."""
    r = wire.decode_auth_choice(buf)
    if isinstance(r, wire.NeedMore):
        return REJECT_AUTH if final else None
    if any(m not in allowed for m in r):
        return REJECT_AUTH
    return list(r)


def accept_message(hello: wire.Hello, private_group: bytes) -> bytes:
    """ACCEPT_SESSION, our version (the patch byte only for libraries >= 3.15), the name."""
    return wire.encode_accept(private_group.decode("latin-1"), with_patch=hello.version >= 31500)


def private_group(name: bytes, daemon: str) -> bytes:
    return b"#" + name + b"#" + daemon.encode()


# ---- framing -----------------------------------------------------------------------------------


class BadFrame(Exception):
    """A header that costs the session its life (client §5.2 plus our stricter type check)."""


def check_header(head: bytes, session: str, daemon: str) -> tuple[bytes, int, int, int]:
    """Validate one 48-byte header; return it in our byte order with (type, groups, data_len).

    The checks are the wire codec's (client §5.2 plus §14 item 1); a join or leave without a
    group is refused too. Byte 31 of the sender field is forced to NUL as the original does.
    """
    t, sender, ng, hint, dl = wire.frame_header(head)
    why = wire.check_client_header(t, sender, ng, hint, dl, session, daemon)
    if why is None and t & (JOIN_MESS | LEAVE_MESS) and ng < 1:
        why = "join or leave without a group"
    if why is not None:
        raise BadFrame(why)
    out = wire.normalize_frame(head)
    if out[35]:
        out = out[:35] + b"\0" + out[36:]
    return out, t | ENDIAN_MARKER, ng, dl


class FrameReader:
    """Splits one session's byte stream into whole, validated messages in our byte order."""

    __slots__ = ("_buf", "_daemon", "_field", "_need", "_norm", "_session", "_t")

    def __init__(self, session: str, daemon: str) -> None:
        self._session, self._daemon = session, daemon
        self._field = wire.encode_name(f"#{session}#{daemon}")
        self._buf = bytearray()
        self._need = 0  # total length of the message whose header is in _norm, 0 = none yet
        self._norm = b""
        self._t = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Append bytes; return (type, message) for every message now complete.

        Raises BadFrame at the first invalid header; messages before it are lost with it,
        which matches the original (it kills the session before they reach the protocol).
        """
        buf = self._buf
        buf += data
        out: list[tuple[int, bytes]] = []
        pos = 0
        n = len(buf)
        field = self._field
        while True:
            if not self._need:
                if n - pos < HEADER_LEN:
                    break
                head = bytes(buf[pos : pos + HEADER_LEN])
                if head[0] & 0x80 and head[3] & 0x80 and head[4:36] == field:
                    t, _, ng, hint, dl = _LE.unpack(head)
                    if (
                        t not in VALID_TYPES
                        or not 0 <= ng <= MAX_GROUPS_PER_MESSAGE
                        or hint & _HINT_BAD
                        or dl < 0
                        or dl + 32 * ng > _BODY_MAX
                        or (ng < 1 and t & (JOIN_MESS | LEAVE_MESS))
                    ):
                        head, t, ng, dl = check_header(head, self._session, self._daemon)
                    else:
                        head = b""  # the raw bytes are already what we deliver
                else:
                    head, t, ng, dl = check_header(head, self._session, self._daemon)
                self._norm = head
                self._need = HEADER_LEN + 32 * ng + dl
                self._t = t
            need = self._need
            if n - pos < need:
                break
            if self._norm:
                out.append((self._t, self._norm + bytes(buf[pos + HEADER_LEN : pos + need])))
            else:
                out.append((self._t, bytes(buf[pos : pos + need])))
            pos += need
            self._need = 0
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)
