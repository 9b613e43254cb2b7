"""The daemon's logger (spread/daemon/log.py): the original's Alarm rules and line formats."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from spread.config import alarm as A
from spread.config.parse import parse_with_log
from spread.daemon.log import (
    ALLOC_WARNING,
    Logger,
    MembershipLog,
    log_begin,
    log_connect,
    log_disconnect,
    log_membership,
    membership_columns,
    membership_id_line,
    wants,
)

SEG = "Spread_Segment 192.0.2.255 { a 192.0.2.1 }\n"


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def logger(clock: float = 0.0) -> tuple[Logger, io.StringIO]:
    buf = io.StringIO()
    return Logger(buf, clock=lambda: clock, follow_log_file=False), buf


def test_printed_when_exit_type_or_print_priority_or_threshold_and_mask() -> None:
    assert wants(A.DEBUG, A.EXIT, 0, A.FATAL)
    assert wants(A.PRINT, A.NETWORK, 0, A.FATAL)
    assert wants(A.INFO, A.CONF_SYS, A.CONF_SYS, A.INFO)
    assert not wants(A.INFO, A.NETWORK, A.CONF_SYS, A.INFO)
    assert not wants(A.INFO, A.CONF_SYS, A.CONF_SYS, A.WARNING)


def test_default_shows_configuration_info_but_not_debug_lines() -> None:
    log, buf = logger()
    log.replay(parse_with_log(SEG + "Window = 100").log)
    assert "Configured daemon 'a'" in buf.getvalue()
    assert "Conf_set_window" not in buf.getvalue()  # DEBUG priority


def test_debug_flags_without_configuration_hide_the_rest_of_the_parse_log() -> None:
    log, buf = logger()
    log.replay(parse_with_log(SEG + "DebugFlags = { PRINT EXIT }\nDangerousMonitor = no").log)
    out = buf.getvalue()
    assert "Successfully configured Segment" in out and "Hash value" not in out
    assert "Set Alarm mask" not in out  # printed with CONF_SYS, which is now off
    assert "Disabling Dangerous Monitor Commands!" in out  # PRINT priority always shows


def test_event_priority_fatal_means_print_threshold() -> None:
    log, buf = logger()
    log.replay(parse_with_log(SEG + "EventPriority = FATAL\nDebugFlags = { ALL }").log)
    assert "Set Alarm mask" not in buf.getvalue()  # a WARNING, below PRINT
    log.alarm(A.CRITICAL, A.CONF_SYS, "critical\n")
    log.print("printed\n")
    assert buf.getvalue().endswith("printed\n")


def test_default_timestamp_prefix(utc) -> None:
    log, buf = logger(clock=86400 * 365 + 3661.5)
    log.apply(A.timestamp_setting(None, False))
    log.alarm(A.INFO, A.CONF_SYS, "x\n")
    assert buf.getvalue() == "01/01/71 01:01:01 x\n"


def test_precise_timestamp_adds_microseconds_after_seconds(utc) -> None:
    log, buf = logger(clock=1.25)
    log.apply(A.timestamp_setting(None, True))
    log.alarm(A.INFO, A.CONF_SYS, "x\n")
    assert buf.getvalue() == "01/01/70 00:00:01.250000 x\n"


def test_precise_timestamp_appends_epoch_seconds_to_formats_without_seconds(utc) -> None:
    setting = A.timestamp_setting("%H:%M", True)
    assert setting == A.SetTimestamp("%H:%M %s", True)
    long_fmt = "%H" + "x" * 36  # 38 characters: " %s" would not fit in 39
    assert A.timestamp_setting(long_fmt, True) == A.SetTimestamp(long_fmt, False)


def test_nodate_pieces_have_no_timestamp(utc) -> None:
    log, buf = logger()
    log.apply(A.timestamp_setting(None, False))
    log.emit(A.Record(A.PRINT, A.CONF_SYS, "\t1"))
    log.emit(A.Record(A.PRINT, A.CONF_SYS, "\t[x]:1", True))
    assert buf.getvalue() == "01/01/70 00:00:00 \t1\t[x]:1"


def test_long_messages_get_the_dynamic_allocation_warning() -> None:
    log, buf = logger()
    log.print("y" * 600 + "\n")
    assert buf.getvalue().startswith(ALLOC_WARNING)
    log2, buf2 = logger()
    log2.print("y" * 100 + "\n")
    assert not buf2.getvalue().startswith("***")


def test_event_log_file_appends_everything_after_it(tmp_path: Path) -> None:
    path = tmp_path / "spread.log"
    path.write_text("old\n")
    buf = io.StringIO()
    log = Logger(buf)
    log.replay(parse_with_log(f"EventLogFile = {path}\n" + SEG).log)
    log.fatal(["bye"])
    assert buf.getvalue() == ""
    text = path.read_text()
    assert text.startswith("old\nConfigured daemon 'a'") and text.endswith(
        "bye\nExit caused by Alarm!\n")
    assert log.to_file


def test_unopenable_log_file_is_reported_and_output_stays(tmp_path: Path) -> None:
    buf = io.StringIO()
    log = Logger(buf)
    log.apply(A.SetOutput(str(tmp_path / "no" / "such" / "dir.log")))
    assert buf.getvalue().startswith(f"failed to open file ({tmp_path}/no/such/dir.log) for "
                                     "stdout. Error: 2\n")
    log.print("still here\n")
    assert buf.getvalue().endswith("still here\n")


def test_membership_id_prints_vids_signed() -> None:
    assert membership_id_line(2301112302, 1795573931) == \
        "Membership id is ( -1993854994, 1795573931)\n"
    assert membership_id_line(17, 5) == "Membership id is ( 17, 5)\n"


def test_membership_log_lines() -> None:
    assert log_begin(1795573931) == "B    1795573931\n"
    cols = membership_columns([10, 20, 30], [30, 20])
    assert cols == [None, 1, 1]  # every member shows the index of the first member found
    assert log_membership(7, 9, 3, cols) == \
        "M             7             9           3 >  --  1  1\n"
    assert log_connect(7, 3, 5, "127.0.0.1", "#u#h") == \
        "C             7           3   5 127.0.0.1        #u#h      \n"
    line = log_disconnect(7, 3, 5, "127.0.0.1", "#u#h", 12)
    assert line == "D             7           3   5 " + "127.0.0.1".ljust(46) + " #u#h       12\n"


def test_membership_log_file_is_named_after_the_daemon(tmp_path: Path) -> None:
    m = MembershipLog("testvm", str(tmp_path))
    m.write(log_begin(1))
    m.write(log_begin(2))
    assert (tmp_path / "testvm").read_text() == log_begin(1) + log_begin(2)
