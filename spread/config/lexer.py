"""A tokenizer for spread.conf that behaves like the original's flex scanner.

Longest match wins, a tie goes to the rule listed first, `!` counts its trailing context,
an address `inet_pton` refuses falls back to the next best rule (normally STRING) with the
original's warning, and unmatched characters (`[`, `]`, `\\v`, `\\f`) are dropped. It yields
`Lexeme`s; the grammar (grammar.lark) sees only their terminal names.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from spread.config.model import IpAddress

# Keyword text -> terminal name. Grouped terminals carry the keyword in the lexeme's text.
KEYWORDS: dict[str, str] = {
    "Spread_Segment": "SEGMENT",
    "EventLogFile": "STRKEY",
    "EventTimeStamp": "EVENTTIMESTAMP",
    "EventPreciseTimeStamp": "EVENTPRECISETIMESTAMP",
    "EventPriority": "EVENTPRIORITY",
    "DebugFlags": "DEBUGFLAGS",
    "DangerousMonitor": "BOOLKEY",
    "SocketPortReuse": "SOCKETPORTREUSE",
    "RuntimeDir": "STRKEY",
    "DaemonUser": "STRKEY",
    "DaemonGroup": "STRKEY",
    "RequiredAuthMethods": "STRKEY",
    "AllowedAuthMethods": "STRKEY",
    "AccessControlPolicy": "STRKEY",
    "MaxSessionMessages": "NUMKEY",
    "ActiveIPVersion": "STRKEY",
    "Window": "NUMKEY",
    "PersonalWindow": "NUMKEY",
    "AcceleratedRing": "BOOLKEY",
    "AcceleratedWindow": "NUMKEY",
    "TokenTimeout": "NUMKEY",
    "HurryTimeout": "NUMKEY",
    "AliveTimeout": "NUMKEY",
    "JoinTimeout": "NUMKEY",
    "RepTimeout": "NUMKEY",
    "SegTimeout": "NUMKEY",
    "GatherTimeout": "NUMKEY",
    "FormTimeout": "NUMKEY",
    "LookupTimeout": "NUMKEY",
    "VirtualID": "VIRTUALID",
    "WideAreaNetwork": "BOOLKEY",
    "ExcludeSegAddrsFromHash": "BOOLKEY",
    "IgnoreMulticastJoinErrors": "BOOLKEY",
}

BOOLS = {"true": True, "yes": True, "false": False, "no": False}  # case-insensitive
TRIVALS = {"on": 1, "off": 0, "auto": 2}  # case-insensitive; SocketPortReuse only

# DebugFlags names (case-sensitive) and their alarm type masks.
ALARM_BITS: dict[str, int] = {
    "ALL": 0xFFFFFFFF,
    "EXIT": 0x00000001,
    "DATA_LINK": 0x00000002,
    "MEMORY": 0x00000004,
    "EVENTS": 0x00000008,
    "PRINT": 0x00000010,
    "NETWORK": 0x00000020,
    "PROTOCOL": 0x00000040,
    "SESSION": 0x00000080,
    "CONFIGURATION": 0x00000100,
    "MEMBERSHIP": 0x00000200,
    "FLOW_CONTROL": 0x00000400,
    "STATUS": 0x00000800,
    "DEBUG": 0x00001000,
    "GROUPS": 0x00002000,
    "SKIPLIST": 0x00200000,
    "ACM": 0x00400000,
    "SECURITY": 0x00800000,
    "NONE": 0x00000000,
}
IFTYPES = {"M": ("IMONITOR", 0x1), "C": ("ICLIENT", 0x2), "D": ("IDAEMON", 0x4)}
PRIORITIES = {"pDEBUG": 1, "INFO": 2, "WARNING": 3, "ERROR": 4, "CRITICAL": 5, "FATAL": 6}

# Rule ranks, flex order: a tie in length goes to the smaller rank.
R_PUNCT, R_BANG, R_KEYWORD, R_BOOL, R_TRIVAL, R_ALARM, R_IFTYPE, R_PRIO = range(8)
R_IPV4, R_IPV4PORT, R_IPV6, R_IPV6PORT, R_NUMBER, R_QSTRING, R_STRING = range(8, 15)

PUNCT = {"{": "OPENBRACE", "}": "CLOSEBRACE", "=": "EQUALS", ":": "COLON", ";": "SEMICOLON"}
_STRING = re.compile(r"[^ \t\r\n\v\f#{}\[\]]+")
_QSTRING = re.compile(r"\"[^\"]*\"|'[^']*'")
_NUMBER = re.compile(r"[0-9]{1,9}")
_IPV4 = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
_IPV4PORT = re.compile(r"([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}):([0-9]{1,5})")
_HEXCOLON = re.compile(r"[0-9A-Fa-f:]+")
_QUAD = r"[0-9A-Fa-f]{1,4}"
_IPV6_BODY = re.compile(
    rf"{_QUAD}(:{_QUAD}){{7}}|(({_QUAD}:){{0,6}}{_QUAD})?::({_QUAD}(:{_QUAD}){{0,6}})?"
)
_PORT5 = re.compile(r"[0-9]{1,5}")
_WORD = re.compile(r"[A-Za-z_]+")

MALFORMED_IP = "parse_ip: Potentially malformed IP address scanned!"
PORT_RANGE = "parse_ip: Port out of valid range!"


@dataclass(frozen=True, slots=True)
class Lexeme:
    """One token: terminal name, text as matched (flex's yytext) and its value."""

    kind: str
    text: str
    value: Any
    pos: int  # offset in the text
    end: int
    line: int  # 1-based line of its first character
    column: int  # 1-based
    orig_line: int  # the original's line counter here (newlines seen, quoted ones excluded)
    port: int = 0  # IPPORT only

    @property
    def type(self) -> str:
        """The terminal name, under the attribute lark's parser reads."""
        return self.kind


class LexError(Exception):
    """A fatal scanner error (only the port range check can fail this way)."""

    def __init__(self, message: str, lexeme: Lexeme, detail_pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.lexeme = lexeme
        self.detail_pos = detail_pos


WarnFn = Callable[[str, Lexeme], None]


def _ipv6_longest(text: str, i: int) -> int:
    """Length of the longest prefix at i matching flex's ipv6addr body (without %if), or 0."""
    m = _HEXCOLON.match(text, i)
    if not m:
        return 0
    run = m.group(0)
    for n in range(len(run), 1, -1):
        if _IPV6_BODY.fullmatch(run, 0, n):
            return n
    return 0


def _scope_run(text: str, i: int) -> int:
    """Length of `%ifname` at i (0 if absent): `%` then a non-empty STRING run."""
    if i < len(text) and text[i] == "%":
        m = _STRING.match(text, i + 1)
        if m:
            return 1 + len(m.group(0))
    return 0


def _make_ipv6(body: str) -> IpAddress | None:
    addr, _, ifname = body.partition("%")
    try:
        packed = socket.inet_pton(socket.AF_INET6, addr)
    except OSError:
        return None
    scope = 0
    if ifname:
        try:
            scope = socket.if_nametoindex(ifname)
        except (OSError, ValueError):
            scope = 0  # if_nametoindex failure leaves 0, as in the original
    return IpAddress(6, packed, scope, ifname)


def _make_ipv4(text: str) -> IpAddress | None:
    try:
        return IpAddress(4, socket.inet_pton(socket.AF_INET, text))
    except OSError:
        return None


class Scanner:
    """Pulls lexemes one at a time, so warnings come out when the parser asks for a token."""

    def __init__(self, text: str, warn: WarnFn | None = None) -> None:
        self.text = text
        self.warn = warn or (lambda msg, lx: None)
        self.pos = 0
        self.line = 1
        self.line_start = 0
        self.orig_line = 0  # newlines outside quoted strings

    def _lexeme(self, kind: str, start: int, end: int, value: Any, port: int = 0) -> Lexeme:
        return Lexeme(
            kind, self.text[start:end], value, start, end, self.line,
            start - self.line_start + 1, self.orig_line, port,
        )

    def _advance_to(self, end: int) -> None:
        """Move past a token, keeping human line numbers (quoted strings may hold newlines)."""
        seg = self.text[self.pos : end]
        nl = seg.count("\n")
        if nl:
            self.line += nl
            self.line_start = self.pos + seg.rindex("\n") + 1
        self.pos = end

    def __iter__(self) -> Iterator[Lexeme]:
        return self

    def __next__(self) -> Lexeme:
        text = self.text
        n = len(text)
        while self.pos < n:
            i = self.pos
            c = text[i]
            if c == "#":  # comment to end of line
                j = text.find("\n", i)
                self.pos = n if j < 0 else j
                continue
            if c in " \t\r":
                self.pos += 1
                continue
            if c == "\n":
                self.pos += 1
                self.line += 1
                self.line_start = self.pos
                self.orig_line += 1
                continue
            lx = self._match(i)
            if lx is None:  # flex's default rule: the character is dropped
                self.pos += 1
                continue
            self._advance_to(lx.end)
            return lx
        raise StopIteration

    def _candidates(self, i: int) -> list[tuple[int, int, str]]:
        """(length, rank, rule) for every rule that matches at i."""
        text = self.text
        c = text[i]
        out: list[tuple[int, int, str]] = []
        if c in PUNCT:
            out.append((1, R_PUNCT, "punct"))
        if c == "!":
            j = text.find("\n", i)
            rest = (len(text) if j < 0 else j) - i - 1
            if rest >= 1:
                out.append((1 + rest, R_BANG, "bang"))
        w = _WORD.match(text, i)
        if w:
            word = w.group(0)
            for kw in KEYWORDS:
                if text.startswith(kw, i):
                    out.append((len(kw), R_KEYWORD, "kw:" + kw))
            low = text[i : i + 5].lower()
            for b in BOOLS:
                if low.startswith(b):
                    out.append((len(b), R_BOOL, "bool:" + b))
            for t in TRIVALS:
                if low.startswith(t):
                    out.append((len(t), R_TRIVAL, "trival:" + t))
            for a in ALARM_BITS:
                if text.startswith(a, i):
                    out.append((len(a), R_ALARM, "alarm:" + a))
            if word[0] in IFTYPES:
                out.append((1, R_IFTYPE, "iftype:" + word[0]))
            for p in PRIORITIES:
                if text.startswith(p, i):
                    out.append((len(p), R_PRIO, "prio:" + p))
        if c.isdigit():
            m = _IPV4.match(text, i)
            if m:
                out.append((len(m.group(0)), R_IPV4, "ipv4"))
            m = _IPV4PORT.match(text, i)
            if m:
                out.append((len(m.group(0)), R_IPV4PORT, "ipv4port"))
            m = _NUMBER.match(text, i)
            if m:
                out.append((len(m.group(0)), R_NUMBER, "number"))
        if c in "0123456789abcdefABCDEF:":
            n6 = _ipv6_longest(text, i)
            if n6:
                full = _HEXCOLON.match(text, i)
                if full and len(full.group(0)) == n6:
                    n6 += _scope_run(text, i + n6)
                out.append((n6, R_IPV6, "ipv6"))
        if c == "[":
            n6 = _ipv6_longest(text, i + 1)
            if n6:
                full = _HEXCOLON.match(text, i + 1)
                if full and len(full.group(0)) == n6:
                    n6 += _scope_run(text, i + 1 + n6)
                k = i + 1 + n6
                if text.startswith("]:", k):
                    p = _PORT5.match(text, k + 2)
                    if p:
                        out.append((k + 2 + len(p.group(0)) - i, R_IPV6PORT, "ipv6port"))
        if c in "\"'":
            m = _QSTRING.match(text, i)
            if m:
                out.append((len(m.group(0)), R_QSTRING, "qstring"))
        m = _STRING.match(text, i)
        if m:
            out.append((len(m.group(0)), R_STRING, "string"))
        out.sort(key=lambda t: (-t[0], t[1]))
        return out

    def _match(self, i: int) -> Lexeme | None:
        text = self.text
        for length, _rank, rule in self._candidates(i):
            end = i + length
            raw = text[i:end]
            if rule == "punct":
                return self._lexeme(PUNCT[raw], i, end, raw)
            if rule == "bang":
                return self._lexeme("BANG", i, i + 1, "!")
            kind, _, arg = rule.partition(":")
            if kind == "kw":
                return self._lexeme(KEYWORDS[arg], i, end, arg)
            if kind == "bool":
                return self._lexeme("SP_BOOL", i, end, BOOLS[arg])
            if kind == "trival":
                return self._lexeme("SP_TRIVAL", i, end, TRIVALS[arg])
            if kind == "alarm":
                return self._lexeme("ALARMBIT", i, end, ALARM_BITS[arg])
            if kind == "iftype":
                return self._lexeme(IFTYPES[arg][0], i, end, IFTYPES[arg][1])
            if kind == "prio":
                return self._lexeme("PRIO", i, end, PRIORITIES[arg])
            if rule == "number":
                return self._lexeme("NUMBER", i, end, int(raw))
            if rule == "qstring":
                return self._lexeme("STRING", i, end, raw[1:-1])
            if rule == "string":
                return self._lexeme("STRING", i, end, raw)
            # addresses: the port check is fatal before the address is even looked at
            if rule in ("ipv4port", "ipv6port"):
                colon = raw.rindex(":")
                port = int(raw[colon + 1 :])
                if port > 65535:
                    lx = self._lexeme("IPPORT", i, end, None, port)
                    raise LexError(PORT_RANGE, lx, i + colon + 1)
            if rule == "ipv4":
                addr = _make_ipv4(raw)
            elif rule == "ipv4port":
                addr = _make_ipv4(raw[: raw.rindex(":")])
            elif rule == "ipv6":
                addr = _make_ipv6(raw)
            else:  # ipv6port: "[" addr "]:" port
                addr = _make_ipv6(raw[1 : raw.rindex("]")])
            if addr is None:  # inet_pton said no: warn, then try the next best rule
                self.warn(MALFORMED_IP, self._lexeme("STRING", i, end, raw))
                continue
            if rule in ("ipv4", "ipv6"):
                return self._lexeme("IPADDR", i, end, addr)
            return self._lexeme("IPPORT", i, end, addr, int(raw[raw.rindex(":") + 1 :]))
        return None


def tokenize(text: str, warn: WarnFn | None = None) -> list[Lexeme]:
    """All lexemes of `text` (tests and tools; the parser pulls them lazily)."""
    return list(Scanner(text, warn))
