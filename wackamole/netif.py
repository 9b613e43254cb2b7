"""Virtual addresses on Linux interfaces, the way the original's ioctl driver places them.

Owns listing the host's IPv4 addresses as the original sees them (labels of links that are
UP and BROADCAST), choosing `eth0:N` labels, adding and deleting addresses through netlink
(pyroute2), reading a link's hardware address, and the log lines users grep for
(`  UP: eth0:1:VIP/MASK`, `914 IP alias exists`, `DOWN: …`, `956 No such interface`).
Label choice is a pure function so it is tested without root.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address
from socket import AF_INET

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from wackamole.config.model import IpSpec, prefix_mask

IFF_UP = 0x1
IFF_BROADCAST = 0x2
IFF_RUNNING = 0x40
MAX_ALIAS = 1023

# Acquire and Release prefix their failures with these numbers (the C source lines); the
# re-up after a release does not. Kept verbatim: they are what people grep for.
ACQUIRE_LINE = 914
RELEASE_LINE = 956


@dataclass(frozen=True)
class Listed:
    """One IPv4 address as the original's listing shows it."""

    label: str
    address: IPv4Address
    prefixlen: int
    index: int


class InterfaceError(Exception):
    """The original's error text for a failed if_up / if_down (e.g. `IP alias exists`)."""


def choose_label(ifname: str, labels: Iterable[str]) -> str:
    """`I` when no listed address has the bare label `I`, else `I:N`, N the smallest free ≥ 1."""
    labels = list(labels)
    if ifname not in labels:
        return ifname
    used = {0}
    for label in labels:
        if label.startswith(ifname + ":"):
            rest = label[len(ifname) + 1 :]
            digits = ""
            for ch in rest:
                if not ch.isdigit():
                    break
                digits += ch
            used.add(int(digits) if digits else 0)
    for n in range(1, MAX_ALIAS + 1):
        if n not in used:
            return f"{ifname}:{n}"
    raise InterfaceError("To many VIPs")


def dotted(prefixlen: int) -> str:
    return str(IPv4Address(prefix_mask(prefixlen)))


class Interfaces:
    """The host's addresses through netlink. Every call lists afresh, as the original does."""

    def __init__(self, ipr: IPRoute | None = None) -> None:
        self.ipr = ipr or IPRoute()

    def close(self) -> None:
        self.ipr.close()

    def _flags(self) -> dict[int, int]:
        return {link["index"]: link["flags"] for link in self.ipr.get_links()}

    def listed(self) -> list[Listed]:
        flags = self._flags()
        out = []
        for a in self.ipr.get_addr(family=AF_INET):
            if flags.get(a["index"], 0) & (IFF_UP | IFF_BROADCAST) != IFF_UP | IFF_BROADCAST:
                continue
            ip = a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS")
            label = a.get_attr("IFA_LABEL") or ""
            out.append(Listed(label, IPv4Address(ip), a["prefixlen"], a["index"]))
        return out

    def _index(self, ifname: str) -> int | None:
        found = self.ipr.link_lookup(ifname=ifname)
        return found[0] if found else None

    def up(self, spec: IpSpec) -> str:
        """Add `spec`; the label used. Raises InterfaceError with the original's text."""
        listed = self.listed()
        if any(a.address == spec.address for a in listed):
            raise InterfaceError("IP alias exists")
        index = self._index(spec.ifname)
        if index is None:
            raise InterfaceError("ioctl error setting IP address")
        label = choose_label(spec.ifname, (a.label for a in listed))
        try:
            self.ipr.addr(
                "add",
                index=index,
                address=str(spec.address),
                prefixlen=spec.prefix,
                broadcast=str(spec.broadcast),
                label=label,
            )
        except NetlinkError as exc:
            if exc.code == errno.EEXIST:
                raise InterfaceError("IP alias exists") from None
            raise InterfaceError("ioctl error setting IP address") from None
        if not self._flags().get(index, 0) & IFF_RUNNING:
            # The address is in place with its real prefix; like the original we still
            # report the failure and the caller still counts the VIF as acquired.
            raise InterfaceError("ioctl error running|stopping interface")
        return label

    def down(self, spec: IpSpec) -> tuple[str, int]:
        """Delete `spec` from its label; the label and the prefix it had."""
        for a in self.listed():
            if a.address != spec.address:
                continue
            if a.label != spec.ifname and not a.label.startswith(spec.ifname + ":"):
                continue
            # Also for the bare label: the original downs the whole device there; we only
            # delete the address (docs/compat.md).
            try:
                self.ipr.addr(
                    "del", index=a.index, address=str(a.address), prefixlen=a.prefixlen,
                    label=a.label,
                )
            except NetlinkError:
                raise InterfaceError("No such interface") from None
            return a.label, a.prefixlen
        raise InterfaceError("No such interface")

    def mac(self, ifname: str) -> bytes | None:
        index = self._index(ifname)
        if index is None:
            return None
        links = self.ipr.get_links(index)
        text = links[0].get_attr("IFLA_ADDRESS") if links else None
        if not text:
            return None
        raw = bytes(int(part, 16) for part in text.split(":"))
        return raw if len(raw) == 6 else None
