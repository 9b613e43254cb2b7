"""The client library, blocking and asyncio, replays every captured libspread session: it
sends exactly the captured client bytes and reports what SP_receive reported, line for line."""

from __future__ import annotations

import asyncio
import select
from pathlib import Path

import pytest

from spread.client import (
    AsyncMailbox,
    Mailbox,
    MembershipMessage,
    SpreadError,
    SpreadMessage,
    aconnect,
    connect,
)
from tests.support_client import ReplayDaemon, load_scenario

SCENARIOS = ["A1_connect", "A2_rejects", "A3_membership", "A4_multicast", "A4_multicast_large"]
SCENARIOS += ["A5_partition_merge"]


def recv_line(slot: str, msg: SpreadMessage) -> str:
    """The capture driver's RECV line for a message, built from our typed message."""
    line = (
        f"RECV {slot} ret={len(msg.data)} svc=0x{msg.service_type:08x} sender={msg.sender} "
        f"ng={msg.num_groups} mess_type={msg.mess_type} endian={msg.endian_mismatch} "
        f"groups=[{','.join(msg.groups)}]"
    )
    if isinstance(msg, MembershipMessage) and msg.gid is not None:
        g = msg.gid
        line += (
            f" memb_info_ret=1 gid={g.proc_id},{g.time},{g.index} changed={msg.changed_member}"
            f" num_vs_sets={len(msg.vs_sets)} my_vs_members={len(msg.my_vs_set)}"
            f" vs_sets_ret={len(msg.vs_sets)} my_vs_index={msg.my_vs_set_index}"
        )
        for i, s in enumerate(msg.vs_sets):
            line += f" vs{i}=[{','.join(s)}]"
    if len(msg.data) <= 64:
        line += f" data={msg.data.hex()}"
    else:
        line += f" data_len={len(msg.data)}"
    return line


def _payload(spec: str) -> bytes:
    if spec == "-":
        return b""
    if spec.startswith("="):
        return spec[1:].encode()
    return bytes(i & 0xFF for i in range(int(spec[1:])))


def _cases() -> list[tuple[str, str]]:
    out = []
    for sc in SCENARIOS:
        for c in load_scenario(sc)["connections"]:
            if c["client"].startswith("libspread"):
                out.append((sc, c["id"]))
    return out


CASES = _cases()


def _script(scenario: dict, conn_id: str) -> list[tuple[int, list[str], list[str]]]:
    """(step index, split command, output) of the steps that belong to one connection."""
    actor, slot = conn_id.split("/")
    out = []
    for step in scenario["steps"]:
        words = step["command"].split()
        if step["actor"] != actor or len(words) < 2 or words[1] != slot[1:]:
            continue
        out.append((step["index"], words, step["output"]))
    return out


def _spread_name(spec: str, daemon: ReplayDaemon) -> str:
    return f"{daemon.port}@127.0.0.1" if "@" in spec else spec


def _connect_args(words: list[str]) -> tuple[str | None, bool, int]:
    name = {"_": "", "-": None}.get(words[3], words[3])
    return name, words[4] == "1", int(words[5]) if len(words) > 5 else 0


def _setup(tmp_path: Path, scenario: str, conn_id: str) -> tuple[dict, ReplayDaemon]:
    sc = load_scenario(scenario)
    conn = next(c for c in sc["connections"] if c["id"] == conn_id)
    where = "tcp" if conn["transport"] == "tcp" else tmp_path / "24913"
    daemon = ReplayDaemon(conn, where)
    daemon.start()
    return sc, daemon


@pytest.mark.parametrize("scenario,conn_id", CASES, ids=[f"{s}:{c}" for s, c in CASES])
def test_blocking_mailbox_replays_captured_session(
    tmp_path: Path, scenario: str, conn_id: str
) -> None:
    sc, daemon = _setup(tmp_path, scenario, conn_id)
    mbox: Mailbox | None = None
    for index, words, output in _script(sc, conn_id):
        daemon.advance(index)
        cmd, slot = words[0], words[1]
        got: list[str] = []
        if cmd == "c":
            name, memb, prio = _connect_args(words)
            try:
                mbox = connect(
                    _spread_name(words[2], daemon), name, prio, memb, 5, socket_dir=str(tmp_path)
                )
                got.append(f"CONNECT {slot} ret=1 private_group={mbox.private_group}")
            except SpreadError as e:
                got.append(f"CONNECT {slot} ret={e.code} private_group=")
        elif cmd in ("j", "l"):
            assert mbox is not None
            ret = (mbox.join if cmd == "j" else mbox.leave)(words[2])
            got.append(f"{'JOIN' if cmd == 'j' else 'LEAVE'} {slot} {words[2]} ret={ret}")
        elif cmd == "m":
            assert mbox is not None
            svc, mt, data, groups = int(words[2], 16), int(words[3]), _payload(words[4]), words[5:]
            ret = mbox.multigroup_multicast(svc, groups, mt, data)
            got.append(
                f"MCAST {slot} svc=0x{svc:x} mess_type={mt} len={len(data)} "
                f"ng={len(groups)} ret={ret}"
            )
        elif cmd == "r":
            assert mbox is not None
            got += [recv_line(slot, mbox.receive()) for _ in range(int(words[2]))]
        elif cmd == "p":
            assert mbox is not None
            while mbox.has_message() or select.select([mbox], [], [], 0.05)[0]:
                got.append(recv_line(slot, mbox.receive()))
        elif cmd == "d":
            assert mbox is not None
            got.append(f"DISCONNECT {slot} ret={mbox.disconnect()}")
        assert got == [o for o in output if not o.startswith("SP_error")], words
    daemon.advance(1 << 30)
    if mbox is not None and not mbox.closed:
        mbox.kill()  # the capture's process was killed: the socket just closes
    daemon.join(5)
    assert daemon.errors == []


@pytest.mark.parametrize("scenario,conn_id", CASES, ids=[f"{s}:{c}" for s, c in CASES])
def test_async_mailbox_replays_captured_session(
    tmp_path: Path, scenario: str, conn_id: str
) -> None:
    sc, daemon = _setup(tmp_path, scenario, conn_id)

    async def run() -> None:
        mbox: AsyncMailbox | None = None
        for index, words, output in _script(sc, conn_id):
            daemon.advance(index)
            cmd, slot = words[0], words[1]
            got: list[str] = []
            if cmd == "c":
                name, memb, prio = _connect_args(words)
                try:
                    mbox = await aconnect(
                        _spread_name(words[2], daemon), name, prio, memb, 5, str(tmp_path)
                    )
                    got.append(f"CONNECT {slot} ret=1 private_group={mbox.private_group}")
                except SpreadError as e:
                    got.append(f"CONNECT {slot} ret={e.code} private_group=")
            elif cmd in ("j", "l"):
                assert mbox is not None
                ret = await (mbox.join if cmd == "j" else mbox.leave)(words[2])
                got.append(f"{'JOIN' if cmd == 'j' else 'LEAVE'} {slot} {words[2]} ret={ret}")
            elif cmd == "m":
                assert mbox is not None
                svc, mt, data = int(words[2], 16), int(words[3]), _payload(words[4])
                ret = await mbox.multigroup_multicast(svc, words[5:], mt, data)
                got.append(
                    f"MCAST {slot} svc=0x{svc:x} mess_type={mt} len={len(data)} "
                    f"ng={len(words) - 5} ret={ret}"
                )
            elif cmd == "r":
                assert mbox is not None
                for _ in range(int(words[2])):
                    got.append(recv_line(slot, await mbox.receive()))
            elif cmd == "p":
                assert mbox is not None
                while True:
                    try:
                        msg = await asyncio.wait_for(mbox.receive(), 0.05)
                    except TimeoutError:
                        break
                    got.append(recv_line(slot, msg))
            elif cmd == "d":
                assert mbox is not None
                got.append(f"DISCONNECT {slot} ret={await mbox.disconnect()}")
            assert got == [o for o in output if not o.startswith("SP_error")], words
        daemon.advance(1 << 30)
        if mbox is not None and not mbox.closed:
            mbox.kill()

    asyncio.run(run())
    daemon.join(5)
    assert daemon.errors == []
