"""Pure pieces of the membership protocol: FORM token ring lists and the FORM2 id slot.

The engine owns the state; these functions only compute what goes on a FORM token from
what a daemon knows about its old ring (Spread 5.0.1 `Create_form1` / `Fill_form1` rules).

The per-state reaction table is in docs/ring-engine.md.
"""

from __future__ import annotations

import struct

from spread.ring.api import RingId
from spread.wire.daemon import RepInfo, RingInfo

OP, SEG, REPRESENTED, GATHER, FORM, EVS = 1, 2, 3, 4, 5, 6
STATE_NAMES = {
    OP: "OP",
    SEG: "SEG",
    REPRESENTED: "REPRESENTED",
    GATHER: "GATHER",
    FORM: "FORM",
    EVS: "EVS",
}

MAX_FORM_REPS = 20  # rings that fit on one FORM token
_SLOT = struct.Struct("<hhi")
_SLOT_ID = struct.Struct("<Ii")


def form2_id_slot(reps: tuple[RepInfo, ...], rep_index: int) -> RingId:
    """What the FORM2 id slot holds before the future leader fills it.

    The original converts FORM1 to FORM2 by shortening the reps part to 8 bytes, so the slot
    shows the first 8 bytes of `reps_info`: num_reps, rep_index and reps[0].proc_id.
    """
    first = reps[0].proc_id if reps else 0
    first = first - (1 << 32) if first >= 1 << 31 else first
    raw = _SLOT.pack(_s16(len(reps)), _s16(rep_index), first)
    proc, time = _SLOT_ID.unpack(raw)
    return RingId(proc, time)


def _s16(v: int) -> int:
    v &= 0xFFFF
    return v - 0x10000 if v >= 0x8000 else v


def new_ring_info(
    memb_id: RingId,
    aru: int,
    highest_seq: int,
    holes: list[int],
    me: int,
    commit_ids: list[int],
) -> RingInfo:
    """My old ring's entry when I am the first of it on the token: trans = [me]."""
    ids = [me] + [v for v in commit_ids if v != me]
    return RingInfo(memb_id, 0, aru, highest_seq, 1, tuple(holes), tuple(ids))


def merge_ring_info(
    listed: RingInfo,
    me: int,
    aru: int,
    highest_seq: int,
    still_missing: list[int],
    commit_ids: list[int],
) -> RingInfo:
    """Fold my view of my old ring into its entry: max aru/highest, holes I also lack,
    trans += me, commit = trans ∪ old commit ∪ my commit set (insertion order kept)."""
    trans: list[int] = []
    for v in listed.ids[: listed.num_trans]:
        if v not in trans:
            trans.append(v)
    if me not in trans:
        trans.append(me)
    num_trans = listed.num_trans + 1  # the original counts me even if already listed
    ids = list(trans)
    for v in list(listed.ids[listed.num_trans :]) + list(commit_ids):
        if v not in ids and len(ids) < 128:
            ids.append(v)
    return RingInfo(
        listed.memb_id,
        0,
        max(listed.aru, aru),
        max(listed.highest_seq, highest_seq),
        min(num_trans, len(ids)),
        tuple(still_missing),
        tuple(ids),
    )
