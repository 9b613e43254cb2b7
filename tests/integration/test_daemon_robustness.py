"""Bad input never takes the daemon down: only the offending session ends (real process).

Hypothesis throws random and mutated handshakes and frames at a live daemon, in random
chunks down to one byte; after each attack a watcher must still get every message of a
speaker, in order. Explicit cases cover the original's crashes and the slow-reader rule.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spread.wire import client as wire
from tests.integration.rawclient import NULL_AUTH, Client, recv_exact
from tests.support_daemon import RunningDaemon, free_port, start_daemon

Shared = tuple[RunningDaemon, Client, Client]
_marks = itertools.count(1)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    d = start_daemon(tmp_path_factory.mktemp("robust"))
    try:
        watcher = Client(d, "watcher", membership=False)
        watcher.join("w")
        speaker = Client(d, "speaker", membership=False)
        _check(d, watcher, speaker)
        yield d, watcher, speaker
        assert "Traceback" not in d.output(), d.output()
    finally:
        d.stop()


def _check(d: RunningDaemon, watcher: Client, speaker: Client) -> None:
    """The speaker's next message is the watcher's next message from the speaker."""
    n = next(_marks)
    speaker.mcast(["w"], f"mark{n}".encode())
    while True:
        m = watcher.recv()
        if m.sender == speaker.group:
            assert m.data == f"mark{n}".encode()
            break
    assert d.alive()


def _dribble(s: socket.socket, data: bytes, chunks: list[int]) -> None:
    pos, i = 0, 0
    with contextlib.suppress(OSError):
        while pos < len(data):
            step = chunks[i % len(chunks)] if chunks else len(data)
            s.sendall(data[pos : pos + step])
            pos += step
            i += 1


def _handshake(d: RunningDaemon, name: str) -> socket.socket | None:
    s = d.connect("unix")
    s.sendall(wire.Hello.for_library(name, True).encode())
    try:
        n = recv_exact(s, 1)[0]
        if n >= 128:
            s.close()
            return None
        recv_exact(s, n)
        s.sendall(NULL_AUTH)
        head = recv_exact(s, 5)
        recv_exact(s, head[4])
    except (EOFError, OSError):
        s.close()
        return None
    return s


def _valid_stream(me: str) -> bytes:
    return b"".join(
        [
            wire.encode_join(me, "w"),
            wire.encode_multicast(me, wire.AGREED_MESS, ["w", "x"], 3, b"data" * 20),
            wire.encode_multicast(me, wire.SAFE_MESS, ["#watcher#testvm"], 0, b"p2p"),
            wire.encode_leave(me, "w"),
            wire.encode_multicast(me, wire.FIFO_MESS | wire.SELF_DISCARD, ["w"], -1, b""),
        ]
    )


chunks = st.lists(st.integers(min_value=1, max_value=64), max_size=8)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=200), cut=chunks)
def test_random_bytes_as_a_whole_connection(shared: Shared, data: bytes, cut: list[int]) -> None:
    d, watcher, speaker = shared
    s = d.connect("unix")
    _dribble(s, data, cut)
    s.close()
    _check(d, watcher, speaker)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    flips=st.lists(st.tuples(st.integers(0, 700), st.integers(0, 255)), max_size=6),
    cut_at=st.integers(0, 800),
    tail=st.binary(max_size=60),
    cut=chunks,
)
def test_mutated_frames_after_a_valid_handshake(
    shared: Shared, flips: list[tuple[int, int]], cut_at: int, tail: bytes, cut: list[int]
) -> None:
    d, watcher, speaker = shared
    s = _handshake(d, "fuzzer")
    if s is None:  # the previous fuzzer's kill may still hold the name for a moment
        time.sleep(0.05)
        s = _handshake(d, "fuzzer")
    assert s is not None
    stream = bytearray(_valid_stream("#fuzzer#testvm"))
    for at, b in flips:
        if at < len(stream):
            stream[at] = b
    _dribble(s, bytes(stream[:cut_at]) + tail, cut or [1])
    s.close()
    _check(d, watcher, speaker)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(hello=st.binary(min_size=2, max_size=16), auth=st.binary(max_size=100), cut=chunks)
def test_random_handshakes(shared: Shared, hello: bytes, auth: bytes, cut: list[int]) -> None:
    d, watcher, speaker = shared
    s = d.connect("unix")
    _dribble(s, hello, cut)
    _dribble(s, auth, cut)
    s.close()
    _check(d, watcher, speaker)


def _victim_case(d: RunningDaemon, payload: bytes) -> wire.Message:
    """A victim in group v sends `payload`; the observer sees what the daemon made of it."""
    observer = Client(d, "observer", membership=True)
    observer.join("v")
    assert observer.recv().type & wire.CAUSED_BY_JOIN
    victim = Client(d, "victim", membership=False)
    victim.join("v")
    assert observer.recv().type & wire.CAUSED_BY_JOIN
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # cut off mid-send
        victim.sock.sendall(
            payload.replace(wire.encode_name("#X#testvm"), wire.encode_name("#victim#testvm"))
        )
    got = observer.recv()
    victim.close()
    observer.disconnect()
    return got


def _big(body: int) -> bytes:
    return wire.encode_multicast("#X#testvm", wire.AGREED_MESS, ["v"], 0, b"\x5a" * (body - 32))


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(
            wire.encode_header(wire.GROUPS_MESS | wire.AGREED_MESS, "#X#testvm", 0, 0, 0),
            id="groups-bit",
        ),
        pytest.param(_big(143953), id="over-size-limit"),
        pytest.param(
            wire.encode_header(wire.AGREED_MESS | wire.RELIABLE_MESS, "#X#testvm", 1, 0, 0)
            + wire.encode_name("v"),
            id="two-services",
        ),
        pytest.param(
            wire.encode_header(wire.AGREED_MESS, "#X#testvm", -5, 0, 0), id="negative-groups"
        ),
    ],
)
def test_fatal_header_costs_only_that_session(shared: Shared, payload: bytes) -> None:
    d, watcher, speaker = shared
    got = _victim_case(d, payload)
    assert got.type == wire.REG_MEMB_MESS | wire.CAUSED_BY_DISCONNECT
    assert got.groups == ("#observer#testvm",)
    _check(d, watcher, speaker)


def test_body_the_original_died_on_is_delivered(shared: Shared) -> None:
    d, watcher, speaker = shared
    got = _victim_case(d, _big(143900))  # 143153..143952 aborted the C daemon
    assert got.type == wire.AGREED_MESS and len(got.data) == 143900 - 32
    _check(d, watcher, speaker)


def test_slow_reader_is_cut_off_and_others_carry_on(tmp_path: Path) -> None:
    d = start_daemon(tmp_path, "testvm", max_session_messages=200)
    try:
        slow = Client(d, "slow", membership=False)
        slow.join("g")
        slow.join("n")
        fast = Client(d, "fast", membership=False)
        fast.join("g")  # listed after slow: must not lose the message slow is cut off at
        observer = Client(d, "observer", membership=True)
        observer.join("n")
        speaker = Client(d, "speaker", membership=False)
        m = observer.recv()  # its own join, after slow's
        assert m.type & wire.CAUSED_BY_JOIN and len(m.groups) == 2
        got: list[bytes] = []

        def read_all() -> None:
            for _ in range(600):
                got.append(fast.recv().data)

        reader = threading.Thread(target=read_all)
        reader.start()
        for i in range(600):
            # Keep fast well inside its 200-message allowance even on a loaded machine: it
            # must stay; slow, which never reads, must be cut off.
            deadline = time.monotonic() + 10
            while i - len(got) > 100 and reader.is_alive() and time.monotonic() < deadline:
                time.sleep(0.001)
            speaker.mcast(["g"], i.to_bytes(2, "big") * 5_000)
        reader.join(30)
        assert [int.from_bytes(g[:2], "big") for g in got] == list(range(600))
        m = observer.recv()
        assert m.type == wire.REG_MEMB_MESS | wire.CAUSED_BY_DISCONNECT
        assert wire.decode_membership_body(m.data).vs_sets == (("#slow#testvm",),)
        slow.sock.settimeout(5)
        read = 0
        with contextlib.suppress(EOFError, ConnectionResetError):
            while True:
                slow.recv()
                read += 1
        assert 0 < read < 600  # what the socket buffers held, then EOF
        speaker.join("n")
        assert observer.recv().type & wire.CAUSED_BY_JOIN
        assert d.alive()
    finally:
        assert d.stop() == 0


def _spawn_on(port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "spread.daemon", "testvm", str(port)],
        stdout=open(tmp_path / "second.log", "wb"),
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )


def test_live_unix_socket_is_not_stolen(tmp_path: Path) -> None:
    port = free_port()
    path = f"/tmp/{port}"
    owner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    owner.bind(path)
    owner.listen()
    proc = _spawn_on(port, tmp_path)
    try:
        assert proc.wait(10) != 0
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.connect(path)  # still ours
        probe.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        owner.close()
        with contextlib.suppress(OSError):
            os.unlink(path)


def test_stale_unix_socket_is_replaced(tmp_path: Path) -> None:
    port = free_port()
    path = f"/tmp/{port}"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.close()  # the file stays, nobody listens: a crashed run
    proc = _spawn_on(port, tmp_path)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                s.close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
        assert os.stat(path).st_mode & 0o777 == 0o666
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    assert not os.path.exists(path)  # removed on a clean exit
