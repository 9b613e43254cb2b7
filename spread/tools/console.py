"""Standard output for the tools, as the C tools have it with SIGPIPE ignored.

When the reader goes away (`spflooder | head`), C's writes fail quietly and the program goes
on; Python would raise BrokenPipeError and complain again at exit. `QuietStdout` swallows the
error, points the descriptor at /dev/null and drops what follows.
"""

from __future__ import annotations

import io
import os
from typing import IO, AnyStr, Generic


def os_bytes_as_latin1(arg: str) -> str:
    """A command-line argument as the C program sees it: its bytes, one char per byte (the
    client library writes names as latin-1, so `-u é` goes out as the terminal's UTF-8)."""
    return os.fsencode(arg).decode("latin-1")


class QuietStdout(Generic[AnyStr]):
    def __init__(self, raw: IO[AnyStr]) -> None:
        self.raw = raw
        self.gone = False

    def write(self, data: AnyStr) -> int:
        if not self.gone:
            try:
                return self.raw.write(data)
            except BrokenPipeError:
                self._reader_gone()
        return len(data)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.raw.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _reader_gone(self) -> None:
        self.gone = True
        try:
            fd = self.raw.fileno()
        except (OSError, ValueError, io.UnsupportedOperation):
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)  # the interpreter's own final flush must not fail either
        os.close(devnull)
