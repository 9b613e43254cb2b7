"""Command line of the spread daemon (placeholder until the foundation issue lands)."""

from spread.unbuilt import not_built


def main() -> int:
    return not_built("spread")
