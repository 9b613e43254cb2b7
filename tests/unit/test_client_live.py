"""The client library and the tools against the real `spread` daemon process (one daemon,
started once for this file). Skipped with a reason if the daemon cannot be started."""

from __future__ import annotations

import asyncio
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from spread.client import (
    AGREED_MESS,
    REJECT_NOT_UNIQUE,
    SAFE_MESS,
    SELF_DISCARD,
    MembershipMessage,
    RegularMessage,
    SelfLeaveMessage,
    SpreadError,
    aconnect,
    connect,
)
from spread.tools import spflooder, spuser
from tests.support_daemon import RunningDaemon, start_daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    try:
        d = start_daemon(tmp_path_factory.mktemp("live"), "testvm")
    except (RuntimeError, OSError) as e:
        pytest.skip(f"real spread daemon not available: {e}")
    try:
        yield d
    finally:
        d.stop()


def test_blocking_clients_see_membership_and_data_through_the_daemon(
    daemon: RunningDaemon,
) -> None:
    a = connect(str(daemon.port), "la", timeout=5)
    b = connect(f"{daemon.port}@127.0.0.1", "lb", timeout=5)
    assert (a.private_group, b.private_group) == ("#la#testvm", "#lb#testvm")
    a.join("live1")
    first = a.receive()
    assert isinstance(first, MembershipMessage) and first.reason == "join"
    b.join("live1")
    for mbox, me in ((a, 0), (b, 1)):
        m = mbox.receive()
        assert isinstance(m, MembershipMessage)
        assert (m.members, m.mess_type, m.changed_member) == (
            ("#la#testvm", "#lb#testvm"),
            me,
            "#lb#testvm",
        )
        assert m.gid is not None and m.gid.index == 2 and first.gid is not None
        assert m.gid.proc_id == first.gid.proc_id
    a.multicast(AGREED_MESS | SELF_DISCARD, "live1", -7, b"only b")
    a.multicast(SAFE_MESS, "live1", 9, b"both")
    got_b = [b.receive(), b.receive()]
    assert [(m.data, m.mess_type, m.service_type) for m in got_b] == [
        (b"only b", -7, AGREED_MESS | SELF_DISCARD),
        (b"both", 9, SAFE_MESS),
    ]
    own = a.receive()
    assert isinstance(own, RegularMessage) and own.data == b"both"
    b.leave("live1")
    assert isinstance(b.receive(), SelfLeaveMessage)
    left = a.receive()
    assert isinstance(left, MembershipMessage) and left.reason == "leave"
    with pytest.raises(SpreadError) as e:
        connect(str(daemon.port), "la", timeout=5)
    assert e.value.code == REJECT_NOT_UNIQUE
    b.disconnect()
    a.disconnect()


def test_async_client_round_trip(daemon: RunningDaemon) -> None:
    async def run() -> tuple[str, bytes]:
        m = await aconnect(str(daemon.port), "lasync", timeout=5)
        await m.join("live2")
        memb = await m.receive()
        await m.multicast(AGREED_MESS, "live2", 1, b"ping")
        data = await m.receive()
        await m.disconnect()
        assert isinstance(memb, MembershipMessage)
        return memb.reason, data.data

    assert asyncio.run(run()) == ("join", b"ping")


def test_spuser_script_against_the_daemon(daemon: RunningDaemon) -> None:
    r, w = os.pipe()
    os.write(w, b"d\nj live3\nr\ns live3\nhi there\nr\nq\n")
    os.close(w)
    out = io.BytesIO()
    try:
        assert spuser.main(["-u", "lspuser", "-s", str(daemon.port)], r, out) == 0
    finally:
        os.close(r)
    text = out.getvalue().decode()
    assert f"User: connected to {daemon.port} with private group #lspuser#testvm\n" in text
    assert (
        "Received REGULAR membership for group live3 with 1 members, where I am member 0:\n" in text
    )
    assert "Due to the JOIN of #lspuser#testvm\n" in text
    assert (
        "received SAFE message from #lspuser#testvm, of type 1, (endian 0) to 1 groups \n"
        "(9 bytes): hi there\n"
    ) in text
    assert text.endswith("\nBye.\n")


def test_spflooder_pair_with_flow_control_against_the_daemon(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    outs = [io.BytesIO(), io.BytesIO()]
    rcs: list[int] = [-1, -1]

    def flood(i: int) -> None:
        args = ["-s", str(daemon.port), "-u", f"lfl{i}", "-n", "2", "-m", "2000", "-b", "200"]
        rcs[i] = spflooder.main(args, outs[i])

    threads = [threading.Thread(target=flood, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert rcs == [0, 0]
    for o in outs:
        assert (
            o.getvalue()
            .decode()
            .endswith(
                "flooder: completed   2000 messages of 200 bytes\n"
                "flooder: completed multicast of 2000 messages, 200 bytes each.\n"
            )
        )
    assert daemon.alive()
