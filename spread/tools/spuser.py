"""The spuser tool (placeholder until its issue lands)."""

from spread.unbuilt import not_built


def main() -> int:
    return not_built("spuser")
