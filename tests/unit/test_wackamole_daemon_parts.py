"""Pieces of the wackamole daemon that need no root: labels, log lines, the control socket."""

from __future__ import annotations

import io
import os
import re
import socket
import stat
from pathlib import Path

import pytest

from wackamole import daemon
from wackamole.config import parse_config_text
from wackamole.core import LogLevel
from wackamole.netif import InterfaceError, choose_label, dotted


def test_an_alias_takes_the_smallest_free_number_from_one() -> None:
    assert choose_label("eth0", ["eth0"]) == "eth0:1"
    assert choose_label("eth0", ["eth0", "eth0:1", "eth0:3"]) == "eth0:2"
    assert choose_label("eth0", ["eth0", "eth0:x", "eth0:1"]) == "eth0:2"  # "x" counts as 0
    assert choose_label("eth1", ["eth1", "eth10:1", "eth1:1"]) == "eth1:2"


def test_a_device_without_a_bare_label_gets_the_address_under_its_own_name() -> None:
    assert choose_label("eth0", []) == "eth0"
    assert choose_label("eth0", ["eth0:1"]) == "eth0"


def test_more_than_1023_aliases_is_the_originals_error() -> None:
    with pytest.raises(InterfaceError, match="To many VIPs"):
        choose_label("eth0", ["eth0", *(f"eth0:{n}" for n in range(1, 1024))])


def test_netmasks_print_dotted() -> None:
    assert dotted(32) == "255.255.255.255"
    assert dotted(24) == "255.255.255.0"


def test_debug_log_lines_carry_the_originals_timestamp_and_every_level() -> None:
    out = io.StringIO()
    log = daemon.Logger(True, out)
    log(LogLevel.PRINT, "connecting to 4803")
    log(LogLevel.ARPING, "Dequeued arp spoof notifier.")
    lines = out.getvalue().splitlines()
    stamp = r"\[(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d \w{3} \d{4} \d\d:\d\d:\d\d\] "
    assert re.fullmatch(stamp + "connecting to 4803", lines[0])
    assert re.fullmatch(stamp + r"Dequeued arp spoof notifier\.", lines[1])


def test_the_control_socket_is_private_and_replaces_a_file(tmp_path: Path) -> None:
    path = tmp_path / "wack.sock"
    path.write_text("stale")
    sock = daemon.open_control_socket(str(path), io.StringIO())
    assert sock is not None
    try:
        mode = os.stat(path).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        client = socket.socket(socket.AF_UNIX)
        client.connect(str(path))
        client.close()
    finally:
        sock.close()


def test_an_unusable_control_path_disables_wackatrl_and_says_so(tmp_path: Path) -> None:
    out = io.StringIO()
    bad = tmp_path / "missing" / "wack.sock"
    assert daemon.open_control_socket(str(bad), out) is None
    assert out.getvalue() == f"bind to {bad} failed.\ndisabling wackatrl support.\n"
    assert daemon.open_control_socket("", out) is None  # no Control line: no socket at all


def test_without_a_raw_socket_it_stops_with_status_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(daemon, "open_raw_socket", lambda: None)
    config = parse_config_text("Group = g\nVIPs {\n eth0:10.0.0.5/32\n}\n")
    assert daemon.run(config, True, "192.0.2.1") == 1
    assert capsys.readouterr().err == "socket: Operation not permitted\n"
