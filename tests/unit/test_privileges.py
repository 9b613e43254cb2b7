"""The root start-up checks and privilege drop, with the system calls replaced."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spread.config import alarm as A
from spread.daemon import privileges
from spread.daemon.oneconf import single_daemon_config


class Calls:
    def __init__(self) -> None:
        self.made: list[tuple] = []
        self.said: list[tuple[int, int, str]] = []

    def say(self, priority: int, types: int, text: str) -> None:
        self.said.append((priority, types, text))


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    c = Calls()
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    for name in ("chdir", "chroot", "setgroups", "setgid", "setuid"):
        monkeypatch.setattr(os, name, lambda *a, _n=name: c.made.append((_n, *a)))
    monkeypatch.setattr(privileges.grp, "getgrnam", lambda g: type("G", (), {"gr_gid": 77}))
    monkeypatch.setattr(privileges.pwd, "getpwnam", lambda u: type("P", (), {"pw_uid": 66}))
    return c


def test_root_chroots_then_drops_group_then_user(calls: Calls) -> None:
    cfg = single_daemon_config("d", runtime_dir="/srv/spread", daemon_user="sp",
                               daemon_group="spg")
    privileges.drop(cfg, calls.say)
    assert calls.made == [("chdir", "/srv/spread"), ("chroot", "/srv/spread"),
                          ("setgroups", [77]), ("setgid", 77), ("setuid", 66)]
    assert calls.said == [(A.INFO, A.SECURITY, "Spread: setugid and chroot successeful")]


def test_an_unknown_account_is_fatal_before_anything_changes(
    calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(name: str) -> None:
        raise KeyError(name)

    monkeypatch.setattr(privileges.pwd, "getpwnam", missing)
    with pytest.raises(privileges.Fatal) as e:
        privileges.drop(single_daemon_config("d"), calls.say)
    assert e.value.text == ("Spread: FAILED privilege drop to user/group 'spread/spread' "
                            "(defined in spread.conf or spread_params.h)")
    assert calls.made == []


def test_not_root_only_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    c = Calls()
    privileges.drop(single_daemon_config("d"), c.say)
    privileges.check_socket_dir(c.say)
    assert c.said == [(A.WARNING, A.SECURITY, "Spread: not running as root, won't chroot")]


def test_the_socket_dir_warning_depends_on_who_may_write_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    safe, shared = tmp_path / "safe", tmp_path / "shared"
    safe.mkdir(mode=0o755)
    shared.mkdir()
    shared.chmod(0o1777)
    c = Calls()
    if os.stat(safe).st_uid == 0:  # only root can make a root-owned directory to test with
        privileges.check_socket_dir(c.say, str(safe))
        assert [t for _, _, t in c.said if "SECURITY RISK" in t] == []
    privileges.check_socket_dir(c.say, str(shared))
    assert c.said[-1] == (A.WARNING, A.PRINT_TYPE,
                          "Spread: SECURITY RISK! running as root, but unix domain socket is "
                          "not in a root-only writable directory. May risk denial of service "
                          f"or malicious deletion of unexpected file in directory: {shared}")
    with pytest.raises(privileges.Fatal):
        privileges.check_socket_dir(c.say, str(tmp_path / "absent"))
