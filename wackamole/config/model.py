"""The typed result of reading wackamole.conf: frozen dataclasses, defaults already resolved.

It owns what a loaded configuration looks like and the original's derived values
(netmask, broadcast, the ARP "network hint", the post-parse balance adjustments).
It does not parse text (parse.py) and does not touch the system.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv4Address

# The original's effective defaults (set by its start-up code before the file is parsed;
# the man page documents different ones for Mature and Balance Interval).
DEFAULT_SPREAD = "4803"
DEFAULT_RETRY_INTERVAL = 5
DEFAULT_MATURE = 300
DEFAULT_ARP_CACHE = 60
DEFAULT_BALANCE_INTERVAL = 300
DEFAULT_BALANCE_RATE = 1
DEFAULT_HINT_PREFIX = 24
DEFAULT_MODULE_DIR = "."

# Capacities of the original's fixed arrays.
MAX_VIFS = 254
MAX_PREFER = 254
MAX_NOTIFICATIONS = 1024
MAX_EXTRAS = 29
IFNAMSIZ = 16
SPREAD_NAME_MAX = 79  # stored in char[80]
GROUP_NAME_MAX = 31  # MAX_GROUP_NAME 32 with its NUL
UNIX_PATH_MAX = 107  # sun_path is 108 bytes with its NUL


def prefix_mask(bits: int) -> int:
    """0xffffffff << (32-bits) as x86 computes it: a shift by 32 is a shift by 0."""
    return (0xFFFFFFFF << ((32 - bits) & 31)) & 0xFFFFFFFF


class Action(IntEnum):
    """RunDynamic hook kinds, numbered as the original numbers them."""

    ON_UP = 1
    ON_DOWN = 2
    POST_UP = 3
    POST_DOWN = 4

    @classmethod
    def from_text(cls, text: str) -> Action:
        return {
            "on up": cls.ON_UP,
            "on down": cls.ON_DOWN,
            "post up": cls.POST_UP,
            "post down": cls.POST_DOWN,
        }[text.lower()]


@dataclass(frozen=True)
class IpSpec:
    """One `[iface:]A.B.C.D/M[nN]` value with the fields the original derives from it."""

    ifname: str  # "" when written without an interface
    address: IPv4Address
    prefix: int  # M as written (0..32)
    hint_prefix: int = DEFAULT_HINT_PREFIX  # N as written, default 24

    @property
    def netmask(self) -> IPv4Address:
        """The netmask actually used; /0 gives 255.255.255.255 as on x86 (quirk)."""
        return IPv4Address(prefix_mask(self.prefix))

    @property
    def broadcast(self) -> IPv4Address:
        mask = prefix_mask(self.prefix)
        return IPv4Address((int(self.address) & mask) | (~mask & 0xFFFFFFFF))

    @property
    def hint(self) -> IPv4Address:
        """The 'network' mask that decides which ARP targets belong to this address."""
        return IPv4Address(prefix_mask(self.hint_prefix))

    def __str__(self) -> str:
        iface = f"{self.ifname}:" if self.ifname else ""
        return f"{iface}{self.address}/{self.prefix}"


@dataclass(frozen=True)
class Vif:
    """One virtual interface: its primary address (its identity on the wire) and extras."""

    primary: IpSpec
    extras: tuple[IpSpec, ...] = ()

    @property
    def addresses(self) -> tuple[IpSpec, ...]:
        return (self.primary, *self.extras)


@dataclass(frozen=True)
class Notification:
    """One ARP notification: a netblock on an interface, or the shared ARP cache."""

    target: IpSpec | None  # None = arp-cache
    throttle: int = 0  # targets per second; 0 = unlimited
    ping: bool = False

    @property
    def is_arp_cache(self) -> bool:
        return self.target is None


@dataclass(frozen=True)
class Hook:
    """A RunDynamic shared-object hook: `module` is ModuleDir + "/" + path as written."""

    module: str
    function: str
    action: Action


@dataclass(frozen=True)
class WackamoleConfig:
    """Everything wackamole.conf sets, with the effective defaults and post-parse rules applied.

    Times are in seconds. `balance_rate` and `balance_interval` are the values the running
    program uses (clamped to nVIF//2, and forced by `AcquisitionsPerRound = all`); the
    `*_configured` fields keep what the file said.
    """

    spread: str = DEFAULT_SPREAD
    spread_in_file: bool = False  # a `Spread =` line overrides `wackamole -s`
    spread_retry_interval: int = DEFAULT_RETRY_INTERVAL
    group: str = ""
    control: str = ""
    log_facility: str | None = None  # parsed and ignored, as in the original
    mature: int = DEFAULT_MATURE
    arp_cache: int = DEFAULT_ARP_CACHE
    balance_rate_configured: int = DEFAULT_BALANCE_RATE
    balance_interval_configured: int = DEFAULT_BALANCE_INTERVAL
    balance_all: bool = False
    prefer: tuple[IPv4Address, ...] = ()
    vifs: tuple[Vif, ...] = ()
    notifications: tuple[Notification, ...] = ()
    module_dir: str = DEFAULT_MODULE_DIR  # the last one; each hook already has its own path
    hooks: tuple[Hook, ...] = ()
    # Lines the original prints on stdout while parsing (e.g. "Couldn't lookup x."), in order.
    messages: tuple[str, ...] = ()
    # Our own notes for --check-config (never printed by a normal start).
    advice: tuple[str, ...] = ()
    source: str = ""
    # Set from the command line, not the file: `wackamole -u` (None = wack<pid>).
    private_name: str | None = field(default=None, compare=False)

    @property
    def balance_rate(self) -> int:
        """VIF moves per balancing round: at most nVIF//2; nVIF//2 with `all`."""
        half = len(self.vifs) // 2
        if self.balance_all:
            return half
        return min(self.balance_rate_configured, half)

    @property
    def balance_interval(self) -> int:
        """Seconds between balancing rounds; 0 with `all` (one round per membership change)."""
        return 0 if self.balance_all else self.balance_interval_configured

    def with_command_line(
        self, spread: str | None = None, private_name: str | None = None
    ) -> WackamoleConfig:
        """Apply `-s` (only when the file has no Spread line) and `-u`."""
        changes: dict[str, object] = {}
        if spread is not None and not self.spread_in_file:
            changes["spread"] = spread
        if private_name is not None:
            changes["private_name"] = private_name
        return dataclasses.replace(self, **changes) if changes else self
