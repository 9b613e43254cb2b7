"""The IP auth method's spread.access_ip rules, as the original parses and applies them."""

from __future__ import annotations

import pytest

from spread.groups.access import parse_access

SAMPLE = "# comment\nunix\nlocal\n192.168.1.0/24\n10.1.2.3\n"


@pytest.mark.parametrize(
    ("peer", "allowed"),
    [
        (None, True),
        ("127.9.9.9", True),
        ("192.168.1.77", True),
        ("192.168.2.1", False),
        ("10.1.2.3", True),
        ("10.1.2.4", False),
        ("::1", False),  # IPv4 peers only
    ],
)
def test_sample_rules(peer: str | None, allowed: bool) -> None:
    assert parse_access(SAMPLE).allows(peer) is allowed


def test_reading_stops_at_an_incomplete_line() -> None:
    rules = parse_access("10.0.0.0/8\n10.0\n11.0.0.0/8\n")
    assert rules.allows("10.1.1.1") and not rules.allows("11.1.1.1")


def test_without_unix_line_unix_clients_are_refused() -> None:
    assert not parse_access("local\n").allows(None)
