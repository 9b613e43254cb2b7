"""The `IP` auth method's rules (`spread.access_ip`), as auth-ip.c reads and applies them.

Lines: `#` comment, `unix` (unix-socket clients), `local` (127.0.0.0/8), `a.b.c.d[/prefix]`.
The original stops at the first line that has fewer than three dots. Parsing and matching only;
the daemon reads the file.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

ACCESS_FILES = ("spread.access_ip", "./spread.access_ip", "/etc/spread.access_ip")
_RULE = re.compile(r"\s*(\d+)\.(\d+)\.(\d+)\.(\d+)\s*(?:/\s*(\d+))?")


@dataclass(frozen=True, slots=True)
class AccessRules:
    unix: bool
    networks: tuple[tuple[int, int], ...]  # (network address, prefix length)

    def allows(self, peer: str | None) -> bool:
        """`peer` is the client's IP text, or None for a unix-socket client."""
        if peer is None:
            return self.unix
        try:
            ip = ipaddress.ip_address(peer)
        except ValueError:
            return False
        if not isinstance(ip, ipaddress.IPv4Address):
            return False  # the original checks IPv4 peers only
        value = int(ip)
        for net, prefix in self.networks:
            mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF if prefix else 0
            if value & mask == net:
                return True
        return False


def parse_access(text: str) -> AccessRules:
    unix = False
    nets: list[tuple[int, int]] = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("unix"):
            unix = True
            continue
        if line.startswith("local"):
            nets.append((127 << 24, 8))
            continue
        if line.count(".") < 3:
            break  # "incomplete line": the original stops reading here
        m = _RULE.match(line)
        if m is None:
            raise ValueError(f"not a valid ip network address/prefix line: {line!r}")
        a, b, c, d = (int(x) & 0xFF for x in m.groups()[:4])
        prefix = int(m.group(5)) if m.group(5) is not None else 32
        nets.append(((a << 24) | (b << 16) | (c << 8) | d, prefix))
    return AccessRules(unix, tuple(nets))
