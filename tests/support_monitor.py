"""Drive the real `spmonitor` through a pipe: type menu lines, wait for text it prints."""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Sequence

from tests.support_daemon import ROOT

SPMONITOR = ROOT / ".venv" / "bin" / "spmonitor"


class Monitor:
    """`prefix` runs it elsewhere (e.g. `ip netns exec NS`), `program` is another build
    (the original's, for side-by-side runs); ended by PID in close()."""

    def __init__(self, args: Sequence[str], prefix: Sequence[str] = (),
                 program: str | None = None) -> None:
        self.proc = subprocess.Popen(
            [*prefix, program or str(SPMONITOR), *args], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.text = ""

    def type(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(line + "\n" for line in lines).encode())
        self.proc.stdin.flush()

    def wait_for(self, needle: str, timeout: float = 10.0, start: int = 0) -> int:
        """Position of `needle` in the output after `start`, waiting for it to appear."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while (at := self.text.find(needle, start)) == -1:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not printed (exit status {self.proc.poll()}); "
                                     f"output so far:\n{self.text}")
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError(f"spmonitor ended before {needle!r}:\n{self.text}")
                self.text += chunk.decode("latin-1")
        return at

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait(5)
