"""The RoCEv2-like transport between two namespaces over a veth pair (no switch)."""
from __future__ import annotations

import os
import select
import socket
import subprocess
import time

import pytest
from scapy.all import Ether, raw, wrpcap

from fabriclab.traffic import packets as p
from fabriclab.traffic.dcqcn import PAPER
from fabriclab.traffic.netns import VethPair, in_netns
from fabriclab.traffic.scale import TimeScale
from fabriclab.traffic.transport import HostTransport, TransportConfig, unwrap_psn

pytestmark = pytest.mark.root


class Pair:
    """Two transports in one process, one per namespace, driven by one loop."""

    def __init__(self, veth: VethPair, config_a: TransportConfig, config_b: TransportConfig):
        self.hosts = veth.hosts
        a, b = veth.hosts
        with in_netns(a.netns_path):
            self.a = HostTransport(a.ifname, config_a)
        with in_netns(b.netns_path):
            self.b = HostTransport(b.ifname, config_b)
        self.received: list[bytes | None] = []
        self.b.on_message = lambda qp, n, data, t: self.received.append(data if data is not None else n)
        self.qp = self.a.connect(b.ip, 7, b.mac)

    def run(self, done, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "transfer did not finish"
            self.a.poll(0)
            self.b.poll(0)
            select.select([self.a.sock, self.b.sock], [], [], 0.0005)

    def close(self) -> None:
        self.a.close()
        self.b.close()


@pytest.fixture
def veth():
    with VethPair(f"t{os.getpid() % 100000}") as pair:
        yield pair


def _pair(veth, **b_overrides) -> Pair:
    fast = dict(line_rate=1e9, rto=0.02, seed=7)
    return Pair(veth, TransportConfig(**fast), TransportConfig(**{**fast, **b_overrides}))


def test_unwrap_psn():
    assert unwrap_psn(5, (1 << 24) - 3) == (1 << 24) + 5
    assert unwrap_psn((1 << 24) - 1, (1 << 24) + 2) == (1 << 24) - 1
    assert unwrap_psn(100, 90) == 100


def test_exact_delivery_of_random_data(veth):
    pair = _pair(veth)
    try:
        data = [os.urandom(2_000_000), os.urandom(1), os.urandom(3000)]
        msgs = [pair.a.post_send(pair.qp, d) for d in data]
        pair.run(lambda: all(m.completed for m in msgs))
        assert pair.received == data
        assert pair.qp.retransmissions == 0 and pair.qp.snd_una == pair.qp.next_psn
        assert 0 < pair.qp.srtt < 1 and pair.a.rto(pair.qp) == max(0.02, pair.qp.srtt + 4 * pair.qp.rttvar)
        assert pair.qp.next_psn == -(-2_000_000 // 1024) + 1 + 3
    finally:
        pair.close()


def test_recovery_from_injected_loss(veth):
    pair = _pair(veth, drop_probability=0.02)
    try:
        data = os.urandom(1_000_000)
        msg = pair.a.post_send(pair.qp, data)
        pair.run(lambda: msg.completed is not None)
        responder = pair.b.qps[(veth.hosts[0].ip, 7)]
        assert pair.received == [data]
        assert responder.dropped_by_test > 0
        assert pair.qp.naks_received > 0 and pair.qp.retransmissions >= responder.dropped_by_test
    finally:
        pair.close()


def test_tail_loss_recovers_by_timeout_across_psn_wrap(veth):
    pair = _pair(veth, drop_probability=1.0)
    try:
        start = (1 << 24) - 2                      # the 24-bit PSN wraps inside the message
        responder = pair.b.connect(veth.hosts[0].ip, 7, veth.hosts[0].mac)
        for qp in (pair.qp, responder):
            qp.next_psn = qp.snd_nxt = qp.snd_una = qp.highest_sent = qp.epsn = start
        data = os.urandom(5 * 1024)
        msg = pair.a.post_send(pair.qp, data)
        pair.run(lambda: pair.qp.snd_nxt == pair.qp.next_psn)   # everything sent, everything dropped
        pair.b.config.drop_probability = 0.0
        pair.run(lambda: msg.completed is not None)
        assert pair.received == [data]
        assert pair.qp.timeouts >= 1 and pair.qp.retransmissions >= 5
        assert pair.qp.backoff == 1                          # progress resets the exponential backoff
        assert responder.epsn == start + 5
    finally:
        pair.close()


def test_ce_marks_make_cnps_that_cut_the_rate(veth):
    scale = TimeScale(1000)
    dcqcn = PAPER.scaled(scale)
    config = dict(line_rate=100e6, dcqcn=dcqcn, seed=3)
    pair = Pair(veth, TransportConfig(**config), TransportConfig(**config, ce_probability=1.0))
    try:
        msg = pair.a.post_send(pair.qp, 400_000)
        t0 = time.monotonic()
        pair.run(lambda: msg.completed is not None)
        elapsed = time.monotonic() - t0
        responder = pair.b.qps[(veth.hosts[0].ip, 7)]
        assert responder.ce_received == responder.packets_received + responder.duplicates
        # the notification point sends at most one CNP per interval (50 µs × 1000 = 50 ms)
        assert 1 <= responder.cnps_sent <= elapsed / dcqcn.cnp_interval + 1
        assert pair.qp.cnps_received == responder.cnps_sent
        rp = pair.qp.rate
        assert rp.cuts == pair.qp.cnps_received
        assert rp.rate < 100e6 and min(r for _, r in pair.qp.rate_samples) < 60e6
        # with continuous marking, the transfer is slower than at line rate
        assert elapsed > 400_000 * 8 / 100e6
    finally:
        pair.close()


def test_frames_on_the_wire_match_scapy_and_decode_in_tshark(veth, tmp_path):
    pair = _pair(veth)
    a, b = veth.hosts
    with in_netns(b.netns_path):
        tap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        tap.bind((b.ifname, 0))
    tap.setblocking(False)
    try:
        data = os.urandom(1500)
        msg = pair.a.post_send(pair.qp, data)
        pair.run(lambda: msg.completed is not None)
        frames = []
        while True:
            try:
                frames.append(tap.recv(9216))
            except BlockingIOError:
                break
        roce = [f for f in frames if f[12:14] == b"\x08\x00" and f[36:38] == b"\x12\xb7"]
        data_frames = [f for f in roce if f[42] != p.OP_ACK]
        ack_frames = [f for f in roce if f[42] == p.OP_ACK]
        assert len(data_frames) == 2 and len(ack_frames) >= 1
        sport = Ether(data_frames[0])["UDP"].sport
        common = dict(src_mac=a.mac, dst_mac=b.mac, src_ip=a.ip, dst_ip=b.ip, dqpn=7, sport=sport)
        # byte for byte what scapy builds, ICRC included
        assert data_frames[0] == raw(p.rocev2_frame(**common, psn=0, opcode=p.OP_SEND_FIRST, payload=data[:1024]))
        assert data_frames[1] == raw(p.rocev2_frame(**common, psn=1, opcode=p.OP_SEND_LAST, payload=data[1024:],
                                                    ackreq=True))
        ack = Ether(ack_frames[-1])
        assert ack[p.BTH].psn == 1 and ack[p.AETH].syndrome == p.AETH_ACK and ack[p.AETH].msn == 1
        assert raw(ack) == raw(p.ack_frame(src_mac=b.mac, dst_mac=a.mac, src_ip=b.ip, dst_ip=a.ip, dqpn=7, psn=1,
                                           msn=1, sport=ack["UDP"].sport))
        pcap = tmp_path / "wire.pcap"
        wrpcap(str(pcap), [Ether(f) for f in data_frames + ack_frames] + [p.pfc_frame(b.mac, {3: 10})])
        out = subprocess.run(["tshark", "-r", str(pcap)], capture_output=True, text=True, check=True).stdout
        lines = out.strip().splitlines()
        assert "RC Send First" in lines[0] and "RC Send Last" in lines[1] and "RC Acknowledge" in lines[2]
        assert "Class Based Flow Control" in lines[-1]
    finally:
        tap.close()
        pair.close()


def test_slow_pacing_causes_no_spurious_timeouts(veth):
    # a frame every ~22 ms, an RTO of 10 ms: only an ACK actually asked for may time out
    config = dict(line_rate=400e3, rto=0.01, ack_every=8)
    pair = Pair(veth, TransportConfig(**config), TransportConfig(**config))
    try:
        data = os.urandom(20 * 1024)
        msg = pair.a.post_send(pair.qp, data)
        pair.run(lambda: msg.completed is not None)
        assert pair.received == [data]
        assert pair.qp.timeouts == 0 and pair.qp.retransmissions == 0
        burst = pair.a.config.burst                                  # a pacer may start with a short burst
        assert msg.completed - msg.posted >= (19 - burst) * 1082 * 8 / 400e3
    finally:
        pair.close()


class FakeClock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_host_paces_on_wire_bytes(veth):
    """At line rate a full frame costs the host what it costs the switch port: frame + FCS +
    preamble + inter-frame gap. Pacing on frame bytes sent 102 frames where the wire takes 100,
    and a lone flow built a standing queue at its first switch."""
    a, b = veth.hosts
    clock = FakeClock(100.0)
    with in_netns(a.netns_path):
        host = HostTransport(a.ifname, TransportConfig(line_rate=20e6), clock=clock)
    try:
        qp = host.connect(b.ip, 7, b.mac)
        host.post_send(qp, 400 * 1024)
        host.poll()                                         # an idle pacer starts without a burst
        assert qp.packets_sent == 1
        wire_time = (54 + 1024 + 4 + 24) * 8 / 20e6         # 1082-byte frame + 24 on the wire
        start = clock.t
        for step in range(1, 403):                          # 100.5 frame times, in quarters
            clock.t = start + step * wire_time / 4
            host.poll()
        assert qp.packets_sent - 1 == 100
    finally:
        host.close()


def test_host_honours_pfc_for_its_priority(veth):
    pair = _pair(veth)
    a, b = veth.hosts
    with in_netns(b.netns_path):
        switch_side = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        switch_side.bind((b.ifname, 0))
    try:
        quanta = p.seconds_to_pause_quanta(30e-3, pair.a.config.line_rate)
        msg = pair.a.post_send(pair.qp, 3_000_000)
        pair.run(lambda: pair.qp.packets_sent > 50)
        switch_side.send(raw(p.pfc_frame(b.mac, {5: 0xFFFF})))           # another priority: ignored
        sent_pfc = time.monotonic()
        switch_side.send(raw(p.pfc_frame(b.mac, {3: quanta})))
        pair.run(lambda: pair.a.pause_frames == 1)         # only our priority's counts
        sent_at_pause = pair.qp.packets_sent
        duration = quanta * 512 / 1e9
        assert sent_pfc + duration <= pair.a.paused_until <= time.monotonic() + duration
        pair.run(lambda: time.monotonic() > pair.a.paused_until - 2e-3)
        assert pair.qp.packets_sent <= sent_at_pause + 1                  # at most one already on its way
        switch_side.send(raw(p.pfc_frame(b.mac, {3: 0})))                 # XON: resume at once
        pair.run(lambda: pair.a.pause_frames == 2)
        assert pair.a.paused_until == 0.0
        pair.run(lambda: msg.completed is not None)
        assert pair.qp.retransmissions == 0
    finally:
        switch_side.close()
        pair.close()


def test_slow_receiver_pauses_its_peer_and_loses_nothing(veth):
    """The NIC's receive buffer passes XOFF: the host sends PFC for its data priority, the sender
    obeys, nothing is dropped; the buffer never holds more than it can."""
    config = dict(line_rate=100e6, rto=0.02, seed=7)
    # B takes frames out at 10 Mbit/s of a 100 Mbit/s link
    pair = Pair(veth, TransportConfig(**config), TransportConfig(**config, drain_rate=10e6))
    try:
        data = os.urandom(600_000)
        msg = pair.a.post_send(pair.qp, data)
        pair.run(lambda: msg.completed is not None)
        b = pair.b.nic_counters()
        assert pair.received == [data]
        assert b["rx_drops"] == 0 and b["xoff_events"] >= 1 and b["pfc_tx"] >= 2    # paused, then resumed
        assert pair.a.pause_frames == b["pfc_tx"]           # every one reached the sender and applied
        assert pair.qp.retransmissions == 0
        assert pair.b.config.rx_xoff < b["max_rx_bytes"] <= pair.b.config.rx_buffer
    finally:
        pair.close()


def test_slow_receiver_without_host_pfc_drops_and_the_sender_retransmits(veth):
    config = dict(line_rate=100e6, rto=0.02, seed=7)
    pair = Pair(veth, TransportConfig(**config), TransportConfig(**config, drain_rate=10e6, host_pfc=False))
    try:
        msg = pair.a.post_send(pair.qp, 600_000)
        pair.run(lambda: msg.completed is not None, timeout=60)
        assert pair.b.nic_counters()["rx_drops"] > 0 and pair.b.nic_counters()["pfc_tx"] == 0
        assert pair.qp.retransmissions > 0 and pair.a.pause_frames == 0
    finally:
        pair.close()


def test_stuck_nic_pauses_continuously_until_it_recovers(veth):
    pair = _pair(veth)
    try:
        msg = pair.a.post_send(pair.qp, 3_000_000)
        pair.run(lambda: pair.qp.packets_sent > 50)
        pair.b.stuck(0.3)
        stuck_at = time.monotonic()
        pair.run(lambda: pair.a.pause_frames >= 1)
        sent_at_pause = pair.qp.packets_sent
        pair.run(lambda: time.monotonic() > stuck_at + 0.25)
        b = pair.b.nic_counters()
        assert b["stuck"] and b["pfc_tx"] >= 100            # a storm: a pause every 0.5 ms (33.5 ms / 64 at 1G)
        assert pair.qp.packets_sent <= sent_at_pause + 1 and msg.completed is None
        pair.run(lambda: msg.completed is not None)         # recovered: resumed (XON), all delivered
        assert not pair.b.nic_counters()["stuck"] and pair.a.paused_until == 0.0
    finally:
        pair.close()
