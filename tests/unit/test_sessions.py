"""Session protocol without sockets: hello and auth decisions, framing, header validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spread.groups.session import (
    CLOSE,
    BadFrame,
    FrameReader,
    accept_message,
    anonymous_name,
    decode_auth,
    decode_hello,
)
from spread.wire import client as wire

NULL_AUTH = b"NULL".ljust(90, b"\0")


def test_hello_of_current_library_is_accepted_with_its_flags() -> None:
    h = decode_hello(bytes.fromhex("05000111057573657231"), False)
    assert isinstance(h, wire.Hello)
    assert (h.name, h.membership, h.priority, h.wants_auth) == ("user1", True, 1, True)


@pytest.mark.parametrize(
    ("hello", "final", "want"),
    [
        ("0500", False, None),  # wait: the rest may be in the same write
        ("0500", True, CLOSE),  # split hello: closed without a word
        ("", True, CLOSE),  # silent client
        ("020901057573657239", False, wire.REJECT_VERSION),
        ("030001057573657239", False, wire.REJECT_VERSION),
        ("050001010b6162636465666768696a6b", False, wire.REJECT_ILLEGAL_NAME),
        ("0500010103612062", False, wire.REJECT_ILLEGAL_NAME),
        ("050001010361627f", False, wire.REJECT_ILLEGAL_NAME),
        ("0500010105757365", True, wire.REJECT_ILLEGAL_NAME),  # name shorter than its length
        ("050001010375736572", False, wire.REJECT_ILLEGAL_NAME),  # one read got more than 3
    ],
)
def test_hello_decisions_match_the_original(hello: str, final: bool, want: int | None) -> None:
    assert decode_hello(bytes.fromhex(hello), final) == want


def test_old_libraries_get_the_accept_they_expect() -> None:
    h314 = decode_hello(bytes.fromhex("030e01056f6c643134"), False)
    h315 = decode_hello(bytes.fromhex("030f0001056f6c643135"), False)
    assert isinstance(h314, wire.Hello) and isinstance(h315, wire.Hello)
    assert not h314.wants_auth and not h315.wants_auth
    assert accept_message(h314, b"#old14#testvm").hex() == "0105000d236f6c6431342374657374766d"
    assert accept_message(h315, b"#old15#testvm").hex() == "010500010d236f6c6431352374657374766d"


def test_auth_choice_needs_all_90_bytes_and_known_methods() -> None:
    assert decode_auth(NULL_AUTH, False, {"NULL"}) == ["NULL"]
    assert decode_auth(NULL_AUTH[:10], False, {"NULL"}) is None
    assert decode_auth(NULL_AUTH[:10], True, {"NULL"}) == wire.REJECT_AUTH
    assert decode_auth(b"FOO".ljust(90, b"\0"), False, {"NULL"}) == wire.REJECT_AUTH
    assert decode_auth(b"IP".ljust(90, b"\0"), False, {"NULL"}) == wire.REJECT_AUTH


def test_anonymous_names_are_cut_to_nine_characters() -> None:
    assert anonymous_name(9998, 12345) == b"r9998-123"
    assert anonymous_name(933, 12) == b"r933-12"


def _frames() -> list[bytes]:
    me = "#u1#testvm"
    return [
        wire.encode_join(me, "g"),
        wire.encode_multicast(me, wire.AGREED_MESS, ["g", "h"], 7, b"payload" * 30),
        wire.encode_multicast(me, wire.SAFE_MESS | wire.SELF_DISCARD, [], -1, b""),
        wire.encode_header_be(wire.FIFO_MESS, me, 1, 3, 4) + wire.encode_name("g") + b"abcd",
        wire.encode_leave(me, "g"),
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=40))
def test_frames_come_out_the_same_however_the_stream_is_cut(cuts: list[int]) -> None:
    stream = b"".join(_frames())
    reader = FrameReader("u1", "testvm")
    got: list[bytes] = []
    pos, i = 0, 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        got += [m for _, m in reader.feed(stream[pos : pos + step])]
        pos += step
        i += 1
    assert got == [wire.normalize_frame(f) for f in _frames()]
    assert reader.pending == 0


def test_byte_at_a_time_equals_one_chunk() -> None:
    stream = b"".join(_frames())
    one = FrameReader("u1", "testvm").feed(stream)
    r = FrameReader("u1", "testvm")
    each = [m for b in stream for m in r.feed(bytes([b]))]
    assert [m for _, m in one] == [m for _, m in each] and len(each) == 5


def _bad(head_hex_patch: dict[int, bytes], base: bytes | None = None) -> bytes:
    frame = bytearray(base or wire.encode_multicast("#u1#testvm", wire.AGREED_MESS, ["g"], 0, b""))
    for at, b in head_hex_patch.items():
        frame[at : at + len(b)] = b
    return bytes(frame)


@pytest.mark.parametrize(
    "frame",
    [
        _bad({0: (0x80080090).to_bytes(4, "little")}),  # GROUPS_MESS bit: crashed the original
        _bad({0: (0x80001090).to_bytes(4, "little")}),  # REG_MEMB bit with a service
        _bad({0: (0x80000092).to_bytes(4, "little")}),  # two services
        _bad({0: (0x80000080).to_bytes(4, "little")}),  # no service
        _bad({4: wire.encode_name("#u2#testvm")}),  # someone else's name
        _bad({36: (101).to_bytes(4, "little")}),  # too many groups
        _bad({36: (-1).to_bytes(4, "little", signed=True)}),
        _bad({40: bytes.fromhex("80000081")}),  # illegal hint bit
        _bad({44: (143153 - 32 + 1000).to_bytes(4, "little")}),  # over the size limit
        _bad({36: (0).to_bytes(4, "little")}, wire.encode_join("#u1#testvm", "g")),
    ],
)
def test_bad_header_ends_the_session(frame: bytes) -> None:
    with pytest.raises(BadFrame):
        FrameReader("u1", "testvm").feed(frame)


def test_largest_legal_message_is_accepted() -> None:
    frame = wire.encode_multicast("#u1#testvm", wire.AGREED_MESS, ["g"], 0, b"\1" * (143952 - 32))
    assert FrameReader("u1", "testvm").feed(frame) == [(0x80000090, frame)]


def test_junk_after_the_name_is_ignored_and_byte_31_forced_to_nul() -> None:
    frame = bytearray(wire.encode_kill("#u1#testvm"))
    frame[4 + 11 : 4 + 32] = b"\x7f" * 21  # junk after the NUL, and byte 31 set
    [(t, out)] = FrameReader("u1", "testvm").feed(bytes(frame))
    assert t & wire.KILL_MESS and out[35] == 0 and out[4:15] == b"#u1#testvm\0"


def test_there_is_no_upper_version_limit() -> None:
    h = decode_hello(bytes.fromhex("7f630001") + b"\x02zz", False)
    assert isinstance(h, wire.Hello) and h.wants_auth and h.name == "zz"
