"""The daemon's logger: the original's Alarm rules, line formats and the `-l y` log file.

Owns what is printed and how (EventLogFile, EventTimeStamp / EventPreciseTimeStamp,
EventPriority threshold, DebugFlags mask, the 512-byte warning, `Exit caused by Alarm!`)
and the membership/session log lines. Callers pass the clock in; nothing here decides when
to log, only whether and how.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import IO

from spread.config import alarm as A
from spread.config.alarm import Entry, Record
from spread.config.hash import to_bytes
from spread.config.model import LoggingSettings

MAX_ALARM_MESSAGE_BUF = 512
ALLOC_WARNING = ("*** WARNING *** Alarmp: message longer than default; dynamically allocated "
                 "alarm string!\n")
EXIT_LINE = "Exit caused by Alarm!\n"
EXITING_NORMALLY = "Spread daemon exiting normally!\n"


def wants(priority: int, types: int, mask: int, threshold: int) -> bool:
    """The original's ALARMP_NEEDED: EXIT type, PRINT or above, or threshold and mask."""
    return bool(types & A.EXIT) or priority >= A.PRINT or (
        priority >= threshold and bool(types & mask))


def format_timestamp(fmt: str, precise: bool, now: float) -> str:
    """strftime of local time, `.uuuuuu` when precise, then the separating blank."""
    stamp = time.strftime(fmt, time.localtime(now))
    if not stamp:
        return ""
    if precise:
        stamp += f".{int((now % 1) * 1_000_000):06d}"
    return stamp + " "


class Logger:
    """Writes records the way the original's Alarmp does, to stdout or EventLogFile."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        follow_log_file: bool = True,
        opener: Callable[[str], IO[str]] | None = None,
    ) -> None:
        self.stream: IO[str] = stream if stream is not None else sys.stdout
        self.clock = clock
        self.follow_log_file = follow_log_file  # False for --check-config: touch nothing
        self.opener = opener or (lambda p: open(p, "a", buffering=1))  # noqa: SIM115
        self.mask = A.DEFAULT_MASK
        self.threshold = A.INFO
        self.ts_format: str | None = None
        self.precise = False
        self.log_file: str | None = None
        self.at_line_start = True

    # ---- settings ---------------------------------------------------------------------------
    def apply(self, entry: Entry) -> None:
        """Apply one parse-log entry: a setting takes effect, a record is printed."""
        if isinstance(entry, Record):
            self.emit(entry)
        elif isinstance(entry, A.SetMask):
            self.mask = entry.mask
        elif isinstance(entry, A.SetPriority):
            self.threshold = entry.priority
        elif isinstance(entry, A.SetTimestamp):
            self.ts_format, self.precise = entry.fmt, entry.precise
        elif isinstance(entry, A.SetOutput):
            self.set_output(entry.path)

    def replay(self, entries: Iterable[Entry]) -> None:
        for e in entries:
            self.apply(e)

    def configure(self, settings: LoggingSettings) -> None:
        """Take the final settings of a parsed file at once (no replay)."""
        self.mask = settings.debug_flags
        self.threshold = settings.priority
        self.ts_format = settings.timestamp_format
        self.precise = settings.precise_timestamp
        if settings.log_file:
            self.set_output(settings.log_file)

    def set_output(self, path: str) -> None:
        self.log_file = path
        if not self.follow_log_file:
            return
        try:
            self.stream = self.opener(path)
        except OSError as e:
            self.write(f"failed to open file ({path}) for stdout. Error: {e.errno}\n")
            self.write(f"failed to open file ({path}) for stderr. Error: {e.errno}\n")

    @property
    def to_file(self) -> bool:
        return self.follow_log_file and self.log_file is not None and (
            self.stream is not sys.stdout)

    # ---- output -----------------------------------------------------------------------------
    def write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def emit(self, rec: Record) -> bool:
        """Print one record if the rules allow it; True if it was printed."""
        if not wants(rec.priority, rec.types, self.mask, self.threshold):
            return False
        stamp = ""
        if self.ts_format is not None and not rec.nodate:
            stamp = format_timestamp(self.ts_format, self.precise, self.clock())
        line = stamp + rec.text
        if len(to_bytes(line)) >= MAX_ALARM_MESSAGE_BUF:
            line = ALLOC_WARNING + line
        self.write(line)
        return True

    def alarm(self, priority: int, types: int, text: str) -> bool:
        return self.emit(Record(priority, types, text))

    def print(self, text: str, types: int = A.PRINT_TYPE) -> None:
        self.emit(Record(A.PRINT, types, text))

    def fatal(self, lines: Sequence[str], types: int = A.CONF_SYS) -> None:
        """A FATAL alarm: its text, then the original's `Exit caused by Alarm!` line."""
        text = "\n".join(lines)
        self.emit(Record(A.FATAL, types, text if text.endswith("\n") else text + "\n"))
        self.write(EXIT_LINE)


# ---- lines the daemon prints at runtime (reference §11.1) --------------------------------------
def signed32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def membership_id_line(leader_vid: int, ring_time: int) -> str:
    """`Membership id is ( %d, %d)`: the leader's VID printed as a signed int."""
    return f"Membership id is ( {signed32(leader_vid)}, {signed32(ring_time)})\n"


# ---- `-l y`: the membership / session log file (reference §11.3) -------------------------------
def log_begin(now: int) -> str:
    return f"B {now:13d}\n"


def log_membership(now: int, memb_time: int, highest_seq: int,
                   columns: Sequence[int | None]) -> str:
    """`M` line: one column per configured daemon in file order, `--` when absent.

    The original prints, for every member, the config index of the *first* member found;
    pass that number (or None for a non-member) per column.
    """
    cols = "".join(" --" if c is None else f" {c:2d}" for c in columns)
    return f"M {now:13d} {signed32(memb_time):13d} {signed32(highest_seq):11d} > {cols}\n"


def membership_columns(config_vids: Sequence[int], members: Iterable[int]) -> list[int | None]:
    present = set(members)
    first = next((i for i, v in enumerate(config_vids) if v in present), None)
    return [first if v in present else None for v in config_vids]


def log_connect(now: int, highest_seq: int, mbox: int, addr: str, private_group: str) -> str:
    return f"C {now:13d} {signed32(highest_seq):11d} {mbox:3d} {addr:<16} {private_group:<10}\n"


def log_disconnect(now: int, highest_seq: int, mbox: int, addr: str, private_group: str,
                   num_mess: int) -> str:
    return (f"D {now:13d} {signed32(highest_seq):11d} {mbox:3d} {addr:<46} "
            f"{private_group:<10} {num_mess}\n")


class MembershipLog:
    """The `-l y` file, named after the daemon, in the current directory, append mode.

    The original closes and reopens it after every write and every 10 s; we reopen per
    write, which gives the same file contents and survives log rotation the same way.
    """

    REOPEN_PERIOD = 10.0

    def __init__(self, my_name: str, directory: str = ".") -> None:
        self.path = os.path.join(directory, my_name)
        with open(self.path, "a"):
            pass  # the original dies at start-up if it cannot open the file

    def write(self, line: str) -> None:
        with open(self.path, "a") as f:
            f.write(line)
