"""wackatrl: the control client of a running wackamole, with the original's options and output.

It owns the command line (`-c -l -f -s`), the socket conversation and the listing format.
The byte layouts live in control.py; reading the config is shared with wackamole (cli.py).
"""

from __future__ import annotations

import getopt
import socket
import sys
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
# The original blocks forever on a silent daemon; give up after this long instead.
REPLY_TIMEOUT = 60.0


class _ReadError(Exception):
    pass


def format_listing(vifs: tuple[VifState, ...]) -> str:
    """The `wackatrl -l` table, byte for byte as the x86 original prints it."""
    lines = []
    for vif in vifs:
        owner = "not acquired" if int(vif.owner) == 0 else str(vif.owner)
        lines.append(f"Owner: {owner}")
        p = vif.primary
        lines.append(f"\t*   {p.name:>5}:{p.address}/{control.mask_bits_x86(p.netmask)}")
        for e in vif.extras:
            lines.append(f"\t -> {e.name:>5}:{e.address}/{control.mask_bits_x86(e.netmask)}")
    return "".join(line + "\n" for line in lines)


def _read_exact(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size > 0:
        try:
            chunk = sock.recv(min(size, 65536))
        except OSError as exc:
            raise _ReadError from exc
        if not chunk:
            raise _ReadError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _post(sock: socket.socket, op: Op, err: TextIO) -> None:
    sock.sendall(control.encode_request(op))
    try:
        status = control.decode_ack(_read_exact(sock, 4))
    except _ReadError:
        err.write("Error on read.")  # no newline, as in the original
        return
    if status:
        err.write("Error posting failure.")  # the original says this for -s too


def _get_state(sock: socket.socket, out: TextIO, err: TextIO) -> None:
    try:
        sock.sendall(control.encode_request(Op.GET_WACK_STATE))
        length = control.decode_state_length(_read_exact(sock, 4))
        body = _read_exact(sock, length)
    except (_ReadError, OSError):
        err.write("Error on read.\n")
        return
    out.write(format_listing(control.decode_state_records(body)))


def run(op: Op, path: str, out: TextIO, err: TextIO) -> int:
    """Talk to the daemon at `path`; exit status 0 in every case, as the original."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(REPLY_TIMEOUT)
        try:
            sock.connect(path)
        except (OSError, ValueError):
            out.write(f"connect to: {path} failed.\nPerhaps wackamole is not running?\n\n")
            return 0
        try:
            if op in (Op.WACK_SERVICE_FAILURE, Op.WACK_SERVICE_SUCCESS):
                _post(sock, op, err)
            _get_state(sock, out, err)
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
    return run(op, loaded.control, out, err)


if __name__ == "__main__":
    sys.exit(main())
