"""Finding spread.conf, parsing it, and working out which configured daemon this host is.

This is the original's `Conf_load_conf_file` plus the start-up checks that in C only fire
once the protocol starts (partial timeouts, empty segments), so a bad file is refused
before anything is bound. Local addresses and DNS are injectable for tests.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from spread.config import alarm as A
from spread.config.errors import ConfigError
from spread.config.hash import to_bytes
from spread.config.model import (
    MAX_PROC_NAME,
    TIMEOUT_NAMES,
    DaemonSpec,
    InterfaceSpec,
    IpAddress,
    SegmentSpec,
    SpreadConfig,
)
from spread.config.parse import Resolver, parse_with_log
from spread.config.report import conf_print

DEFAULT_CONFIG = "spread.conf"
SPREAD_ETCDIR = "/etc"  # the original's configure-time sysconfdir; distributions use /etc
CONF_FILENAME_MAX = 256

LocalAddresses = Callable[[], Sequence[IpAddress]]


def system_local_addresses() -> list[IpAddress]:
    """This host's addresses: every interface address (IPv6 scoped to its interface, as the
    original's getifaddrs pass does) plus whatever the host name resolves to."""
    out: list[IpAddress] = []
    try:
        out += netlink_addresses()
    except OSError:  # no netlink (sandbox, other OS): fall back on what /proc can tell
        out += _proc_ipv6_addresses()
        out.append(IpAddress(4, socket.inet_pton(socket.AF_INET, "127.0.0.1")))
    try:
        for fam, _t, _p, _c, sa in socket.getaddrinfo(socket.gethostname(), None,
                                                      socket.AF_UNSPEC, socket.SOCK_DGRAM):
            if fam == socket.AF_INET:
                out.append(IpAddress(4, socket.inet_pton(socket.AF_INET, sa[0])))
            elif fam == socket.AF_INET6:
                out.append(IpAddress(6, socket.inet_pton(socket.AF_INET6, sa[0].split("%")[0]),
                                     sa[3]))
    except OSError:
        pass
    return out


_NLMSG = struct.Struct("=IHHII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTATTR = struct.Struct("=HH")
_RTM_NEWADDR, _RTM_GETADDR, _NLMSG_DONE, _NLMSG_ERROR = 20, 22, 3, 2
_NLM_F_REQUEST_DUMP = 0x1 | 0x300
_IFA_ADDRESS, _IFA_LOCAL = 1, 2


def netlink_addresses() -> list[IpAddress]:
    """One RTM_GETADDR dump over a plain netlink socket: every address of every interface,
    labelled or not (what getifaddrs sees). Done by hand because importing pyroute2 for this
    one question would cost the long-running daemon about 10 MB of resident memory."""
    found: list[IpAddress] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as nl:
        nl.settimeout(2.0)
        request = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        nl.send(_NLMSG.pack(_NLMSG.size + len(request), _RTM_GETADDR, _NLM_F_REQUEST_DUMP, 1, 0)
                + request)
        while True:
            data = nl.recv(65536)
            pos = 0
            while pos + _NLMSG.size <= len(data):
                length, mtype, _flags, _seq, _pid = _NLMSG.unpack_from(data, pos)
                if length < _NLMSG.size or pos + length > len(data):
                    return found
                if mtype in (_NLMSG_DONE, _NLMSG_ERROR):
                    return found
                if mtype == _RTM_NEWADDR:
                    found += _addresses_of(data[pos + _NLMSG.size:pos + length])
                pos += (length + 3) & ~3


def _addresses_of(body: bytes) -> list[IpAddress]:
    family, _plen, _flags, _scope, index = _IFADDRMSG.unpack_from(body)
    attrs: dict[int, bytes] = {}
    pos = _IFADDRMSG.size
    while pos + _RTATTR.size <= len(body):
        alen, atype = _RTATTR.unpack_from(body, pos)
        if alen < _RTATTR.size:
            break
        attrs[atype] = body[pos + _RTATTR.size:pos + alen]
        pos += (alen + 3) & ~3
    # IPv4 point-to-point links put the peer in IFA_ADDRESS: our own address is IFA_LOCAL.
    raw = attrs.get(_IFA_LOCAL) or attrs.get(_IFA_ADDRESS)
    if family == socket.AF_INET and raw and len(raw) == 4:
        return [IpAddress(4, raw)]
    if family == socket.AF_INET6 and raw and len(raw) == 16:
        return [IpAddress(6, raw, index)]
    return []


def _proc_ipv6_addresses() -> list[IpAddress]:
    out: list[IpAddress] = []
    try:
        with open("/proc/net/if_inet6") as f:
            for line in f:
                parts = line.split()
                out.append(IpAddress(6, bytes.fromhex(parts[0]), int(parts[1], 16)))
    except OSError:
        pass
    return out


@dataclass(frozen=True, slots=True)
class LoadResult:
    config: SpreadConfig
    log: tuple[A.Entry, ...]  # everything the original logs up to "My name: …"
    path: str  # the file actually used


def _open_first(path: str, etc_dir: str) -> tuple[str, str] | None:
    for candidate in (path, "./spread.conf", os.path.join(etc_dir, "spread.conf")):
        try:
            with open(candidate, "rb") as f:
                return candidate, f.read().decode("utf-8", "surrogateescape")
        except OSError:
            continue
    return None


def _fatal(original: str, filename: str, found: str, expected: str,
           log: list[A.Entry], *, at: tuple[int, int] | None = None,
           text: str = "") -> ConfigError:
    line = col = src = None
    if at is not None:
        line, col = at
        lines = text.split("\n")
        src = lines[line - 1] if line - 1 < len(lines) else ""
    return ConfigError(original, filename=filename, found=found, expected=expected,
                       line=line, column=col, source_line=src, log=tuple(log))


def load_with_log(
    path: str | None,
    my_name: str | None,
    *,
    local_addresses: LocalAddresses | None = None,
    resolver: Resolver | None = None,
    hostname: Callable[[], str] | None = None,
    etc_dir: str = SPREAD_ETCDIR,
) -> LoadResult:
    """Everything `load_config` does, also returning the start-up log lines."""
    path = DEFAULT_CONFIG if path is None else path
    log: list[A.Entry] = []
    if len(to_bytes(path)) >= CONF_FILENAME_MAX:
        raise _fatal("Conf_init: configuration filename was too long!", path,
                     f"a file name of {len(path)} characters",
                     f"at most {CONF_FILENAME_MAX - 1}", log)
    ips = list((local_addresses or system_local_addresses)())
    if not ips:
        raise _fatal("Conf_load_conf_file: Couldn't find any local internet addresses on this "
                     "machine!", path, "no local address", "at least one configured address",
                     log)
    opened = _open_first(path, etc_dir)
    if opened is None:
        raise _fatal(f"Conf_load_conf_file: error opening config file {path} and alternates!",
                     path, "no readable file (also tried ./spread.conf and "
                     f"{os.path.join(etc_dir, 'spread.conf')})", "a readable spread.conf", log)
    used, text = opened
    log.append(A.Record(A.INFO, A.CONF_SYS, f"Conf_load_conf_file: using file: {used}\n"))
    try:
        parsed = parse_with_log(text, used, resolver=resolver, hostname=hostname)
    except ConfigError as e:
        e.log = tuple(log) + e.log
        raise
    log += parsed.log
    config = parsed.config
    config = _find_myself(config, my_name, ips, log, used, parsed.where, text)
    _startup_checks(config, log, used, parsed.where, text)
    return LoadResult(config, tuple(log), used)


def load_config(
    path: str | None,
    my_name: str | None,
    *,
    local_addresses: LocalAddresses | None = None,
    resolver: Resolver | None = None,
    hostname: Callable[[], str] | None = None,
    etc_dir: str = SPREAD_ETCDIR,
) -> SpreadConfig:
    """The original's file search, parse, semantic checks and "which daemon am I".

    Raises ConfigError (its str() is the full message) for anything the original refuses.
    """
    return load_with_log(path, my_name, local_addresses=local_addresses, resolver=resolver,
                         hostname=hostname, etc_dir=etc_dir).config


def _find_myself(config: SpreadConfig, my_name: str | None, ips: list[IpAddress],
                 log: list[A.Entry], filename: str, where: dict[str, tuple[int, int]],
                 text: str) -> SpreadConfig:
    my: DaemonSpec | None
    if my_name is None:
        my = next((d for d in config.daemons for ip in ips if d.address.same_ip(ip)), None)
        if my is None:
            raise _fatal("Conf_load_conf_file: None of this machine's internet addresses match "
                         "any daemon's address in configuration!", filename,
                         "no daemon whose address is on this host",
                         "a daemon with one of this host's addresses (or use -n NAME)", log)
    else:
        raw = to_bytes(my_name)[: MAX_PROC_NAME - 1]
        name = raw.decode("utf-8", "surrogateescape")
        my = config.daemon_by_name(name)
        if my is None:
            names = ", ".join(d.name for d in config.daemons)
            raise _fatal(f"Conf_load_conf_file: My proc {name} is not in configuration!",
                         filename, f"-n {name}", f"one of the configured daemons: {names}",
                         log)
    local = next((ip for ip in ips if my.address.same_ip(ip)), None)
    if local is None:
        raise _fatal("Conf_load_conf_file: None of this machine's internet addresses match "
                     f"this daemon's address {my.address.ntop}!", filename,
                     f"daemon '{my.name}' at {my.address.ntop}, which is not on this host",
                     "an address of this host (check -n NAME and the daemon's address)", log,
                     at=where.get(f"daemon:{my.name}"), text=text)
    segments = list(config.segments)
    if my.address.family == 6:
        scope = my.address.scope_id or local.scope_id
        me_addr = replace(my.address, scope_id=scope)
        if scope:
            log.append(A.Record(A.INFO, A.CONF_SYS, "Conf_load_conf_file: my ipv6 address "
                       f"[{me_addr.ntop}] corresponds with interface index {scope}; using that "
                       "(sin6_scope_id) for all unicast sends!\n"))
        else:
            log.append(A.Record(A.WARNING, A.CONF_SYS, "Conf_load_conf_file: couldn't find an "
                       f"interface index that corresponds with my address [{me_addr.ntop}]! "
                       "Trying to use a scope_id of 0 for all unicast sends!\n"))
        seg = segments[my.segment]
        new_addrs = []
        for a in seg.addresses:
            a2 = a if a.scope_id else replace(a, scope_id=scope)
            if a2.scope_id:
                log.append(A.Record(A.INFO, A.CONF_SYS, "Conf_load_conf_file: my ipv6 segment "
                           f"address [{a2.ntop}] corresponds with interface index "
                           f"{a2.scope_id}; using that (sin6_scope_id) for this segment "
                           "address!\n"))
            else:
                log.append(A.Record(A.WARNING, A.CONF_SYS, "Conf_load_conf_file: couldn't find "
                           "an interface index that corresponds with my segment address "
                           f"[{a2.ntop}]! Trying to use a scope_id of 0 for this segment "
                           "address!\n"))
            new_addrs.append(a2)
        segments[my.segment] = replace(seg, addresses=tuple(new_addrs))
        segments = [
            replace(s, daemons=tuple(
                replace(d, address=replace(d.address, scope_id=scope)) for d in s.daemons))
            for s in segments
        ]
    me = segments[my.segment].daemons[my.index_in_segment]
    ifaces: list[InterfaceSpec] = []
    for ifc in me.interfaces:
        a = ifc.address
        if a.is_unspecified or a.is_multicast:
            ifaces.append(ifc)
            continue
        hit = next((ip for ip in ips if a.same_ip(ip)), None)
        if hit is None:
            log.append(A.Record(A.WARNING, A.CONF_SYS, "Conf_load_conf_file: none of this "
                       f"machine's addresses match configured interface {a.ntop}\n"))
            ifaces.append(ifc)
            continue
        if a.family == 6:
            if not a.scope_id:
                a = replace(a, scope_id=hit.scope_id or me.address.scope_id)
            log.append(A.Record(A.INFO, A.CONF_SYS, "Conf_load_conf_file: using sin6_scope_id "
                       f"{a.scope_id} for interface {a.ntop}\n"))
            ifc = replace(ifc, address=a)
        ifaces.append(ifc)
    me = replace(me, interfaces=tuple(ifaces))
    seg = segments[me.segment]
    ds = list(seg.daemons)
    ds[me.index_in_segment] = me
    segments[me.segment] = replace(seg, daemons=tuple(ds))
    log.append(A.Record(A.INFO, A.CONF_SYS, f"Conf_load_conf_file: My name: {me.name}, id: "
               f"{me.vid}, addr: {me.address.ntop}, port: {me.port}\n"))
    daemons = tuple(d for s in segments for d in s.daemons)
    return replace(config, segments=tuple(segments), daemons=daemons, my=me)


def _startup_checks(config: SpreadConfig, log: list[A.Entry], filename: str,
                    where: dict[str, tuple[int, int]], text: str) -> None:
    """Refusals the original only reaches when the protocol starts (Memb_init, lookup)."""
    if config.timeouts_set and len(config.timeouts_set) != len(TIMEOUT_NAMES):
        given = {n for n, _ in config.timeouts_set}
        missing = [n.capitalize() + "Timeout" for n in TIMEOUT_NAMES if n not in given]
        raise _fatal("Memb_init: Only some of the membership timeouts were specified! If you "
                     "specify any, then you must specify all!", filename,
                     f"{len(given)} of the 9 membership timeouts",
                     "all nine or none (missing: " + ", ".join(missing) + ")", log,
                     at=where.get("timeout"), text=text)
    for i, seg in enumerate(config.segments):
        if not seg.daemons:
            assert config.my is not None
            log += conf_print(config.segments, config.my.name)
            raise _fatal(f"Conf_seg_leader: Empty segment {i} in Conf", filename,
                         f"segment {i} ({_seg_text(seg)}) with no daemons",
                         "at least one daemon in every segment", log,
                         at=where.get(f"segment:{i}"), text=text)


def _seg_text(seg: SegmentSpec) -> str:
    return f"[{seg.addresses[0].ntop}]:{seg.port}"
