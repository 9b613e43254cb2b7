"""spmonitor: watch and steer the daemons of one spread.conf, as the original's monitor does.

It reads the same configuration (it must: every command carries the configuration hash),
poses as the configured daemon of this host, and sends STATUS queries, PARTITION, flow
control, terminate and RELOAD commands to every daemon's port P from My's IP and the
monitor port (-p, default 6543), where the status answers come back.

`MonitorSession` is the whole program without I/O: feed it input lines, datagrams and timer
ticks; it returns text to print, datagrams to send and when to stop. `main()` is the shell.
Each dialogue is a generator that yields when it needs the next input line.
"""

from __future__ import annotations

import io
import os
import selectors
import socket
import sys
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import IO, cast

from spread.config import ConfigError, SpreadConfig, load_with_log
from spread.config import alarm as A
from spread.config.hash import to_bytes
from spread.config.model import DaemonSpec
from spread.daemon.log import Logger, signed32
from spread.tools.console import QuietStdout
from spread.wire.daemon import (
    FC_TYPE,
    MAX_PROCS_RING,
    PARTITION_TYPE,
    RELOAD_TYPE,
    STATUS_TYPE,
    FlowControlCmd,
    PacketError,
    PacketHeader,
    Partition,
    Reload,
    Status,
    StatusReply,
    StatusRequest,
    decode_packet,
)

DEFAULT_PORT = 6543
DEFAULT_STATUS_PERIOD = 10.0
PARTITION_PERIOD = 25.0  # daemons forget a partition 60 s after the last one
MAX_PROC_NAME = 20
CONFIG_FILE_BUF = 80
LINE_CHUNK = 69  # fgets(buf, 70, stdin): longer lines arrive in pieces
PROMPT = "Monitor> "
EXIT_USAGE = 1
EXIT_CONFIG = 1

USAGE = (
    "Usage: {exe}\n"
    "\t[-p <port number>]    : specify port number\n"
    "\t[-n <proc name>]      : force computer name\n"
    "\t[-t <status timeout>] : specify number of seconds between status queries\n"
    "\t[-c <file name>]      : specify configuration file\n\n"
)

MENU = (
    "\n"
    "=============\n"
    "Monitor Menu:\n"
    "-------------\n"
    "\t0. Activate/Deactivate Status {all, none, Proc, CR}\n"
    "\n"
    "\t1. Define Partition\n"
    "\t2. Send   Partition\n"
    "\t3. Review Partition\n"
    "\t4. Cancel Partition Effects\n"
    "\n"
    "\t5. Define Flow Control\n"
    "\t6. Send   Flow Control\n"
    "\t7. Review Flow Control\n"
    "\n"
    "\t8. Terminate Spread Daemons {all, none, Proc, CR}\n"
    "\n"
    "\tr. Reload Configuration File\n"
    "\n"
    "\t9. Exit\n"
    "\n"
    + PROMPT
)


# ---- command line ----------------------------------------------------------------------------


class UsageError(Exception):
    """Bad command line: `text` is what the original prints before it exits."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True, slots=True)
class Options:
    port: int = DEFAULT_PORT
    my_name: str | None = None
    status_period: float = DEFAULT_STATUS_PERIOD
    config_file: str = "spread.conf"


C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale
_DIGITS = {8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def strtol(text: str) -> int | None:
    """C's strtol(text, &end, 0) when the whole text must be consumed; None otherwise."""
    s = text.lstrip(C_SPACE)
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s[:2].lower() == "0x" and len(s) > 2:
        base, digits = 16, s[2:]
    elif s[:1] == "0":
        base, digits = 8, s
    else:
        base, digits = 10, s
    if not digits or any(ch not in _DIGITS[base] for ch in digits):
        return None
    value = sign * int(digits, base)
    return value if -(1 << 63) <= value < (1 << 63) else None  # ERANGE


def parse_args(argv: Sequence[str], exe: str = "spmonitor") -> Options:
    """Options come in exact pairs (`-p`, `-n`, `-t`, `-c` and one value each)."""

    def usage(reason: str, what: str) -> UsageError:
        return UsageError(f"{reason} {what}\n\n" + USAGE.format(exe=exe))

    port, name, period, conf = DEFAULT_PORT, None, DEFAULT_STATUS_PERIOD, "spread.conf"
    i = 0
    while len(argv) - i >= 2:
        flag, value = argv[i], argv[i + 1]
        if flag == "-p":
            n = strtol(value)
            if n is None or not 0 <= n <= 65535:
                raise usage("Port number must be in range [0, 65536):", value)
            port = n
        elif flag == "-n":
            if len(to_bytes(value)) > MAX_PROC_NAME - 1:
                raise usage("Proc name too long:", value)
            name = value
        elif flag == "-t":
            n = strtol(value)
            if n is None or n <= 0:
                raise usage("Status query timeout must be a positive integer:", value)
            period = float(n)
        elif flag == "-c":
            if len(to_bytes(value)) > CONFIG_FILE_BUF - 1:
                raise usage("Config file name too long:", value)
            conf = value
        else:
            raise usage("Unknown parameter:", flag)
        i += 2
    if i != len(argv):
        raise usage("Unknown or missing parameter:", argv[i])
    return Options(port, name, period, conf)


# ---- the session, without I/O ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Write:
    text: str


@dataclass(frozen=True, slots=True)
class SendTo:
    ip: str
    port: int
    data: bytes
    scope_id: int = 0  # IPv6 link-local daemons need their interface


@dataclass(frozen=True, slots=True)
class Stop:
    status: int


Action = Write | SendTo | Stop
Loader = Callable[[], tuple[SpreadConfig, str]]  # re-read: (config, log text); ConfigError
Dialogue = Generator[None, str | None, None]


def scan_int(line: str) -> tuple[int, int]:
    """sscanf(line, "%d"): (1, value), (0, 0) on a non-number, (-1, 0) on a blank line."""
    s = line.lstrip(C_SPACE)
    if not s:
        return -1, 0
    j = 1 if s[0] in "+-" else 0
    k = j
    while k < len(s) and s[k] in _DIGITS[10]:
        k += 1
    if k == j:
        return 0, 0
    return 1, int(s[:k])


def first_word(line: str) -> str | None:
    """sscanf(line, "%s"): the first whitespace-delimited word, or None."""
    s = line.lstrip(C_SPACE)
    end = next((i for i, ch in enumerate(s) if ch in C_SPACE), len(s))
    return s[:end] or None


def int16(v: int) -> int:
    v &= 0xFFFF
    return v - 0x10000 if v & 0x8000 else v


class MonitorSession:
    """spmonitor's menu, dialogues, periodic sends and status reports."""

    def __init__(self, config: SpreadConfig, port: int, status_period: float,
                 loader: Loader | None = None) -> None:
        self.port = port
        self.status_period = status_period
        self.loader = loader
        self.out: list[Action] = []
        self._dialogue: Dialogue | None = None
        self._status_due: float | None = None
        self._partition_due: float | None = None
        self._now = 0.0
        self._last: Status | None = None  # the previous report, whichever daemon sent it
        self._use(config)
        size = max(MAX_PROCS_RING, self.n + 1)  # (the C arrays overflow at 128 daemons)
        self.partition = [0] * size
        self.work_partition = [0] * size
        self.fc = [(0, 0)] * size
        self.work_fc = [(0, 0)] * size

    def _use(self, config: SpreadConfig) -> None:
        assert config.my is not None
        self.config = config
        self.my: DaemonSpec = config.my
        self.n = len(config.daemons)
        self.status_on = [False] * self.n
        self._status_due = None
        self._partition_due = None

    @property
    def busy(self) -> bool:
        """In a dialogue: the original blocks in fgets, so reports and resends wait."""
        return self._dialogue is not None

    # ---- feeding ----------------------------------------------------------------------------

    def start(self) -> list[Action]:
        self._write(MENU)
        return self._take()

    def on_line(self, now: float, line: str | None) -> list[Action]:
        """One piece of input as fgets(…, 70) returns it; None at end of input."""
        self._now = now
        if self._dialogue is None:
            self._dialogue = self._command(line)
            try:
                next(self._dialogue)
            except StopIteration:
                self._dialogue = None
        else:
            try:
                self._dialogue.send(line)
            except StopIteration:
                self._dialogue = None
        return self._take()

    def on_datagram(self, data: bytes) -> list[Action]:
        self._report(data)
        return self._take()

    def next_timer(self) -> float | None:
        due = [t for t in (self._status_due, self._partition_due) if t is not None]
        return min(due) if due else None

    def on_timer(self, now: float) -> list[Action]:
        self._now = now
        if self._status_due is not None and now >= self._status_due:
            self._send_status_query()
        if self._partition_due is not None and now >= self._partition_due:
            self._send_partition()
        return self._take()

    def _take(self) -> list[Action]:
        out, self.out = self.out, []
        return out

    def _write(self, text: str) -> None:
        self.out.append(Write(text))

    def _bye(self) -> None:
        self._write("Bye.\n")
        self.out.append(Stop(0))

    def _read(self) -> Generator[None, str | None, str]:
        """Wait for the next input line; end of input ends the program."""
        line = yield
        if line is None:
            self._bye()
            raise _EndOfInput
        return line

    # ---- the menu ---------------------------------------------------------------------------

    def _command(self, line: str | None) -> Dialogue:
        if line is None:
            self._bye()
            return
        c = line[:1]
        try:
            if c == "0":
                yield from self._activate_status()
                self._write("\n" + PROMPT)
            elif c == "1":
                yield from self._define_partition()
                self._print_partition(self.work_partition)
            elif c == "2":
                self.partition[: self.n] = self.work_partition[: self.n]
                self._send_partition()
                self._write("\n" + PROMPT)
            elif c == "3":
                self._print_partition(self.partition)
            elif c == "4":
                self.partition = [0] * len(self.partition)
                self.work_partition = [0] * len(self.partition)
                self._partition_due = None
                self._send_partition(repeat=False)
                self._write("\n" + PROMPT)
            elif c == "5":
                yield from self._define_flow_control()
                self._print_flow_control(self.work_fc)
            elif c == "6":
                self.fc[: self.n + 1] = self.work_fc[: self.n + 1]
                self._send_flow_control()
                self._write("\n" + PROMPT)
            elif c == "7":
                self._print_flow_control(self.fc)
            elif c == "8":
                yield from self._kill()
                self._write("\n" + PROMPT)
            elif c == "r":
                self._reload()
                self._write("Reload Membership. \n")
            elif c in ("9", "q"):
                self._bye()
            else:
                self._write("\nUnknown commnad\n")  # sic: the original's spelling
                self._write(MENU)
        except _EndOfInput:
            return

    # ---- daemons in the order the original walks them: segment by segment ----------------

    def _by_segment(self) -> list[list[tuple[int, DaemonSpec]]]:
        index = {d.vid: i for i, d in enumerate(self.config.daemons)}
        return [[(index[d.vid], d) for d in seg.daemons] for seg in self.config.segments]

    def _index_of_name(self, name: str) -> int:
        for i, d in enumerate(self.config.daemons):
            if d.name == name:
                return i
        return -1

    # ---- status -----------------------------------------------------------------------------

    def _ask_names(self, prompt: str, mark: Callable[[int | None, bool], None]
                   ) -> Generator[None, str | None, None]:
        """Names, `all` or `none`, one per line, until an empty line."""
        while True:
            while True:
                self._write(prompt)
                line = yield from self._read()
                word = first_word(line)
                if word is not None or line[:1] == "\n":
                    break
                self._write("Please enter a legal proc name, none, or all\n")
            if line[:1] == "\n":
                return
            if word == "all":
                mark(None, True)
            elif word == "none":
                mark(None, False)
            else:
                i = self._index_of_name(word or "")
                if i != -1:
                    mark(i, True)
                else:
                    self._write("Please! enter a legal proc name, none, or all\n")

    def _activate_status(self) -> Generator[None, str | None, None]:
        self._write("\n=============\nActivate Status\n-------------\n\n")

        def mark(i: int | None, on: bool) -> None:
            if i is None:
                self.status_on = [on] * self.n
            else:
                self.status_on[i] = on

        yield from self._ask_names("\tEnter Proc Name: ", mark)
        self._status_due = None
        if any(self.status_on):
            self._send_status_query()

    def _header(self, packet_type: int) -> PacketHeader:
        vid = self.my.vid
        return PacketHeader(packet_type, vid, vid, seq=self.port, conf_hash=self.config.conf_hash)

    def _send_to(self, d: DaemonSpec, data: bytes, times: int) -> None:
        scope = d.address.scope_id if d.address.family == 6 else 0
        for _ in range(times):
            self.out.append(SendTo(d.ip, d.port, data, scope))

    def _send_status_query(self) -> None:
        data = StatusRequest(self._header(STATUS_TYPE)).encode()
        self._write("Monitor: send status query\n")
        for seg in self._by_segment():
            for i, d in seg:
                if self.status_on[i]:
                    self._send_to(d, data, 1)
        self._status_due = self._now + self.status_period

    def _report(self, data: bytes) -> None:
        try:
            pkt = decode_packet(data)
        except PacketError:
            return
        if not isinstance(pkt, StatusReply):
            return
        s, last = pkt.status, self._last
        self._last = s
        self._write("\n============================\n")
        me = self.config.daemon_by_vid(s.my_id)
        if me is None:
            self._write("Report_message: Skiping illegal status \n"  # sic
                        "==================================\n")
            return
        leader = self.config.daemon_by_vid(s.leader_id)
        lines = [
            f"Status at {me.name} V{s.major_version:2d}.{s.minor_version:02d}."
            f"{s.patch_version:2d} (state {s.state}, gstate {s.gstate}) after {s.sec} "
            "seconds :\n",
            f"Membership  :  {s.num_procs}  procs in {s.num_segments} segments, leader is "
            f"{leader.name if leader is not None else signed32(s.leader_id)}, "
            + ("regular protocol\n" if s.accelerated_ring == 0 else "accelerated protocol\n"),
            f"rounds   : {s.token_rounds:7d}\ttok_hurry : {s.token_hurry:7d}\t"
            f"memb change: {s.membership_changes:7d}\n",
            f"sent pack: {s.packet_sent:7d}\trecv pack : {s.packet_recv:7d}\t"
            f"retrans    : {s.retrans:7d}\n",
            f"u retrans: {s.u_retrans:7d}\ts retrans : {s.s_retrans:7d}\t"
            f"b retrans  : {s.b_retrans:7d}\n",
            f"My_aru   : {s.my_aru:7d}\tAru       : {s.aru:7d}\t"
            f"Highest seq: {s.highest_seq:7d}\n",
            f"Sessions : {s.num_sessions:7d}\tGroups    : {s.num_groups:7d}\t"
            f"Window     : {s.window:7d}\n",
            f"Deliver M: {s.message_delivered:7d}\tDeliver Pk: {s.packet_delivered:7d}\t"
            f"P/A Window : {s.personal_window:7d}/{s.accelerated_window}\n",
        ]
        lm, la, ls = (last.message_delivered, last.aru, last.sec) if last else (0, 0, 0)
        lines.append(f"Delta Mes: {signed32(s.message_delivered - lm):7d}\t"
                     f"Delta Pk  : {signed32(s.aru - la):7d}\t"
                     f"Delta sec  : {signed32(s.sec - ls):7d}\n")
        lines.append("==================================\n\n" + PROMPT)
        self._write("".join(lines))

    # ---- partitions -------------------------------------------------------------------------

    def _define_partition(self) -> Generator[None, str | None, None]:
        self._write("\n=============\nDefine Partition\n-------------\n\n")
        for seg in self._by_segment():
            for i, d in seg:
                while True:
                    self._write(f"\t{d.name}\t")
                    line = yield from self._read()
                    ret, value = scan_int(line)
                    if ret > 0:
                        self.work_partition[i] = int16(value)
                        break
                    self._write("Please enter a number\n")
            self._write("\n")

    def _print_partition(self, partition: list[int]) -> None:
        text = ["\n=============\nPartition Map:\n-------------\n\n"]
        for seg in self._by_segment():
            text += [f"\t{d.name}\t{partition[i]}\n" for i, d in seg]
            text.append("\n")
        text.append("\n" + PROMPT)
        self._write("".join(text))

    def _send_partition(self, repeat: bool = True) -> None:
        body = tuple(self.partition[:MAX_PROCS_RING])
        data = Partition(self._header(PARTITION_TYPE), body).encode()
        self._write("Monitor: send partition\n")
        for seg in self._by_segment():
            for _, d in seg:
                self._send_to(d, data, 2)
        self._partition_due = self._now + PARTITION_PERIOD if repeat else None

    def _kill(self) -> Generator[None, str | None, None]:
        doomed = [False] * self.n

        def mark(i: int | None, on: bool) -> None:
            if i is None:
                doomed[:] = [on] * self.n
            else:
                doomed[i] = on

        yield from self._ask_names("\tEnter Proc Name to Terminate: ", mark)
        kill = [(-1 if doomed[i] else self.partition[i]) if i < self.n else 0
                for i in range(MAX_PROCS_RING)]
        data = Partition(self._header(PARTITION_TYPE), tuple(kill)).encode()
        for seg in self._by_segment():
            for i, d in seg:
                if kill[i] == -1:
                    self._write(f"Monitor: Terminating {d.name}\n")
                    self._send_to(d, data, 2)

    # ---- flow control -----------------------------------------------------------------------

    def _ask_window(self, prompt: str) -> Generator[None, str | None, int]:
        while True:
            self._write(prompt)
            line = yield from self._read()
            ret, value = scan_int(line)
            if ret > 0:
                return int16(value)
            if ret == -1:
                return -1  # a blank answer keeps the daemon's value
            self._write("Please enter a number\n")

    def _define_flow_control(self) -> Generator[None, str | None, None]:
        self._write("\n===================\nDefine Flow Control\n-------------------\n\n")
        window = yield from self._ask_window("    Window size: ")
        self.work_fc[self.n] = (window, self.work_fc[self.n][1])
        self._write("\n")
        accelerated = self.config.ring_runs_accelerated
        for seg in self._by_segment():
            for i, d in seg:
                personal = yield from self._ask_window(f"\t{d.name} personal window\t")
                self.work_fc[i] = (personal, self.work_fc[i][1])
                if accelerated:
                    acc = yield from self._ask_window(f"\t{d.name} accelerated window\t")
                    self.work_fc[i] = (self.work_fc[i][0], acc)
            self._write("\n")

    def _print_flow_control(self, fc: list[tuple[int, int]]) -> None:
        text = ["\n========================\nFlow Control Parameters:\n"
                "------------------------\n\n", f"Window size:  {fc[self.n][0]}\n\n"]
        accelerated = self.config.ring_runs_accelerated
        for seg in self._by_segment():
            for i, d in seg:
                text.append(f"\t{d.name} personal window\t{fc[i][0]}\n")
                if accelerated:
                    text.append(f"\t{d.name} accelerated window\t{fc[i][1]}\n")
            text.append("\n")
        text.append("\n" + PROMPT)
        self._write("".join(text))

    def _send_flow_control(self) -> None:
        data = FlowControlCmd(self._header(FC_TYPE), tuple(self.fc[:MAX_PROCS_RING])).encode()
        self._write("Monitor: send flow control params\n")
        for seg in self._by_segment():
            for _, d in seg:
                self._send_to(d, data, 2)

    # ---- reload -----------------------------------------------------------------------------

    def _reload(self) -> None:
        data = Reload(self._header(RELOAD_TYPE)).encode()
        self._write(f"Old configuration hash is: {self.config.conf_hash & 0xFFFFFFFF}\n")
        self._write("Monitor: send conf reload command\n")
        for seg in self._by_segment():
            for _, d in seg:
                self._send_to(d, data, 2)
        if self.loader is None:
            return
        try:
            config, log_text = self.loader()
        except ConfigError as e:
            self._write("\n".join(e.original_lines() + e.location_lines()) + "\n"
                        "Exit caused by Alarm!\n")
            self.out.append(Stop(EXIT_CONFIG))
            return
        self._write(log_text)
        # as the original: entries of the configured daemons are cleared, the Window slot
        # after them is not, and the socket stays where it was bound
        n = len(config.daemons)
        self.partition[:n] = self.work_partition[:n] = [0] * n
        self.fc[:n] = self.work_fc[:n] = [(0, 0)] * n
        self._use(config)
        self._write(f"New configuration hash is: {config.conf_hash & 0xFFFFFFFF}\n")
        self._write("All Status, Partition, FC, etc commands are reset by configuration "
                    "reload!\n")


class _EndOfInput(Exception):
    """stdin closed in the middle of a dialogue."""


# ---- the shell -------------------------------------------------------------------------------


def _reload(opts: Options) -> tuple[SpreadConfig, str]:
    loaded = load_with_log(opts.config_file, opts.my_name)
    text = io.StringIO()
    _print_config_log(loaded.log, text)
    return loaded.config, text.getvalue()


_NOT_INTERACTIVE = ("ENABLING Dangerous Monitor", "Disabling Dangerous Monitor")


def _print_config_log(entries: Sequence[A.Entry], out: IO[str]) -> None:
    """An interactive program ignores the file's log settings (only PRINT and above show)
    and never applies DangerousMonitor, so it does not announce it either."""
    logger = Logger(out, follow_log_file=False)
    logger.mask, logger.threshold = A.PRINT_TYPE | A.EXIT, A.DEBUG  # the library's defaults
    for e in entries:
        if isinstance(e, A.Record) and not e.text.startswith(_NOT_INTERACTIVE):
            logger.emit(e)


def _bind(ip: str, port: int, config: SpreadConfig) -> socket.socket:
    my = config.my
    assert my is not None
    sock = socket.socket(socket.AF_INET6 if my.address.family == 6 else socket.AF_INET,
                         socket.SOCK_DGRAM)
    try:
        sock.bind(my.address.sockaddr(port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _stdin_pieces(raw: IO[bytes]) -> Callable[[], list[str] | None]:
    """Read what stdin has and cut it into fgets(…, 70) pieces; None at end of input."""
    pending = b""
    fd = raw.fileno()

    def read() -> list[str] | None:
        nonlocal pending
        chunk = os.read(fd, 4096)
        if not chunk:
            if pending:
                rest, pending = pending, b""
                return [rest.decode("latin-1")]
            return None
        pending += chunk
        pieces = []
        while True:
            nl = pending.find(b"\n")
            if nl == -1 or nl >= LINE_CHUNK:
                if len(pending) >= LINE_CHUNK:
                    pieces.append(pending[:LINE_CHUNK].decode("latin-1"))
                    pending = pending[LINE_CHUNK:]
                    continue
                break
            pieces.append(pending[: nl + 1].decode("latin-1"))
            pending = pending[nl + 1:]
        return pieces

    return read


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)  # names as the config decodes them
    out = cast(IO[str], QuietStdout(sys.stdout))
    try:
        opts = parse_args(args, sys.argv[0] if argv is None else "spmonitor")
    except UsageError as e:
        out.write(e.text + "Exit caused by Alarm!\n")
        return EXIT_USAGE
    try:
        loaded = load_with_log(opts.config_file, opts.my_name)
    except ConfigError as e:
        _print_config_log(e.log, out)
        Logger(out, follow_log_file=False).fatal(e.original_lines() + e.location_lines())
        return EXIT_CONFIG
    _print_config_log(loaded.log, out)
    config = loaded.config
    assert config.my is not None
    try:
        sock = _bind(config.my.ip, opts.port, config)
    except OSError as e:
        out.write(f"DL_init_channel_gen: bind error ({e.errno}: {e.strerror}) for "
                  f"[{config.my.ip}]:{opts.port}; probably already running!\n"
                  "Exit caused by Alarm!\n")
        return 1
    session = MonitorSession(config, opts.port, opts.status_period, lambda: _reload(opts))
    return _run(session, sock, opts, out)


def _run(session: MonitorSession, sock: socket.socket, opts: Options, out: IO[str]) -> int:
    read_stdin = _stdin_pieces(sys.stdin.buffer)
    everything = selectors.DefaultSelector()
    everything.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    everything.register(sock, selectors.EVENT_READ, "net")
    typing_only = selectors.DefaultSelector()  # inside a dialogue, as the original's fgets
    typing_only.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")

    def carry(actions: list[Action]) -> int | None:
        for a in actions:
            if isinstance(a, Write):
                out.write(a.text)
                out.flush()
            elif isinstance(a, SendTo):
                dest: tuple[str, int] | tuple[str, int, int, int] = (
                    (a.ip, a.port) if sock.family == socket.AF_INET
                    else (a.ip, a.port, 0, a.scope_id))
                try:
                    sock.sendto(a.data, dest)
                except OSError:
                    pass  # an unreachable daemon is what the status screen shows
            elif isinstance(a, Stop):
                return a.status
        return None

    def read_network() -> int | None:
        while True:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return None
            except OSError:
                continue  # an ICMP error from an earlier send
            status = carry(session.on_datagram(data))
            if status is not None:
                return status

    try:
        status = carry(session.start())
        while status is None:
            if session.busy:
                ready = typing_only.select(None)
            else:
                due = session.next_timer()
                ready = everything.select(None if due is None
                                          else max(0.0, due - time.monotonic()))
            for key, _ in ready:
                if key.data == "stdin":
                    pieces = read_stdin()
                    for piece in [None] if pieces is None else pieces:
                        status = carry(session.on_line(time.monotonic(), piece))
                        if status is not None:
                            break
                else:
                    status = read_network()
                if status is not None:
                    break
            if status is None and not session.busy:
                status = carry(session.on_timer(time.monotonic()))
        return status
    except KeyboardInterrupt:
        return 130
    finally:
        everything.close()
        typing_only.close()
        sock.close()

if __name__ == "__main__":
    sys.exit(main())
