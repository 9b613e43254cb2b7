"""The daemon's side of spmonitor: screening and the four commands (daemon protocol §10)."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spread.config import alarm as A
from spread.config.load import load_config
from spread.config.model import IpAddress, SpreadConfig
from spread.daemon.monitor import (
    ExitByMonitor,
    MonitorDesk,
    Note,
    ReplyStatus,
    SetFlowControl,
    SetPartition,
    build_status,
    is_control_datagram,
    status_reply,
)
from spread.wire.daemon import (
    FC_TYPE,
    PARTITION_TYPE,
    RELOAD_TYPE,
    STATUS_TYPE,
    FlowControlCmd,
    PacketHeader,
    Partition,
    Reload,
    StatusReply,
    StatusRequest,
    decode_packet,
)

IPS = ("10.0.0.1", "10.0.0.2", "10.0.0.3")


def _conf(tmp_path: Path, me: str = "d2", extra: str = "DangerousMonitor = true\n"
          ) -> SpreadConfig:
    body = "".join(f"\td{i + 1}\t{ip}\n" for i, ip in enumerate(IPS))
    f = tmp_path / "spread.conf"
    f.write_text(f"{extra}Spread_Segment 10.0.0.255:4803 {{\n{body}}}\n")
    mine = IPS[int(me[1:]) - 1]
    return load_config(str(f), me,
                       local_addresses=lambda: [IpAddress(4, socket.inet_aton(mine))])


def _desk(c: SpreadConfig) -> MonitorDesk:
    assert c.my is not None
    return MonitorDesk([(d.vid, d.ip) for d in c.daemons], c.my.vid, c.conf_hash,
                       dangerous=c.dangerous_monitor)


def _header(c: SpreadConfig, t: int, sender: int = 0, *, seq: int = 6543,
            conf_hash: int | None = None) -> PacketHeader:
    vid = c.daemons[sender].vid
    return PacketHeader(t, vid, vid, seq=seq,
                        conf_hash=c.conf_hash if conf_hash is None else conf_hash)


def _kinds(actions: list) -> list[type]:
    return [type(a) for a in actions if type(a) is not Note]


def _notes(actions: list) -> str:
    return "\n".join(a.text for a in actions if type(a) is Note)


def test_a_status_query_is_answered_at_the_monitors_address_and_port(tmp_path: Path) -> None:
    c = _conf(tmp_path)
    desk = _desk(c)
    pkt = StatusRequest(_header(c, STATUS_TYPE, sender=0, seq=16543)).encode()
    assert len(pkt) == 40 and is_control_datagram(pkt)
    acts = desk.on_datagram(IPS[0], 16543, pkt)
    assert [a for a in acts if type(a) is not Note] == [ReplyStatus(IPS[0], 16543)]
    assert "got monitor control msg of type 0x81000080" in _notes(acts)


def test_a_monitor_may_use_the_receiving_daemons_own_vid(tmp_path: Path) -> None:
    c = _conf(tmp_path)
    pkt = StatusRequest(_header(c, STATUS_TYPE, sender=1)).encode()  # d2 asks d2
    assert _kinds(_desk(c).on_datagram(IPS[1], 6543, pkt)) == [ReplyStatus]


@pytest.mark.parametrize(
    ("src", "conf_hash", "sender_vid", "expect"),
    [
        (IPS[0], 12345, None, "different spread configuration"),
        (IPS[2], None, None, "src_addr doesn't match"),
        (IPS[0], None, 0x01020304, "not in my configuration"),
    ],
)
def test_commands_from_strangers_are_dropped_with_the_originals_log_line(
    tmp_path: Path, src: str, conf_hash: int | None, sender_vid: int | None, expect: str
) -> None:
    c = _conf(tmp_path)
    desk = _desk(c)
    h = _header(c, PARTITION_TYPE, conf_hash=conf_hash)
    if sender_vid is not None:
        h = PacketHeader(PARTITION_TYPE, sender_vid, sender_vid, conf_hash=c.conf_hash)
    acts = desk.on_datagram(src, 6543, Partition(h, (-1,) * 128).encode())
    assert _kinds(acts) == [] and expect in _notes(acts)
    assert _notes(acts).endswith(f"; from [{src}]:6543") and _notes(acts).count("from [") == 1
    assert desk.counters["screened"] == 1


def test_garbage_costs_only_that_datagram(tmp_path: Path) -> None:
    desk = _desk(_conf(tmp_path))
    for junk in (b"\x00\x00\x00\x01", b"\x80\x00\x00\x81" + b"\x00" * 50,
                 struct.pack("<I", 0x82000080) + b"\xff" * 36):
        acts = desk.on_datagram(IPS[0], 1, junk)
        assert _kinds(acts) == []
    assert desk.counters["malformed"] == 3


def test_partition_installs_my_component_and_minus_one_means_exit(tmp_path: Path) -> None:
    c = _conf(tmp_path)
    desk = _desk(c)
    comps = (0, 1, 0) + (0,) * 125
    acts = desk.on_datagram(IPS[0], 6543, Partition(_header(c, PARTITION_TYPE), comps).encode())
    assert [a for a in acts if type(a) is not Note] == [SetPartition((0, 1, 0))]
    assert "Got monitor partition message; I'm in component 1" in _notes(acts)
    kill = (0, -1, 0) + (0,) * 125
    acts = desk.on_datagram(IPS[0], 6543, Partition(_header(c, PARTITION_TYPE), kill).encode())
    assert acts[-1] == ExitByMonitor("Net_handle_monitor: Instructed to exit by monitor!")


def test_a_big_endian_monitor_is_understood(tmp_path: Path) -> None:
    c = _conf(tmp_path)
    h = _header(c, PARTITION_TYPE)
    body = struct.pack(">128h", 3, 4, 5, *([0] * 125))
    head = struct.pack(">IIIIiiiIH2shh", PARTITION_TYPE, h.transmiter_id, h.proc_id, 0, 0,
                       6543, 0, c.conf_hash, len(body), b"\0\0", 0, 0)
    acts = _desk(c).on_datagram(IPS[0], 6543, head + body)
    assert SetPartition((3, 4, 5)) in acts
    assert "got monitor control msg of type 0x02000000 from" in _notes(acts)  # no marker


def test_safe_mode_refuses_partition_kill_and_flow_control_but_answers_status(
    tmp_path: Path
) -> None:
    c = _conf(tmp_path, extra="")
    assert not c.dangerous_monitor
    desk = _desk(c)
    kill = Partition(_header(c, PARTITION_TYPE), (-1,) * 128).encode()
    acts = desk.on_datagram(IPS[0], 7000, kill)
    assert _kinds(acts) == []
    assert ("Net_handle_monitor: Request to set partition or kill daemons from "
            f"[{IPS[0]}]:7000 denied. Daemon in safe mode!") in _notes(acts)
    fc = FlowControlCmd(_header(c, FC_TYPE), ((5, 5),) * 128).encode()
    acts = desk.on_datagram(IPS[0], 7000, fc)
    assert _kinds(acts) == [] and "denied. Monitor in safe mode" in _notes(acts)
    status = StatusRequest(_header(c, STATUS_TYPE)).encode()
    assert _kinds(desk.on_datagram(IPS[0], 7000, status)) == [ReplyStatus]


def test_a_partition_shorter_than_the_configuration_is_ignored(tmp_path: Path) -> None:
    c = _conf(tmp_path)
    acts = _desk(c).on_datagram(IPS[0], 1, Partition(_header(c, PARTITION_TYPE), (1, 1)).encode())
    assert _kinds(acts) == [] and "msg too small! Ignoring!" in _notes(acts)


def test_flow_control_takes_the_window_after_the_last_daemon_and_my_own_entry(
    tmp_path: Path
) -> None:
    c = _conf(tmp_path)  # I am d2, config index 1; Window sits at index 3 (= N)
    entries = [(-1, -1)] * 128
    entries[1] = (33, 44)
    entries[3] = (222, 0)
    fc = FlowControlCmd(_header(c, FC_TYPE), tuple(entries)).encode()
    assert len(fc) == 40 + 512
    assert SetFlowControl(222, 33, 44) in _desk(c).on_datagram(IPS[0], 1, fc)
    short = FlowControlCmd(_header(c, FC_TYPE), tuple(entries[:3])).encode()
    acts = _desk(c).on_datagram(IPS[0], 1, short)
    assert _kinds(acts) == [] and "4 needed" in _notes(acts)


def test_reload_is_refused_with_a_clear_line(tmp_path: Path) -> None:
    c = _conf(tmp_path)
    acts = _desk(c).on_datagram(IPS[0], 1, Reload(_header(c, RELOAD_TYPE)).encode())
    assert _kinds(acts) == []
    assert "cannot reload its configuration while running" in _notes(acts)
    assert all(a.priority == A.PRINT for a in acts if type(a) is Note and "reload" in a.text)


def test_the_status_reply_has_the_originals_header_and_wraps_counters_like_c() -> None:
    ring = dict.fromkeys(
        ("state", "packet_sent", "packet_recv", "packet_delivered", "retrans", "u_retrans",
         "s_retrans", "b_retrans", "aru", "my_aru", "highest_seq", "token_hurry",
         "token_rounds", "membership_changes", "num_procs", "num_segments", "window",
         "personal_window", "accelerated_ring", "accelerated_window"), 0)
    ring.update(my_id=0xC0000201, leader_id=0xC0000202, packet_sent=(1 << 31) + 5,
                membership_changes=70000)
    s = build_status(ring, sec=9, gstate=1, message_delivered=3, num_sessions=2, num_groups=1)
    data = status_reply(0xC0000201, s)
    assert len(data) == 136
    t, tx, proc = struct.unpack_from("<III", data)
    conf_hash, data_len = struct.unpack_from("<II", data, 28)
    assert (t, tx, proc, conf_hash, data_len) == (0x81000080, 0, 0xC0000201, 0, 96)
    back = decode_packet(data)
    assert isinstance(back, StatusReply)
    assert back.status.packet_sent == -(1 << 31) + 5  # int32 wraps
    assert back.status.membership_changes == 70000 - 65536  # int16 wraps
    assert back.status.my_id == 0xC0000201 and back.status.sec == 9
    assert (back.status.major_version, back.status.minor_version,
            back.status.patch_version) == (5, 0, 1)


def test_only_control_types_are_routed_to_the_desk() -> None:
    assert not is_control_datagram(struct.pack("<I", 0x80000088) + b"\0" * 36)  # AGREED
    assert is_control_datagram(struct.pack(">I", 0x08000000) + b"\0" * 36)  # big-endian RELOAD
    assert not is_control_datagram(b"\x80")


@pytest.fixture(scope="module")
def fuzz_config(tmp_path_factory: pytest.TempPathFactory) -> SpreadConfig:
    return _conf(tmp_path_factory.mktemp("fuzz"))


@given(st.binary(max_size=600), st.sampled_from(IPS), st.integers(0, 65535))
@settings(max_examples=300, deadline=None)
def test_any_bytes_cost_only_that_datagram(
    fuzz_config: SpreadConfig, data: bytes, src: str, port: int
) -> None:
    acts = _desk(fuzz_config).on_datagram(src, port, data)
    assert all(type(a) in (Note, ReplyStatus, SetPartition, SetFlowControl, ExitByMonitor)
               for a in acts)


@given(st.sampled_from([STATUS_TYPE, PARTITION_TYPE, FC_TYPE, RELOAD_TYPE]),
       st.binary(max_size=1400), st.integers(0, 2), st.booleans())
@settings(max_examples=300, deadline=None)
def test_well_addressed_commands_with_any_body_never_break_the_desk(
    fuzz_config: SpreadConfig, t: int, body: bytes, sender: int, little: bool
) -> None:
    h = _header(fuzz_config, t, sender)
    head = struct.pack("<IIIIiiiIH2shh" if little else ">IIIIiiiIH2shh",
                       t | (0x80000080 if little else 0), h.transmiter_id, h.proc_id, 0, 0,
                       h.seq, 0, fuzz_config.conf_hash, len(body), b"\0\0", 0, 0)
    acts = _desk(fuzz_config).on_datagram(IPS[sender], 1, head + body)
    for a in acts:
        if type(a) is SetPartition:
            assert len(a.components) == 3
        if type(a) is ReplyStatus:
            assert a.ip == IPS[sender]
