"""802.1Qbb frames and PfcState: layout checked against scapy's independent decoder."""
from __future__ import annotations

import pytest
from scapy.contrib.mac_control import MACControlClassBasedFlowControl, MACControlPause
from scapy.layers.l2 import Ether

from fabriclab.switch.pfc import (OPCODE_PAUSE, OPCODE_PFC, PfcState, build_pause_frame, build_pfc_frame,
                                  is_mac_control, parse_mac_control, quanta_to_ns)

SRC = bytes.fromhex("02aabbccddee")


def test_pfc_frame_layout_decodes_in_scapy():
    frame = build_pfc_frame(SRC, {3: 0xFFFF, 5: 7})
    assert len(frame) == 60                      # 64 on the wire with the FCS
    packet = Ether(frame)
    assert packet.dst == "01:80:c2:00:00:01" and packet.src == "02:aa:bb:cc:dd:ee"
    assert packet.type == 0x8808
    pfc = packet[MACControlClassBasedFlowControl]
    assert pfc._op_code == 0x0101
    assert pfc.c3_enabled == 1 and pfc.c5_enabled == 1 and pfc.c0_enabled == 0
    assert pfc.c3_pause_time == 0xFFFF and pfc.c5_pause_time == 7 and pfc.c1_pause_time == 0


def test_parse_round_trip_and_scapy_built_frames():
    parsed = parse_mac_control(build_pfc_frame(SRC, {0: 1, 7: 0}))
    assert parsed.opcode == OPCODE_PFC and parsed.class_enable == 0b1000_0001
    assert parsed.quanta == (1, 0, 0, 0, 0, 0, 0, 0)
    by_scapy = bytes(Ether(dst="01:80:c2:00:00:01", src="02:00:00:00:00:01", type=0x8808)
                     / MACControlClassBasedFlowControl(c2_enabled=1, c2_pause_time=1234))
    parsed = parse_mac_control(by_scapy)
    assert parsed.class_enable == 0b100 and parsed.quanta[2] == 1234
    legacy = parse_mac_control(build_pause_frame(SRC, 300))
    assert legacy.opcode == OPCODE_PAUSE and legacy.quanta == (300,) * 8
    assert Ether(build_pause_frame(SRC, 300))[MACControlPause].pause_time == 300


def test_non_control_frames_are_not_parsed():
    ipv4 = bytes.fromhex("ffffffffffff" "020000000001" "0800") + bytes(46)
    assert not is_mac_control(ipv4) and parse_mac_control(ipv4) is None
    other_opcode = bytes.fromhex("0180c2000001" "020000000001" "8808" "0002") + bytes(44)
    assert is_mac_control(other_opcode) and parse_mac_control(other_opcode) is None
    with pytest.raises(ValueError):
        build_pfc_frame(SRC, {8: 1})


@pytest.mark.parametrize("rate, quanta, ns", [(100_000_000, 1, 5120), (1_000_000_000, 1, 512),
                                              (100_000_000_000, 0xFFFF, 335_539), (10_000_000, 10, 512_000)])
def test_quantum_is_512_bit_times(rate, quanta, ns):
    assert quanta_to_ns(quanta, rate) == ns


def test_pause_time_accounting_with_overlapping_frames():
    state = PfcState(1, 100_000_000, 0xFFFF, 10_000)
    pfc = lambda q: parse_mac_control(build_pfc_frame(SRC, {3: q}))
    state.receive(pfc(100), 0)                  # 512 µs
    state.receive(pfc(100), 200_000)            # extended: now until 712 µs
    assert state.paused_until[3] == 712_000
    assert state.paused_ns(3, 500_000) == 500_000
    state.receive(pfc(0), 600_000)              # resumed early
    assert state.paused_ns(3, 10**9) == 600_000
    state.receive(pfc(10), 2_000_000)           # 51.2 µs, left to expire
    assert state.paused_ns(3, 10**9) == 651_200 and state.pfc_rx[3] == 4


def test_ingress_accounting_fills_shared_then_headroom():
    state = PfcState(1, 100_000_000, 0xFFFF, 3_000)
    assert state.charge(3, 1500, 4000) == 1500 and state.charge(3, 1500, 4000) == 1500
    assert not state.needs_xoff(3)
    assert state.charge(3, 1500, 4000) == 0     # would pass XOFF: headroom
    assert state.needs_xoff(3)
    state.pause_frame_timers(3, True, 0)
    assert not state.needs_xoff(3) and state.xoff_events[3] == 1
    assert state.charge(3, 1500, 4000) == 0
    assert state.charge(3, 1500, 4000) == -1    # 4500 > 3000: no room, the packet is dropped
    assert state.headroom_overflow[3] == 1 and state.headroom[3] == 3000 and state.max_headroom[3] == 3000
    assert state.release(3, 1500) == 0 and state.headroom[3] == 1500
    assert state.release(3, 2500) == 1000 and state.headroom[3] == 0 and state.shared[3] == 2000
    assert state.needs_xon(3, 2000) and not state.needs_xon(3, 1999)
