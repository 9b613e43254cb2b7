"""One place that says a command is not built yet, so no entry point prints fake output."""

import sys


def not_built(program: str) -> int:
    print(f"{program}: not implemented yet in this version of the Python port", file=sys.stderr)
    return 2
