"""Command line of wackamole (placeholder until the foundation issue lands)."""

from spread.unbuilt import not_built


def main() -> int:
    return not_built("wackamole")
