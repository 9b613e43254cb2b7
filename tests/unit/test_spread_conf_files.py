"""The shipped configurations in conf/ load as documented."""

from __future__ import annotations

import socket
from pathlib import Path

from spread.config import IpAddress, auto_vid, load_config, oaat

CONF = Path(__file__).resolve().parents[2] / "conf"


def addrs(*ips: str):
    return lambda: [IpAddress(4, socket.inet_pton(socket.AF_INET, ip)) for ip in ips]


def test_loopback_config_is_the_reference_localhost_4803_ring() -> None:
    c = load_config(str(CONF / "spread.conf"), "localhost", local_addresses=addrs("127.0.0.1"))
    assert c.my is not None and (c.my.name, c.my.ip, c.port) == ("localhost", "127.0.0.1", 4803)
    assert c.conf_hash == 970868126  # the C daemon's hash for this segment (reference §6.2)
    assert c.unix_socket_path == "/tmp/4803"


def test_cluster_config_is_the_blogs_two_hosts_on_4805() -> None:
    c = load_config(str(CONF / "spread-cluster.conf"), "testvm2",
                    local_addresses=addrs("127.0.0.1", "192.0.2.2"))
    assert [(d.name, d.ip) for d in c.daemons] == [("testvm", "192.0.2.1"),
                                                   ("testvm2", "192.0.2.2")]
    assert c.segments[0].addresses[0].ip == "192.0.2.255" and c.port == 4805
    assert c.logging.log_file == "/var/log/spread.log"
    expected = ("Segment: port = 4805; [192.0.2.255]\n"
                f"\t'testvm' [192.0.2.1] [{auto_vid('testvm')}]\n"
                f"\t'testvm2' [192.0.2.2] [{auto_vid('testvm2')}]\n\n"
                "Version: 5\nProtocol: Original Ring\n")
    assert c.hash_text == expected and c.conf_hash == oaat(expected.encode() + b"\0")
    assert c.daemons[0].vid == 2614064012  # testvm's VID as the C daemon logged it (A vectors)
