"""spuser: options, scripted commands from stdin and the original's output formats, against a
toy daemon (tests/support_client.MiniDaemon) or a socket pair."""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spread.client import Mailbox
from spread.tools import spuser
from spread.wire import client as w
from tests.support_client import MiniDaemon

MENU = spuser.MENU
PROMPT = "\nUser> "
SEP = "\n============================\n"


@pytest.fixture
def daemon() -> Iterator[MiniDaemon]:
    d = MiniDaemon("tcp")
    d.start()
    yield d
    d.stop()


def run(args: list[str], script: bytes, socket_dir: str = "/tmp") -> str:
    r, wfd = os.pipe()
    os.write(wfd, script)
    os.close(wfd)
    out = io.BytesIO()
    try:
        assert spuser.main(args, r, out, socket_dir=socket_dir) == 0
    finally:
        os.close(r)
    return out.getvalue().decode("latin-1")


def head(spread_name: str, private_group: str) -> str:
    return (
        "Spread library version is 5.0.1\n"
        f"User: connected to {spread_name} with private group {private_group}\n" + MENU + PROMPT
    )


def test_unknown_option_prints_usage_and_exits_zero() -> None:
    text = run(["-x"], b"")
    assert text == spuser.HELP
    assert text.startswith("Usage: spuser\n\t[-u <user name>]  : unique (in this machine) user")


def test_no_daemon_prints_sp_error_and_bye(tmp_path: Path) -> None:
    text = run(["-u", "bob"], b"", socket_dir=str(tmp_path))
    assert text == "Spread library version is 5.0.1\nSP_error: (-2) Could not connect.\n\nBye.\n"


def test_scripted_session_prints_like_the_original(daemon: MiniDaemon) -> None:
    name = f"{daemon.port}@127.0.0.1"
    script = b"d\nj grp\nr\ns grp other\nhello world\nr\np\nl grp\nr\nzz\nq\n"
    text = run(["-u", "alice", "-s", name], script)
    me = "#alice#fake"
    expected = (
        head(name, me)
        + PROMPT  # d
        + PROMPT  # j
        + SEP
        + "Received REGULAR membership for group grp with 1 members, where I am member 0:\n"
        + f"\t{me}\n"
        + f"grp id is {MiniDaemon.GID.proc_id} {MiniDaemon.GID.time} 1\n"
        + f"Due to the JOIN of {me}\n"
        + "\nUser> "
        + PROMPT  # r done
        + "enter message: "
        + PROMPT
        + SEP
        + f"received SAFE message from {me}, of type 1, (endian 0) to 2 groups \n"
        + "(12 bytes): hello world\n\n"
        + "\nUser> "
        + PROMPT
        + "Polling sais: 0\n"
        + PROMPT
        + PROMPT  # l
        + SEP
        + "received membership message that left group grp\n"
        + "\nUser> "
        + PROMPT
        + "\nUnknown commnad\n"
        + MENU
        + PROMPT
        + "\nBye.\n"
    )
    assert text == expected
    assert daemon.saw((me, "kill"))


def test_burst_sends_ten_fifo_messages_numbered_from_the_total(daemon: MiniDaemon) -> None:
    name = f"{daemon.port}@127.0.0.1"
    text = run(["-u", "bursty", "-s", name], b"d\nj g\nr\nb g\n30\nr\nb\n\nq\n")
    assert "enter size of each message: sending 10 messages of 30 bytes\n" in text
    assert "".join(f"sent message {i} (total {i})\n" for i in range(1, 11)) in text
    assert "(30 bytes): mess num 1 \n" in text
    # no size given: the previous size is used; no group: dummy_group_name
    assert "sending 10 messages of 30 bytes\nsent message 1 (total 11)\n" in text
    assert daemon.saw(("#bursty#fake", "multicast dummy_group_name"))


def test_multiline_message_ends_at_an_empty_line(daemon: MiniDaemon) -> None:
    name = f"{daemon.port}@127.0.0.1"
    text = run(["-u", "multi", "-s", name], b"d\nj g\nr\nm g\nline one\nline two\n\nr\nq\n")
    assert "(18 bytes): line one\nline two\n\n" in text


def test_random_name_and_invalid_group_lines(daemon: MiniDaemon) -> None:
    name = f"{daemon.port}@127.0.0.1"
    text = run(["-r", "-s", name], b"j\nl   \ns\nq\n")
    assert "with private group #r1-1#fake\n" in text
    assert text.count(" invalid group \n") == 3


def test_illegal_group_prints_sp_error_and_continues(daemon: MiniDaemon) -> None:
    name = f"{daemon.port}@127.0.0.1"
    text = run(["-u", "ig", "-s", name], b"j " + b"x" * 40 + b"\nq\n")
    assert "SP_error: (-14) Illegal group.\n" + PROMPT + "\nBye.\n" in text


def test_eof_on_stdin_says_bye(daemon: MiniDaemon) -> None:
    name = f"{daemon.port}@127.0.0.1"
    assert run(["-u", "eof", "-s", name], b"").endswith(PROMPT + "\nBye.\n")


def _pair_user() -> tuple[spuser.SpUser, socket.socket, io.BytesIO]:
    a, b = socket.socketpair()
    out = io.BytesIO()
    user = spuser.SpUser(Mailbox(a, "#me#d"), "x", os.open(os.devnull, os.O_RDONLY), out)
    return user, b, out


def test_network_membership_lists_vs_sets_local_first_marked() -> None:
    user, peer, out = _pair_user()
    gid = w.GroupId(-5, 6, 1)
    peer.sendall(
        w.encode_membership(
            w.CAUSED_BY_NETWORK, "g", ["#me#d", "#yy#e"], gid, [["#yy#e"], ["#me#d"]], 36
        )
    )
    user.read_message()
    assert out.getvalue().decode() == (
        SEP
        + "Received REGULAR membership for group g with 2 members, where I am member 0:\n"
        + "\t#me#d\n\t#yy#e\n"
        + "grp id is -5 6 1\n"
        + "Due to NETWORK change with 2 VS sets\n"
        + "OTHER VS set 0 has 1 members:\n\t#yy#e\n"
        + "LOCAL VS set 1 has 1 members:\n\t#me#d\n"
        + "\nUser> "
    )


def test_transitional_reject_and_disconnect_outputs() -> None:
    user, peer, out = _pair_user()
    peer.sendall(w.encode_transition("g", w.GroupId(1, 2, 3)))
    peer.sendall(
        w.encode_reject_message(w.encode_multicast("#me#d", w.AGREED_MESS, ["g"], 4, b"x"))
    )
    user.read_message()
    user.read_message()
    peer.close()
    with pytest.raises(spuser.Bye):
        user.read_message()
    assert out.getvalue().decode() == (
        SEP
        + "received TRANSITIONAL membership for group g\n"
        + "\nUser> "
        + SEP
        + "REJECTED message from #me#d, of servicetype 0x400010 messtype 4, (endian 0) to 2 "
        + "groups \n(1 bytes): x\n"
        + "\nUser> "
        + SEP
        + "SP_error: (-8) Connection closed by Spread.\n"
        + SEP
        + "\nBye.\n"
    )


def test_oversized_message_is_received_with_drop_recv() -> None:
    user, peer, out = _pair_user()
    groups = [f"g{i}" for i in range(101)]
    frame = w.encode_multicast("#x#d", w.AGREED_MESS, groups, 0, b"hi")
    sender = threading.Thread(target=peer.sendall, args=(frame,))
    sender.start()
    user.read_message()
    sender.join()
    assert out.getvalue().decode() == (
        SEP
        + "\n========Buffers or Groups too Short=======\n"
        + "received AGREED message from #x#d, of type 0, (endian 0) to -101 groups \n"
        + "(2 bytes): hi\n"
        + "\nUser> "
    )


def test_too_many_vs_sets_prints_the_originals_bug_line_and_exits_1() -> None:
    user, peer, out = _pair_user()
    sets = [[f"#u{i}#d{i}"] for i in range(spuser.MAX_VSSETS + 1)]
    members = [m for s in sets for m in s]
    peer.sendall(w.encode_membership(w.CAUSED_BY_NETWORK, "g", members, w.GroupId(1, 2, 3),
                                     sets, 0))
    with pytest.raises(spuser.Bye) as e:
        user.read_message()
    assert e.value.status == 1
    assert "Recompile with larger MAX_VSSETS\n" in out.getvalue().decode()


def _running_user() -> tuple[socket.socket, int, io.BytesIO, threading.Thread]:
    a, b = socket.socketpair()
    r, wfd = os.pipe()
    out = io.BytesIO()
    user = spuser.SpUser(Mailbox(a, "#me#d"), "x", r, out)
    t = threading.Thread(target=user.run, daemon=True)
    t.start()
    return b, wfd, out, t


def test_after_d_unread_mail_does_not_keep_the_loop_spinning() -> None:
    peer, wfd, out, t = _running_user()
    os.write(wfd, b"d\n")
    deadline = time.monotonic() + 5
    while out.getvalue().count(b"User> ") < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    peer.sendall(w.encode_multicast("#yy#e", w.AGREED_MESS, ["g"], 0, b"waiting"))
    clock = time.pthread_getcpuclockid(t.ident)  # type: ignore[arg-type]
    before = time.clock_gettime(clock)
    time.sleep(1.0)
    spent = time.clock_gettime(clock) - before
    os.write(wfd, b"r\nq\n")
    t.join(5)
    assert not t.is_alive()
    assert spent < 0.2, f"the loop used {spent:.2f} s of CPU while waiting for a command"
    assert b"(7 bytes): waiting" in out.getvalue()  # 'r' still reads it


def test_a_stream_of_messages_does_not_starve_commands() -> None:
    a, peer = socket.socketpair()
    r, wfd = os.pipe()
    out = io.BytesIO()
    frame = w.encode_multicast("#yy#e", w.AGREED_MESS, ["g"], 0, b"x" * 100)
    peer.sendall(frame * 200)  # mail and a command both waiting when the loop starts
    os.write(wfd, b"q\n")
    spuser.SpUser(Mailbox(a, "#me#d"), "x", r, out).run()
    # one round of the original's loop: one message, then the command
    assert out.getvalue().count(b"message from #yy#e") == 1
    assert out.getvalue().endswith(b"\nBye.\n")
