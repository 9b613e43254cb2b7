"""wackamole.conf text → WackamoleConfig, with the original's semantics and error messages.

It owns the grammar (grammar.lark, fed by lexer.py), the meaning of each directive, the
original's quirks that change values (Prefer expansion, `Spread = NUMBER`, truncations), and
every configuration error. It does not resolve host names, open sockets or load hooks.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer

from wackamole.config.lexer import KEYWORDS, Scan, ScanToken, scan
from wackamole.config.model import (
    GROUP_NAME_MAX,
    IFNAMSIZ,
    MAX_EXTRAS,
    MAX_NOTIFICATIONS,
    MAX_PREFER,
    MAX_VIFS,
    SPREAD_NAME_MAX,
    UNIX_PATH_MAX,
    Action,
    Hook,
    IpSpec,
    Notification,
    Vif,
    WackamoleConfig,
    prefix_mask,
)

INT_MAX = 2**31 - 1
PERL_MESSAGE = "PerlUseLib used, without embedded perl interpreter"
PERL_RUNDYNAMIC_MESSAGE = "RunDynamic with perl-style parameter, without embedded perl interpreter"

_IP_RX = re.compile(
    r"(?:(?P<iface>[^:]*):)?(?P<a>\d+)\.(?P<b>\d+)\.(?P<c>\d+)\.(?P<d>\d+)/(?P<m>\d+)(?:n(?P<n>\d+))?"
)

# How each terminal is described in "expected ..." messages.
_DESCRIBE: dict[str, str] = {
    **{name: human if name != "ACTION" else "'on up', 'on down', 'post up' or 'post down'"
       for name, _, human in KEYWORDS},
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "EQUALS": "'=' (with blanks on both sides)",
    "NUMBER": "a number",
    "TIME": "a time with its unit (such as 5s or 2m)",
    "IPADDR": "an address such as eth0:192.0.2.10/32",
    "STRING": "a word or a quoted string",
    "QSTRING": "a word or a quoted string",
    "$END": "end of file",
}
_KEYWORD_NAMES = frozenset(name for name, _, _ in KEYWORDS)
_DIRECTIVES = frozenset(
    {"SPREAD", "SPREADRETRYINTERVAL", "GROUP", "LOG", "CONTROL", "MATURE", "ARPCACHE", "BALANCE",
     "NOTIFY", "PREFER", "MODULEDIR", "PERLUSE", "PERLUSELIB", "RUNDYNAMIC", "VIFS"}
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration, located, with what the original printed for it."""

    filename: str
    line: int  # 1-based, every newline counted
    column: int  # 1-based
    found: str
    expected: str
    source_line: str
    original: str = ""  # the original program's text for this problem ("" = it had none)
    original_stream: str = "stderr"

    def render(self) -> str:
        # Keep tabs in the caret line so it lines up under the source line.
        lead = "".join("\t" if ch == "\t" else " " for ch in self.source_line[: self.column - 1])
        return (
            f"{self.filename}:{self.line}:{self.column}: {self.found}, expected {self.expected}\n"
            f"    {self.source_line}\n"
            f"    {lead}^"
        )


class ConfigError(Exception):
    """A configuration that must not start anything; str() is the message for the operator."""

    exit_status = 255

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(p.render() for p in self.problems))

    @property
    def original_stderr(self) -> str:
        """What the original printed on stderr for these problems (before its last line)."""
        return "".join(p.original for p in self.problems if p.original_stream == "stderr")

    @property
    def original_stdout(self) -> str:
        return "".join(p.original for p in self.problems if p.original_stream == "stdout")


class _ScanLexer(Lexer):
    """Hands lexer.py's tokens to Lark."""

    def __init__(self, lexer_conf: Any) -> None:
        pass

    def lex(self, data: Any, *_: Any) -> Iterator[Token]:  # type: ignore[override]
        # Lark calls a custom lexer with the text (str, or a TextSlice/LexerState in
        # some versions).
        text = data
        while not isinstance(text, str):
            text = text.text
        for t in scan(text).tokens:
            yield Token(t.type, t.text, t.pos, t.line, t.column)


@cache
def _parser() -> Lark:
    grammar = resources.files("wackamole.config").joinpath("grammar.lark").read_text()
    return Lark(grammar, parser="lalr", lexer=_ScanLexer)


def _shown(text: str) -> str:
    """Text safe to print whatever the terminal's encoding (bad bytes as \\xNN)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class _Source:
    """Locates tokens in the text and builds Problems."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.scan: Scan = scan(text)
        self.by_pos = {t.pos: t for t in self.scan.tokens}
        self.lines = text.split("\n")

    def line_text(self, line: int) -> str:
        raw = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return _shown(raw.rstrip("\r"))

    def at(
        self, tok: ScanToken, found: str, expected: str, original: str = "",
        stream: str = "stderr",
    ) -> Problem:
        return Problem(self.filename, tok.line, tok.column, found, expected,
                       self.line_text(tok.line), original, stream)

    def original_parser_error(self, c_line: int, offending: str) -> str:
        return f"Parser error on or before line {c_line}\nOffending token: {_shown(offending)}\n"

    def at_end(self, expected: str) -> Problem:
        # Point just after the last thing written, not at an empty line after it.
        toks = self.scan.tokens
        line, column = 1, 1
        if toks:
            last = toks[-1]
            line = last.line + last.text.count("\n")
            tail = last.text.rsplit("\n", 1)
            column = (last.column + len(last.text)) if len(tail) == 1 else len(tail[1]) + 1
        return Problem(self.filename, line, column, "found end of file", expected,
                       self.line_text(line),
                       self.original_parser_error(self.scan.end_c_line, ""))


def _brief(text: str) -> str:
    """A token as quoted in our message: one line, not too long, printable."""
    first, *rest = text.split("\n", 1)
    first = first.rstrip("\r")
    if rest or len(first) > 60:
        first = first[:60] + "..."
    return _shown(first).replace("\r", "\\r")


def _describe_expected(expected: set[str]) -> str:
    if expected & _DIRECTIVES and len(expected & _DIRECTIVES) > 3:
        rest = sorted(expected - _DIRECTIVES - {"$END"})
        words = ["a directive (Spread, Group, VirtualInterfaces, ...)"]
        words += [_DESCRIBE.get(e, e) for e in rest]
        if "$END" in expected:
            words.append("end of file")
        return " or ".join(words)
    names = sorted({_DESCRIBE.get(e, e) for e in expected})
    return " or ".join(names) if names else "nothing more"


def _describe_found(tok: ScanToken, expected: set[str]) -> str:
    found = f"found '{_brief(tok.offending if tok.type == 'QSTRING' else tok.text)}'"
    if tok.type == "STRING" and "=" in tok.text and len(tok.text) > 1:
        found += " ('=' needs blanks on both sides)"
    elif tok.type == "NUMBER" and "TIME" in expected:
        found += " (a time needs its unit: s or m)"
    elif tok.type in _KEYWORD_NAMES and "STRING" in expected:
        found += " (a reserved word: put it in quotes)"
    elif tok.text.lower() in ("on", "post") and "ACTION" in expected:
        found += " (exactly one space between the two words)"
    elif tok.type == "STRING" and _IP_RX.fullmatch(tok.text + "/32") and "IPADDR" in expected:
        found += " (an address needs its /mask)"
    return found


def _ip_problem(src: _Source, tok: ScanToken) -> Problem | None:
    """The original's range checks on an address token (and our interface-name limit)."""
    m = _IP_RX.fullmatch(tok.text)
    assert m is not None  # the scanner only makes IPADDR tokens of this shape
    octets = [int(m[k]) for k in "abcd"]
    hint = m["n"]
    iface = m["iface"] or ""
    if any(o > 255 for o in octets) or int(m["m"]) > 32 or (hint is not None and int(hint) > 32):
        return src.at(tok, f"found '{_brief(tok.text)}'",
                      "an IPv4 address with octets 0-255, a mask /0-/32 and a hint n0-n32",
                      src.original_parser_error(tok.c_line, tok.text))
    if len(iface.encode("utf-8", "surrogateescape")) > IFNAMSIZ - 1:
        return src.at(tok, f"found interface name '{_brief(iface)}'",
                      f"an interface name of at most {IFNAMSIZ - 1} bytes")
    return None


def _ip_spec(text: str) -> IpSpec:
    m = _IP_RX.fullmatch(text)
    assert m is not None
    a, b, c, d = (int(m[k]) for k in "abcd")  # atoi: leading zeros are fine ("010" = 10)
    addr = IPv4Address((a << 24) | (b << 16) | (c << 8) | d)
    return IpSpec(m["iface"] or "", addr, int(m["m"]),
                  int(m["n"]) if m["n"] is not None else 24)


def _atoi(digits: str) -> int:
    """The digits' value, or just "too large" (INT_MAX + 1) for very long ones."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 10 else INT_MAX + 1


def _le(address: IPv4Address) -> int:
    """The 4 network-order bytes read as a little-endian integer (x86 s_addr)."""
    return int.from_bytes(address.packed, "little")


def _from_le(value: int) -> IPv4Address:
    return IPv4Address(value.to_bytes(4, "little"))


def prefer_expansion(spec: IpSpec, in_braces: bool) -> Iterator[IPv4Address]:
    """The addresses the original appends for one Prefer address (x86 byte order quirks).

    `Prefer iface:IP/M` keeps IP & mask; inside braces the mask is applied to the
    network-order value as a host integer, so the loop walks the *first* octet.
    """
    k = prefix_mask(spec.prefix)
    mask = k if in_braces else int.from_bytes(k.to_bytes(4, "big"), "little")
    x = _le(spec.address) & mask
    start = x
    while (start & mask) == (x & mask):
        yield _from_le(x)
        x = (x + 1) & 0xFFFFFFFF
        if x == start:  # the whole 32-bit space (cannot happen for M >= 1; be safe)
            return


def _tokens(tree: Tree) -> list[Token]:
    return [c for c in tree.children if isinstance(c, Token)]


def _string_value(src: _Source, node: Tree | Token) -> tuple[str, ScanToken]:
    """Value and token of a `string` node."""
    tok = node.children[0] if isinstance(node, Tree) else node
    assert isinstance(tok, Token)
    st = src.by_pos[tok.start_pos]
    return st.value, st


class _Builder:
    """Runs the directives' actions in file order, as the original's grammar actions do."""

    def __init__(self, src: _Source) -> None:
        self.src = src
        self.problems: list[Problem] = []
        self.messages: list[str] = []
        self.advice: list[str] = []
        self.values: dict[str, Any] = {}
        self.prefer: list[IPv4Address] = []
        self.vifs: list[Vif] = []
        self.notifications: list[Notification] = []
        self.hooks: list[Hook] = []
        self.module_dir = "."
        self.group_token: ScanToken | None = None

    def st(self, tok: Token) -> ScanToken:
        return self.src.by_pos[tok.start_pos]

    def number(self, tok: Token) -> int:
        value = _atoi(tok.value)
        if value > INT_MAX:
            self.problems.append(self.src.at(self.st(tok), f"found '{tok.value}'",
                                             f"a number no larger than {INT_MAX}"))
            return 0
        return value

    def time(self, tok: Token) -> int:
        value = _atoi(tok.value[:-1]) * (60 if tok.value[-1] in "mM" else 1)  # 'h' is seconds
        if value > INT_MAX:
            self.problems.append(self.src.at(self.st(tok), f"found '{tok.value}'",
                                             f"a time no longer than {INT_MAX} seconds"))
            return 0
        return value

    def add_prefer(self, address: IPv4Address) -> bool:
        if len(self.prefer) >= MAX_PREFER:
            self.messages.append(f"Only {MAX_PREFER} prefered allowed.\n\n")
            return False
        self.prefer.append(address)
        return True

    def prefer_address(self, tok: Token, in_braces: bool) -> None:
        spec = _ip_spec(tok.value)
        added = []
        for address in prefer_expansion(spec, in_braces):
            if not self.add_prefer(address):
                break  # the original keeps trying (and printing) for every one left
            added.append(address)
        if spec.prefix != 32:
            shown = ", ".join(str(a) for a in added[:4]) + (", ..." if len(added) > 4 else "")
            self.advice.append(
                f"{self.src.filename}:{tok.line}: Prefer {tok.value} is not a /32; like the "
                f"original this prefers {len(added)} address(es): {shown}"
            )

    def ip(self, tok: Token) -> IpSpec:
        return _ip_spec(tok.value)

    def setting(self, node: Tree) -> None:
        kind = node.data
        toks = _tokens(node)
        strings = [c for c in node.children if isinstance(c, Tree) and c.data == "string"]
        if kind == "spread":
            if strings:
                value, _ = _string_value(self.src, strings[0])
            else:
                value = str(self.number(toks[-1]))  # re-printed with %d: 04803 -> "4803"
            self.values["spread"] = value[:SPREAD_NAME_MAX]
            self.values["spread_in_file"] = True
        elif kind == "retry":
            self.values["spread_retry_interval"] = self.time(toks[-1])
        elif kind == "group":
            value, st = _string_value(self.src, strings[0])
            if len(value) > GROUP_NAME_MAX:
                self.advice.append(f"{self.src.filename}:{st.line}: Group is cut to "
                                   f"{GROUP_NAME_MAX} characters: {value[:GROUP_NAME_MAX]}")
            self.values["group"] = value[:GROUP_NAME_MAX]
            self.group_token = st
        elif kind == "logfacility":
            self.values["log_facility"] = _string_value(self.src, strings[0])[0]
        elif kind == "control":
            value, st = _string_value(self.src, strings[0])
            if len(value.encode("utf-8", "surrogateescape")) > UNIX_PATH_MAX:
                self.problems.append(self.src.at(
                    st, f"found a Control path of {len(value.encode())} bytes",
                    f"a unix socket path of at most {UNIX_PATH_MAX} bytes"))
            self.values["control"] = value
        elif kind == "mature":
            self.values["mature"] = self.time(toks[-1])
        elif kind == "arp_cache":
            self.values["arp_cache"] = self.time(toks[-1])
        elif kind == "balance":
            for param in node.children:
                if not isinstance(param, Tree):
                    continue
                ptoks = _tokens(param)
                if param.data == "aqpr_n":
                    self.values["balance_rate_configured"] = self.number(ptoks[-1])
                elif param.data == "aqpr_all":
                    self.values["balance_all"] = True  # a later "= N" does not undo it
                else:
                    self.values["balance_interval_configured"] = self.time(ptoks[-1])
        elif kind == "notify_arp_cache":
            self.notify(Notification(None), toks[0])
        elif kind == "notify_none":
            pass
        elif kind == "notify_list":
            for item in node.children:
                if not isinstance(item, Tree):
                    continue
                itoks = _tokens(item)
                ping = any(t.type == "PING" for t in itoks)
                if item.data == "n_arp":
                    self.notify(Notification(None, 0, ping), itoks[0])
                    continue
                throttle = next((self.number(t) for t in itoks if t.type == "NUMBER"), 0)
                spec = self.ip(itoks[0])
                if spec.ifname.startswith("arp-cache"):
                    # The original tells the two kinds apart by this name prefix alone.
                    self.advice.append(
                        f"{self.src.filename}:{itoks[0].line}: Notify {itoks[0].value} is taken "
                        "as arp-cache because of its interface name (as in the original)")
                    self.notify(Notification(None, throttle, ping), itoks[0])
                    continue
                if not spec.ifname:
                    self.advice.append(
                        f"{self.src.filename}:{itoks[0].line}: Notify {itoks[0].value} has no "
                        "interface, so it never matches a virtual interface (as in the original)")
                self.notify(Notification(spec, throttle, ping), itoks[0])
        elif kind == "prefer_none":
            self.add_prefer(IPv4Address(0))
        elif kind == "prefer_host":
            # The original's host lookup is an empty stub: it prints this and adds nothing.
            value, _ = _string_value(self.src, strings[0])
            self.messages.append(f"Couldn't lookup {value}.\n\n")
        elif kind == "prefer_one":
            self.prefer_address(toks[-1], in_braces=False)
        elif kind == "prefer_list":
            for tok in toks:
                if tok.type == "IPADDR":
                    self.prefer_address(tok, in_braces=True)
        elif kind == "moduledir":
            self.module_dir = _string_value(self.src, strings[0])[0]
        elif kind in ("perluse", "perluselib"):
            st = self.st(toks[0])
            self.problems.append(self.src.at(
                st, f"found {st.text}", "no Perl directives (there is no embedded Perl)",
                PERL_MESSAGE + "\n", "stdout"))
        elif kind == "rundynamic":
            value, st = _string_value(self.src, strings[0])
            action = Action.from_text(toks[-1].value)
            if "::" in value or ":" not in value:
                self.problems.append(self.src.at(
                    st, f"found Perl function '{_brief(value)}'",
                    "path:function of a shared object (there is no embedded Perl)",
                    PERL_RUNDYNAMIC_MESSAGE + "\n", "stdout"))
            else:
                path, func = value.split(":", 1)
                self.hooks.append(Hook(f"{self.module_dir}/{path}", func, action))
        elif kind == "vifs":
            for item in node.children:
                if not isinstance(item, Tree):
                    continue
                itoks = [t for t in _tokens(item) if t.type == "IPADDR"]
                if len(itoks) > 1 + MAX_EXTRAS:
                    self.problems.append(self.src.at(
                        self.st(itoks[1 + MAX_EXTRAS]),
                        f"found address number {2 + MAX_EXTRAS} of one virtual interface",
                        f"at most {1 + MAX_EXTRAS} addresses in one {{ }} group"))
                specs = [self.ip(t) for t in itoks]
                if len(self.vifs) == MAX_VIFS:
                    self.problems.append(self.src.at(
                        self.st(itoks[0]), f"found virtual interface number {MAX_VIFS + 1}",
                        f"at most {MAX_VIFS} virtual interfaces"))
                self.vifs.append(Vif(specs[0], tuple(specs[1:])))

    def notify(self, notification: Notification, tok: Token) -> None:
        if len(self.notifications) == MAX_NOTIFICATIONS:
            self.problems.append(self.src.at(
                self.st(tok), f"found notification number {MAX_NOTIFICATIONS + 1}",
                f"at most {MAX_NOTIFICATIONS} notifications"))
        self.notifications.append(notification)

    def finish(self) -> WackamoleConfig:
        cfg = WackamoleConfig(
            **self.values,
            prefer=tuple(self.prefer),
            vifs=tuple(self.vifs),
            notifications=tuple(self.notifications),
            module_dir=self.module_dir,
            hooks=tuple(self.hooks),
            messages=tuple(self.messages),
            source=self.src.filename,
        )
        return dataclasses.replace(cfg, advice=tuple(self.advice) + _advice(cfg))


def _advice(cfg: WackamoleConfig) -> tuple[str, ...]:
    """Legal settings that will not do what the operator probably wants."""
    notes = []
    if not cfg.group:
        notes.append("no Group: every join fails (ILLEGAL_GROUP) and is retried forever")
    if not cfg.vifs:
        notes.append("no VirtualInterfaces: this node will manage no address")
    if not cfg.control:
        notes.append("no Control: wackatrl cannot reach this daemon")
    if not re.fullmatch(r"\d+(@.+)?", cfg.spread):
        notes.append(f"Spread = {cfg.spread}: the Spread library only accepts port or port@host")
    primaries = {v.primary.address for v in cfg.vifs}
    for address in cfg.prefer:
        if address != IPv4Address(0) and address not in primaries:
            notes.append(f"Prefer {address} is not the first address of any virtual interface "
                         "and has no effect")
    return tuple(notes)


def parse_config_text(text: str, filename: str = "wackamole.conf") -> WackamoleConfig:
    """Parse wackamole.conf text; raise ConfigError with every problem found."""
    src = _Source(text, filename)
    problems: list[Problem] = []
    tree: Tree | None = None
    stop = len(text) + 1
    try:
        tree = _parser().parse(text)
    except UnexpectedToken as exc:
        expected = set(exc.accepts or exc.expected)
        if exc.token.type == "$END":
            problems.append(src.at_end(_describe_expected(expected)))
        else:
            st = src.by_pos[exc.token.start_pos]
            stop = st.pos
            problems.append(src.at(st, _describe_found(st, expected),
                                   _describe_expected(expected),
                                   src.original_parser_error(st.c_line, st.offending)))
    except UnexpectedInput as exc:  # pragma: no cover - the scanner accepts every character
        raise ConfigError([Problem(filename, 1, 1, "unreadable input", str(exc), "")]) from None
    # The original range-checks addresses while scanning, so those come before the syntax error.
    ip_problems = [p for t in src.scan.tokens if t.type == "IPADDR" and t.pos < stop
                   for p in [_ip_problem(src, t)] if p is not None]
    if tree is None or ip_problems:
        raise ConfigError(ip_problems + problems)
    builder = _Builder(src)
    for node in tree.children:
        builder.setting(node)
    if builder.problems:
        raise ConfigError(sorted(builder.problems, key=lambda p: (p.line, p.column)))
    return builder.finish()


def load_config(path: str | Path) -> WackamoleConfig:
    """Read and parse one wackamole.conf file (OSError if it cannot be read)."""
    data = Path(path).read_bytes()
    return parse_config_text(data.decode("utf-8", "surrogateescape"), str(path))
