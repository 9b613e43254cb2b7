"""Seed sweeps of the real engine under random faults: every seed must keep every invariant.

A failure lists each violating seed with the command that replays it as a timeline.
Runs are kept short (small Lookup timeout, short fault phase) so CI covers many seeds; the
long soak with default timeouts is bench/soak.py.
"""

from __future__ import annotations

import dataclasses

import pytest

from spread.ring.api import RingTimeouts
from spread.sim.runner import SimParams
from tests.sim.support import ENGINE_MISSING, RealEngine, assert_clean

pytestmark = [pytest.mark.skipif(RealEngine is None, reason=ENGINE_MISSING), pytest.mark.slow]

SMALL = SimParams(
    daemons=3, duration=8.0, settle=10.0, drain=3.0, rate=2.0, timeouts=RingTimeouts(lookup=3.0)
)


@pytest.mark.parametrize("block", range(4))
def test_three_daemons_keep_evs_under_random_faults(block: int) -> None:
    """Blocks 0-1 run the original ring (5.0.1's default), blocks 2-3 the accelerated one."""
    params = dataclasses.replace(SMALL, accelerated=block >= 2)
    assert_clean(params, range(block * 350, (block + 1) * 350))
