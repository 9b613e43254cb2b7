"""The one exception a bad spread.conf (or a failed start-up check) raises.

Its `str()` is the whole user-facing message: the original's text first (so people who grep
their logs for it still find it), then `FILE:LINE:COL: found, expected …`, the offending line
and a caret under the culprit.
"""

from __future__ import annotations

from typing import Any

PARSE_ERROR_HEAD = "----------- Parse Error -------------------"


class ConfigError(Exception):
    """A configuration the original would refuse; nothing has been started."""

    def __init__(
        self,
        original: str,
        *,
        filename: str,
        found: str,
        expected: str,
        banner: bool = False,
        offending: str = "",
        banner_line: int | None = None,
        line: int | None = None,
        column: int | None = None,
        source_line: str | None = None,
        log: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(original)
        self.original = original  # the C daemon's message text (its "Error type" line)
        self.filename = filename
        self.found = found
        self.expected = expected
        self.banner = banner  # the original wraps this one in its "Parse Error" banner
        self.offending = offending  # what the original calls the offending token
        self.banner_line = banner_line
        self.line = line  # 1-based, as editors count
        self.column = column  # 1-based
        self.source_line = source_line
        self.log = log  # log records (spread.daemon.log.Record) emitted before the error

    def original_lines(self) -> list[str]:
        """The original's own lines for this error (without `Exit caused by Alarm!`)."""
        if not self.banner:
            return [self.original]
        return [
            PARSE_ERROR_HEAD,
            f"Error on or before line {self.banner_line if self.banner_line is not None else 0}",
            f"Offending token: {self.offending}",
            f"Error type: {self.original}",
        ]

    def location_lines(self) -> list[str]:
        if self.line is None:
            return [f"{self.filename}: {self.found}, expected {self.expected}"]
        out = [f"{self.filename}:{self.line}:{self.column}: {self.found}, expected {self.expected}"]
        if self.source_line is not None:
            col = max(1, self.column or 1)
            lead = "".join(c if c == "\t" else " " for c in self.source_line[: col - 1])
            out += [self.source_line, lead + "^"]
        return out

    def __str__(self) -> str:
        return "\n".join(self.original_lines() + self.location_lines())
