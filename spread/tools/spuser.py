"""spuser: the interactive Spread test client, with the original's options, menu and output.

Commands come from stdin one line at a time (so it can be scripted); messages from the
daemon are printed as soon as they arrive unless asynchronous reading is disabled ('d').
"""

from __future__ import annotations

import os
import re
import selectors
import sys
from typing import BinaryIO, cast

from spread.client import (
    Mailbox,
    MembershipMessage,
    SpreadError,
    SpreadMessage,
    connect,
    error_line,
)
from spread.client.errors import ShortBuffer
from spread.client.messages import RejectMessage, service_name
from spread.tools.console import QuietStdout, os_bytes_as_latin1
from spread.wire import client as w

MAX_MESSLEN = 102400
MAX_VSSETS = 10
MAX_MEMBERS = 100
COMMAND_LEN = 130  # fgets sizes of the original
LINE_LEN = 200
CONNECT_TIMEOUT = 5.0

MENU = "\n".join(
    [
        "",
        "==========",
        "User Menu:",
        "----------",
        "",
        "\tj <group> -- join a group",
        "\tl <group> -- leave a group",
        "",
        "\ts <group> -- send a message",
        "\tm <group> -- send a multiline message to group. Terminate with empty line",
        "\tb <group> -- send a burst of messages",
        "",
        "\tr -- receive a message (stuck) ",
        "\tp -- poll for a message ",
        "\te -- enable asynchonous read (default)",
        "\td -- disable asynchronous read ",
        "",
        "\tq -- quit",
        "",
    ]
)

HELP = (
    "Usage: spuser\n"
    "\t[-u <user name>]  : unique (in this machine) user name\n"
    "\t[-s <address>]    : either port or port@machine\n"
    "\t[-n <username>]    : username for authentication\n"
    "\t[-p <password>]    : users password\n"
    "\t[-r ]    : use random user name\n"
)


class Bye(Exception):
    """Leave the program (the original calls exit() from wherever it is)."""

    def __init__(self, status: int = 0) -> None:
        super().__init__(status)
        self.status = status


class LineReader:
    """fgets over a raw fd: lines of at most size-1 bytes, our own buffer so select() and
    buffered lines agree."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""
        self.eof = False

    def ready(self) -> bool:
        return b"\n" in self.buf or self.eof

    def fill(self) -> None:
        chunk = os.read(self.fd, 4096)
        if chunk:
            self.buf += chunk
        else:
            self.eof = True

    def fgets(self, size: int) -> bytes | None:
        while True:
            nl = self.buf.find(b"\n", 0, size - 1)
            if nl >= 0:
                line, self.buf = self.buf[: nl + 1], self.buf[nl + 1 :]
                return line
            if len(self.buf) >= size - 1:
                line, self.buf = self.buf[: size - 1], self.buf[size - 1 :]
                return line
            if self.eof:
                if not self.buf:
                    return None
                line, self.buf = self.buf, b""
                return line
            self.fill()


_C_SPACE = re.compile(rb"[ \t\n\v\f\r]+")  # isspace() in the C locale


def _words(line: bytes, limit: int) -> list[str]:
    """sscanf's %s fields after the command letter, at most `limit` (a NUL ends the text)."""
    text = line[2:].split(b"\0", 1)[0] if len(line) > 2 else b""
    return [w.decode("latin-1") for w in _C_SPACE.split(text) if w][:limit]


def _cstr(data: bytes) -> str:
    """What printf("%s") shows of a buffer: up to the first NUL."""
    end = data.find(b"\0")
    return (data if end < 0 else data[:end]).decode("latin-1")


class SpUser:
    def __init__(self, mbox: Mailbox, spread_name: str, infd: int, out: BinaryIO) -> None:
        self.mbox = mbox
        self.spread_name = spread_name
        self.stdin = LineReader(infd)
        self.out = out
        self.num_sent = 0
        self.previous_len = 0
        self.async_read = True
        self.mess = bytearray(MAX_MESSLEN)  # the original reuses one buffer: 'b' shows it
        self.to_exit = False
        self.status = 0

    def p(self, text: str) -> None:
        self.out.write(text.encode("latin-1", "replace"))

    def flush(self) -> None:
        self.out.flush()

    # -- event loop --------------------------------------------------------------------

    def run(self) -> None:
        self.p(MENU)
        self.p("\nUser> ")
        self.flush()
        both = selectors.DefaultSelector()
        both.register(self.stdin.fd, selectors.EVENT_READ, "stdin")
        both.register(self.mbox.fileno(), selectors.EVENT_READ, "mbox")
        typing = selectors.DefaultSelector()  # after 'd' the mailbox is not watched at all
        typing.register(self.stdin.fd, selectors.EVENT_READ, "stdin")
        try:
            while True:
                # one round of the original's event loop: the mailbox first (high priority),
                # then one command, so neither side can starve the other
                mail = self.async_read and self.mbox.has_message()
                line = self.stdin.ready()
                if not (mail or line):
                    sel = both if self.async_read else typing
                    ready = {k.data for k, _ in sel.select(None)}
                    mail = self.async_read and "mbox" in ready
                    if "stdin" in ready:
                        self.stdin.fill()
                        line = self.stdin.ready()
                if mail:
                    self.read_message()
                if line:
                    self.user_command()
        except Bye as e:
            self.status = e.status
        finally:
            self.flush()

    def bye(self) -> None:
        self.to_exit = True
        self.p("\nBye.\n")
        self.flush()
        if not self.mbox.closed:
            self.mbox.disconnect()
        raise Bye

    # -- commands ----------------------------------------------------------------------

    def user_command(self) -> None:
        line = self.stdin.fgets(COMMAND_LEN)
        if line is None:
            self.bye()
            return
        cmd = line[:1]
        if cmd in (b"j", b"l"):
            words = _words(line, 1)
            if not words:
                self.p(" invalid group \n")
            else:
                try:
                    (self.mbox.join if cmd == b"j" else self.mbox.leave)(words[0])
                except SpreadError as e:
                    self.p(error_line(e.code) + "\n")
        elif cmd in (b"s", b"m"):
            groups = _words(line, 10)
            if not groups:
                self.p(" invalid group \n")
            else:
                self.p("enter message: ")
                self.flush()
                text = self._read_message_text(cmd == b"m")
                self._send(w.SAFE_MESS, groups, 1, text)
                self.num_sent += 1
        elif cmd == b"b":
            words = _words(line, 1)
            group = words[0] if words else "dummy_group_name"
            self.p("enter size of each message: ")
            self.flush()
            size_line = self.stdin.fgets(LINE_LEN)
            if size_line is None:
                self.bye()
                return
            self._into_buffer(size_line + b"\0")
            m = re.match(rb"\s*([+-]?\d+)", size_line)
            mess_len = int(m.group(1)) & 0xFFFFFFFF if m else self.previous_len
            mess_len = min(mess_len, MAX_MESSLEN)
            self.previous_len = mess_len
            self.p(f"sending 10 messages of {mess_len} bytes\n")
            for i in range(10):
                self.num_sent += 1
                self._into_buffer(f"mess num {self.num_sent} ".encode() + b"\0")
                self._send(w.FIFO_MESS, [group], 2, bytes(self.mess[:mess_len]))
                self.p(f"sent message {i + 1} (total {self.num_sent})\n")
        elif cmd == b"r":
            self.read_message()
        elif cmd == b"p":
            self.p(f"Polling sais: {self._poll()}\n")
        elif cmd == b"e":
            self.async_read = True
        elif cmd == b"d":
            self.async_read = False
        elif cmd == b"q":
            self.bye()
        else:
            self.p("\nUnknown commnad\n")
            self.p(MENU)
        self.p("\nUser> ")
        self.flush()

    def _poll(self) -> int:
        try:
            return self.mbox.poll()
        except SpreadError as e:
            return e.code

    def _into_buffer(self, data: bytes) -> None:
        self.mess[: len(data)] = data

    def _read_message_text(self, multiline: bool) -> bytes:
        if not multiline:
            text = self.stdin.fgets(LINE_LEN)
            if text is None:
                self.bye()
                return b""
            self._into_buffer(text + b"\0")
            return text
        text = b""
        while len(text) < MAX_MESSLEN:
            chunk = self.stdin.fgets(LINE_LEN)
            if chunk is None:
                self.bye()
                return b""
            if chunk[:1] == b"\n":
                break
            text += chunk
        self._into_buffer(text + b"\0")
        return text

    def _send(self, service: int, groups: list[str], mess_type: int, data: bytes) -> None:
        try:
            self.mbox.multigroup_multicast(service, groups, mess_type, data)
        except SpreadError as e:
            self.p(error_line(e.code) + "\n")
            self.bye()

    # -- receiving ---------------------------------------------------------------------

    def read_message(self) -> None:
        self.p("\n============================\n")
        try:
            try:
                msg = self.mbox.receive(MAX_MEMBERS, MAX_MESSLEN)
            except ShortBuffer:
                self.p("\n========Buffers or Groups too Short=======\n")
                msg = self.mbox.receive(MAX_MEMBERS, MAX_MESSLEN, drop_recv=True)
        except SpreadError as e:
            if not self.to_exit:
                self.p(error_line(e.code) + "\n")
                self.p("\n============================\n")
                self.p("\nBye.\n")
            raise Bye from e
        t = msg.service_type
        ret = len(msg.data)
        if w.is_regular(t):
            self.p(f"received {service_name(t)} ")
            self.p(
                f"message from {msg.sender}, of type {msg.mess_type}, "
                f"(endian {msg.endian_mismatch}) to {msg.num_groups} groups \n"
                f"({ret} bytes): {_cstr(msg.data)}\n"
            )
        elif w.is_membership(t):
            self._print_membership(msg)
        elif isinstance(msg, RejectMessage) or t & w.REJECT_MESS:
            self.p(
                f"REJECTED message from {msg.sender}, of servicetype 0x{t:x} messtype "
                f"{msg.mess_type}, (endian {msg.endian_mismatch}) to {msg.num_groups} groups \n"
                f"({ret} bytes): {_cstr(msg.data)}\n"
            )
        else:
            self.p(f"received message of unknown message type 0x{t:x} with ret {ret}\n")
        self.p("\nUser> ")
        self.flush()

    def _print_membership(self, msg: SpreadMessage) -> None:
        t, sender = msg.service_type, msg.sender
        if w.is_reg_memb(t) and isinstance(msg, MembershipMessage):
            self.p(
                f"Received REGULAR membership for group {sender} with {msg.num_groups} "
                f"members, where I am member {msg.mess_type}:\n"
            )
            for m in msg.groups:
                self.p(f"\t{m}\n")
            gid = msg.gid or w.GroupId(0, 0, 0)
            self.p(f"grp id is {gid.proc_id} {gid.time} {gid.index}\n")
            if t & w.CAUSED_BY_JOIN:
                self.p(f"Due to the JOIN of {msg.changed_member}\n")
            elif t & w.CAUSED_BY_LEAVE:
                self.p(f"Due to the LEAVE of {msg.changed_member}\n")
            elif t & w.CAUSED_BY_DISCONNECT:
                self.p(f"Due to the DISCONNECT of {msg.changed_member}\n")
            elif t & w.CAUSED_BY_NETWORK:
                self.p(f"Due to NETWORK change with {len(msg.vs_sets)} VS sets\n")
                if len(msg.vs_sets) > MAX_VSSETS:
                    self.p(
                        f"BUG: membership message has more then {MAX_VSSETS} vs sets. "
                        "Recompile with larger MAX_VSSETS\n"
                    )
                    self.p(error_line(w.BUFFER_TOO_SHORT) + "\n")
                    raise Bye(1)
                mine = msg.my_vs_set_index
                for i, vs in enumerate(msg.vs_sets):
                    where = "LOCAL" if i == mine else "OTHER"
                    self.p(f"{where} VS set {i} has {len(vs)} members:\n")
                    if len(vs) > MAX_MEMBERS:
                        self.p(
                            f"VS Set has more then {MAX_MEMBERS} members. "
                            "Recompile with larger MAX_MEMBERS\n"
                        )
                        self.p(error_line(w.BUFFER_TOO_SHORT) + "\n")
                        raise Bye(1)
                    for m in vs:
                        self.p(f"\t{m}\n")
        elif t & w.TRANSITION_MESS:
            self.p(f"received TRANSITIONAL membership for group {sender}\n")
        elif t & w.CAUSED_BY_LEAVE:
            self.p(f"received membership message that left group {sender}\n")
        else:
            self.p(f"received incorrecty membership message of type 0x{t:x}\n")


def parse_args(argv: list[str], out: BinaryIO) -> tuple[str, str] | None:
    """(user, spread_name), or None after printing the help (the original exits 0)."""
    user, spread_name = "user", "4803"
    args = list(argv)
    while args:
        a = args.pop(0)
        if a.startswith("-u"):
            if not args:
                break
            user = args.pop(0)
        elif a.startswith("-r"):
            user = ""
        elif a.startswith("-s"):
            if not args:
                break
            spread_name = args.pop(0)
        elif a.startswith("-n") or a.startswith("-p"):
            # Password authentication is not compiled into the stock spuser: accepted, unused.
            if not args:
                break
            args.pop(0)
        else:
            break
    else:
        return user, spread_name
    out.write(HELP.encode())
    out.flush()
    return None


def main(
    argv: list[str] | None = None,
    stdin_fd: int | None = None,
    stdout: BinaryIO | None = None,
    socket_dir: str = "/tmp",
) -> int:
    out = stdout if stdout is not None else cast(BinaryIO, QuietStdout(sys.stdout.buffer))
    infd = stdin_fd if stdin_fd is not None else sys.stdin.fileno()
    args = sys.argv[1:] if argv is None else argv
    parsed = parse_args([os_bytes_as_latin1(a) for a in args], out)
    if parsed is None:
        return 0
    user, spread_name = parsed
    out.write(
        f"Spread library version is {w.SP_MAJOR_VERSION}.{w.SP_MINOR_VERSION}."
        f"{w.SP_PATCH_VERSION}\n".encode()
    )
    try:
        mbox = connect(spread_name, user, 0, True, CONNECT_TIMEOUT, socket_dir=socket_dir)
    except SpreadError as e:
        out.write(f"{error_line(e.code)}\n\nBye.\n".encode())
        out.flush()
        return 0
    out.write(f"User: connected to {spread_name} with private group {mbox.private_group}\n"
              .encode("latin-1", "replace"))
    user_session = SpUser(mbox, spread_name, infd, out)
    try:
        user_session.run()
    except KeyboardInterrupt:
        return 130  # the C program dies silently on SIGINT
    return user_session.status


if __name__ == "__main__":
    sys.exit(main())
