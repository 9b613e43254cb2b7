"""The original's printout of a configuration (`Conf_print`), as log records.

Shared by the start-up checks (an empty segment prints it before dying) and the daemon,
which prints it after every regular membership.
"""

from __future__ import annotations

from collections.abc import Sequence

from spread.config import alarm as A
from spread.config.model import SegmentSpec

MAX_ID_SIZE = 16


def conf_print(
    segments: Sequence[SegmentSpec], my_name: str, members: Sequence[int] | None = None
) -> list[A.Record]:
    """`Conf_print`: segment lines (address pieces without timestamps) and daemon lines.

    With `members` (VIDs in ring order), the membership as the original prints it after each
    ring: every segment, each listing only its daemons in the ring, in ring order."""
    if members is not None:
        by_vid = {d.vid: d for seg in segments for d in seg.daemons}
        segments = [
            SegmentSpec(seg.port, seg.addresses,
                        tuple(by_vid[v] for v in members if by_vid[v].segment == i))
            for i, seg in enumerate(segments)
        ]
    out = [
        A.Record(A.PRINT, A.CONF_SYS, "--------------------\n"),
        A.Record(A.PRINT, A.CONF_SYS, f"Configuration at {my_name} is:\n"),
        A.Record(A.PRINT, A.CONF_SYS, f"Num Segments {len(segments)}\n"),
    ]
    for seg in segments:
        out.append(A.Record(A.PRINT, A.CONF_SYS, f"\t{len(seg.daemons)}"))
        for addr in seg.addresses:
            out.append(A.Record(A.PRINT, A.CONF_SYS, f"\t[{addr.ntop}]:{seg.port}", True))
        out.append(A.Record(A.PRINT, A.CONF_SYS, "\n", True))
        for d in seg.daemons:
            out.append(A.Record(
                A.PRINT, A.CONF_SYS,
                f"\t\t{d.name:<20}\t{d.address.ntop}\tID: {d.vid:<{MAX_ID_SIZE}}\n"))
    out.append(A.Record(A.PRINT, A.CONF_SYS, "====================\n"))
    return out
