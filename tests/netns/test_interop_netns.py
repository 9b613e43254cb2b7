"""Our daemon and the original C daemon in one ring (only with SPREAD_ORIG_DAEMON set).

Set SPREAD_ORIG_DAEMON to the original Spread 5.0.1 `spread` binary (built elsewhere; nothing
here builds it). The recorded evidence and a replay that needs no binary are in
docs/interop.md and tests/unit/test_interop_replay.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from spread.client import CAUSED_BY_NETWORK, MembershipMessage, TransitionalMessage
from tests.netns.netlab import Host, NetLab
from tests.netns.ring import FORM, GROUP, Client, client, conf_text, is_memb, start_daemon, traffic

pytestmark = pytest.mark.netns

# The C daemon as root needs these (they are hashed, so both sides read the same file).
AS_ROOT = "RuntimeDir = /tmp/run\nDaemonUser = root\nDaemonGroup = root\n"


@pytest.fixture
def orig() -> Path:
    path = os.environ.get("SPREAD_ORIG_DAEMON")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("set SPREAD_ORIG_DAEMON to the original C `spread` binary to run these")
    return Path(path)


def _start(host: Host, name: str, body: str, orig: Path | None) -> object:
    (host.tmp / "run").mkdir(exist_ok=True)
    if orig is None:
        return start_daemon(host, name, body)
    shutil.copy(orig, host.dir / "spread-orig")  # /tmp is private to the process: copy in
    return start_daemon(host, name, body, program="./spread-orig")


@pytest.mark.parametrize("c_first", [True, False], ids=["c-starts-first", "python-first"])
def test_c_and_python_daemons_form_one_ring_with_one_order(
    lab: NetLab, orig: Path, c_first: bool
) -> None:
    body = conf_text(["d1", "d2"], extra=AS_ROOT)
    h1, h2 = lab.add_host("h1", 1), lab.add_host("h2", 2)
    order = [(h1, "d1", orig), (h2, "d2", None)]
    for host, name, binary in order if c_first else order[::-1]:
        _start(host, name, body, binary)
    clients: list[Client] = [client(h1, "u1"), client(h2, "u2")]
    for c in clients:
        c.mbox.join(GROUP)
    for c in clients:
        c.until(is_memb(GROUP, 2), FORM)
    got = traffic(clients, 50)
    assert got[0] == got[1] and len(got[0]) == 100


def test_python_client_sees_the_c_daemon_die(lab: NetLab, orig: Path) -> None:
    body = conf_text(["d1", "d2"], extra=AS_ROOT)
    h1, h2 = lab.add_host("h1", 1), lab.add_host("h2", 2)
    c_daemon = _start(h1, "d1", body, orig)
    _start(h2, "d2", body, None)
    c1, c2 = client(h1, "u1"), client(h2, "u2")
    for c in (c1, c2):
        c.mbox.join(GROUP)
    before, _ = c2.until(is_memb(GROUP, 2), FORM)
    c1.until(is_memb(GROUP, 2), FORM)
    c_daemon.kill9()  # type: ignore[attr-defined]
    m, seen = c2.until(lambda m: isinstance(m, MembershipMessage), FORM)
    assert [type(x) for x in seen] == [TransitionalMessage]
    assert seen[0].gid == before.gid  # type: ignore[attr-defined]
    assert m.service_type & CAUSED_BY_NETWORK and m.members == ("#u2#d2",)
