"""ARP announcements: the frames and rounds of the original notifier (vector D), cache reading."""

from __future__ import annotations

import json
from ipaddress import IPv4Address
from pathlib import Path

from wackamole.arp import Announcement, arp_reply, icmp_echo, parse_proc_net_arp
from wackamole.config import parse_config_text
from wackamole.peer import ArpEntry

VECTORS = Path(__file__).parent.parent / "vectors" / "wackamole"
D = json.loads((VECTORS / "D_wackamole_peer.json").read_text())
CONFIG = parse_config_text(D["wackamole_conf"])
MACS = {h["ip"]: bytes.fromhex(h["mac"].replace(":", "")) for h in D["hosts"].values()}


def test_each_acquisition_sends_the_captured_frames_in_one_round_then_stops() -> None:
    captured = {bytes.fromhex(f["hex"]) for f in D["arp_frames"]}
    ours: set[bytes] = set()
    for mac in MACS.values():
        for vif in CONFIG.vifs:
            ann = Announcement(vif, CONFIG.notifications, ())
            first = ann.round({"eth0": mac})
            assert first.again and len(first.frames) == 2
            assert first.frames[0] == first.frames[1]
            assert first.log == [
                "i1: s1 -> 192.0.2.0",
                "i1: e1 -> 192.0.2.255",
                "i2: s2 -> 192.0.2.255",
                "i2: e2 -> 192.0.2.255",
                "Spoofing (static): eth0:192.0.2.255",
            ]
            second = ann.round({"eth0": mac})
            assert (second.frames, second.log, second.again) == ([], [], False)
            ours.update(f.data for f in first.frames)
    assert captured <= ours
    assert all(len(f) == 60 for f in ours)


def test_the_debug_log_of_a_round_matches_the_originals_stdout() -> None:
    log = (VECTORS / "D_wack_h1_run1_stdout.log").read_text().splitlines()
    text = [line.split("] ", 1)[1] for line in log if "] " in line]
    first = text.index("i1: s1 -> 192.0.2.0")
    ann = Announcement(CONFIG.vifs[0], CONFIG.notifications, ())
    assert text[first : first + 5] == ann.round({"eth0": bytes(6)}).log


def test_a_throttle_is_targets_per_round() -> None:
    cfg = parse_config_text(
        "Group = g\nVIPs {\n eth0:10.0.0.5/32\n}\nNotify {\n eth0:10.0.0.0/29 throttle 3\n}\n"
    )
    ann = Announcement(cfg.vifs[0], cfg.notifications, ())
    targets = []
    rounds = 0
    while (r := ann.round({"eth0": b"\x02" * 6})).again:
        rounds += 1
        targets += [line.split(":", 2)[2] for line in r.log if line.startswith("Spoofing")]
        assert len(r.frames) <= 3 * 2
    assert rounds == 3  # 8 targets, 3 a second
    assert targets == [f"10.0.0.{i}" for i in range(8)]


def test_another_interface_or_no_overlap_announces_nothing() -> None:
    cfg = parse_config_text(
        "Group = g\nVIPs {\n eth0:10.0.0.5/32\n}\nNotify {\n eth1:10.0.0.0/24\n"
        " eth0:10.9.0.0/24\n}\n"
    )
    r = Announcement(cfg.vifs[0], cfg.notifications, ()).round({"eth0": b"\x02" * 6})
    assert r.frames == [] and not r.again


def test_cache_targets_in_the_hint_range_get_broadcast_unicast_and_ping() -> None:
    cfg = parse_config_text(
        "Group = g\nVIPs {\n eth0:10.0.0.5/32\n}\nNotify {\n arp-cache ping\n}\n"
    )
    peer = ArpEntry(IPv4Address("10.0.0.9"), bytes.fromhex("020000000009"))
    far = ArpEntry(IPv4Address("10.0.1.9"), bytes.fromhex("020000000109"))
    ann = Announcement(cfg.vifs[0], cfg.notifications, (peer, far))
    me = bytes.fromhex("020000000005")
    r = ann.round({"eth0": me})
    assert [f.data for f in r.frames] == [
        arp_reply(me, IPv4Address("10.0.0.5"), b"\xff" * 6, peer.ip),
        arp_reply(me, IPv4Address("10.0.0.5"), b"\xff" * 6, peer.ip),
        arp_reply(me, IPv4Address("10.0.0.5"), peer.mac, peer.ip),
        arp_reply(me, IPv4Address("10.0.0.5"), peer.mac, peer.ip),
        icmp_echo(me, IPv4Address("10.0.0.5"), peer.mac, peer.ip),
    ]
    assert r.again
    assert not ann.round({"eth0": me}).again  # each cache target is told once


def test_no_hardware_address_sends_nothing() -> None:
    ann = Announcement(CONFIG.vifs[0], CONFIG.notifications, ())
    r = ann.round({})
    assert r.frames == [] and r.again  # counted as sent, as the C notifier counts it


def test_frames_are_byte_exact() -> None:
    me, peer = bytes.fromhex("0200c0000201"), bytes.fromhex("0200c0000202")
    reply = arp_reply(me, IPv4Address("192.0.2.101"), peer, IPv4Address("192.0.2.2"))
    assert reply.hex() == (
        "0200c0000202" "0200c0000201" "0806" "0001" "0800" "06" "04" "0002"
        "0200c0000201" "c0000265" "0200c0000202" "c0000202" + "00" * 18
    )
    echo = icmp_echo(me, IPv4Address("192.0.2.101"), peer, IPv4Address("192.0.2.2"))
    assert len(echo) == 42
    assert echo[14:24] == bytes.fromhex("4500001cfefe00004001")
    assert echo[26:34] == bytes.fromhex("c0000265c0000202")
    assert echo[34:].hex()[:4] == "0800" and echo[38:].hex() == "fefefefe"
    ip_header = echo[14:34]
    total = sum(int.from_bytes(ip_header[i : i + 2], "big") for i in range(0, 20, 2))
    assert (total + (total >> 16)) & 0xFFFF == 0xFFFF  # a valid header checksum


def test_proc_net_arp_is_read_like_the_original() -> None:
    text = (
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "192.0.2.2        0x1         0x2         02:00:c0:00:02:02     *        eth0\n"
        "192.0.2.7        0x1         0x0         00:00:00:00:00:00     *        eth0\n"
        "garbage\n"
        "192.0.2.8        0x1         0x2         02:00:c0:00:02:08     *        eth0\n"
    )
    entries, log = parse_proc_net_arp(text)
    assert entries == [
        ArpEntry(IPv4Address("192.0.2.2"), bytes.fromhex("0200c0000202")),
        ArpEntry(IPv4Address("192.0.2.7"), bytes(6)),
    ]
    assert log[0] == "Adding: (eth0) 192.0.2.2 [02:00:c0:00:02:02]"
    assert parse_proc_net_arp(text.splitlines()[0])[1] == ["Local arp-cache seems to be empty"]
