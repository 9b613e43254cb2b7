"""Replay a captured client scenario (tests/vectors/client/*.json) against a running daemon.

Client→daemon frames are sent as captured, in the capture's global order; every
daemon→client frame must arrive byte for byte, with the per-run fields masked: gid times in
membership bodies and anonymous private names (learned from our accept and substituted back).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import time
from pathlib import Path
from typing import Any

from tests.support_daemon import RunningDaemon

REG_MEMB, TRANSITION = 0x1000, 0x2000
ANON = re.compile(rb"^#r\d{1,4}-\d+#")


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def recv_exact(s: socket.socket, n: int, timeout: float = 5.0) -> bytes:
    s.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise AssertionError(f"EOF after {len(buf)} of {n} bytes: {buf.hex()}")
        buf += chunk
    return buf


def expect_close(s: socket.socket, timeout: float = 3.0) -> None:
    s.settimeout(timeout)
    try:
        extra = s.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return
    assert extra == b"", f"expected EOF, got {extra.hex()}"


def mask_times(frame: bytes) -> bytes:
    """Zero gid.time (and nothing else) in membership and transitional bodies."""
    if len(frame) < 48:
        return frame
    t, ng = struct.unpack_from("<I", frame)[0], struct.unpack_from("<i", frame, 36)[0]
    if t & 0x00400000 or not t & (REG_MEMB | TRANSITION):
        return frame
    body = 48 + 32 * ng
    if len(frame) >= body + 8:
        frame = frame[: body + 4] + b"\0\0\0\0" + frame[body + 8 :]
    return frame


def _field(name: bytes) -> bytes:
    return name.ljust(32, b"\0")


class Replayer:
    def __init__(self, daemon: RunningDaemon, scenario: dict[str, Any]) -> None:
        self.d = daemon
        self.sc = scenario
        self.socks: dict[str, socket.socket] = {}
        self.subst: dict[bytes, bytes] = {}  # captured anonymous name -> ours
        self.anon_conns: set[str] = set()
        self.checked = 0

    def _sock(self, conn: dict[str, Any]) -> socket.socket:
        cid = conn["id"]
        if cid not in self.socks:
            self.socks[cid] = self.d.connect(conn["transport"])
        return self.socks[cid]

    def _sub(self, data: bytes) -> bytes:
        for old, new in self.subst.items():
            data = data.replace(_field(old), _field(new))
        return data

    def run(self) -> None:
        frames = [(f["seq"], c, f) for c in self.sc["connections"] for f in c["frames"]]
        frames.sort(key=lambda x: x[0])
        try:
            for _, conn, f in frames:
                self.step(conn, f)
        finally:
            for s in self.socks.values():
                with contextlib.suppress(OSError):
                    s.close()

    def step(self, conn: dict[str, Any], f: dict[str, Any]) -> None:
        cid = conn["id"]
        data = bytes.fromhex(f["hex"])
        if f["dir"] == "c2d":
            s = self._sock(conn)
            if f.get("event") == "close":
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_WR)  # keep reading: the daemon's close comes next
                return
            if self._is_anonymous_hello(data):
                self.anon_conns.add(cid)
            if "0.3 s later" in f.get("note", ""):
                time.sleep(0.3)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                s.sendall(self._sub(data))
            return
        s = self._sock(conn)
        if f.get("event") == "close":
            expect_close(s)
            self.checked += 1
            return
        if cid in self.anon_conns and data[:1] == b"\x01" and ANON.match(data[5:]):
            self._anon_accept(s, data)
            return
        got = recv_exact(s, len(data))
        want = self._sub(data)
        where = f"{cid} seq {f['seq']} ({f.get('note', '')[:80]})"
        assert mask_times(got) == mask_times(want), (
            f"{where}:\n got  {got.hex()}\n want {want.hex()}"
        )
        self.checked += 1

    @staticmethod
    def _is_anonymous_hello(data: bytes) -> bool:
        if len(data) < 4 or data[0] < 3:
            return False
        at = 3 if data[0] * 10000 + data[1] * 100 > 31400 else 2
        return len(data) == at + 2 and data[at + 1] == 0

    def _anon_accept(self, s: socket.socket, want: bytes) -> None:
        head = recv_exact(s, 5)
        assert head[:4] == want[:4]
        name = recv_exact(s, head[4])
        assert ANON.match(name) and name.endswith(b"#" + self.sc["daemon_name"].encode()), name
        assert len(name.split(b"#")[1]) <= 9
        self.subst[want[5:]] = name
        self.checked += 1
