"""Command line of the spread daemon: `spread [-l y|n] [-n NAME] [-c FILE]` as 5.0.1 has it,
plus `--check-config`, which validates everything a start would and touches nothing.

Owns argument parsing (the original's prefix matching and usage text), printing the
start-up summary the original logs, and handing the loaded config to the daemon.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO

from spread.config import ConfigError, SpreadConfig, load_with_log
from spread.config import alarm as A
from spread.config.hash import to_bytes
from spread.config.load import LocalAddresses
from spread.config.parse import Resolver
from spread.daemon.log import Logger

MAX_PROC_NAME = 20
CONFIG_FILE_BUF = 512
EXIT_CONFIG_ERROR = 1  # the original aborts (SIGABRT, 134); we exit 1 with the same text
EXIT_USAGE = 1  # the original aborts here too (134); one status for every refusal
EXIT_INTERNAL = 70

USAGE = [
    "Usage: spread",
    "\t[-l y/n]          : print log",
    "\t[-n <proc name>]  : force computer name",
    "\t[-c <file name>]  : specify configuration file",
]


class UsageError(Exception):
    """Bad command line; `lines` is what the original prints before aborting."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)


@dataclass(frozen=True, slots=True)
class Options:
    my_name: str | None = None
    config_file: str = "spread.conf"
    membership_log: bool = False
    check_config: bool = False


def parse_args(argv: Sequence[str]) -> Options:
    """The original's hand-written loop: `-n…`, `-c…`, `-l…` match by prefix and take the
    next argument; the last repeat wins; anything else is a usage error."""
    my_name: str | None = None
    config_file = "spread.conf"
    log = False
    check = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        has_value = i + 1 < len(argv)
        if arg == "--check-config":
            check = True
            i += 1
            continue
        if arg.startswith("-n"):
            if not has_value:
                raise UsageError(USAGE)
            value = argv[i + 1]
            if len(to_bytes(value)) > MAX_PROC_NAME - 1:
                raise UsageError([f"Usage: proc name {value} too long"])
            my_name = value
        elif arg.startswith("-c"):
            if not has_value:
                raise UsageError(USAGE)
            value = argv[i + 1]
            if len(to_bytes(value)) >= CONFIG_FILE_BUF:
                raise UsageError(["Usage: config file name too long"])
            config_file = value
        elif arg.startswith("-l"):
            if not has_value or argv[i + 1] not in ("y", "n"):
                raise UsageError(USAGE)
            log = argv[i + 1] == "y"
        else:
            raise UsageError(USAGE)
        i += 2
    return Options(my_name, config_file, log, check)


ServeFn = Callable[..., int]


def _serve(config: SpreadConfig, *, membership_log: bool) -> int:
    from spread.daemon.server import serve  # imported late: --check-config needs no asyncio

    return serve(config, membership_log=membership_log)


def _print_error(logger: Logger, err: ConfigError, stderr: IO[str]) -> None:
    logger.replay(err.log)
    logger.fatal(err.original_lines() + err.location_lines())
    if logger.to_file:  # the log went to EventLogFile: also tell the person at the terminal
        stderr.write(str(err) + "\n")
        stderr.flush()


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    local_addresses: LocalAddresses | None = None,
    resolver: Resolver | None = None,
    serve: ServeFn | None = None,
) -> int:
    """Run `spread`; returns the exit status. Keyword arguments exist for tests."""
    out = stdout if stdout is not None else sys.stdout
    err_stream = stderr if stderr is not None else sys.stderr
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        opts = parse_args(args)
    except UsageError as e:
        Logger(out).fatal(e.lines, A.SYSTEM)
        return EXIT_USAGE

    logger = Logger(out, follow_log_file=not opts.check_config)
    try:
        loaded = load_with_log(opts.config_file, opts.my_name,
                               local_addresses=local_addresses, resolver=resolver)
    except ConfigError as e:
        if opts.check_config:
            logger.replay(e.log)
            err_stream.write(str(e) + "\n")
            err_stream.flush()
        else:
            _print_error(logger, e, err_stream)
        return EXIT_CONFIG_ERROR
    except Exception as e:  # a bug of ours must still not print a traceback at users
        err_stream.write(f"spread: internal error while reading the configuration: {e!r}\n")
        return EXIT_INTERNAL

    logger.replay(loaded.log)
    config: SpreadConfig = loaded.config
    if opts.check_config:
        assert config.my is not None
        out.write(f"spread: configuration OK: {loaded.path}: hash {config.conf_hash}, "
                  f"this daemon is '{config.my.name}' (VID {config.my.vid}) on port "
                  f"{config.port}\n")
        out.flush()
        return 0

    serve_fn = serve if serve is not None else _serve
    return int(serve_fn(config, membership_log=opts.membership_log))
