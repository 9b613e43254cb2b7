"""Every captured spread.conf case: our start-up log, message text, hash and VIDs match the
C daemon's (tests/vectors/config/spread_results.json).

Two documented differences are applied to the captured text before comparing: line numbers
in the Parse Error/Warning banners are counted as humans count them (the original counts the
newlines read so far, one less, except at end of file), and the runtime lines after
"My name: …" (membership, bind errors, exit) belong to the daemon, not to the config stage.
"""

from __future__ import annotations

import io
import json
import re
import socket
from pathlib import Path

import pytest

from spread.cli import main
from spread.config import ConfigError, IpAddress, load_with_log
from spread.daemon.log import Logger

VEC = Path(__file__).parent.parent / "vectors" / "config"
CASES = json.loads((VEC / "spread_results.json").read_text())["cases"]
STAMP = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d ", re.M)


def namespace_addresses() -> list[IpAddress]:
    """The capture namespace: lo (127.0.0.1, ::1) and eth0 192.0.2.1/24."""
    return [
        IpAddress(4, socket.inet_pton(socket.AF_INET, "127.0.0.1")),
        IpAddress(6, socket.inet_pton(socket.AF_INET6, "::1"), 1),
        IpAddress(4, socket.inet_pton(socket.AF_INET, "192.0.2.1")),
    ]


def no_dns(name: str) -> list[tuple[int, bytes]]:
    raise LookupError("Name or service not known")


def case_args(case: dict) -> tuple[str | None, list[str]]:
    """(-n name, full argv) with the -c path pointing into our vectors directory."""
    cmd = case["command_line"]
    path = str(VEC / "spread" / case["file"])
    m = re.fullmatch(r"spread -n (.+) -c (\S+)", cmd)
    if m:
        return m.group(1), ["-n", m.group(1), "-c", path]
    m = re.fullmatch(r"spread (.*)-c (\S+)", cmd)
    assert m, cmd
    return None, [*m.group(1).split(), "-c", path]


def human_lines(text: str) -> str:
    """The original's banner line numbers, as a human counts them (see module docstring)."""

    def fix(m: re.Match[str]) -> str:
        n = int(m.group(2))
        return f"{m.group(1)} on or before line {n if m.group(3) == '' else n + 1}\n" \
               f"Offending token: {m.group(3)}\n"

    return re.sub(r"(Error|Warning) on or before line (\d+)\nOffending token: (.*)\n", fix, text)


def expected_output(case: dict, our_path: str) -> str:
    out = case["output"].replace(case["config_path_used"], our_path)
    out = human_lines(STAMP.sub("", out))
    lines = out.splitlines(keepends=True)
    cut = next((i for i, ln in enumerate(lines) if "Conf_load_conf_file: My name:" in ln), None)
    if cut is not None:
        rest = "".join(lines[cut + 1 :])
        # config-stage refusals that C reaches only after "My name" stay in the comparison
        if "Memb_init:" not in rest and "Conf_seg_leader" not in rest:
            lines = lines[: cut + 1]
    return "".join(lines)


def render(case: dict) -> tuple[str, ConfigError | None]:
    name, argv = case_args(case)
    path = argv[argv.index("-c") + 1]
    buf = io.StringIO()
    logger = Logger(buf, clock=lambda: 0.0, follow_log_file=False)
    try:
        res = load_with_log(path, name, local_addresses=namespace_addresses, resolver=no_dns)
    except ConfigError as e:
        logger.replay(e.log)
        logger.fatal(e.original_lines())
        return STAMP.sub("", buf.getvalue()), e
    logger.replay(res.log)
    return STAMP.sub("", buf.getvalue()), None


CONFIG_CASES = [c for c in CASES if c["file"] != "bad_usage.conf"]


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c["file"] for c in CONFIG_CASES])
def test_startup_log_matches_the_original(case: dict) -> None:
    out, _err = render(case)
    _name, argv = case_args(case)
    assert out.rstrip("\n") == expected_output(case, argv[argv.index("-c") + 1]).rstrip("\n")


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c["file"] for c in CONFIG_CASES])
def test_refusal_and_identity_match_the_original(case: dict) -> None:
    name, argv = case_args(case)
    path = argv[argv.index("-c") + 1]
    refused_by_config = case["exit_status"] != 0 and "bind error" not in case["output"]
    try:
        res = load_with_log(path, name, local_addresses=namespace_addresses, resolver=no_dns)
    except ConfigError as e:
        assert refused_by_config, str(e)
        assert e.original in case["output"]
        return
    assert not refused_by_config
    config = res.config
    assert config.conf_hash == case["config_hash"]
    assert {d.name: d.vid for d in config.daemons} == case["vids"]
    if case["first_membership_id"]:
        # the first ring is my own singleton: its id carries my VID (printed signed)
        assert config.my is not None
        signed = config.my.vid - (1 << 32) if config.my.vid >= 1 << 31 else config.my.vid
        leader = case["first_membership_id"][0]
        assert leader == signed or any(
            (d.vid - (1 << 32) if d.vid >= 1 << 31 else d.vid) == leader
            for d in config.daemons)


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_command_line_exit_status(case: dict) -> None:
    _name, argv = case_args(case)
    served: list = []
    out, err = io.StringIO(), io.StringIO()
    rc = main(argv, stdout=out, stderr=err, local_addresses=namespace_addresses,
              resolver=no_dns, serve=lambda c, membership_log: served.append(c) or 0)
    if case["file"] == "bad_usage.conf":
        assert case["exit_status"] == 134  # the original aborts; we exit 1 (docs/spread-conf.md)
        assert rc == 1
        assert out.getvalue().rstrip("\n") == case["output"].rstrip("\n")
    elif case["exit_status"] == 0 or "bind error" in case["output"]:
        assert rc == 0 and len(served) == 1
    else:
        assert rc == 1 and not served
        assert "Traceback" not in out.getvalue() + err.getvalue()
        assert "Exit caused by Alarm!" in out.getvalue()
