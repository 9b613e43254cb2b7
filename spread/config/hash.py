"""The original's one-at-a-time hash, automatic virtual ids and the configuration hash.

Knows nothing about parsing: it takes the finished segments and turns them into the exact
string the C daemon hashes (reference §6) and into 32-bit numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MASK32 = 0xFFFFFFFF
SP_MAJOR_VERSION = 5


def to_bytes(text: str) -> bytes:
    """The file's bytes back from text read with surrogateescape (any str works)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates that did not come from a file
        return text.encode("utf-8", "surrogatepass")


def oaat(data: bytes) -> int:
    """Bob Jenkins' one-at-a-time hash as stdutil computes it on x86 (signed `char`)."""
    h = len(data) & MASK32  # the seed is the length, trailing NUL included by callers
    for c in data:
        if c >= 0x80:  # C `char` is signed on x86: bytes >= 0x80 add a negative value
            c -= 256
        h = (h + c) & MASK32
        h = (h + (h << 10)) & MASK32
        h ^= h >> 6
    h = (h + (h << 3)) & MASK32
    h ^= h >> 11
    h = (h + (h << 15)) & MASK32
    return h


def auto_vid(name: str) -> int:
    """The virtual id the original gives a daemon without `VirtualID` (hash of name + NUL)."""
    data = to_bytes(name) + b"\0"
    vid = oaat(data)
    if vid in (0, MASK32):  # 0 and -1 are reserved proc ids
        vid = ((len(data) << 16) & MASK32) or 0x10000
    return vid


@dataclass(frozen=True, slots=True)
class HashDaemon:
    name: str
    canon_addr: str
    vid: int


@dataclass(frozen=True, slots=True)
class HashSegment:
    port: int
    canon_addrs: tuple[str, ...]
    daemons: tuple[HashDaemon, ...]


def segment_text(seg: HashSegment, exclude_seg_addrs: bool) -> str:
    head = f"Segment: port = {seg.port};"
    if not exclude_seg_addrs:
        head += "".join(f" [{a}]" for a in seg.canon_addrs)
    lines = [head + "\n"]
    lines += [f"\t'{d.name}' [{d.canon_addr}] [{d.vid}]\n" for d in seg.daemons]
    return "".join(lines) + "\n"


def hash_text(
    segments: Sequence[HashSegment], *, exclude_seg_addrs: bool, accelerated_ring: bool
) -> str:
    """The whole string the original hashes (without its trailing NUL)."""
    protocol = "Accelerated Ring" if accelerated_ring else "Original Ring"
    body = "".join(segment_text(s, exclude_seg_addrs) for s in segments)
    return body + f"Version: {SP_MAJOR_VERSION}\nProtocol: {protocol}\n"


def conf_hash(text: str) -> int:
    return oaat(to_bytes(text) + b"\0")


def vids_unique(vids: Iterable[int]) -> bool:
    seen = list(vids)
    return len(seen) == len(set(seen))
