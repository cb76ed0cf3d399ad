"""AF_PACKET ports on a veth_pair pair: the receive ring, VLAN tags, our own frames, pcap, overflow."""
from __future__ import annotations

import select
import socket
import time

import pytest

from fabriclab.switch.ports import Port, native_ports, read_pcap

pytestmark = pytest.mark.root


@pytest.fixture(autouse=True, params=["native", "python"])
def ports_path(request, monkeypatch):
    """Every test runs on the C helpers (native_ports.c, which must build here) and on Python."""
    monkeypatch.setenv("FABRICLAB_ENGINE", "auto" if request.param == "native" else "python")
    assert (native_ports() is not None) == (request.param == "native")


def raw_sender(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((ifname, 0))
    return sock


def drain(port: Port, want: int, timeout: float = 5.0) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        select.select([port], [], [], 0.1)
        got += port.receive(64)
    return got


ETH = bytes.fromhex("020000000002" "020000000001")


def test_ring_receives_frames_and_restores_vlan_tags(veth_pair, tmp_path):
    a, b = veth_pair
    port = Port(1, b, pcap_dir=tmp_path)
    sender = raw_sender(a)
    try:
        plain = ETH + b"\x88\xb5" + bytes(100)
        dot1q = ETH + b"\x81\x00" + (5 << 13 | 42).to_bytes(2, "big") + b"\x88\xb5" + bytes(100)
        qinq = ETH + b"\x88\xa8" + (3 << 13 | 7).to_bytes(2, "big") + b"\x88\xb5" + bytes(100)
        for frame in (plain, dot1q, qinq):
            sender.send(frame)
        assert drain(port, 3) == [plain, dot1q, qinq]   # the kernel stripped the tags; we put them back

        assert port.send(ETH + b"\x88\xb5" + bytes(50))
        time.sleep(0.1)
        assert port.receive(64) == []                   # our own transmissions are not received
        port.pcap.flush()
        records = [frame for _, frame in read_pcap(next(tmp_path.glob("port1-*.pcap")))]
        assert records == [plain, dot1q, qinq, ETH + b"\x88\xb5" + bytes(50)]
    finally:
        sender.close()
        port.close()


def test_oversized_frames_and_ring_overflow_are_counted(veth_pair):
    a, b = veth_pair
    port = Port(1, b, max_frame=1522)
    sender = raw_sender(a)
    try:
        sender.send(ETH + b"\x88\xb5" + bytes(4000))    # bigger than a ring slot
        sender.send(ETH + b"\x88\xb5" + bytes(100))
        assert drain(port, 1) == [ETH + b"\x88\xb5" + bytes(100)]
        assert port.drops["rx_too_big"] == 1
        for _ in range(6000):                            # far more than the ring holds, unread
            sender.send(ETH + b"\x88\xb5" + bytes(100))
        assert port.stats()["drops"].get("rx_socket_full", 0) > 0
        assert len(drain(port, 6000, timeout=1.0)) < 6000
    finally:
        sender.close()
        port.close()
