"""RoCEv2 and PFC layers: build/parse round trips, pause-time arithmetic, tshark decoding."""
from __future__ import annotations

import subprocess

import pytest
from scapy.all import Ether, raw, wrpcap
from scapy.layers.inet import IP, UDP

from fabriclab.traffic import packets as p

A = dict(src_mac="02:00:00:00:00:01", dst_mac="02:00:00:00:00:02", src_ip="192.0.2.1", dst_ip="192.0.2.2")
B = dict(src_mac="02:00:00:00:00:02", dst_mac="02:00:00:00:00:01", src_ip="192.0.2.2", dst_ip="192.0.2.1")


def test_data_frame_round_trip():
    frame = p.rocev2_frame(**A, dqpn=0xABCDE, psn=0xFFFFFE, opcode=p.OP_SEND_MIDDLE, payload=b"\x07" * 100,
                           ackreq=True, dscp=26)
    wire = raw(frame)
    assert len(wire) == 14 + 20 + 8 + p.BTH_LEN + 100 + p.ICRC_LEN
    parsed = Ether(wire)
    bth = parsed[p.BTH]
    assert parsed[UDP].dport == p.ROCEV2_UDP_PORT
    assert (bth.opcode, bth.dqpn, bth.psn, bth.ackreq) == (p.OP_SEND_MIDDLE, 0xABCDE, 0xFFFFFE, 1)
    assert parsed[IP].tos == (26 << 2) | 0b10  # DSCP 26, ECT(0)
    assert raw(bth.payload) == b"\x07" * 100
    # the ICRC covers the payload: change one byte and it changes
    other = raw(p.rocev2_frame(**A, dqpn=0xABCDE, psn=0xFFFFFE, opcode=p.OP_SEND_MIDDLE,
                               payload=b"\x07" * 99 + b"\x08", ackreq=True))
    assert wire[-4:] != other[-4:]


def test_icrc_ignores_variant_fields():
    # ToS (DSCP/ECN) and TTL change in flight; the ICRC must not depend on them
    one = raw(p.rocev2_frame(**A, dqpn=3, psn=1, payload=b"abc", dscp=26, ecn=0b10))
    marked = raw(p.rocev2_frame(**A, dqpn=3, psn=1, payload=b"abc", dscp=26, ecn=0b11))
    assert one[-4:] == marked[-4:]
    assert one[15] != marked[15]


def test_reth_round_trip():
    reth = p.RETH(va=0x1122334455667788, rkey=0xCAFEBABE, dmalen=4096)
    frame = p.rocev2_frame(**A, dqpn=9, psn=4, opcode=p.OP_WRITE_ONLY, payload=raw(reth) + b"z" * 16)
    parsed = Ether(raw(frame))
    assert parsed.haslayer(p.RETH)
    assert (parsed[p.RETH].va, parsed[p.RETH].rkey, parsed[p.RETH].dmalen) == (0x1122334455667788, 0xCAFEBABE, 4096)
    assert len(raw(p.RETH())) == 16


def test_ack_nak_and_cnp():
    nak = Ether(raw(p.ack_frame(**B, dqpn=7, psn=42, syndrome=p.AETH_NAK_PSN_SEQUENCE_ERROR, msn=3)))
    assert nak[p.BTH].opcode == p.OP_ACK and nak[p.BTH].psn == 42
    assert nak[p.AETH].syndrome == 0x60 and nak[p.AETH].msn == 3
    cnp = raw(p.cnp_frame(**B, dqpn=7))
    parsed = Ether(cnp)
    assert parsed[p.BTH].opcode == 0x81 and parsed[p.BTH].becn == 1 and parsed[p.BTH].dqpn == 7
    assert parsed[IP].tos == 48 << 2            # CNP class, not ECN-capable
    assert len(cnp) == 14 + 20 + 8 + p.BTH_LEN + p.CNP_BODY_LEN + p.ICRC_LEN


def test_pfc_frame_layout():
    wire = raw(p.pfc_frame("02:00:00:00:00:03", {3: 0xFFFF, 5: 0}))
    assert len(wire) == 60                       # 64-byte minimum less the FCS
    assert wire[:6] == bytes.fromhex("0180c2000001")
    assert wire[12:14] == b"\x88\x08" and wire[14:16] == b"\x01\x01"
    assert wire[16:18] == bytes([0, (1 << 3) | (1 << 5)])   # class-enable vector
    timers = [int.from_bytes(wire[18 + 2 * i:20 + 2 * i], "big") for i in range(8)]
    assert timers == [0, 0, 0, 0xFFFF, 0, 0, 0, 0]
    assert p.pfc_pause_quanta(Ether(wire)) == {3: 0xFFFF, 5: 0}
    with pytest.raises(ValueError):
        p.pfc_frame("02:00:00:00:00:03", {8: 1})


def test_pause_frame_and_time():
    wire = raw(p.pause_frame("02:00:00:00:00:03", 1000))
    assert wire[14:18] == b"\x00\x01\x03\xe8" and len(wire) == 60
    assert p.pause_quanta_to_seconds(1, 100e6) == pytest.approx(5.12e-6)
    assert p.pause_quanta_to_seconds(1, 1e9) == pytest.approx(512e-9)   # scapy says 1.024 µs
    assert p.pause_quanta_to_seconds(65535, 100e9) == pytest.approx(65535 * 5.12e-9)
    assert p.seconds_to_pause_quanta(5.12e-6, 100e6) == 1
    assert p.seconds_to_pause_quanta(5.13e-6, 100e6) == 2
    assert p.seconds_to_pause_quanta(10.0, 100e6) == 65535


def test_tshark_decodes_roce_and_pfc(tmp_path):
    frames = [p.rocev2_frame(**A, dqpn=0x11, psn=5, payload=b"x" * 64, ackreq=True),
              p.ack_frame(**B, dqpn=0x11, psn=5, syndrome=p.AETH_NAK_PSN_SEQUENCE_ERROR),
              p.rocev2_frame(**A, dqpn=0x11, psn=6, opcode=p.OP_WRITE_ONLY, payload=raw(p.RETH(va=0x1000)) + b"y"),
              p.cnp_frame(**B, dqpn=0x11),
              p.pfc_frame("02:00:00:00:00:03", {3: 100}),
              p.pause_frame("02:00:00:00:00:03", 7)]
    pcap = tmp_path / "ours.pcap"
    wrpcap(str(pcap), frames)
    out = subprocess.run(["tshark", "-r", str(pcap), "-V"], capture_output=True, text=True, check=True).stdout
    per_frame = out.split("\nFrame ")
    assert len(per_frame) == 6
    assert "InfiniBand" in per_frame[0] and "SEND Only" in per_frame[0] and "Destination Queue Pair: 0x000011" in per_frame[0]
    assert "Packet Sequence Number: 5" in per_frame[0]
    assert "PSN Sequence Error" in per_frame[1]
    assert "RETH" in per_frame[2] and "0x0000000000001000" in per_frame[2]
    assert "InfiniBand" in per_frame[3] and "(129)" in per_frame[3]   # tshark 4.0 has no CNP name
    assert "Class Based Flow Control" in per_frame[4] and "C3" in per_frame[4]
    assert "pause_time: 7" in per_frame[5]
