"""RunDynamic hooks: C functions in shared objects, called as the original calls them.

Owns loading `RunDynamic` modules with ctypes and calling each registered function with
`struct interface` values by value: `int f(struct interface primary, struct interface
*extras, struct interface real)`. The struct is the original's 40-byte layout (name[16],
address, broadcast, netmask, network as raw network-order words, mac[6], padding).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address

from wackamole.config.model import Action, Hook, IpSpec, Vif, prefix_mask

MAX_DEP_IF = 30  # extras array size in the original


class Interface(ctypes.Structure):
    _fields_ = [
        ("ifname", ctypes.c_char * 16),
        ("ipaddr", ctypes.c_uint32),
        ("bcast", ctypes.c_uint32),
        ("netmask", ctypes.c_uint32),
        ("network", ctypes.c_uint32),
        ("mac", ctypes.c_ubyte * 6),
    ]


def _raw(address: IPv4Address) -> int:
    """The in_addr word as it sits in memory: network-order bytes read natively."""
    return int.from_bytes(address.packed, "little")


def interface(spec: IpSpec | None, real: IPv4Address | None = None) -> Interface:
    out = Interface()
    if spec is not None:
        out.ifname = spec.ifname.encode()[:15]
        out.ipaddr = _raw(spec.address)
        out.bcast = _raw(spec.broadcast)
        out.netmask = _raw(spec.netmask)
        out.network = _raw(IPv4Address(prefix_mask(spec.hint_prefix)))
    elif real is not None:
        out.ipaddr = _raw(real)
    return out


_FUNC = ctypes.CFUNCTYPE(ctypes.c_int, Interface, ctypes.POINTER(Interface), Interface)


class Hooks:
    """The registered functions, by kind, in configuration order."""

    def __init__(self, hooks: Sequence[Hook], log: Callable[[str], None]) -> None:
        self.by_kind: dict[Action, list[Callable[..., int]]] = {a: [] for a in Action}
        for hook in hooks:
            fn = self._load(hook, log)
            if fn is not None:
                self.by_kind[hook.action].append(fn)

    @staticmethod
    def _load(hook: Hook, log: Callable[[str], None]) -> Callable[..., int] | None:
        path = hook.module
        try:
            lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            path += ".so"
            try:
                lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError as exc:
                log(f"register_shared open of {path} failed: {exc}")
                return None
        try:
            return _FUNC((hook.function, lib))
        except AttributeError as exc:
            log(f"register_shared could not find symbol {hook.function}: {exc}")
            return None

    def run(self, kind: Action, vif: Vif | None = None, real: IPv4Address | None = None) -> None:
        """Call every hook of `kind`; post-up/down hooks get all-zero interfaces."""
        fns = self.by_kind[kind]
        if not fns:
            return
        extras = (Interface * MAX_DEP_IF)()
        if vif is not None:
            for i, spec in enumerate(vif.extras[:MAX_DEP_IF]):
                extras[i] = interface(spec)
        primary = interface(vif.primary if vif is not None else None)
        owner = interface(None, real)
        for fn in fns:
            fn(primary, extras, owner)  # return value ignored, as in the original
