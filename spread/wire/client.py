"""Byte layouts of the client <-> daemon protocol (Spread 4.x/5.0.1): handshake, framing, bodies.

Pure functions and frozen dataclasses; no sockets, no clocks. Both the daemon side
(spread/daemon/) and the client library (spread/client/) build on this module.

Names (private names, group names, private group names) are `str` decoded as latin-1, so
any byte survives a decode/encode round trip.

Hot path (daemon moving many small messages): use `split_frames` on the receive buffer,
`frame_header` / `HEADER_LE.unpack_from` for the few fields you need, `normalize_frame`
to get the bytes to deliver (a no-op slice for little-endian senders, which is the normal
case) and `group_name_at` to look up destinations. Build no `Message` objects there.
The dataclasses (`Message`, `MembershipBody`, ...) are for everything else.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from spread.wire.endian import ENDIAN_MARKER

# ---------------------------------------------------------------------------------------------
# Constants (sp.h / spread_params.h values, see reference §2, §4.3, §10)

DEFAULT_SPREAD_PORT = 4803

SP_MAJOR_VERSION = 5
SP_MINOR_VERSION = 0
SP_PATCH_VERSION = 1

MAX_GROUP_NAME = 32
MAX_PRIVATE_NAME = 10
MAX_PROC_NAME = 20
MAX_AUTH_NAME = 30
MAX_AUTH_METHODS = 3
AUTH_CHOICE_LEN = MAX_AUTH_NAME * MAX_AUTH_METHODS  # 90
MAX_AUTH_LIST_LEN = 90
MAX_GROUPS_PER_MESSAGE = 100
MAX_MESSAGE_BODY_LEN = 144000
HEADER_LEN = 48
# Largest groups+data a client may send: the daemon checks data_len + 32*groups against this.
MAX_CLIENT_BODY = MAX_MESSAGE_BODY_LEN - HEADER_LEN  # 143952
# What a real 5.0.1 daemon survives (it aborts above this, reference §5.3).
MAX_SAFE_CLIENT_BODY = 143152

UNRELIABLE_MESS = 0x00000001
RELIABLE_MESS = 0x00000002
FIFO_MESS = 0x00000004
CAUSAL_MESS = 0x00000008
AGREED_MESS = 0x00000010
SAFE_MESS = 0x00000020
REGULAR_MESS = 0x0000003F
SELF_DISCARD = 0x00000040
CAUSED_BY_JOIN = 0x00000100
CAUSED_BY_LEAVE = 0x00000200
CAUSED_BY_DISCONNECT = 0x00000400
CAUSED_BY_NETWORK = 0x00000800
REG_MEMB_MESS = 0x00001000
TRANSITION_MESS = 0x00002000
MEMBERSHIP_MESS = 0x00003F00
RESERVED = 0x003FC000
RETRANSMIT_TYPE = 0x00004000
LATENCY_MESS = 0x00008000
JOIN_MESS = 0x00010000
LEAVE_MESS = 0x00020000
KILL_MESS = 0x00040000
GROUPS_MESS = 0x00080000
DUMMY_MESS = 0x00100000
STATETRANS_MESS = 0x00200000
REJECT_MESS = 0x00400000
DROP_RECV = 0x01000000  # library-local receive flag, never on the wire

CONTROL_MESS = JOIN_MESS | LEAVE_MESS | KILL_MESS
# Bits a sane client may set in a header type (besides the marker), reference §14 item 1.
CLIENT_TYPE_BITS = REGULAR_MESS | SELF_DISCARD | CONTROL_MESS
HINT_ALLOWED = 0x80FFFF80

ACCEPT_SESSION = 1
ILLEGAL_SPREAD = -1
COULD_NOT_CONNECT = -2
REJECT_QUOTA = -3
REJECT_NO_NAME = -4
REJECT_ILLEGAL_NAME = -5
REJECT_NOT_UNIQUE = -6
REJECT_VERSION = -7
CONNECTION_CLOSED = -8
REJECT_AUTH = -9
ILLEGAL_SESSION = -11
ILLEGAL_SERVICE = -12
ILLEGAL_MESSAGE = -13
ILLEGAL_GROUP = -14
BUFFER_TOO_SHORT = -15
GROUPS_TOO_SHORT = -16
MESSAGE_TOO_LONG = -17
NET_ERROR_ON_SESSION = -18
SP_BUG = -19
ILLEGAL_TIME = -20

# Reject codes a daemon puts on the wire as one signed byte.
WIRE_REJECT_CODES = frozenset(
    {REJECT_QUOTA, REJECT_ILLEGAL_NAME, REJECT_NOT_UNIQUE, REJECT_VERSION, REJECT_AUTH}
)


class WireError(ValueError):
    """Bytes that do not form what the caller asked for. The only error this module raises."""


# ---------------------------------------------------------------------------------------------
# Small helpers


def is_regular(service_type: int) -> bool:
    return bool(service_type & REGULAR_MESS) and not service_type & REJECT_MESS


def is_membership(service_type: int) -> bool:
    return bool(service_type & MEMBERSHIP_MESS) and not service_type & REJECT_MESS


def is_reg_memb(service_type: int) -> bool:
    return bool(service_type & REG_MEMB_MESS) and is_membership(service_type)


def is_transition(service_type: int) -> bool:
    return bool(service_type & TRANSITION_MESS) and is_membership(service_type)


def is_self_leave(service_type: int) -> bool:
    return (
        bool(service_type & CAUSED_BY_LEAVE)
        and not service_type & (REG_MEMB_MESS | TRANSITION_MESS)
        and is_membership(service_type)
    )


def is_reject(service_type: int) -> bool:
    return bool(service_type & REJECT_MESS)


def _signed8(b: int) -> int:
    return b - 256 if b > 127 else b


def version_number(major: int, minor: int, patch: int = 0) -> int:
    """Versions compare as major*10000 + minor*100 + patch, as the daemon does."""
    return major * 10000 + minor * 100 + patch


def legal_name_bytes(name: bytes) -> bool:
    """Private and group name characters are 0x24 ('$') .. 0x7E ('~')."""
    return all(0x24 <= c <= 0x7E for c in name)


def legal_group_name(name: str) -> bool:
    """The libraries' join/leave check: 1..31 characters, each in 0x24..0x7E."""
    try:
        raw = name.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return 1 <= len(raw) <= MAX_GROUP_NAME - 1 and legal_name_bytes(raw)


def private_group_name(private_name: str, daemon_name: str) -> str:
    return f"#{private_name}#{daemon_name}"


def split_private_group(name: str) -> tuple[str, str] | None:
    """`#priv#proc` -> (priv, proc), or None when it does not parse as a private group."""
    if not name.startswith("#"):
        return None
    priv, sep, proc = name[1:].partition("#")
    if not sep:
        return None
    return priv, proc


def encode_name(name: str | bytes) -> bytes:
    """A 32-byte name field: at most 31 bytes of name, NUL padded."""
    raw = name.encode("latin-1") if isinstance(name, str) else bytes(name)
    raw = raw[: MAX_GROUP_NAME - 1]
    return raw + b"\0" * (MAX_GROUP_NAME - len(raw))


def decode_name(field: bytes | bytearray | memoryview) -> str:
    """A name field up to its first NUL; bytes after it (KILL junk) are ignored."""
    raw = bytes(field[:MAX_GROUP_NAME])
    end = raw.find(b"\0")
    if end >= 0:
        raw = raw[:end]
    return raw.decode("latin-1")


def group_name_at(buf: bytes | bytearray | memoryview, offset: int) -> bytes:
    """Hot path: the name bytes of the field at `offset` (up to the NUL), as bytes."""
    raw = bytes(buf[offset : offset + MAX_GROUP_NAME])
    end = raw.find(b"\0")
    return raw if end < 0 else raw[:end]


# ---------------------------------------------------------------------------------------------
# Handshake (reference §3). Incremental decoders return NeedMore until the bytes suffice.


@dataclass(frozen=True)
class NeedMore:
    """Not enough bytes yet; `at_least` is the total buffer size the next try needs."""

    at_least: int


@dataclass(frozen=True)
class Malformed:
    """The bytes cannot be a valid handshake step; `reject` is the byte to answer with
    (None: close silently)."""

    reject: int | None
    reason: str


@dataclass(frozen=True)
class Rejected:
    """Client side: the daemon sent a negative code instead of the next step."""

    code: int


@dataclass(frozen=True)
class Hello:
    """The client's first bytes. `patch` is None for 3.14-and-older libraries."""

    major: int
    minor: int
    patch: int | None
    flags: int
    name: str
    size: int = 0  # bytes consumed when decoded

    @classmethod
    def for_library(
        cls,
        name: str | None,
        membership: bool,
        priority: int = 0,
        version: tuple[int, int, int] = (SP_MAJOR_VERSION, SP_MINOR_VERSION, SP_PATCH_VERSION),
    ) -> Hello:
        """What libspread sends for SP_connect(name, priority, group_membership)."""
        raw = (name or "").encode("latin-1")[:MAX_PRIVATE_NAME].decode("latin-1")
        flags = ((priority >= 1) << 4) | (1 if membership else 0)
        major, minor, patch = version
        has_patch = version_number(major, minor) > 31400
        return cls(major, minor, patch if has_patch else None, flags, raw)

    @property
    def version(self) -> int:
        return version_number(_signed8(self.major), _signed8(self.minor), _signed8(self.patch or 0))

    @property
    def membership(self) -> bool:
        # The daemon tests (signed char)flags % 2 == 1, false for negative flags.
        f = _signed8(self.flags)
        return f >= 0 and f % 2 == 1

    @property
    def priority(self) -> int:
        f = _signed8(self.flags)
        return int(f / 16)

    @property
    def wants_auth(self) -> bool:
        """Libraries >= 3.16.0 get the auth method list and send a 90-byte choice."""
        return self.version >= 31600

    @property
    def wants_patch(self) -> bool:
        """Libraries >= 3.15.0 send and expect the patch byte."""
        return self.patch is not None

    def encode(self) -> bytes:
        raw = self.name.encode("latin-1")
        head = bytes([self.major, self.minor])
        if self.patch is not None:
            head += bytes([self.patch])
        return head + bytes([self.flags, len(raw)]) + raw


def decode_hello(buf: bytes | bytearray | memoryview) -> Hello | NeedMore | Malformed:
    """Daemon side, incremental: decide as early as the 5.0.1 daemon would.

    Uniqueness of the name is the daemon's business (REJECT_NOT_UNIQUE).
    """
    n = len(buf)
    if n < 2:
        return NeedMore(2)
    major, minor = buf[0], buf[1]
    pos = 2
    # The daemon reads the version bytes as signed chars.
    base = _signed8(major) * 10000 + _signed8(minor) * 100
    patch: int | None = None
    if base > 31400:
        if n < 3:
            return NeedMore(3)
        patch = buf[2]
        pos = 3
    if base + _signed8(patch or 0) < 30100:
        return Malformed(REJECT_VERSION, "library older than 3.1.0")
    if n < pos + 2:
        return NeedMore(pos + 2)
    flags, length = buf[pos], _signed8(buf[pos + 1])
    pos += 2
    if length < 0 or length > MAX_PRIVATE_NAME:
        return Malformed(REJECT_ILLEGAL_NAME, f"private name length {length}")
    if n < pos + length:
        return NeedMore(pos + length)
    raw = bytes(buf[pos : pos + length])
    if not legal_name_bytes(raw):
        return Malformed(REJECT_ILLEGAL_NAME, "illegal character in private name")
    return Hello(major, minor, patch, flags, raw.decode("latin-1"), pos + length)


def encode_auth_list(methods: Iterable[str]) -> bytes:
    """Daemon -> client: length byte, then each enabled method followed by a space."""
    text = "".join(f"{m} " for m in methods).encode("latin-1")
    if len(text) > MAX_AUTH_LIST_LEN:
        raise WireError("auth method list longer than 90 bytes")
    return bytes([len(text)]) + text


@dataclass(frozen=True)
class AuthList:
    methods: tuple[str, ...]
    size: int


def decode_auth_list(buf: bytes | bytearray | memoryview) -> AuthList | Rejected | NeedMore:
    """Client side. A negative first byte is an early reject; > 90 is CONNECTION_CLOSED."""
    if len(buf) < 1:
        return NeedMore(1)
    first = _signed8(buf[0])
    if first < 0:
        return Rejected(first)
    if first > MAX_AUTH_LIST_LEN:
        return Rejected(CONNECTION_CLOSED)
    if len(buf) < 1 + first:
        return NeedMore(1 + first)
    text = bytes(buf[1 : 1 + first]).decode("latin-1")
    return AuthList(tuple(m for m in text.split(" ") if m), 1 + first)


def encode_auth_choice(methods: Sequence[str]) -> bytes:
    """Client -> daemon: always 90 bytes, three NUL-padded 30-byte slots."""
    if len(methods) > MAX_AUTH_METHODS:
        raise WireError("at most 3 auth methods")
    out = bytearray(AUTH_CHOICE_LEN)
    for i, m in enumerate(methods):
        raw = m.encode("latin-1")[: MAX_AUTH_NAME - 1]
        out[i * MAX_AUTH_NAME : i * MAX_AUTH_NAME + len(raw)] = raw
    return bytes(out)


def decode_auth_choice(buf: bytes | bytearray | memoryview) -> tuple[str, ...] | NeedMore:
    """Daemon side: slots up to the first one that starts with NUL."""
    if len(buf) < AUTH_CHOICE_LEN:
        return NeedMore(AUTH_CHOICE_LEN)
    out: list[str] = []
    for i in range(MAX_AUTH_METHODS):
        slot = bytes(buf[i * MAX_AUTH_NAME : (i + 1) * MAX_AUTH_NAME])
        if slot[0] == 0:
            break
        end = slot.find(b"\0")
        out.append((slot if end < 0 else slot[:end]).decode("latin-1"))
    return tuple(out)


@dataclass(frozen=True)
class Accept:
    major: int
    minor: int
    patch: int | None
    private_group: str
    size: int = 0


def encode_accept(
    private_group: str,
    with_patch: bool = True,
    version: tuple[int, int, int] = (SP_MAJOR_VERSION, SP_MINOR_VERSION, SP_PATCH_VERSION),
) -> bytes:
    """ACCEPT_SESSION, daemon version (patch only for libraries >= 3.15), name length, name."""
    raw = private_group.encode("latin-1")
    if len(raw) >= MAX_GROUP_NAME:
        raise WireError("private group name longer than 31 bytes")
    head = bytes([ACCEPT_SESSION, version[0], version[1]])
    if with_patch:
        head += bytes([version[2]])
    return head + bytes([len(raw)]) + raw


def decode_accept(
    buf: bytes | bytearray | memoryview, with_patch: bool = True
) -> Accept | Rejected | NeedMore:
    """Client side, as libspread 5.0.1 judges it (reference §3.5)."""
    if len(buf) < 1:
        return NeedMore(1)
    if buf[0] != ACCEPT_SESSION:
        return Rejected(_signed8(buf[0]))
    pre = 5 if with_patch else 4
    if len(buf) < pre:
        return NeedMore(pre)
    fields = [_signed8(b) for b in buf[1:pre]]
    if any(f < 0 for f in fields):
        return Rejected(CONNECTION_CLOSED)
    length = fields[-1]
    if length >= MAX_GROUP_NAME:
        return Rejected(CONNECTION_CLOSED)
    if fields[0] < 3:
        return Rejected(REJECT_VERSION)
    if len(buf) < pre + length:
        return NeedMore(pre + length)
    name = bytes(buf[pre : pre + length]).decode("latin-1")
    patch = fields[2] if with_patch else None
    return Accept(fields[0], fields[1], patch, name, pre + length)


def encode_reject_byte(code: int) -> bytes:
    """An early or late reject: one signed byte, then the daemon closes."""
    if not -128 <= code < 0:
        raise WireError(f"reject code {code} is not a negative byte")
    return bytes([code & 0xFF])


# ---------------------------------------------------------------------------------------------
# Message header (reference §4). 48 bytes: type, sender name field, num_groups, hint, data_len.
# The hint is kept as its raw 4 bytes: the daemon never converts it.

HEADER_LE = struct.Struct("<I32si4si")
HEADER_BE = struct.Struct(">I32si4si")
U32_LE = struct.Struct("<I")
U32_BE = struct.Struct(">I")
I32_LE = struct.Struct("<i")
_SWAP3 = struct.Struct("<I32si")  # type, sender, num_groups written back in our order
GROUP_ID = struct.Struct("<iii")
GROUP_ID_BE = struct.Struct(">iii")
_MARKER_HINT = U32_LE.pack(ENDIAN_MARKER)  # 80 00 00 80: mess_type 0, our marker


def header_is_ours(buf: bytes | bytearray | memoryview, offset: int = 0) -> bool:
    """True when the type word carries the little-endian marker (both bits)."""
    return buf[offset] & 0x80 == 0x80 and buf[offset + 3] & 0x80 == 0x80


def frame_header(
    buf: bytes | bytearray | memoryview, offset: int = 0
) -> tuple[int, bytes, int, bytes, int]:
    """Hot path: (type with marker cleared, raw 32-byte sender, num_groups, raw hint, data_len)."""
    s = HEADER_LE if header_is_ours(buf, offset) else HEADER_BE
    t, sender, ng, hint, dl = s.unpack_from(buf, offset)
    return t & ~ENDIAN_MARKER & 0xFFFFFFFF, sender, ng, hint, dl


def make_hint(mess_type: int) -> bytes:
    """The raw hint a little-endian C library sends for `mess_type` (int16)."""
    return U32_LE.pack(((mess_type << 8) & 0x00FFFF00) | ENDIAN_MARKER)


def hint_mess_type(hint: bytes | bytearray | memoryview) -> tuple[int, bool]:
    """(mess_type as int16, endian_mismatch) as a little-endian library reads a raw hint."""
    raw_le = U32_LE.unpack(bytes(hint))[0]
    if raw_le & ENDIAN_MARKER == ENDIAN_MARKER:
        value, mismatch = raw_le, False
    else:
        value, mismatch = U32_BE.unpack(bytes(hint))[0], True
    mt = (value & ~ENDIAN_MARKER) >> 8 & 0xFFFF
    return (mt - 0x10000 if mt & 0x8000 else mt), mismatch


@dataclass(frozen=True)
class Header:
    """A decoded 48-byte header. `type` has the marker cleared; `foreign` says the sender
    wrote it big-endian (or with a mixed marker)."""

    type: int
    sender: str
    num_groups: int
    hint: bytes
    data_len: int
    foreign: bool = False

    def encode(self) -> bytes:
        return encode_header(self.type, self.sender, self.num_groups, self.hint, self.data_len)


def decode_header(buf: bytes | bytearray | memoryview, offset: int = 0) -> Header:
    if len(buf) - offset < HEADER_LEN:
        raise WireError("short header")
    t, sender, ng, hint, dl = frame_header(buf, offset)
    return Header(t, decode_name(sender), ng, bytes(hint), dl, not header_is_ours(buf, offset))


def encode_header(
    service_type: int,
    sender: str | bytes,
    num_groups: int,
    hint: bytes | int,
    data_len: int,
) -> bytes:
    """Our order (LE) with the marker. `hint` is raw bytes, or an int mess_type."""
    raw_hint = make_hint(hint) if isinstance(hint, int) else bytes(hint)
    if len(raw_hint) != 4:
        raise WireError("hint must be 4 bytes")
    try:
        return HEADER_LE.pack(
            (service_type | ENDIAN_MARKER) & 0xFFFFFFFF,
            encode_name(sender),
            num_groups,
            raw_hint,
            data_len,
        )
    except struct.error as e:
        raise WireError(str(e)) from e


def encode_header_be(
    service_type: int, sender: str | bytes, num_groups: int, hint: bytes | int, data_len: int
) -> bytes:
    """A big-endian sender's header (marker clear), as the Java client writes it. For tests."""
    raw_hint = U32_BE.pack((hint << 8) & 0x00FFFF00) if isinstance(hint, int) else bytes(hint)
    return HEADER_BE.pack(
        service_type & ~ENDIAN_MARKER & 0xFFFFFFFF,
        encode_name(sender),
        num_groups,
        raw_hint,
        data_len,
    )


# ---------------------------------------------------------------------------------------------
# Framing: header [+ old_type for rejects, daemon->client] + groups + data.


def frame_size(buf: bytes | bytearray | memoryview, offset: int = 0, d2c: bool = False) -> int:
    """Total size of the frame whose header starts at `offset` (needs the 48 header bytes)."""
    t, _s, ng, _h, dl = frame_header(buf, offset)
    if ng < 0 or dl < 0:
        raise WireError(f"negative num_groups {ng} or data_len {dl}")
    extra = 4 if d2c and t & REJECT_MESS else 0
    return HEADER_LEN + extra + MAX_GROUP_NAME * ng + dl


def split_frames(
    buf: bytes | bytearray | memoryview,
    start: int = 0,
    d2c: bool = False,
    max_body: int | None = MAX_CLIENT_BODY,
) -> tuple[list[tuple[int, int]], int]:
    """Hot path: complete frames in buf[start:] as (begin, end) offsets, and the offset just
    after the last complete frame. Raises WireError for negative lengths or, when `max_body`
    is set, groups+data larger than it (the daemon must then drop the session).
    """
    out: list[tuple[int, int]] = []
    n = len(buf)
    pos = start
    le, be = HEADER_LE.unpack_from, HEADER_BE.unpack_from
    while n - pos >= HEADER_LEN:
        if buf[pos] & 0x80 and buf[pos + 3] & 0x80:
            t, _s, ng, _h, dl = le(buf, pos)
        else:
            t, _s, ng, _h, dl = be(buf, pos)
        if ng < 0 or dl < 0:
            raise WireError(f"negative num_groups {ng} or data_len {dl}")
        body = (ng << 5) + dl
        if max_body is not None and body > max_body:
            raise WireError(f"message body {body} larger than {max_body}")
        end = pos + HEADER_LEN + body + (4 if d2c and t & REJECT_MESS else 0)
        if end > n:
            break
        out.append((pos, end))
        pos = end
    return out, pos


def normalize_frame(frame: bytes | bytearray | memoryview) -> bytes:
    """Hot path: the frame in our byte order with our marker, as the daemon delivers it.

    Little-endian senders' frames come back unchanged. Only type, num_groups and data_len
    are converted; the hint and everything after the header stay as they are.
    """
    if header_is_ours(frame):
        return bytes(frame)
    t, sender, ng, _hint, dl = HEADER_BE.unpack_from(frame, 0)
    t = (t | ENDIAN_MARKER) & 0xFFFFFFFF
    return _SWAP3.pack(t, sender, ng) + bytes(frame[40:44]) + I32_LE.pack(dl) + bytes(frame[48:])


def check_client_header(
    service_type: int,
    sender: bytes,
    num_groups: int,
    hint: bytes,
    data_len: int,
    session_name: str,
    daemon_name: str,
) -> str | None:
    """The daemon's validation of a client header (reference §5.2 plus §14 item 1).

    `service_type` has the marker cleared; `sender` is the raw 32-byte field. Returns None
    when acceptable, else a short reason (the daemon then disconnects the session).
    """
    services = service_type & REGULAR_MESS
    controls = service_type & CONTROL_MESS
    if service_type & ~CLIENT_TYPE_BITS:
        return f"illegal type bits 0x{service_type:08x}"
    if services & (services - 1) or controls & (controls - 1) or bool(services) == bool(controls):
        return f"illegal service 0x{service_type:08x}"
    name = decode_name(sender[: MAX_GROUP_NAME - 1])
    parsed = split_private_group(name)
    if parsed is None or parsed != (session_name, daemon_name):
        return f"sender {name!r} is not this session"
    if not 0 <= num_groups <= MAX_GROUPS_PER_MESSAGE:
        return f"num_groups {num_groups}"
    if U32_LE.unpack(hint)[0] & ~HINT_ALLOWED & 0xFFFFFFFF:
        return "illegal hint bits"
    if not 0 <= data_len <= MAX_MESSAGE_BODY_LEN or data_len + 32 * num_groups > MAX_CLIENT_BODY:
        return f"data_len {data_len} too large"
    return None


@dataclass(frozen=True)
class Message:
    """One framed message. `type` has the marker cleared. `old_type` is set only for reject
    messages (daemon -> client); `foreign` says the header came big-endian."""

    type: int
    sender: str
    groups: tuple[str, ...]
    hint: bytes
    data: bytes
    old_type: int | None = None
    foreign: bool = False

    @property
    def mess_type(self) -> int:
        return hint_mess_type(self.hint)[0]

    @property
    def endian_mismatch(self) -> bool:
        return hint_mess_type(self.hint)[1]

    def encode(self) -> bytes:
        """In our order with our marker (the reject old_type gets our marker too)."""
        parts = [encode_header(self.type, self.sender, len(self.groups), self.hint, len(self.data))]
        if self.type & REJECT_MESS:
            if self.old_type is None:
                raise WireError("reject message without old_type")
            parts.append(U32_LE.pack((self.old_type | ENDIAN_MARKER) & 0xFFFFFFFF))
        parts.extend(encode_name(g) for g in self.groups)
        parts.append(self.data)
        return b"".join(parts)


def decode_message(
    buf: bytes | bytearray | memoryview, offset: int = 0, d2c: bool = True
) -> tuple[Message, int]:
    """One whole frame at `offset` -> (Message, end offset). WireError if incomplete or bad."""
    if len(buf) - offset < HEADER_LEN:
        raise WireError("short header")
    ours = header_is_ours(buf, offset)
    t, sender, ng, hint, dl = frame_header(buf, offset)
    if ng < 0 or dl < 0:
        raise WireError(f"negative num_groups {ng} or data_len {dl}")
    pos = offset + HEADER_LEN
    old_type = None
    if d2c and t & REJECT_MESS:
        if len(buf) < pos + 4:
            raise WireError("short reject old_type")
        raw_old = (U32_LE if ours else U32_BE).unpack_from(buf, pos)[0]
        old_type = raw_old & ~ENDIAN_MARKER & 0xFFFFFFFF
        pos += 4
    end = pos + MAX_GROUP_NAME * ng + dl
    if len(buf) < end:
        raise WireError("short message body")
    groups = tuple(decode_name(buf[p : p + MAX_GROUP_NAME]) for p in range(pos, pos + 32 * ng, 32))
    data = bytes(buf[pos + 32 * ng : end])
    return Message(t, decode_name(sender), groups, bytes(hint), data, old_type, not ours), end


# Client -> daemon builders


def encode_join(private_group: str, group: str) -> bytes:
    return encode_header(JOIN_MESS, private_group, 1, _MARKER_HINT, 0) + encode_name(group)


def encode_leave(private_group: str, group: str) -> bytes:
    return encode_header(LEAVE_MESS, private_group, 1, _MARKER_HINT, 0) + encode_name(group)


def encode_kill(private_group: str) -> bytes:
    """SP_disconnect: KILL with the own private group in the group slot (zero padded here)."""
    return encode_header(KILL_MESS, private_group, 1, _MARKER_HINT, 0) + encode_name(private_group)


def encode_multicast(
    private_group: str,
    service_type: int,
    groups: Sequence[str | bytes],
    mess_type: int,
    data: bytes | bytearray | memoryview,
) -> bytes:
    head = encode_header(service_type, private_group, len(groups), make_hint(mess_type), len(data))
    return head + b"".join(encode_name(g) for g in groups) + bytes(data)


# ---------------------------------------------------------------------------------------------
# Membership bodies (reference §6.2) and daemon -> client builders


@dataclass(frozen=True)
class GroupId:
    proc_id: int
    time: int
    index: int

    def encode(self) -> bytes:
        return GROUP_ID.pack(self.proc_id, self.time, self.index)

    @classmethod
    def decode(
        cls, buf: bytes | bytearray | memoryview, offset: int = 0, big: bool = False
    ) -> GroupId:
        if len(buf) - offset < 12:
            raise WireError("short group id")
        return cls(*(GROUP_ID_BE if big else GROUP_ID).unpack_from(buf, offset))

    @staticmethod
    def signed(value: int) -> int:
        """Fold an unsigned 32-bit id (e.g. a VID) into the int32 the wire carries."""
        value &= 0xFFFFFFFF
        return value - (1 << 32) if value & 0x80000000 else value


def vs_set_offsets(vs_sets: Sequence[Sequence[str]]) -> list[int]:
    """Offset of each vs set's count word, measured from body offset 20."""
    out, pos = [], 0
    for s in vs_sets:
        out.append(pos)
        pos += 4 + MAX_GROUP_NAME * len(s)
    return out


@dataclass(frozen=True)
class MembershipBody:
    """A regular membership body: gid, vs sets, and where the receiver's own set is."""

    gid: GroupId
    vs_sets: tuple[tuple[str, ...], ...]
    local_vs_set_offset: int

    @property
    def my_vs_set_index(self) -> int:
        """Index of the set whose count word sits at the local offset, or -1."""
        try:
            return vs_set_offsets(self.vs_sets).index(self.local_vs_set_offset)
        except ValueError:
            return -1

    @property
    def changed_member(self) -> str | None:
        """Join/leave/disconnect: the first member of vs set 0."""
        return self.vs_sets[0][0] if self.vs_sets and self.vs_sets[0] else None

    def encode(self) -> bytes:
        parts = [
            self.gid.encode(),
            U32_LE.pack(len(self.vs_sets)),
            U32_LE.pack(self.local_vs_set_offset),
        ]
        for s in self.vs_sets:
            parts.append(U32_LE.pack(len(s)))
            parts.extend(encode_name(m) for m in s)
        return b"".join(parts)


def decode_membership_body(
    data: bytes | bytearray | memoryview, big: bool = False
) -> MembershipBody:
    """`big`: the daemon that built it was big-endian (header marker clear)."""
    u32 = U32_BE if big else U32_LE
    if len(data) < 20:
        raise WireError("membership body shorter than 20 bytes")
    gid = GroupId.decode(data, 0, big)
    nsets = u32.unpack_from(data, 12)[0]
    local = u32.unpack_from(data, 16)[0]
    pos = 20
    sets: list[tuple[str, ...]] = []
    for _ in range(nsets):
        if len(data) < pos + 4:
            raise WireError("membership body truncated in vs set count")
        count = u32.unpack_from(data, pos)[0]
        pos += 4
        if len(data) < pos + 32 * count:
            raise WireError("membership body truncated in vs set members")
        sets.append(
            tuple(
                decode_name(data[p : p + MAX_GROUP_NAME]) for p in range(pos, pos + 32 * count, 32)
            )
        )
        pos += 32 * count
    return MembershipBody(gid, tuple(sets), local)


def encode_membership(
    cause: int,
    group: str,
    members: Sequence[str],
    gid: GroupId,
    vs_sets: Sequence[Sequence[str]],
    local_vs_set_offset: int = 0,
) -> bytes:
    """REG_MEMB_MESS | cause for one receiver (only the local offset differs per receiver)."""
    body = MembershipBody(gid, tuple(tuple(s) for s in vs_sets), local_vs_set_offset).encode()
    return (
        encode_header(REG_MEMB_MESS | cause, group, len(members), _MARKER_HINT, len(body))
        + b"".join(encode_name(m) for m in members)
        + body
    )


def encode_transition(group: str, old_gid: GroupId) -> bytes:
    """TRANSITION_MESS: no members, body = the group's gid before the change."""
    return encode_header(TRANSITION_MESS, group, 0, _MARKER_HINT, 12) + old_gid.encode()


def encode_self_leave(group: str) -> bytes:
    """CAUSED_BY_LEAVE alone: what the leaver gets."""
    return encode_header(CAUSED_BY_LEAVE, group, 0, _MARKER_HINT, 0)


def reject_old_type(service_type: int) -> int:
    """What a refused message's type becomes in the reject's old_type word."""
    if service_type & JOIN_MESS:
        return (service_type & ~JOIN_MESS) | CAUSED_BY_JOIN
    if service_type & LEAVE_MESS:
        return (service_type & ~LEAVE_MESS) | CAUSED_BY_LEAVE
    return service_type


def encode_reject_message(frame: bytes | bytearray | memoryview) -> bytes:
    """The reject a daemon returns to the sender of a refused client frame (reference §6.3).

    The sender's private group is appended to the groups (or overwrites the 100th).
    """
    msg, _ = decode_message(frame, 0, d2c=False)
    groups = list(msg.groups)
    if len(groups) >= MAX_GROUPS_PER_MESSAGE:
        groups[-1] = msg.sender
    else:
        groups.append(msg.sender)
    rtype = REJECT_MESS | (msg.type & SELF_DISCARD)
    return Message(
        rtype, msg.sender, tuple(groups), msg.hint, msg.data, reject_old_type(msg.type)
    ).encode()
