"""The switch's transmissions are staged in each port's transmit ring and leave together at the end
of a loop turn; PFC/PAUSE frames leave at once (a pause that waits for the turn's end would
arrive later than the headroom allows for)."""
from __future__ import annotations

import select
import time

import pytest

from fabriclab.switch.pfc import build_pfc_frame
from fabriclab.switch.ports import Port, native_ports
from fabriclab.switch.switch import Switch
from fabriclab.switch.switch_config import config_from_dict

pytestmark = pytest.mark.root


@pytest.fixture(autouse=True, params=["native", "python"])
def ports_path(request, monkeypatch):
    """Every test runs on the C helpers (native_ports.c, which must build here) and on Python."""
    monkeypatch.setenv("FABRICLAB_ENGINE", "auto" if request.param == "native" else "python")
    assert (native_ports() is not None) == (request.param == "native")

DATA = bytes.fromhex("020000000002" "020000000001" "88b5") + bytes(100)


def received(port: Port, wait: float = 0.2) -> list[bytes]:
    select.select([port], [], [], wait)
    time.sleep(0.02)
    return port.receive(64)


def test_data_waits_for_the_flush_and_pfc_frames_do_not(veth_pair):
    a, b = veth_pair
    switch = Switch(config_from_dict({"rate": "1G"}), [(1, b)])
    peer = Port(2, a)
    try:
        switch._transmit(1, DATA)
        assert received(peer, 0.05) == []                  # staged, not yet sent
        pause = build_pfc_frame(switch.ports[1].mac, {3: 100})
        switch._transmit(1, pause)                         # flushes the port: both leave, in order
        assert received(peer) == [DATA, pause]
        switch._transmit(1, DATA)
        switch.ports[1].flush()                            # what the loop does at the end of a turn
        assert received(peer) == [DATA]
        assert switch.ports[1].tx_frames == 3
    finally:
        peer.close()
        switch.close()
