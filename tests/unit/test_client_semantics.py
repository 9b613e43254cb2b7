"""libspread semantics the captures do not cover: short buffers, DROP_RECV, foreign byte
order, rejects, local argument checks, error codes after failure, spread_name parsing."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spread.client import (
    AsyncMailbox,
    Mailbox,
    MembershipMessage,
    RegularMessage,
    RejectMessage,
    SelfLeaveMessage,
    ShortBuffer,
    SpreadError,
    TransitionalMessage,
    aconnect,
    connect,
    parse_spread_name,
)
from spread.client.protocol import Handshake, Receiver
from spread.wire import client as w

ME = "#me#d"


def _rx(*frames: bytes) -> Receiver:
    rx = Receiver(ME)
    for f in frames:
        rx.feed(f)
    return rx


def test_short_groups_buffer_consumes_nothing_and_reports_what_is_needed() -> None:
    frame = w.encode_multicast("#x#d", w.AGREED_MESS, ["a", "b", "c"], 7, b"12345")
    rx = _rx(frame)
    with pytest.raises(ShortBuffer) as e:
        rx.next_message(max_groups=2, max_mess_len=100)
    err = e.value
    assert (err.code, err.service_type, err.sender, err.mess_type) == (
        w.GROUPS_TOO_SHORT,
        w.AGREED_MESS,
        "#x#d",
        7,
    )
    assert (err.num_groups, err.endian_mismatch) == (-3, 0)
    with pytest.raises(ShortBuffer) as e2:
        rx.next_message(max_groups=3, max_mess_len=4)
    assert (e2.value.code, e2.value.num_groups, e2.value.endian_mismatch) == (
        w.BUFFER_TOO_SHORT,
        0,
        -5,
    )
    msg = rx.next_message(max_groups=3, max_mess_len=5)
    assert isinstance(msg, RegularMessage) and msg.data == b"12345"


def test_short_buffer_on_membership_reports_mess_type_zero() -> None:
    frame = w.encode_membership(w.CAUSED_BY_JOIN, "g", [ME, "#b#d"], w.GroupId(1, 2, 3), [[ME]])
    with pytest.raises(ShortBuffer) as e:
        _rx(frame).next_message(max_groups=1)
    assert (e.value.mess_type, e.value.num_groups) == (0, -2)


def test_drop_recv_truncates_groups_and_data() -> None:
    frame = w.encode_multicast("#x#d", w.FIFO_MESS, ["a", "b", "c"], 1, b"abcdef")
    later = w.encode_multicast("#x#d", w.FIFO_MESS, ["a"], 2, b"z")
    rx = _rx(frame + later)
    with pytest.raises(ShortBuffer) as e:
        rx.next_message(max_groups=2, max_mess_len=4, drop_recv=True)
    msg = e.value.message
    assert e.value.code == w.BUFFER_TOO_SHORT
    assert msg is not None and msg.groups == ("a", "b") and msg.num_groups == -3
    assert msg.data == b"abcd"
    nxt = rx.next_message(max_groups=2, drop_recv=True)
    assert nxt is not None and nxt.mess_type == 2 and nxt.num_groups == 1


def test_big_endian_sender_sets_endian_mismatch_and_keeps_mess_type() -> None:
    be = w.encode_header_be(w.AGREED_MESS, "#j#d", 1, 1, 5) + w.encode_name("g") + b"hello"
    msg = _rx(be).next_message()
    assert isinstance(msg, RegularMessage)
    assert (msg.mess_type, msg.endian_mismatch, msg.data) == (1, 1, b"hello")


def test_big_endian_daemon_membership_body_is_swapped() -> None:
    members = [ME]
    body = struct.pack(">iiiII", 5, 6, 7, 1, 0) + struct.pack(">I", 1) + w.encode_name(ME)
    head = struct.pack(
        ">I32si4si",
        w.REG_MEMB_MESS | w.CAUSED_BY_JOIN,
        w.encode_name("g"),
        1,
        b"\0\0\0\0",
        len(body),
    )
    msg = _rx(head + w.encode_name(members[0]) + body).next_message()
    assert isinstance(msg, MembershipMessage)
    assert msg.gid == w.GroupId(5, 6, 7) and msg.vs_sets == ((ME,),)
    assert (msg.mess_type, msg.reason, msg.changed_member) == (0, "join", ME)


def test_membership_index_is_minus_one_when_i_am_not_listed() -> None:
    frame = w.encode_membership(w.CAUSED_BY_LEAVE, "g", ["#a#d"], w.GroupId(1, 2, 3), [[ME]])
    msg = _rx(frame).next_message()
    assert isinstance(msg, MembershipMessage) and msg.mess_type == -1


def test_transitional_and_self_leave_have_mess_type_minus_one() -> None:
    rx = _rx(w.encode_transition("g", w.GroupId(1, 2, 3)), w.encode_self_leave("g"))
    t, s = rx.next_message(), rx.next_message()
    assert isinstance(t, TransitionalMessage) and t.gid == w.GroupId(1, 2, 3)
    assert isinstance(s, SelfLeaveMessage) and s.group == "g"
    assert (t.mess_type, s.mess_type) == (-1, -1)


def test_reject_reports_old_type_with_reject_bit() -> None:
    rejected = w.encode_reject_message(w.encode_join(ME, "g"))
    msg = _rx(rejected).next_message()
    assert isinstance(msg, RejectMessage)
    assert msg.service_type == 0x00400100
    assert msg.groups == ("g", ME)


def test_negative_counts_are_an_illegal_message() -> None:
    bad = struct.pack("<I32si4si", w.AGREED_MESS | 0x80000080, b"x" * 32, -1, b"\0" * 4, 0)
    with pytest.raises(SpreadError) as e:
        _rx(bad).next_message()
    assert e.value.code == w.ILLEGAL_MESSAGE


def test_split_input_yields_a_message_only_when_whole() -> None:
    frame = w.encode_multicast("#x#d", w.SAFE_MESS, ["g"], 0, b"x" * 100)
    rx = Receiver(ME)
    for i in range(len(frame) - 1):
        rx.feed(frame[i : i + 1])
        assert rx.next_message() is None
    rx.feed(frame[-1:])
    assert rx.next_message() is not None


@pytest.mark.parametrize(
    "name,expect",
    [
        (None, (4803, None, "/tmp/4803")),
        ("", (4803, None, "/tmp/4803")),
        ("4803", (4803, None, "/tmp/4803")),
        ("24913", (24913, None, "/tmp/24913")),
        ("4803@localhost", (4803, "localhost", None)),
        ("4803@10.0.0.1", (4803, "10.0.0.1", None)),
    ],
)
def test_spread_names_map_to_unix_socket_or_tcp(
    name: str | None, expect: tuple[int, str | None, str | None]
) -> None:
    a = parse_spread_name(name)
    assert (a.port, a.host, a.path) == expect


@pytest.mark.parametrize("name", ["abc", "4803host", "4803@", "@host", "x" * 80])
def test_bad_spread_names_are_illegal_spread(name: str) -> None:
    with pytest.raises(SpreadError) as e:
        parse_spread_name(name)
    assert e.value.code == w.ILLEGAL_SPREAD


def _pair() -> tuple[Mailbox, socket.socket]:
    a, b = socket.socketpair()
    return Mailbox(a, ME), b


@pytest.mark.parametrize("group", ["", "x" * 32, "a b", "a#b\x7f", "é"])
def test_join_and_leave_refuse_illegal_group_names(group: str) -> None:
    mbox, _peer = _pair()
    for op in (mbox.join, mbox.leave):
        with pytest.raises(SpreadError) as e:
            op(group)
        assert e.value.code == w.ILLEGAL_GROUP


def test_multicast_checks_service_and_size_locally() -> None:
    mbox, peer = _pair()
    for svc in (0, w.REJECT_MESS | w.AGREED_MESS, w.SELF_DISCARD):
        with pytest.raises(SpreadError) as e:
            mbox.multicast(svc, "g", 0, b"")
        assert e.value.code == w.ILLEGAL_SERVICE
    with pytest.raises(SpreadError) as e:
        mbox.multicast(w.AGREED_MESS, "g", 0, b"x" * (144000 - 32 + 1))
    assert e.value.code == w.MESSAGE_TOO_LONG
    drained: list[int] = []

    def drain() -> None:
        while chunk := peer.recv(65536):
            drained.append(len(chunk))

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    assert mbox.multicast(w.AGREED_MESS, "g", 0, b"x" * (144000 - 32)) == 144000 - 32
    mbox.kill()
    t.join(5)
    assert sum(drained) == 48 + 32 + 144000 - 32


def test_multicast_mess_type_wraps_like_int16() -> None:
    mbox, peer = _pair()
    mbox.multicast(w.AGREED_MESS, "g", 0x18000, b"")
    msg, _ = w.decode_message(peer.recv(1000), d2c=False)
    assert msg.mess_type == -0x8000


def test_a_dead_connection_gives_connection_closed_then_net_error() -> None:
    mbox, peer = _pair()
    peer.close()
    with pytest.raises(SpreadError) as e:
        mbox.receive()
    assert e.value.code == w.CONNECTION_CLOSED
    for op in (mbox.receive, lambda: mbox.join("g")):
        with pytest.raises(SpreadError) as e:
            op()
        assert e.value.code == w.NET_ERROR_ON_SESSION
    assert mbox.disconnect() == 0
    with pytest.raises(SpreadError) as e:
        mbox.receive()
    assert e.value.code == w.ILLEGAL_SESSION


def test_disconnect_sends_kill_and_later_calls_are_illegal_session() -> None:
    mbox, peer = _pair()
    assert mbox.disconnect() == 0
    assert peer.recv(100) == w.encode_kill(ME)
    assert peer.recv(100) == b""
    for op in (mbox.disconnect, mbox.poll, lambda: mbox.multicast(w.AGREED_MESS, "g", 0, b"")):
        with pytest.raises(SpreadError) as e:
            op()
        assert e.value.code == w.ILLEGAL_SESSION


def test_poll_counts_buffered_and_kernel_bytes() -> None:
    mbox, peer = _pair()
    frame = w.encode_self_leave("g")
    peer.sendall(frame * 2)
    assert isinstance(mbox.receive(), SelfLeaveMessage)
    assert mbox.poll() == len(frame)
    assert mbox.has_message()


def test_handshake_rejects_and_checks() -> None:
    hs = Handshake("me", True)
    assert hs.start() == b"\x05\x00\x01\x01\x02me"
    with pytest.raises(SpreadError) as e:
        hs.feed(b"\xfa")
    assert e.value.code == w.REJECT_NOT_UNIQUE
    hs = Handshake("me", True)
    with pytest.raises(SpreadError) as e:
        hs.feed(b"\x03IP ")
    assert e.value.code == w.REJECT_AUTH
    hs = Handshake("me", True)
    with pytest.raises(SpreadError) as e:
        hs.feed(b"\x5b")
    assert e.value.code == w.CONNECTION_CLOSED
    hs = Handshake("me", True)
    assert hs.feed(b"\x05NULL \x01\x05") == w.encode_auth_choice(["NULL"])
    with pytest.raises(SpreadError) as e:
        hs.eof()
    assert e.value.code == w.CONNECTION_CLOSED
    hs = Handshake("me", True)
    hs.feed(b"\x05NULL ")
    with pytest.raises(SpreadError) as e:
        hs.feed(b"\x01\x02\x00\x00\x05#me#d")
    assert e.value.code == w.REJECT_VERSION


def test_connecting_to_nothing_is_could_not_connect(tmp_path: object) -> None:
    with pytest.raises(SpreadError) as e:
        connect("4803", "me", socket_dir=str(tmp_path))
    assert e.value.code == w.COULD_NOT_CONNECT
    with pytest.raises(SpreadError) as e:
        asyncio.run(aconnect("4803", "me", socket_dir=str(tmp_path)))
    assert e.value.code == w.COULD_NOT_CONNECT
    with pytest.raises(SpreadError) as e:
        connect("4803", "me", timeout=-1)
    assert e.value.code == w.ILLEGAL_TIME


def test_quota_reject_that_beats_our_hello_is_still_reported_as_quota(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon answers REJECT_QUOTA at accept and closes; when that happens before the
    hello is sent, the send fails (EPIPE) but the queued answer must still be read."""
    import spread.client.blocking as blocking

    path = f"{tmp_path}/4803"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    refused = threading.Event()

    def refuse() -> None:
        conn, _ = listener.accept()
        conn.sendall(bytes([w.REJECT_QUOTA & 0xFF]))
        conn.close()
        refused.set()

    real_open = blocking.open_socket

    def open_then_wait(addr: object, timeout: float | None) -> socket.socket:
        sock = real_open(addr, timeout)  # type: ignore[arg-type]
        assert refused.wait(5)  # the daemon has already closed when we send
        return sock

    monkeypatch.setattr(blocking, "open_socket", open_then_wait)
    server = threading.Thread(target=refuse)
    server.start()
    try:
        with pytest.raises(SpreadError) as e:
            connect("4803", "me", socket_dir=str(tmp_path), timeout=5)
    finally:
        server.join()
        listener.close()
    assert e.value.code == w.REJECT_QUOTA


_frames = st.lists(
    st.one_of(
        st.builds(
            lambda g, d, mt: w.encode_multicast("#x#d", w.AGREED_MESS, g, mt, d),
            st.lists(st.sampled_from(["a", "bb", ME]), max_size=3),
            st.binary(max_size=80),
            st.integers(-32768, 32767),
        ),
        st.builds(lambda g: w.encode_self_leave(g), st.sampled_from(["a", "bb"])),
        st.builds(
            lambda i: w.encode_membership(
                w.CAUSED_BY_JOIN, "a", [ME, "#y#d"], w.GroupId(1, 2, i), [["#y#d"]]
            ),
            st.integers(0, 9),
        ),
    ),
    min_size=1,
    max_size=6,
)


@given(frames=_frames, cuts=st.lists(st.integers(1, 64), max_size=30))
def test_messages_do_not_depend_on_how_the_stream_is_cut(
    frames: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(frames)
    whole = _rx(stream)
    expected = [whole.next_message() for _ in frames]
    rx = Receiver(ME)
    got = []
    pos = 0
    for size in [*cuts, len(stream)]:
        rx.feed(stream[pos : pos + size])
        pos += size
        while (m := rx.next_message()) is not None:
            got.append(m)
    assert got == expected and rx.buffered == 0


def test_async_receive_pending_during_disconnect_ends_with_illegal_session() -> None:
    async def run() -> int:
        a, b = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=a)
        mbox = AsyncMailbox(reader, writer, ME)
        pending = asyncio.ensure_future(mbox.receive())
        await asyncio.sleep(0.01)
        await mbox.disconnect()
        try:
            await asyncio.wait_for(pending, 2)
        except SpreadError as e:
            return e.code
        finally:
            b.close()
        return 0

    assert asyncio.run(run()) == w.ILLEGAL_SESSION
