"""spflooder: the Spread flooding test client, with the original's flags and output.

The original prints no timing; `-t` (an addition of this port) appends one throughput line
after the usual completion line, for benchmarks.
"""

from __future__ import annotations

import re
import struct
import sys
import time
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
from spread.client.messages import service_name
from spread.tools.console import QuietStdout, os_bytes_as_latin1
from spread.wire import client as w

MAX_MESSLEN = 100000
FLOODER_MAX_GROUPS = 100
GROUP = "flooder"

HELP = (
    "Usage: spflooder\n"
    "\t[-u <user name>]     : unique (in this machine) user name\n"
    "\t[-m <num messages>]  : number of messages\n"
    "\t[-n <num members>]   : number of group members to wait for (also turn on multi-sender FC)\n"
    "\t[-b <num bytes>]     : number of bytes per message 1-100,000\n"
    "\t[-s <spread name>]   : either port or port@machine\n"
    "\t[-ro]   \t\t: read  only (no multicast)\n"
    "\t[-wo]   \t\t: write only (no receive)\n"
)


class Usage(Exception):
    """Print the help and exit 1, as the original does for any bad option."""


class Quit(Exception):
    """Stop with an exit status after the message already printed."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Options:
    def __init__(self) -> None:
        self.user = "flooder"
        self.spread_name = "4803"
        self.num_bytes = 1000
        self.num_messages = 10000
        self.num_members = 0
        self.read_only = False
        self.write_only = False
        self.timing = False


def _scan_int(text: str, default: int) -> int:
    """sscanf("%d") into a C int: a leading integer (wrapped to 32 bits as glibc leaves an
    over-long one), or the old value when there is none."""
    m = re.match(r"[ \t\n\v\f\r]*([+-]?[0-9]+)", text)
    if not m:
        return default
    v = int(m.group(1)) & 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def parse_args(argv: list[str]) -> tuple[Options, str]:
    """Options and any text printed before the help; raises Usage."""
    o = Options()
    args = list(argv)
    valued = {"-u", "-b", "-m", "-n", "-s"}
    while args:
        a = args.pop(0)
        key = next((k for k in ("-u", "-b", "-m", "-n", "-s") if a.startswith(k)), None)
        if key in valued:
            if not args:
                raise Usage
            v = args.pop(0)
            if key == "-u":
                o.user = v
            elif key == "-b":
                o.num_bytes = _scan_int(v, o.num_bytes)
            elif key == "-m":
                o.num_messages = _scan_int(v, o.num_messages)
            elif key == "-n":
                o.num_members = _scan_int(v, o.num_members)
            else:
                o.spread_name = v
        elif a.startswith("-ro"):
            o.read_only, o.write_only = True, False
        elif a.startswith("-wo"):
            o.write_only, o.read_only = True, False
        elif a == "-t":
            o.timing = True
        else:
            raise Usage
    if o.num_members > FLOODER_MAX_GROUPS:
        return o, f"Too many members. The max is {FLOODER_MAX_GROUPS}\n"
    if o.num_members and o.num_bytes < 4:
        # each message carries its sender's index in its first 4 bytes; the original then
        # reads stale bytes as an index and writes out of bounds
        return o, "flooder: -n needs messages of at least 4 bytes (-b 4 or more)\n"
    return o, ""


class Flooder:
    def __init__(self, o: Options, mbox: Mailbox, out: BinaryIO) -> None:
        self.o = o
        self.mbox = mbox
        self.out = out
        self.send_counter = 0
        self.recv_counters = [0] * FLOODER_MAX_GROUPS
        self.lowest_recv_counter = 0
        # one byte over the library's limit is enough to get its MESSAGE_TOO_LONG
        self.mess = bytearray(min(max(o.num_bytes, 4), w.MAX_MESSAGE_BODY_LEN + 1))

    def p(self, text: str) -> None:
        self.out.write(text.encode("latin-1", "replace"))

    def fail(self, code: int) -> int:
        self.p(error_line(code) + "\n")
        self.out.flush()
        return 1

    def _receive(self) -> SpreadMessage:
        try:
            return self.mbox.receive(FLOODER_MAX_GROUPS, MAX_MESSLEN)
        except ShortBuffer:
            self.p("\n========Buffers or Groups too Short=======\n")
            return self.mbox.receive(FLOODER_MAX_GROUPS, MAX_MESSLEN, drop_recv=True)

    def wait_for_members(self) -> int | None:
        """Print what arrives until the group has -n members; returns my index."""
        joined, index = 0, -1
        while joined < self.o.num_members:
            try:
                msg = self.mbox.receive(FLOODER_MAX_GROUPS, MAX_MESSLEN)
            except ShortBuffer:
                self.p("\n========Buffers or Groups too Short=======\n")
                self.p("Should NOT happen in wait for members! Program quitting\n")
                raise Quit(1) from None
            t, ret = msg.service_type, len(msg.data)
            if w.is_regular(t):
                self.p(f"received {service_name(t)} ")
                self.p(
                    f"message during wait for members, from {msg.sender}, of type "
                    f"{msg.mess_type}, (endian {msg.endian_mismatch}) to {msg.num_groups} "
                    f"groups \n({ret} bytes): {_cstr(msg.data)}\n"
                )
            elif w.is_membership(t):
                if w.is_reg_memb(t) and isinstance(msg, MembershipMessage):
                    self.p(
                        f"Received REGULAR membership for group {msg.sender} with "
                        f"{msg.num_groups} members, where I am member {msg.mess_type}:\n"
                    )
                    for m in msg.groups:
                        self.p(f"\t{m}\n")
                    joined, index = msg.num_groups, msg.mess_type
                elif t & w.TRANSITION_MESS:
                    self.p(f"received TRANSITIONAL membership for group {msg.sender}\n")
                elif t & w.CAUSED_BY_LEAVE:
                    self.p(f"received membership message that left group {msg.sender}\n")
                else:
                    self.p(f"received incorrecty membership message of type 0x{t:x}\n")
            elif t & w.REJECT_MESS:
                self.p(
                    f"REJECTED message from {msg.sender}, of servicetype 0x{t:x} messtype "
                    f"{msg.mess_type}, (endian {msg.endian_mismatch}) to {msg.num_groups} "
                    f"groups \n({ret} bytes): {_cstr(msg.data)}\n"
                )
            else:
                self.p(f"received message of unknown message type 0x{t:x} with ret {ret}\n")
        return index

    def _count(self, msg: SpreadMessage) -> bool:
        """Multi-sender flow control bookkeeping; True while we must keep reading."""
        if len(msg.data) >= 4 and w.is_regular(msg.service_type):
            sender_index = struct.unpack_from("<i", msg.data)[0]
            if 0 <= sender_index < FLOODER_MAX_GROUPS:
                self.recv_counters[sender_index] += 1
                if self.recv_counters[sender_index] == self.lowest_recv_counter + 1:
                    live = [c for c in self.recv_counters[: self.o.num_members] if c]
                    self.lowest_recv_counter = min(live) if live else 0
        return self.lowest_recv_counter < self.send_counter - 200 and not self.o.read_only

    def run(self) -> int:
        o = self.o
        if o.read_only:
            self.p("flooder: Only receiving messages\n")
            self.mbox.join(GROUP)
        elif o.write_only:
            self.p(
                f"flooder: starting  multicast of {o.num_messages} messages, "
                f"{o.num_bytes} bytes each (self discarding).\n"
            )
        else:
            self.mbox.join(GROUP)
            self.p(
                f"flooder: starting  multicast of {o.num_messages} messages, "
                f"{o.num_bytes} bytes each.\n"
            )
        self.out.flush()
        index = self.wait_for_members()
        if o.num_members:
            struct.pack_into("<i", self.mess, 0, index if index is not None else -1)
        payload = bytes(self.mess[: max(o.num_bytes, 0)])
        service = w.FIFO_MESS if o.num_members else w.RELIABLE_MESS
        ret = 0
        for i in range(1, o.num_messages + 1):
            if not o.read_only:
                ret = self.mbox.multicast(service, GROUP, 0, payload)
                if o.num_members:
                    self.send_counter += 1
                if ret != o.num_bytes:
                    self.p(f"sent a different message {o.num_bytes} -> {ret}\n")
            if o.read_only or (i > 200 and not o.write_only):
                while True:
                    msg = self._receive()
                    ret = len(msg.data)
                    if o.num_members:
                        notdone = self._count(msg)
                    else:
                        notdone = msg.sender != self.mbox.private_group and not o.read_only
                    if not notdone:
                        break
            if i % 1000 == 0:
                self.p(f"flooder: completed {i:6d} messages of {ret} bytes\n")
                self.out.flush()
        self.p(
            f"flooder: completed multicast of {o.num_messages} messages, "
            f"{o.num_bytes} bytes each.\n"
        )
        return 0


def _cstr(data: bytes) -> str:
    end = data.find(b"\0")
    return (data if end < 0 else data[:end]).decode("latin-1")


def main(
    argv: list[str] | None = None, stdout: BinaryIO | None = None, socket_dir: str = "/tmp"
) -> int:
    out = stdout if stdout is not None else cast(BinaryIO, QuietStdout(sys.stdout.buffer))
    args = sys.argv[1:] if argv is None else argv
    try:
        o, note = parse_args([os_bytes_as_latin1(a) for a in args])
        if note:
            out.write(note.encode())
            raise Usage
    except Usage:
        out.write(HELP.encode())
        out.flush()
        return 1
    if o.num_members == 0:
        out.write(f"flooder: connecting to {o.spread_name}\n".encode())
    else:
        out.write(f"flooder: connecting to {o.spread_name} with group membership\n".encode())
    out.flush()
    try:
        mbox = connect(o.spread_name, o.user, 0, o.num_members != 0, socket_dir=socket_dir)
    except SpreadError as e:
        out.write(f"{error_line(e.code)}\n".encode())
        out.flush()
        return 1
    flooder = Flooder(o, mbox, out)
    start = time.perf_counter()
    try:
        rc = flooder.run()
    except Quit as q:
        rc = q.status
    except KeyboardInterrupt:
        rc = 130  # the C program dies silently on SIGINT
    except SpreadError as e:
        rc = flooder.fail(e.code)
    elapsed = time.perf_counter() - start
    if rc == 0 and o.timing:
        n, size = o.num_messages, o.num_bytes
        rate = n / elapsed if elapsed > 0 else 0.0
        out.write(
            f"flooder: {n} messages of {size} bytes in {elapsed:.3f} s: {rate:.0f} msgs/s, "
            f"{rate * size * 8 / 1e6:.2f} Mbit/s\n".encode()
        )
    out.flush()
    mbox.kill()  # the original just exits; the daemon sees the socket close
    return rc


if __name__ == "__main__":
    sys.exit(main())
