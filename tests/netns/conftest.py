"""Fixtures for the namespace lab: `lab` builds an empty lab and always tears it down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns.netlab import NetLab, lab_unavailable
from tests.netns.ring import VENV_SPREAD

_WHY: list[str | None] = []


def _why_not() -> str | None:
    if not _WHY:
        why = lab_unavailable()
        if why is None and not VENV_SPREAD.exists():
            why = f"{VENV_SPREAD} is not installed"
        _WHY.append(why)
    return _WHY[0]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[NetLab]:
    why = _why_not()
    if why:
        pytest.skip(why)
    with NetLab(tmp_path) as built:
        yield built
