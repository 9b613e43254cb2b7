"""Configuration order for the ring: who is where, successors, leaders, rep ordering.

Everything here is derived from `RingConfig` once; it knows nothing about packets or time.
Order is configuration order everywhere (segment index, then position in the segment), which
is what the original uses for successors, leaders, seg-rep election and FORM2 member sorting.
"""

from __future__ import annotations

from dataclasses import dataclass

from spread.ring.api import RingConfig

POTENTIAL_REP = 0
SEG_REP = 1
RING_REP = 2

MAX_REPS = 25  # reps_info capacity
MAX_MEMBERS = 128  # members_info capacity (MAX_PROCS_RING)


@dataclass(frozen=True, slots=True)
class Rep:
    """A `rep_info`: a representative's VID, its kind and its segment."""

    vid: int
    kind: int  # POTENTIAL_REP / SEG_REP / RING_REP
    seg: int


class Topology:
    """Lookups over the configured daemons, in configuration order."""

    def __init__(self, config: RingConfig) -> None:
        self.config = config
        self.my_vid = config.my_vid
        self.order: dict[int, int] = {}  # vid -> global config position
        self.seg_of: dict[int, int] = {}
        self.index_in_seg: dict[int, int] = {}
        self.ip_of: dict[int, str] = {}
        self.vid_of_ip: dict[str, int] = {}
        self.seg_procs: list[list[int]] = [[] for _ in config.segments]
        for pos, d in enumerate(config.daemons):
            self.order[d.vid] = pos
            self.seg_of[d.vid] = d.segment
            self.index_in_seg[d.vid] = len(self.seg_procs[d.segment])
            self.seg_procs[d.segment].append(d.vid)
            self.ip_of[d.vid] = d.ip
            self.vid_of_ip.setdefault(d.ip, d.vid)
        if self.my_vid not in self.order:
            raise ValueError(f"my vid {self.my_vid} is not in the configuration")
        self.my_seg = self.seg_of[self.my_vid]
        self.num_segments = len(config.segments)

    # ---- ordering ------------------------------------------------------------------------

    def known(self, vid: int) -> bool:
        return vid in self.order

    def key(self, vid: int) -> tuple[int, int]:
        return (self.seg_of[vid], self.index_in_seg[vid])

    def sort(self, vids: object) -> tuple[int, ...]:
        """Members in configuration order, without duplicates or unknown VIDs."""
        order = self.order
        return tuple(sorted({v for v in vids if v in order}, key=order.__getitem__))  # type: ignore[attr-defined]

    def smallest_member(self, vids: list[int]) -> int:
        """Lowest (segment, position): the seg-rep election and FORM2 sort key."""
        return min(vids, key=self.key)

    def smallest_rep_index(self, reps: list[Rep]) -> int:
        """Every SEG_REP before every RING_REP; SEG_REPs by segment (first in list on a tie);
        RING_REPs by (segment, position). The original's scan, kept as a scan."""
        cur = 0
        for i in range(1, len(reps)):
            c, r = reps[cur], reps[i]
            if c.kind == SEG_REP:
                if r.kind == SEG_REP and r.seg < c.seg:
                    cur = i
            elif c.kind == RING_REP:
                if r.kind == RING_REP:
                    if r.seg < c.seg or (
                        r.seg == c.seg
                        and self.index_in_seg.get(r.vid, 0) < self.index_in_seg.get(c.vid, 0)
                    ):
                        cur = i
                elif r.kind == SEG_REP:
                    cur = i
        return cur

    def sort_reps(self, reps: list[Rep]) -> list[Rep]:
        """The original's selection sort (swap-with-last), so equal keys land as it does."""
        tmp = list(reps)
        out: list[Rep] = []
        while tmp:
            i = self.smallest_rep_index(tmp)
            out.append(tmp[i])
            tmp[i] = tmp[-1]
            tmp.pop()
        return out

    # ---- ring neighbours -----------------------------------------------------------------

    def leader(self, members: tuple[int, ...]) -> int:
        return members[0]

    def successor(self, members: tuple[int, ...], vid: int) -> int:
        i = members.index(vid) if vid in members else -1
        return members[(i + 1) % len(members)]

    def predecessor(self, members: tuple[int, ...], vid: int) -> int:
        i = members.index(vid) if vid in members else 0
        return members[i - 1]

    def seg_leader(self, members: tuple[int, ...], seg: int) -> int | None:
        """First member of `seg` in `members`, else None."""
        for v in members:
            if self.seg_of[v] == seg:
                return v
        return None

    def first_configured(self, seg: int) -> int:
        return self.seg_procs[seg][0]


def insert_rep(topo: Topology, reps: list[Rep], rep: Rep) -> bool:
    """The original's insert_rep rules, per segment of `rep`; capped at MAX_REPS.

    Unknown VIDs are refused (the original aborts)."""
    if not topo.known(rep.vid):
        return False
    seg = topo.seg_of[rep.vid]
    if rep.kind == POTENTIAL_REP:
        for r in reps:
            if r.seg == seg:
                return False
    elif rep.kind == SEG_REP:
        for i, r in enumerate(reps):
            if r.seg != seg:
                continue
            if r.kind == POTENTIAL_REP:
                reps[i] = Rep(rep.vid, SEG_REP, r.seg)
                return True
            if r.kind == SEG_REP and r.vid == rep.vid:
                return False
            if r.kind == RING_REP and r.vid == rep.vid:
                reps[i] = Rep(r.vid, SEG_REP, r.seg)
                return True
    elif rep.kind == RING_REP:
        for i, r in enumerate(reps):
            if r.seg != seg:
                continue
            if r.kind == POTENTIAL_REP:
                reps[i] = Rep(rep.vid, RING_REP, r.seg)
                return True
            if r.kind == SEG_REP and r.vid == rep.vid:
                reps[i] = Rep(r.vid, RING_REP, r.seg)
                return True
            if r.kind == RING_REP and r.vid == rep.vid:
                return False
    else:
        return False
    if len(reps) >= MAX_REPS:
        return False
    reps.append(rep)
    return True


def insert_member(members: list[int], vid: int) -> bool:
    if vid in members or len(members) >= MAX_MEMBERS:
        return False
    members.append(vid)
    return True
