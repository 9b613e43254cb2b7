"""A thousand clients at once on one real daemon: 997 sessions (the original's quota), the rest
refused with REJECT_QUOTA, and every session still gets what is sent to it."""

from __future__ import annotations

import contextlib
import resource
from pathlib import Path

from spread.wire import client as wire
from tests.integration.rawclient import Client
from tests.support_daemon import start_daemon


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def test_thousand_concurrent_clients(tmp_path: Path) -> None:
    _raise_nofile()
    d = start_daemon(tmp_path)
    clients: list[Client] = []
    try:
        refused = []
        for i in range(1000):
            try:
                c = Client(d, f"c{i}", membership=False, transport="unix" if i % 2 else "tcp")
            except ConnectionRefusedError as e:
                refused.append(e.args[0])
                continue
            c.join("all")
            clients.append(c)
        assert len(clients) == 997
        assert refused == [wire.REJECT_QUOTA] * 3
        clients[0].mcast(["all"], b"hello everyone", wire.SAFE_MESS)
        for c in clients:
            m = c.recv()
            assert (m.sender, m.data) == ("#c0#testvm", b"hello everyone")
        n = len(clients)
        for i, c in enumerate(clients):  # a ring of point-to-point messages
            c.mcast([clients[(i + 1) % n].group], f"from {i}".encode(), wire.FIFO_MESS)
        for i, c in enumerate(clients):
            m = c.recv()
            assert m.data == f"from {(i - 1) % n}".encode()
        clients.pop().disconnect()  # a slot frees up
        newcomer = Client(d, "late", membership=False)
        newcomer.close()
        assert d.alive()
    finally:
        for c in clients:
            c.close()
        assert d.stop() == 0
