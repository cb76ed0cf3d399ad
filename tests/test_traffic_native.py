"""The transport's C path (traffic/native_transport.c) against its Python reference: the same
ICRCs, the same frames sent, the same frames received in batches, and the same transfers."""
from __future__ import annotations

import os
import random
import select
import socket
import time

import pytest

from fabriclab.traffic import transport as tr
from fabriclab.traffic.netns import VethPair, in_netns
from fabriclab.traffic.transport import HostTransport, TransportConfig

native = tr.native_transport()
needs_native = pytest.mark.skipif(native is None, reason="no C compiler: the Python path is all there is")


def _headers(rng: random.Random) -> bytearray:
    return bytearray(rng.randbytes(tr.HDR_LEN))


@needs_native
def test_icrc_matches_the_python_reference():
    rng = random.Random(1)
    for size in (0, 1, 4, 63, 1024, 4096, 9000):
        hdr, payload = _headers(rng), rng.randbytes(size)
        assert native.icrc(hdr, payload) == tr.icrc(hdr, payload)
        assert native.icrc(hdr, memoryview(payload)[1:]) == tr.icrc(hdr, memoryview(payload)[1:])
    with pytest.raises(ValueError):
        native.icrc(b"short", b"")


class _Wire:
    """A transport's wire methods on one end of a datagram socketpair: what each path puts on
    the wire is read back from the other end."""

    def __init__(self, use_native: bool):
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.ours.setblocking(False)
        self.theirs.setblocking(False)
        self.transport = object.__new__(HostTransport)      # just the wire half: no interface needed
        self.transport.sock = self.ours
        if use_native:
            fd = self.ours.fileno()
            self.transport._send_frame = lambda hdr, payload: native.send_frame(fd, hdr, payload)
            self.transport._reply = lambda hdr, psn, aeth: native.reply(fd, hdr, psn, aeth)
            self.transport._recv_batch = lambda limit: native.recv_batch(fd, limit)

    def sent(self) -> list[bytes]:
        frames = []
        while True:
            try:
                frames.append(self.theirs.recv(65536))
            except BlockingIOError:
                return frames

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


@needs_native
def test_frames_sent_and_received_are_the_same_on_both_paths():
    wires = {name: _Wire(name == "native") for name in ("python", "native")}
    try:
        out = {}
        for name, wire in wires.items():
            rng = random.Random(2)
            for _ in range(50):
                hdr, payload = _headers(rng), rng.randbytes(rng.randrange(0, 2000))
                assert wire.transport._send_frame(hdr, payload) == tr.HDR_LEN + len(payload) + 4
                ack = _headers(rng)
                wire.transport._reply(ack, rng.randrange(1 << 24), rng.randrange(1 << 32))
            out[name] = wire.sent()
            # receiving: 300 frames in, read in batches of 256 and 64 (several recvmmsg calls)
            frames = [rng.randbytes(rng.randrange(60, 1600)) for _ in range(300)]
            wire.theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            for frame in frames:
                wire.theirs.send(frame)
            got = wire.transport._recv_batch(256) + wire.transport._recv_batch(64)
            assert got == frames
            assert wire.transport._recv_batch(8) == []
        assert len(out["python"]) == 100 and out["python"] == out["native"]
    finally:
        for wire in wires.values():
            wire.close()


@needs_native
def test_a_full_socket_is_reported_the_same_on_both_paths():
    for name in ("python", "native"):
        wire = _Wire(name == "native")
        try:
            hdr, payload = bytearray(tr.HDR_LEN), bytes(1024)
            results = [wire.transport._send_frame(hdr, payload) for _ in range(5000)]
            assert 0 in results and results[0] > 0            # the buffer filled; 0, not an exception
        finally:
            wire.close()


@pytest.fixture
def veth():
    with VethPair(f"n{os.getpid() % 100000}") as pair:
        yield pair


def _transfer(veth, use_native: bool, size: int) -> tuple[list[bytes], list[bytes], dict, dict]:
    """A sends ``size`` bytes of seeded random data to B; every frame either sent, captured on
    B's side, plus both QPs' counters."""
    a, b = veth.hosts
    config = dict(line_rate=1e9, rto=0.05, seed=3, ooo=False)
    with in_netns(a.netns_path):
        ta = HostTransport(a.ifname, TransportConfig(**config), native=None if use_native else False)
    with in_netns(b.netns_path):
        tb = HostTransport(b.ifname, TransportConfig(**config), native=None if use_native else False)
        tap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        tap.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)        # SO_RCVBUFFORCE: hold the whole transfer
        tap.bind((b.ifname, 0))
    try:
        assert ta.native == use_native and tb.native == use_native
        received = []
        tb.on_message = lambda qp, n, data, t: received.append(data)
        qp = ta.connect(b.ip, 9, b.mac)
        data = random.Random(4).randbytes(size)
        msg = ta.post_send(qp, data)
        deadline = time.monotonic() + 30
        while msg.completed is None:
            assert time.monotonic() < deadline, "transfer did not finish"
            ta.poll(0)
            tb.poll(0)
            select.select([ta.sock, tb.sock], [], [], 0.0005)
        assert received == [data]
        tap.setblocking(False)
        frames = []
        while True:
            try:
                frames.append(tap.recv(65536))
            except BlockingIOError:
                break
        roce = [f for f in frames if len(f) > tr.HDR_LEN and f[12:14] == b"\x08\x00" and f[23] == 17]
        data_frames = [f for f in roce if f[tr.BTH_OFF] <= 4]          # SEND opcodes, A -> B
        acks = [f for f in roce if f[tr.BTH_OFF] == 0x11]               # ACKs, B -> A
        counters = ta.qps[(b.ip, 9)].counters(), tb.qps[(a.ip, 9)].counters()
        return data_frames, acks, *counters
    finally:
        tap.close()
        ta.close()
        tb.close()


@needs_native
@pytest.mark.root
def test_a_transfer_is_the_same_frames_on_both_paths(veth):
    """Over a real veth (no loss): the data frames and ACKs of the C path are byte for byte the
    Python path's, and so are the QP counters."""
    python = _transfer(veth, False, 300_000)
    c = _transfer(veth, True, 300_000)
    assert len(python[0]) == -(-300_000 // 1024) and python[1]
    assert c[0] == python[0] and c[1] == python[1]
    assert c[2] == python[2] and c[3] == python[3]
