"""spflooder: the original's flags, flow and output lines, against a toy daemon."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from spread.tools import spflooder
from tests.support_client import MiniDaemon


@pytest.fixture
def daemon() -> Iterator[MiniDaemon]:
    d = MiniDaemon("tcp")
    d.start()
    yield d
    d.stop()


def run(args: list[str], socket_dir: str = "/tmp") -> tuple[int, str]:
    out = io.BytesIO()
    rc = spflooder.main(args, out, socket_dir=socket_dir)
    return rc, out.getvalue().decode()


@pytest.mark.parametrize("args", [["-x"], ["-r"], ["-u"], ["-b"], ["extra"]])
def test_bad_options_print_usage_and_exit_one(args: list[str]) -> None:
    assert run(args) == (1, spflooder.HELP)


def test_too_many_members_is_refused() -> None:
    assert run(["-n", "101"]) == (1, "Too many members. The max is 100\n" + spflooder.HELP)


def test_member_flow_control_needs_room_for_the_sender_index() -> None:
    assert run(["-n", "2", "-b", "3"]) == (
        1, "flooder: -n needs messages of at least 4 bytes (-b 4 or more)\n" + spflooder.HELP)


def test_numbers_are_read_as_c_ints() -> None:
    o, _ = spflooder.parse_args(["-m", "99999999999", "-b", "12abc", "-n", "\u0663"])
    assert (o.num_messages, o.num_bytes, o.num_members) == (1215752191, 12, 0)


def test_an_oversized_message_fails_like_the_library_without_a_huge_buffer(
    daemon: MiniDaemon
) -> None:
    rc, text = run(["-m", "1", "-b", "2000000000", "-s", f"{daemon.port}@127.0.0.1"])
    assert rc == 1 and "SP_error: (-17)" in text


def test_unreachable_daemon_prints_sp_error(tmp_path: Path) -> None:
    rc, text = run(["-m", "10"], socket_dir=str(tmp_path))
    assert (rc, text) == (1, "flooder: connecting to 4803\nSP_error: (-2) Could not connect.\n")


def test_single_flooder_sends_reliable_and_reads_its_own_messages(daemon: MiniDaemon) -> None:
    name = f"{daemon.port}@127.0.0.1"
    rc, text = run(["-s", name, "-m", "2500", "-b", "100"])
    assert rc == 0
    assert text == (
        f"flooder: connecting to {name}\n"
        "flooder: starting  multicast of 2500 messages, 100 bytes each.\n"
        "flooder: completed   1000 messages of 100 bytes\n"
        "flooder: completed   2000 messages of 100 bytes\n"
        "flooder: completed multicast of 2500 messages, 100 bytes each.\n"
    )
    assert daemon.saw(("#flooder#fake", "join flooder"))
    # (the tail may be lost: closing with unread input resets the connection, as in C)
    assert daemon.saw(("#flooder#fake", "multicast flooder"))


def test_write_only_does_not_join(daemon: MiniDaemon) -> None:
    name = f"{daemon.port}@127.0.0.1"
    rc, text = run(["-s", name, "-m", "50", "-b", "10", "-wo", "-u", "wo"])
    assert rc == 0
    assert "multicast of 50 messages, 10 bytes each (self discarding).\n" in text
    assert daemon.saw(("#wo#fake", "multicast flooder"))
    assert ("#wo#fake", "join flooder") not in daemon.log


def test_read_only_receives_what_a_writer_floods(daemon: MiniDaemon) -> None:
    name = f"{daemon.port}@127.0.0.1"
    result: list[tuple[int, str]] = []
    reader = threading.Thread(
        target=lambda: result.append(run(["-s", name, "-m", "300", "-ro", "-u", "ro"]))
    )
    reader.start()
    assert daemon.saw(("#ro#fake", "join flooder"))
    assert run(["-s", name, "-m", "300", "-wo", "-u", "wo"])[0] == 0
    reader.join(10)
    assert result == [
        (
            0,
            f"flooder: connecting to {name}\n"
            "flooder: Only receiving messages\n"
            "flooder: completed multicast of 300 messages, 1000 bytes each.\n",
        )
    ]


def test_members_wait_for_each_other_then_flood_with_flow_control(daemon: MiniDaemon) -> None:
    name = f"{daemon.port}@127.0.0.1"
    results: dict[int, tuple[int, str]] = {}

    def flood(i: int) -> None:
        results[i] = run(["-s", name, "-m", "1200", "-b", "50", "-n", "2", "-u", f"m{i}", "-t"])

    threads = [threading.Thread(target=flood, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for i in range(2):
        rc, text = results[i]
        assert rc == 0
        assert text.startswith(f"flooder: connecting to {name} with group membership\n")
        assert (
            "Received REGULAR membership for group flooder with 2 members, where I am member "
            in text
        )
        assert "\t#m0#fake\n\t#m1#fake\n" in text
        assert re.search(
            r"flooder: completed multicast of 1200 messages, 50 bytes each.\n"
            r"flooder: 1200 messages of 50 bytes in \d+\.\d{3} s: \d+ msgs/s, \d+\.\d\d Mbit/s\n$",
            text,
        )
    assert daemon.saw(("#m0#fake", "multicast flooder"))
    assert daemon.saw(("#m1#fake", "multicast flooder"))
