"""The Spread 5.0.1 ring engine: token ordering and EVS membership, sans-IO.

Owns every protocol variable of one daemon (the original's protocol.c + membership.c state)
and turns datagrams, timer expiries and submitted messages into actions (api.py). It must not
know sockets, clocks or the group layer's internals: time comes in as `now`, wall-clock
seconds are `now + wall_offset`, and deliveries go out as `Deliver` actions.

Byte layouts are `spread.wire.daemon`; fragmentation and packing are `spread.wire.packing`.
Where the original aborts on impossible input, this engine drops the datagram and counts it
(`Engine.counters`). Design notes and state tables: docs/ring-engine.md.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, deque

from spread.ring.api import (
    Action,
    Channel,
    Deliver,
    DeliveryThreshold,
    Log,
    RegularConfiguration,
    RingConfig,
    RingId,
    SendDatagram,
    TransitionalConfiguration,
)
from spread.ring.fastpath import peek_data_packet
from spread.ring.membership import (
    EVS,
    FORM,
    GATHER,
    MAX_FORM_REPS,
    OP,
    REPRESENTED,
    SEG,
    STATE_NAMES,
    form2_id_slot,
    merge_ring_info,
    new_ring_info,
)
from spread.ring.timers import Timers
from spread.ring.topology import (
    POTENTIAL_REP,
    RING_REP,
    SEG_REP,
    Rep,
    Topology,
    insert_member,
    insert_rep,
)
from spread.wire.client import GROUPS_MESS
from spread.wire.daemon import (
    CONTROL_TYPE,
    FORM1_TYPE,
    FORM2_TYPE,
    HURRY_TYPE,
    JOIN_TYPE,
    REFER_TYPE,
    RELIABLE_TYPE,
    ROUTED_TYPE,
    SAFE_TYPE,
    Alive,
    DataPacket,
    Form1,
    Form2,
    Hurry,
    Join,
    MembersInfo,
    PacketError,
    PacketHeader,
    Refer,
    RepInfo,
    RepsInfo,
    RingInfo,
    RtrRequest,
    Token,
    TokenHeader,
    arq_of,
    decode,
    rebroadcast_routed,
    retrans_of,
    with_arq,
    with_retrans,
)
from spread.wire.packing import Packer, Reassembler, message_service

_DATA = Channel.DATA
NO_VID = 0xFFFFFFFF  # the original's -1 as an unsigned VID
INT32_MAX = 0x7FFFFFFF
MAX_SEQ_GAP = 1600
MAX_WRAP_SEQ = 1 << 30
MAX_EVS_ROUNDS = 500
PACKET_SLOTS = 8192  # the original's Packets[] ring; a seq further ahead than this is hostile
TOKEN_BODY = 65467
FORM_SEQ_STEP = 3333
PARTITION_TIMEOUT = 60.0  # a monitor partition clears itself this long after the last one
NO_RING = RingId(0, 0)

# Log priorities (spread.conf numbering)
INFO, WARNING, ERROR, PRINT = 2, 3, 4, 6

# exist values of a packet slot, as the original's Packets[].exist
RECEIVED, DELIVERED, HOLE = 1, 2, 3


class _Slot:
    """One Packets[] entry. `raw` is the datagram as received (or as I sent it); the decoded
    packet is made only when needed (retransmission of a multi-fragment packet, delivery)."""

    __slots__ = ("_pkt", "exist", "findex", "origin", "ptype", "raw", "single")

    def __init__(
        self,
        exist: int,
        ptype: int = 0,
        origin: int = 0,
        findex: int = 0,
        single: bool = False,
        raw: bytes | None = None,
        pkt: DataPacket | None = None,
    ) -> None:
        self.exist = exist
        self.ptype = ptype  # packet type bits, marker and ROUTED removed
        self.origin = origin  # header.proc_id
        self.findex = findex  # first fragment's index
        self.single = single  # the body is one whole message (one fragment, index -1)
        self.raw = raw
        self._pkt = pkt

    @property
    def pkt(self) -> DataPacket | None:
        if self._pkt is None and self.raw is not None:
            p = decode(self.raw, Channel.DATA)
            if isinstance(p, DataPacket):
                self._pkt = p
        return self._pkt


def _slot_of(pkt: DataPacket, raw: bytes | None) -> _Slot:
    h = pkt.header
    f = pkt.fragments
    single = len(f) == 1 and f[0].index == -1
    return _Slot(RECEIVED, h.type, h.proc_id, f[0].index, single, raw, pkt)


def _signed(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


class Engine:
    """One daemon's ring protocol. See api.RingEngine for the calling contract."""

    def __init__(self, config: RingConfig, wall_offset: float = 0.0) -> None:
        self.config = config
        self.topo = topo = Topology(config)
        self.me = me = config.my_vid
        self.wall_offset = wall_offset
        self.to = config.timeouts
        self._token_us = round(self.to.token * 1_000_000)
        self._hurry_us = round(self.to.hurry * 1_000_000)
        self.conf_hash = config.conf_hash & 0xFFFFFFFF
        seg = config.segments[topo.my_seg]
        self._my_seg_addrs = seg.addresses
        self._my_port = seg.port
        self._bcast_needed = len(topo.seg_procs[topo.my_seg]) >= 2
        self.window = config.window
        self.personal_window = config.personal_window
        self.accelerated = config.accelerated_ring
        # The hurried token goes out twice from a segment's last daemon on a wide-area ring.
        self.wide_area = (
            config.wide_area_network
            if config.wide_area_network is not None
            else self.topo.num_segments > 1
        )
        self.accelerated_window = config.accelerated_window
        self._ip_of = topo.ip_of
        self.counters: Counter[str] = Counter()  # drops and rare events, by reason
        # hot-path tallies (plain ints: the per-packet cost matters), see stats()
        self.n_received = 0
        self.n_sent = 0
        self.n_packets_recv = 0
        self.n_packets_sent = 0
        self.n_packets_delivered = 0
        self.n_messages_delivered = 0

        # -- membership state (membership.c) --
        self.state = OP
        self.membership: tuple[int, ...] = (me,)
        self.membership_id = RingId(me, -1)
        self._my_ring = (me, -1)  # membership_id as the fast path compares it
        self.reg_membership: tuple[int, ...] = (me,)
        self.future_membership: tuple[int, ...] = (me,)
        self.future_membership_id = RingId(me, -1)
        self.net_membership: tuple[int, ...] = (me,)  # routing and token successor
        self.token_alive = False
        self.f_members: list[int] = [me]
        self.f_reps: list[Rep] = []
        self.f_rep_index = 0
        self.potential_reps: list[Rep] = []
        self.my_seg_rep = NO_VID
        self.commit_ids: list[int] = [me]
        self.commit_trans = 1
        self.future_commit_ids: list[int] = [me]
        self.future_commit_trans = 1
        self.last_time_used = -1
        self.form1_memb_id: RingId | None = None
        self.f_trans_memb_time = 0
        self.trans_memb_id = RingId(me, -1)
        self.foreign_found = False
        self.just_installed = False

        # -- ordering state (protocol.c) --
        self.packets: dict[int, _Slot] = {}
        self.highest_seq = 0
        self.my_aru = 0
        self.aru = 0
        self.last_delivered = 0
        self.last_discarded = 0
        self.last_seq = 0
        self.last_token = TokenHeader(0, 0, 0, NO_RING)
        self.token_rounds = 0
        self.received_token_rounds = 0
        self.token_counter = 0
        self.last_num_sent = 0
        self.last_num_retrans = 0
        self.threshold = DeliveryThreshold.BLOCK
        self.queue = Packer()
        self.reassembler = Reassembler()
        self._accel_queue: list[DataPacket] = []

        # -- driver --
        self._now = 0.0
        self._now_us = 0
        self._out: list[Action] = []
        self._loop: deque[Form1 | Form2 | Token] = deque()
        self.timers = t = Timers()
        t.register("token_loss", self._token_loss)
        t.register("hurry", self._token_hurry)
        t.register("alive", lambda: self._scast_alive(periodic=True))
        t.register("seg", self._gather_or_represented)
        t.register("rep", self._shift_to_seg)
        t.register("join", self._send_join)
        t.register("gather", self._form_or_fail)
        t.register("lookup", self._lookup_new_members)
        t.register("partition", self._clear_partition)
        self._component: dict[int, int] | None = None
        t.register("deliver_agreed", self._deliver_agreed)
        t.register("deliver_reliable", lambda: self._deliver_reliable(1, self.highest_seq))

    # ================================================================ public API

    def start(self, now: float) -> list[Action]:
        self._begin(now)
        self._token_loss()
        return self._finish()

    def on_datagram(self, now: float, channel: Channel, src_ip: str, data: bytes) -> list[Action]:
        self._now = now
        self._now_us = now_us = round(now * 1_000_000)
        out: list[Action] = []
        self._out = out
        self._receive(channel, src_ip, data)
        if self._loop or self.timers._earliest <= now_us:
            return self._finish()
        return out

    def on_timer(self, now: float) -> list[Action]:
        self._begin(now)
        return self._finish()

    def next_timer(self) -> float | None:
        if self._loop:
            return self._now
        us = self.timers.next_deadline_us()
        return None if us is None else us / 1_000_000

    def submit(self, now: float, message: bytes) -> list[Action]:
        self._begin(now)
        queue = self.queue
        before = len(queue)
        try:
            groups = bool(message_service(message) & GROUPS_MESS) if len(message) >= 4 else False
            queue.submit(message, groups=groups)
        except ValueError as exc:
            self.counters["submit_refused"] += 1
            self._log(ERROR, f"submit: message refused: {exc}")
            return self._finish()
        if before == 0 and len(queue) == 1:
            self._new_message_hurry()
        return self._finish()

    def set_delivery_threshold(self, threshold: DeliveryThreshold) -> None:
        old = self.threshold
        self.threshold = threshold
        # Lowering the gate delivers what waited, on the next call (the original queues events).
        if threshold > old:
            if threshold >= DeliveryThreshold.AGREED:
                self.timers.queue("deliver_agreed", self._now_us, 0)
            if threshold >= DeliveryThreshold.ALL:
                self.timers.queue("deliver_reliable", self._now_us, 0)
        elif threshold < old:
            if threshold < DeliveryThreshold.ALL:
                self.timers.dequeue("deliver_reliable")
            if threshold < DeliveryThreshold.AGREED:
                self.timers.dequeue("deliver_agreed")

    def use_groups_queue(self, on: bool) -> None:
        self.queue.use_groups_queue(on)

    # ---- introspection for tests, the simulator and STATUS ----

    def stats(self) -> dict[str, int]:
        """Every counter: datagrams in/out, packets, deliveries, and drops by reason."""
        out = dict(self.counters)
        out.update(
            received=self.n_received,
            sent=self.n_sent,
            packets_recv=self.n_packets_recv,
            packets_sent=self.n_packets_sent,
            packets_delivered=self.n_packets_delivered,
            messages_delivered=self.n_messages_delivered,
        )
        return out

    def status(self) -> dict[str, int]:
        """The ring part of a STATUS reply (wire.daemon.Status field names); the daemon adds
        sec, gstate, message_delivered, num_sessions and num_groups."""
        c = self.counters
        return {
            "state": self.state,
            "packet_sent": self.n_packets_sent,
            "packet_recv": self.n_packets_recv,
            "packet_delivered": self.n_packets_delivered,
            "retrans": c["retrans"],
            "u_retrans": c["u_retrans"],
            "s_retrans": c["s_retrans"],
            "b_retrans": c["b_retrans"],
            "aru": self.aru,
            "my_aru": self.my_aru,
            "highest_seq": self.highest_seq,
            "token_hurry": c["token_hurry"],
            "token_rounds": self.token_rounds,
            "my_id": self.me,
            "leader_id": self.membership_id.proc_id,
            "membership_changes": c["memberships"],
            "num_procs": len(self.membership),
            "num_segments": len({self.topo.seg_of[v] for v in self.membership}),
            "window": self.window,
            "personal_window": self.personal_window,
            "accelerated_ring": int(self.accelerated),
            "accelerated_window": self.accelerated_window,
        }

    def set_flow_control(
        self, window: int = -1, personal_window: int = -1, accelerated_window: int = -1
    ) -> None:
        """spmonitor's FC command: -1 keeps a value (the daemon checks DangerousMonitor)."""
        if window != -1:
            self.window = window
        if personal_window != -1:
            self.personal_window = personal_window
        if accelerated_window != -1:
            self.accelerated_window = accelerated_window

    def set_partition(self, now: float, components: tuple[int, ...] | None) -> None:
        """spmonitor's PARTITION: `components[i]` for the i-th configured daemon; datagrams
        from daemons in another component are dropped until 60 s after the last command
        (or `None` clears it). component[me] == -1 means "exit": the daemon's business."""
        self._now_us = round(now * 1_000_000)
        if components is None:
            self._component = None
            self.timers.dequeue("partition")
            return
        comp = {}
        for d, c in zip(self.config.daemons, components):
            comp[d.vid] = c
        self._component = comp
        self.timers.queue("partition", self._now_us, PARTITION_TIMEOUT)

    def _clear_partition(self) -> None:
        self._component = None

    @property
    def leader(self) -> int:
        return self._active()[0]

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]

    # ================================================================ driver

    def _begin(self, now: float) -> None:
        self._now = now
        self._now_us = round(now * 1_000_000)
        self._out = []

    def _finish(self) -> list[Action]:
        timers = self.timers
        for _ in range(100_000):  # bounded: a singleton ring hands itself the token
            if self._loop:
                self._handle_token_packet(self._loop.popleft())
                continue
            handler = timers.pop_due(self._now_us)
            if handler is None:
                break
            handler()
        out = self._out
        self._out = []
        return out

    def _wall(self) -> int:
        return int(self._now + self.wall_offset)

    def _log(self, priority: int, text: str) -> None:
        self._out.append(Log(priority, text))

    def _drop(self, reason: str) -> None:
        self.counters["dropped"] += 1
        self.counters["dropped_" + reason] += 1

    def _active(self) -> tuple[int, ...]:
        return self.future_membership if self.state == EVS else self.membership

    def _active_id(self) -> RingId:
        return self.future_membership_id if self.state == EVS else self.membership_id

    def _is_leader(self) -> bool:
        return self._active()[0] == self.me

    # ================================================================ network layer

    def _pkt_header(self, ptype: int, **kw: int | RingId) -> PacketHeader:
        return PacketHeader(ptype, self.me, self.me, conf_hash=self.conf_hash, **kw)  # type: ignore[arg-type]

    def _emit(self, ip: str, port: int, payload: bytes) -> None:
        self.n_sent += 1
        self._out.append(SendDatagram(ip, port, payload))

    def _port_of(self, vid: int) -> int:
        return self.config.segments[self.topo.seg_of[vid]].port

    def _send_bcast_local(self, payload: bytes) -> None:
        if self._bcast_needed:
            for addr in self._my_seg_addrs:
                self._emit(addr, self._my_port, payload)

    def _bcast(self, pkt: DataPacket) -> None:
        """Net_bcast: a ROUTED copy to each other live segment's head, then my segment."""
        topo = self.topo
        if topo.num_segments > 1:
            routed = None
            for seg in range(topo.num_segments):
                if seg == topo.my_seg:
                    continue
                head = topo.seg_leader(self.net_membership, seg)
                if head is None:
                    continue
                if routed is None:
                    h = pkt.header
                    routed = DataPacket(
                        dataclasses.replace(h, type=h.type | ROUTED_TYPE), pkt.fragments
                    ).encode()
                self._emit(topo.ip_of[head], self._port_of(head), routed)
        if self._bcast_needed:
            self._send_bcast_local(pkt.encode())

    def _scast(self, seg: int, payload_of: DataPacket | Alive | Join) -> None:
        if seg == self.topo.my_seg:
            self._send_bcast_local(payload_of.encode())
            return
        head = self.topo.seg_leader(self.net_membership, seg)
        if head is None:
            return
        h = payload_of.header
        routed_h = dataclasses.replace(h, type=h.type | ROUTED_TYPE)
        routed = dataclasses.replace(payload_of, header=routed_h)
        self._emit(self.topo.ip_of[head], self._port_of(head), routed.encode())

    def _ucast(self, vid: int, payload: bytes) -> None:
        if vid == self.me or not self.topo.known(vid):
            return  # the original sends to itself and drops its own copy on receipt
        self._emit(self.topo.ip_of[vid], self._port_of(vid), payload)

    def _send_token_to(self, vid: int, tok: Form1 | Form2 | Token) -> None:
        """Net_ucast_token: my own tokens stay inside (they never reach the wire)."""
        if vid == self.me:
            self._loop.append(tok)
            return
        if not self.topo.known(vid):
            return
        self._emit(self.topo.ip_of[vid], self._port_of(vid) + 1, tok.encode())

    def _successor(self) -> int:
        return self.topo.successor(self.net_membership, self.me)

    def _send_token(self, tok: Form1 | Form2 | Token, copies: int = 1) -> None:
        succ = self._successor()
        for _ in range(copies):
            self._send_token_to(succ, tok)

    # ================================================================ receive path

    def _receive(self, channel: Channel, src_ip: str, data: bytes) -> None:
        self.n_received += 1
        if channel is _DATA:
            head = peek_data_packet(data)
            if (
                head is not None
                and head[2] == self.conf_hash
                and head[6] == self._my_ring
                and self._ip_of.get(head[1]) == src_ip
                and head[1] != self.me
                and self._component is None
            ):
                findex = head[5]
                self._store_data(
                    head[4], _Slot(RECEIVED, head[0], head[3], findex, findex == -1, data)
                )
                return
        try:
            pkt = decode(data, channel)
        except PacketError:
            self._drop("malformed")
            return
        h = pkt.header
        if h.conf_hash != self.conf_hash:
            self._drop("conf_hash")
            return
        tx = h.transmiter_id
        ip = self.topo.ip_of.get(tx)
        if ip is None:
            self._drop("unknown_sender")
            return
        if ip != src_ip:
            self._drop("source_ip")
            return
        comp = self._component
        if comp is not None and comp.get(tx) != comp.get(self.me) and not (h.type & CONTROL_TYPE):
            self._drop("partitioned")
            return
        if channel == Channel.TOKEN:
            if tx == self.me:
                self._drop("own")
                return
            self._handle_token_packet(pkt)  # type: ignore[arg-type]
            return
        t = h.type
        if t & CONTROL_TYPE:
            self._drop("control")  # monitor commands are the daemon shell's business
            return
        if tx == self.me:
            self._drop("own")
            return
        if t & ROUTED_TYPE:
            if self._bcast_needed:
                self._send_bcast_local(rebroadcast_routed(data, self.me))
            pkt = dataclasses.replace(
                pkt,
                header=dataclasses.replace(h, type=t & ~ROUTED_TYPE),  # type: ignore[arg-type]
            )
            t &= ~ROUTED_TYPE
        if not isinstance(pkt, DataPacket) and not self.topo.known(pkt.header.proc_id):
            self._drop("unknown_origin")  # the original would abort on it later
            return
        if isinstance(pkt, Alive):
            self._handle_alive(pkt.header.proc_id)
        elif isinstance(pkt, Join):
            self._handle_join(pkt)
        elif isinstance(pkt, Refer):
            self._handle_refer(pkt)
        elif isinstance(pkt, Hurry):
            self._handle_hurry(pkt.header.proc_id)
        elif isinstance(pkt, DataPacket):
            if pkt.header.memb_id != self.membership_id:
                self._handle_foreign(pkt)
            else:
                self._handle_data(pkt)
        else:
            self._drop("unexpected")

    def _handle_token_packet(self, tok: Form1 | Form2 | Token) -> None:
        if isinstance(tok, Form1):
            self._handle_form1(tok)
        elif isinstance(tok, Form2):
            if self.state == FORM:
                self._read_form2(tok)
            else:
                self.counters["swallowed_form2"] += 1
        else:
            self._handle_token(tok)

    # ================================================================ ordering: data packets

    def _handle_data(self, pkt: DataPacket) -> None:
        """A data packet of my ring that needed a full decode (fragments, big-endian...)."""
        if not pkt.fragments or not pkt.header.type & 0x1F:
            self._drop("malformed")
            return
        self._store_data(pkt.header.seq, _slot_of(pkt, None))

    def _store_data(self, seq: int, slot: _Slot) -> None:
        if self.token_alive:
            now_us = self._now_us
            self.timers.queue_us("token_loss", now_us + self._token_us)
            if self._is_leader():
                self.timers.queue_us("hurry", now_us + self._hurry_us)
        if seq <= self.last_discarded:
            self.counters["duplicate"] += 1
            return
        if seq - self.last_discarded >= PACKET_SLOTS or seq > self._seq_bound():
            self._drop("seq_out_of_window")
            return
        if seq in self.packets:
            self.counters["duplicate"] += 1
            return
        if slot.origin not in self._ip_of:
            self._drop("unknown_origin")
            return
        self.packets[seq] = slot
        self.n_packets_recv += 1
        if seq > self.highest_seq:
            self.highest_seq = seq
        if seq == self.my_aru + 1:
            self._advance_my_aru()
            self._deliver_agreed()
        else:
            self._deliver_reliable(seq, 1)

    def _seq_bound(self) -> int:
        """The highest seq a correct ring can show me now. Senders stop at Aru + MAX_SEQ_GAP
        and add at most a window per visit; Aru never runs more than a round ahead of my
        My_aru. Anything beyond is forged or corrupt: accepting it would leave more than
        MAX_SEQ_GAP holes, and FORM2 (which refuses that many) could never form a ring."""
        return self.my_aru + MAX_SEQ_GAP + 2 * (self.window + self.personal_window)

    def _advance_my_aru(self) -> None:
        packets = self.packets
        i = self.my_aru + 1
        hi = self.highest_seq
        while i <= hi and i in packets:
            i += 1
        self.my_aru = i - 1

    # ================================================================ ordering: the token

    def _handle_token(self, tok: Token) -> None:
        h = tok.header
        if not self.token_alive:
            self.counters["token_veto"] += 1
            return
        if h.memb_id != self._active_id():
            self.counters["token_wrong_ring"] += 1
            return
        active = self._active()
        if h.transmiter_id != self.topo.predecessor(active, self.me):
            self.counters["token_wrong_sender"] += 1
            return
        if self.state != EVS and h.seq > MAX_WRAP_SEQ:
            self._log(
                WARNING,
                f"Prot_handle_token: seq ({h.seq}) rollover; swallowing token to "
                "trigger membership",
            )
            return
        if h.seq - self.last_discarded >= PACKET_SLOTS or h.seq > self._seq_bound():
            self._drop("seq_out_of_window")  # no sane ring is that far ahead of me
            return
        last = self.last_token
        arq, last_arq = arq_of(h.type), arq_of(last.type)
        if active[0] == self.me:
            if arq != last_arq:
                self.counters["token_repeated"] += 1
                return
            if self.just_installed:
                self.just_installed = False
                last = self.last_token = dataclasses.replace(last, aru=0)
        else:
            if arq == last_arq:
                r = retrans_of(h.type)
                if r > retrans_of(last.type):
                    self.last_token = dataclasses.replace(last, type=with_retrans(last.type, r))
                    self._token_hurry()
                else:
                    self.counters["token_repeated"] += 1
                return
            if arq != (last_arq + 1) % 16:
                self.counters["token_outdated"] += 1
                return
            if self.just_installed:
                self.just_installed = False
                last = self.last_token = dataclasses.replace(last, aru=0)
            if retrans_of(h.type) > 0:
                self.counters["token_hurry"] += 1

        if h.seq > self.highest_seq:
            self.highest_seq = h.seq
        self.received_token_rounds += 1

        # answer retransmission requests
        num_retrans, kept, rtr_proc, rtr_seg = self._answer_retrans(tok.rtr)

        # new packets
        num_sent = self._send_new_packets(self._fc_allowed(h.flow_control))
        fc = h.flow_control - self.last_num_retrans - self.last_num_sent + num_retrans + num_sent
        self.last_num_retrans = num_retrans
        self.last_num_sent = num_sent

        self._advance_my_aru()

        # my retransmission requests
        max_rtr = last.seq if (self.accelerated and self.state != EVS) else self.highest_seq
        rtr = list(kept)
        if self.my_aru < max_rtr:
            used = sum(16 + 4 * len(b.seqs) for b in kept)
            allowed = (TOKEN_BODY - used - 16) // 4
            if allowed > 1:
                missing = []
                packets = self.packets
                for s in range(self.my_aru + 1, max_rtr + 1):
                    if s not in packets:
                        missing.append(s)
                        if len(missing) >= allowed:
                            break
                rtr.append(RtrRequest(self.membership_id, rtr_proc, rtr_seg, tuple(missing)))

        if self.state == EVS and self.my_aru == self.highest_seq:
            self.my_aru = self.last_seq
            self.commit_ids = list(self.future_commit_ids)
            self.commit_trans = self.future_commit_trans

        aru, aru_last = h.aru, h.aru_last_id
        if aru > self.my_aru or aru_last == self.me or (aru == h.seq and self.state != EVS):
            aru, aru_last = self.my_aru, self.me
        seq = h.seq if self.state == EVS else self.highest_seq
        ttype = h.type
        if active[0] == self.me:
            ttype = with_retrans(with_arq(ttype, (arq + 1) % 16), 0)
        new = TokenHeader(
            ttype, self.me, self.me, h.memb_id, seq, aru, aru_last, _s16(fc), self.conf_hash
        )
        if not (active[0] == self.me and self._is_token_hold()):
            out_tok = Token(new, tuple(rtr))
            self._send_token(out_tok, 3 if retrans_of(ttype) > 1 else 1)
        else:
            self.counters["token_held"] += 1
        self.token_rounds += 1
        if active[0] == self.me:
            self.timers.queue("hurry", self._now_us, self.to.hurry)
        self.timers.queue("token_loss", self._now_us, self.to.token)
        self._flush_accelerated()

        # Aru = min(token aru, previous token aru); never lowered
        new_aru = last.aru if aru > last.aru else aru
        if new_aru < self.aru:
            self.counters["aru_would_decrease"] += 1
            self._log(
                ERROR,
                f"Prot_handle_token: illegally lowering Aru: Aru {self.aru} -> {new_aru}; kept",
            )
        else:
            self.aru = new_aru
        if self.highest_seq == self.aru:
            self.token_counter += 1
        else:
            self.token_counter = 0
        self.last_token = new

        self._discard_packets()
        self._deliver_agreed()
        self._deliver_reliable(self.highest_seq - num_sent + 1, num_sent)

        if self.state == EVS and self.token_rounds > MAX_EVS_ROUNDS:
            self._log(
                ERROR,
                "Prot_handle_token: BUG WORKAROUND: Too many rounds in EVS state; swallowing token",
            )
            self._token_loss()

    def _fc_allowed(self, fc: int) -> int:
        if self.state == EVS:
            return 0
        if self.highest_seq > self.aru + MAX_SEQ_GAP:
            return 0
        allowed = self.window + self.personal_window - fc
        return max(0, min(allowed, self.window, self.personal_window))

    def _answer_retrans(
        self, blocks: tuple[RtrRequest, ...]
    ) -> tuple[int, list[RtrRequest], int, int]:
        num = 0
        kept: list[RtrRequest] = []
        rtr_proc, rtr_seg = self.me, self.topo.my_seg
        my_id = self.membership_id
        packets = self.packets
        for b in blocks:
            if b.memb_id != my_id:
                kept.append(b)
                continue
            for s in b.seqs:
                if s < self.aru:
                    self.counters["rtr_below_aru"] += 1  # the original aborts here
                    continue
                slot = packets.get(s)
                if slot is not None and slot.pkt is not None:
                    p = slot.pkt
                    out = DataPacket(
                        dataclasses.replace(
                            p.header, transmiter_id=self.me, conf_hash=self.conf_hash
                        ),
                        p.fragments,
                    )
                    if b.proc_id != NO_VID:
                        self._ucast(b.proc_id, out.encode())
                        self.counters["u_retrans"] += 1
                    elif b.seg_index != -1:
                        if 0 <= b.seg_index < self.topo.num_segments:
                            self._scast(b.seg_index, out)
                        self.counters["s_retrans"] += 1
                    else:
                        self._bcast(out)
                        self.counters["b_retrans"] += 1
                    num += 1
                else:
                    rtr_proc = NO_VID
                    if b.seg_index != self.topo.my_seg:
                        rtr_seg = -1
        self.counters["retrans"] += num
        return num, kept, rtr_proc, rtr_seg

    def _send_new_packets(self, allowed: int) -> int:
        sent = 0
        queue = self.queue
        while sent < allowed:
            body = queue.next_body()
            if body is None:
                break
            ptype, frags = body.type, body.fragments
            self.highest_seq += 1
            seq = self.highest_seq
            if seq in self.packets:
                self._log(ERROR, f"Send_new_packets: created packet {seq} already exist")
            hdr = PacketHeader(
                ptype, self.me, self.me, self.membership_id, seq, self.token_rounds, self.conf_hash
            )
            pkt = DataPacket(hdr, frags)
            self.packets[seq] = _slot_of(pkt, None)
            self._queue_bcast(pkt)
            sent += 1
        self.n_packets_sent += sent
        return sent

    def _queue_bcast(self, pkt: DataPacket) -> None:
        aq = self._accel_queue
        if not self.accelerated or self.state == EVS:
            while aq:
                self._bcast(self._stamp(aq.pop(0)))
            self._bcast(self._stamp(pkt))
            return
        n = max(0, len(aq) - self.accelerated_window + 1)
        for _ in range(min(n, len(aq))):
            self._bcast(self._stamp(aq.pop(0)))
        if self.accelerated_window == 0:
            self._bcast(self._stamp(pkt))
        else:
            aq.append(pkt)

    def _stamp(self, pkt: DataPacket) -> DataPacket:
        if pkt.header.token_round == self.token_rounds:
            return pkt
        stamped = DataPacket(
            dataclasses.replace(pkt.header, token_round=self.token_rounds), pkt.fragments
        )
        slot = self.packets.get(pkt.header.seq)
        if slot is not None and slot._pkt is pkt:
            slot._pkt = stamped
        return stamped

    def _flush_accelerated(self) -> None:
        aq = self._accel_queue
        while aq:
            self._bcast(self._stamp(aq.pop(0)))

    def _is_token_hold(self) -> bool:
        return (
            (self.state == OP or (self.state == GATHER and self.token_alive))
            and retrans_of(self.last_token.type) <= 1
            and self.aru == self.highest_seq
            and self.token_counter > 1
        )

    def _token_hurry(self) -> None:
        """Re-send my last token, header only (hurry timer, or a peer asked for it)."""
        last = self.last_token
        if self._is_leader():
            last = self.last_token = dataclasses.replace(
                last, type=with_retrans(last.type, retrans_of(last.type) + 1)
            )
            self.timers.queue("hurry", self._now_us, self.to.hurry)
            self.counters["token_hurry"] += 1
        tok = Token(dataclasses.replace(last, transmiter_id=self.me, conf_hash=self.conf_hash))
        copies = 1
        if self.wide_area:
            active = self._active()
            seg_members = [v for v in active if self.topo.seg_of[v] == self.topo.my_seg]
            if seg_members and seg_members[-1] == self.me:
                copies += 1
        if retrans_of(last.type) > 1:
            copies += 2
        self._send_token(tok, copies)

    def _handle_hurry(self, sender: int) -> None:
        if self._is_leader() and self._is_token_hold() and sender in self._active():
            self.token_counter = 0
            self._token_hurry()

    def _new_message_hurry(self) -> None:
        """A message entered an empty queue: wake an idle ring (the HURRY packet)."""
        if not self._is_token_hold():
            return
        leader = self._active()[0]
        if leader == self.me:
            self._handle_hurry(self.me)
        else:
            self._ucast(leader, Hurry(self._pkt_header(HURRY_TYPE)).encode())

    # ================================================================ ordering: delivery

    def _deliver_packet(self, seq: int, slot: _Slot) -> None:
        slot.exist = DELIVERED
        self.n_packets_delivered += 1
        if slot.single and (
            slot.ptype & RELIABLE_TYPE or not self.reassembler.has_partial(slot.origin)
        ):
            # one whole message: what the Reassembler would do, without decoding the packet
            raw = slot.raw
            msg = raw[40:] if raw is not None else slot._pkt.fragments[0].data  # type: ignore[union-attr]
            self.n_messages_delivered += 1
            self._out.append(Deliver(msg, slot.origin, message_service(msg) if msg else 0))
            return
        pkt = slot.pkt
        if pkt is None:
            return
        for d in self.reassembler.push(pkt):
            self.n_messages_delivered += 1
            self._out.append(d)

    def _deliver_reliable(self, start: int, count: int) -> None:
        if self.state == EVS or self.threshold < DeliveryThreshold.ALL or count <= 0:
            return
        end = start + count - 1
        if start <= self.last_delivered:
            start = self.last_delivered + 1
        packets = self.packets
        for s in range(start, end + 1):
            slot = packets.get(s)
            if (
                slot is not None
                and slot.exist == RECEIVED
                and slot.ptype & RELIABLE_TYPE
                and slot.findex == -1
            ):
                self._deliver_packet(s, slot)

    def _deliver_agreed(self) -> None:
        if self.my_aru <= self.last_delivered or self.state == EVS:
            return
        if self.threshold < DeliveryThreshold.AGREED:
            return
        packets = self.packets
        for s in range(self.last_delivered + 1, self.my_aru + 1):
            slot = packets.get(s)
            if slot is None:
                return
            if slot.exist == RECEIVED:
                if slot.ptype & SAFE_TYPE:
                    return
                self._deliver_packet(s, slot)
                self.last_delivered += 1
            elif slot.exist == DELIVERED:
                self.last_delivered += 1
            else:
                return

    def _discard_packets(self) -> None:
        if self.aru <= self.last_discarded:
            return
        if self.state == EVS:
            if self.aru != self.last_seq:
                return
            self._install()
            return
        packets = self.packets
        for s in range(self.last_discarded + 1, self.aru + 1):
            slot = packets.pop(s, None)
            if slot is None:
                self._log(ERROR, f"Discard_packets: (NOT EVS) packet {s} not exist")
                continue
            if slot.exist == RECEIVED:
                self._deliver_packet(s, slot)
        self.last_discarded = self.aru
        if self.last_delivered < self.last_discarded:
            self.last_delivered = self.last_discarded

    # ================================================================ EVS install

    def _install(self) -> None:
        """Everyone is done with the old rings: deliver, transitional, deliver, regular."""
        packets = self.packets
        s = self.last_discarded + 1
        while s <= self.highest_seq:
            slot = packets.get(s)
            if slot is None or slot.exist == HOLE:
                break
            if slot.ptype & SAFE_TYPE:
                break
            if slot.exist == RECEIVED:
                self._deliver_packet(s, slot)
            del packets[s]
            self.last_discarded = s
            s += 1

        topo = self.topo
        trans_set = set(self.commit_ids[: self.commit_trans])
        trans = topo.sort(trans_set)
        commit = set(self.commit_ids)
        leader = trans[0] if trans else self.me
        self.trans_memb_id = RingId(leader, self.f_trans_memb_time)
        self._out.append(TransitionalConfiguration(self.trans_memb_id, trans))

        found_hole = False
        for s in range(self.last_discarded + 1, self.highest_seq + 1):
            slot = packets.pop(s, None)
            if slot is None or slot.exist == HOLE:
                found_hole = True
                continue
            keep = not found_hole or slot.origin in commit
            if keep and slot.exist == RECEIVED:
                self._deliver_packet(s, slot)
        if packets:
            self._log(ERROR, f"Discard_packets: {len(packets)} packets left after install")
            packets.clear()
        self.queue.restart_partial()
        self.reassembler.drop_partial()

        # regular configuration
        self.just_installed = True
        self.membership = self.future_membership
        self.membership_id = self.future_membership_id
        self._my_ring = (self.membership_id.proc_id, self.membership_id.time)
        self.reg_membership = self.membership
        self.commit_ids = [self.me]
        self.commit_trans = 1
        self.foreign_found = False
        if self.membership[0] == self.me:
            self.timers.queue("lookup", self._now_us, self.to.lookup)
        mid = self.membership_id
        self._log(PRINT, f"Membership id is ( {_signed(mid.proc_id)}, {mid.time})")
        self._out.append(RegularConfiguration(mid, self.membership))
        self.counters["memberships"] += 1
        self.state = OP

        self.highest_seq = 0
        self.my_aru = 0
        self.aru = 0
        self.last_discarded = 0
        self.last_delivered = 0
        self.token_counter = 0

    def _backoff(self) -> None:
        packets = self.packets
        for s in range(self.last_discarded + 1, self.highest_seq + 1):
            slot = packets.get(s)
            if slot is not None and slot.exist == HOLE:
                del packets[s]
        self.aru = self.last_discarded
        self.my_aru = self.last_discarded
        self._advance_my_aru()

    # ================================================================ membership: timers

    def _guesses(self, reps: list[Rep], members: tuple[int, ...]) -> None:
        topo = self.topo
        for seg in range(topo.num_segments):
            if seg == topo.my_seg:
                continue
            head = topo.seg_leader(members, seg)
            if head is None:
                head = topo.first_configured(seg)
            insert_rep(topo, reps, Rep(head, POTENTIAL_REP, seg))

    def _token_loss(self) -> None:
        st = self.state
        if st == OP:
            self.potential_reps = []
            self._guesses(self.potential_reps, self.membership)
        elif st in (SEG, REPRESENTED):
            self._log(ERROR, f"Memb_token_loss: bug! state is {st}")
            return
        elif st == GATHER:
            if not self.token_alive:
                self._log(ERROR, "Memb_token_loss: Bug! state is GATHER and not token alive")
            self.potential_reps = []
            for r in self.f_reps[1:]:
                insert_rep(self.topo, self.potential_reps, r)
            self._guesses(self.potential_reps, self.membership)
        elif st == EVS:
            self._backoff()
            self.potential_reps = []
            self._guesses(self.potential_reps, self.future_membership)
        self.token_alive = False
        self.threshold = DeliveryThreshold.BLOCK
        self.just_installed = False
        for name in ("token_loss", "join", "gather", "hurry", "lookup"):
            self.timers.dequeue(name)
        self.last_token = dataclasses.replace(self.last_token, type=0, seq=0, aru=0)
        self.membership = (self.me,)
        self.counters["token_loss"] += 1
        self._log(WARNING, f"Memb_token_loss: ############### I lost my token, state was {st}")
        self._shift_to_seg()

    def _shift_to_seg(self) -> None:
        self.state = SEG
        self.f_members = [self.me]
        self.timers.queue("alive", self._now_us, 0)
        self.timers.queue("seg", self._now_us, self.to.seg)

    def _gather_or_represented(self) -> None:
        self.my_seg_rep = NO_VID
        if self.topo.smallest_member(self.f_members) == self.me:
            self._shift_to_gather()
        else:
            self._shift_to_represented()

    def _shift_to_gather(self) -> None:
        self.state = GATHER
        kind = RING_REP if self.token_alive else SEG_REP
        self.f_reps = [Rep(self.me, kind, self.topo.my_seg)]
        self.timers.dequeue("alive")
        self.timers.dequeue("lookup")
        self.timers.queue("join", self._now_us, 0)
        self.timers.queue("gather", self._now_us, self.to.gather)

    def _shift_to_represented(self) -> None:
        self.state = REPRESENTED
        self.timers.dequeue("alive")
        self.timers.dequeue("seg")
        self.timers.queue("rep", self._now_us, self.to.rep)

    def _shift_to_op(self) -> None:
        self.state = OP

    def _form_or_fail(self) -> None:
        topo = self.topo
        if self.f_reps and self.f_reps[topo.smallest_rep_index(self.f_reps)].vid == self.me:
            if self.token_alive and len(self.f_reps) == 1:
                self.timers.dequeue("join")
                self.timers.queue("lookup", self._now_us, self.to.lookup)
                self._shift_to_op()
            else:
                self._create_form1()
        elif self.token_alive:
            self.timers.dequeue("join")
            self.timers.queue("lookup", self._now_us, self.to.lookup)
            self._shift_to_op()
        else:
            self.f_members = [self.me]
            self.potential_reps = []
            for r in self.f_reps[1:]:
                insert_rep(topo, self.potential_reps, r)
            self._shift_to_gather()

    def _scast_alive(self, periodic: bool) -> None:
        pkt = Alive(self._pkt_header(0x100), tuple(self.f_members))
        self._scast(self.topo.my_seg, pkt)
        if periodic:
            self.timers.queue("alive", self._now_us, self.to.alive)

    def _join_packet(self) -> Join:
        reps = tuple(RepInfo(r.vid, r.kind, r.seg) for r in self.f_reps)
        return Join(self._pkt_header(JOIN_TYPE), tuple(self.f_members), reps, self.f_rep_index)

    def _send_join(self) -> None:
        pkt = self._join_packet()
        if not self.token_alive:
            self._scast(self.topo.my_seg, pkt)
        raw = pkt.encode()
        for r in self.potential_reps:
            self._ucast(r.vid, raw)
        self.timers.queue("join", self._now_us, self.to.join)

    def _lookup_new_members(self) -> None:
        if self.state != OP:
            return
        self.potential_reps = []
        self.f_reps = [Rep(self.me, RING_REP, self.topo.my_seg)]
        self.f_members = []
        pkt = self._join_packet()
        missing = 0
        topo = self.topo
        if topo.num_segments == 1:
            self._scast(topo.my_seg, pkt)
            missing = 1
        else:
            raw = pkt.encode()
            for d in self.config.daemons:
                if d.vid not in self.reg_membership:
                    self._ucast(d.vid, raw)
                    missing += 1
        if missing:
            self._shift_to_gather()

    # ================================================================ membership: messages

    def _handle_alive(self, sender: int) -> None:
        st = self.state
        if st == OP:
            if sender in self.membership:
                self._token_loss()
                insert_member(self.f_members, sender)
        elif st == SEG:
            insert_member(self.f_members, sender)
        elif st == REPRESENTED:
            self.timers.queue("rep", self._now_us, self.to.rep)
        elif st == GATHER:
            if not self.token_alive:
                insert_member(self.f_members, sender)
            elif sender in self.membership:
                self._token_loss()
                insert_member(self.f_members, sender)
        elif st == EVS and sender in self.future_membership:
            self._token_loss()
            insert_member(self.f_members, sender)

    def _refer(self, to_vid: int, rep_vid: int, kind: int) -> None:
        pkt = Refer(self._pkt_header(REFER_TYPE, memb_id=RingId(rep_vid, kind)))
        self._ucast(to_vid, pkt.encode())

    def _handle_join(self, pkt: Join) -> None:
        sender = pkt.header.proc_id
        topo = self.topo
        if not topo.known(sender) or not pkt.reps:
            self._drop("bad_join")
            return
        r0 = pkt.reps[0]
        st = self.state
        if st == OP:
            if sender not in self.membership:
                if self.membership[0] == self.me:
                    if not topo.known(r0.proc_id):
                        self._drop("bad_join")
                        return
                    self.potential_reps = [Rep(r0.proc_id, r0.type, r0.seg_index)]
                    self.f_members = []
                    self._shift_to_gather()
                elif (
                    r0.seg_index != topo.my_seg
                    or topo.seg_leader(self.membership, topo.my_seg) == self.me
                ):
                    self._refer(sender, self.membership[0], RING_REP)
            elif topo.num_segments > 1:
                self._token_loss()
        elif st == SEG:
            if topo.seg_of[sender] == topo.my_seg and r0.type == SEG_REP:
                self.my_seg_rep = sender
                self._shift_to_represented()
                self._scast_alive(periodic=False)
        elif st == REPRESENTED:
            if topo.seg_of[sender] == topo.my_seg and r0.type == SEG_REP:
                if sender != self.my_seg_rep:
                    self._log(
                        INFO,
                        f"Memb_handle_join: representative shifts: old "
                        f"{self.my_seg_rep}, new {sender}",
                    )
                    self.my_seg_rep = sender
                self.timers.queue("rep", self._now_us, self.to.rep)
                self._scast_alive(periodic=False)
            elif self.my_seg_rep != NO_VID:
                self._refer(sender, self.my_seg_rep, SEG_REP)
        elif st == GATHER:
            insert_rep(topo, self.f_reps, Rep(r0.proc_id, r0.type, r0.seg_index))
            for r in pkt.reps:
                insert_rep(topo, self.potential_reps, Rep(r.proc_id, r.type, r.seg_index))
            smallest = self.f_reps[topo.smallest_rep_index(self.f_reps)]
            if smallest.vid == r0.proc_id:
                self.timers.queue("gather", self._now_us, self.to.gather)
        elif st == EVS and sender in self.future_membership:
            self._token_loss()
            insert_member(self.f_members, sender)

    def _handle_refer(self, pkt: Refer) -> None:
        if self.state != GATHER:
            return
        vid, kind = pkt.header.memb_id.proc_id, pkt.header.memb_id.time
        if not self.topo.known(vid) or kind not in (POTENTIAL_REP, SEG_REP, RING_REP):
            self._log(PRINT, f"Memb_handle_refer: unknown proc_id {vid}")
            return
        insert_rep(self.topo, self.potential_reps, Rep(vid, kind, self.topo.seg_of[vid]))

    def _handle_foreign(self, pkt: DataPacket) -> None:
        if self.state != OP:
            return
        if not self.topo.known(pkt.header.proc_id):
            return
        leader = self.membership[0]
        if leader == self.me:
            self._lookup_new_members()
        elif (
            self.topo.seg_leader(self.membership, self.topo.my_seg) == self.me
            and not self.foreign_found
        ):
            self.foreign_found = True
            out = DataPacket(
                dataclasses.replace(pkt.header, transmiter_id=self.me, conf_hash=self.conf_hash),
                pkt.fragments,
            ).encode()
            self._ucast(leader, out)
            self._ucast(leader, out)

    # ================================================================ membership: FORM tokens

    def _my_holes(self, start: int) -> list[int]:
        packets = self.packets
        return [s for s in range(start + 1, self.highest_seq + 1) if s not in packets]

    def _form_common_tail(self) -> None:
        self.timers.dequeue("join")
        self.timers.queue("token_loss", self._now_us, self.to.form)
        self.timers.dequeue("hurry")
        self.token_alive = False
        self.threshold = DeliveryThreshold.BLOCK
        self.state = FORM

    def _create_form1(self) -> None:
        me = self.me
        topo = self.topo
        t = self._wall()
        if t <= self.last_time_used:
            t = self.last_time_used + 1
        self.last_time_used = t
        form_id = RingId(me, t)
        self.form1_memb_id = form_id

        if self.f_reps[0].kind == RING_REP:
            self.f_members = list(self.membership)
        rep_vids = {r.vid for r in self.f_reps}
        members = [v for v in self.f_members if v == me or v not in rep_vids]
        self.f_members = members
        # I am first; the rest are pending
        if me in members:
            members.remove(me)
        member_list = (me, *members)
        self.f_reps = topo.sort_reps(self.f_reps)
        self.f_rep_index = 1
        self.potential_reps = []
        for r in self.f_reps:
            if r.seg != topo.my_seg:
                insert_rep(topo, self.potential_reps, Rep(r.vid, POTENTIAL_REP, r.seg))

        ring = new_ring_info(
            self.membership_id,
            self.aru,
            self.highest_seq,
            self._my_holes(self.my_aru),
            me,
            self.commit_ids,
        )
        header = TokenHeader(
            FORM1_TYPE, me, me, form_id, self.highest_seq + FORM_SEQ_STEP, conf_hash=self.conf_hash
        )
        reps = tuple(RepInfo(r.vid, r.kind, r.seg) for r in self.f_reps)
        if len(member_list) > 1:
            tok = Form1(header, MembersInfo(member_list, 1), RepsInfo(reps, 1), (ring,))
            self._send_token_to(member_list[1], tok)
            self._send_token_to(member_list[1], tok)
        elif self.f_rep_index < len(reps):
            tok = Form1(header, MembersInfo(member_list, 1), RepsInfo(reps, 1), (ring,))
            self._send_token_to(reps[1].proc_id, tok)
            self._send_token_to(reps[1].proc_id, tok)
        else:
            tok2 = Form2(
                dataclasses.replace(header, type=FORM2_TYPE),
                MembersInfo((me,), 0),
                form2_id_slot(reps, 1),
                (ring,),
            )
            self._send_token_to(me, tok2)
        self._form_common_tail()

    def _handle_form1(self, tok: Form1) -> None:
        st = self.state
        if (st == OP and self.membership[0] != self.me) or st == REPRESENTED:
            self._fill_form1(tok, rep_path=False)
        elif st == GATHER:
            self._fill_form1(tok, rep_path=True)
        else:
            self.counters["swallowed_form1"] += 1

    def _fill_form1(self, tok: Form1, rep_path: bool) -> None:
        me = self.me
        topo = self.topo
        h = tok.header
        members = list(tok.members.members)
        nm = tok.members.num_members
        reps = list(tok.reps.reps)
        ri = tok.reps.rep_index
        if not all(topo.known(v) for v in members) or not all(topo.known(r.proc_id) for r in reps):
            self._drop("bad_form1")
            return
        if not rep_path:
            if nm >= len(members) or members[nm] != me:
                self.counters["swallowed_form1"] += 1
                return
            nm += 1
        else:
            if not (0 <= ri < len(reps)) or reps[ri].proc_id != me:
                self.counters["swallowed_form1"] += 1
                return
            kind = reps[ri].type
            if kind == (SEG_REP if self.token_alive else RING_REP):
                self.counters["swallowed_form1"] += 1
                return
            if nm != len(members):
                self.counters["swallowed_form1"] += 1
                return
            tok_rep_vids = {r.proc_id for r in reps}
            my_rep_vids = {r.vid for r in self.f_reps}
            valid = [
                v
                for v in self.f_members
                if v not in members[:nm]
                and not (v != me and v in tok_rep_vids)
                and not (v != me and v in my_rep_vids)
            ]
            self.f_members = valid
            if kind == SEG_REP:
                add = valid
            elif kind == RING_REP:
                add = list(self.membership)
            else:
                self._drop("bad_form1")
                return
            if len(members) + len(add) > 128 or not add:
                self._drop("bad_form1")
                return
            members = members[:nm] + add
            nm += 1
            ri += 1
        self.form1_memb_id = h.memb_id
        self.potential_reps = []
        for r in reps:
            if r.seg_index != topo.my_seg:
                insert_rep(topo, self.potential_reps, Rep(r.proc_id, POTENTIAL_REP, r.seg_index))

        # ring list: other rings as they are, then mine (new or merged)
        rings: list[RingInfo] = []
        mine: RingInfo | None = None
        for ring in tok.rings:
            if ring.memb_id == self.membership_id and mine is None:
                mine = ring
            else:
                rings.append(ring)
        if mine is None:
            if len(rings) + 1 > MAX_FORM_REPS:
                self._log(
                    WARNING,
                    "Fill_form1: ring_info entry will not fit in FORM token. "
                    "Removing self from current membership attempt",
                )
                if me in members[:nm]:
                    members.remove(me)
                    nm -= 1
            else:
                rings.append(
                    new_ring_info(
                        self.membership_id,
                        self.aru,
                        self.highest_seq,
                        self._my_holes(self.last_discarded),
                        me,
                        self.commit_ids,
                    )
                )
        else:
            packets = self.packets
            still = [s for s in mine.holes if s not in packets]
            if mine.highest_seq < self.highest_seq:
                still += self._my_holes(max(mine.highest_seq, self.last_discarded))
            rings.append(
                merge_ring_info(mine, me, self.aru, self.highest_seq, still, self.commit_ids)
            )
        seq = max(h.seq, self.highest_seq + FORM_SEQ_STEP)
        header = dataclasses.replace(
            h, proc_id=me, seq=seq, transmiter_id=me, conf_hash=self.conf_hash
        )
        reps_t = tuple(reps)
        if nm < len(members):
            out = Form1(header, MembersInfo(tuple(members), nm), RepsInfo(reps_t, ri), tuple(rings))
            self._send_token_to(members[nm], out)
            self._send_token_to(members[nm], out)
        elif ri < len(reps):
            out = Form1(header, MembersInfo(tuple(members), nm), RepsInfo(reps_t, ri), tuple(rings))
            self._send_token_to(reps[ri].proc_id, out)
            self._send_token_to(reps[ri].proc_id, out)
        else:
            srt = sorted(members, key=topo.key)
            out2 = Form2(
                dataclasses.replace(header, type=FORM2_TYPE),
                MembersInfo(tuple(srt), 0),
                form2_id_slot(reps_t, ri),
                tuple(rings),
            )
            self._send_token_to(srt[0], out2)
            self._send_token_to(srt[0], out2)
        self.timers.dequeue("gather")
        self.timers.dequeue("rep")
        self._form_common_tail()

    def _read_form2(self, tok: Form2) -> None:
        me = self.me
        topo = self.topo
        h = tok.header
        if h.memb_id != self.form1_memb_id:
            self._log(WARNING, "Read_form2: WARNING!!! Wrong memb_id on token -- dropping!")
            self.counters["swallowed_form2"] += 1
            return
        members = list(tok.members.members)
        nm = tok.members.num_members
        npend = len(members) - nm
        if nm < 0 or npend <= 0 or len(members) >= 128 or members[nm] != me:
            self.counters["swallowed_form2"] += 1
            return
        if not all(topo.known(v) for v in members):
            self._drop("bad_form2")
            return
        mine: RingInfo | None = None
        for r in tok.rings:
            if not (1 <= r.num_trans <= len(r.ids) <= 128) or len(r.holes) > MAX_SEQ_GAP:
                self._drop("bad_form2")
                return
            if r.memb_id == self.membership_id and mine is None:
                mine = r
        if mine is None:
            self._log(WARNING, "Read_form2: WARNING!!! My ring ID not on token -- dropping")
            self.counters["swallowed_form2"] += 1
            return
        if mine.highest_seq - self.last_discarded >= PACKET_SLOTS or mine.aru > mine.highest_seq:
            self._drop("bad_form2")
            return
        # Ring ids are (VID, seconds) and each formation can take an id a second or two ahead
        # of the clock. A daemon restarted soon after a burst of formations has forgotten
        # them; a ring on this token may still carry one, and reusing it would give two
        # memberships one id (the original does; found by the simulator, seed 133571).
        for r in tok.rings:
            if r.memb_id.proc_id == me and r.memb_id.time > self.last_time_used:
                self.last_time_used = r.memb_id.time
        nm += 1
        self.last_seq = h.seq
        memb_time = 0
        new_id = tok.new_ring_id
        if nm == 1:
            memb_time = self._wall()
            if memb_time <= self.last_time_used:
                memb_time = self.last_time_used + 1
            self.last_time_used = memb_time + 1
            new_id = RingId(me, self.last_time_used)
        self.future_membership_id = new_id
        self.future_membership = topo.sort(members)
        self.net_membership = self.future_membership
        self.last_num_retrans = 0
        self.last_num_sent = 0

        packets = self.packets
        future = set(self.future_membership)
        while self.highest_seq > mine.highest_seq:
            slot = packets.get(self.highest_seq)
            if slot is not None:
                if slot.origin in future:
                    self._log(
                        ERROR, f"Read_form2: dropping {self.highest_seq} but sender is on the token"
                    )
                del packets[self.highest_seq]
            self.highest_seq -= 1
        if self.my_aru > mine.highest_seq:
            self.my_aru = mine.highest_seq
        self.highest_seq = mine.highest_seq
        self.aru = max(mine.aru, self.last_discarded)
        self._discard_packets()

        for s in mine.holes:
            if self.last_discarded < s <= self.highest_seq:
                packets[s] = _Slot(HOLE)
        my_aru = self.last_discarded
        for s in range(self.last_discarded + 1, self.highest_seq + 1):
            slot = packets.get(s)
            if slot is not None and slot.exist != HOLE:
                my_aru = s
            else:
                break
        self.my_aru = my_aru

        self.future_commit_ids = list(mine.ids)
        self.future_commit_trans = mine.num_trans
        trans_time = mine.trans_time
        rings = list(tok.rings)
        if not trans_time:
            if not memb_time:
                memb_time = self._wall()
                if memb_time <= self.last_time_used:
                    memb_time = self.last_time_used + 1
                self.last_time_used = memb_time
            trans_time = memb_time
            idx = rings.index(mine)
            rings[idx] = dataclasses.replace(mine, trans_time=trans_time)
        self.f_trans_memb_time = trans_time

        header = dataclasses.replace(h, proc_id=me, transmiter_id=me, conf_hash=self.conf_hash)
        if self.future_membership[-1] != me:
            out = Form2(header, MembersInfo(tuple(members), nm), new_id, tuple(rings))
            self._send_token(out, 2)
            self.token_rounds = 0
        else:
            first = Token(TokenHeader(0, me, me, new_id, 0, INT32_MAX, NO_VID, 0, self.conf_hash))
            self._send_token(first, 2)
            self.token_rounds = 1
        self.token_alive = True
        self.timers.queue("token_loss", self._now_us, self.to.token)
        self.received_token_rounds = 0
        self.last_token = dataclasses.replace(self.last_token, type=0, seq=0, aru=0)
        self.aru = 0
        self.state = EVS


def _s16(v: int) -> int:
    v &= 0xFFFF
    return v - 0x10000 if v >= 0x8000 else v
