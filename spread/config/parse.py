"""spread.conf text -> SpreadConfig, with the original's checks, messages and their order.

The lark grammar (grammar.lark) gives the structure; the actions below run as rules reduce,
in the same order as the bison actions of Spread 5.0.1, and record what the original would
log. Bison's default reductions are emulated (an unexpected token first reduces what can be
reduced) because they decide which message a broken file gets. No I/O here except the DNS
lookup of name-only daemons, which callers can replace (`resolver`).
"""

from __future__ import annotations

import re
import socket
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from lark import Lark
from lark.exceptions import UnexpectedToken
from lark.lexer import Lexer
from lark.parsers.lalr_analysis import Shift
from lark.parsers.lalr_parser_state import ParseConf, ParserState

from spread.config import alarm as A
from spread.config.errors import ConfigError
from spread.config.hash import (
    HashDaemon,
    HashSegment,
    auto_vid,
    conf_hash,
    hash_text,
    to_bytes,
)
from spread.config.lexer import KEYWORDS, Lexeme, LexError, Scanner
from spread.config.model import (
    AF_INET6_NUM,
    AF_INET_NUM,
    DEFAULT_ACCELERATED_WINDOW,
    DEFAULT_MAX_SESSION_MESSAGES,
    DEFAULT_PERSONAL_WINDOW,
    DEFAULT_SPREAD_PORT,
    DEFAULT_WINDOW,
    MAX_ADDRS_SEGMENT,
    MAX_INTERFACES_PROC,
    MAX_PROC_NAME,
    MAX_PROCS_RING,
    MAX_PROCS_SEGMENT,
    MAX_SEGMENTS,
    SP_GROUP,
    SP_RUNTIME_DIR,
    SP_USER,
    DaemonSpec,
    IfType,
    InterfaceSpec,
    IpAddress,
    LoggingSettings,
    PortReuse,
    SegmentSpec,
    SpreadConfig,
)

MAXPATHLEN = 4096
MAX_CONF_STRING = 100000
MAX_AUTH_LIST_LEN = 90
MAX_AUTH_NAME = 30
KNOWN_AUTH = ("NULL", "IP")  # PWORD only exists in builds with ENABLE_PASSWORD
KNOWN_ACP = ("PERMIT",)
TIMEOUT_KEYS = {
    "TokenTimeout": "token", "HurryTimeout": "hurry", "AliveTimeout": "alive",
    "JoinTimeout": "join", "RepTimeout": "rep", "SegTimeout": "seg",
    "GatherTimeout": "gather", "FormTimeout": "form", "LookupTimeout": "lookup",
}

Resolver = Callable[[str], Sequence[tuple[int, bytes]]]
"""name -> [(4|6, packed address), ...] in getaddrinfo order; raises LookupError(text)."""


def system_resolver(name: str) -> list[tuple[int, bytes]]:
    """getaddrinfo(name, NULL, {PF_UNSPEC, SOCK_DGRAM, IPPROTO_UDP}) as the original calls it."""
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_UNSPEC, socket.SOCK_DGRAM,
                                   socket.IPPROTO_UDP)
    except socket.gaierror as e:
        raise LookupError(e.strerror or str(e)) from None
    except (UnicodeError, ValueError) as e:
        raise LookupError("Name or service not known") from e
    out: list[tuple[int, bytes]] = []
    for fam, _t, _p, _c, sa in infos:
        if fam == socket.AF_INET:
            out.append((4, socket.inet_pton(socket.AF_INET, sa[0])))
        elif fam == socket.AF_INET6:
            out.append((6, socket.inet_pton(socket.AF_INET6, sa[0].split("%")[0])))
    return out


class _NoLexer(Lexer):
    """Lark needs a lexer class; ours (lexer.Scanner) feeds the parser directly."""

    def __init__(self, conf: Any) -> None:
        pass

    def lex(self, *args: Any) -> Any:  # pragma: no cover - never called
        raise NotImplementedError


@lru_cache(maxsize=1)
def _grammar() -> Lark:
    text = resources.files("spread.config").joinpath("grammar.lark").read_text()
    return Lark(text, parser="lalr", lexer=_NoLexer, start="start")


class _Inline(list):
    """Children of lark's helper rules (`x*`), spliced into the parent's children."""


class _End:
    type = "$END"


def _flat(children: list) -> list:
    out: list = []
    for c in children:
        if isinstance(c, _Inline):
            out.extend(_flat(c))
        else:
            out.append(c)
    return out


# ---- descriptions for the `found …, expected …` line ---------------------------------------
EXPECT_WORDS = {
    "SEGMENT": "Spread_Segment",
    "IPADDR": "an IP address",
    "IPPORT": "an address with :port",
    "NUMBER": "a number (at most 9 digits)",
    "STRING": "a name",
    "OPENBRACE": "'{'",
    "CLOSEBRACE": "'}'",
    "EQUALS": "' = ' (with blanks around it)",
    "SEMICOLON": "';'",
    "BANG": "'!'",
    "VIRTUALID": "VirtualID",
    "IMONITOR": "an interface type (M, C, D)",
    "ICLIENT": "an interface type (M, C, D)",
    "IDAEMON": "an interface type (M, C, D)",
    "SP_BOOL": "a boolean (true, yes, false, no)",
    "SP_TRIVAL": "on, off or auto",
    "ALARMBIT": "a DebugFlags name (ALL, EXIT, PRINT, CONFIGURATION, …)",
    "PRIO": "a priority (pDEBUG, INFO, WARNING, ERROR, CRITICAL, FATAL)",
    "DEBUGFLAGS": "a directive",
    "EVENTPRIORITY": "a directive",
    "EVENTTIMESTAMP": "a directive",
    "EVENTPRECISETIMESTAMP": "a directive",
    "SOCKETPORTREUSE": "a directive",
    "NUMKEY": "a directive",
    "BOOLKEY": "a directive",
    "STRKEY": "a directive",
    "$END": "end of file",
}


_LOOKS_LIKE_IP = re.compile(r"\[?[0-9A-Fa-f.:%]+\]?(:[0-9]+)?;?")


def ip_hint(text: str) -> str:
    """Why an address-looking word is a STRING: an invalid address, or a glued `;`."""
    if text.endswith(";") and len(text) > 1:
        return f" ('{text}' is one word: put a blank before ';')"
    if _LOOKS_LIKE_IP.fullmatch(text) and any(c.isdigit() for c in text):
        return " (not a valid IP address)"
    return ""


def describe(lx: Lexeme | None) -> str:
    if lx is None:
        return "end of file"
    hint = ""
    if lx.kind == "STRING":
        hint = ip_hint(lx.text)
        low = lx.text.lower()
        for kw in KEYWORDS:
            if low == kw.lower():
                return f"'{lx.text}' (keywords are case-sensitive: {kw})"
            if low.startswith(kw.lower() + "="):
                hint = " ('=' needs blanks around it)"
    return f"'{lx.text}'{hint}"


def expected_words(types: set[str]) -> str:
    words: list[str] = []
    for t in sorted(types):
        w = EXPECT_WORDS.get(t, t)
        if w not in words:
            words.append(w)
    if "Spread_Segment" in words and "a directive" in words:
        words = [w for w in words if w not in ("Spread_Segment", "a directive")]
        words.insert(0, "Spread_Segment or a directive")
    if len(words) > 1:
        return ", ".join(words[:-1]) + " or " + words[-1]
    return words[0] if words else "nothing more"


# ---- the parse ------------------------------------------------------------------------------
@dataclass
class _Daemon:
    name: str
    address: IpAddress
    at: Lexeme  # where its entry starts
    vid: int = 0
    explicit_vid: bool = False
    interfaces: list[InterfaceSpec] = field(default_factory=list)
    segment: int = 0
    index_in_segment: int = 0
    port: int = 0


@dataclass
class _Segment:
    port: int
    addresses: list[IpAddress]
    daemons: list[_Daemon]
    at: Lexeme


def _truncate_name(name: str) -> str:
    raw = to_bytes(name)[: MAX_PROC_NAME - 1]
    return raw.decode("utf-8", "surrogateescape")


class _Parse:
    def __init__(self, text: str, filename: str, resolver: Resolver,
                 hostname: Callable[[], str]) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.filename = filename
        self.resolver = resolver
        self.hostname = hostname
        self.log: list[A.Entry] = []
        self.lookahead: Lexeme | None = None
        self.at_eof = False
        # the original's parser globals
        self.procs: list[_Daemon] = []
        self.segments: list[_Segment] = []
        self.seg_daemons: list[_Daemon] = []
        self.cur: _Daemon | None = None
        self.seg_extras = 0
        self.active: int | None = None  # 4 / 6
        self.window = DEFAULT_WINDOW
        self.personal_window = DEFAULT_PERSONAL_WINDOW
        self.accelerated_window = DEFAULT_ACCELERATED_WINDOW
        self.accelerated_ring: bool | None = None
        self.wide_area: bool | None = None
        self.timeouts: dict[str, int] = {}
        self.max_session_messages = DEFAULT_MAX_SESSION_MESSAGES
        self.dangerous_monitor = False
        self.port_reuse = PortReuse.AUTO
        self.runtime_dir = SP_RUNTIME_DIR
        self.user = SP_USER
        self.group = SP_GROUP
        self.auth_allowed: list[str] = ["NULL"]
        self.auth_required: list[str] = []
        self.auth_configured = False
        self.acp = "PERMIT"
        self.exclude_seg_addrs = False
        self.ignore_mcast_errors = False
        self.mask = A.DEFAULT_MASK
        self.priority = A.INFO
        self.log_file: str | None = None
        self.ts_format: str | None = None  # alarm_format when custom
        self.ts_custom = False
        self.ts_precise = False
        self.ts_effective: A.SetTimestamp | None = None
        self.where: dict[str, Lexeme] = {}
        self.result: SpreadConfig | None = None

    # ---- reporting ------------------------------------------------------------------------
    def info(self, text: str, priority: int = A.INFO, types: int = A.CONF_SYS) -> None:
        self.log.append(A.Record(priority, types, text))

    def yytext(self, consistent: Lexeme | None = None) -> Lexeme | None:
        """What flex's yytext holds: the rule's last token when bison reduced without a
        lookahead (a "consistent" state), else the lookahead already read."""
        if consistent is not None:
            return consistent
        return None if self.at_eof else self.lookahead

    def banner_line(self, lx: Lexeme | None) -> int:
        if lx is not None:
            return lx.line
        n = self.text.count("\n")
        return max(1, n if self.text.endswith("\n") else n + 1)

    def fail(self, original: str, *, at: Lexeme | None, found: str, expected: str,
             yytext: Lexeme | None = None, banner: bool = True,
             column: int | None = None) -> ConfigError:
        if at is None:
            line = self.banner_line(None)
            src = self.lines[line - 1] if line - 1 < len(self.lines) else ""
            col = len(src) + 1
        else:
            line, col = at.line, column if column is not None else at.column
            src = self.lines[line - 1] if line - 1 < len(self.lines) else ""
        return ConfigError(
            original, filename=self.filename, found=found, expected=expected, banner=banner,
            offending=yytext.text if yytext is not None else "",
            banner_line=self.banner_line(yytext), line=line, column=col, source_line=src,
            log=tuple(self.log),
        )

    def warn(self, message: str, yytext: Lexeme | None) -> None:
        self.log.append(A.parse_warning(self.banner_line(yytext),
                                        yytext.text if yytext else "", message))

    # ---- driver -------------------------------------------------------------------------------
    def run(self) -> SpreadConfig:
        lark = _grammar()
        table = lark.parser.parser.parser.parse_table
        callbacks: dict[Any, Callable[[list], Any]] = {}
        for rule in lark.rules:
            name = rule.alias or rule.origin.name
            if name.startswith("_"):
                callbacks[rule] = lambda ch: _Inline(ch)
            else:
                method = getattr(self, "on_" + name)
                callbacks[rule] = (lambda m: lambda ch: m(_flat(ch)))(method)
        state = ParserState(ParseConf(table, callbacks, "start"), None)
        scanner = Scanner(self.text, lambda msg, lx: self.warn(msg, lx))
        while True:
            try:
                lx = next(scanner, None)
            except LexError as e:
                raise self.fail(e.message, at=e.lexeme, column=e.detail_pos -
                                e.lexeme.pos + e.lexeme.column, yytext=e.lexeme,
                                found=f"port {e.lexeme.port}",
                                expected="a port from 0 to 65535") from None
            if lx is None:
                break
            self.lookahead = lx
            self._feed(state, table, lx, False)
        self.at_eof = True
        self._feed(state, table, _End(), True)
        assert self.result is not None
        return self.result

    def _feed(self, state: ParserState, table: Any, tok: Any, is_end: bool) -> None:
        expected: set[str] | None = None  # what the state that first refused tok wanted
        while True:
            acts = table.states[state.position]
            if tok.type in acts:
                try:
                    state.feed_token(tok, is_end)
                    return
                except UnexpectedToken:
                    continue  # LALR reduced a little, then found the error: decide below
            if expected is None:
                expected = {t for t in acts if t.isupper() or t == "$END"}
            reduces = [arg for (act, arg) in acts.values() if act is not Shift]
            if not reduces or reduces[0].origin.name == "start":
                raise self._syntax_error(tok, expected)
            # bison's default reduction: the most frequent reduce action of this state
            rule = Counter(reduces).most_common(1)[0][0]
            size = len(rule.expansion)
            values = state.value_stack[-size:] if size else []
            if size:
                del state.state_stack[-size:]
                del state.value_stack[-size:]
            value = state.parse_conf.callbacks[rule](values)
            _act, new_state = table.states[state.position][rule.origin.name]
            state.state_stack.append(new_state)
            state.value_stack.append(value)

    def _syntax_error(self, tok: Any, expected: set[str]) -> ConfigError:
        lx = tok if isinstance(tok, Lexeme) else None
        return self.fail("syntax error", at=lx, yytext=lx, found=describe(lx),
                         expected=expected_words(expected))

    # ---- segments ---------------------------------------------------------------------------
    def on_seg_first(self, ch: list) -> Lexeme:
        return ch[0]

    def on_seg_extra(self, ch: list) -> Lexeme:
        lx: Lexeme = ch[0]
        self.seg_extras += 1
        if self.seg_extras >= MAX_ADDRS_SEGMENT:
            raise self.fail("Too many segment addresses specified!", at=lx, yytext=lx,
                            found=f"segment address number {self.seg_extras + 1}",
                            expected=f"at most {MAX_ADDRS_SEGMENT} addresses per segment")
        return lx

    def on_segment(self, ch: list) -> None:
        seg_kw: Lexeme = ch[0]
        first: Lexeme = ch[1]
        close: Lexeme = ch[-1]
        extras = [c for c in ch[2:] if isinstance(c, Lexeme) and c.kind == "IPADDR"]
        self.seg_extras = 0
        port = first.port or DEFAULT_SPREAD_PORT
        index = len(self.segments)
        if index >= MAX_SEGMENTS:
            raise self.fail("Too many segments configured!", at=seg_kw, yytext=close,
                            found=f"segment number {index + 1}",
                            expected=f"at most {MAX_SEGMENTS} segments")
        addrs: list[tuple[IpAddress, Lexeme]] = [(first.value, first)]
        addrs += [(e.value, e) for e in extras]
        for addr, lx in addrs:
            ntop = addr.ntop
            if self.active is None or addr.family != self.active:
                fam = {None: "not yet known", 4: "IPv4", 6: "IPv6"}[self.active]
                raise self.fail(
                    f"Segment address {ntop} incompatible with ActiveIPVersion!", at=lx,
                    yytext=close, found=f"IPv{addr.family} segment address {lx.text}",
                    expected=f"an address of the active IP version ({fam}; it is set by "
                    "ActiveIPVersion or the first daemon's address)")
            if addr.is_unspecified:
                raise self.fail(
                    f"Segment configured with an unspecified segment address {ntop}!", at=lx,
                    yytext=close, found=f"segment address {lx.text}",
                    expected="a broadcast or multicast address")
            if addr.family == 6 and not addr.is_multicast:
                self.warn(f"IPv6 segment configured with a non-multicast segment address "
                          f"{ntop}!\n", close)
            if addr.is_loopback:
                # the original's format has no newline: the next line is glued on
                self.warn(f"Segment configured with a loopback address {ntop}!", close)
        self.info(f"Successfully configured Segment {index} [{first.value.ntop}]:{port} "
                  f"with {len(self.seg_daemons)} procs:\n")
        start = len(self.procs) - len(self.seg_daemons)
        for i in range(start, len(self.procs)):
            d = self.procs[i]
            d.port = port
            self.info(f"\t{d.name:>20}: {d.address.ntop}\n")
            for j in range(i):
                o = self.procs[j]
                if o.address.same_ip(d.address) and o.port == port:
                    raise self.fail(
                        f"Daemon's ({d.name}) address ({d.address.ntop}) not unique! Already "
                        f"in use by daemon #{j} ({o.name})!", at=d.at, yytext=close,
                        found=f"address {d.address.ntop} port {port} of daemon '{d.name}'",
                        expected=f"an address/port no other daemon has (daemon #{j} "
                        f"'{o.name}', line {o.at.line}, has it)")
        self.where[f"segment:{index}"] = seg_kw
        self.segments.append(_Segment(port, [a for a, _ in addrs], list(self.seg_daemons),
                                      seg_kw))
        self.seg_daemons = []

    # ---- daemons ------------------------------------------------------------------------------
    def _set_name_and_addr(self, name_lx: Lexeme | None, addr_lx: Lexeme | None,
                           yytext: Lexeme | None) -> None:
        at = name_lx or addr_lx
        assert at is not None
        name = name_lx.value if name_lx is not None else None
        if name is not None:
            if name == "":
                raise self.fail("Zero length daemon name!", at=at, yytext=yytext,
                                found="an empty quoted name", expected="a daemon name")
            if name.endswith(";"):
                self.warn("Daemon name ended with a semicolon! If you intended for it to "
                          "demark two different daemon specifications then it needs white "
                          "space around it!", yytext)
        if addr_lx is not None:
            addr: IpAddress = addr_lx.value
            if addr.is_unspecified:
                raise self.fail("A daemon's address must not be the unspecified address!",
                                at=addr_lx, yytext=yytext, found=f"address {addr_lx.text}",
                                expected="the daemon's own unicast address")
        else:
            assert name is not None
            try:
                found = list(self.resolver(name))
            except LookupError as e:
                nxt = yytext.text if yytext is not None and yytext is not name_lx else ""
                hint = ip_hint(name)
                if not hint and ip_hint(nxt):
                    hint = (ip_hint(nxt) if nxt.endswith(";") else
                            f" (the next word '{nxt}' is not a valid IP address)")
                raise self.fail(str(e.args[0]) if e.args else "Name or service not known",
                                at=at, yytext=yytext, found=f"daemon name '{name}'{hint} "
                                "(no address given, and looking it up failed)",
                                expected="a resolvable host name or an explicit address "
                                "after the name") from None
            pick = next((a for a in found if self.active is None or a[0] == self.active),
                        None)
            if pick is None:
                raise self.fail(
                    "Couldn't find an appropriate address based on daemon name! Check that "
                    "your ActiveIPVersion and DNS entries match or explicitly configure the "
                    "address to use!", at=at, yytext=yytext,
                    found=f"daemon name '{name}' with no IPv{self.active} address",
                    expected="an explicit address after the name")
            addr = IpAddress(pick[0], pick[1])
        if self.active is None:
            self.active = addr.family
        elif self.active != addr.family:
            where = addr_lx or at
            raise self.fail(
                "A daemon's address was of the wrong type!  It disagreed with "
                "ActiveIPVersion!", at=where, yytext=yytext,
                found=f"IPv{addr.family} address {addr.ntop}",
                expected=f"an IPv{self.active} address (the active IP version)")
        if addr.is_multicast:
            raise self.fail("A daemon's address can't be a multicast address!",
                            at=addr_lx or at, yytext=yytext,
                            found=f"multicast address {addr.ntop}",
                            expected="the daemon's own unicast address")
        if name is None:
            assert addr_lx is not None
            proc_name = _truncate_name(addr_lx.text).split("%")[0]
        else:
            proc_name = _truncate_name(name)
        self.info(f"Configured daemon '{proc_name}' with IP '{addr.ntop}'\n")
        for i, other in enumerate(self.procs):
            if other.name == proc_name:
                raise self.fail(
                    f"Daemon name ({proc_name}) not unique! Already in use by daemon #{i}!",
                    at=at, yytext=yytext, found=f"daemon name '{proc_name}'",
                    expected=f"a name no other daemon has (daemon #{i}, line {other.at.line}"
                    ", has it; names are cut to 19 bytes)")
        self.cur = _Daemon(proc_name, addr, at)

    def on_name_addr(self, ch: list) -> None:
        self._set_name_and_addr(ch[0], ch[1], self.yytext(ch[1]))

    def on_name_only(self, ch: list) -> None:
        self._set_name_and_addr(ch[0], None, self.yytext())

    def on_addr_only(self, ch: list) -> None:
        self._set_name_and_addr(None, ch[0], self.yytext(ch[0]))

    def on_vid(self, ch: list) -> None:
        num: Lexeme = ch[2]
        assert self.cur is not None
        if num.value <= 0:
            raise self.fail("Virtual IDs must be specified as an integer greater than zero!",
                            at=num, yytext=num, found=f"VirtualID = {num.text}",
                            expected="a VirtualID from 1 to 999999999")
        self.cur.vid = num.value
        self.cur.explicit_vid = True
        self.info(f"Explicit virtual ID = '{num.value}' for daemon '{self.cur.name}'\n")

    def on_iftype(self, ch: list) -> int:
        return ch[0].value

    def on_iface(self, ch: list) -> None:
        assert self.cur is not None
        addr_lx: Lexeme = ch[-1]
        if len(self.cur.interfaces) >= MAX_INTERFACES_PROC:
            raise self.fail("Too many interfaces configured on a daemon!", at=addr_lx,
                            yytext=addr_lx, found=f"interface number "
                            f"{len(self.cur.interfaces) + 1}",
                            expected=f"at most {MAX_INTERFACES_PROC} interfaces per daemon")
        mask = 0
        for m in ch[:-1]:
            mask |= m
        self.cur.interfaces.append(InterfaceSpec(IfType(mask or IfType.ALL), addr_lx.value))

    def on_ifaces(self, ch: list) -> None:
        assert self.cur is not None
        if not self.cur.interfaces:
            raise self.fail("Interfaces section declared but no actual interfaces specified!",
                            at=ch[0], yytext=ch[-1], found="an empty interface block '{ }'",
                            expected="interface lines such as 'D 192.0.2.1' (or no block)")

    def on_daemon(self, ch: list) -> None:
        d = self.cur
        assert d is not None
        last = ch[-1] if isinstance(ch[-1], Lexeme) and ch[-1].kind == "SEMICOLON" else None
        yytext = self.yytext(last)
        if len(self.procs) >= MAX_PROCS_RING:
            raise self.fail("Too many daemons configured!", at=d.at, yytext=yytext,
                            found=f"daemon number {len(self.procs) + 1}",
                            expected=f"at most {MAX_PROCS_RING} daemons")
        if len(self.seg_daemons) >= MAX_PROCS_SEGMENT:
            raise self.fail("Too many daemons configured in segment!", at=d.at, yytext=yytext,
                            found=f"daemon number {len(self.seg_daemons) + 1} in a segment",
                            expected=f"at most {MAX_PROCS_SEGMENT} daemons per segment")
        if d.vid == 0:
            d.vid = auto_vid(d.name)
            self.info(f"Auto-generated virtual ID = '{d.vid}' for daemon '{d.name}'\n")
        for other in self.procs:
            if other.vid == d.vid:
                raise self.fail(
                    f"The virtual ID '{d.vid}' of '{d.name}' is already in use by "
                    f"'{other.name}'!  You will probably need to explicitly reconfigure the "
                    "daemons' virtual IDs so that they don't conflict.", banner=False,
                    at=d.at, yytext=yytext, found=f"virtual ID {d.vid} of '{d.name}'",
                    expected=f"a VirtualID no other daemon has ('{other.name}', line "
                    f"{other.at.line}, has it)")
        if not d.interfaces:
            d.interfaces.append(InterfaceSpec(IfType.ALL | IfType.ANY, d.address))
        ok = any(
            (i.address.same_ip(d.address)
             or (i.address.family == d.address.family and i.address.is_unspecified))
            and (i.types & (IfType.DAEMON | IfType.ANY))
            for i in d.interfaces
        )
        if not ok:
            raise self.fail(
                "Interface spec doesn't include a daemon entry for the daemon's primary "
                "address!", at=d.at, yytext=yytext,
                found=f"interfaces of '{d.name}' without a D line for {d.address.ntop}",
                expected=f"a line 'D {d.address.ntop}' (or a line without letters) in its "
                "interface block")
        self.where[f"daemon:{d.name}"] = d.at
        d.segment = len(self.segments)
        d.index_in_segment = len(self.seg_daemons)
        self.procs.append(d)
        self.seg_daemons.append(d)
        self.cur = None

    # ---- directives ---------------------------------------------------------------------------
    def on_alarm_op(self, ch: list) -> tuple[bool, int]:
        return (len(ch) == 2, ch[-1].value)

    def on_alarm_bits(self, ch: list) -> list:
        return list(ch)

    def on_debug_flags(self, ch: list) -> None:
        mask = 0
        for item in ch[3:-1]:
            for negate, bits in item if isinstance(item, list) else [item]:
                mask = mask & ~bits & 0xFFFFFFFF if negate else mask | bits
        self.mask = mask
        self.log.append(A.SetMask(mask))
        self.info(f"Set Alarm mask to: {mask:x}\n", A.WARNING)

    def on_event_priority(self, ch: list) -> None:
        self.priority = ch[2].value
        self.log.append(A.SetPriority(self.priority))

    def _timestamps(self, fmt: str | None) -> None:
        self.ts_effective = A.timestamp_setting(fmt, self.ts_precise)
        self.log.append(self.ts_effective)

    def on_timestamp_format(self, ch: list) -> None:
        self.ts_format = ch[2].value[:39]
        self.ts_custom = True
        self._timestamps(self.ts_format)

    def on_timestamp_default(self, ch: list) -> None:
        self._timestamps(None)

    def on_precise_timestamp(self, ch: list) -> None:
        self.ts_precise = True
        self._timestamps(self.ts_format if self.ts_custom else None)

    def on_port_reuse(self, ch: list) -> None:
        self.port_reuse = PortReuse(ch[2].value)
        self.info({
            PortReuse.AUTO: "Setting SO_REUSEADDR to auto\n",
            PortReuse.ON: "Setting SO_REUSEADDR to always on -- make sure Spread daemon host "
                          "is secured!\n",
            PortReuse.OFF: "Setting SO_REUSEADDR to always off\n",
        }[self.port_reuse], A.PRINT)

    def on_number_param(self, ch: list) -> None:
        key: Lexeme = ch[0]
        num: Lexeme = ch[2]
        n: int = num.value
        kw = key.value
        self.where[kw] = key
        if kw == "MaxSessionMessages":
            self.max_session_messages = n
            self.info(f"Conf_set_max_session_messages: Set Max Session Messages to {n}\n",
                      A.DEBUG)
        elif kw in ("Window", "PersonalWindow"):
            what, var = (("window", "window") if kw == "Window"
                         else ("personal window", "personal_window"))
            func = "Conf_set_" + var
            if n <= 0:
                raise self.fail(f"{func}: Attempt to set {what} to non-positive ({n})!",
                                banner=False, at=num, yytext=num, found=f"{kw} = {num.text}",
                                expected=f"a {kw} of at least 1")
            setattr(self, var, n)
            title = "Window" if kw == "Window" else "Personal Window"
            self.info(f"{func}: Set {title} to {n}\n", A.DEBUG)
        elif kw == "AcceleratedWindow":
            self.accelerated_window = n
            self.info(f"Conf_set_accelerated_window: Set Window to {n}\n", A.DEBUG)
        else:
            short = TIMEOUT_KEYS[kw]
            if n <= 0:
                raise self.fail(f"Conf_set_{short}_timeout: Non-positive timeout ({n}) "
                                "specified!", banner=False, at=num, yytext=num,
                                found=f"{kw} = {num.text}",
                                expected="a timeout of at least 1 (milliseconds)")
            self.timeouts[short] = n
            self.where.setdefault("timeout", key)

    def on_bool_param(self, ch: list) -> None:
        key: Lexeme = ch[0]
        value: bool = ch[2].value
        kw = key.value
        self.where[kw] = key
        if kw == "DangerousMonitor":
            self.dangerous_monitor = value
            self.info("ENABLING Dangerous Monitor Commands! Make sure Spread network is "
                      "secured\n" if value else "Disabling Dangerous Monitor Commands!\n",
                      A.PRINT)
        elif kw == "AcceleratedRing":
            self.accelerated_ring = value
        elif kw == "WideAreaNetwork":
            self.wide_area = value
        elif kw == "ExcludeSegAddrsFromHash":
            self.exclude_seg_addrs = value
        else:
            self.ignore_mcast_errors = value

    def _set_if_valid(self, attr: str, value: str, description: str, limit: int,
                      at: Lexeme) -> None:
        if value:
            if len(to_bytes(value)) > limit:
                raise self.fail("set_param_if_valid: value string too long", banner=False,
                                at=at, yytext=at, found=f"{description} of {len(value)} "
                                "characters", expected=f"at most {limit} characters")
            setattr(self, attr, value)
            self.info(f"Set {description} to '{value}'\n")
        else:
            self.info(f"set_param_if_valid: Ignored invalid {description}\n", A.ERROR)

    def _auth(self, value: str, required: bool) -> None:
        if not self.auth_configured and "NULL" in self.auth_allowed:
            self.auth_allowed.remove("NULL")
        self.auth_configured = True
        verb = "required" if required else "enabled"
        for name in value[: MAX_AUTH_LIST_LEN - 1].split(" "):
            known = next((k for k in KNOWN_AUTH if k[:MAX_AUTH_NAME] == name[:MAX_AUTH_NAME]),
                         None)
            if known is None:
                self.info(f"Acm_auth_set_{verb}: unknown auth name {name}\n", A.WARNING,
                          A.ACM)
                continue
            target = self.auth_required if required else self.auth_allowed
            if known not in target:  # "required" does not enable it: two separate flags
                target.append(known)

    def on_string_param(self, ch: list) -> None:
        key: Lexeme = ch[0]
        val: Lexeme = ch[2]
        kw = key.value
        s: str = val.value
        self.where[kw] = key
        if kw == "EventLogFile":
            path = self._expand(s)
            self.log_file = path
            self.log.append(A.SetOutput(path))
        elif kw == "RuntimeDir":
            self._set_if_valid("runtime_dir", s, "runtime directory", MAXPATHLEN, val)
        elif kw == "DaemonUser":
            self._set_if_valid("user", s, "user name", 32, val)
        elif kw == "DaemonGroup":
            self._set_if_valid("group", s, "group name", 32, val)
        elif kw in ("AllowedAuthMethods", "RequiredAuthMethods"):
            self._auth(s, kw == "RequiredAuthMethods")
        elif kw == "AccessControlPolicy":
            if s[:MAX_AUTH_NAME] not in KNOWN_ACP:
                raise self.fail(
                    "Invalid Access Control Policy name. Make sure it is spelled right and any "
                    "needed mocdules are loaded", at=val, yytext=val,
                    found=f"AccessControlPolicy '{s}'", expected="PERMIT")
            self.acp = "PERMIT"
        else:  # ActiveIPVersion
            if s not in ("IPv4", "IPv6"):
                raise self.fail(
                    "Invalid ActiveIPVersion specified.  Value must be 'IPv4' or 'IPv6'",
                    at=val, yytext=val, found=f"ActiveIPVersion '{s}'",
                    expected="IPv4 or IPv6 (exact case)")
            fam = 4 if s == "IPv4" else 6
            num = AF_INET_NUM if fam == 4 else AF_INET6_NUM
            self.info(f"Setting active IP version to {num}\n")
            if self.active is not None and self.active != fam:
                old = AF_INET_NUM if self.active == 4 else AF_INET6_NUM
                raise self.fail(
                    "Conf_set_active_ip_version: active IP version already differently "
                    f"specified: {old} vs. {num}", banner=False, at=val, yytext=val,
                    found=f"ActiveIPVersion {s}",
                    expected=f"IPv{self.active}, the version already fixed by an earlier "
                    "daemon or ActiveIPVersion (put ActiveIPVersion before the segments)")
            self.active = fam

    def _expand(self, s: str) -> str:
        out: list[str] = []
        i = 0
        while i < len(s):
            if s[i] == "%" and i + 1 < len(s) and s[i + 1] in "hH":
                out.append(self.hostname())
                i += 2
                continue
            out.append(s[i])
            i += 1
        return "".join(out)[: MAXPATHLEN - 1]

    # ---- end of file ------------------------------------------------------------------------
    def on_start(self, ch: list) -> None:
        return None

    def on_config(self, ch: list) -> None:
        yy = self.yytext()
        if not self.segments:
            raise self.fail("No segments specified!", at=yy, yytext=yy, found=describe(yy),
                            expected="at least one Spread_Segment")
        if not self.procs:
            raise self.fail("No daemons specified!", at=yy, yytext=yy, found="no daemon in "
                            "any segment", expected="at least one daemon entry")
        if self.personal_window > self.window:
            at = self.where.get("PersonalWindow") or self.where.get("Window")
            raise self.fail("PersonalWindow > Window!", at=at, yytext=yy,
                            found=f"PersonalWindow {self.personal_window} with Window "
                            f"{self.window}", expected="PersonalWindow <= Window")
        if self.accelerated_ring and self.accelerated_window > self.personal_window:
            at = self.where.get("AcceleratedWindow") or self.where.get("PersonalWindow")
            raise self.fail("AcceleratedWindow > PersonalWindow!", at=at, yytext=yy,
                            found=f"AcceleratedWindow {self.accelerated_window} with "
                            f"PersonalWindow {self.personal_window}",
                            expected="AcceleratedWindow <= PersonalWindow")
        hsegs = [
            HashSegment(s.port, tuple(a.canon for a in s.addresses),
                        tuple(HashDaemon(d.name, d.address.canon, d.vid) for d in s.daemons))
            for s in self.segments
        ]
        htext = hash_text(hsegs, exclude_seg_addrs=self.exclude_seg_addrs,
                          accelerated_ring=bool(self.accelerated_ring))
        if len(to_bytes(htext)) >= MAX_CONF_STRING:
            raise self.fail("Configuration string too long! (1)", at=yy, yytext=yy,
                            found="a configuration too big to hash",
                            expected="fewer or shorter daemon entries")
        value = conf_hash(htext)
        self.info(f"Hash value for this configuration is: {value}\n")
        self.info("Finished configuration file.\n")
        self.result = self._build(value, htext)

    def _build(self, value: int, htext: str) -> SpreadConfig:
        specs: dict[int, DaemonSpec] = {}
        segs: list[SegmentSpec] = []
        for s in self.segments:
            ds = []
            for d in s.daemons:
                spec = DaemonSpec(d.name, d.vid, d.address, d.port, d.segment,
                                  d.index_in_segment, tuple(d.interfaces), d.explicit_vid)
                specs[id(d)] = spec
                ds.append(spec)
            segs.append(SegmentSpec(s.port, tuple(s.addresses), tuple(ds)))
        ts = self.ts_effective
        return SpreadConfig(
            segments=tuple(segs),
            daemons=tuple(specs[id(d)] for d in self.procs),
            my=None,
            conf_hash=value,
            hash_text=htext,
            filename=self.filename,
            active_ip_version=self.active or 4,
            window=self.window,
            personal_window=self.personal_window,
            accelerated_window=self.accelerated_window,
            accelerated_ring_set=self.accelerated_ring,
            wide_area_set=self.wide_area,
            timeouts_set=tuple(sorted(self.timeouts.items())),
            max_session_messages=self.max_session_messages,
            dangerous_monitor=self.dangerous_monitor,
            port_reuse=self.port_reuse,
            runtime_dir=self.runtime_dir,
            daemon_user=self.user,
            daemon_group=self.group,
            auth_allowed=tuple(self.auth_allowed),
            auth_required=tuple(self.auth_required),
            access_control_policy=self.acp,
            exclude_seg_addrs_from_hash=self.exclude_seg_addrs,
            ignore_multicast_join_errors=self.ignore_mcast_errors,
            logging=LoggingSettings(
                debug_flags=self.mask, priority=self.priority, log_file=self.log_file,
                timestamp_format=ts.fmt if ts else None,
                precise_timestamp=bool(ts and ts.precise),
            ),
        )


@dataclass(frozen=True, slots=True)
class ParseResult:
    config: SpreadConfig
    log: tuple[A.Entry, ...]  # what the original logs while parsing, in order
    where: dict[str, tuple[int, int]]  # "segment:N", "daemon:NAME", "timeout" -> (line, col)


def parse_with_log(text: str, filename: str = "spread.conf", *,
                   resolver: Resolver | None = None,
                   hostname: Callable[[], str] | None = None) -> ParseResult:
    """Parse and also return the log the original prints while parsing."""
    p = _Parse(text, filename, resolver or system_resolver, hostname or socket.gethostname)
    try:
        config = p.run()
    except RecursionError:  # pragma: no cover - pathological input
        raise p.fail("syntax error", at=None, found="a file nested too deeply",
                     expected="a flat spread.conf") from None
    where = {k: (lx.line, lx.column) for k, lx in p.where.items() if not k.startswith("_")}
    return ParseResult(config, tuple(p.log), where)


def parse_config_text(text: str, filename: str = "spread.conf", *,
                      resolver: Resolver | None = None,
                      hostname: Callable[[], str] | None = None) -> SpreadConfig:
    """Parse spread.conf text (no file search, no "which daemon am I"): raises ConfigError."""
    return parse_with_log(text, filename, resolver=resolver, hostname=hostname).config
