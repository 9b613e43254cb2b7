"""Seed sweeps with more daemons and several segments (ROUTED packets, segment heads)."""

from __future__ import annotations

import pytest

from spread.ring.api import RingTimeouts
from spread.sim.runner import SimParams
from tests.sim.support import ENGINE_MISSING, RealEngine, assert_clean

pytestmark = [pytest.mark.skipif(RealEngine is None, reason=ENGINE_MISSING), pytest.mark.slow]

SEGMENTED = SimParams(
    daemons=4,
    segments=2,
    duration=8.0,
    settle=10.0,
    drain=3.0,
    rate=2.0,
    timeouts=RingTimeouts(lookup=3.0),
)
FIVE = SimParams(
    daemons=5, duration=12.0, settle=14.0, drain=4.0, rate=3.0, timeouts=RingTimeouts(lookup=5.0)
)
MANY = SimParams(
    daemons=12,
    segments=3,
    duration=12.0,
    settle=16.0,
    drain=4.0,
    rate=1.0,
    timeouts=RingTimeouts(lookup=6.0),
)


@pytest.mark.parametrize("block", range(2))
def test_two_segments_keep_evs_under_random_faults(block: int) -> None:
    assert_clean(SEGMENTED, range(10_000 + block * 300, 10_000 + (block + 1) * 300))


def test_five_daemons_keep_evs_under_random_faults() -> None:
    assert_clean(FIVE, range(20_000, 20_080))


def test_twelve_daemons_in_three_segments_keep_evs() -> None:
    assert_clean(MANY, range(30_000, 30_008))


SIXTEEN = SimParams(
    daemons=16,
    segments=2,
    duration=10.0,
    settle=16.0,
    drain=4.0,
    rate=0.5,
    timeouts=RingTimeouts(lookup=6.0),
)


def test_sixteen_daemons_in_two_segments_keep_evs() -> None:
    assert_clean(SIXTEEN, range(40_000, 40_008))
