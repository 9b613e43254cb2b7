"""Ring engine throughput: three engines in one process, 1 KB AGREED messages.

    .venv/bin/python bench/engine.py [--messages N] [--accelerated]

Each daemon keeps its send queue topped up; datagrams travel through a FIFO (no latency,
no loss). Prints messages ordered per second of CPU time with all three daemons on one core,
and per daemon: messages per second of the time spent inside the busiest engine (what one
core per daemon would sustain, as in a real ring).
"""

from __future__ import annotations

import argparse
import time
from collections import deque

from spread.ring.api import Channel, Deliver, DeliveryThreshold, SendDatagram
from spread.ring.engine import Engine
from spread.ring.harness import client_message, make_configs
from spread.wire.client import AGREED_MESS


def run(n_messages: int, accelerated: bool, size: int = 1024) -> dict[str, float]:
    cfgs = make_configs(["d1", "d2", "d3"], accelerated_ring=accelerated)
    vids = list(cfgs)
    ip_to_vid = {d.ip: d.vid for d in cfgs[vids[0]].daemons}
    bcast = cfgs[vids[0]].segments[0].addresses[0]
    engines = {v: Engine(cfgs[v], 1_795_573_000.0) for v in vids}
    fifo: deque[tuple[int, Channel, str, bytes]] = deque()
    ip_of = {v: cfgs[v].daemons[i].ip for i, v in enumerate(vids)}
    delivered = dict.fromkeys(vids, 0)
    busy = dict.fromkeys(vids, 0)  # ns spent inside each engine during the measurement
    now = 0.0
    clock = time.perf_counter_ns

    def dispatch(src: int, actions: list) -> None:
        for a in actions:
            if type(a) is SendDatagram:
                ch = Channel.TOKEN if a.port == 4804 else Channel.DATA
                if a.ip == bcast:
                    for d in vids:
                        if d != src:
                            fifo.append((d, ch, ip_of[src], a.payload))
                else:
                    fifo.append((ip_to_vid[a.ip], ch, ip_of[src], a.payload))
            elif type(a) is Deliver:
                delivered[src] += 1

    def run_until_quiet(limit: float) -> None:
        nonlocal now
        while now < limit:
            if fifo:
                dst, ch, src_ip, data = fifo.popleft()
                dispatch(dst, engines[dst].on_datagram(now, ch, src_ip, data))
                continue
            nxt = min(
                (t for e in engines.values() if (t := e.next_timer()) is not None), default=None
            )
            if nxt is None:
                return
            now = max(now, nxt)
            for v, e in engines.items():
                t = e.next_timer()
                if t is not None and t <= now:
                    dispatch(v, e.on_timer(now))

    for i, v in enumerate(vids):
        now = 0.1 * i
        dispatch(v, engines[v].start(now))
    run_until_quiet(4.0)
    for e in engines.values():
        assert e.state_name == "OP", e.state_name
        e.set_delivery_threshold(DeliveryThreshold.ALL)

    msg = client_message(AGREED_MESS, b"x" * (size - 48 - 32))
    per_daemon = n_messages // 3
    submitted = dict.fromkeys(vids, 0)
    target = per_daemon * 3
    t0 = time.process_time()
    w0 = time.perf_counter()
    steps = 0
    while min(delivered.values()) < target:
        for v in vids:  # keep every send queue topped up, as busy clients do
            e = engines[v]
            while submitted[v] < per_daemon and len(e.queue) < 200:
                c0 = clock()
                acts = e.submit(now, msg)
                busy[v] += clock() - c0
                dispatch(v, acts)
                submitted[v] += 1
        if fifo:
            for _ in range(len(fifo)):
                dst, ch, src_ip, data = fifo.popleft()
                c0 = clock()
                acts = engines[dst].on_datagram(now, ch, src_ip, data)
                busy[dst] += clock() - c0
                dispatch(dst, acts)
                steps += 1
        else:
            now += 0.001
            for v, e in engines.items():
                t = e.next_timer()
                if t is not None and t <= now:
                    dispatch(v, e.on_timer(now))
    cpu = time.process_time() - t0
    wall = time.perf_counter() - w0
    return {
        "messages": target,
        "cpu_s": cpu,
        "wall_s": wall,
        "msgs_per_s": target / cpu,
        "deliveries_per_s": sum(delivered.values()) / cpu,
        "per_daemon_core": target / (max(busy.values()) / 1e9),
        "datagrams": steps,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=60_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--accelerated", action="store_true")
    args = ap.parse_args()
    r = run(args.messages, args.accelerated, args.size)
    print(
        f"3 engines, {r['messages']} x {args.size} B AGREED, "
        f"{'accelerated' if args.accelerated else 'original'} ring: "
        f"{r['per_daemon_core']:,.0f} messages/s per core (busiest daemon); "
        f"all three on one core: {r['msgs_per_s']:,.0f} messages/s, "
        f"{r['deliveries_per_s']:,.0f} deliveries/s ({r['cpu_s']:.2f} s CPU, "
        f"{r['datagrams']} datagrams)"
    )


if __name__ == "__main__":
    main()
