"""The ports' C helpers (switch/native_ports.c) against the Python path: every frame size through
both rings with wrap-around, exact counters, malformed slots costing one frame, nothing leaked."""
from __future__ import annotations

import os
import random
import select
import socket
import struct

import pytest

from fabriclab.switch.ports import Port, native_ports

pytestmark = pytest.mark.root

ETH = bytes.fromhex("020000000002" "020000000001") + b"\x88\xb5"


@pytest.fixture(autouse=True, params=["native", "python"])
def ports_path(request, monkeypatch):
    """Every test runs on the C helpers (which must build here) and on the Python path."""
    monkeypatch.setenv("FABRICLAB_ENGINE", "auto" if request.param == "native" else "python")
    assert (native_ports() is not None) == (request.param == "native")
    return request.param


def test_every_frame_size_arrives_intact_in_order_and_is_counted(veth_pair):
    a, b = veth_pair                    # MTU 9000: frames of 14..9014 bytes all fit both rings
    sender, peer = Port(1, b, max_frame=9022), Port(2, a, max_frame=9022)
    try:
        rng = random.Random(7)
        frames = [ETH[:12] + rng.randbytes(size - 12) for size in range(14, 9015)]
        got: list[bytes] = []
        chunk = 100       # > TX_BATCH, < the rings' slots (128 / 512 of 16 KiB): each ring wraps often
        for start in range(0, len(frames), chunk):
            for frame in frames[start:start + chunk]:
                assert sender.stage(frame)
            sender.flush()
            want = min(start + chunk, len(frames))
            while len(got) < want:
                if not select.select([peer], [], [], 2.0)[0]:
                    break
                got += peer.receive(256)
        assert len(got) == len(frames)
        assert got == frames
        total = sum(map(len, frames))
        assert (sender.tx_frames, sender.tx_bytes) == (len(frames), total)
        assert (peer.rx_frames, peer.rx_bytes) == (len(frames), total)
        assert sender.drops == {} and peer.drops == {}
    finally:
        sender.close()
        peer.close()


def _fill_slot(port: Port, index: int, frame: bytes, mac: int = 96, captured: int | None = None) -> None:
    """Write a slot as the kernel would (TPACKET_V2 header, sockaddr_ll, frame), with the header's
    frame offset and captured length as given, and hand it to us."""
    offset = index * port._slot
    ring = port._ring
    if mac + len(frame) <= port._slot:
        ring[offset + mac:offset + mac + len(frame)] = frame
    ring[offset + 42] = socket.PACKET_HOST
    captured = len(frame) if captured is None else captured
    struct.pack_into("=IIIHHIIHH", ring, offset, 1, captured, captured, mac, mac + 14, 10 + index, 0, 0, 0)


def test_a_malformed_slot_costs_that_frame_only(veth_pair):
    _, b = veth_pair
    port = Port(1, b)                   # a quiet link: we play the kernel
    try:
        good = [ETH + bytes([i]) * 50 for i in range(4)]
        _fill_slot(port, 0, good[0])
        _fill_slot(port, 1, good[1], mac=port._slot - 20)                  # runs past the slot
        _fill_slot(port, 2, good[2], mac=8)                                # inside the header
        _fill_slot(port, 3, good[3], captured=port._slot)                  # longer than the slot
        _fill_slot(port, 4, good[3])
        assert port.receive(64) == [good[0], good[3]]
        assert port.drops == {"rx_malformed_slot": 3}
        assert (port.rx_frames, port.rx_bytes) == (2, 2 * len(good[0]))
        assert port._next == 5          # every slot handed back, the walk goes on after them
    finally:
        port.close()


def test_runts_and_truncated_frames_are_counted(veth_pair):
    _, b = veth_pair
    port = Port(1, b)
    try:
        frame = ETH + bytes(50)
        _fill_slot(port, 0, frame[:10])                                    # shorter than a header
        offset = 1 * port._slot                                            # captured < length
        _fill_slot(port, 1, frame)
        struct.pack_into("=I", port._ring, offset + 4, len(frame) + 100)
        _fill_slot(port, 2, frame)
        assert port.receive(64) == [frame]
        assert port.drops == {"rx_runt": 1, "rx_too_big": 1}
    finally:
        port.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _mappings() -> int:
    with open("/proc/self/maps") as maps:
        return sum(1 for _ in maps)


def test_close_releases_sockets_and_rings(veth_pair):
    a, b = veth_pair
    Port(1, b).close()                  # the first port may load the C module (a mapping for good)
    fds, mappings = _open_fds(), _mappings()
    for _ in range(3):
        sender, peer = Port(1, b), Port(2, a)
        sender.stage(ETH + bytes(50))
        sender.flush()
        select.select([peer], [], [], 1.0)
        assert peer.receive(8)
        sender.close()
        peer.close()
        sender.close()                  # twice is harmless
    assert _open_fds() == fds
    assert _mappings() == mappings
    with pytest.raises(ValueError):     # a closed ring is refused, never touched
        sender.stage(ETH + bytes(50))
        sender.flush()
