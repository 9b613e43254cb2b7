"""Fixtures for tests against a real daemon process (see tests/support_daemon.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support_daemon import RunningDaemon, start_daemon


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[RunningDaemon]:
    """A fresh `testvm` daemon on a free port; stopped by PID whatever the test did."""
    d = start_daemon(tmp_path, "testvm")
    try:
        yield d
    finally:
        status = d.stop()
        assert status == 0, f"daemon exit status {status}:\n{d.output()}"
