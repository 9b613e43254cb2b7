"""Group layer on one daemon: who receives what, and the notices local members get."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from spread.groups.layer import GroupLayer, Send, SessionGone, to_little_endian
from spread.ring.api import DeliveryThreshold, Log, RegularConfiguration, RingId
from spread.wire import client as wire

VID = 2614064012  # auto VID of "testvm"
RID = RingId(VID, 1795572885)


def _layer(*sessions: tuple[int, str, bool]) -> GroupLayer:
    layer = GroupLayer(VID, "testvm", [(VID, "testvm")])
    acts = layer.on_ring(RegularConfiguration(RID, (VID,)))
    assert any(getattr(a, "threshold", None) == DeliveryThreshold.ALL for a in acts)
    for sid, name, memb in sessions:
        layer.open_session(sid, f"#{name}#testvm".encode(), memb)
    return layer


def _sends(acts: list) -> list[tuple[list[int], bytes]]:
    return [(sorted(a.sessions), a.data) for a in acts if isinstance(a, Send)]


def _join(layer: GroupLayer, who: str, group: str) -> list:
    return layer.on_deliver(wire.encode_join(f"#{who}#testvm", group))


def _mcast(
    who: str, groups: list[str], service: int = wire.AGREED_MESS, data: bytes = b"x"
) -> bytes:
    return wire.encode_multicast(f"#{who}#testvm", service, groups, 1, data)


def test_join_notices_count_the_group_index_and_list_members_by_name() -> None:
    layer = _layer((1, "bbb", True), (2, "aaa", True), (3, "ccc", False))
    _join(layer, "bbb", "g")
    _join(layer, "ccc", "g")
    sends = _sends(_join(layer, "aaa", "g"))
    assert [s for s, _ in sends] == [[1, 2]]  # ccc asked for no membership messages
    msg = wire.decode_message(sends[0][1])[0]
    assert msg.type == wire.REG_MEMB_MESS | wire.CAUSED_BY_JOIN
    assert msg.groups == ("#aaa#testvm", "#bbb#testvm", "#ccc#testvm")
    body = wire.decode_membership_body(msg.data)
    assert body.gid == wire.GroupId(wire.GroupId.signed(VID), RID.time, 3)
    assert body.vs_sets == (("#aaa#testvm",),)


def test_duplicate_join_and_leave_of_non_member_say_nothing() -> None:
    layer = _layer((1, "u1", True))
    _join(layer, "u1", "g")
    assert _sends(_join(layer, "u1", "g")) == []
    assert _sends(layer.on_deliver(wire.encode_leave("#u1#testvm", "other"))) == []


def test_leave_gives_self_leave_to_leaver_and_caused_by_leave_to_others() -> None:
    layer = _layer((1, "u1", True), (2, "u2", True))
    _join(layer, "u1", "g")
    _join(layer, "u2", "g")
    sends = _sends(layer.on_deliver(wire.encode_leave("#u2#testvm", "g")))
    assert sends[0] == ([2], wire.encode_self_leave("g"))
    msg = wire.decode_message(sends[1][1])[0]
    assert sends[1][0] == [1] and msg.type == wire.REG_MEMB_MESS | wire.CAUSED_BY_LEAVE
    assert wire.decode_membership_body(msg.data).gid.index == 3


def test_last_leave_deletes_group_and_rejoin_starts_at_index_one() -> None:
    layer = _layer((1, "u1", True))
    _join(layer, "u1", "g")
    layer.on_deliver(wire.encode_leave("#u1#testvm", "g"))
    assert b"g" not in layer.groups
    msg = wire.decode_message(_sends(_join(layer, "u1", "g"))[0][1])[0]
    assert wire.decode_membership_body(msg.data).gid.index == 1


def test_kill_notifies_every_group_in_name_order_and_frees_the_name() -> None:
    layer = _layer((1, "u1", True), (2, "u2", True))
    for g in ("zz", "aa"):
        _join(layer, "u1", g)
        _join(layer, "u2", g)
    acts = layer.on_deliver(layer.kill_message(2))
    notes = [wire.decode_message(d)[0] for _, d in _sends(acts)]
    assert [n.sender for n in notes] == ["aa", "zz"]
    assert all(n.type == wire.REG_MEMB_MESS | wire.CAUSED_BY_DISCONNECT for n in notes)
    assert SessionGone(2) in acts
    assert not layer.name_taken(b"#u2#testvm")


def test_data_goes_once_to_each_member_and_self_discard_skips_sender() -> None:
    layer = _layer((1, "u1", True), (2, "u2", True), (3, "u3", True))
    _join(layer, "u1", "a")
    _join(layer, "u2", "a")
    _join(layer, "u2", "b")
    msg = _mcast("u1", ["a", "b", "a", "#u3#testvm", "#u3#other", "nosuch"])
    assert _sends(layer.on_deliver(msg)) == [([1, 2, 3], msg)]
    sd = _mcast("u1", ["a"], wire.AGREED_MESS | wire.SELF_DISCARD)
    assert _sends(layer.on_deliver(sd)) == [([2], sd)]


def test_empty_group_and_open_group_sends() -> None:
    layer = _layer((1, "u1", True), (2, "u2", True))
    assert layer.on_deliver(_mcast("u1", ["empty1"])) == []
    _join(layer, "u2", "g")
    msg = _mcast("u1", ["g"])  # u1 is not a member: only u2 gets it
    assert _sends(layer.on_deliver(msg)) == [([2], msg)]


def test_big_endian_message_is_delivered_in_our_order_with_hint_untouched() -> None:
    layer = _layer((1, "j", True))
    _join(layer, "j", "g")
    head = wire.encode_header_be(wire.AGREED_MESS, "#j#testvm", 1, 1, 5)
    be = head + wire.encode_name("g") + b"hello"
    out = _sends(layer.on_deliver(be))[0][1]
    assert out[:4] == bytes.fromhex("90000080")
    assert out[40:44] == be[40:44] == bytes.fromhex("00000100")
    assert struct.unpack_from("<ii", out, 36)[0] == 1 and out[44:48] == struct.pack("<i", 5)
    assert to_little_endian(out) == out


ops = st.lists(
    st.tuples(
        st.sampled_from(["join", "leave", "kill", "data"]),
        st.integers(1, 4),
        st.sampled_from(["a", "b", "c"]),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_group_state_follows_a_plain_model(steps: list[tuple[str, int, str]]) -> None:
    """Any sequence of joins, leaves, kills and sends: members, indexes and recipients agree
    with a dictionary model, and every notice lists exactly the members it should."""
    layer = _layer(*((i, f"u{i}", True) for i in range(1, 5)))
    model: dict[str, list[int]] = {}
    index: dict[str, int] = {}
    alive = {1, 2, 3, 4}
    for op, sid, group in steps:
        if sid not in alive:
            continue
        me = f"#u{sid}#testvm"
        if op == "join":
            acts = _join(layer, f"u{sid}", group)
            if sid not in model.setdefault(group, []):
                model[group].append(sid)
                index[group] = index.get(group, 0) + 1
                notice = wire.decode_message(_sends(acts)[0][1])[0]
                assert notice.groups == tuple(f"#u{s}#testvm" for s in sorted(model[group]))
                assert wire.decode_membership_body(notice.data).gid.index == index[group]
            else:
                assert _sends(acts) == []
        elif op == "leave":
            acts = layer.on_deliver(wire.encode_leave(me, group))
            if sid in model.get(group, []):
                model[group].remove(sid)
                index[group] += 1
                assert _sends(acts)[0] == ([sid], wire.encode_self_leave(group))
            else:  # only the original's log lines: it leaves, then why nothing happened
                assert _sends(acts) == [] and all(isinstance(a, Log) for a in acts)
        elif op == "kill":
            layer.on_deliver(layer.kill_message(sid))
            alive.discard(sid)
            for g, members in model.items():
                if sid in members:
                    members.remove(sid)
                    index[g] += 1
        else:
            acts = layer.on_deliver(_mcast(f"u{sid}", [group]))
            want = sorted(model.get(group, []))
            assert (_sends(acts)[0][0] if acts else []) == want
        for g, members in list(model.items()):
            if not members:
                del model[g]
                index.pop(g, None)
        assert {
            k.decode(): sorted(int(m[2:-7]) for m in grp.daemons[VID].members)
            for k, grp in layer.groups.items()
        } == {g: sorted(m) for g, m in model.items()}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_delivered_bytes_leave_the_layer_standing(junk: bytes) -> None:
    """What a buggy peer daemon could get ordered: never an exception, state stays usable."""
    layer = _layer((1, "u1", True))
    _join(layer, "u1", "g")
    layer.on_deliver(junk)
    msg = _mcast("u1", ["g"])
    assert _sends(layer.on_deliver(msg)) in ([([1], msg)], [])


def test_joins_leaves_and_kills_are_logged_in_the_originals_words() -> None:
    layer = _layer((1, "u1", True))

    def said(acts: list) -> list[str]:
        return [a.text for a in acts if isinstance(a, Log)]

    assert said(_join(layer, "u1", "a")) == ["G_handle_join: #u1#testvm joins group a"]
    assert said(_join(layer, "u1", "a")) == ["G_handle_join: #u1#testvm joins group a",
                                            "G_handle_join: #u1#testvm is already in group a"]
    assert said(layer.on_deliver(wire.encode_leave("#u1#testvm", "zz"))) == [
        "G_handle_leave: #u1#testvm leaves group zz", "G_handle_leave: group zz does not exist"]
    assert said(layer.on_deliver(wire.encode_leave("#u9#testvm", "a"))) == [
        "G_handle_leave: #u9#testvm leaves group a",
        "G_handle_leave: member #u9#testvm does not exist in daemon/group testvm/a"]
    assert said(layer.on_deliver(layer.kill_message(1)))[0] == "G_handle_kill: #u1#testvm is killed"
