"""spmonitor without sockets: its command line, menu dialogues, packets and status screen."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spread.config.load import load_config
from spread.config.model import IpAddress, SpreadConfig
from spread.daemon.monitor import build_status, status_reply
from spread.tools.spmonitor import (
    MENU,
    MonitorSession,
    Options,
    SendTo,
    Stop,
    UsageError,
    Write,
    first_word,
    parse_args,
    scan_int,
    strtol,
)
from spread.wire.daemon import (
    FC_TYPE,
    PARTITION_TYPE,
    RELOAD_TYPE,
    STATUS_TYPE,
    FlowControlCmd,
    Partition,
    StatusRequest,
    decode_packet,
)

IPS = ("10.0.0.1", "10.0.0.2", "10.0.0.3")
MON_PORT = 16543
LINE = 68  # what one fgets(…, 70) piece holds before its newline


def _conf(tmp_path: Path, extra: str = "", two_segments: bool = False) -> SpreadConfig:
    if two_segments:
        text = (f"{extra}Spread_Segment 10.0.0.255:4803 {{\n\td1\t{IPS[0]}\n\td2\t{IPS[1]}\n}}\n"
                f"Spread_Segment 10.0.1.255:4803 {{\n\td3\t{IPS[2]}\n}}\n")
    else:
        body = "".join(f"\td{i + 1}\t{ip}\n" for i, ip in enumerate(IPS))
        text = f"{extra}Spread_Segment 10.0.0.255:4803 {{\n{body}}}\n"
    f = tmp_path / "spread.conf"
    f.write_text(text)
    mine = IpAddress(4, socket.inet_aton(IPS[0]))
    return load_config(str(f), "d1", local_addresses=lambda: [mine])


class Run:
    """A session fed by hand; collects what it printed and sent."""

    def __init__(self, config: SpreadConfig, period: float = 10.0) -> None:
        self.s = MonitorSession(config, MON_PORT, period)
        self.text = ""
        self.sent: list[SendTo] = []
        self.stopped: int | None = None
        self.now = 0.0
        self._take(self.s.start())

    def _take(self, actions: list) -> None:
        for a in actions:
            if isinstance(a, Write):
                self.text += a.text
            elif isinstance(a, SendTo):
                self.sent.append(a)
            elif isinstance(a, Stop):
                self.stopped = a.status

    def lines(self, *lines: str | None) -> Run:
        for line in lines:
            self._take(self.s.on_line(self.now, line if line is None else line + "\n"))
        return self

    def tick(self, now: float) -> Run:
        self.now = now
        self._take(self.s.on_timer(now))
        return self

    def clear(self) -> Run:
        self.text, self.sent = "", []
        return self


# ---- command line ----------------------------------------------------------------------------


def test_options_come_in_exact_pairs_with_the_originals_defaults() -> None:
    assert parse_args([]) == Options(6543, None, 10.0, "spread.conf")
    assert parse_args(["-p", "0x100", "-n", "d2", "-t", "010", "-c", "x.conf"]) == Options(
        256, "d2", 8.0, "x.conf")


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["-p"], "Unknown or missing parameter: -p"),
        (["-p", "65536"], "Port number must be in range [0, 65536): 65536"),
        (["-p", "12x"], "Port number must be in range [0, 65536): 12x"),
        (["-t", "0"], "Status query timeout must be a positive integer: 0"),
        (["-t", "-3"], "Status query timeout must be a positive integer: -3"),
        (["-port", "1"], "Unknown parameter: -port"),
        (["-n", "a" * 20], "Proc name too long: " + "a" * 20),
        (["-c", "c" * 80], "Config file name too long: " + "c" * 80),
        (["extra"], "Unknown or missing parameter: extra"),
    ],
)
def test_a_bad_command_line_prints_the_reason_then_the_usage(
    argv: list[str], reason: str
) -> None:
    with pytest.raises(UsageError) as e:
        parse_args(argv, "/usr/sbin/spmonitor")
    assert e.value.text.startswith(f"{reason}\n\nUsage: /usr/sbin/spmonitor\n"
                                   "\t[-p <port number>]    : specify port number\n")


def test_strtol_and_sscanf_follow_c() -> None:
    assert [strtol(s) for s in ("12", " 12", "-7", "0x1f", "017", "0", "", "1e3", "12 ")] == [
        12, 12, -7, 31, 15, 0, None, None, None]
    assert [scan_int(s) for s in ("5\n", "  -3x\n", "abc\n", "\n", "   \n", "+\n")] == [
        (1, 5), (1, -3), (0, 0), (-1, 0), (-1, 0), (0, 0)]
    # C-locale classes: superscript digits are not digits, NBSP is not a space
    assert [scan_int(s) for s in ("1\xb2\n", "\xb9\n")] == [(1, 1), (0, 0)]
    assert strtol("\xb9") is None and first_word("\xa0x y\n") == "\xa0x"


# ---- menu and dialogues ------------------------------------------------------------------------


def test_the_menu_ends_with_the_prompt_and_unknown_commands_show_it_again(
    tmp_path: Path
) -> None:
    r = Run(_conf(tmp_path))
    assert r.text == MENU and MENU.endswith("\t9. Exit\n\nMonitor> ")
    r.clear().lines("x")
    assert r.text == "\nUnknown commnad\n" + MENU
    r.clear().lines("q")
    assert r.text == "Bye.\n" and r.stopped == 0


def test_end_of_input_in_the_middle_of_a_dialogue_says_bye(tmp_path: Path) -> None:
    r = Run(_conf(tmp_path)).lines("1", "0", None)
    assert r.text.endswith("\td2\tBye.\n") and r.stopped == 0


def test_status_queries_go_to_the_chosen_daemons_and_repeat_each_period(tmp_path: Path) -> None:
    c = _conf(tmp_path)
    r = Run(c, period=5.0).clear().lines("0", "d2", "nobody", "d3", "")
    assert r.text == (
        "\n=============\nActivate Status\n-------------\n\n"
        "\tEnter Proc Name: \tEnter Proc Name: Please! enter a legal proc name, none, or all\n"
        "\tEnter Proc Name: \tEnter Proc Name: Monitor: send status query\n\nMonitor> ")
    assert [(s.ip, s.port) for s in r.sent] == [(IPS[1], 4803), (IPS[2], 4803)]
    q = decode_packet(r.sent[0].data)
    assert isinstance(q, StatusRequest) and len(r.sent[0].data) == 40
    me = c.daemons[0].vid
    assert (q.header.type, q.header.transmiter_id, q.header.proc_id, q.header.seq,
            q.header.conf_hash) == (STATUS_TYPE, me, me, MON_PORT, c.conf_hash)
    r.clear().tick(4.9)
    assert r.sent == []
    r.tick(5.0)
    assert len(r.sent) == 2 and r.text == "Monitor: send status query\n"
    r.clear().lines("0", "none", "")  # stops the queries
    r.tick(100.0)
    assert r.sent == []


def test_partition_dialogue_send_review_cancel(tmp_path: Path) -> None:
    c = _conf(tmp_path, two_segments=True)
    r = Run(c).clear().lines("1", "0", "zero", "0", "70001")
    assert r.text == (
        "\n=============\nDefine Partition\n-------------\n\n"
        "\td1\t\td2\tPlease enter a number\n\td2\t\n\td3\t\n"
        "\n=============\nPartition Map:\n-------------\n\n"
        "\td1\t0\n\td2\t0\n\n\td3\t4465\n\n\nMonitor> ")  # int16 like the C array
    assert r.sent == []
    r.clear().lines("2")
    assert len(r.sent) == 6 and [s.ip for s in r.sent] == [IPS[0]] * 2 + [IPS[1]] * 2 + [IPS[2]] * 2
    p = decode_packet(r.sent[0].data)
    assert isinstance(p, Partition) and p.header.type == PARTITION_TYPE
    assert len(r.sent[0].data) == 40 + 256 and p.components[:4] == (0, 0, 4465, 0)
    r.clear().tick(24.0)
    assert r.sent == []
    r.tick(25.0)  # repeated every 25 s so the daemons (60 s memory) keep it
    assert len(r.sent) == 6
    r.clear().lines("3")
    assert "\td3\t4465\n" in r.text
    r.clear().lines("4")
    lifted = decode_packet(r.sent[0].data)
    assert isinstance(lifted, Partition) and set(lifted.components) == {0}
    r.clear().tick(1000.0)
    assert r.sent == []


def test_terminate_sends_minus_one_only_to_the_chosen_daemons(tmp_path: Path) -> None:
    r = Run(_conf(tmp_path)).lines("1", "7", "7", "8", "2").clear()
    r.lines("8", "d2", "")
    assert r.text == ("\tEnter Proc Name to Terminate: \tEnter Proc Name to Terminate: "
                      "Monitor: Terminating d2\n\nMonitor> ")
    assert [s.ip for s in r.sent] == [IPS[1], IPS[1]]
    p = decode_packet(r.sent[0].data)
    assert isinstance(p, Partition) and p.components[:3] == (7, -1, 8)  # others keep theirs


def test_flow_control_dialogue_blank_keeps_a_value(tmp_path: Path) -> None:
    c = _conf(tmp_path)
    r = Run(c).clear().lines("5", "120", "", "x", "30", "40")
    assert r.text.startswith("\n===================\nDefine Flow Control\n-------------------\n\n"
                             "    Window size: \n\td1 personal window\t\td2 personal window\t"
                             "Please enter a number\n")
    assert "Window size:  120\n\n\td1 personal window\t-1\n\td2 personal window\t30\n" in r.text
    assert "accelerated" not in r.text  # only shown when the file sets AcceleratedRing
    r.clear().lines("6")
    assert len(r.sent) == 6
    fc = decode_packet(r.sent[0].data)
    assert isinstance(fc, FlowControlCmd) and fc.header.type == FC_TYPE
    assert len(r.sent[0].data) == 40 + 512
    assert fc.entries[:4] == ((-1, 0), (30, 0), (40, 0), (120, 0))


def test_flow_control_asks_for_accelerated_windows_when_the_ring_is_accelerated(
    tmp_path: Path
) -> None:
    r = Run(_conf(tmp_path, "AcceleratedRing = true\n")).clear().lines("5", "", "1", "2")
    assert r.text.endswith("\td1 personal window\t\td1 accelerated window\t"
                           "\td2 personal window\t")


def test_reload_sends_the_command_twice_to_everyone(tmp_path: Path) -> None:
    c = _conf(tmp_path)
    r = Run(c).clear().lines("r")
    assert len(r.sent) == 6
    assert all(decode_packet(s.data).header.type == RELOAD_TYPE for s in r.sent)
    assert r.text == (f"Old configuration hash is: {c.conf_hash}\n"
                      "Monitor: send conf reload command\nReload Membership. \n")


def test_reload_rereads_the_file_and_keeps_only_the_window_slot(tmp_path: Path) -> None:
    c = _conf(tmp_path)
    bigger = _conf(tmp_path, "Window = 300\n")
    s = MonitorSession(c, MON_PORT, 10.0, lambda: (bigger, "Conf lines\n"))
    s.start()
    # partition 1/2/3 and send it; Window 100, personal 5/6/7 and send them; then reload
    for line in ("1", "1", "2", "3", "2", "5", "100", "5", "6", "7", "6"):
        s.on_line(0.0, line + "\n")
    out = s.on_line(0.0, "r\n")
    text = "".join(a.text for a in out if isinstance(a, Write))
    assert text.endswith("Monitor: send conf reload command\nConf lines\n"
                         f"New configuration hash is: {bigger.conf_hash}\n"
                         "All Status, Partition, FC, etc commands are reset by configuration "
                         "reload!\nReload Membership. \n")
    assert s.partition[:3] == [0, 0, 0] and s.fc[:3] == [(0, 0)] * 3
    assert s.fc[3] == (100, 0)  # the original clears only the daemons' entries
    assert s.next_timer() is None  # partition resends stop


def test_a_bad_file_on_reload_ends_the_monitor_like_the_original(tmp_path: Path) -> None:
    def broken() -> tuple[SpreadConfig, str]:
        return load_config(str(tmp_path / "missing.conf"), "d1"), ""

    s = MonitorSession(_conf(tmp_path), MON_PORT, 10.0, broken)
    out = s.on_line(0.0, "r\n")
    assert Stop(1) in out
    assert "Exit caused by Alarm!" in "".join(a.text for a in out if isinstance(a, Write))


def test_inside_a_dialogue_the_monitor_is_busy_and_sends_nothing_on_its_own(
    tmp_path: Path
) -> None:
    r = Run(_conf(tmp_path), period=1.0).lines("0", "all", "")
    assert not r.s.busy and r.s.next_timer() == 1.0
    r.lines("1", "0")
    assert r.s.busy  # the shell stops reading the socket and firing timers here
    r.lines("0", "0")
    assert not r.s.busy


# ---- the status screen -----------------------------------------------------------------------


def _reply(c: SpreadConfig, who: int, **kw: int) -> bytes:
    ring = dict.fromkeys(
        ("state", "packet_sent", "packet_recv", "packet_delivered", "retrans", "u_retrans",
         "s_retrans", "b_retrans", "aru", "my_aru", "highest_seq", "token_hurry",
         "token_rounds", "membership_changes", "num_procs", "num_segments", "window",
         "personal_window", "accelerated_ring", "accelerated_window"), 0)
    ring.update(my_id=c.daemons[who].vid, leader_id=c.daemons[0].vid)
    ring.update({k: v for k, v in kw.items() if k in ring})
    extra = {k: kw.get(k, 0) for k in ("sec", "gstate", "message_delivered", "num_sessions",
                                       "num_groups")}
    return status_reply(c.daemons[who].vid, build_status(ring, **extra))


def test_a_status_report_prints_the_originals_screen_with_deltas(tmp_path: Path) -> None:
    c = _conf(tmp_path)
    r = Run(c).clear()
    r._take(r.s.on_datagram(_reply(c, 1, state=1, gstate=1, sec=30, num_procs=3,
                                   num_segments=1, token_rounds=1234, token_hurry=2,
                                   membership_changes=3, packet_sent=10, packet_recv=20,
                                   retrans=1, aru=99, my_aru=99, highest_seq=99,
                                   num_sessions=4, num_groups=5, window=160,
                                   personal_window=20, accelerated_window=15,
                                   message_delivered=50, packet_delivered=60)))
    assert r.text == (
        "\n============================\n"
        "Status at d2 V 5.00. 1 (state 1, gstate 1) after 30 seconds :\n"
        "Membership  :  3  procs in 1 segments, leader is d1, regular protocol\n"
        "rounds   :    1234\ttok_hurry :       2\tmemb change:       3\n"
        "sent pack:      10\trecv pack :      20\tretrans    :       1\n"
        "u retrans:       0\ts retrans :       0\tb retrans  :       0\n"
        "My_aru   :      99\tAru       :      99\tHighest seq:      99\n"
        "Sessions :       4\tGroups    :       5\tWindow     :     160\n"
        "Deliver M:      50\tDeliver Pk:      60\tP/A Window :      20/15\n"
        "Delta Mes:      50\tDelta Pk  :      99\tDelta sec  :      30\n"
        "==================================\n\nMonitor> ")
    r.clear()._take(r.s.on_datagram(_reply(c, 2, sec=40, aru=120, message_delivered=70,
                                           accelerated_ring=1)))
    assert "Delta Mes:      20\tDelta Pk  :      21\tDelta sec  :      10\n" in r.text
    assert "accelerated protocol\n" in r.text


def test_a_report_from_an_unknown_daemon_is_skipped(tmp_path: Path) -> None:
    c = _conf(tmp_path)
    r = Run(c).clear()
    data = bytearray(_reply(c, 1))
    struct.pack_into("<I", data, 40 + 15 * 4, 0x7F000009)  # my_id
    r._take(r.s.on_datagram(bytes(data)))
    assert r.text == ("\n============================\nReport_message: Skiping illegal status \n"
                      "==================================\n")
    r.clear()._take(r.s.on_datagram(b"not a status"))
    assert r.text == ""


@pytest.fixture(scope="module")
def any_config(tmp_path_factory: pytest.TempPathFactory) -> SpreadConfig:
    return _conf(tmp_path_factory.mktemp("any"), "AcceleratedRing = true\n", two_segments=True)


_WORDS = st.sampled_from(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "q", "r", "x", "",
                          "all", "none", "d1", "d2", "d3", "-1", "70000", "  12  ", "\xb2",
                          "\xa0", "é", "1e3", "+", "0x10"])


@given(st.lists(st.one_of(_WORDS, st.text(max_size=90)), max_size=40),
       st.lists(st.binary(max_size=200), max_size=5))
@settings(max_examples=300, deadline=None)
def test_any_typing_and_any_datagrams_never_break_the_monitor(
    any_config: SpreadConfig, lines: list[str], junk: list[bytes]
) -> None:
    s = MonitorSession(any_config, MON_PORT, 10.0, lambda: (any_config, ""))
    s.start()
    now = 0.0
    stopped = False
    for i, line in enumerate(lines):
        now += 1.0
        for a in s.on_line(now, line.replace("\n", " ")[:LINE] + "\n"):
            if isinstance(a, SendTo):
                assert len(a.data) in (40, 40 + 256, 40 + 512)
                assert a.ip in IPS and a.port == 4803
            stopped = stopped or isinstance(a, Stop)
        if stopped:
            return
        if i < len(junk):
            s.on_datagram(junk[i])
        s.on_timer(now)
    assert any(isinstance(a, Stop) for a in s.on_line(now, None))
