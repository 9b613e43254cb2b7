"""A cheap look at the header of the commonest datagram: a little-endian data packet whose
body is one fragment. Everything else goes through the full codec (spread.wire.daemon).

This is not a second codec: it reads the same 40-byte `packet_header` layout only to decide
whether the full decode can be skipped, and returns None whenever it is unsure.
"""

from __future__ import annotations

import struct

_HEAD = struct.Struct("<IIIIiiiIH2shh")  # packet_header, little-endian
_MARKER = 0x80000080
_SERVICE_BITS = 0x1F


def peek_data_packet(data: bytes) -> tuple[int, int, int, int, int, int, tuple[int, int]] | None:
    """(type, transmitter, conf_hash, proc_id, seq, first fragment index, ring) or None.

    Only for a little-endian packet whose type is pure service bits (no ROUTED, no control)
    and whose first fragment fills the whole body, with the exact datagram size.
    """
    if len(data) < 40:
        return None
    (t, tx, proc, mpid, mtime, seq, _rnd, chash, dlen, _pad, findex, flen) = _HEAD.unpack_from(data)
    if t & _MARKER != _MARKER:
        return None
    t &= ~_MARKER & 0xFFFFFFFF
    if not t or t & ~_SERVICE_BITS or len(data) != 40 + dlen or flen != dlen or not dlen:
        return None
    return t, tx, chash, proc, seq, findex, (mpid, mtime)
