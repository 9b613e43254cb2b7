"""Group layer across daemons: partitions, merges, GROUPS exchange, cascades (daemon §9).

Several GroupLayers are driven through a toy total order (the Cluster below) with explicit
transitional and regular configurations, the way a ring engine would drive them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from spread.groups.layer import GroupAction, GroupLayer, GState, Send, SessionGone, Submit
from spread.ring.api import RingId
from spread.wire import client as wire

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "client"
D1, D2, D3 = 1552775919, 348480928, 1000


class Cluster:
    def __init__(self, daemons: list[tuple[int, str]]) -> None:
        self.daemons = daemons
        self.layers = {vid: GroupLayer(vid, name, daemons) for vid, name in daemons}
        self.by_name = {name: vid for vid, name in daemons}
        self.components: list[tuple[int, ...]] = [tuple(v for v, _ in daemons)]
        self.pending: list[tuple[int, bytes]] = []
        self.out: dict[tuple[int, int], list[bytes]] = defaultdict(list)
        self.gone: list[tuple[int, int]] = []
        self.other: list[tuple[int, GroupAction]] = []

    def layer(self, name: str) -> GroupLayer:
        return self.layers[self.by_name[name]]

    def component_of(self, vid: int) -> tuple[int, ...]:
        return next(c for c in self.components if vid in c)

    def install(self, ring_ids: dict[int, RingId]) -> None:
        """First regular configuration of every component (no transitional before it)."""
        for comp in self.components:
            for vid in comp:
                self._apply(vid, self.layers[vid].on_regular(ring_ids[comp[0]], comp))
        self.run()

    def change(
        self,
        new_components: list[tuple[int, ...]],
        trans: dict[int, tuple[RingId, tuple[int, ...]]],
        reg: dict[tuple[int, ...], RingId],
    ) -> None:
        """Each daemon gets its transitional (id, members) then its new regular configuration."""
        self.components = new_components
        for vid, (tid, tmembers) in trans.items():
            self._apply(vid, self.layers[vid].on_transitional(tid, tmembers))
        self.run()
        for comp in new_components:
            for vid in comp:
                self._apply(vid, self.layers[vid].on_regular(reg[comp], comp))
        self.run()

    def submit(self, vid: int, message: bytes) -> None:
        self.pending.append((vid, message))
        self.run()

    def run(self) -> None:
        while self.pending:
            vid, msg = self.pending.pop(0)
            for member in self.component_of(vid):
                self._apply(member, self.layers[member].on_deliver(msg))

    def _apply(self, vid: int, actions: list[GroupAction]) -> None:
        for a in actions:
            if isinstance(a, Send):
                for sid in a.sessions:
                    self.out[(vid, sid)].append(a.data)
            elif isinstance(a, Submit):
                self.pending.append((vid, a.message))
            elif isinstance(a, SessionGone):
                self.gone.append((vid, a.session))
            else:
                self.other.append((vid, a))


def _open(c: Cluster, daemon: str, sid: int, name: str, memb: bool = True) -> None:
    c.layer(daemon).open_session(sid, f"#{name}#{daemon}".encode(), memb)


def test_partition_and_merge_give_clients_the_captured_bytes() -> None:
    """A5: TRANSITION then CAUSED_BY_NETWORK on each side, then one 2-vs-set merge notice."""
    sc = json.loads((VECTORS / "A5_partition_merge.json").read_text())
    c = Cluster([(D1, "d1"), (D2, "d2")])
    c.install({D1: RingId(D1, 1795573299)})
    hosts = {"H1/c0": (D1, "d1", "user1"), "H2/c0": (D2, "d2", "user2")}
    for _vid, daemon, user in hosts.values():
        _open(c, daemon, 1, user)
    frames = sorted(
        (
            (f["seq"], f["step"] or 0, conn["id"], f)
            for conn in sc["connections"]
            for f in conn["frames"]
        ),
        key=lambda x: (x[0], x[2]),
    )
    partitioned = merged = False
    seen: dict[str, int] = {"H1/c0": 0, "H2/c0": 0}
    checked = 0
    for _seq, step, cid, f in frames:
        if step >= 10 and not partitioned:
            partitioned = True
            c.change(
                [(D1,), (D2,)],
                {D1: (RingId(D1, 1795573343), (D1,)), D2: (RingId(D2, 1795573343), (D2,))},
                {(D1,): RingId(D1, 1795573344), (D2,): RingId(D2, 1795573344)},
            )
        if step >= 19 and not merged:
            merged = True
            c.change(
                [(D1, D2)],
                {D1: (RingId(D1, 1795573374), (D1,)), D2: (RingId(D2, 1795573374), (D2,))},
                {(D1, D2): RingId(D1, 1795573375)},
            )
            assert all(layer.state == GState.GOP for layer in c.layers.values())
        vid = hosts[cid][0]
        data = bytes.fromhex(f["hex"])
        if f["dir"] == "c2d":
            if len(data) >= 48 and data[0] & 0x80 and data[3] & 0x80:  # not handshake bytes
                c.submit(vid, data)
            continue
        if f.get("event") == "close" or len(data) < 48:
            continue
        got = c.out[(vid, 1)]
        assert seen[cid] < len(got), f"{cid} seq {f['seq']}: nothing delivered, want {data.hex()}"
        assert got[seen[cid]] == data, (
            f"{cid} seq {f['seq']}:\n got  {got[seen[cid]].hex()}\n want {data.hex()}"
        )
        seen[cid] += 1
        checked += 1
    want = [f for conn in sc["connections"] for f in conn["frames"] if f["dir"] == "d2c"]
    assert checked == sum(1 for f in want if len(f["hex"]) >= 96)
    assert all(seen[k] == len(c.out[(hosts[k][0], 1)]) for k in hosts)  # nothing extra


def test_subtractive_change_needs_no_state_exchange() -> None:
    c = Cluster([(D1, "d1"), (D2, "d2")])
    c.install({D1: RingId(D1, 10)})
    _open(c, "d1", 1, "a")
    c.submit(D1, wire.encode_join("#a#d1", "g"))
    c.change(
        [(D1,), (D2,)],
        {D1: (RingId(D1, 11), (D1,)), D2: (RingId(D2, 11), (D2,))},
        {(D1,): RingId(D1, 12), (D2,): RingId(D2, 12)},
    )
    layer = c.layer("d1")
    assert layer.state == GState.GOP
    assert not any(isinstance(a, Submit) for _, a in c.other)
    # the group only had d1: nothing changed for it, so no notice beyond the join
    assert len(c.out[(D1, 1)]) == 1
    assert layer.groups[b"g"].memb_id == RingId(D1, 10)
