"""wackatrl: the control client of a running wackamole, with the original's options and output.

It owns the command line (`-c -l -f -s`), the socket conversation and the listing format.
The byte layouts live in control.py; reading the config is shared with wackamole (cli.py).
"""

from __future__ import annotations

import getopt
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import TextIO

from wackamole import control
from wackamole.cli import console, load_for_start
from wackamole.control import Op, VifState

USAGE = (
    "Usage:\n"
    "\t-c <filename>   : use filename instead of wackamole.conf\n"
    "\t-f              : tell the local instance to simulate failure\n"
    "\t-s              : tell the local instance to simulate success\n"
    "\t-l              : display the current VIF assignments\n"
    "\n"
)
# The original blocks forever on a silent daemon; give up after this long instead (for the
# whole conversation: a late reply would leave the stream out of step).
REPLY_TIMEOUT = 60.0


class _ReadError(Exception):
    pass


class _TimedOut(_ReadError):
    """The conversation's time is up: a late reply would leave the stream out of step."""


class _Deadline:
    """One time limit shared by every read of the conversation."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def arm(self, sock: socket.socket) -> None:
        left = self.at - time.monotonic()
        if left <= 0:
            raise _TimedOut
        sock.settimeout(left)


def format_listing(vifs: tuple[VifState, ...]) -> str:
    """The `wackatrl -l` table, byte for byte as the x86 original prints it."""
    lines = []
    for vif in vifs:
        owner = "not acquired" if int(vif.owner) == 0 else str(vif.owner)
        lines.append(f"Owner: {owner}")
        p = vif.primary
        lines.append(f"\t*   {_pad5(p.name)}:{p.address}/{control.mask_bits_x86(p.netmask)}")
        for e in vif.extras:
            lines.append(f"\t -> {_pad5(e.name)}:{e.address}/{control.mask_bits_x86(e.netmask)}")
    return "".join(line + "\n" for line in lines)


def _pad5(name: str) -> str:
    """printf's %5s: padded by bytes, not characters."""
    return " " * max(0, 5 - len(os.fsencode(name))) + name


def _read_exact(sock: socket.socket, size: int, deadline: _Deadline) -> bytes:
    chunks = []
    while size > 0:
        deadline.arm(sock)
        try:
            chunk = sock.recv(min(size, 65536))
        except TimeoutError as exc:
            raise _TimedOut from exc
        except OSError as exc:
            raise _ReadError from exc
        if not chunk:
            raise _ReadError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _post(sock: socket.socket, op: Op, err: TextIO, deadline: _Deadline) -> bool:
    """Send -f/-s and read the ack; False if the time is up (no listing request then)."""
    sock.sendall(control.encode_request(op))
    try:
        status = control.decode_ack(_read_exact(sock, 4, deadline))
    except _ReadError as exc:
        err.write("Error on read.")  # no newline, as in the original
        return not isinstance(exc, _TimedOut)
    if status:
        err.write("Error posting failure.")  # the original says this for -s too
    return True


def _get_state(sock: socket.socket, out: TextIO, err: TextIO, deadline: _Deadline) -> None:
    try:
        sock.sendall(control.encode_request(Op.GET_WACK_STATE))
        length = control.decode_state_length(_read_exact(sock, 4, deadline))
        body = _read_exact(sock, length, deadline)
    except (_ReadError, OSError):
        err.write("Error on read.\n")
        return
    out.write(format_listing(control.decode_state_records(body)))


def run(op: Op, path: str, out: TextIO, err: TextIO) -> int:
    """Talk to the daemon at `path`; exit status 0 in every case, as the original."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:  # blocking, as the original: a full backlog makes it wait, not fail
            sock.connect(path)
        except (OSError, ValueError):
            out.write(f"connect to: {path} failed.\nPerhaps wackamole is not running?\n\n")
            return 0
        deadline = _Deadline(REPLY_TIMEOUT)
        try:
            posting = op in (Op.WACK_SERVICE_FAILURE, Op.WACK_SERVICE_SUCCESS)
            if posting and not _post(sock, op, err, deadline):
                err.write("\n")
                return 0
            _get_state(sock, out, err, deadline)
        except OSError:
            err.write("Error on read.\n")
    finally:
        sock.close()
    return 0


def main(
    argv: list[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    resolve_self: Callable[[], str] | None = None,
) -> int:
    out, err = console(out, err)
    args = sys.argv[1:] if argv is None else argv
    try:
        opts, _ = getopt.gnu_getopt(args, "c:fsl")
    except getopt.GetoptError:
        out.write(USAGE)  # the original prints only the usage for a bad option
        return 0
    filename: str | None = None
    op: Op | None = None
    for flag, value in opts:  # the last of -f/-s/-l wins
        if flag == "-c":
            filename = value
        elif flag == "-f":
            op = Op.WACK_SERVICE_FAILURE
        elif flag == "-s":
            op = Op.WACK_SERVICE_SUCCESS
        else:
            op = Op.GET_WACK_STATE
    if op is None:
        out.write(USAGE)
        return 0
    loaded = load_for_start(filename, out, err, resolve_self)
    if isinstance(loaded, int):
        return loaded
    out.flush()
    try:
        return run(op, loaded.control, out, err)
    except BrokenPipeError:  # stdout closed early (| head): end quietly, as the C does
        _quiet_stdout()
        return 0


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
