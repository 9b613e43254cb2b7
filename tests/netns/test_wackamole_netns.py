"""The real `wackamole` on hosts in network namespaces, each beside our real `spread` (root).

The blog's set-up on three hosts: h1 and h2 run spread and wackamole with a pool of four
virtual addresses; h3 is a client on the same LAN. Addresses appear as eth0:N aliases,
are balanced, move when a wackamole stops or is killed, come back when it returns, and the
client's ARP table follows the moves.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.netns.netlab import SUBNET, Host, NetLab, Proc, wait_until
from tests.netns.ring import PORT, ROOT, conf_text, start_daemon

pytestmark = pytest.mark.netns

WACKAMOLE = ROOT / ".venv" / "bin" / "wackamole"
WACKATRL = ROOT / ".venv" / "bin" / "wackatrl"
VIPS = [f"{SUBNET}.{101 + i}" for i in range(4)]
HOSTS = f"127.0.0.1 localhost\n{SUBNET}.1 h1\n{SUBNET}.2 h2\n{SUBNET}.3 h3\n"

VIF_LINES = "".join(f"        {{ eth0:{v}/32 }}\n" for v in VIPS)
WACKAMOLE_CONF = f"""\
Spread = {PORT}
SpreadRetryInterval = 1s
Group = wack1
Control = wack.sock
Prefer None
VirtualInterfaces {{
{VIF_LINES}}}
Arp-Cache = 20s
Notify {{
        eth0:{SUBNET}.255/32 throttle 8
}}
balance {{
        AcquisitionsPerRound = all
        interval = 4s
}}
mature = 2s
"""


def as_host(host: Host, argv: list[str]) -> list[str]:
    """Run argv with the host's own name, resolving through its own /etc/hosts."""
    (host.dir / "hosts").write_text(HOSTS)
    script = f'hostname {host.name} && mount --bind hosts /etc/hosts && exec "$@"'
    return ["unshare", "--uts", "sh", "-c", script, "sh", *argv]


def start_wackamole(host: Host, name: str = "wackamole") -> Proc:
    (host.dir / "wackamole.conf").write_text(WACKAMOLE_CONF)
    return host.spawn(as_host(host, [str(WACKAMOLE), "-d", "-c", "wackamole.conf"]), name)


def aliases(host: Host) -> dict[str, str]:
    """VIP -> label for the pool addresses configured on the host's eth0."""
    out = host.run("ip", "-o", "-4", "addr", "show", "dev", "eth0").stdout
    found = {}
    for line in out.splitlines():
        words = line.split()
        addr = words[words.index("inet") + 1].split("/")[0]
        if addr in VIPS:
            found[addr] = words[words.index("scope") + 2].rstrip("\\")  # "scope global eth0:1\\"
    return found


def held(host: Host) -> set[str]:
    return set(aliases(host))


def wackatrl(host: Host, flag: str = "-l") -> subprocess.CompletedProcess[str]:
    """wackatrl on the host, from its directory (the config names the socket relatively)."""
    argv = as_host(host, [str(WACKATRL), "-c", "wackamole.conf", flag])
    here = f'cd "{host.dir}" && exec "$@"'
    return subprocess.run(["ip", "netns", "exec", host.netns, "sh", "-c", here, "sh", *argv],
                          capture_output=True, text=True, timeout=20)


def neighbour_mac(host: Host, ip: str) -> str | None:
    out = host.run("ip", "neigh", "show", ip, "dev", "eth0").stdout.split()
    return out[out.index("lladdr") + 1] if "lladdr" in out else None


def resolve_from(host: Host, ip: str) -> None:
    """Make the host ARP for `ip` (a UDP datagram to it; no ping needed on the machine)."""
    udp = "socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
    send = f"import socket; {udp}.sendto(b'x', ('{ip}', 9))"
    host.run(sys.executable, "-c", send)


def mac_of(host: Host) -> str:
    out = host.run("ip", "-o", "link", "show", "eth0").stdout.split()
    return out[out.index("link/ether") + 1]


def cluster(lab: NetLab) -> tuple[Host, Host, Host]:
    h1, h2, h3 = lab.add_host("h1", 1), lab.add_host("h2", 2), lab.add_host("h3", 3)
    conf = conf_text(["h1", "h2"])
    start_daemon(h1, "h1", conf)
    start_daemon(h2, "h2", conf)
    return h1, h2, h3


def test_a_pool_of_addresses_is_shared_moved_and_given_back(lab: NetLab) -> None:
    h1, h2, h3 = cluster(lab)
    w1 = start_wackamole(h1)
    time.sleep(1.0)
    assert held(h1) == set()  # immature: nothing yet
    assert wait_until(lambda: held(h1) == set(VIPS), 15), w1.output()
    assert sorted(aliases(h1).values()) == ["eth0:1", "eth0:2", "eth0:3", "eth0:4"]
    assert "  UP: eth0:1:192.0.2.101/255.255.255.255" in w1.output()

    w2 = start_wackamole(h2)
    assert wait_until(lambda: len(held(h1)) == 2 and len(held(h2)) == 2, 20), w2.output()
    assert held(h1) | held(h2) == set(VIPS)
    listing = wackatrl(h2).stdout
    for vip in VIPS:
        owner = f"{SUBNET}.2" if vip in held(h2) else f"{SUBNET}.1"
        assert f"Owner: {owner}\n\t*    eth0:{vip}/32\n" in listing, listing

    # The client learns where a moved address lives from the gratuitous ARP.
    moving = sorted(held(h1))[0]
    resolve_from(h3, moving)
    assert wait_until(lambda: neighbour_mac(h3, moving) == mac_of(h1), 5)
    time.sleep(1.2)  # Linux ignores a new ARP reply within 1 s (locktime) of the last one
    w1.stop()  # SIGTERM: release everything, exit 0
    assert w1.popen.returncode == 0
    assert held(h1) == set()
    assert wait_until(lambda: held(h2) == set(VIPS), 15), w2.output()
    assert wait_until(lambda: neighbour_mac(h3, moving) == mac_of(h2), 10)

    # kill -9 leaves the addresses behind; a restart cleans them up and rebalances.
    w1 = start_wackamole(h1, "wackamole-2")
    assert wait_until(lambda: len(held(h1)) == 2 and len(held(h2)) == 2, 20), w1.output()
    w1.kill9()
    stale = held(h1)
    assert len(stale) == 2
    assert wait_until(lambda: held(h2) == set(VIPS), 15), w2.output()
    w1 = start_wackamole(h1, "wackamole-3")
    assert wait_until(lambda: len(held(h1)) == 2 and len(held(h2)) == 2, 20), w1.output()
    assert held(h1) | held(h2) == set(VIPS)


def test_losing_the_spread_daemon_drops_every_address_until_it_returns(lab: NetLab) -> None:
    h1, h2, _h3 = cluster(lab)
    w1 = start_wackamole(h1)
    w2 = start_wackamole(h2)
    assert wait_until(lambda: len(held(h1)) == 2 and len(held(h2)) == 2, 20), w1.output()
    spread1 = next(p for p in lab.procs if p.host is h1 and p.name.startswith("daemon"))
    spread1.kill9()
    assert wait_until(lambda: held(h1) == set() and held(h2) == set(VIPS), 15), w1.output()
    assert "connecting to 24903" in w1.output()
    assert "Spread connect failed [-2]." in w1.output()
    start_daemon(h1, "h1", conf_text(["h1", "h2"]))
    assert wait_until(lambda: len(held(h1)) == 2 and len(held(h2)) == 2, 30), w1.output()
    assert w1.alive() and w2.alive()


def test_wackatrl_f_gives_the_addresses_away_and_s_takes_a_share_back(lab: NetLab) -> None:
    h1, h2, _h3 = cluster(lab)
    w1 = start_wackamole(h1)
    w2 = start_wackamole(h2)
    assert wait_until(lambda: len(held(h1)) == 2 and len(held(h2)) == 2, 20), w1.output()
    for flag, mine in (("-f", 0), ("-s", 2)):
        r = wackatrl(h1, flag)
        assert r.returncode == 0, r.stdout + r.stderr
        assert wait_until(lambda m=mine: len(held(h1)) == m and len(held(h2)) == 4 - m, 20), (
            w1.output() + w2.output()
        )


@pytest.fixture(autouse=True)
def _needs_programs() -> None:
    for p in (WACKAMOLE, WACKATRL):
        if not Path(p).exists():
            pytest.skip(f"{p} is not installed")


def test_without_d_it_detaches_writes_its_pid_and_still_works(lab: NetLab) -> None:
    h1, _h2, _h3 = cluster(lab)
    (h1.dir / "wackamole.conf").write_text(WACKAMOLE_CONF)
    pid_file = h1.tmp / "wackamole.pid"  # the daemon's /tmp is the host's own
    env = {**os.environ, "WACKAMOLE_PID_FILE": "/tmp/wackamole.pid"}
    launcher = h1.spawn(as_host(h1, [str(WACKAMOLE), "-c", "wackamole.conf"]), "launcher", env)
    assert launcher.popen.wait(15) == 0  # the launching process returns at once
    assert wait_until(pid_file.exists, 10)
    pid = int(pid_file.read_text())
    try:
        assert pid != launcher.pid and pid_file.read_text() == f"{pid}\n"
        assert wait_until(lambda: held(h1) == set(VIPS), 15)
        os.kill(pid, signal.SIGTERM)
        assert wait_until(lambda: held(h1) == set(), 10)
        assert wait_until(lambda: not Path(f"/proc/{pid}").exists(), 10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # the daemon this test started, by its PID


def test_a_partition_gives_each_side_everything_and_the_heal_settles_it(lab: NetLab) -> None:
    h1, h2, _h3 = cluster(lab)
    w1, w2 = start_wackamole(h1), start_wackamole(h2)
    assert wait_until(lambda: len(held(h1)) == 2 and len(held(h2)) == 2, 20), w1.output()
    h2.partition()  # each side now thinks it is alone and serves the whole pool
    assert wait_until(lambda: held(h1) == set(VIPS) and held(h2) == set(VIPS), 20), (
        w1.output() + w2.output()
    )
    h2.heal()  # the merged state exchange keeps one claim per address; losers release
    assert wait_until(
        lambda: not held(h1) & held(h2) and held(h1) | held(h2) == set(VIPS), 30
    ), w1.output() + w2.output()
    assert wait_until(lambda: len(held(h1)) == 2 and len(held(h2)) == 2, 20), w1.output()
