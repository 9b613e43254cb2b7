"""`python -m spread.daemon NAME PORT [IP]`: one daemon without a config file (tests, bench)."""

from __future__ import annotations

import logging
import sys

from spread.daemon.oneconf import single_daemon_config
from spread.daemon.server import serve


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m spread.daemon NAME PORT [IP] [MaxSessionMessages]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    name, port = argv[0], int(argv[1])
    ip = argv[2] if len(argv) > 2 else "127.0.0.1"
    extra = {"max_session_messages": int(argv[3])} if len(argv) > 3 else {}
    # a development entry: no chroot or user change even as root
    return serve(single_daemon_config(name, ip, port, **extra), membership_log=False,
                 drop_privileges=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
