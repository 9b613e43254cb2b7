"""The original C wackamole and ours in one cluster, each beside our `spread` (root only).

Runs only when WACKAMOLE_ORIG names the original Wackamole 2.1 `wackamole` binary (and, for
the listing test, WACKATRL_ORIG its `wackatrl`), built elsewhere: nothing here builds them.
Both hosts run our spread daemon (it serves the C libspread client); h1 and h2 share the pool
of four addresses of tests/netns/test_wackamole_netns.py.

A process started on a host has a private /tmp, so the C binary is copied into the host
directory and run by a relative path; shared libraries it resolves under /tmp (a libspread
installed in a scratch prefix there) are copied beside it and found through a relative
LD_LIBRARY_PATH. Its stdout is line-buffered with `stdbuf` so its `-d` log can be read live
(the original never flushes it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.netns.netlab import Host, NetLab, Proc, wait_until
from tests.netns.test_wackamole_netns import (
    VIPS,
    WACKAMOLE_CONF,
    as_host,
    cluster,
    held,
    start_wackamole,
    wackatrl,
)

pytestmark = pytest.mark.netns

SETTLE = 25.0  # seconds allowed for the pool to settle after a start or a stop
LIB_DIR = "orig-lib"  # relative to the host dir (the cwd of everything spawned there)


def _binary(var: str, what: str) -> Path:
    path = os.environ.get(var)
    if not path or not os.access(path, os.X_OK):
        pytest.skip(f"set {var} to the original C `{what}` binary to run these")
    return Path(path)


@pytest.fixture
def orig() -> Path:
    return _binary("WACKAMOLE_ORIG", "wackamole")


@pytest.fixture
def orig_trl() -> Path:
    return _binary("WACKATRL_ORIG", "wackatrl")


def _libs_under_tmp(binary: Path) -> dict[str, Path]:
    """soname -> file, for the shared libraries `binary` loads from under /tmp (hidden from
    a process on a host, whose /tmp is private)."""
    if shutil.which("ldd") is None:
        return {}
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    found = {}
    for m in re.finditer(r"^\s*(\S+) => (/\S+)", out, re.M):
        if m.group(2).startswith("/tmp/"):
            found[m.group(1)] = Path(m.group(2))
    return found


def copy_in(host: Host, binary: Path, name: str) -> dict[str, str]:
    """Copy `binary` to <host dir>/<name>; returns the environment to run it with."""
    shutil.copy(binary, host.dir / name)
    libs = _libs_under_tmp(binary)
    env = dict(os.environ)
    if libs:
        (host.dir / LIB_DIR).mkdir(exist_ok=True)
        for soname, path in libs.items():
            shutil.copy(path, host.dir / LIB_DIR / soname)
        env["LD_LIBRARY_PATH"] = LIB_DIR
    return env


def start_c_wackamole(host: Host, binary: Path, name: str = "c-wackamole") -> Proc:
    """The C wackamole in debug mode (`-d`: foreground, log on stdout) with the shared config.

    The original turns a relative `-c` into getcwd() + name, which is not reachable once the
    host's /tmp covers the real one; /proc/self/cwd names the same file from inside."""
    (host.dir / "wackamole.conf").write_text(WACKAMOLE_CONF)
    env = copy_in(host, binary, "wackamole-orig")
    line_buffered = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []
    argv = [*line_buffered, "./wackamole-orig", "-d", "-c", "/proc/self/cwd/wackamole.conf"]
    return host.spawn(as_host(host, argv), name, env)


def c_wackatrl(host: Host, binary: Path, flag: str = "-l") -> subprocess.CompletedProcess[str]:
    """The C wackatrl on the host, from its directory (the config names the socket
    relatively). It is not spawned with a private /tmp, so its libraries stay reachable."""
    argv = as_host(host, [str(binary), "-c", "wackamole.conf", flag])
    here = f'cd "{host.dir}" && exec "$@"'
    return subprocess.run(["ip", "netns", "exec", host.netns, "sh", "-c", here, "sh", *argv],
                          capture_output=True, text=True, timeout=20)


def balanced(h1: Host, h2: Host) -> bool:
    """Two addresses each, every address on exactly one host."""
    a, b = held(h1), held(h2)
    return len(a) == 2 and len(b) == 2 and not a & b and a | b == set(VIPS)


def logs(*procs: Proc) -> str:
    return "\n".join(f"---- {p.host.name}/{p.name}\n{p.output()[-4000:]}" for p in procs)


def _start(host: Host, c_side: bool, orig: Path, name: str) -> Proc:
    return start_c_wackamole(host, orig, name) if c_side else start_wackamole(host, name)


def mixed(lab: NetLab, orig: Path) -> tuple[Host, Host, Proc, Proc]:
    """The C wackamole on h1, ours on h2, settled 2/2."""
    h1, h2, _h3 = cluster(lab)
    c_proc = start_c_wackamole(h1, orig)
    py_proc = start_wackamole(h2)
    assert wait_until(lambda: balanced(h1, h2), SETTLE), logs(c_proc, py_proc)
    return h1, h2, c_proc, py_proc


@pytest.mark.parametrize("c_first", [True, False], ids=["c-first", "python-first"])
def test_the_first_matures_alone_and_the_second_gets_half(
    lab: NetLab, orig: Path, c_first: bool
) -> None:
    h1, h2, _h3 = cluster(lab)
    first = _start(h1, c_first, orig, "first")
    assert wait_until(lambda: held(h1) == set(VIPS), SETTLE), logs(first)
    assert first.alive()
    second = _start(h2, not c_first, orig, "second")
    assert wait_until(lambda: balanced(h1, h2), SETTLE), logs(first, second)
    assert first.alive() and second.alive()


@pytest.mark.parametrize("c_stops", [True, False], ids=["c-stops", "python-stops"])
def test_sigterm_of_either_gives_all_to_the_other_and_a_restart_rebalances(
    lab: NetLab, orig: Path, c_stops: bool
) -> None:
    h1, h2, c_proc, py_proc = mixed(lab, orig)
    stopping, stays = (h1, h2) if c_stops else (h2, h1)
    victim = c_proc if c_stops else py_proc
    assert victim.stop() == 0  # SIGTERM: release everything, exit 0
    assert held(stopping) == set()
    assert wait_until(lambda: held(stays) == set(VIPS), SETTLE), logs(c_proc, py_proc)
    back = _start(stopping, c_stops, orig, "restarted")
    assert wait_until(lambda: balanced(h1, h2), SETTLE), logs(c_proc, py_proc, back)


@pytest.mark.parametrize("c_killed", [True, False], ids=["c-killed", "python-killed"])
def test_kill9_leaves_addresses_behind_and_a_restart_cleans_them_up(
    lab: NetLab, orig: Path, c_killed: bool
) -> None:
    h1, h2, c_proc, py_proc = mixed(lab, orig)
    killed, survivor = (h1, h2) if c_killed else (h2, h1)
    (c_proc if c_killed else py_proc).kill9()
    stale = held(killed)
    assert len(stale) == 2  # nothing released them
    assert wait_until(lambda: held(survivor) == set(VIPS), SETTLE), logs(c_proc, py_proc)
    back = _start(killed, c_killed, orig, "restarted")
    # Balanced means disjoint too: the restart's clean-up removed the left-overs.
    assert wait_until(lambda: balanced(h1, h2), SETTLE), logs(c_proc, py_proc, back)


def test_either_wackatrl_lists_either_daemon_the_same_way(
    lab: NetLab, orig: Path, orig_trl: Path
) -> None:
    h1, h2, _c_proc, _py_proc = mixed(lab, orig)
    for host in (h1, h2):  # h1 asks the C daemon, h2 ours
        ours, theirs = wackatrl(host), c_wackatrl(host, orig_trl)
        assert ours.returncode == 0 and theirs.returncode == 0, ours.stderr + theirs.stderr
        assert ours.stdout == theirs.stdout, (host.name, ours.stdout, theirs.stdout)
        for vip in VIPS:
            owner = next(h.ip for h in (h1, h2) if vip in held(h))
            assert f"Owner: {owner}\n\t*    eth0:{vip}/32\n" in ours.stdout, ours.stdout


def test_both_daemons_report_one_allocation_table(lab: NetLab, orig: Path) -> None:
    h1, h2, c_proc, _py_proc = mixed(lab, orig)
    # Our wackatrl reads either daemon; both tables name the same owner for every address.
    assert wait_until(lambda: wackatrl(h1).stdout == wackatrl(h2).stdout, 10), logs(c_proc)
    listing = wackatrl(h1).stdout
    assert listing.count("Owner: ") == len(VIPS) and "not acquired" not in listing, listing


@pytest.mark.parametrize("on_c", [True, False], ids=["f-on-c", "f-on-python"])
def test_wackatrl_f_gives_away_to_the_other_kind_and_s_takes_a_share_back(
    lab: NetLab, orig: Path, on_c: bool
) -> None:
    h1, h2, c_proc, py_proc = mixed(lab, orig)
    told, other = (h1, h2) if on_c else (h2, h1)
    r = wackatrl(told, "-f")
    assert r.returncode == 0, r.stdout + r.stderr
    assert wait_until(lambda: held(told) == set() and held(other) == set(VIPS), SETTLE), (
        logs(c_proc, py_proc))
    r = wackatrl(told, "-s")
    assert r.returncode == 0, r.stdout + r.stderr
    assert wait_until(lambda: balanced(h1, h2), SETTLE), logs(c_proc, py_proc)
