"""The UDP shell of the ring engine: socket plan per spread.conf, real loopback sockets,
non-blocking sends, and two real engines forming a ring over it (127.0.0.x is all local)."""

from __future__ import annotations

import asyncio
import errno
import socket
from pathlib import Path

import pytest

from spread.config import load_config
from spread.config.model import IpAddress, SpreadConfig
from spread.daemon.transport import (
    Binding,
    SendingEngine,
    UdpTransport,
    make_engine,
    plan_bindings,
)
from spread.ring.api import Channel, RegularConfiguration, SendDatagram
from spread.ring.engine import Engine


def _ip(text: str) -> IpAddress:
    return IpAddress(4, socket.inet_aton(text))


def _conf(tmp_path: Path, text: str, name: str, local: str = "127.0.0.1") -> SpreadConfig:
    f = tmp_path / f"{name}.conf"
    f.write_text(text)
    return load_config(str(f), name, local_addresses=lambda: [_ip(local), _ip("127.0.0.2")])


def _free_port_pair() -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p >= 65000:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, socket.socket(
                socket.AF_INET, socket.SOCK_DGRAM
            ) as b:
                a.bind(("0.0.0.0", p))
                b.bind(("0.0.0.0", p + 1))
        except OSError:
            continue
        return p
    raise RuntimeError("no free UDP port pair")


# ---- the socket plan ([conf] §8.2) ----------------------------------------------------------


def test_implicit_interface_binds_wildcard_on_p_and_p_plus_1(tmp_path: Path) -> None:
    c = _conf(tmp_path, "Spread_Segment 127.0.0.255:4803 {\n d1 127.0.0.1\n d2 127.0.0.2\n}\n",
              "d1")
    plan = plan_bindings(c)
    assert [(b.channel, b.address, b.port, b.reuse) for b in plan] == [
        (Channel.DATA, None, 4803, False),
        (Channel.TOKEN, None, 4804, False),
    ]


def test_multicast_segment_address_is_joined_on_the_data_socket_only(tmp_path: Path) -> None:
    c = _conf(tmp_path, "Spread_Segment 225.1.2.3:4803 {\n d1 127.0.0.1\n d2 127.0.0.2\n}\n",
              "d1")
    data, token = plan_bindings(c)
    assert [g.ip for g in data.joins] == ["225.1.2.3"]
    assert token.joins == ()


def test_explicit_d_interfaces_add_reuseaddr_binds_on_uncovered_segment_addresses(
    tmp_path: Path,
) -> None:
    text = (
        "Spread_Segment 127.0.0.255:4803 {\n"
        " d1 127.0.0.1 {\n  D 127.0.0.1\n  C 127.0.0.1\n }\n"
        " d2 127.0.0.2\n}\n"
    )
    plan = plan_bindings(_conf(tmp_path, text, "d1"))
    got = [(b.channel, b.address.ip if b.address else None, b.port, b.reuse) for b in plan]
    assert got == [
        (Channel.DATA, "127.0.0.1", 4803, False),
        (Channel.TOKEN, "127.0.0.1", 4804, False),
        (Channel.DATA, "127.0.0.255", 4803, True),
    ]


def test_d_interface_on_the_segment_address_covers_it_with_reuseaddr(tmp_path: Path) -> None:
    text = (
        "Spread_Segment 127.0.0.255:4803 {\n"
        " d1 127.0.0.1 {\n  D 127.0.0.255\n  D 127.0.0.1\n }\n"
        " d2 127.0.0.2\n}\n"
    )
    plan = plan_bindings(_conf(tmp_path, text, "d1"))
    got = [(b.channel, b.address.ip if b.address else None, b.reuse) for b in plan]
    assert got == [
        (Channel.DATA, "127.0.0.255", True),
        (Channel.TOKEN, "127.0.0.255", False),
        (Channel.DATA, "127.0.0.1", False),
        (Channel.TOKEN, "127.0.0.1", False),
    ]


def test_lone_daemon_in_its_segment_gets_no_extra_segment_bind(tmp_path: Path) -> None:
    text = (
        "Spread_Segment 127.0.0.255:4803 {\n d1 127.0.0.1 {\n  D 127.0.0.1\n }\n}\n"
        "Spread_Segment 127.0.1.255:4805 {\n d2 127.0.0.2\n}\n"
    )
    plan = plan_bindings(_conf(tmp_path, text, "d1"))
    assert [(b.address.ip if b.address else None, b.port) for b in plan] == [
        ("127.0.0.1", 4803),
        ("127.0.0.1", 4804),
    ]


def test_client_only_interface_opens_no_udp_socket(tmp_path: Path) -> None:
    text = (
        "Spread_Segment 127.0.0.255:4803 {\n"
        " d1 127.0.0.1 {\n  C 127.0.0.1\n  D 127.0.0.1\n }\n d2 127.0.0.2\n}\n"
    )
    plan = plan_bindings(_conf(tmp_path, text, "d1"))
    assert sum(1 for b in plan if b.address and b.address.ip == "127.0.0.1") == 2


# ---- real sockets ---------------------------------------------------------------------------


async def _collect(n: int, box: list, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(box) < n and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.005)


def test_datagrams_arrive_with_channel_and_the_senders_bound_ip() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        port = _free_port_pair()
        got_a: list[tuple[Channel, str, bytes]] = []
        got_b: list[tuple[Channel, str, bytes]] = []
        plan_a = [Binding(Channel.DATA, _ip("127.0.0.1"), port, False),
                  Binding(Channel.TOKEN, _ip("127.0.0.1"), port + 1, False)]
        plan_b = [Binding(Channel.DATA, _ip("127.0.0.2"), port, False),
                  Binding(Channel.TOKEN, _ip("127.0.0.2"), port + 1, False)]
        a = UdpTransport(loop, _ip("127.0.0.1"), plan_a, lambda *x: got_a.append(x[:3]))
        b = UdpTransport(loop, _ip("127.0.0.2"), plan_b, lambda *x: got_b.append(x[:3]))
        a.open()
        b.open()
        try:
            assert a.send_address[0] == "127.0.0.1" and a.send_address[1] not in (port, port + 1)
            assert a.send(SendDatagram("127.0.0.2", port, b"data-1"))
            assert a.send(SendDatagram("127.0.0.2", port + 1, b"token-1"))
            assert b.send(SendDatagram("127.0.0.1", port + 1, b"token-2"))
            await _collect(2, got_b)
            await _collect(1, got_a)
        finally:
            a.close()
            b.close()
        assert sorted(got_b) == [
            (Channel.DATA, "127.0.0.1", b"data-1"),
            (Channel.TOKEN, "127.0.0.1", b"token-1"),
        ]
        assert got_a == [(Channel.TOKEN, "127.0.0.2", b"token-2")]
        assert a.counters["sent"] == 2 and b.counters["received"] == 2

    asyncio.run(main())


def test_a_burst_is_read_completely_and_in_order() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        port = _free_port_pair()
        got: list[bytes] = []
        rx = UdpTransport(loop, _ip("127.0.0.1"),
                          [Binding(Channel.DATA, _ip("127.0.0.1"), port, False)],
                          lambda _c, _s, d, _p: got.append(d))
        tx = UdpTransport(loop, _ip("127.0.0.3"), [], lambda *x: None)
        rx.open()
        tx.open()
        try:
            n = 2 * 64 + 2  # several read batches, still inside the default receive buffer
            for i in range(n):
                tx.send(SendDatagram("127.0.0.1", port, i.to_bytes(4, "big") * 10))
            await _collect(n, got)
        finally:
            rx.close()
            tx.close()
        assert [int.from_bytes(d[:4], "big") for d in got] == list(range(n))

    asyncio.run(main())


class _FullSocket:
    """A send socket whose kernel buffer is full (or out of buffers)."""

    def __init__(self, err: int) -> None:
        self.err = err
        self.calls = 0

    def sendto(self, data: bytes, dest: object) -> int:
        self.calls += 1
        raise OSError(self.err, "full")

    def close(self) -> None:
        pass


@pytest.mark.parametrize("err", [errno.EAGAIN, errno.ENOBUFS])
def test_send_drops_and_counts_instead_of_blocking_when_the_kernel_is_full(err: int) -> None:
    loop = asyncio.new_event_loop()
    try:
        t = UdpTransport(loop, _ip("127.0.0.1"), [], lambda *x: None)
        t.send_sock = _FullSocket(err)  # type: ignore[assignment]
        assert t.send(SendDatagram("127.0.0.2", 4803, b"x")) is False
        assert t.send(SendDatagram("127.0.0.2", 4803, b"y")) is False
        assert t.counters["send_dropped"] == 2 and t.counters["sent"] == 0
        assert t.counters["send_error"] == 0
    finally:
        loop.close()


def test_unreachable_destination_is_counted_as_error_not_raised() -> None:
    loop = asyncio.new_event_loop()
    try:
        t = UdpTransport(loop, _ip("127.0.0.1"), [], lambda *x: None)
        t.send_sock = _FullSocket(errno.ENETUNREACH)  # type: ignore[assignment]
        assert t.send(SendDatagram("192.0.2.9", 4803, b"x")) is False
        assert t.counters["send_error"] == 1 and t.counters["send_dropped"] == 0
    finally:
        loop.close()


def test_second_bind_of_the_same_port_fails_and_closes_what_was_opened() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        port = _free_port_pair()
        plan = [Binding(Channel.DATA, _ip("127.0.0.1"), port, False),
                Binding(Channel.TOKEN, _ip("127.0.0.1"), port + 1, False)]
        first = UdpTransport(loop, _ip("127.0.0.1"), plan, lambda *x: None)
        first.open()
        second = UdpTransport(loop, _ip("127.0.0.1"), plan, lambda *x: None)
        try:
            with pytest.raises(OSError):
                second.open()
            assert second.recv_socks == [] and second.send_sock is None
        finally:
            first.close()

    asyncio.run(main())


def test_handler_exception_does_not_stop_reading_the_batch() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        port = _free_port_pair()
        got: list[bytes] = []

        def handler(_c: Channel, _s: str, d: bytes, _p: int) -> None:
            if d == b"bad":
                raise ValueError("boom")
            got.append(d)

        rx = UdpTransport(loop, _ip("127.0.0.1"),
                          [Binding(Channel.DATA, _ip("127.0.0.1"), port, False)], handler)
        rx.open()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for d in (b"one", b"bad", b"two"):
                    s.sendto(d, ("127.0.0.1", port))
            await _collect(2, got)
        finally:
            rx.close()
        assert got == [b"one", b"two"] and rx.counters["callback_error"] == 1

    asyncio.run(main())


# ---- two real engines over real sockets -----------------------------------------------------

# The original refuses a partial set; LAN values except a short LookupTimeout.
FAST_TIMEOUTS = "".join(
    f"{k}Timeout = {v}\n"
    for k, v in (("Token", 1250), ("Hurry", 500), ("Alive", 250), ("Join", 250), ("Rep", 625),
                 ("Seg", 500), ("Gather", 1250), ("Form", 1250), ("Lookup", 2000))
)


def test_two_engines_form_one_ring_over_loopback_udp(tmp_path: Path) -> None:
    """Unicast mode (one daemon per segment, two ports) so both fit on one host's loopback."""
    p1 = _free_port_pair()
    p2 = _free_port_pair()
    while p2 in (p1, p1 + 1, p1 - 1):
        p2 = _free_port_pair()
    text = (
        FAST_TIMEOUTS +
        f"Spread_Segment 127.0.0.255:{p1} {{\n d1 127.0.0.1\n}}\n"
        f"Spread_Segment 127.0.1.255:{p2} {{\n d2 127.0.0.2\n}}\n"
    )
    confs = {n: _conf(tmp_path, text, n, ip) for n, ip in (("d1", "127.0.0.1"),
                                                             ("d2", "127.0.0.2"))}

    async def main() -> dict[str, list[RegularConfiguration]]:
        loop = asyncio.get_running_loop()
        regs: dict[str, list[RegularConfiguration]] = {"d1": [], "d2": []}
        engines: dict[str, SendingEngine] = {}
        transports: list[UdpTransport] = []
        timers: dict[str, asyncio.TimerHandle] = {}

        def run(name: str, actions: list) -> None:
            regs[name].extend(a for a in actions if isinstance(a, RegularConfiguration))
            when = engines[name].next_timer()
            if name in timers:
                timers[name].cancel()
            if when is not None:
                timers[name] = loop.call_at(
                    when, lambda: run(name, engines[name].on_timer(loop.time())))

        for name, conf in confs.items():
            def cb(ch: Channel, src: str, data: bytes, _port: int, name: str = name) -> None:
                run(name, engines[name].on_datagram(loop.time(), ch, src, data))

            t = UdpTransport.for_config(loop, conf, cb)
            t.open()
            transports.append(t)
            engines[name] = SendingEngine(Engine(conf.to_ring_config()), t)
        try:
            for name in engines:
                run(name, engines[name].start(loop.time()))
            deadline = loop.time() + 20
            while loop.time() < deadline and not all(
                r and len(r[-1].members) == 2 for r in regs.values()
            ):
                await asyncio.sleep(0.05)
        finally:
            for h in timers.values():
                h.cancel()
            for t in transports:
                t.close()
        return regs

    regs = asyncio.run(main())
    vids = sorted(c.my.vid for c in confs.values() if c.my)
    last = {n: r[-1] if r else None for n, r in regs.items()}
    assert last["d1"] is not None and sorted(last["d1"].members) == vids, regs
    assert last["d2"] is not None and last["d1"].ring_id == last["d2"].ring_id, regs


@pytest.mark.parametrize(("line", "expected"), [("", False), ("AcceleratedRing = yes\n", True),
                                                 ("AcceleratedRing = no\n", False)])
def test_engine_runs_the_accelerated_ring_only_when_the_file_says_so(
    tmp_path: Path, line: str, expected: bool
) -> None:
    seg = "Spread_Segment 127.0.0.255:4803 {\n d1 127.0.0.1\n d2 127.0.0.2\n}\n"
    c = _conf(tmp_path, line + seg, "d1")
    loop = asyncio.new_event_loop()
    try:
        engine = make_engine(c, loop)
    finally:
        loop.close()
    assert engine.config.accelerated_ring is expected  # type: ignore[attr-defined]


def test_ipv6_datagrams_arrive_with_the_plain_source_address() -> None:
    me = IpAddress(6, socket.inet_pton(socket.AF_INET6, "::1"))

    async def main() -> list[tuple[Channel, str, bytes]]:
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
            port = probe.getsockname()[1]
        got: list[tuple[Channel, str, bytes]] = []
        rx = UdpTransport(loop, me, [Binding(Channel.TOKEN, me, port, False)],
                          lambda *x: got.append(x[:3]))
        tx = UdpTransport(loop, me, [], lambda *x: None)
        rx.open()
        tx.open()
        try:
            assert tx.send(SendDatagram("::1", port, b"v6"))
            await _collect(1, got)
        finally:
            rx.close()
            tx.close()
        return got

    try:
        got = asyncio.run(main())
    except OSError as e:  # a host without IPv6 loopback
        pytest.skip(f"no IPv6 loopback: {e}")
    assert got == [(Channel.TOKEN, "::1", b"v6")]


def test_socket_lines_and_send_errors_go_to_the_daemons_log_without_flooding_it() -> None:
    async def main() -> list[tuple[int, int, str]]:
        loop = asyncio.get_running_loop()
        port = _free_port_pair()
        lines: list[tuple[int, int, str]] = []
        t = UdpTransport(loop, _ip("127.0.0.1"),
                         [Binding(Channel.DATA, _ip("127.0.0.1"), port, False)],
                         lambda *x: None, alarm=lambda p, k, s: lines.append((p, k, s)))
        t.open()
        real = t.send_sock
        t.send_sock = _FullSocket(errno.ENETUNREACH)  # type: ignore[assignment]
        for _ in range(5):
            t.send(SendDatagram("192.0.2.9", 4803, b"x"))
        t.send_sock = real
        t.close()
        return lines

    lines = asyncio.run(main())
    texts = [s for _, _, s in lines]
    bound = "Net_init: implicit: binding bcast recv channel to [127.0.0.1]"
    assert any(s.startswith(bound) for s in texts)
    assert any(s == "Net_init: creating send channel bound to 127.0.0.1" for s in texts)
    errors = [(p, s) for p, _, s in lines if "DL_send" in s]
    assert len(errors) == 1 and errors[0][0] == 4 and "[192.0.2.9]:4803" in errors[0][1]
