"""The `wackamole` command line: options, config search, config-stage output, --check-config."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from wackamole import cli
from wackamole.config import WackamoleConfig

VECTORS = Path(__file__).parent.parent / "vectors" / "config"
_RESULTS = json.loads((VECTORS / "wackamole_results.json").read_text())
CASES = {c["file"]: c for c in _RESULTS["cases"]}
MISC = {c["case"]: c for c in _RESULTS["misc"]}
REPO = Path(__file__).parent.parent.parent


class Daemon:
    """Stands in for wackamole.daemon: records how the command line starts it."""

    def __init__(self, status: int = 0) -> None:
        self.calls: list[tuple[WackamoleConfig, bool]] = []
        self.addresses: list[str] = []
        self.status = status

    def run(self, config: WackamoleConfig, debug: bool, address: str) -> int:
        self.calls.append((config, debug))
        self.addresses.append(address)
        return self.status


@pytest.fixture(autouse=True)
def no_system_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the machine's /etc/wackamole.conf (and the cwd) out of every test."""
    monkeypatch.setattr(cli, "ETC_CONFIG", str(tmp_path / "etc-wackamole.conf"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Daemon:
    fake = Daemon()
    module = types.ModuleType("wackamole.daemon")
    module.run = fake.run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wackamole.daemon", module)
    return fake


def run(*argv: str, resolve: str | Exception = "192.0.2.1") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()

    def resolver() -> str:
        if isinstance(resolve, Exception):
            raise resolve
        return resolve

    status = cli.main(list(argv), out, err, resolver)
    return status, out.getvalue(), err.getvalue()


def vector(name: str) -> str:
    return str(VECTORS / "wackamole" / name)


# --- options -----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["-v"], ["-version"], ["-d", "-v", "-c", "/nonexistent"]])
def test_v_prints_a_banner_shaped_like_the_originals_and_reads_no_config(argv: list[str]) -> None:
    """Same box, width and version lines as the captured `wackamole -v`; our own words inside
    (the original's claim authorship and a licence that are not ours)."""
    status, out, err = run(*argv)
    original = MISC["wackamole -v"]["stdout"].splitlines()
    lines = out.splitlines()
    assert (status, err) == (0, "")
    assert lines[:2] == original[:2] and lines[-1] == original[-1]  # the box's edges
    assert {len(line) for line in lines[1:]} == {80}
    version = [line for line in lines if line.startswith("| Version") or "Released" in line]
    assert version == [line for line in original if line.startswith("| Version")
                       or "Released" in line]
    assert "Johns Hopkins" not in out and "Copyright" not in out


@pytest.mark.parametrize("argv", [["-h"], ["-V"], ["word"], ["--help"], ["-d", "-x"]])
def test_unknown_arguments_print_the_original_usage(argv: list[str]) -> None:
    case = MISC["wackamole -h (usage)"]
    assert run(*argv) == (case["exit_status"], case["stdout"], case["stderr"])


@pytest.mark.parametrize("flag", ["-c", "-s", "-u"])
def test_missing_option_value_prints_usage_instead_of_crashing(flag: str) -> None:
    assert run("-d", flag) == (0, cli.USAGE, "")


def test_only_the_first_two_characters_of_an_option_count(daemon: Daemon) -> None:
    status, _, _ = run("-debug", "-config", vector("good_minimal.conf"))
    assert status == 0 and daemon.calls[0][1] is True


def test_missing_config_exits_1_silently() -> None:
    case = MISC["missing config file (cwd without wackamole.conf, no ETCDIR/wackamole.conf)"]
    assert run("-d", "-c", "/nonexistent/wackamole.conf") == (
        case["exit_status"], case["stdout"], case["stderr"])


def test_unreadable_c_file_falls_back_to_etc_then_cwd(
    daemon: Daemon, tmp_path: Path
) -> None:
    (tmp_path / "wackamole.conf").write_text("Group = from-cwd\n")
    run("-d", "-c", "/nonexistent/x.conf")
    Path(cli.ETC_CONFIG).write_text("Group = from-etc\n")
    run("-d", "-c", "/nonexistent/x.conf")
    assert [c.group for c, _ in daemon.calls] == ["from-cwd", "from-etc"]


def test_relative_c_path_is_made_absolute_and_echoed_without_newline(
    daemon: Daemon, tmp_path: Path
) -> None:
    (tmp_path / "rel.conf").write_text("Group = g\n")
    status, out, err = run("-d", "-c", "rel.conf")
    assert (status, out, err) == (0, f"{tmp_path}/rel.conf", "")
    assert daemon.calls[0][0].source == f"{tmp_path}/rel.conf"


def test_s_is_overridden_by_the_config_and_u_sets_the_private_name(
    daemon: Daemon, tmp_path: Path
) -> None:
    (tmp_path / "a.conf").write_text("Group = g\n")
    (tmp_path / "b.conf").write_text("Spread = 4805\n")
    run("-s", "4999@h", "-u", "me", "-c", str(tmp_path / "a.conf"))
    run("-s", "4999@h", "-c", str(tmp_path / "b.conf"))
    (a, debug_a), (b, _) = daemon.calls
    assert (a.spread, a.private_name, debug_a) == ("4999@h", "me", False)
    assert (b.spread, b.private_name) == ("4805", None)


# --- config stage against the captured vectors ----------------------------------------------

@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c["exit_status"] == 255))
def test_vector_bad_config_output_and_status(name: str) -> None:
    case = CASES[name]
    status, out, err = run("-d", "-c", vector(name))
    assert (status, out) == (case["exit_status"], case["stdout"])
    original, last = case["stderr"].removesuffix("Error reading config file.\n"), (
        "Error reading config file.\n")
    assert err.startswith(original) and err.endswith(last)
    where = err[len(original):].split("\n")[0]
    assert where.startswith(vector(name) + ":") and ", expected " in where
    assert "Traceback" not in err


def test_vector_perluse_prints_the_original_message_but_fails() -> None:
    # Difference from the original (exit 0): nothing starts, so the status says so.
    case = CASES["bad_perluse.conf"]
    status, out, err = run("-d", "-c", vector("bad_perluse.conf"))
    assert (status, out) == (255, case["stdout"])
    assert "PerlUse" in err and err.endswith("Error reading config file.\n")


def test_vector_bad_octet_prints_the_original_lines_and_refuses_to_start(daemon: Daemon) -> None:
    # Difference from the original, which loaded 44.0.0.1 and ran.
    case = CASES["good_bad_octet_still_loads.conf"]
    status, out, err = run("-d", "-c", vector(case["file"]))
    assert (status, out) == (255, "")
    assert err.startswith(case["stderr"]) and daemon.calls == []


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c["exit_status"] == 0
                                        and c["stderr"] == "" and not n.startswith("bad")))
def test_vector_good_config_reaches_the_daemon_with_nothing_printed(
    name: str, daemon: Daemon
) -> None:
    status, out, err = run("-d", "-c", vector(name))
    assert (status, out, err) == (0, "", "")
    ((config, debug),) = daemon.calls
    assert debug is True
    assert f"connecting to {config.spread}\n" in CASES[name]["stdout_untimestamped"]


def test_daemon_status_is_the_exit_status(daemon: Daemon) -> None:
    daemon.status = 3
    assert run("-c", vector("good_minimal.conf"))[0] == 3


def test_the_daemon_is_given_this_hosts_resolved_address(daemon: Daemon) -> None:
    run("-c", vector("good_minimal.conf"), resolve="192.0.2.7")
    assert daemon.addresses == ["192.0.2.7"]


def test_parse_time_messages_go_to_stdout_before_start(daemon: Daemon, tmp_path: Path) -> None:
    (tmp_path / "p.conf").write_text("Prefer somehost\n")
    assert run("-c", str(tmp_path / "p.conf"))[1] == "Couldn't lookup somehost.\n\n"


def test_unresolvable_host_name_stops_with_status_0_like_the_original(daemon: Daemon) -> None:
    err = cli.SelfResolveError("Can't self resolve nohost number 0")
    assert run("-c", vector("good_minimal.conf"), resolve=err) == (
        0, "Can't self resolve nohost number 0\n", "")
    assert daemon.calls == []


# --- --check-config --------------------------------------------------------------------------

def test_check_config_accepts_a_good_file_and_starts_nothing(
    daemon: Daemon, tmp_path: Path
) -> None:
    sock = tmp_path / "w.sock"
    (tmp_path / "c.conf").write_text(f"Group = g\nControl = {sock}\n"
                                     "VIPs { eth0:192.0.2.9/32 }\n")
    status, out, err = run("--check-config", "-c", "c.conf")
    assert (status, err) == (0, "")
    assert out == f"{tmp_path}/c.conf: configuration OK\n"  # no echo of the relative path
    assert daemon.calls == [] and not sock.exists()


def test_check_config_reports_errors_and_fails() -> None:
    status, out, err = run("--check-config", "-c", vector("bad_group_keyword.conf"))
    assert status == 255 and out == ""
    assert f"{vector('bad_group_keyword.conf')}:2:9: found 'all'" in err


def test_check_config_prints_advice(tmp_path: Path) -> None:
    (tmp_path / "c.conf").write_text("Spread = 4803\n")
    status, out, _ = run("--check-config", "-c", str(tmp_path / "c.conf"))
    assert status == 0
    assert "note: no Group" in out and "note: no VirtualInterfaces" in out


def test_check_config_fails_when_no_file_can_be_read() -> None:
    status, out, err = run("--check-config", "-c", "/nonexistent/w.conf")
    assert (status, out) == (1, "")
    assert "/nonexistent/w.conf" in err


def test_check_config_says_which_file_a_start_would_really_use(tmp_path: Path) -> None:
    Path(cli.ETC_CONFIG).write_text("Group = g\n")
    status, out, err = run("--check-config", "-c", "/nonexistent/w.conf")
    assert status == 0 and cli.ETC_CONFIG in err and cli.ETC_CONFIG in out


def test_check_config_fails_when_the_host_name_does_not_resolve() -> None:
    err_obj = cli.SelfResolveError("Can't self resolve nohost number 0")
    status, _, err = run("--check-config", "-c", vector("good_minimal.conf"), resolve=err_obj)
    assert status == 1 and "Can't self resolve nohost" in err


def test_real_process_prints_no_traceback_and_exits_255(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "wackamole", "-d", "-c", vector("bad_unclosed_block.conf")],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )
    case = CASES["bad_unclosed_block.conf"]
    assert proc.returncode == case["exit_status"]
    assert proc.stdout == ""
    assert proc.stderr.startswith("Parser error on or before line 4\nOffending token: \n")
    assert "Traceback" not in proc.stderr


def test_check_config_warns_that_the_blogs_control_directory_disables_wackatrl() -> None:
    status, out, _ = run("--check-config", "-c", vector("good_blog.conf"))
    assert status == 0
    assert 'note: Control = /var/run/: no socket can be made there; a start prints "bind to ' \
        '/var/run/ failed."' in out
