"""RunDynamic hooks: a real shared object is called with the original's structs by value."""

from __future__ import annotations

import shutil
import subprocess
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from wackamole.config import parse_config_text
from wackamole.config.model import Action
from wackamole.hooks import Hooks

# Our own test hook: appends what it was given to the file named by HOOK_OUT.
HOOK_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>
struct interface { char ifname[16]; struct in_addr ipaddr, bcast, netmask, network;
                   unsigned char mac[6]; };
static void put(FILE *f, const char *what, struct interface i) {
    fprintf(f, "%s %s", what, i.ifname);
    fprintf(f, " %s", inet_ntoa(i.ipaddr));
    fprintf(f, " %s", inet_ntoa(i.bcast));
    fprintf(f, " %s\n", inet_ntoa(i.netmask));
}
int on_up(struct interface primary, struct interface *extras, struct interface real) {
    FILE *f = fopen(getenv("HOOK_OUT"), "a");
    put(f, "primary", primary);
    for (int n = 0; n < 30 && extras[n].ipaddr.s_addr; n++) put(f, "extra", extras[n]);
    put(f, "real", real);
    fclose(f);
    return 0;
}
"""


@pytest.fixture
def hook_so(tmp_path: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the test hook")
    (tmp_path / "hook.c").write_text(HOOK_C)
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(tmp_path / "hook.so"),
                    str(tmp_path / "hook.c")], check=True)
    return tmp_path


def test_an_on_up_hook_gets_the_vif_and_the_owner_by_value(
    hook_so: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = hook_so / "calls.txt"
    monkeypatch.setenv("HOOK_OUT", str(out))
    cfg = parse_config_text(
        f"Group = g\nModuleDir = {hook_so}\nRunDynamic hook:on_up on up\n"
        "VIPs {\n { eth0:10.0.0.5/24 eth0:10.0.0.6/32 }\n}\n"
    )
    logged: list[str] = []
    hooks = Hooks(cfg.hooks, logged.append)  # "hook" is found as hook.so, as in C
    assert logged == []
    hooks.run(Action.ON_UP, cfg.vifs[0], IPv4Address("192.0.2.1"))
    assert out.read_text().splitlines() == [
        "primary eth0 10.0.0.5 10.0.0.255 255.255.255.0",
        "extra eth0 10.0.0.6 10.0.0.6 255.255.255.255",
        "real  192.0.2.1 0.0.0.0 0.0.0.0",
    ]
    hooks.run(Action.POST_UP)  # nothing registered for it: nothing called
    assert len(out.read_text().splitlines()) == 3


def test_a_missing_module_or_symbol_is_reported_like_the_original(hook_so: Path) -> None:
    cfg = parse_config_text(
        f"Group = g\nModuleDir = {hook_so}\nRunDynamic nothere:f on up\n"
        "RunDynamic hook:absent on down\nVIPs {\n eth0:10.0.0.5/32\n}\n"
    )
    logged: list[str] = []
    hooks = Hooks(cfg.hooks, logged.append)
    assert logged[0].startswith(f"register_shared open of {hook_so}/nothere.so failed: ")
    assert logged[1].startswith("register_shared could not find symbol absent: ")
    assert not any(hooks.by_kind.values())
