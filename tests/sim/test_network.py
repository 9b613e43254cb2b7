"""The simulated network routes, loses, duplicates, delays and partitions datagrams as told,
daemons crash and restart as told, and one seed always replays the same run."""

from __future__ import annotations

import random
from typing import ClassVar

from spread.ring.api import Action, Channel, DeliveryThreshold, RingConfig, SendDatagram
from spread.sim.faults import Crash, Fault, Heal, Links, Partition, Restart
from spread.sim.network import SimSetup, Simulator, ring_configs, vid_of
from spread.sim.runner import SimParams, run_seed
from tests.sim.toys import Flaws, Oracle


class Recorder:
    """Sends what the test scripts at given times and records what arrives."""

    log: ClassVar[list[tuple[float, int, str, Channel, str, bytes]]] = []
    script: ClassVar[dict[int, list[tuple[float, SendDatagram]]]] = {}

    def __init__(self, config: RingConfig, wall_offset: float) -> None:
        self.config = config
        self.wall_offset = wall_offset
        self.name = next(d.name for d in config.daemons if d.vid == config.my_vid)
        self.index = int(self.name[1:])
        self.todo = list(Recorder.script.get(self.index, []))

    def start(self, now: float) -> list[Action]:
        return []

    def on_datagram(self, now: float, channel: Channel, src_ip: str, data: bytes) -> list[Action]:
        Recorder.log.append((now, self.index, self.name, channel, src_ip, data))
        return []

    def next_timer(self) -> float | None:
        return self.todo[0][0] if self.todo else None

    def on_timer(self, now: float) -> list[Action]:
        out: list[Action] = []
        while self.todo and self.todo[0][0] <= now:
            out.append(self.todo.pop(0)[1])
        return out

    def submit(self, now: float, message: bytes) -> list[Action]:
        return []

    def set_delivery_threshold(self, threshold: DeliveryThreshold) -> None:
        pass

    def use_groups_queue(self, on: bool) -> None:
        pass


def run_script(
    script: dict[int, list[tuple[float, SendDatagram]]],
    schedule: tuple[Fault, ...] = (),
    n: int = 3,
    segments: int = 1,
    links: Links | None = None,
) -> tuple[Simulator, list[tuple[float, int, str, Channel, str, bytes]]]:
    Recorder.log = []
    Recorder.script = script
    setup = SimSetup(
        n=n,
        schedule=schedule,
        factory=Recorder,
        segments=segments,
        duration=5.0,
        settle=1.0,
        rate=0.0,
        links=links or Links(jitter=0.0),
        timing=False,
    )
    sim = Simulator(3, setup)
    sim.run()
    return sim, Recorder.log


def test_segment_address_reaches_every_daemon_of_the_segment_including_the_sender() -> None:
    _, log = run_script({0: [(1.0, SendDatagram("10.0.0.255", 4803, b"hello"))]})
    assert sorted(r[1] for r in log) == [0, 1, 2]
    assert {r[3] for r in log} == {Channel.DATA}
    assert {r[4] for r in log} == {"10.0.0.1"}  # the sender's configured address


def test_port_p_plus_one_is_the_token_channel_of_that_daemon_only() -> None:
    _, log = run_script({0: [(1.0, SendDatagram("10.0.0.3", 4804, b"tok"))]})
    assert [(r[1], r[3]) for r in log] == [(2, Channel.TOKEN)]


def test_multicast_stays_inside_its_segment() -> None:
    _, log = run_script({0: [(1.0, SendDatagram("10.0.0.255", 4803, b"x"))]}, n=4, segments=2)
    assert sorted(r[1] for r in log) == [0, 2]


def test_datagram_to_an_address_nobody_has_is_a_violation() -> None:
    sim, _ = run_script({0: [(1.0, SendDatagram("10.9.9.9", 4803, b"x"))]})
    assert [v.check for v in sim.checker.violations if v.check == "routing"] == ["routing"]


def test_partition_drops_across_groups_and_heal_restores() -> None:
    script = {
        0: [
            (1.0, SendDatagram("10.0.0.255", 4803, b"during")),
            (3.0, SendDatagram("10.0.0.255", 4803, b"after")),
        ]
    }
    schedule = (Fault(0.9, Partition(((0, 1), (2,)))), Fault(2.0, Heal()))
    _, log = run_script(script, schedule)
    during = sorted(r[1] for r in log if r[5] == b"during")
    after = sorted(r[1] for r in log if r[5] == b"after")
    assert during == [0, 1]
    assert after == [0, 1, 2]


def test_loss_and_duplication_follow_the_configured_rates() -> None:
    sends = [
        (1.0 + i * 0.001, SendDatagram("10.0.0.2", 4803, bytes([i % 256]))) for i in range(2000)
    ]
    _, log = run_script({0: sends}, links=Links(loss=0.3, dup=0.0, jitter=0.0))
    assert 1200 < len(log) < 1600
    _, log = run_script({0: sends}, links=Links(loss=0.0, dup=0.25, jitter=0.0))
    assert 2350 < len(log) < 2650


def test_jitter_and_reordering_change_arrival_order() -> None:
    sends = [(1.0 + i * 0.0001, SendDatagram("10.0.0.2", 4803, bytes([i]))) for i in range(200)]
    _, log = run_script({0: sends}, links=Links(jitter=0.0))
    assert [r[5][0] for r in log] == list(range(200))
    _, log = run_script({0: sends}, links=Links(jitter=0.002, reorder=0.2))
    got = [r[5][0] for r in log]
    assert sorted(got) == list(range(200)) and got != list(range(200))


def test_crash_stops_a_daemon_and_restart_builds_a_fresh_engine_with_its_clock() -> None:
    built: list[tuple[str, float]] = []

    def factory(config: RingConfig, wall_offset: float) -> Recorder:
        eng = Recorder(config, wall_offset)
        built.append((eng.name, wall_offset))
        return eng

    Recorder.log, Recorder.script = [], {0: [(2.0, SendDatagram("10.0.0.2", 4803, b"x"))]}
    setup = SimSetup(
        n=2,
        schedule=(Fault(1.0, Crash(1)), Fault(3.0, Restart(1, 2.5))),
        factory=factory,
        duration=5.0,
        settle=1.0,
        rate=0.0,
        clock_offsets=0.0,
        timing=False,
    )
    sim = Simulator(1, setup)
    sim.run()
    assert Recorder.log == []  # d1 was down when the datagram arrived
    assert sorted(b[0] for b in built) == ["d0", "d1", "d1"]
    d1_offsets = [off for name, off in built if name == "d1"]
    assert d1_offsets[1] - d1_offsets[0] == 2.5  # the restart's clock offset
    assert sim.daemons[1].incarnation == 1


def test_configs_are_in_segment_order_with_name_hash_vids() -> None:
    cfgs = ring_configs(5, segments=2)
    names = [d.name for d in cfgs[0].daemons]
    assert names == ["d0", "d2", "d4", "d1", "d3"]
    assert [c.my_vid for c in cfgs] == [vid_of(f"d{i}") for i in range(5)]
    assert len({c.my_vid for c in cfgs}) == 5


def test_same_seed_replays_exactly_and_other_seeds_differ() -> None:
    params = SimParams(daemons=4, duration=10.0, settle=6.0, drain=2.0)

    def once(seed: int) -> tuple[str, list[str]]:
        oracle = Oracle()
        res = run_seed(seed, params, factory=oracle.factory, attach=oracle.attach, trace=True)
        return res.digest, res.trace

    assert once(11) == once(11)
    assert once(11)[0] != once(12)[0]


def test_failing_seed_replays_with_the_same_violations() -> None:
    params = SimParams(daemons=4, duration=10.0, settle=6.0, drain=2.0)

    def once() -> list[str]:
        oracle = Oracle(flaws=Flaws(drop=True))
        res = run_seed(3, params, factory=oracle.factory, attach=oracle.attach)
        return [str(v) for v in res.violations]

    first = once()
    assert first and first == once()


def test_schedule_comes_from_the_seed_alone() -> None:
    from spread.sim.faults import FaultProfile, random_schedule

    a = random_schedule(random.Random(9), 5, 20.0, FaultProfile())
    b = random_schedule(random.Random(9), 5, 20.0, FaultProfile())
    assert a == b and a


def test_group_layer_gates_delivery_around_a_groups_exchange() -> None:
    calls: dict[int, list[str]] = {}
    oracle = Oracle()
    base_factory = oracle.factory

    def factory(config: RingConfig, wall_offset: float):  # type: ignore[no-untyped-def]
        eng = base_factory(config, wall_offset)
        log = calls.setdefault(eng.index, [])
        eng.set_delivery_threshold = lambda t: log.append(t.name)  # type: ignore[method-assign]
        eng.use_groups_queue = lambda on: log.append(f"queue={on}")  # type: ignore[method-assign]
        return eng

    params = SimParams(daemons=3, duration=8.0, settle=4.0, drain=2.0, rate=1.0)
    res = run_seed(2, params, factory=factory, attach=oracle.attach, schedule=(), trace=True)
    assert res.violations == []
    for log in calls.values():
        assert log == ["AGREED", "queue=True", "ALL", "queue=False"]
    groups = [line for line in res.trace if "DELIVER GROUPS" in line]
    assert len(groups) == 9  # each of 3 daemons delivers the GROUPS message of all 3


class Spinner(Recorder):
    """Always wants its timer again at once: a livelocked engine."""

    def next_timer(self) -> float | None:
        return 1.0

    def on_timer(self, now: float) -> list[Action]:
        return []


class Thrower(Recorder):
    def submit(self, now: float, message: bytes) -> list[Action]:
        raise RuntimeError("boom")


def test_livelocked_engine_is_reported_not_looped_forever() -> None:
    Recorder.log, Recorder.script = [], {}
    setup = SimSetup(n=2, schedule=(), factory=Spinner, duration=3.0, settle=1.0, rate=0.0)
    sim = Simulator(1, setup)
    sim.run()
    assert [v.check for v in sim.checker.violations] == ["livelock"]


def test_engine_exception_is_a_violation_naming_the_call() -> None:
    Recorder.log, Recorder.script = [], {}
    setup = SimSetup(
        n=2, schedule=(), factory=Thrower, duration=3.0, settle=1.0, drain=0.5, rate=5.0
    )
    sim = Simulator(1, setup)
    sim.run()
    (v,) = sim.checker.violations
    assert v.check == "engine-error" and "submit raised RuntimeError: boom" in v.detail


def test_simulated_message_bodies_round_trip_and_expose_corruption() -> None:
    from spread.sim.clients import TAG_SIZE, MsgId, build_message, parse_message, tag_payload

    for counter in (0, 1, 255, 256, 70_001):
        for size in (TAG_SIZE, TAG_SIZE + 1, 200, TAG_SIZE + 256, 5_000):
            msg_id = MsgId(3, 2, counter)
            body = tag_payload(msg_id, size)
            assert len(body) == size
            # byte i of the filler is (counter + i) mod 256
            assert all(b == (counter + i) & 0xFF for i, b in enumerate(body[TAG_SIZE:]))
            message = build_message(0x2, "#u#d3", ("g",), 7, body)
            assert parse_message(message) == (msg_id, 0x2)
            if size > TAG_SIZE:
                flipped = bytearray(message)
                flipped[-1] ^= 0x01
                assert parse_message(bytes(flipped)) is None
