"""ARP announcements for acquired addresses, and the local ARP table: everything but the sending.

Owns reading `/proc/net/arp` text, the frames (built with scapy: 60-byte ARP replies and the
42-byte ICMP echo for `ping`), and the notifier: the rounds, one second apart, in which an
acquired VIF's addresses are announced to the configured netblocks and to the peers in the
shared ARP cache (reference §5). The notifier is sans-IO: `start()` and `round()` return
frames to send and log lines; the daemon sends them and schedules the next round.

Differences from the C notifier, all recommended by the reference (docs/compat.md): the list
of addresses is rebuilt at every start (C appends to it forever), and the netblock budget and
the cache snapshot are kept per (address, notification) instead of per notification, which
gives the same frames for single-address VIFs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Padding

from wackamole.config.model import IpSpec, Notification, Vif, prefix_mask
from wackamole.peer import ArpEntry

BROADCAST_MAC = b"\xff" * 6
COPIES = 2  # each frame goes out twice, as the original sends it
ROUND_SECONDS = 1.0
PROC_NET_ARP = "/proc/net/arp"


def _mac_text(mac: bytes) -> str:
    return mac.hex(":")


def arp_reply(my_mac: bytes, vip: IPv4Address, dest_mac: bytes, target: IPv4Address) -> bytes:
    """One 60-byte gratuitous ARP reply: `vip` is at `my_mac`, told to `target`."""
    frame = (
        Ether(dst=_mac_text(dest_mac), src=_mac_text(my_mac), type=0x0806)
        / ARP(hwtype=1, ptype=0x0800, hwlen=6, plen=4, op=2, hwsrc=_mac_text(my_mac),
              psrc=str(vip), hwdst=_mac_text(dest_mac), pdst=str(target))
        / Padding(load=bytes(18))
    )
    return bytes(frame)


def icmp_echo(my_mac: bytes, vip: IPv4Address, dest_mac: bytes, target: IPv4Address) -> bytes:
    """The 42-byte echo request the original sends after a cache target's replies (`ping`)."""
    frame = (
        Ether(dst=_mac_text(dest_mac), src=_mac_text(my_mac), type=0x0800)
        / IP(version=4, ihl=5, tos=0, id=0xFEFE, flags=0, frag=0, ttl=64, proto=1,
             src=str(vip), dst=str(target))
        / ICMP(type=8, code=0, id=0xFEFE, seq=0xFEFE)
    )
    return bytes(frame)


def parse_proc_net_arp(text: str) -> tuple[list[ArpEntry], list[str]]:
    """Entries of /proc/net/arp as the original samples them, and its ARPING debug lines.

    Every line is taken whatever its flags (incomplete entries have MAC 00:...:00); reading
    stops at the first line with fewer than six fields.
    """
    entries: list[ArpEntry] = []
    lines: list[str] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 6 or not fields[1].startswith("0x") or not fields[2].startswith("0x"):
            break
        ip_text, mac_text, device = fields[0], fields[3], fields[5]
        try:
            ip = IPv4Address(ip_text)
            mac = bytes(int(part, 16) for part in mac_text.split(":"))
        except ValueError:
            break
        if len(mac) != 6:
            break
        entries.append(ArpEntry(ip, mac))
        lines.append(f"Adding: ({device}) {ip_text} [{mac_text}]")
    if not entries:
        lines.append("Local arp-cache seems to be empty")
    return entries, lines


def read_local_arp_cache(path: str = PROC_NET_ARP) -> tuple[list[ArpEntry], list[str]]:
    try:
        with open(path) as f:
            return parse_proc_net_arp(f.read())
    except OSError:
        return [], ["Can not read arp cache"]


@dataclass(frozen=True)
class Frame:
    """One frame to put on `ifname`."""

    ifname: str
    data: bytes


@dataclass
class _Job:
    """What is left to announce for one address and one notification."""

    address: IpSpec
    notification: Notification
    left: int = -1  # netblock targets left; -1 = not counted yet
    cache: list[ArpEntry | None] = field(default_factory=list)  # arp-cache targets left


@dataclass
class RoundResult:
    frames: list[Frame]
    log: list[str]  # ARPING-level lines (shown with -d)
    again: bool  # something was sent: run another round ROUND_SECONDS later


def _hint_range(spec: IpSpec) -> tuple[int, int]:
    ip, mask = int(spec.address), prefix_mask(spec.hint_prefix)
    return ip & mask, ip | (~mask & 0xFFFFFFFF)


def _intersect(
    spec: IpSpec, start2: int, end2: int, log: list[str]
) -> tuple[int, int] | None:
    s1, e1 = _hint_range(spec)
    for name, value in (("i1: s1", s1), ("i1: e1", e1), ("i2: s2", start2), ("i2: e2", end2)):
        log.append(f"{name} -> {IPv4Address(value)}")
    s, e = max(s1, start2), min(e1, end2)
    return None if e < s else (s, e)


class Announcement:
    """The notifier of one acquired VIF: the addresses to announce and to whom."""

    def __init__(
        self, vif: Vif, notifications: Sequence[Notification], shared_cache: Iterable[ArpEntry]
    ) -> None:
        snapshot = list(shared_cache)
        self.jobs = [
            _Job(address, n, cache=list(snapshot) if n.is_arp_cache else [])
            for address in vif.addresses
            for n in notifications
        ]

    def round(self, mac_of: dict[str, bytes | None]) -> RoundResult:
        """One round: for each address and notification, the next targets (throttled)."""
        frames: list[Frame] = []
        log: list[str] = []
        sent = 0
        for job in self.jobs:
            my_mac = mac_of.get(job.address.ifname)
            if job.notification.is_arp_cache:
                sent += self._cache_round(job, my_mac, frames, log)
            else:
                sent += self._netblock_round(job, my_mac, frames, log)
        return RoundResult(frames, log, sent > 0)

    @staticmethod
    def _send(
        job: _Job, my_mac: bytes | None, target: IPv4Address, dest_mac: bytes | None,
        frames: list[Frame],
    ) -> None:
        if my_mac is None:
            return  # no hardware address to send from: nothing goes out, as in the original
        vip, ifname = job.address.address, job.address.ifname
        reply = arp_reply(my_mac, vip, BROADCAST_MAC, target)
        frames.extend([Frame(ifname, reply)] * COPIES)
        if dest_mac is not None:
            frames.extend([Frame(ifname, arp_reply(my_mac, vip, dest_mac, target))] * COPIES)
            if job.notification.ping:
                frames.append(Frame(ifname, icmp_echo(my_mac, vip, dest_mac, target)))

    def _netblock_round(
        self, job: _Job, my_mac: bytes | None, frames: list[Frame], log: list[str]
    ) -> int:
        if job.left == 0:
            return 0
        target = job.notification.target
        assert target is not None
        mask = prefix_mask(target.prefix)
        base = int(target.address) & mask
        span = _intersect(job.address, base, base | (~mask & 0xFFFFFFFF), log)
        if target.ifname != job.address.ifname or span is None:
            return 0  # looked at again next round, as the original does
        size = span[1] - span[0] + 1
        if job.left == -1:
            job.left = size
        throttle = job.notification.throttle
        sent = 0
        while job.left and (not throttle or sent < throttle):
            ip = IPv4Address(span[0] + size - job.left)
            log.append(f"Spoofing (static): {job.address.ifname}:{ip}")
            self._send(job, my_mac, ip, None, frames)
            job.left -= 1
            sent += 1
        return sent

    def _cache_round(
        self, job: _Job, my_mac: bytes | None, frames: list[Frame], log: list[str]
    ) -> int:
        log.append(f"Count: {len(job.cache) if job.left != -1 else -1}")
        job.left = len(job.cache)
        log.append(f"Count: {job.left}")
        throttle = job.notification.throttle
        sent = 0
        for k, entry in enumerate(job.cache):
            if throttle and sent >= throttle:
                break
            if entry is None:
                continue
            ip = int(entry.ip)
            if _intersect(job.address, ip, ip, log) is None:
                continue
            ifname, vip = job.address.ifname, job.address.address
            log.append(f"Spoofing (arp-cache): from {ifname}:{vip}")
            log.append(
                f"Spoofing (arp-cache): to {ifname}:{entry.ip} (ping {int(job.notification.ping)})"
            )
            self._send(job, my_mac, entry.ip, entry.mac, frames)
            job.cache[k] = None  # told once; later rounds skip it
            sent += 1
        return sent
