"""The receive ring's walk: per-frame kernel timestamps, and recovery from a lost read position."""
from __future__ import annotations

import select
import socket
import struct
import time

import pytest

from fabriclab.switch.ports import Port, native_ports

pytestmark = pytest.mark.root


@pytest.fixture(autouse=True, params=["native", "python"])
def ports_path(request, monkeypatch):
    """Every test runs on the C helpers (native_ports.c, which must build here) and on Python."""
    monkeypatch.setenv("FABRICLAB_ENGINE", "auto" if request.param == "native" else "python")
    assert (native_ports() is not None) == (request.param == "native")

ETH = bytes.fromhex("020000000002" "020000000001") + b"\x88\xb5"


def frames(n: int, start: int = 0) -> list[bytes]:
    return [ETH + i.to_bytes(4, "big") + bytes(60) for i in range(start, start + n)]


def test_frames_carry_their_own_arrival_times(veth_pair):
    a, b = veth_pair
    port = Port(1, b)
    sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sender.bind((a, 0))
    try:
        sent_at = []
        for frame in frames(3):
            sent_at.append(time.time_ns())
            sender.send(frame)
            time.sleep(0.02)
        got = port.receive_stamped(64)                 # one batch, read well after the first arrival
        assert [f for _, f in got] == frames(3)
        stamps = [t for t, _ in got]
        for stamp, sent in zip(stamps, sent_at):
            assert 0 <= stamp - sent < 10_000_000          # each within 10 ms of its own send
        assert stamps[1] - stamps[0] > 15_000_000 and stamps[2] - stamps[1] > 15_000_000
    finally:
        sender.close()
        port.close()


def test_resync_finds_frames_the_walk_no_longer_looks_at(veth_pair):
    a, b = veth_pair
    port = Port(1, b)
    sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sender.bind((a, 0))
    try:
        assert port.resync() is False                  # nothing waiting: nothing to move to
        port._next = 100                               # lose the position, as a desynchronised walk would
        for frame in frames(5):
            sender.send(frame)
        select.select([port], [], [], 1.0)             # epoll/select: readable...
        assert port.receive(64) == []                  # ...yet the walk sees nothing
        assert port.resync() is True
        assert port.receive(64) == frames(5)           # oldest first, in order
        assert port.drops["rx_ring_resync"] == 1
        for frame in frames(3, 5):                     # and the walk stays in step afterwards
            sender.send(frame)
        select.select([port], [], [], 1.0)
        time.sleep(0.01)
        assert port.receive(64) == frames(3, 5)
    finally:
        sender.close()
        port.close()


def _fill_slot(port: Port, index: int, frame: bytes, stamp_s: int) -> None:
    """Write a slot as the kernel would (TPACKET_V2 header, sockaddr_ll, frame) and hand it to us."""
    offset, mac = index * port._slot, 96
    ring = port._ring
    ring[offset + mac:offset + mac + len(frame)] = frame
    ring[offset + 42] = socket.PACKET_HOST                 # sll_pkttype of the sockaddr_ll
    struct.pack_into("=IIIHHIIHH", ring, offset, 1, len(frame), len(frame), mac, mac + 14, stamp_s, 0, 0, 0)


def test_arrival_times_never_decrease_along_the_ring(veth_pair):
    _, b = veth_pair
    port = Port(1, b)                                      # a quiet link: we play the kernel
    try:
        # a fresh stamp (30 s) among older ones, as a slot filled out of turn carries
        for index, stamp in enumerate((10, 30, 20, 25)):
            _fill_slot(port, index, frames(1, index)[0], stamp)
        got = port.receive_stamped(2)                      # the third slot bounds the second
        assert [t // 1_000_000_000 for t, _ in got] == [10, 20]
        assert [f for _, f in got] == frames(2)
        got = port.receive_stamped(64)
        assert [t // 1_000_000_000 for t, _ in got] == [20, 25]
        assert [f for _, f in got] == frames(2, 2)
    finally:
        port.close()
