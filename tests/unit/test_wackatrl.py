"""wackatrl and the control-socket byte layout, against a fake daemon on a unix socket."""

from __future__ import annotations

import io
import json
import re
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from wackamole import cli, control, wackatrl
from wackamole.config import load_config, parse_config_text
from wackamole.control import ControlProtocolError, IfaceEntry, Op, VifState

VECTORS = Path(__file__).parent.parent / "vectors"
_RESULTS = json.loads((VECTORS / "config" / "wackamole_results.json").read_text())
CASES = {c["file"]: c for c in _RESULTS["cases"]}
MISC = {c["case"]: c for c in _RESULTS["misc"]}
PEER = json.loads((VECTORS / "wackamole" / "D_wackamole_peer.json").read_text())


class FakeDaemon:
    """A control server that answers the way wackamole does, and records the opcodes."""

    def __init__(self, path: Path, states: tuple[VifState, ...],
                 reply: Callable[[int], bytes | None] | None = None,
                 hang_up_after_reply: bool = False) -> None:
        self.states = states
        self.hang_up_after_reply = hang_up_after_reply
        self.ops: list[int] = []
        self.reply = reply or self.default_reply
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(5)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def default_reply(self, op: int) -> bytes | None:
        if op == Op.GET_WACK_STATE:
            return control.encode_state(self.states)
        return control.encode_ack(0)

    def serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            while True:
                data = conn.recv(1)
                if not data:
                    return
                self.ops.append(data[0])
                answer = self.reply(data[0])
                if answer is None:
                    return  # hang up, as on an unknown opcode
                conn.sendall(answer)
                if self.hang_up_after_reply:
                    return

    def close(self) -> None:
        self.thread.join(5)
        self.server.close()


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "w.sock"


@pytest.fixture
def conf(tmp_path: Path, sock_path: Path) -> Path:
    path = tmp_path / "w.conf"
    path.write_text(f"Control = {sock_path}\nGroup = g\n"
                    "VIPs { { eth0:192.0.2.101/32 eth1:198.51.100.7/24 } eth0:192.0.2.102/32 }\n")
    return path


@pytest.fixture
def daemon(sock_path: Path, conf: Path) -> Iterator[FakeDaemon]:
    states = tuple(VifState.from_config(v) for v in load_config(conf).vifs)
    fake = FakeDaemon(sock_path, states)
    yield fake
    fake.close()


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = wackatrl.main(list(argv), out, err, lambda: "192.0.2.1")
    return status, out.getvalue(), err.getvalue()


# --- byte layout -------------------------------------------------------------------------------

def test_requests_are_one_opcode_byte() -> None:
    assert [control.encode_request(op) for op in Op] == [b"\x00", b"\x01", b"\x02"]
    assert [control.decode_request(b) for b in (b"\x00", 1, b"\x02")] == list(Op)


def test_unknown_opcode_carries_its_code() -> None:
    with pytest.raises(ControlProtocolError) as info:
        control.decode_request(b"\x07")
    assert info.value.args == (7,)


def test_ack_is_a_big_endian_int32() -> None:
    assert control.encode_ack(0) == b"\0\0\0\0"
    assert control.decode_ack(control.encode_ack(-2)) == -2
    assert control.encode_ack(1) == b"\0\0\0\1"


def test_state_dump_layout_is_900_bytes_per_vif_big_endian() -> None:
    cfg = parse_config_text("VIPs { { eth0:10.1.2.3/24 eth1:10.9.9.9/32 } }\n")
    state = VifState.from_config(cfg.vifs[0], IPv4Address("192.0.2.1"), claim=5)
    data = control.encode_state((state,))
    assert len(data) == 4 + 900
    assert struct.unpack(">I", data[:4]) == (900,)
    assert struct.unpack(">i", data[4:8]) == (5,)
    owner, primary, extra, unused = (data[8 + i * 28 : 8 + (i + 1) * 28] for i in range(4))
    assert owner == bytes(16) + bytes([192, 0, 2, 1]) + bytes(8)
    assert primary == (b"eth0" + bytes(12) + bytes([10, 1, 2, 3]) + bytes([10, 1, 2, 255])
                       + bytes([255, 255, 255, 0]))
    assert extra[:16] == b"eth1" + bytes(12) and extra[16:20] == bytes([10, 9, 9, 9])
    assert unused == bytes(28) and data[8 + 4 * 28 :] == bytes(900 - 4 - 4 * 28)


def test_state_dump_round_trips() -> None:
    cfg = parse_config_text("VIPs { { a:10.0.0.1/32 b:10.0.0.2/8 c:10.0.0.3/30 } d:10.0.0.9/32 }")
    states = (VifState.from_config(cfg.vifs[0], IPv4Address("10.0.0.200"), 2),
              VifState.from_config(cfg.vifs[1]))
    data = control.encode_state(states)
    assert control.decode_state_length(data[:4]) == len(data) - 4
    assert control.decode_state_records(data[4:]) == states


def test_interface_names_must_fit_16_bytes_with_their_nul() -> None:
    entry = IfaceEntry("x" * 16, IPv4Address("10.0.0.1"))
    with pytest.raises(ControlProtocolError):
        control.encode_state((VifState(0, IPv4Address(0), entry),))


@pytest.mark.parametrize(("prefix", "bits"), [(32, 32), (24, 32), (16, 32), (8, 32), (7, 31),
                                              (1, 25)])
def test_mask_bits_as_the_x86_original_prints_them(prefix: int, bits: int) -> None:
    netmask = IPv4Address((0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF)
    assert control.mask_bits_x86(netmask) == bits
    assert control.mask_bits_x86(IPv4Address(0)) == 0


# --- listing format against the captured runs ---------------------------------------------------

def _states_for(config_text: str, listing: str) -> tuple[VifState, ...]:
    cfg = parse_config_text(config_text)
    owners = re.findall(r"^Owner: (.*)$", listing, re.M)
    return tuple(
        VifState.from_config(v, IPv4Address(0) if o == "not acquired" else IPv4Address(o))
        for v, o in zip(cfg.vifs, owners, strict=True)
    )


@pytest.mark.parametrize("entry", [e for e in PEER["wackatrl"]
                                   if e["wackatrl_l_stdout"].startswith("Owner:")],
                         ids=lambda e: f"{e['host']}-{e['t']}")
def test_listing_matches_the_captured_two_node_run(entry: dict[str, str]) -> None:
    listing = entry["wackatrl_l_stdout"]
    assert wackatrl.format_listing(_states_for(PEER["wackamole_conf"], listing)) == listing


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items()
                                        if c.get("extra", {}).get("wackatrl -l", {})
                                        .get("stdout", "").startswith("Owner:")))
def test_listing_matches_the_captured_config_cases(name: str, sock_path: Path,
                                                    tmp_path: Path) -> None:
    case = CASES[name]
    expected = case["extra"]["wackatrl -l"]["stdout"]  # includes /24 shown as /32 and extras
    states = _states_for(case["config_text"], expected)
    conf = tmp_path / "c.conf"
    conf.write_text(case["config_text"].replace("Control =", "#") + f"Control = {sock_path}\n")
    fake = FakeDaemon(sock_path, states)
    try:
        assert run("-c", str(conf), "-l") == (0, expected, "")
    finally:
        fake.close()
    assert fake.ops == [Op.GET_WACK_STATE]


def test_no_vifs_prints_nothing() -> None:
    assert wackatrl.format_listing(()) == ""


# --- the client against a fake daemon ----------------------------------------------------------

def test_l_asks_for_the_state_and_prints_the_table(daemon: FakeDaemon, conf: Path) -> None:
    status, out, err = run("-c", str(conf), "-l")
    assert (status, err) == (0, "")
    assert out == ("Owner: not acquired\n\t*    eth0:192.0.2.101/32\n"
                   "\t ->  eth1:198.51.100.7/32\n"
                   "Owner: not acquired\n\t*    eth0:192.0.2.102/32\n")
    assert daemon.ops == [Op.GET_WACK_STATE]


@pytest.mark.parametrize(("flag", "op"), [("-f", Op.WACK_SERVICE_FAILURE),
                                          ("-s", Op.WACK_SERVICE_SUCCESS)])
def test_f_and_s_post_then_list(flag: str, op: Op, daemon: FakeDaemon, conf: Path) -> None:
    status, out, err = run("-c", str(conf), flag)
    assert (status, err) == (0, "")
    assert out.count("Owner: not acquired") == 2
    assert daemon.ops == [op, Op.GET_WACK_STATE]


def test_the_last_of_f_s_l_wins(daemon: FakeDaemon, conf: Path) -> None:
    run("-c", str(conf), "-l", "-s", "-f")
    assert daemon.ops == [Op.WACK_SERVICE_FAILURE, Op.GET_WACK_STATE]


def test_nonzero_reply_prints_the_original_complaint(sock_path: Path, conf: Path) -> None:
    def reply(op: int) -> bytes:
        return control.encode_ack(1) if op else control.encode_state(())

    fake = FakeDaemon(sock_path, (), reply)
    try:
        assert run("-c", str(conf), "-s") == (0, "", "Error posting failure.")
    finally:
        fake.close()


def test_daemon_hanging_up_gives_error_on_read(sock_path: Path, conf: Path) -> None:
    fake = FakeDaemon(sock_path, (), lambda op: None)
    try:
        status, out, err = run("-c", str(conf), "-f")
    finally:
        fake.close()
    assert (status, out) == (0, "")
    assert err == "Error on read.Error on read.\n"  # the post's has no newline


def test_truncated_state_gives_error_on_read(sock_path: Path, conf: Path) -> None:
    def reply(op: int) -> bytes:
        return struct.pack(">I", 900) + bytes(100)

    fake = FakeDaemon(sock_path, (), reply, hang_up_after_reply=True)
    try:
        status, out, err = run("-c", str(conf), "-l")
    finally:
        fake.close()
    assert (status, out, err) == (0, "", "Error on read.\n")


def test_no_daemon_prints_the_original_lines(tmp_path: Path, conf: Path) -> None:
    status, out, err = run("-c", str(conf), "-l")
    assert (status, err) == (0, "")
    path = tmp_path / "w.sock"
    assert out == f"connect to: {path} failed.\nPerhaps wackamole is not running?\n\n"


def test_vector_blog_control_directory_cannot_be_reached() -> None:
    case = MISC["wackatrl -l with the blog config while no wackamole runs"]
    status, out, err = run("-c", str(VECTORS / "config" / "wackamole" / "good_blog.conf"), "-l")
    assert (status, out, err) == (case["exit_status"], case["stdout"], case["stderr"])


def test_empty_control_path_fails_to_connect(tmp_path: Path) -> None:
    (tmp_path / "e.conf").write_text("Group = g\n")
    assert run("-c", str(tmp_path / "e.conf"), "-l")[1] == (
        "connect to:  failed.\nPerhaps wackamole is not running?\n\n")


@pytest.mark.parametrize("argv", [[], ["-c", "x.conf"], ["-x"], ["-c"], ["-l", "-q"]])
def test_usage_on_stdout_and_status_0(argv: list[str]) -> None:
    case = MISC["wackatrl -x (unknown option)"]
    assert run(*argv) == (0, case["stdout"], "")
    assert MISC["wackatrl (no option: usage)"]["stdout"] == case["stdout"]


def test_config_errors_stop_wackatrl_like_wackamole(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    bad = VECTORS / "config" / "wackamole" / "bad_equals_glued.conf"
    status, out, err = run("-c", str(bad), "-l")
    assert (status, out) == (255, "")
    assert err.startswith(CASES["bad_equals_glued.conf"]["stderr"].split("Error")[0])
    monkeypatch.setattr(cli, "ETC_CONFIG", str(tmp_path / "none"))
    monkeypatch.chdir(tmp_path)
    assert run("-c", "/nonexistent.conf", "-l") == (1, "", "")


class _SilentDaemon:
    """Accepts, reads whatever comes, never answers (a daemon stuck in a hook)."""

    def __init__(self, path: Path) -> None:
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(5)
        self.ops: list[int] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            while data := conn.recv(1):
                self.ops.append(data[0])

    def close(self) -> None:
        self.server.close()


def test_a_silent_daemon_costs_one_timeout_and_no_second_request(
    sock_path: Path, conf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wackatrl, "REPLY_TIMEOUT", 0.3)
    fake = _SilentDaemon(sock_path)
    try:
        status, out, err = run("-c", str(conf), "-f")
    finally:
        fake.close()
    assert (status, out, err) == (0, "", "Error on read.\n")
    assert fake.ops == [Op.WACK_SERVICE_FAILURE]  # a late ack must not be read as a length


def test_names_are_padded_by_bytes_as_printf_does() -> None:
    entry = IfaceEntry("é0", IPv4Address("10.0.0.1"), IPv4Address("10.0.0.255"),
                       IPv4Address("255.255.255.0"))
    vif = VifState(1, IPv4Address("0.0.0.0"), entry, ())
    # "\t*   " then %5s: "é0" is 3 bytes in UTF-8, so 2 spaces of padding, not 3
    assert "\t*     é0:10.0.0.1/" in wackatrl.format_listing((vif,))
