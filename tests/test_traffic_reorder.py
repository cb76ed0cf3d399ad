"""The transport's reordering-tolerant receive mode (``ooo``) against strict go-back-N.

End to end, the test stands between the responder's socket and its receive path: it reads the
requester's data frames off the responder's AF_PACKET socket and hands them to
``HostTransport._receive`` permuted, or without chosen PSNs, so the reordering and losses are
exactly the ones asked for. Frame-level tests feed the responder scapy-built frames in a chosen
order and read the ACKs and NAKs it sends back.
"""
from __future__ import annotations

import argparse
import os
import random
import select
import struct
import time

import pytest

from fabriclab.traffic import packets as p
from fabriclab.traffic.agent import add_transport_arguments, transport_argv, transport_config
from fabriclab.traffic.netns import VethPair, in_netns
from fabriclab.traffic.transport import BTH_OFF, HDR_LEN, PSN_MASK, HostTransport, TransportConfig


def _psn(frame: bytes) -> int:
    return struct.unpack_from("!I", frame, BTH_OFF + 8)[0] & PSN_MASK


class ReorderingPair:
    """Host A sends to host B over a veth pair. B's arriving frames are released in blocks of
    ``block`` frames, each block shuffled (a frame moves at most block - 1 places), and the
    first ``drop[psn]`` transmissions of a PSN are discarded."""

    def __init__(self, veth: VethPair, config: TransportConfig, block: int = 1,
                 drop: dict[int, int] | None = None, seed: int = 1):
        a, b = veth.hosts
        with in_netns(a.netns_path):
            self.a = HostTransport(a.ifname, config)
        with in_netns(b.netns_path):
            self.b = HostTransport(b.ifname, config)
        self.block, self.drop = block, dict(drop or {})
        self.dropped = 0
        self._shuffle = random.Random(seed).shuffle
        self._held: list[bytes] = []
        self.received: list[bytes] = []
        self.b.on_message = lambda qp, n, data, t: self.received.append(data)
        self.qp = self.a.connect(b.ip, 7, b.mac)
        self.a_ip = a.ip

    @property
    def responder(self):
        return self.b.qps[(self.a_ip, 7)]

    def _release(self, frames: list[bytes]) -> None:
        self._shuffle(frames)
        for frame in frames:
            self.b._receive(frame, time.monotonic())

    def run(self, done, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "transfer did not finish"
            self.a.poll(0)
            arrived = 0
            while True:
                try:
                    frame = self.b.sock.recv(9216)
                except BlockingIOError:
                    break
                arrived += 1
                psn = _psn(frame)
                if self.drop.get(psn):
                    self.drop[psn] -= 1
                    self.dropped += 1
                    continue
                self._held.append(frame)
            while len(self._held) >= self.block:
                self._release(self._held[:self.block])
                del self._held[:self.block]
            if not arrived and self._held:     # the requester paused: let the partial block go
                self._release(self._held)
                self._held = []
            select.select([self.a.sock, self.b.sock], [], [], 0.0005)

    def close(self) -> None:
        self.a.close()
        self.b.close()


@pytest.fixture
def veth():
    with VethPair(f"r{os.getpid() % 100000}") as pair:
        yield pair


def _config(ooo: bool, **overrides) -> TransportConfig:
    # a generous RTO: a busy shared machine must not make timeouts the test did not ask for
    return TransportConfig(**{**dict(line_rate=1e9, rto=0.5, seed=7, ooo=ooo), **overrides})


@pytest.mark.root
def test_reordering_is_delivered_exactly_without_retransmissions_in_ooo_mode(veth):
    config = _config(ooo=True)
    pair = ReorderingPair(veth, config, block=config.nak_threshold)
    try:
        data = [os.urandom(600_000), os.urandom(1), os.urandom(3000), os.urandom(1024), os.urandom(50_000)]
        msgs = [pair.a.post_send(pair.qp, d) for d in data]
        pair.run(lambda: all(m.completed for m in msgs))
        responder = pair.responder
        assert pair.received == data                               # in message order, byte for byte
        assert responder.out_of_order > 100                        # the permutation really reordered
        assert pair.qp.retransmissions == 0 and pair.qp.naks_received == 0 and pair.qp.timeouts == 0
        assert responder.duplicates == 0 and not responder.rx_pending
        assert responder.epsn == pair.qp.next_psn and responder.msn == len(data)
    finally:
        pair.close()


@pytest.mark.root
def test_strict_mode_goes_back_on_the_same_reordering(veth):
    config = _config(ooo=False)
    pair = ReorderingPair(veth, config, block=3)
    try:
        data = [os.urandom(100_000), os.urandom(5000)]
        msgs = [pair.a.post_send(pair.qp, d) for d in data]
        pair.run(lambda: all(m.completed for m in msgs))
        assert pair.received == data
        assert pair.qp.naks_received > 0 and pair.qp.retransmissions > pair.qp.naks_received
    finally:
        pair.close()


@pytest.mark.parametrize("ooo", [True, False])
@pytest.mark.root
def test_one_lost_packet(veth, ooo):
    pair = ReorderingPair(veth, _config(ooo=ooo), drop={40: 1})
    try:
        data = os.urandom(100 * 1024)                             # PSNs 0..99, all sent in one go
        msg = pair.a.post_send(pair.qp, data)
        pair.run(lambda: msg.completed is not None)
        assert pair.received == [data] and pair.dropped == 1
        assert pair.qp.naks_received == 1 and pair.qp.timeouts == 0
        if ooo:   # selective repeat: PSN 40 alone
            assert pair.qp.retransmissions == 1 and pair.responder.duplicates == 0
            assert pair.qp.packets_sent == 101
        else:     # go-back-N: 40 and whatever had been sent after it
            assert pair.qp.retransmissions > 1
    finally:
        pair.close()


@pytest.mark.root
def test_ooo_tail_loss_and_lost_retransmission_recover_by_timeout(veth):
    # PSN 99 (the last) has no packet after it to reveal its loss; PSN 50's retransmission is
    # lost too, and its hole is NAKed only once
    pair = ReorderingPair(veth, _config(ooo=True, rto=0.05), drop={50: 2, 99: 1})
    try:
        data = os.urandom(100 * 1024)
        msg = pair.a.post_send(pair.qp, data)
        pair.run(lambda: msg.completed is not None)
        assert pair.received == [data] and pair.dropped == 3
        assert pair.qp.naks_received == 1 and pair.qp.timeouts >= 1
        # one selective retransmission of 50, then one go-back from 50 after the timeout
        assert pair.qp.retransmissions <= 1 + pair.qp.timeouts * 50
        assert pair.qp.snd_una == pair.qp.next_psn == 100
    finally:
        pair.close()


@pytest.mark.root
def test_ooo_random_loss_and_reordering(veth):
    config = _config(ooo=True, rto=0.05, drop_probability=0.02)
    pair = ReorderingPair(veth, config, block=5, seed=3)
    try:
        data = [os.urandom(400_000), os.urandom(70_000)]
        msgs = [pair.a.post_send(pair.qp, d) for d in data]
        pair.run(lambda: all(m.completed for m in msgs))
        responder = pair.responder
        assert pair.received == data and responder.dropped_by_test > 0
        # every retransmission replaces a dropped packet or arrives as a duplicate ...
        retransmissions, dropped = pair.qp.retransmissions, responder.dropped_by_test
        assert dropped <= retransmissions <= dropped + responder.duplicates
        # ... from a spurious NAK before the threshold adapts, or from a timeout's go-back
        assert responder.duplicates <= 4 + pair.qp.timeouts * config.window
    finally:
        pair.close()


class FrameFeed:
    """A responder fed frames built with scapy, in whatever order a test chooses; the
    requester's host only reads the ACKs and NAKs the responder sends back."""

    def __init__(self, veth: VethPair, config: TransportConfig, start_psn: int):
        self.a, self.b = veth.hosts
        self.config = config
        with in_netns(self.b.netns_path):
            self.responder = HostTransport(self.b.ifname, config)
        with in_netns(self.a.netns_path):
            self.requester = HostTransport(self.a.ifname, config)
        self.delivered: list[bytes] = []
        self.responder.on_message = lambda qp, n, d, t: self.delivered.append(d)
        self.qp = self.responder.connect(self.a.ip, 9, self.a.mac)
        self.qp.epsn = self.next_psn = start_psn

    def message_frames(self, message: bytes) -> list[bytes]:
        """The frames of one SEND, AckReq on its last packet, with the next PSNs."""
        mtu = self.config.mtu
        chunks = [message[i:i + mtu] for i in range(0, len(message), mtu)]
        frames = []
        for i, chunk in enumerate(chunks):
            op = (p.OP_SEND_ONLY if len(chunks) == 1 else p.OP_SEND_FIRST if i == 0
                  else p.OP_SEND_LAST if i == len(chunks) - 1 else p.OP_SEND_MIDDLE)
            frames.append(bytes(p.rocev2_frame(self.a.mac, self.b.mac, self.a.ip, self.b.ip, dqpn=9,
                                               psn=self.next_psn & PSN_MASK, opcode=op, payload=chunk,
                                               ackreq=i == len(chunks) - 1)))
            self.next_psn += 1
        return frames

    def feed(self, frames: list[bytes]) -> None:
        for frame in frames:
            self.responder._receive(frame, time.monotonic())

    def replies(self) -> tuple[list[int], list[int]]:
        """The PSNs of the NAKs and of the ACKs sent since the last call."""
        frames = []
        while select.select([self.requester.sock], [], [], 0.1)[0]:
            frames.append(self.requester.sock.recv(9216))
        return ([_psn(f) for f in frames if f[HDR_LEN] == p.AETH_NAK_PSN_SEQUENCE_ERROR],
                [_psn(f) for f in frames if f[HDR_LEN] == p.AETH_ACK])

    def close(self) -> None:
        self.responder.close()
        self.requester.close()


@pytest.mark.root
def test_receive_window_holds_a_random_permutation_and_naks_each_hole_once(veth):
    start = (1 << 24) - 20                                   # the 24-bit PSN wraps in the window
    feed = FrameFeed(veth, _config(ooo=True), start)
    try:
        rng = random.Random(5)
        messages = [rng.randbytes(n) for n in (5000, 1024, 1, 40_000, 700, 12_000)]
        frames = [f for m in messages for f in feed.message_frames(m)]
        assert len(frames) < feed.config.window
        order = rng.sample(frames, len(frames))
        order[5:5] = order[10:14]                                    # duplicates, some still held
        feed.feed(order)
        qp = feed.qp
        assert feed.delivered == messages
        assert qp.epsn == feed.next_psn and not qp.rx_pending and qp.duplicates == 4
        assert qp.packets_received == len(frames) and qp.msn == len(messages)
        naks, acks = feed.replies()
        assert naks and len(naks) == len(set(naks))                  # each hole NAKed once
        assert all(0 <= (n - start) & PSN_MASK < len(frames) for n in naks)
        assert acks and acks[-1] == (feed.next_psn - 1) & PSN_MASK   # the last reply ACKs everything
    finally:
        feed.close()


@pytest.mark.root
def test_spurious_nak_raises_the_reordering_threshold(veth):
    feed = FrameFeed(veth, _config(ooo=True), 100)
    try:
        qp = feed.qp
        frames = feed.message_frames(os.urandom(40 * 1024))          # PSNs 100..139
        feed.feed(frames[1:6])                                       # 5 overtake PSN 100 ...
        assert feed.replies() == ([100], [])                         # ... NAKed at the 3rd
        feed.feed(frames[0:1] + frames[0:1])                         # late original, then the retransmission
        assert qp.spurious_naks == 1 and qp.nak_threshold == 6 and qp.epsn == 106
        feed.feed(frames[7:12] + frames[6:7])                        # 5 overtake PSN 106: now reordering
        assert feed.replies() == ([], []) and qp.epsn == 112
        feed.feed(frames[13:20])                                     # 7 above a real hole at 112
        assert feed.replies() == ([112], [])
        feed.feed(frames[12:13] + frames[20:])                       # its retransmission, the rest
        assert feed.replies() == ([], [139]) and qp.spurious_naks == 1
        assert feed.delivered == [b"".join(f[HDR_LEN:-4] for f in frames)]
    finally:
        feed.close()


def test_ooo_option_reaches_the_agent():
    parser = argparse.ArgumentParser()
    add_transport_arguments(parser)
    assert transport_config(parser.parse_args([])).ooo is False
    args = parser.parse_args(["--ooo"])
    assert "--ooo" in transport_argv(args)
    assert transport_config(parser.parse_args(transport_argv(args))).ooo is True
