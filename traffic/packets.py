"""Scapy layers for the frames fabriclab's hosts exchange: RoCEv2 and PFC / PAUSE.

This module is the one definition generators, tests and decoders use. It reuses scapy's
contrib layers and adds what they lack:

* ``scapy.contrib.roce`` has BTH (12 bytes, with the 4-byte ICRC trailer as an FCS field that
  scapy computes on build), AETH and the CNP body (BTH opcode 0x81 + 16 reserved bytes, as in
  the RoCEv2 CNP format of the IBTA RoCEv2 annex A17.9.3), and binds UDP dport 4791 -> BTH.
  It lacks RETH (IBTA vol.1 9.3.3: virtual address 64, R_Key 32, DMA length 32), added here.
* ``scapy.contrib.mac_control`` has 802.3x PAUSE and 802.1Qbb class-based flow control.
  Its ``get_pause_time`` uses 1.024 µs per quantum at 1 Gbit/s, twice the 512 bit times the
  standard defines, so pause times are computed here (``pause_quanta_to_seconds``).

tshark (4.0) decodes UDP 4791 as "InfiniBand" (RRoCE: BTH, RETH, AETH with ACK/NAK syndromes)
by default, no ``-d udp.port==4791,infiniband`` needed; it names the CNP opcode "Unknown (129)".
MAC control frames decode as "MAC Control": PFC as "Class Based Flow Control [CBFC] Pause" with
the class-enable vector and the eight timers, 802.3x as "Pause" with its one timer.
"""
from __future__ import annotations

from scapy.contrib.mac_control import (  # noqa: F401  (re-exported: the one definition)
    MACControl,
    MACControlClassBasedFlowControl,
    MACControlPause,
)
from scapy.contrib.roce import AETH, BTH, CNP_OPCODE, CNPPadding, opcode  # noqa: F401
from scapy.fields import IntField, XIntField, XLongField
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, bind_layers

ROCEV2_UDP_PORT = 4791
PFC_DST_MAC = "01:80:c2:00:00:01"
MAC_CONTROL_ETHERTYPE = 0x8808
PFC_OPCODE = 0x0101
PAUSE_OPCODE = 0x0001
PAUSE_QUANTUM_BITS = 512  # IEEE 802.3 Annex 31B / 802.1Qbb: one quantum = 512 bit times
MAX_PAUSE_QUANTA = 0xFFFF

# RC opcodes the transport uses (IBTA vol.1 table 35: RC = 0b000xxxxx).
OP_SEND_FIRST = opcode("RC", "SEND_FIRST")[0]
OP_SEND_MIDDLE = opcode("RC", "SEND_MIDDLE")[0]
OP_SEND_LAST = opcode("RC", "SEND_LAST")[0]
OP_SEND_ONLY = opcode("RC", "SEND_ONLY")[0]
OP_WRITE_FIRST = opcode("RC", "RDMA_WRITE_FIRST")[0]
OP_WRITE_ONLY = opcode("RC", "RDMA_WRITE_ONLY")[0]
OP_WRITE_ONLY_IMM = opcode("RC", "RDMA_WRITE_ONLY_WITH_IMMEDIATE")[0]
OP_READ_REQUEST = opcode("RC", "RDMA_READ_REQUEST")[0]
OP_ACK = opcode("RC", "ACKNOWLEDGE")[0]
OP_CNP = CNP_OPCODE

# AETH syndrome (IBTA vol.1 9.7.5.2.7): bits 7..5 = 000 ACK, 011 NAK; NAK code 0 = PSN sequence error.
AETH_ACK = 0x00
AETH_NAK_PSN_SEQUENCE_ERROR = 0x60

BTH_LEN = 12
ICRC_LEN = 4
CNP_BODY_LEN = 16


class RETH(Packet):
    """RDMA Extended Transport Header: follows BTH on RDMA WRITE FIRST/ONLY and READ REQUEST."""

    name = "RETH"
    fields_desc = [
        XLongField("va", 0),
        XIntField("rkey", 0),
        IntField("dmalen", 0),
    ]


for _op in (OP_WRITE_FIRST, OP_WRITE_ONLY, OP_WRITE_ONLY_IMM, OP_READ_REQUEST):
    bind_layers(BTH, RETH, opcode=_op)


def rocev2_frame(src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, *, dqpn: int, psn: int,
                 opcode: int = OP_SEND_ONLY, payload: bytes = b"", sport: int = 0xC000,
                 dscp: int = 26, ecn: int = 0b10, ackreq: bool = False) -> Packet:
    """A RoCEv2 data frame with a correct ICRC (scapy computes it on build). ecn: 0b10 = ECT(0)."""
    return (Ether(src=src_mac, dst=dst_mac)
            / IP(src=src_ip, dst=dst_ip, tos=(dscp << 2) | ecn, flags="DF", ttl=64)
            / UDP(sport=sport, dport=ROCEV2_UDP_PORT, chksum=0)
            / BTH(opcode=opcode, dqpn=dqpn, psn=psn, ackreq=int(ackreq))
            / payload)


def ack_frame(src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, *, dqpn: int, psn: int,
              syndrome: int = AETH_ACK, msn: int = 0, sport: int = 0xC000, dscp: int = 26) -> Packet:
    """An RC ACKNOWLEDGE (BTH + AETH); syndrome 0x60 makes it a NAK (PSN sequence error)."""
    return (Ether(src=src_mac, dst=dst_mac)
            / IP(src=src_ip, dst=dst_ip, tos=dscp << 2, flags="DF", ttl=64)
            / UDP(sport=sport, dport=ROCEV2_UDP_PORT, chksum=0)
            / BTH(opcode=OP_ACK, dqpn=dqpn, psn=psn)
            / AETH(syndrome=syndrome, msn=msn))


def cnp_frame(src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, *, dqpn: int,
              sport: int = 0xC000, dscp: int = 48) -> Packet:
    """A RoCEv2 CNP: BTH opcode 0x81 with BECN set, 16 reserved bytes, ICRC; not ECN-capable."""
    return (Ether(src=src_mac, dst=dst_mac)
            / IP(src=src_ip, dst=dst_ip, tos=dscp << 2, flags="DF", ttl=64)
            / UDP(sport=sport, dport=ROCEV2_UDP_PORT, chksum=0)
            / BTH(opcode=OP_CNP, becn=1, dqpn=dqpn, psn=0)
            / CNPPadding())


def pfc_frame(src_mac: str, pause_quanta: dict[int, int]) -> Packet:
    """An 802.1Qbb PFC frame: priority -> quanta (0 = resume/XON); other classes not enabled."""
    fields: dict[str, int] = {}
    for priority, quanta in pause_quanta.items():
        if not 0 <= priority <= 7:
            raise ValueError(f"PFC priority must be 0..7, got {priority}")
        if not 0 <= quanta <= MAX_PAUSE_QUANTA:
            raise ValueError(f"pause quanta must be 0..65535, got {quanta}")
        fields[f"c{priority}_enabled"] = 1
        fields[f"c{priority}_pause_time"] = quanta
    return (Ether(src=src_mac, dst=PFC_DST_MAC, type=MAC_CONTROL_ETHERTYPE)
            / MACControlClassBasedFlowControl(**fields))


def pause_frame(src_mac: str, quanta: int) -> Packet:
    """A legacy 802.3x PAUSE frame for the whole link."""
    if not 0 <= quanta <= MAX_PAUSE_QUANTA:
        raise ValueError(f"pause quanta must be 0..65535, got {quanta}")
    return Ether(src=src_mac, dst=PFC_DST_MAC, type=MAC_CONTROL_ETHERTYPE) / MACControlPause(pause_time=quanta)


def pfc_pause_quanta(frame: Packet) -> dict[int, int]:
    """The enabled priorities of a parsed PFC frame and their timers (quanta)."""
    layer = frame[MACControlClassBasedFlowControl]
    return {p: getattr(layer, f"c{p}_pause_time") for p in range(8) if getattr(layer, f"c{p}_enabled")}


def pause_quanta_to_seconds(quanta: int, link_rate_bps: float) -> float:
    """Pause duration: quanta × 512 bit times at the port's rate (5.12 µs per quantum at 100 Mbit/s)."""
    return quanta * PAUSE_QUANTUM_BITS / link_rate_bps


def seconds_to_pause_quanta(seconds: float, link_rate_bps: float) -> int:
    """The smallest quanta count that pauses at least ``seconds``, capped at 65535."""
    quanta = -(-seconds * link_rate_bps // PAUSE_QUANTUM_BITS)  # ceiling division
    return int(min(MAX_PAUSE_QUANTA, max(0, quanta)))
