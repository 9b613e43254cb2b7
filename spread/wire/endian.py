"""Byte-order markers shared by every Spread structure on the wire.

The sender's byte order travels as bits 0x80000080 of a `type` word: both set for a
little-endian sender, both clear for a big-endian one. We always send little-endian.
"""

ENDIAN_MARKER = 0x80000080
MY_ORDER = "<"  # struct prefix for what we send


def order_of(raw_type_le: int) -> str:
    """struct prefix for a structure whose first word, read little-endian, is `raw_type_le`.

    The marker looks the same in either byte order, so reading it either way tells the truth.
    """
    return "<" if raw_type_le & ENDIAN_MARKER == ENDIAN_MARKER else ">"


def strip_marker(type_word: int) -> int:
    return type_word & ~ENDIAN_MARKER & 0xFFFFFFFF
