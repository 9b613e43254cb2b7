"""Group layers on top of real ring engines (spread.ring.harness): partition and merge end to end.

The engines run on the harness's deterministic network; every non-datagram action goes to the
daemon's GroupLayer, whose actions go back to its engine, as spread.daemon.server does it.
"""

from __future__ import annotations

import struct
from collections import defaultdict

from spread.groups.layer import (
    GroupLayer,
    GState,
    Send,
    SetDeliveryThreshold,
    Submit,
    UseGroupsQueue,
)
from spread.ring.api import Action
from spread.ring.harness import Harness, make_configs
from spread.wire import client as wire

NET = wire.REG_MEMB_MESS | wire.CAUSED_BY_NETWORK


class Daemons:
    def __init__(self, names: list[str]) -> None:
        self.configs = make_configs(names)
        self.h = Harness(self.configs)
        cfg = next(iter(self.configs.values()))
        pairs = [(d.vid, d.name) for d in cfg.daemons]
        self.vid = {name: vid for vid, name in pairs}
        self.layers = {vid: GroupLayer(vid, name, pairs) for vid, name in pairs}
        self.out: dict[tuple[str, int], list[bytes]] = defaultdict(list)
        self.name = {vid: name for vid, name in pairs}
        self.h.on_action = self._on_action

    def _on_action(self, vid: int, a: Action) -> None:
        for g in self.layers[vid].on_ring(a):
            if isinstance(g, Send):
                for sid in g.sessions:
                    self.out[(self.name[vid], sid)].append(g.data)
            elif isinstance(g, Submit):
                self.h.submit(vid, g.message)
            elif isinstance(g, SetDeliveryThreshold):
                self.h.engines[vid].set_delivery_threshold(g.threshold)
            elif isinstance(g, UseGroupsQueue):
                self.h.engines[vid].use_groups_queue(g.on)

    def client(self, daemon: str, sid: int, user: str) -> str:
        me = f"#{user}#{daemon}"
        self.layers[self.vid[daemon]].open_session(sid, me.encode(), True)
        return me

    def submit(self, daemon: str, message: bytes) -> None:
        self.h.submit(self.vid[daemon], message)

    def types(self, daemon: str, sid: int) -> list[int]:
        return [
            struct.unpack_from("<I", m)[0] & ~wire.ENDIAN_MARKER & 0xFFFFFFFF
            for m in self.out[(daemon, sid)]
        ]


def _body(m: bytes) -> wire.MembershipBody:
    ng = struct.unpack_from("<i", m, 36)[0]
    return wire.decode_membership_body(m[48 + 32 * ng :])


def test_partition_and_merge_through_real_engines() -> None:
    d = Daemons(["d1", "d2"])
    for vid in d.vid.values():
        d.h.start(vid)
    d.h.run_until(10.0)
    assert all(layer.state == GState.GOP for layer in d.layers.values())
    assert all(len(layer.reg_members) == 2 for layer in d.layers.values())
    u1, u2 = d.client("d1", 1, "u1"), d.client("d2", 1, "u2")
    d.submit("d1", wire.encode_join(u1, "g"))
    d.h.run_until(10.5)
    d.submit("d2", wire.encode_join(u2, "g"))
    d.h.run_until(11.0)
    join = wire.REG_MEMB_MESS | wire.CAUSED_BY_JOIN
    assert d.types("d1", 1) == [join, join] and d.types("d2", 1) == [join]
    assert d.out[("d1", 1)][-1] == d.out[("d2", 1)][-1]  # the same bytes on both daemons

    d.h.cut(d.vid["d1"], d.vid["d2"])
    d.h.run_until(20.0)
    for daemon, me in (("d1", u1), ("d2", u2)):
        assert d.types(daemon, 1)[-2:] == [wire.TRANSITION_MESS, NET]
        last = d.out[(daemon, 1)][-1]
        assert _body(last).vs_sets == ((me,),)
        assert _body(last).gid.proc_id == wire.GroupId.signed(d.vid[daemon])
    before = len(d.out[("d2", 1)])
    d.submit("d1", wire.encode_multicast(u1, wire.AGREED_MESS, ["g"], 2, b"during-h1"))
    d.h.run_until(21.0)
    assert wire.decode_message(d.out[("d1", 1)][-1])[0].data == b"during-h1"
    assert len(d.out[("d2", 1)]) == before  # the other side of the partition gets nothing

    d.h.heal()
    d.h.run_until(80.0)  # the leader's lookup timer finds the other ring
    assert all(layer.state == GState.GOP for layer in d.layers.values())
    for daemon in ("d1", "d2"):
        assert d.types(daemon, 1)[-1] == NET
        merged = _body(d.out[(daemon, 1)][-1])
        assert sorted(merged.vs_sets) == sorted(((u1,), (u2,)))
        assert merged.vs_sets[merged.my_vs_set_index] == ((u1,) if daemon == "d1" else (u2,))
    d.submit("d2", wire.encode_multicast(u2, wire.SAFE_MESS, ["g"], 4, b"after"))
    d.h.run_until(81.0)
    for daemon in ("d1", "d2"):
        assert wire.decode_message(d.out[(daemon, 1)][-1])[0].data == b"after"
