"""What the configuration stage says, as data: the original's alarm levels, types and lines.

Parsing is sans-IO, so instead of printing it returns these records in order; the daemon's
logger (spread/daemon/log.py) replays them with the settings each point of the file had.
"""

from __future__ import annotations

from dataclasses import dataclass

# Priorities (spu_alarm.h). EventPriority FATAL maps to 6, i.e. PRINT.
DEBUG, INFO, WARNING, ERROR, CRITICAL, PRINT, FATAL = range(1, 8)

# Alarm types (spu_alarm.h + the daemon's spu_alarm_types.h); DebugFlags masks use them.
EXIT = 0x00000001
DATA_LINK = 0x00000002
MEMORY = 0x00000004
EVENTS = 0x00000008
SYSTEM = PRINT_TYPE = 0x00000010
NETWORK = 0x00000020
PROTOCOL = 0x00000040
SESSION = 0x00000080
CONF_SYS = 0x00000100
MEMB = 0x00000200
FLOW_CONTROL = 0x00000400
STATUS = 0x00000800
DEBUG_TYPE = 0x00001000
GROUPS = 0x00002000
SKIPLIST = 0x00200000
ACM = 0x00400000
SECURITY = 0x00800000
ALL = 0xFFFFFFFF
NONE = 0

DEFAULT_MASK = PRINT_TYPE | EXIT | CONF_SYS  # library default plus what main() adds
DEFAULT_TIMESTAMP_FORMAT = "%m/%d/%y %H:%M:%S"

PARSE_WARNING_HEAD = "----------- Parse Warning------------------"


@dataclass(frozen=True, slots=True)
class Record:
    """One Alarmp call: printed if EXIT is in `types`, priority >= PRINT, or the mask and
    threshold allow it. `text` carries its own newline (a few original lines have none)."""

    priority: int
    types: int
    text: str
    nodate: bool = False


@dataclass(frozen=True, slots=True)
class SetMask:
    """DebugFlags took effect here."""

    mask: int


@dataclass(frozen=True, slots=True)
class SetPriority:
    """EventPriority took effect here (1 pDEBUG .. 6 FATAL, 6 meaning PRINT)."""

    priority: int


@dataclass(frozen=True, slots=True)
class SetTimestamp:
    """EventTimeStamp / EventPreciseTimeStamp took effect: effective strftime format."""

    fmt: str
    precise: bool


@dataclass(frozen=True, slots=True)
class SetOutput:
    """EventLogFile took effect: stdout and stderr now append to `path`."""

    path: str


Entry = Record | SetMask | SetPriority | SetTimestamp | SetOutput


def timestamp_setting(fmt: str | None, precise: bool) -> SetTimestamp:
    """The original's Alarm_enable_timestamp[_high_res]: 39-char format, ` %s` for precision."""
    f = (fmt if fmt is not None else DEFAULT_TIMESTAMP_FORMAT)[:39]
    if precise and not (len(f) >= 2 and f[-2:] in ("%s", "%S")):
        if 40 - (len(f) + 1) >= 3:
            f += " %s"
        else:
            precise = False  # the append would not fit: plain timestamps
    return SetTimestamp(f, precise)


def parse_warning(line: int, token: str, message: str) -> Record:
    return Record(
        WARNING,
        CONF_SYS,
        f"{PARSE_WARNING_HEAD}\nWarning on or before line {line}\nOffending token: {token}\n"
        f"Warning type: {message}",
    )
