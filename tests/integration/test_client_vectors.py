"""The real daemon answers every captured client conversation (A1–A4) byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.replay import Replayer, load
from tests.support_daemon import RunningDaemon

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "client"


@pytest.mark.parametrize(
    "scenario",
    ["A1_connect", "A2_rejects", "A3_membership", "A4_multicast", "A4_multicast_large"],
)
def test_daemon_replays_captured_conversation(daemon: RunningDaemon, scenario: str) -> None:
    sc = load(VECTORS / f"{scenario}.json")
    r = Replayer(daemon, sc)
    r.run()
    d2c = sum(1 for c in sc["connections"] for f in c["frames"] if f["dir"] == "d2c")
    assert r.checked == d2c
    assert daemon.alive()
