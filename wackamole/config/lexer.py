"""The wackamole.conf scanner: flex's rules, longest match first, ties to the earlier rule.

It owns only how text becomes tokens (and where each token is); it knows nothing about
what a directive means. The parser (parse.py) feeds these tokens to Lark.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Rule order matters: on equal length the earlier rule wins (flex semantics).
# (name, pattern); None as name = skipped text.  re.ASCII keeps case folding to A-Z only,
# as the original's [Aa] classes do.
_IP = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}/[0-9]{1,2}"
_IFACE = r"[^ \t\r\n#{}:]+"

KEYWORDS: tuple[tuple[str, str, str], ...] = (
    # (terminal, pattern, how a human writes it)
    ("NONE", r"none", "None"),
    ("ALL", r"all", "all"),
    ("ARPCACHE", r"arp-cache", "arp-cache"),
    ("PING", r"ping", "ping"),
    ("CONTROL", r"control", "Control"),
    ("THROTTLE", r"throttle", "throttle"),
    ("SPREAD", r"spread", "Spread"),
    ("SPREADRETRYINTERVAL", r"spreadretryinterval", "SpreadRetryInterval"),
    ("RUNDYNAMIC", r"rundynamic", "RunDynamic"),
    ("MODULEDIR", r"moduledir", "ModuleDir"),
    ("PERLUSELIB", r"perluselib", "PerlUseLib"),
    ("PERLUSE", r"perluse", "PerlUse"),
    ("ACTION", r"(?:on|post) (?:up|down)", "on up|on down|post up|post down"),
    ("LOG", r"logfacility", "LogFacility"),
    ("MATURE", r"mature", "Mature"),
    ("BALANCE", r"balance", "Balance"),
    ("AQPR", r"acquisitionsperround", "AcquisitionsPerRound"),
    ("INTERVAL", r"interval", "Interval"),
    ("GROUP", r"group", "Group"),
    ("PREFER", r"prefer", "Prefer"),
    ("NOTIFY", r"notify", "Notify"),
    ("VIFS", r"virtualinterfaces|vi[fp]s", "VirtualInterfaces"),
)

_RULES: tuple[tuple[str | None, str], ...] = (
    (None, r"#[^\n]*"),
    (None, r"[ \t\r]"),
    ("NEWLINE", r"\n"),
    ("LBRACE", r"\{"),
    ("RBRACE", r"\}"),
    ("EQUALS", r"="),
    *((name, pattern) for name, pattern, _ in KEYWORDS),
    ("NUMBER", r"[0-9]+"),
    ("TIME", r"[0-9]+[sSmMhH]"),
    ("IPADDR", _IFACE + ":" + _IP),
    ("IPADDR", _IFACE + ":" + _IP + r"n[0-9]{1,2}"),
    ("IPADDR", _IP),
    ("QSTRING", r"\"[^\"]*\"|'[^']*'"),
    ("STRING", r"[^ \t\r\n#{}]+"),
)

_KEYWORD_NAMES = frozenset(name for name, _, _ in KEYWORDS)
_COMPILED = tuple(
    (name, re.compile(pattern, re.ASCII | (re.IGNORECASE if name in _KEYWORD_NAMES else 0)))
    for name, pattern in _RULES
)


@dataclass(frozen=True)
class ScanToken:
    """One token with both ways of counting where it is."""

    type: str  # terminal name (QSTRING = a quoted STRING)
    text: str  # the raw matched text
    pos: int  # offset in the text
    line: int  # 1-based, every newline counted (what humans see)
    column: int  # 1-based
    c_line: int  # the original's count: newline tokens seen before it (0-based, quotes skipped)

    @property
    def value(self) -> str:
        """The token's value as the original stores it (quotes removed)."""
        return self.text[1:-1] if self.type == "QSTRING" else self.text

    @property
    def offending(self) -> str:
        """The text the original prints as 'Offending token' (it chops a closing quote)."""
        return self.text[:-1] if self.type == "QSTRING" else self.text


@dataclass(frozen=True)
class Scan:
    """A whole file scanned: the tokens, and the end-of-file position."""

    tokens: tuple[ScanToken, ...]
    end_line: int
    end_column: int
    end_c_line: int
    end_pos: int


@lru_cache(maxsize=8)
def scan(text: str) -> Scan:
    """Split text the way the original's flex scanner does."""
    tokens: list[ScanToken] = []
    pos = 0
    line = 1
    line_start = 0
    c_line = 0
    n = len(text)
    while pos < n:
        best_len = 0
        best_name: str | None = None
        for name, rx in _COMPILED:
            m = rx.match(text, pos)
            if m is not None and m.end() - pos > best_len:
                best_len = m.end() - pos
                best_name = name
        # Every character matches some rule (STRING takes anything else), so best_len >= 1.
        matched = text[pos : pos + best_len]
        if best_name == "NEWLINE":
            c_line += 1
        elif best_name is not None:
            tokens.append(ScanToken(best_name, matched, pos, line, pos - line_start + 1, c_line))
        newlines = matched.count("\n")
        if newlines:
            line += newlines
            line_start = pos + matched.rindex("\n") + 1
        pos += best_len
    return Scan(tuple(tokens), line, pos - line_start + 1, c_line, pos)
