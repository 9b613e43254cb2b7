"""The tools' stdout and argv handling, as C programs have them."""

from __future__ import annotations

import os

from spread.tools.console import QuietStdout, os_bytes_as_latin1


def test_a_vanished_reader_silences_stdout_instead_of_raising() -> None:
    r, w = os.pipe()
    os.close(r)
    with os.fdopen(w, "wb", buffering=0) as raw:
        out = QuietStdout(raw)
        assert out.write(b"first line\n") == 11  # EPIPE (SIGPIPE is ignored in Python)
        out.flush()
        assert out.gone
        assert out.write(b"more\n") == 5
        raw.write(b"now /dev/null\n")  # the descriptor itself no longer fails


def test_arguments_keep_their_bytes_for_the_wire() -> None:
    assert os_bytes_as_latin1("bob") == "bob"
    assert os_bytes_as_latin1("é").encode("latin-1") == "é".encode()  # UTF-8 bytes, as C
