"""The `wackamole` command line: the original's options, config search and config-stage output.

It owns argument scanning (`-c -d -s -u -v`, plus our `--check-config`), finding the config
file, printing configuration errors the way the original does (and more helpfully), and the
host-identity check. Running the daemon is wackamole.daemon's job (imported lazily).
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
from collections.abc import Callable
from typing import TextIO

from wackamole.config import ConfigError, WackamoleConfig, parse_config_text

# The original looks here after -c (RPM builds use sysconfdir=/etc), then in the cwd.
ETC_CONFIG = "/etc/wackamole.conf"
LOCAL_CONFIG = "./wackamole.conf"

USAGE = (
    "Usage: wackamole\n"
    "\t-c <filename>     : file used instread of wackamole.conf\n"
    "\t-d                : debug mode and don't daemonize\n"
    "\t-s <address>      : either port or port@machine\n"
    "\t-u <username>     : connect to Spread as user username\n"
    "\t-v                : version information\n"
    "\n"
)

# `-v` prints a box like the original's, in our own words: the original's text claims an
# authorship and a licence that are not this program's. The version lines keep their place,
# so a script reading "Version" finds the Wackamole release we are compatible with.
_BANNER_LINES = (
    "The Wackamole Program, reimplemented in Python.",
    "",
    "A drop-in replacement for Wackamole 2.1: the same wackamole.conf, command",
    "lines, peer messages over Spread and control socket. It runs as a client",
    "of the local Spread daemon.",
    "",
    "This software is distributed on an \"AS IS\" basis, WITHOUT WARRANTY OF",
    "ANY KIND, either express or implied.",
    "",
    f"Version {'2.1.4':<20}",
    f"Released {'2007-12-28':<20}",
    "",
)
BANNER = (
    "\n/" + "=" * 78 + "\\\n"
    + "".join(f"| {line:<77}|\n" for line in _BANNER_LINES)
    + "\\" + "=" * 78 + "|\n"
)

class SelfResolveError(Exception):
    """The host name or its address could not be found; str() is the original's message."""


def resolve_self() -> str:
    """This node's real address: the first IPv4 address of its host name."""
    try:
        name = socket.gethostname()
    except OSError as exc:
        raise SelfResolveError(f"gethostname Error number {exc.errno}") from None
    try:
        return socket.gethostbyname(name)
    except OSError as exc:
        raise SelfResolveError(f"Can't self resolve {name} number {exc.errno or 0}") from None


def find_config(filename: str | None) -> tuple[str, bytes] | None:
    """The first readable of: the given file, /etc/wackamole.conf, ./wackamole.conf."""
    candidates = [filename] if filename else []
    for path in [*candidates, ETC_CONFIG, LOCAL_CONFIG]:
        try:
            with open(path, "rb") as f:
                return path, f.read()
        except OSError:
            continue
    return None


def report_config_error(exc: ConfigError, out: TextIO, err: TextIO) -> None:
    """The original's lines (same words, same streams), then where and what, then its last line."""
    out.write(exc.original_stdout)
    out.flush()
    err.write(exc.original_stderr)
    err.write(f"{exc}\n")
    err.write("Error reading config file.\n")
    err.flush()


def load_for_start(
    filename: str | None,
    out: TextIO,
    err: TextIO,
    resolve: Callable[[], str] | None = None,
) -> WackamoleConfig | int:
    """Do the original's config stage; return the config, or the exit status to stop with."""
    found = find_config(filename)
    if found is None:
        return 1  # silent, as the original
    path, data = found
    try:
        config = parse_config_text(data.decode("utf-8", "surrogateescape"), path)
    except ConfigError as exc:
        report_config_error(exc, out, err)
        return exc.exit_status
    out.write("".join(config.messages))
    try:
        (resolve or resolve_self)()
    except SelfResolveError as exc:
        out.write(f"{exc}\n")
        return 0  # the original exits 0 here
    return config


def _system_notes(config: WackamoleConfig) -> list[str]:
    """What a start would meet on this machine (looked at, never changed)."""
    notes = []
    control = config.control
    if control and (os.path.isdir(control) or not os.path.isdir(os.path.dirname(control) or ".")):
        notes.append(f"Control = {control}: no socket can be made there; a start prints "
                     f'"bind to {control} failed." and runs without wackatrl support')
    if os.geteuid() != 0:
        notes.append("not running as root: a start needs root for addresses and ARP")
    return notes


def check_config(
    filename: str | None,
    out: TextIO,
    err: TextIO,
    resolve: Callable[[], str] | None = None,
) -> int:
    """`--check-config`: everything a start checks, nothing touched; 0 only if it would start."""
    found = find_config(filename)
    if found is None:
        tried = ", ".join([*([filename] if filename else []), ETC_CONFIG, LOCAL_CONFIG])
        err.write(f"wackamole: no configuration file could be read (tried {tried})\n")
        return 1
    path, data = found
    if filename and path != filename:
        err.write(f"wackamole: cannot read {filename}; a start would use {path}\n")
    try:
        config = parse_config_text(data.decode("utf-8", "surrogateescape"), path)
    except ConfigError as exc:
        report_config_error(exc, out, err)
        return exc.exit_status
    out.write("".join(config.messages))
    for note in (*config.advice, *_system_notes(config)):
        out.write(f"note: {note}\n")
    try:
        (resolve or resolve_self)()
    except SelfResolveError as exc:
        err.write(f"{exc}\nwackamole: this host's name must resolve to its address\n")
        return 1
    out.write(f"{path}: configuration OK\n")
    return 0


def _start(config: WackamoleConfig, debug: bool, address: str) -> int:
    """Hand over to the daemon (imported here: the config stage needs none of it)."""
    daemon = importlib.import_module("wackamole.daemon")
    return int(daemon.run(config, debug, address))


def console(out: TextIO | None, err: TextIO | None) -> tuple[TextIO, TextIO]:
    """The streams a command writes to: the given ones (tests), else the terminal's, set so an
    unprintable byte from a config file or the daemon is shown escaped instead of raising."""
    if out is None:
        sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        out = sys.stdout
    if err is None:
        sys.stderr.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        err = sys.stderr
    return out, err


def main(
    argv: list[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    resolve: Callable[[], str] | None = None,
) -> int:
    out, err = console(out, err)
    args = sys.argv[1:] if argv is None else argv
    check = "--check-config" in args
    debug = False
    filename: str | None = None
    spread: str | None = None
    user: str | None = None
    i = 0
    # Like the original: left to right, only the first two characters of each argument count.
    while i < len(args):
        arg = args[i]
        flag = arg[:2]
        if arg == "--check-config":
            pass
        elif flag == "-v":
            out.write(BANNER)
            return 0
        elif flag in ("-u", "-s", "-c"):
            if i + 1 >= len(args):
                out.write(USAGE)  # the original crashes here
                return 0
            i += 1
            value = args[i]
            if flag == "-u":
                user = value
            elif flag == "-s":
                spread = value
            elif value.startswith("/"):
                filename = value
            else:
                filename = os.getcwd() + "/" + value
                if not check:
                    out.write(filename)  # the original's debug leftover, without newline
                    out.flush()
        elif flag == "-d":
            debug = True
        else:
            out.write(USAGE)
            return 0
        i += 1
    if check:
        return check_config(filename, out, err, resolve)
    loaded = load_for_start(filename, out, err, resolve)
    if isinstance(loaded, int):
        return loaded
    out.flush()
    address = (resolve or resolve_self)()
    return _start(loaded.with_command_line(spread, user), debug, address)


if __name__ == "__main__":
    sys.exit(main())
