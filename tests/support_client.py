"""Fake daemons for client-side tests: a replayer of captured streams and a tiny one-host
daemon good enough to drive spuser/spflooder. Both run in a thread on a unix socket or TCP."""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from spread.wire import client as w

VECTORS = Path(__file__).parent / "vectors" / "client"


def load_scenario(name: str) -> dict:
    return json.loads((VECTORS / f"{name}.json").read_text())


def mask_kill_junk(frame: bytes) -> bytes:
    """Zero the uninitialised bytes after the NUL of a KILL's group field."""
    if len(frame) < 80 or not w.frame_header(frame)[0] & w.KILL_MESS:
        return frame
    field_ = frame[48:80]
    end = field_.find(b"\0")
    if end < 0:
        return frame
    return frame[:48] + field_[:end] + b"\0" * (32 - end) + frame[80:]


def _listen(where: str | Path) -> socket.socket:
    """A listening socket: a path means unix socket, "tcp" means 127.0.0.1 on a free port."""
    if str(where) == "tcp":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(where))
    s.listen(8)
    return s


class ReplayDaemon(threading.Thread):
    """Plays the daemon side of one captured connection: sends its d2c frames and checks that
    the client sends exactly its c2d frames (KILL junk masked), in capture order."""

    def __init__(self, conn: dict, where: str | Path, timeout: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.frames = conn["frames"]
        self.listener = _listen(where)
        self.timeout = timeout
        self.errors: list[str] = []
        self.received: list[bytes] = []
        self._step = -1 if any("step" in f for f in self.frames) else 1 << 30
        self._cond = threading.Condition()
        self._next = 0

    def advance(self, step: int) -> None:
        """The client is now doing scenario step `step`: send what the capture had sent by
        then, and return once the replay waits for the client (or is done)."""
        with self._cond:
            self._step = step
            self._cond.notify_all()
            self._cond.wait_for(self._idle, self.timeout)

    def _idle(self) -> bool:
        if self._next >= len(self.frames):
            return True
        f = self.frames[self._next]
        return f["dir"] == "c2d" or f.get("step", -1) > self._step

    def _at(self, i: int) -> None:
        with self._cond:
            self._next = i
            self._cond.notify_all()

    def _wait_step(self, step: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._step >= step, self.timeout)

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    def _recv_exact(self, s: socket.socket, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = s.recv(n - len(out))
            if not chunk:
                break
            out += chunk
        return out

    def run(self) -> None:
        self.listener.settimeout(self.timeout)
        try:
            s, _ = self.listener.accept()
        except OSError as e:
            self.errors.append(f"no client connected: {e}")
            return
        s.settimeout(self.timeout)
        try:
            for i, f in enumerate(self.frames):
                self._at(i)
                raw = bytes.fromhex(f["hex"])
                if f["dir"] == "d2c":
                    self._wait_step(f.get("step", -1))
                    if f.get("event") == "close":
                        s.close()
                        return
                    s.sendall(raw)
                    continue
                if f.get("event") == "close":
                    try:
                        rest = s.recv(1)
                    except ConnectionResetError:  # closed with our bytes unread: also an end
                        rest = b""
                    if rest:
                        self.errors.append(f"frame {i}: expected EOF, got {rest.hex()}")
                    continue
                got = self._recv_exact(s, len(raw))
                self.received.append(got)
                if mask_kill_junk(got) != mask_kill_junk(raw):
                    self.errors.append(f"frame {i} ({f['note'][:40]}): {got.hex()} != {raw.hex()}")
                    return
        except OSError as e:
            self.errors.append(f"socket error: {e}")
        finally:
            self._at(len(self.frames))
            with contextlib.suppress(OSError):
                s.close()
            self.listener.close()


# ---------------------------------------------------------------------------------------------


@dataclass
class _Session:
    sock: socket.socket
    buf: bytearray = field(default_factory=bytearray)
    name: str = ""
    membership: bool = True
    hello: w.Hello | None = None
    stage: str = "hello"

    @property
    def private_group(self) -> str:
        return w.private_group_name(self.name, MiniDaemon.NAME)


class MiniDaemon(threading.Thread):
    """A toy single daemon named "fake": handshake, join/leave/kill membership messages and
    delivery in arrival order. Just enough for tool tests; not the real daemon."""

    NAME = "fake"
    GID = w.GroupId(0x1234, 0x6B000000, 0)

    def __init__(self, where: str | Path) -> None:
        super().__init__(daemon=True)
        self.listener = _listen(where)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ)
        self.sessions: dict[socket.socket, _Session] = {}
        self.groups: dict[str, list[_Session]] = {}
        self.index: dict[str, int] = {}
        self._halt = threading.Event()
        self._counter = 0
        self.log: list[tuple[str, str]] = []  # (private group, what it did)

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    def saw(self, entry: tuple[str, str], timeout: float = 5.0) -> bool:
        """Wait until the log has `entry` (the daemon thread works asynchronously)."""
        deadline = time.monotonic() + timeout
        while entry not in self.log:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def run(self) -> None:
        while not self._halt.is_set():
            for key, _ in self.sel.select(0.05):
                if key.fileobj is self.listener:
                    s, _ = self.listener.accept()
                    self.sessions[s] = _Session(s)
                    self.sel.register(s, selectors.EVENT_READ)
                else:
                    self._readable(key.fileobj)  # type: ignore[arg-type]
        for s in list(self.sessions):
            s.close()
        self.listener.close()

    def _readable(self, s: socket.socket) -> None:
        ses = self.sessions[s]
        try:
            chunk = s.recv(262144)
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(ses)
            return
        ses.buf += chunk
        self._advance(ses)

    def _advance(self, ses: _Session) -> None:
        if ses.stage == "hello":
            got = w.decode_hello(ses.buf)
            if isinstance(got, w.NeedMore):
                return
            if isinstance(got, w.Malformed):
                ses.sock.sendall(w.encode_reject_byte(got.reject or w.REJECT_ILLEGAL_NAME))
                self._drop(ses, notify=False)
                return
            name = got.name
            if not name:
                self._counter += 1
                name = f"r{self._counter}-1"
            if any(o.name == name for o in self.sessions.values() if o.stage != "hello"):
                ses.sock.sendall(w.encode_reject_byte(w.REJECT_NOT_UNIQUE))
                self._drop(ses, notify=False)
                return
            ses.name, ses.membership, ses.hello = name, got.membership, got
            del ses.buf[: got.size]
            ses.sock.sendall(w.encode_auth_list(["NULL"]))
            ses.stage = "auth"
        if ses.stage == "auth":
            if len(ses.buf) < w.AUTH_CHOICE_LEN:
                return
            del ses.buf[: w.AUTH_CHOICE_LEN]
            ses.sock.sendall(w.encode_accept(ses.private_group))
            ses.stage = "active"
        frames, end = w.split_frames(ses.buf, 0, max_body=None)
        for a, b in frames:
            if ses.stage != "active":
                return
            self._message(ses, bytes(ses.buf[a:b]))
        del ses.buf[:end]

    def _send(self, ses: _Session, data: bytes) -> None:
        with contextlib.suppress(OSError):
            ses.sock.sendall(data)

    def _members(self, group: str) -> list[str]:
        return sorted(m.private_group for m in self.groups.get(group, []))

    def _notify(self, group: str, cause: int, who: str, skip: _Session | None = None) -> None:
        self.index[group] = self.index.get(group, 0) + 1
        gid = w.GroupId(self.GID.proc_id, self.GID.time, self.index[group])
        frame = w.encode_membership(cause, group, self._members(group), gid, [[who]])
        for m in self.groups.get(group, []):
            if m is not skip and m.membership:
                self._send(m, frame)

    def _message(self, ses: _Session, frame: bytes) -> None:
        msg, _ = w.decode_message(frame, d2c=False)
        if msg.type & w.JOIN_MESS:
            g = msg.groups[0]
            self.log.append((ses.private_group, f"join {g}"))
            if ses not in self.groups.setdefault(g, []):
                self.groups[g].append(ses)
                self._notify(g, w.CAUSED_BY_JOIN, ses.private_group)
        elif msg.type & w.LEAVE_MESS:
            g = msg.groups[0]
            self.log.append((ses.private_group, f"leave {g}"))
            if ses in self.groups.get(g, []):
                self.groups[g].remove(ses)
                if ses.membership:
                    self._send(ses, w.encode_self_leave(g))
                if self.groups[g]:
                    self._notify(g, w.CAUSED_BY_LEAVE, ses.private_group)
                else:
                    del self.groups[g]
                    self.index.pop(g, None)
        elif msg.type & w.KILL_MESS:
            self.log.append((ses.private_group, "kill"))
            self._drop(ses)
        else:
            self.log.append((ses.private_group, f"multicast {','.join(msg.groups)}"))
            targets: list[_Session] = []
            for g in msg.groups:
                if g.startswith("#"):
                    targets += [o for o in self.sessions.values() if o.private_group == g]
                else:
                    targets += self.groups.get(g, [])
            seen = set()
            for t in targets:
                if id(t) in seen or (t is ses and msg.type & w.SELF_DISCARD):
                    continue
                seen.add(id(t))
                self._send(t, frame)

    def _drop(self, ses: _Session, notify: bool = True) -> None:
        if ses.sock not in self.sessions:
            return
        del self.sessions[ses.sock]
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(ses.sock)
        ses.stage = "gone"
        with contextlib.suppress(OSError):
            ses.sock.close()
        if not notify:
            return
        for g in sorted(self.groups):
            if ses in self.groups[g]:
                self.groups[g].remove(ses)
                if self.groups[g]:
                    self._notify(g, w.CAUSED_BY_DISCONNECT, ses.private_group)
                else:
                    del self.groups[g]
                    self.index.pop(g, None)
