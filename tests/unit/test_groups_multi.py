"""Group layer across daemons: partitions, merges, GROUPS exchange, cascades (daemon §9).

Several GroupLayers are driven through a toy total order (the Cluster below) with explicit
transitional and regular configurations, the way a ring engine would drive them.
"""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from spread.groups.layer import (
    GroupAction,
    GroupLayer,
    GState,
    ReadClients,
    Send,
    SessionGone,
    Submit,
    UseGroupsQueue,
)
from spread.ring.api import Log, RingId
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


def _types(msgs: list[bytes]) -> list[int]:
    return [struct.unpack_from("<I", m)[0] & ~wire.ENDIAN_MARKER & 0xFFFFFFFF for m in msgs]


def _body(m: bytes) -> wire.MembershipBody:
    ng = struct.unpack_from("<i", m, 36)[0]
    return wire.decode_membership_body(m[48 + 32 * ng :])


def _three() -> Cluster:
    c = Cluster([(D1, "d1"), (D2, "d2"), (D3, "d3")])
    c.components = [(D1, D2), (D3,)]
    c.install({D1: RingId(D1, 100), D3: RingId(D3, 100)})
    _open(c, "d1", 1, "a")
    _open(c, "d3", 1, "c")
    c.submit(D1, wire.encode_join("#a#d1", "g"))
    c.submit(D3, wire.encode_join("#c#d3", "g"))
    return c


def _merge_without_delivery(c: Cluster) -> list[tuple[int, bytes]]:
    """All three merge; the GROUPS messages are submitted but not yet delivered."""
    c.components = [(D1, D2, D3)]
    for vid in (D1, D2):
        c._apply(vid, c.layers[vid].on_transitional(RingId(D1, 101), (D1, D2)))
    c._apply(D3, c.layers[D3].on_transitional(RingId(D3, 101), (D3,)))
    for vid in (D1, D2, D3):
        c._apply(vid, c.layers[vid].on_regular(RingId(D1, 102), (D1, D2, D3)))
    held, c.pending = c.pending, []
    return held


def test_merge_holds_clients_and_only_synced_set_leaders_send_groups() -> None:
    c = _three()
    held = _merge_without_delivery(c)
    assert sorted(v for v, _ in held) == sorted([D1, D3])  # d2 is in d1's synced set, d1 leads it
    assert all(c.layers[v].state == GState.GGATHER for v in (D1, D2, D3))
    gates = [a for _, a in c.other if isinstance(a, ReadClients | UseGroupsQueue)]
    assert ReadClients(False) in gates and UseGroupsQueue(True) in gates
    c.pending = held
    c.run()
    assert all(c.layers[v].state == GState.GOP for v in (D1, D2, D3))
    notice = c.out[(D1, 1)][-1]
    assert _types([notice]) == [wire.REG_MEMB_MESS | wire.CAUSED_BY_NETWORK]
    body = _body(notice)
    assert body.vs_sets == (("#c#d3",), ("#a#d1",))  # ordered by previous ring id: d3's < d1's
    assert body.gid == wire.GroupId(D1, 102, 1)
    assert body.my_vs_set_index == 1
    assert _body(c.out[(D3, 1)][-1]).my_vs_set_index == 0
    assert c.layer("d2").groups[b"g"].size() == 2  # d2 learned the whole state
    dump = [a.text for v, a in c.other if v == D2 and isinstance(a, Log) and a.priority == 6]
    assert dump == [
        "++++++++++++++++++++++\n",
        "Num of groups: 1\n",
        "[1] group g with 2 members:\n",
        "\t[1] #a#d1\n",
        "\t[1] #c#d3\n",
        "----------------------\n",
    ]


def test_cascading_transitional_after_complete_exchange_replays_it() -> None:
    """GROUPS complete while in GGT: finish the merge, then handle the remembered transitional."""
    c = _three()
    held = _merge_without_delivery(c)
    c.components = [(D1, D2), (D3,)]
    for vid in (D1, D2):
        c._apply(vid, c.layers[vid].on_transitional(RingId(D1, 103), (D1, D2)))
        assert c.layers[vid].state == GState.GGT
    for _origin, msg in held:  # old-ring messages delivered inside the transitional config
        for vid in (D1, D2):
            c._apply(vid, c.layers[vid].on_deliver(msg))
    assert c.layers[D1].state == GState.GTRANS
    for vid in (D1, D2):
        c._apply(vid, c.layers[vid].on_regular(RingId(D1, 104), (D1, D2)))
    assert c.layers[D1].state == GState.GOP
    seen = _types(c.out[(D1, 1)])
    net = wire.REG_MEMB_MESS | wire.CAUSED_BY_NETWORK
    assert seen == [wire.REG_MEMB_MESS | wire.CAUSED_BY_JOIN, net, wire.TRANSITION_MESS, net]
    assert _body(c.out[(D1, 1)][1]).vs_sets == (("#c#d3",), ("#a#d1",))
    last = c.out[(D1, 1)][3]
    assert _body(last).vs_sets == (("#a#d1",),)
    assert _body(last).gid == wire.GroupId(D1, 104, 1)


def test_cascading_regular_before_exchange_completes_restarts_it() -> None:
    c = _three()
    _merge_without_delivery(c)  # the old GROUPS messages are lost with that ring
    c.components = [(D1, D2), (D3,)]
    for vid in (D1, D2):
        c._apply(vid, c.layers[vid].on_transitional(RingId(D1, 103), (D1, D2)))
    for vid in (D1, D2):
        c._apply(vid, c.layers[vid].on_regular(RingId(D1, 104), (D1, D2)))
    assert [v for v, _ in c.pending] == [D1]  # d1 re-sends, stamped with the new ring id
    assert c.pending[0][1][48:56] == struct.pack("<II", D1, 104)
    c.run()
    assert c.layers[D1].state == c.layers[D2].state == GState.GOP
    assert _types(c.out[(D1, 1)]) == [wire.REG_MEMB_MESS | wire.CAUSED_BY_JOIN]
    assert c.layer("d2").groups[b"g"].size() == 1


def test_groups_message_of_another_ring_is_ignored() -> None:
    c = _three()
    held = _merge_without_delivery(c)
    stale = bytearray(held[0][1])
    stale[48:56] = struct.pack("<II", D1, 99)
    c._apply(D2, c.layers[D2].on_deliver(bytes(stale)))
    assert c.layers[D2].state == GState.GGATHER
    assert c.layers[D2]._num_daemons_gathered == 0


def test_join_in_transitional_period_shows_joiner_in_its_own_vs_set() -> None:
    c = Cluster([(D1, "d1"), (D2, "d2")])
    c.install({D1: RingId(D1, 10)})
    _open(c, "d1", 1, "a")
    _open(c, "d1", 2, "x")
    _open(c, "d2", 1, "b")
    c.submit(D1, wire.encode_join("#a#d1", "g"))
    c.submit(D2, wire.encode_join("#b#d2", "g"))
    c.components = [(D1,), (D2,)]
    c._apply(D1, c.layers[D1].on_transitional(RingId(D1, 11), (D1,)))
    assert _types(c.out[(D1, 1)][-1:]) == [wire.TRANSITION_MESS]
    c.submit(D1, wire.encode_join("#x#d1", "g"))  # delivered between trans and regular
    a_net, a_trans = c.out[(D1, 1)][-2:]
    x_net, x_trans = c.out[(D1, 2)]
    assert _types([a_net, a_trans]) == [
        wire.REG_MEMB_MESS | wire.CAUSED_BY_NETWORK,
        wire.TRANSITION_MESS,
    ]
    assert a_net[:-80] == x_net[:-80] or a_net[48 + 96 :] != x_net[48 + 96 :]
    assert _body(a_net).vs_sets == (("#a#d1",), ("#b#d2",), ("#x#d1",))
    assert _body(a_net).my_vs_set_index == 0
    assert _body(x_net).my_vs_set_index == 2
    assert a_trans == x_trans


def test_groups_state_larger_than_one_buffer_is_split_and_merged_whole() -> None:
    c = Cluster([(D1, "d1"), (D2, "d2")])
    c.components = [(D1,), (D2,)]
    c.install({D1: RingId(D1, 10), D2: RingId(D2, 10)})
    for i in range(100):
        _open(c, "d1", i, f"u{i}")
    for g in range(40):
        for i in range(100):
            c.submit(D1, wire.encode_join(f"#u{i}#d1", f"grp{g:02d}"))
    c.components = [(D1, D2)]
    for vid in (D1, D2):
        c._apply(vid, c.layers[vid].on_transitional(RingId(vid, 11), (vid,)))
    for vid in (D1, D2):
        c._apply(vid, c.layers[vid].on_regular(RingId(D1, 12), (D1, D2)))
    sent = [m for v, m in c.pending if v == D1]
    assert len(sent) == 2
    assert _types(sent) == [
        wire.GROUPS_MESS | wire.RELIABLE_MESS,
        wire.GROUPS_MESS | wire.AGREED_MESS,
    ]
    assert all(len(m) - 48 <= 100_000 for m in sent)
    c.run()
    mine, theirs = c.layer("d1").groups, c.layer("d2").groups
    assert sorted(mine) == sorted(theirs) and len(mine) == 40
    for name, grp in mine.items():
        assert theirs[name].daemons[D1].members == grp.daemons[D1].members


def test_vs_sets_follow_the_c_wrapping_ring_id_order() -> None:
    from spread.groups.layer import _cmp_memb_ids

    a, b = RingId(0x7FFFFFFF, 5), RingId(0x80000001, 5)
    assert _cmp_memb_ids(a, b) < 0  # int32 a - b wraps negative, unlike a plain compare
    assert _cmp_memb_ids(None, a) > 0 and _cmp_memb_ids(a, None) < 0


# ---- random partitions and merges against a model --------------------------------------------

V = (D1, D2, D3)
NAMES = {D1: "d1", D2: "d2", D3: "d3"}
partitions = st.sampled_from(
    [
        [(D1, D2, D3)],
        [(D1,), (D2, D3)],
        [(D1, D2), (D3,)],
        [(D1, D3), (D2,)],
        [(D1,), (D2,), (D3,)],
    ]
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.sampled_from(V), st.integers(1, 2), st.sampled_from("gh")),
        st.tuples(st.just("leave"), st.sampled_from(V), st.integers(1, 2), st.sampled_from("gh")),
        st.tuples(st.just("net"), partitions),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_every_component_agrees_on_the_members_local_to_it(script: list[tuple]) -> None:
    """After each change, every daemon of a component lists exactly the members that are local
    to the daemons of its component, all are in GOP, and notices name those members."""
    c = Cluster([(v, NAMES[v]) for v in V])
    c.install({D1: RingId(D1, 100)})
    local = {v: {"g": set(), "h": set()} for v in V}
    for v in V:
        for sid in (1, 2):
            _open(c, NAMES[v], sid, f"u{sid}")
    clock = 100
    for step in script:
        if step[0] == "net":
            new = step[1]
            clock += 2
            trans = {}
            for v in V:
                old = c.component_of(v)
                now = next(comp for comp in new if v in comp)
                keep = tuple(x for x in old if x in now)
                trans[v] = (RingId(keep[0], clock - 1), keep)
            c.change(new, trans, {comp: RingId(comp[0], clock) for comp in new})
        else:
            op, v, sid, g = step
            me = f"#u{sid}#{NAMES[v]}"
            if op == "join":
                c.submit(v, wire.encode_join(me, g))
                local[v][g].add(me)
            else:
                c.submit(v, wire.encode_leave(me, g))
                local[v][g].discard(me)
        for comp in c.components:
            for v in comp:
                layer = c.layers[v]
                assert layer.state == GState.GOP
                for g in "gh":
                    want = [m for d in V if d in comp for m in sorted(local[d][g])]
                    grp = layer.groups.get(g.encode())
                    have = [m.decode() for m in layer._members(grp)] if grp else []
                    assert have == want, (NAMES[v], g, comp)
                    if grp is not None and grp.local:
                        notes = [
                            m
                            for m in c.out[(v, grp.local[0])]
                            if struct.unpack_from("<I", m)[0] & wire.REG_MEMB_MESS
                            and m[4:36] == wire.encode_name(g)
                        ]
                        assert wire.decode_message(notes[-1])[0].groups == tuple(want)


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(0, 400), flips=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255))))
def test_damaged_groups_payload_never_breaks_the_layer(cut: int, flips: list) -> None:
    c = _three()
    held = _merge_without_delivery(c)
    for origin, msg in held:
        body = bytearray(msg[48:])
        if origin == D3:
            for at, b in flips:
                if 8 <= at < len(body):  # keep the ring id so the message is taken
                    body[at] = b
            body = body[: max(9, cut)]
        head = bytearray(msg[:48])
        head[44:48] = struct.pack("<i", len(body))
        for vid in V:
            c._apply(vid, c.layers[vid].on_deliver(bytes(head) + bytes(body)))
    assert all(c.layers[v].state == GState.GOP for v in V)
