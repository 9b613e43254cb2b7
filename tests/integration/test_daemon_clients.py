"""Clients other than the captured C ones: a big-endian (Java-style) client, both transports."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from spread.wire import client as wire
from tests.integration.rawclient import Client, recv_exact
from tests.support_daemon import RunningDaemon, start_daemon


def test_big_endian_client_gets_little_endian_replies_with_its_hint_kept(
    daemon: RunningDaemon,
) -> None:
    """The Java exchange of client reference §12, against the real daemon over TCP."""
    s = daemon.connect("tcp")
    s.sendall(bytes.fromhex("0404000105") + b"juser")
    assert recv_exact(s, 6) == bytes.fromhex("054e554c4c20")
    s.sendall(b"NULL".ljust(90, b"\0"))
    assert recv_exact(s, 18) == bytes.fromhex("010500010d") + b"#juser#testvm"
    name = b"#juser#testvm".ljust(32, b"\0")
    group = b"wack1".ljust(32, b"\0")
    s.sendall(bytes.fromhex("00010000") + name + bytes.fromhex("000000010000000000000000") + group)
    memb = recv_exact(s, 136)
    assert memb[:4] == bytes.fromhex("80110080") and memb[4:36] == group
    assert memb[36:48] == bytes.fromhex("010000008000008038000000")
    assert memb[48:80] == name and memb[80:84] == bytes.fromhex("8c73cf9b")
    head = bytes.fromhex("00000010") + name + bytes.fromhex("000000010000010000000005")
    s.sendall(head + group + b"hello")
    echo = recv_exact(s, 85)
    assert echo[:4] == bytes.fromhex("90000080")
    assert echo[36:48] == bytes.fromhex("010000000000010005000000")  # hint untouched
    assert echo[48:] == group + b"hello"
    s.close()


def test_ip_auth_follows_spread_access_ip(tmp_path: Path) -> None:
    (tmp_path / "spread.access_ip").write_text("local\n")  # TCP from 127/8, no unix line
    d = start_daemon(tmp_path, extra_conf="AllowedAuthMethods = IP\n")
    try:
        ok = Client(d, "tcpuser", transport="tcp", auth=("IP",))
        ok.close()
        with pytest.raises(ConnectionRefusedError) as refused:
            Client(d, "unixuser", transport="unix", auth=("IP",))
        assert refused.value.args[0] == wire.REJECT_AUTH
        s = d.connect("tcp")
        s.sendall(bytes.fromhex("0500010105") + b"user1")
        assert recv_exact(s, 4) == b"\x03IP "  # the list names only IP
        s.close()
    finally:
        assert d.stop() == 0


def test_configured_peer_brings_in_the_real_ring_engine(tmp_path: Path) -> None:
    """With a second daemon in the config (absent here), the daemon runs the ring engine on
    UDP; clients wait for its first ring, then work as with one daemon."""
    # the absent peer is on loopback: no test traffic may leave the host
    d = start_daemon(tmp_path, "d1", peers=(("d2", "127.0.0.2"),))
    try:
        c = Client(d, "ua")
        c.join("g")
        m = c.recv()
        assert m.type == wire.REG_MEMB_MESS | wire.CAUSED_BY_JOIN and m.groups == ("#ua#d1",)
        c.mcast(["g"], b"safe one", wire.SAFE_MESS)
        assert c.recv().data == b"safe one"
        c.disconnect()
    finally:
        assert d.stop() == 0


def test_membership_log_file_records_start_ring_and_sessions(tmp_path: Path) -> None:
    d = start_daemon(tmp_path, membership_log=True)
    try:
        c = Client(d, "logged")
        c.mcast(["nobody"], b"x")
        c.disconnect()
    finally:
        assert d.stop() == 0
    # written after the chroot to RuntimeDir when run as root, as the original does
    where = tmp_path / "run" if os.geteuid() == 0 else tmp_path
    assert not (os.geteuid() == 0 and (tmp_path / "testvm").exists())
    lines = (where / "testvm").read_text().splitlines()
    kinds = [line[0] for line in lines]
    assert kinds[:2] == ["B", "M"] and "C" in kinds and "D" in kinds
    connect = next(line for line in lines if line.startswith("C") and "logged" in line)
    disconnect = next(line for line in lines if line.startswith("D") and "logged" in line)
    assert connect.split()[-1] == "logged"
    assert disconnect.split()[-1] == "0"  # messages still queued to it: none


def test_session_lines_use_the_originals_words_when_session_logging_is_on(
    tmp_path: Path,
) -> None:
    d = start_daemon(tmp_path, extra_conf="DebugFlags = { PRINT EXIT SESSION }\n")
    try:
        c = Client(d, "talker")
        c.disconnect()
        gone = Client(d, "dropper")
        gone.sock.close()  # no goodbye: the daemon kills the session
        deadline = time.monotonic() + 5
        while "Sess_kill" not in d.output() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        assert d.stop() == 0
    out = d.output()
    assert re.search(r"Sess_session_authorized: Accepting with private name talker on "
                     r"mailbox \d+\n", out)
    assert re.search(r"Sess_read: disconnecting session talker \( mailbox \d+ \)\n", out)
    assert re.search(r"Sess_kill: killing session dropper \( mailbox \d+ \)\n", out)
