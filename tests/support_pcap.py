"""A tiny pcap reader for the captured vectors: Ethernet / IPv4 / UDP only, no scapy.

Yields every UDP datagram with its addresses and capture time. Frames that are not
IPv4/UDP (ARP, IPv6, fragments after the first) are skipped; fragmented IPv4 is not
reassembled (the captures never needed it: every datagram fits one frame).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_GLOBAL = struct.Struct("IHHiIII")  # magic, major, minor, zone, sigfigs, snaplen, linktype
_LINKTYPE_ETHERNET = 1
_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_VLAN = 0x8100


@dataclass(frozen=True, slots=True)
class UdpDatagram:
    index: int  # frame number in the capture, 0-based
    t: float  # seconds since the first frame
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    payload: bytes


def read_udp(path: str | Path) -> Iterator[UdpDatagram]:
    data = Path(path).read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        order = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        order = ">"
    else:
        raise ValueError(f"{path}: not a pcap file")
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack_from(order + "I", data, 20)[0]
    if linktype != _LINKTYPE_ETHERNET:
        raise ValueError(f"{path}: link type {linktype} is not Ethernet")
    record = struct.Struct(order + "IIII")
    pos = 24
    index = 0
    t0: float | None = None
    while pos + record.size <= len(data):
        sec, frac, caplen, _origlen = record.unpack_from(data, pos)
        pos += record.size
        frame = data[pos : pos + caplen]
        pos += caplen
        t = sec + frac / (1e9 if nano else 1e6)
        if t0 is None:
            t0 = t
        dgram = _udp_of(frame)
        if dgram is not None:
            yield UdpDatagram(index, t - t0, *dgram)
        index += 1


def _udp_of(frame: bytes) -> tuple[str, int, str, int, bytes] | None:
    if len(frame) < 14:
        return None
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    off = 14
    if ethertype == _ETHERTYPE_VLAN:
        ethertype = struct.unpack_from("!H", frame, 16)[0]
        off = 18
    if ethertype != _ETHERTYPE_IPV4 or len(frame) < off + 20:
        return None
    ver_ihl, _tos, total_len, _ident, flags_frag, _ttl, proto = struct.unpack_from(
        "!BBHHHBB", frame, off
    )
    ihl = (ver_ihl & 0x0F) * 4
    if ver_ihl >> 4 != 4 or proto != 17 or flags_frag & 0x1FFF:
        return None
    src = str(ipaddress.IPv4Address(frame[off + 12 : off + 16]))
    dst = str(ipaddress.IPv4Address(frame[off + 16 : off + 20]))
    udp = off + ihl
    sport, dport, ulen = struct.unpack_from("!HHH", frame, udp)
    payload = frame[udp + 8 : udp + ulen]
    if len(payload) != ulen - 8 or off + total_len > len(frame):
        raise ValueError("truncated UDP datagram in capture")
    return src, sport, dst, dport, payload
