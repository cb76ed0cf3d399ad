"""The transmit ring: staged frames leave intact and in order at the next flush, frames the ring
cannot take go through send() in their place, and frames the kernel refuses are taken back and
counted without the ring's position parting from the kernel's."""
from __future__ import annotations

import select
import subprocess
import time

import pytest

from fabriclab.switch.ports import TX_BATCH, Port, native_ports, read_pcap

pytestmark = pytest.mark.root


@pytest.fixture(autouse=True, params=["native", "python"])
def ports_path(request, monkeypatch):
    """Every test runs on the C helpers (native_ports.c, which must build here) and on Python."""
    monkeypatch.setenv("FABRICLAB_ENGINE", "auto" if request.param == "native" else "python")
    assert (native_ports() is not None) == (request.param == "native")

ETH = bytes.fromhex("020000000002" "020000000001")


def frame(seq: int, size: int = 200, vlan_pcp: int | None = None) -> bytes:
    tag = b"" if vlan_pcp is None else b"\x81\x00" + (vlan_pcp << 13 | 5).to_bytes(2, "big")
    head = ETH + tag + b"\x88\xb5" + seq.to_bytes(4, "big")
    return head + bytes(size - len(head))


def drain(port: Port, want: int, timeout: float = 5.0) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        select.select([port], [], [], 0.05)
        got += port.receive(256)
    return got


def test_staged_frames_arrive_intact_in_order_and_are_counted(veth_pair, tmp_path):
    a, b = veth_pair
    sender, peer = Port(1, b, pcap_dir=tmp_path), Port(2, a)
    try:
        sizes = [60, 61, 200, 1000, 1514, 1400, 77]
        frames = [frame(i, sizes[i % len(sizes)], vlan_pcp=3 if i % 5 == 0 else None) for i in range(300)]
        for f in frames[:10]:
            assert sender.stage(f)
        assert sender.staged == 10                      # nothing leaves before the flush ...
        assert sender.tx_frames == 0 and peer.receive(64) == []
        assert sender.flush() == 10                     # ... then all of it, with one system call
        for f in frames[10:]:
            assert sender.stage(f)
            assert sender.staged < TX_BATCH             # a long run flushes by itself
        sender.flush()
        assert drain(peer, len(frames)) == frames      # byte for byte, in order (VLAN tags restored)
        assert sender.tx_frames == len(frames) and sender.tx_bytes == sum(map(len, frames))
        assert sender.drops == {}
        sender.pcap.flush()
        assert [f for _, f in read_pcap(next(tmp_path.glob("port1-*.pcap")))] == frames
    finally:
        sender.close()
        peer.close()


def test_frames_the_ring_does_not_take_go_through_send_in_order(veth_pair):
    a, b = veth_pair                                   # MTU 9000, ring slots of 2 KiB
    sender, peer = Port(1, b, max_frame=1522), Port(2, a, max_frame=9022)
    try:
        small, big, huge = frame(1), frame(2, 4000), frame(3, 9100)
        assert sender.stage(small)
        assert sender.stage(big)                        # too big for a slot: sent at once, after `small`
        assert sender.stage(huge) is False              # larger than the MTU allows: refused as before
        assert sender.send(frame(4))
        assert drain(peer, 3) == [small, big, frame(4)]
        assert sender.drops == {"tx_too_big": 1}
        assert sender.tx_frames == 3
    finally:
        sender.close()
        peer.close()


def test_refused_frames_are_taken_back_and_the_ring_stays_in_step(veth_pair):
    a, b = veth_pair
    sender, peer = Port(1, b), Port(2, a)
    try:
        subprocess.run(["ip", "link", "set", b, "down"], check=True)
        for i in range(5):
            assert sender.stage(frame(i))
        assert sender.flush() == 0                      # ENETDOWN: none of them left
        assert sender.drops == {"tx_interface_down": 5}
        assert sender.staged == 0 and sender.tx_frames == 0
        subprocess.run(["ip", "link", "set", b, "up"], check=True)
        subprocess.run(["ip", "link", "set", a, "up"], check=True)
        time.sleep(0.1)
        later = [frame(100 + i) for i in range(40)]
        for f in later:
            sender.stage(f)
        sender.flush()
        # the slots the kernel did not take were reused: had our position moved on, the
        # kernel (still waiting at the first of them) would send nothing
        assert drain(peer, len(later)) == later
        assert sender.tx_frames == len(later)
    finally:
        sender.close()
        peer.close()


def test_a_full_ring_counts_drops_and_recovers(veth_pair):
    a, b = veth_pair
    sender, peer = Port(1, b), Port(2, a)
    # a slow qdisc holds every frame the kernel takes: ring slots stay busy until it lets go
    subprocess.run(["tc", "qdisc", "add", "dev", b, "root", "tbf", "rate", "1mbit", "burst", "1600",
                    "limit", "30000000"], check=True)
    try:
        slots = sender._tx_slots
        accepted = sum(sender.stage(frame(i, 100)) for i in range(slots + 50))
        sender.flush()
        # one frame per slot, plus the few the qdisc's burst let out (which freed their slots)
        assert slots <= accepted < slots + 40
        assert sender.drops == {"tx_buffer_full": slots + 50 - accepted}
        assert sender.tx_frames == accepted
        subprocess.run(["tc", "qdisc", "del", "dev", b, "root"], check=True)   # frees the held frames
        time.sleep(0.1)
        peer.receive(4096)                              # whatever the qdisc had let through
        assert sender.send(frame(7777))
        assert frame(7777) in drain(peer, 1)
    finally:
        sender.close()
        peer.close()


def test_a_frame_the_qdisc_drops_costs_that_frame_only(veth_pair):
    a, b = veth_pair
    sender, peer = Port(1, b), Port(2, a)
    # a tiny queue that lets the first few frames through and drops the rest (ENOBUFS per frame)
    subprocess.run(["tc", "qdisc", "add", "dev", b, "root", "tbf", "rate", "1mbit", "burst", "1600",
                    "limit", "600"], check=True)
    try:
        frames = [frame(i, 100) for i in range(30)]             # fewer than TX_BATCH: one flush
        for f in frames:
            sender.stage(f)
        sent = sender.flush()
        dropped = sender.drops.get("tx_buffer_full", 0)
        assert 0 < sent < 30 and sent + dropped == 30           # each frame either left or was counted
        subprocess.run(["tc", "qdisc", "del", "dev", b, "root"], check=True)
        got = drain(peer, sent, timeout=2.0)
        assert got == [f for f in frames if f in got] and len(got) >= sent - 10   # in order
        later = [frame(100 + i) for i in range(5)]
        for f in later:
            sender.stage(f)
        sender.flush()
        assert drain(peer, 5) == later                          # the ring stayed in step
    finally:
        sender.close()
        peer.close()
