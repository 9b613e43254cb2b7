"""Every captured client<->daemon byte stream decodes with spread.wire.client and re-encodes
to the same bytes (only the KILL junk after the NUL is masked)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from spread.wire import client as w

VECTORS = Path(__file__).parent.parent / "vectors" / "client"
FILES = sorted(VECTORS.glob("*.json"))


def _connections() -> list[tuple[str, dict]]:
    out = []
    for f in FILES:
        for c in json.loads(f.read_text())["connections"]:
            out.append((f"{f.stem}:{c['id']}", c))
    return out


CONNS = _connections()


def _stream(conn: dict, direction: str) -> bytes:
    return b"".join(bytes.fromhex(f["hex"]) for f in conn["frames"] if f["dir"] == direction)


def _mask_kill_junk(frame: bytes) -> bytes:
    """Zero whatever follows the NUL in a KILL's group field (uninitialised stack bytes)."""
    t = w.frame_header(frame)[0]
    if not t & w.KILL_MESS or len(frame) < 80:
        return frame
    field = frame[48:80]
    end = field.find(b"\0")
    if end < 0:
        return frame
    return frame[:48] + field[:end] + b"\0" * (32 - end) + frame[80:]


def _handshake(conn: dict) -> tuple[w.Hello | w.Malformed | w.NeedMore, int, int]:
    """Decode both handshake halves; return (hello, c2d offset, d2c offset) after them."""
    c2d, d2c = _stream(conn, "c2d"), _stream(conn, "d2c")
    hello = w.decode_hello(c2d)
    if not isinstance(hello, w.Hello):
        return hello, len(c2d), len(d2c)
    assert hello.encode() == c2d[: hello.size]
    c_pos, d_pos = hello.size, 0
    if hello.wants_auth:
        auth = w.decode_auth_list(d2c)
        if isinstance(auth, w.Rejected | w.NeedMore):  # early reject, or closed silently
            assert not isinstance(auth, w.NeedMore) or d2c == b""
            return hello, c_pos, len(d2c)
        assert isinstance(auth, w.AuthList)
        assert w.encode_auth_list(auth.methods) == d2c[: auth.size]
        d_pos = auth.size
        choice = w.decode_auth_choice(c2d[c_pos:])
        if isinstance(choice, w.NeedMore):  # a short auth choice: the daemon rejects it
            c_pos = len(c2d)
        else:
            assert w.encode_auth_choice(choice) == c2d[c_pos : c_pos + w.AUTH_CHOICE_LEN]
            c_pos += w.AUTH_CHOICE_LEN
    acc = w.decode_accept(d2c[d_pos:], with_patch=hello.wants_patch)
    if isinstance(acc, w.Accept):
        again = w.encode_accept(
            acc.private_group, hello.wants_patch, (acc.major, acc.minor, acc.patch or 0)
        )
        assert again == d2c[d_pos : d_pos + acc.size]
        d_pos += acc.size
    elif isinstance(acc, w.Rejected):
        assert d2c[d_pos:] == w.encode_reject_byte(acc.code)
        d_pos = len(d2c)
    return hello, c_pos, d_pos


@pytest.mark.parametrize("name,conn", CONNS, ids=[n for n, _ in CONNS])
def test_every_captured_stream_decodes_and_reencodes_identically(name: str, conn: dict) -> None:
    _hello, c_pos, d_pos = _handshake(conn)
    c2d, d2c = _stream(conn, "c2d"), _stream(conn, "d2c")
    for stream, pos, d2c_dir in ((c2d, c_pos, False), (d2c, d_pos, True)):
        frames, end = w.split_frames(stream, pos, d2c=d2c_dir, max_body=None)
        assert end == len(stream), f"{name}: {len(stream) - end} trailing bytes"
        for a, b in frames:
            frame = stream[a:b]
            msg, stop = w.decode_message(frame, 0, d2c=d2c_dir)
            assert stop == len(frame)
            assert msg.encode() == _mask_kill_junk(frame)
            assert w.normalize_frame(frame) == frame  # LE senders pass through untouched


def test_every_handshake_reject_is_the_byte_the_decoder_predicts() -> None:
    seen = 0
    for name, conn in CONNS:
        c2d, d2c = _stream(conn, "c2d"), _stream(conn, "d2c")
        hello = w.decode_hello(c2d)
        if isinstance(hello, w.Malformed):
            assert hello.reject is not None
            assert d2c == w.encode_reject_byte(hello.reject), name
            assert w.decode_auth_list(d2c) == w.Rejected(hello.reject)
            seen += 1
    assert seen >= 6  # a#b, 'a b', DEL, 11-byte name, 3.0, 2.9


def test_old_library_hellos_get_the_old_accept_layout() -> None:
    conns = dict(CONNS)
    old14 = conns["A2_rejects:raw8"]
    hello = w.decode_hello(_stream(old14, "c2d"))
    assert isinstance(hello, w.Hello)
    assert (hello.patch, hello.wants_auth, hello.wants_patch) == (None, False, False)
    acc = w.decode_accept(_stream(old14, "d2c"), with_patch=False)
    assert acc == w.Accept(5, 0, None, "#old14#testvm", 17)
    old15 = conns["A2_rejects:raw9"]
    hello = w.decode_hello(_stream(old15, "c2d"))
    assert isinstance(hello, w.Hello)
    assert (hello.patch, hello.wants_auth, hello.wants_patch) == (0, False, True)


def test_late_rejects_decode_as_rejected_auth() -> None:
    conns = dict(CONNS)
    for cid in ("A2_rejects:raw6", "A2_rejects:raw7"):
        d2c = _stream(conns[cid], "d2c")
        auth = w.decode_auth_list(d2c)
        assert isinstance(auth, w.AuthList)
        assert w.decode_accept(d2c[auth.size :]) == w.Rejected(w.REJECT_AUTH)
    assert w.decode_auth_choice(_stream(conns["A2_rejects:raw6"], "c2d")[10:]) == ("FOO",)
    assert isinstance(
        w.decode_auth_choice(_stream(conns["A2_rejects:raw7"], "c2d")[10:]), w.NeedMore
    )


def test_library_hello_builder_matches_libspread() -> None:
    conns = dict(CONNS)
    cases = {
        "A1_connect:P1/c0": ("user1", True, 0),
        "A1_connect:P1/c1": ("", True, 0),
        "A1_connect:P1/c2": (None, True, 0),
        "A1_connect:P1/c3": ("user3", False, 0),
        "A1_connect:P1/c4": ("prio1", True, 1),
        "A1_connect:P1/c5": ("abcdefghijklmn", True, 0),
    }
    for cid, (name, memb, prio) in cases.items():
        hello_bytes = bytes.fromhex(conns[cid]["frames"][0]["hex"])
        assert w.Hello.for_library(name, memb, prio).encode() == hello_bytes, cid
        assert w.encode_auth_choice(["NULL"]).hex() == conns[cid]["frames"][2]["hex"]


_RECV = re.compile(
    r"RECV \d+ ret=(-?\d+) svc=0x([0-9a-f]+) sender=(\S*) ng=(-?\d+) mess_type=(-?\d+) endian=(\d)"
)


def _received() -> list[tuple[str, bytes, str]]:
    out = []
    for name, conn in CONNS:
        for f in conn["frames"]:
            if f["dir"] == "d2c" and f.get("lib_receive") and f["hex"]:
                out.append((name, bytes.fromhex(f["hex"]), f["lib_receive"]))
    return out


RECEIVED = _received()


def test_data_messages_give_the_service_and_mess_type_libspread_reported() -> None:
    checked = 0
    for name, frame, recv in RECEIVED:
        m = _RECV.match(recv)
        assert m, recv
        msg, _ = w.decode_message(frame)
        if not w.is_regular(msg.type):
            continue
        ret, svc, sender, ng, mt, endian = m.groups()
        assert (int(ret), int(svc, 16), sender) == (len(msg.data), msg.type, msg.sender), name
        assert (int(ng), int(mt), bool(int(endian))) == (
            len(msg.groups),
            msg.mess_type,
            msg.endian_mismatch,
        ), name
        checked += 1
    assert checked > 20


def test_membership_messages_rebuild_from_their_decoded_parts() -> None:
    kinds = set()
    for name, frame, recv in RECEIVED:
        msg, _ = w.decode_message(frame)
        svc = int(_RECV.match(recv).group(2), 16)  # type: ignore[union-attr]
        assert svc == msg.type, name
        if w.is_reg_memb(msg.type):
            body = w.decode_membership_body(msg.data)
            cause = msg.type & ~w.REG_MEMB_MESS
            rebuilt = w.encode_membership(
                cause, msg.sender, msg.groups, body.gid, body.vs_sets, body.local_vs_set_offset
            )
            gid = re.search(r"gid=(-?\d+),(-?\d+),(-?\d+)", recv)
            assert gid and tuple(map(int, gid.groups())) == (
                body.gid.proc_id,
                body.gid.time,
                body.gid.index,
            )
            idx = re.search(r"my_vs_index=(\d+)", recv)
            assert idx and int(idx.group(1)) == body.my_vs_set_index, name
            kinds.add(cause)
        elif w.is_transition(msg.type):
            rebuilt = w.encode_transition(msg.sender, w.GroupId.decode(msg.data))
            kinds.add(w.TRANSITION_MESS)
        elif w.is_self_leave(msg.type):
            rebuilt = w.encode_self_leave(msg.sender)
            kinds.add(w.CAUSED_BY_LEAVE)
        else:
            continue
        assert rebuilt == frame, name
    assert kinds >= {
        w.CAUSED_BY_JOIN,
        w.CAUSED_BY_LEAVE,
        w.CAUSED_BY_DISCONNECT,
        w.CAUSED_BY_NETWORK,
        w.TRANSITION_MESS,
    }


def test_merge_membership_has_two_vs_sets_with_the_captured_local_offsets() -> None:
    offsets = {}
    for name, frame, _recv in RECEIVED:
        msg, _ = w.decode_message(frame)
        if msg.type == w.REG_MEMB_MESS | w.CAUSED_BY_NETWORK and len(msg.groups) == 2:
            body = w.decode_membership_body(msg.data)
            assert body.vs_sets == (("#user2#d2",), ("#user1#d1",))
            offsets[name] = body.local_vs_set_offset
    assert offsets == {"A5_partition_merge:H1/c0": 36, "A5_partition_merge:H2/c0": 0}


def test_client_builders_match_captured_join_leave_kill_and_multicast() -> None:
    seen = set()
    for name, conn in CONNS:
        if not conn["client"].startswith("libspread"):
            continue
        _hello, c_pos, _ = _handshake(conn)
        c2d = _stream(conn, "c2d")
        frames, _ = w.split_frames(c2d, c_pos)
        for a, b in frames:
            msg, _ = w.decode_message(c2d[a:b], d2c=False)
            if msg.type == w.JOIN_MESS:
                built = w.encode_join(msg.sender, msg.groups[0])
            elif msg.type == w.LEAVE_MESS:
                built = w.encode_leave(msg.sender, msg.groups[0])
            elif msg.type == w.KILL_MESS:
                built = w.encode_kill(msg.sender)
            else:
                built = w.encode_multicast(
                    msg.sender, msg.type, msg.groups, msg.mess_type, msg.data
                )
            assert built == _mask_kill_junk(c2d[a:b]), name
            seen.add(msg.type & (w.CONTROL_MESS | w.REGULAR_MESS | w.SELF_DISCARD))
    assert {w.JOIN_MESS, w.LEAVE_MESS, w.KILL_MESS, w.SAFE_MESS | w.SELF_DISCARD} <= seen


def test_captured_client_headers_pass_the_daemon_validation() -> None:
    for name, conn in CONNS:
        if not conn["client"].startswith("libspread"):
            continue
        _hello, c_pos, _ = _handshake(conn)
        accept = [f for f in conn["frames"] if f["dir"] == "d2c"][1]
        acc = w.decode_accept(bytes.fromhex(accept["hex"]))
        if not isinstance(acc, w.Accept):
            continue
        priv, proc = w.split_private_group(acc.private_group)  # type: ignore[misc]
        c2d = _stream(conn, "c2d")
        for a, _b in w.split_frames(c2d, c_pos)[0]:
            t, sender, ng, hint, dl = w.frame_header(c2d, a)
            assert w.check_client_header(t, sender, ng, hint, dl, priv, proc) is None, name
