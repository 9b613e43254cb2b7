"""Shared pytest fixtures: where the captured vectors live."""

from pathlib import Path

import pytest

VECTORS = Path(__file__).parent / "vectors"


@pytest.fixture(scope="session")
def vectors() -> Path:
    return VECTORS
