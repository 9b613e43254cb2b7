"""Round trips and robustness of spread.wire.client on generated inputs."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from spread.wire import client as w

NAME_CHARS = st.characters(min_codepoint=0x24, max_codepoint=0x7E)
names = st.text(NAME_CHARS, min_size=1, max_size=31)
int32 = st.integers(-(2**31), 2**31 - 1)
services = st.sampled_from(
    [w.UNRELIABLE_MESS, w.RELIABLE_MESS, w.FIFO_MESS, w.CAUSAL_MESS, w.AGREED_MESS, w.SAFE_MESS]
)


@given(
    name=st.text(NAME_CHARS, max_size=10),
    membership=st.booleans(),
    priority=st.integers(0, 1),
    version=st.tuples(st.integers(3, 9), st.integers(0, 99), st.integers(0, 99)).filter(
        lambda v: w.version_number(*v) >= 30100
    ),
)
def test_hello_round_trips_for_any_legal_name_and_version(
    name: str, membership: bool, priority: int, version: tuple[int, int, int]
) -> None:
    hello = w.Hello.for_library(name, membership, priority, version)
    raw = hello.encode()
    got = w.decode_hello(raw + b"trailing")
    assert isinstance(got, w.Hello)
    assert (got.name, got.membership, got.priority, got.size) == (
        name,
        membership,
        priority,
        len(raw),
    )


@given(st.binary(max_size=20))
def test_every_hello_prefix_needs_more_or_decides(raw: bytes) -> None:
    got = w.decode_hello(raw)
    if isinstance(got, w.NeedMore):
        assert got.at_least > len(raw)
    elif isinstance(got, w.Hello):
        assert got.size <= len(raw)
        assert got.encode() == raw[: got.size]
    else:
        assert got.reject in (w.REJECT_VERSION, w.REJECT_ILLEGAL_NAME)


@given(st.binary(max_size=300))
def test_decoders_raise_nothing_but_wire_error(raw: bytes) -> None:
    for fn in (
        lambda: w.decode_hello(raw),
        lambda: w.decode_auth_list(raw),
        lambda: w.decode_auth_choice(raw),
        lambda: w.decode_accept(raw),
        lambda: w.decode_accept(raw, with_patch=False),
        lambda: w.decode_message(raw),
        lambda: w.decode_message(raw, d2c=False),
        lambda: w.split_frames(raw),
        lambda: w.split_frames(raw, d2c=True, max_body=None),
        lambda: w.decode_membership_body(raw),
        lambda: w.decode_membership_body(raw, big=True),
        lambda: w.decode_header(raw),
        lambda: w.normalize_frame(raw) if len(raw) >= 48 else None,
        lambda: w.encode_reject_message(raw),
    ):
        try:
            fn()
        except w.WireError:
            pass


@given(
    service=services,
    self_discard=st.booleans(),
    sender=names,
    groups=st.lists(names, max_size=5),
    mess_type=st.integers(-32768, 32767),
    data=st.binary(max_size=200),
)
def test_messages_round_trip_and_split_on_their_boundaries(
    service: int, self_discard: bool, sender: str, groups: list[str], mess_type: int, data: bytes
) -> None:
    stype = service | (w.SELF_DISCARD if self_discard else 0)
    raw = w.encode_multicast(sender, stype, groups, mess_type, data)
    msg, end = w.decode_message(raw)
    assert end == len(raw)
    assert (msg.type, msg.sender, msg.groups, msg.data) == (stype, sender, tuple(groups), data)
    assert (msg.mess_type, msg.endian_mismatch) == (mess_type, False)
    assert msg.encode() == raw
    two = raw + raw
    for cut in (0, 1, 47, 48, len(raw) - 1, len(raw), len(raw) + 1):
        frames, consumed = w.split_frames(two[:cut], max_body=None)
        assert consumed == (len(raw) if len(raw) <= cut < 2 * len(raw) else 0)
        assert frames == ([(0, len(raw))] if consumed else [])


@given(
    service=services,
    sender=names,
    groups=st.lists(names, max_size=4),
    mess_type=st.integers(-32768, 32767),
    data=st.binary(max_size=64),
)
def test_big_endian_senders_are_normalized_to_our_order_keeping_the_raw_hint(
    service: int, sender: str, groups: list[str], mess_type: int, data: bytes
) -> None:
    be = w.encode_header_be(service, sender, len(groups), mess_type, len(data))
    be += b"".join(w.encode_name(g) for g in groups) + data
    msg, _ = w.decode_message(be)
    assert msg.foreign and msg.type == service and msg.groups == tuple(groups)
    assert (msg.mess_type, msg.endian_mismatch) == (mess_type, True)
    norm = w.normalize_frame(be)
    assert norm[:4] == struct.pack("<I", service | 0x80000080)
    assert norm[40:44] == be[40:44]
    assert w.decode_message(norm)[0].data == data


@given(
    gid=st.tuples(int32, int32, int32),
    vs_sets=st.lists(st.lists(names, min_size=1, max_size=3), min_size=1, max_size=4),
    pick=st.integers(0, 3),
)
def test_membership_bodies_round_trip_and_find_the_local_set(
    gid: tuple[int, int, int], vs_sets: list[list[str]], pick: int
) -> None:
    pick %= len(vs_sets)
    offset = w.vs_set_offsets(vs_sets)[pick]
    body = w.MembershipBody(w.GroupId(*gid), tuple(tuple(s) for s in vs_sets), offset)
    raw = body.encode()
    assert len(raw) == 20 + sum(4 + 32 * len(s) for s in vs_sets)
    again = w.decode_membership_body(raw)
    assert again == body
    assert again.my_vs_set_index == pick


@settings(max_examples=50)
@given(
    service=services, sender=names, groups=st.lists(names, max_size=101), data=st.binary(max_size=8)
)
def test_reject_appends_the_sender_and_keeps_the_old_type(
    service: int, sender: str, groups: list[str], data: bytes
) -> None:
    raw = w.encode_multicast(sender, service, groups, 3, data)
    rej, _end = w.decode_message(w.encode_reject_message(raw))
    assert rej.type == w.REJECT_MESS and rej.old_type == service
    assert rej.groups[-1] == sender
    assert len(rej.groups) == min(len(groups) + 1, max(len(groups), 100))
    assert rej.data == data and rej.mess_type == 3


def test_join_reject_reports_caused_by_join() -> None:
    raw = w.encode_join("#a#d", "g")
    rej, _ = w.decode_message(w.encode_reject_message(raw))
    assert rej.old_type == w.CAUSED_BY_JOIN
    assert rej.old_type | w.REJECT_MESS == 0x00400100


def test_header_validation_refuses_what_crashes_or_confuses_the_c_daemon() -> None:
    hint = w.make_hint(0)
    sender = w.encode_name("#u#d")
    ok = (sender, 1, hint, 5, "u", "d")
    assert w.check_client_header(w.AGREED_MESS, *ok) is None
    assert w.check_client_header(w.AGREED_MESS | w.SELF_DISCARD, *ok) is None
    for bad in (
        w.AGREED_MESS | w.RELIABLE_MESS,
        w.AGREED_MESS | w.JOIN_MESS,
        0,
        w.GROUPS_MESS | w.AGREED_MESS,
        w.REG_MEMB_MESS | w.AGREED_MESS,
        w.JOIN_MESS | w.LEAVE_MESS,
    ):
        assert w.check_client_header(bad, *ok) is not None, hex(bad)
    assert w.check_client_header(w.AGREED_MESS, w.encode_name("#x#d"), 1, hint, 5, "u", "d")
    assert w.check_client_header(w.AGREED_MESS, sender, 101, hint, 5, "u", "d")
    assert w.check_client_header(w.AGREED_MESS, sender, 1, b"\x81\0\0\x80", 5, "u", "d")
    assert w.check_client_header(w.AGREED_MESS, sender, 1, hint, 143921, "u", "d")
    assert w.check_client_header(w.AGREED_MESS, sender, 1, hint, 143920, "u", "d") is None


def test_java_client_bytes_from_the_reference_decode_as_big_endian() -> None:
    hello = w.decode_hello(bytes.fromhex("0404000105") + b"juser")
    assert isinstance(hello, w.Hello)
    assert (hello.major, hello.minor, hello.patch, hello.name) == (4, 4, 0, "juser")
    assert hello.membership and hello.wants_auth and hello.wants_patch
    join = (
        bytes.fromhex("00010000")
        + w.encode_name("#juser#testvm")
        + bytes.fromhex("00000001 00000000 00000000")
        + w.encode_name("wack1")
    )
    msg, _ = w.decode_message(join, d2c=False)
    assert (msg.type, msg.groups, msg.foreign) == (w.JOIN_MESS, ("wack1",), True)
    t, sender, ng, hint, dl = w.frame_header(join)
    assert w.check_client_header(t, sender, ng, hint, dl, "juser", "testvm") is None
    assert w.normalize_frame(join) == w.encode_join("#juser#testvm", "wack1")[:40] + bytes(
        4
    ) + bytes(4) + w.encode_name("wack1")
    agreed = (
        bytes.fromhex("00000010")
        + w.encode_name("#juser#testvm")
        + bytes.fromhex("00000001 00000100 00000005")
        + w.encode_name("wack1")
        + b"hello"
    )
    msg, _ = w.decode_message(agreed, d2c=False)
    assert (msg.mess_type, msg.endian_mismatch) == (1, True)
    # delivered in our order, hint untouched (reference §12: "00 00 01 00" stays)
    assert w.normalize_frame(agreed)[40:44] == bytes.fromhex("00000100")
