"""The `spread` command line: the original's options, usage, config search, exit statuses,
and `--check-config`, which validates like a start and touches nothing."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spread.cli import USAGE, Options, UsageError, main, parse_args
from spread.config import ConfigError, IpAddress, load_config, load_with_log

GOOD = "Spread_Segment 127.0.0.255:24903 {\n\ttestvm\t127.0.0.1\n}\n"
TWO = "Spread_Segment 192.0.2.255:4805 {\n\tfar\t192.0.2.9\n\tnear\t192.0.2.1\n}\n"


def local() -> list[IpAddress]:
    return [IpAddress(4, socket.inet_pton(socket.AF_INET, "127.0.0.1")),
            IpAddress(4, socket.inet_pton(socket.AF_INET, "192.0.2.1"))]


def run(argv: list[str], serve=None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main(argv, stdout=out, stderr=err, local_addresses=local,
              resolver=lambda n: (_ for _ in ()).throw(LookupError("Name or service not known")),
              serve=serve)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def conf(tmp_path: Path):
    def write(text: str, name: str = "s.conf") -> str:
        p = tmp_path / name
        p.write_text(text)
        return str(p)
    return write


# ---- options ----------------------------------------------------------------------------------
def test_defaults_are_spread_conf_no_name_no_log() -> None:
    assert parse_args([]) == Options(None, "spread.conf", False, False)


def test_options_match_by_prefix_and_take_the_next_argument() -> None:
    o = parse_args(["-nfoo", "me", "-cxyz", "a.conf", "-lzz", "y"])
    assert o == Options("me", "a.conf", True, False)


def test_repeated_options_last_one_wins_in_any_order() -> None:
    o = parse_args(["-c", "a", "-n", "x", "-l", "y", "-c", "b", "-l", "n", "-n", "y"])
    assert (o.config_file, o.my_name, o.membership_log) == ("b", "y", False)


@pytest.mark.parametrize("argv", [["-x"], ["-n"], ["-c"], ["-l"], ["-l", "yes"], ["--help"],
                                  ["-v"], ["stray"], ["-c", "f", "-n"]])
def test_anything_else_is_the_usage_text(argv: list[str]) -> None:
    with pytest.raises(UsageError) as e:
        parse_args(argv)
    assert e.value.lines == USAGE


def test_proc_name_of_twenty_characters_is_too_long() -> None:
    assert parse_args(["-n", "x" * 19]).my_name == "x" * 19
    with pytest.raises(UsageError) as e:
        parse_args(["-n", "x" * 20])
    assert e.value.lines == [f"Usage: proc name {'x' * 20} too long"]


def test_config_file_name_of_512_characters_is_too_long() -> None:
    with pytest.raises(UsageError) as e:
        parse_args(["-c", "f" * 512])
    assert e.value.lines == ["Usage: config file name too long"]


def test_check_config_may_stand_anywhere() -> None:
    assert parse_args(["-n", "a", "--check-config", "-c", "f"]).check_config


def test_usage_prints_the_original_text_and_exits_1_instead_of_aborting() -> None:
    rc, out, _ = run(["-x"])
    assert rc == 1
    assert out == "\n".join(USAGE) + "\nExit caused by Alarm!\n"


# ---- --check-config ----------------------------------------------------------------------------
def test_check_config_ok_prints_the_summary_and_does_not_start(conf) -> None:
    path = conf(GOOD)
    started: list = []
    rc, out, err = run(["--check-config", "-n", "testvm", "-c", path],
                       serve=lambda c, membership_log: started.append(c) or 0)
    assert rc == 0 and not started and err == ""
    assert f"Conf_load_conf_file: using file: {path}\n" in out
    assert "Hash value for this configuration is: 316139322\n" in out
    assert out.splitlines()[-2] == ("Conf_load_conf_file: My name: testvm, id: 2614064012, "
                                    "addr: 127.0.0.1, port: 24903")
    assert "configuration OK" in out.splitlines()[-1]


def test_check_config_refusal_exits_non_zero_with_location(conf) -> None:
    path = conf(GOOD + "Window = 10\nPersonalWindow = 20\n")
    rc, out, err = run(["--check-config", "-n", "testvm", "-c", path])
    assert rc == 1
    assert "Error type: PersonalWindow > Window!" in err
    assert f"{path}:5:1: PersonalWindow 20 with Window 10" in err
    assert "Traceback" not in out + err


def test_check_config_checks_that_the_address_is_this_hosts(conf) -> None:
    path = conf("Spread_Segment 192.0.2.255:25025 {\n\tremote\t192.0.2.77\n}\n")
    rc, _out, err = run(["--check-config", "-n", "remote", "-c", path])
    assert rc == 1
    assert ("Conf_load_conf_file: None of this machine's internet addresses match this "
            "daemon's address 192.0.2.77!") in err
    assert f"{path}:2:2:" in err


def test_check_config_does_not_open_the_event_log_file(conf, tmp_path: Path) -> None:
    log = tmp_path / "spread.log"
    path = conf(GOOD + f"EventLogFile = {log}\n")
    rc, out, _ = run(["--check-config", "-c", path])
    assert rc == 0 and not log.exists()
    assert "Finished configuration file." in out


# ---- starting ----------------------------------------------------------------------------------
def test_start_logs_the_summary_then_serves_with_the_log_flag(conf) -> None:
    path = conf(GOOD)
    calls: list = []
    rc, out, _ = run(["-l", "y", "-n", "testvm", "-c", path],
                     serve=lambda c, membership_log: calls.append((c, membership_log)) or 7)
    assert rc == 7
    (config, flag), = calls
    assert flag is True and config.my.name == "testvm" and config.port == 24903
    assert out.endswith("Conf_load_conf_file: My name: testvm, id: 2614064012, addr: "
                        "127.0.0.1, port: 24903\n")


def test_start_refusal_prints_log_error_and_exit_line(conf) -> None:
    path = conf("Spread_Segment 127.0.0.255:25016 {\n\ttestvm\t127.0.0.1\n\ttestvm\t127.0.0.2\n}\n")
    rc, out, _ = run(["-n", "testvm", "-c", path])
    assert rc == 1
    lines = out.splitlines()
    assert lines[-1] == "Exit caused by Alarm!"
    assert "Error type: Daemon name (testvm) not unique! Already in use by daemon #0!" in lines
    assert f"{path}:3:2: daemon name 'testvm', expected a name no other daemon has " \
           "(daemon #0, line 2, has it; names are cut to 19 bytes)" in lines


def test_refusal_after_event_log_file_goes_to_the_log_and_to_stderr(conf, tmp_path) -> None:
    log = tmp_path / "spread.log"
    path = conf(f"EventLogFile = {log}\n" + GOOD + "Window = 0\n")
    rc, out, err = run(["-n", "testvm", "-c", path])
    assert rc == 1
    assert "using file" in out and "Window" not in out
    text = log.read_text()
    assert "Conf_set_window: Attempt to set window to non-positive (0)!" in text
    assert text.endswith("Exit caused by Alarm!\n")
    assert "Conf_set_window: Attempt to set window to non-positive (0)!" in err


def test_without_n_the_first_daemon_with_a_local_address_is_me(conf) -> None:
    config = load_config(conf(TWO), None, local_addresses=local)
    assert config.my is not None and config.my.name == "near"


def test_without_n_and_no_local_daemon_is_refused(conf) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(conf(TWO.replace("192.0.2.1", "192.0.2.3")), None, local_addresses=local)
    assert e.value.original == ("Conf_load_conf_file: None of this machine's internet addresses"
                                " match any daemon's address in configuration!")


def test_unknown_name_is_refused_with_the_known_ones_listed(conf) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(conf(TWO), "other", local_addresses=local)
    assert e.value.original == "Conf_load_conf_file: My proc other is not in configuration!"
    assert "far, near" in str(e.value)


def test_no_local_addresses_at_all_is_refused(conf) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(conf(GOOD), None, local_addresses=lambda: [])
    assert "Couldn't find any local internet addresses on this machine!" in e.value.original


# ---- the file search ---------------------------------------------------------------------------
def test_missing_c_file_falls_back_to_dot_spread_conf(tmp_path, monkeypatch) -> None:
    (tmp_path / "spread.conf").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    res = load_with_log("nonexistent.conf", "testvm", local_addresses=local)
    assert res.path == "./spread.conf"
    assert res.log[0].text == "Conf_load_conf_file: using file: ./spread.conf\n"


def test_last_resort_is_the_etc_directory(tmp_path, monkeypatch) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "spread.conf").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    res = load_with_log("nonexistent.conf", "testvm", local_addresses=local, etc_dir=str(etc))
    assert res.path == str(etc / "spread.conf")


def test_no_file_anywhere_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        load_with_log("nope.conf", "testvm", local_addresses=local, etc_dir=str(tmp_path))
    assert e.value.original == ("Conf_load_conf_file: error opening config file nope.conf and "
                                "alternates!")


def test_config_path_of_256_bytes_is_too_long() -> None:
    with pytest.raises(ConfigError) as e:
        load_config("x" * 256, "a", local_addresses=local)
    assert e.value.original == "Conf_init: configuration filename was too long!"


def test_partial_timeouts_and_empty_segments_are_refused_before_anything_starts(conf) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(conf(GOOD + "TokenTimeout = 2000\n"), "testvm", local_addresses=local)
    assert e.value.original.startswith("Memb_init: Only some of the membership timeouts")
    assert "missing: HurryTimeout" in str(e.value) and e.value.line == 4
    with pytest.raises(ConfigError) as e:
        load_config(conf(GOOD + "Spread_Segment 127.0.0.255:25022 {\n}\n"), "testvm",
                    local_addresses=local)
    assert e.value.original == "Conf_seg_leader: Empty segment 1 in Conf"
    assert e.value.line == 4


def test_to_ring_config_carries_identity_hash_and_resolved_values(conf) -> None:
    c = load_config(conf(TWO), "near", local_addresses=local)
    r = c.to_ring_config()
    assert r.my_vid == c.my.vid and r.conf_hash == c.conf_hash
    assert [(d.name, d.ip, d.segment) for d in r.daemons] == [("far", "192.0.2.9", 0),
                                                              ("near", "192.0.2.1", 0)]
    assert r.segments[0].port == 4805 and r.segments[0].addresses == ("192.0.2.255",)
    # a LAN: LAN timeouts, no wide-area double hurry, and the original ring (not written)
    assert r.accelerated_ring is False and r.timeouts.token == 1.25
    assert r.wide_area_network is False
    assert c.unix_socket_path == "/tmp/4805" and c.token_port == 4806


def test_python_dash_m_spread_runs_the_command_line(conf) -> None:
    path = conf(GOOD.replace("127.0.0.1", "192.0.2.250"))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    p = subprocess.run([sys.executable, "-m", "spread", "--check-config", "-n", "testvm",
                        "-c", path], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 1  # 192.0.2.250 is nobody's address here
    assert "None of this machine's internet addresses match" in p.stderr
    assert "Traceback" not in p.stdout + p.stderr


def test_real_address_discovery_finds_loopback_and_picks_the_loopback_daemon(conf) -> None:
    from spread.config import system_local_addresses

    found = system_local_addresses()
    assert any(a.family == 4 and a.ip == "127.0.0.1" for a in found)
    c = load_config(conf(GOOD), None)
    assert c.my is not None and c.my.name == "testvm" and c.client_port == 24903


@settings(max_examples=60, deadline=None)
@given(name=st.one_of(st.none(), st.text(max_size=25)),
       extra=st.text(alphabet="abc 192.0.2.1;{}\n", max_size=30))
def test_loading_mutated_files_with_any_name_raises_only_config_error(name, extra) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "s.conf"
        p.write_text(TWO.replace("}", extra + "\n}"))
        try:
            c = load_config(str(p), name, local_addresses=local,
                            resolver=lambda n: (_ for _ in ()).throw(LookupError("no")))
        except ConfigError as e:
            assert str(e)
        else:
            assert c.my is not None


@pytest.mark.parametrize(("line", "reported", "runs"), [
    ("", True, False),
    ("AcceleratedRing = yes\n", True, True),
    ("AcceleratedRing = no\n", False, False),
])
def test_ring_runs_accelerated_only_when_the_file_says_so(conf, line, reported, runs) -> None:
    """5.0.1's flow control copies AcceleratedRing before the LAN default is applied, so a
    default config reports "accelerated" yet runs the original ring on the wire."""
    config = load_config(conf(TWO + line), None, local_addresses=local)
    assert config.accelerated_ring is reported
    assert config.to_ring_config().accelerated_ring is runs


def test_local_addresses_are_the_same_inside_a_running_event_loop() -> None:
    """The daemon may look up its addresses from inside asyncio (e.g. a future reload)."""
    import asyncio

    from spread.config.load import system_local_addresses

    async def inside() -> list[IpAddress]:
        return system_local_addresses()

    outside = system_local_addresses()
    assert any(a.family == 4 and a.packed == b"\x7f\x00\x00\x01" for a in outside)
    assert asyncio.run(inside()) == outside
