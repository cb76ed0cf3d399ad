"""A RoCEv2-like reliable-connection transport over raw Ethernet (AF_PACKET), one per host.

What it does, per queue pair (QP):

* messages are segmented to the MTU (SEND FIRST/MIDDLE/LAST/ONLY), each packet gets the next
  24-bit PSN; data frames carry DSCP 26 and ECT(0) by default;
* by default the responder accepts packets strictly in order, ACKs (BTH + AETH) when the
  requester sets AckReq (every ``ack_every`` packets and on a message's last packet), re-ACKs
  duplicates, and NAKs the first out-of-order packet with "PSN sequence error" (IBTA vol.1
  9.7.5.2.8); the requester does go-back-N: on a NAK it resends from the NAK's PSN; when an ACK
  it asked for has not come one RTO after the request (and nothing was acknowledged meanwhile)
  it resends from the oldest unacknowledged PSN. A window bounds PSNs in flight;
* opt-in reordering-tolerant mode (``ooo``) for per-packet spraying, after IRN (Mittal et al.,
  "Revisiting Network Support for RDMA", SIGCOMM 2018) and the out-of-order placement of NICs
  built for adaptive routing: the responder keeps any PSN in [ePSN, ePSN + window), places each
  message's bytes in PSN (not arrival) order, delivers messages in order once complete, ACKs
  cumulatively (an AckReq is answered once ePSN passes the packet that asked), and NAKs a hole,
  once, when ``nak_threshold`` packets above it have arrived -- RFC 6675's DupThresh rule, so
  that mere reordering between paths is not taken for loss. When a NAKed PSN then arrives twice
  (late original, then the retransmission) the NAK was spurious, and the QP raises its threshold
  above the number of packets that had overtaken the late one, as TCP stacks raise their
  reordering estimate after a spurious retransmission (RFC 3708, RFC 4653). The requester
  resends just the NAKed PSN (selective repeat); the RTO still goes back to the oldest
  unacknowledged PSN, which recovers tail losses that no later packet reveals;
* the RTO adapts like TCP's (RFC 6298: SRTT + 4·RTTVAR from ACKed first transmissions, with
  ``rto`` as the floor, doubled on each consecutive timeout). Fixed IB-style timeouts would fire
  spuriously whenever a software switch's queues stretch the RTT, and each spurious go-back-N
  adds a window of duplicates to those very queues;
* notification point: a CE-marked data packet makes the responder send a CNP (DSCP 48) to that
  QP, at most one per ``cnp_interval``; reaction point: a CNP cuts the QP's DCQCN rate;
* each QP is paced to its current rate, and the host to the line rate, both on wire bytes (the
  frame + FCS, preamble and inter-frame gap, as the switch's port spends them): pacing on frame
  bytes alone would overdrive the first switch port by ~2 % and build a queue behind a lone flow.
  ACKs and CNPs the host sends take their share of its line too;
* like a NIC port, the host honours 802.1Qbb PFC for its data priority (and 802.3x PAUSE): no
  data leaves while paused, for quanta × 512 bit times at the line rate (0 = resume). ACKs and
  CNPs are small and are not held back;
* and like a NIC port it sends PFC: with ``drain_rate`` set (a slow receiver) arriving frames
  wait in a receive buffer of ``rx_buffer`` bytes that the host empties at that rate; above XOFF
  (a quarter of it) the host pauses its data priority on the link, refreshing the pause at half
  its time, and resumes it below XON (two frames lower). The three quarters above XOFF are the
  headroom: what the switch has in flight when the pause lands, plus what the kernel holds
  until this process reads it. A full buffer drops (``rx_drops``); without ``host_pfc`` that is
  the only outcome. ``stuck(seconds)`` is a fault: a NIC whose receive path hangs, draining
  nothing and pausing the link continuously, a pause frame every 1/64 of the pause time (the
  pause storm a PFC watchdog exists for).

Both ends of a connection use the same QP number, and each QP is a full RC pair (requester and
responder halves), which stands in for the connection manager RDMA uses to exchange QPNs.

Hot path: scapy builds each QP's frame templates once; per packet the loop patches lengths,
opcode, AckReq and PSN with ``struct``, computes the IP checksum and the ICRC with ``zlib.crc32``
and sends header, payload and ICRC as one ``sendmsg``. The UDP checksum is 0 (allowed for IPv4,
and what RoCEv2 NICs send). The ICRC and the sending, and receiving in batches with one
``recvmmsg`` per 64 frames, also exist in C (traffic/native_transport.c, built like the switch's
native modules): the transport uses them unless ``$FABRICLAB_ENGINE`` is ``python`` or they
cannot be built; tests/test_traffic_native.py checks that both paths put the same bytes on the
wire and that transfers come out the same. For tests, the receive path can drop data packets
(``drop_probability``) or treat them as CE-marked (``ce_probability``).
"""
from __future__ import annotations

import bisect
import ctypes
import functools
import logging
import os
import errno
import ipaddress
import json
import random
import select
import socket
import struct
import subprocess
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from scapy.compat import raw

from fabriclab.switch.fidelity import Histogram, allowance_why, budget, reaction_allowance_us
from fabriclab.switch.traffic_manager import wire_bytes
from fabriclab.traffic import packets
from fabriclab.traffic.dcqcn import Dcqcn, DcqcnParams

log = logging.getLogger(__name__)

ETH_P_IP = 0x0800
ETH_P_MAC_CONTROL = packets.MAC_CONTROL_ETHERTYPE
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23   # linux/if_packet.h, Linux >= 4.20
SO_ATTACH_FILTER = 26
PSN_MASK = 0xFFFFFF
PSN_HALF = 1 << 23

ETH_LEN, IP_LEN, UDP_LEN = 14, 20, 8
IP_OFF, UDP_OFF = ETH_LEN, ETH_LEN + IP_LEN
BTH_OFF = UDP_OFF + UDP_LEN
HDR_LEN = BTH_OFF + packets.BTH_LEN          # 54: Ethernet + IPv4 + UDP + BTH

# Classic BPF: IPv4, UDP, not a fragment, UDP destination port 4791 (as `tcpdump -dd` builds it).
_BPF_UDP_4791 = [
    (0x28, 0, 0, 12), (0x15, 0, 8, ETH_P_IP), (0x30, 0, 0, 23), (0x15, 0, 6, 17),
    (0x28, 0, 0, 20), (0x45, 4, 0, 0x1FFF), (0xB1, 0, 0, 14), (0x48, 0, 0, 16),
    (0x15, 0, 1, packets.ROCEV2_UDP_PORT), (0x06, 0, 0, 0x40000), (0x06, 0, 0, 0),
]


def ip_checksum(header: bytes | bytearray) -> int:
    total = sum(struct.unpack("!10H", header))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def icrc(frame_headers: bytearray | bytes, payload) -> bytes:
    """RoCEv2 ICRC: CRC-32 over 8 bytes of 0xFF (the absent LRH), the IP/UDP/BTH headers with the
    variant fields (ToS, TTL, IP checksum, UDP checksum, BTH FECN/BECN/resv) set to ones, and the
    payload; sent least significant byte first (IBTA RoCEv2 annex A17.4.1.1)."""
    masked = bytearray(b"\xff" * 8) + frame_headers[IP_OFF:]
    base = 8 - IP_OFF
    masked[base + IP_OFF + 1] = 0xFF                      # ToS
    masked[base + IP_OFF + 8] = 0xFF                      # TTL
    masked[base + IP_OFF + 10:base + IP_OFF + 12] = b"\xff\xff"  # header checksum
    masked[base + UDP_OFF + 6:base + UDP_OFF + 8] = b"\xff\xff"  # UDP checksum
    masked[base + BTH_OFF + 4] = 0xFF                     # FECN, BECN, resv6
    return struct.pack("<I", zlib.crc32(payload, zlib.crc32(masked)))


_native_state: dict[str, object] = {}      # "module" once loaded; "logged": the last reason not to


def native_transport():
    """The C helpers of traffic/native_transport.c, or None for the Python path
    (``$FABRICLAB_ENGINE=python``, or no compiler here). Logs the choice once per process."""
    if os.environ.get("FABRICLAB_ENGINE") == "python":
        problem = "FABRICLAB_ENGINE=python"
    elif "module" in _native_state:
        return _native_state["module"]
    else:
        from pathlib import Path

        from fabriclab.compiler.native_build import NativeUnavailable, load_shipped
        try:
            module = load_shipped(Path(__file__).resolve().parent / "native_transport.c")
        except NativeUnavailable as exc:
            problem = str(exc)
        else:
            _native_state["module"] = module
            log.info("transport: ICRC, sending and batched receiving in C (native_transport.c)")
            return module
    if _native_state.get("logged") != problem:
        _native_state["logged"] = problem
        log.info("transport: ICRC, sending and receiving in Python: %s", problem)
    return None


def unwrap_psn(psn24: int, near: int) -> int:
    """The absolute sequence number whose low 24 bits are ``psn24`` and that is closest to ``near``."""
    delta = ((psn24 - near) + PSN_HALF) & PSN_MASK
    return near + delta - PSN_HALF


@dataclass
class TransportConfig:
    mtu: int = 1024                   # payload bytes per packet (an IB MTU)
    line_rate: float = 100e6          # bit/s: the host link
    dcqcn: DcqcnParams | None = None  # None: no congestion control (send at line rate)
    dscp_data: int = 26
    dscp_cnp: int = 48
    data_priority: int = 3            # the PFC priority the fabric maps dscp_data to
    ecn_capable: bool = True          # mark data ECT(0)
    cnp_interval: float | None = None  # s; default: dcqcn.cnp_interval, or 50 µs × 1000
    window: int = 256                 # PSNs in flight per QP
    ack_every: int = 16               # AckReq on every Nth packet (and each message's last)
    rto: float = 0.1                  # s: the least RTO (the RTO adapts to the measured RTT above it)
    ooo: bool = False                 # accept reordered packets, selective repeat (default: go-back-N)
    nak_threshold: int = 3            # ooo: packets held above a hole before it is NAKed (at first)
    burst: int = 2                    # packets a late pacer may send back to back to catch up
    drop_probability: float = 0.0     # test knob: drop arriving data packets
    ce_probability: float = 0.0       # test knob: treat arriving data packets as CE-marked
    keep_data: bool = True            # deliver received bytes (False: count them only)
    rate_sample_interval: float = 0.01  # s between DCQCN rate samples while it changes
    drain_rate: float | None = None   # bit/s the host empties its NIC receive buffer (None: at once)
    rx_buffer: int = 128_000          # NIC receive buffer, bytes (used with drain_rate or when stuck)
    host_pfc: bool = True             # pause the data priority when the receive buffer passes XOFF
    pause_quanta: int = packets.MAX_PAUSE_QUANTA   # timer of the pauses the host sends
    seed: int | None = None
    scale: float = 1.0                # real fabric rate / line_rate (time scaling)

    @property
    def rx_xoff(self) -> int:
        return self.rx_buffer // 4

    @property
    def rx_xon(self) -> int:
        return max(0, self.rx_xoff - 2 * (HDR_LEN + self.mtu + packets.ICRC_LEN))

    def effective_cnp_interval(self) -> float:
        if self.cnp_interval is not None:
            return self.cnp_interval
        return self.dcqcn.cnp_interval if self.dcqcn else 50e-3


@dataclass
class Message:
    id: int
    length: int
    first_psn: int                    # absolute
    last_psn: int
    data: memoryview | None           # None: a synthetic message of zero bytes
    posted: float
    completed: float | None = None    # when the last PSN was acknowledged
    on_complete: Callable[["Message"], None] | None = None


@dataclass
class QueuePair:
    qpn: int
    peer_ip: str
    peer_mac: bytes
    sport: int
    data_header: bytearray            # template: Ether/IP/UDP/BTH of a full-MTU data packet
    ack_header: bytearray             # template: Ether/IP/UDP/BTH of an ACK (AETH appended)
    cnp_frame: bytes                  # constant: the CNP we send to the peer
    rate: Dcqcn | None
    # requester half
    messages: deque = field(default_factory=deque)  # unacked messages, PSN order
    resend: deque = field(default_factory=deque)    # ooo: NAKed PSNs to retransmit alone
    next_psn: int = 0                 # next new PSN to assign to a posted message
    snd_nxt: int = 0                  # next PSN to transmit
    snd_una: int = 0                  # oldest unacknowledged PSN
    next_send_time: float = 0.0
    paced: bool = False               # the pacer, not idleness or the window, times the next packet
    last_progress: float = 0.0        # last time the acknowledged PSN advanced
    last_ackreq_sent: float = 0.0     # an ACK is owed within the RTO after this ...
    owed_psn: int = -1                # ... covering this PSN (the last one sent with AckReq)
    srtt: float | None = None         # smoothed RTT and its variation (RFC 6298)
    rttvar: float = 0.0
    rtt_probe: tuple[int, float] | None = None  # (PSN, first-transmission time) being timed
    backoff: int = 1                  # RTO multiplier: doubles per consecutive timeout
    highest_sent: int = 0             # one past the highest PSN ever transmitted
    header_payload: int = 0           # payload length the data header template is patched for
    packets_sent: int = 0
    bytes_sent: int = 0
    retransmissions: int = 0
    timeouts: int = 0
    naks_received: int = 0
    cnps_received: int = 0
    rate_samples: list = field(default_factory=list)
    # responder half
    epsn: int = 0                     # next expected PSN
    nak_outstanding: bool = False     # the hole at epsn has been NAKed
    nak_holes: dict = field(default_factory=dict)  # ooo: NAKed PSN -> packets held when it came (-1: not yet)
    nak_threshold: int = 3            # ooo: held packets that make a hole a loss (adapts to reordering)
    spurious_naks: int = 0            # ooo: NAKed PSNs that arrived twice
    rx_pending: dict = field(default_factory=dict)  # ooo: PSN -> (opcode, ackreq, length, payload) above epsn
    msn: int = 0                      # messages completed (AETH MSN)
    rx_buffer: bytearray = field(default_factory=bytearray)
    rx_bytes_in_message: int = 0
    bytes_received: int = 0
    packets_received: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    dropped_by_test: int = 0
    ce_received: int = 0
    cnps_sent: int = 0
    last_cnp_sent: float = float("-inf")

    @property
    def has_work(self) -> bool:
        return self.snd_nxt < self.next_psn or bool(self.resend)

    def counters(self) -> dict:
        return {k: getattr(self, k) for k in (
            "qpn", "peer_ip", "packets_sent", "bytes_sent", "retransmissions", "timeouts", "naks_received",
            "cnps_received", "bytes_received", "packets_received", "duplicates", "out_of_order",
            "dropped_by_test", "ce_received", "cnps_sent", "spurious_naks", "nak_threshold")}


def interface_mac(ifname: str) -> bytes:
    # `ip` rather than /sys: sysfs shows the namespace it was mounted in, not the caller's
    proc = subprocess.run(["ip", "-j", "link", "show", "dev", ifname], capture_output=True, text=True)
    if proc.returncode:
        raise OSError(f"no interface {ifname} in this network namespace")
    return bytes.fromhex(json.loads(proc.stdout)[0]["address"].replace(":", ""))


def interface_ipv4(ifname: str) -> str:
    out = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", ifname],
                         capture_output=True, text=True, check=True).stdout
    for link in json.loads(out or "[]"):
        for addr in link.get("addr_info", []):
            if addr.get("family") == "inet":
                return addr["local"]
    raise OSError(f"interface {ifname} has no IPv4 address")


def resolve_mac(ip: str, ifname: str, timeout: float = 2.0) -> bytes:
    """The next hop's MAC for ``ip`` from the kernel's neighbour table, resolving it if needed."""
    route = json.loads(subprocess.run(["ip", "-j", "route", "get", ip], capture_output=True,
                                      text=True, check=True).stdout)[0]
    hop = route.get("gateway", ip)
    deadline = time.monotonic() + timeout
    poke = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        while True:
            out = subprocess.run(["ip", "-j", "neigh", "show", hop, "dev", ifname],
                                 capture_output=True, text=True).stdout
            for entry in json.loads(out or "[]"):
                if entry.get("lladdr") and "FAILED" not in entry.get("state", []):
                    return bytes.fromhex(entry["lladdr"].replace(":", ""))
            if time.monotonic() > deadline:
                raise OSError(f"cannot resolve the MAC address of {hop} on {ifname}")
            # an ordinary datagram to the discard port makes the kernel ARP for the next hop
            poke.sendto(b"", (ip, 9))
            time.sleep(0.02)
    finally:
        poke.close()


def _attach_bpf(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    buf = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in program))
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


class HostTransport:
    """The RoCEv2-like NIC of one host. Single-threaded: call ``poll`` from the owner's loop."""

    def __init__(self, ifname: str, config: TransportConfig | None = None,
                 clock: Callable[[], float] = time.monotonic, native=None):
        """``native``: the C helpers to use (default: ``native_transport()``), False for the
        Python path."""
        self.ifname = ifname
        self.config = config or TransportConfig()
        self.clock = clock
        self.local_mac = interface_mac(ifname)
        self.local_ip = interface_ipv4(ifname)
        self._local_ip_bytes = socket.inet_aton(self.local_ip)
        self.qps: dict[tuple[str, int], QueuePair] = {}
        self.on_message: Callable[[QueuePair, int, bytes | None, float], None] | None = None
        self._rng = random.Random(self.config.seed)
        self._zeros = memoryview(bytes(self.config.mtu))
        self._next_host_send = 0.0
        self._message_ids = 0
        self._rr: deque[QueuePair] = deque()
        self.paused_until = 0.0             # PFC/PAUSE: no data before this time
        self._unpaused_at = 0.0             # when the last pause ended (or will)
        self.pacing_error = Histogram()     # µs each paced packet left after its time (fidelity)
        self.pause_frames = 0               # PFC/PAUSE frames that applied to our data
        # the NIC's receive buffer (slow receiver, stuck NIC) and the pauses it sends
        self._rx: deque[bytes] = deque()
        self.rx_bytes = 0
        self.max_rx_bytes = 0
        self.rx_drops = 0
        self._rx_free_at = 0.0              # when the host may take the next frame out
        self.stuck_until = 0.0              # a stuck NIC drains nothing and pauses until then
        self.pfc_tx = 0                     # PFC frames sent (pauses, refreshes and resumes)
        self.xoff_events = 0
        self._xoff = False
        self._pfc_refresh_at = float("inf")
        self._pause_s = packets.pause_quanta_to_seconds(self.config.pause_quanta, self.config.line_rate)
        self._pfc_frames = {pause: raw(packets.pfc_frame(_mac_str(self.local_mac),
                                                         {self.config.data_priority:
                                                          self.config.pause_quanta if pause else 0}))
                            .ljust(60, b"\0") for pause in (True, False)}
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
        self._sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._mac_control = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_MAC_CONTROL))
        try:
            self._mac_control.bind((ifname, ETH_P_MAC_CONTROL))
            self._mac_control.setblocking(False)
            self._mac_control.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)   # not our own pauses
            self.sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            _attach_bpf(self.sock, _BPF_UDP_4791)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            self.sock.bind((ifname, ETH_P_IP))
            self.sock.setblocking(False)
            # The kernel sees our UDP 4791 frames too: a bound, never-read socket keeps it from
            # answering each of them with ICMP port-unreachable (it just drops when full).
            self._sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
            self._sink.bind((self.local_ip, packets.ROCEV2_UDP_PORT))
        except BaseException:
            self.close()
            raise
        native = native_transport() if native is None else (native or None)
        self.native = native is not None
        if native is not None:   # the C twins of _send_frame/_reply/_recv_batch, bound to the socket
            fd = self.sock.fileno()
            self._send_frame = functools.partial(native.send_frame, fd)
            self._reply = functools.partial(native.reply, fd)
            self._recv_batch = functools.partial(native.recv_batch, fd)

    def close(self) -> None:
        self.sock.close()
        self._sink.close()
        self._mac_control.close()

    # ---- connection setup -------------------------------------------------------------

    def connect(self, peer_ip: str, qpn: int, peer_mac: bytes | str | None = None) -> QueuePair:
        """The QP ``qpn`` to ``peer_ip`` (created on first use; the peer uses the same number)."""
        key = (peer_ip, qpn)
        qp = self.qps.get(key)
        if qp is None:
            if peer_mac is None:
                peer_mac = resolve_mac(peer_ip, self.ifname)
            qp = self._new_qp(peer_ip, qpn, peer_mac if isinstance(peer_mac, bytes) else
                              bytes.fromhex(peer_mac.replace(":", "")))
        return qp

    def _new_qp(self, peer_ip: str, qpn: int, peer_mac: bytes) -> QueuePair:
        if not 0 < qpn <= PSN_MASK:
            raise ValueError(f"QP number must be 1..{PSN_MASK}, got {qpn}")
        ipaddress.IPv4Address(peer_ip)
        cfg = self.config
        macs = dict(src_mac=_mac_str(self.local_mac), dst_mac=_mac_str(peer_mac), src_ip=self.local_ip,
                    dst_ip=peer_ip)
        # RoCEv2 puts flow entropy in the UDP source port, so ECMP spreads QPs (0xC000 | hash)
        sport = 0xC000 | (zlib.crc32(struct.pack("!4sI", socket.inet_aton(peer_ip), qpn)) & 0x3FFF)
        data = packets.rocev2_frame(**macs, dqpn=qpn, psn=0, sport=sport, dscp=cfg.dscp_data,
                                    ecn=0b10 if cfg.ecn_capable else 0, payload=bytes(cfg.mtu))
        ack = packets.ack_frame(**macs, dqpn=qpn, psn=0, sport=sport, dscp=cfg.dscp_data)
        cnp = packets.cnp_frame(**macs, dqpn=qpn, sport=sport, dscp=cfg.dscp_cnp)
        now = self.clock()
        rate = Dcqcn(cfg.line_rate, cfg.dcqcn, now) if cfg.dcqcn else None
        qp = QueuePair(qpn=qpn, peer_ip=peer_ip, peer_mac=peer_mac, sport=sport,
                       data_header=bytearray(raw(data)[:HDR_LEN]), ack_header=bytearray(raw(ack)[:HDR_LEN]),
                       cnp_frame=raw(cnp), rate=rate, last_progress=now, header_payload=cfg.mtu,
                       nak_threshold=cfg.nak_threshold)
        if rate:
            qp.rate_samples.append((now, rate.rate))
        self.qps[(peer_ip, qpn)] = qp
        self._rr.append(qp)
        return qp

    # ---- requester --------------------------------------------------------------------

    def post_send(self, qp: QueuePair, data: bytes | bytearray | memoryview | int,
                  on_complete: Callable[[Message], None] | None = None) -> Message:
        """Queue a message: real bytes, or an int for that many (unallocated) zero bytes."""
        if isinstance(data, int):
            length, view = data, None
        else:
            view = memoryview(data).cast("B")
            length = len(view)
        npackets = max(1, -(-length // self.config.mtu))
        now = self.clock()
        msg = Message(self._message_ids, length, qp.next_psn, qp.next_psn + npackets - 1, view, now,
                      on_complete=on_complete)
        self._message_ids += 1
        if not qp.has_work:
            qp.last_progress = now
            # an idle pacer earns no credit: a flow starts at its rate, not with a catch-up burst
            # (which would stand in the first switch's queue for as long as the flow lasts)
            qp.next_send_time = max(qp.next_send_time, now)
            if not any(other.has_work for other in self._rr):
                self._next_host_send = max(self._next_host_send, now)
        qp.next_psn += npackets
        qp.messages.append(msg)
        return msg

    def _send_data(self, qp: QueuePair, now: float, selective: int | None = None) -> int:
        """Transmit PSN ``qp.snd_nxt``, or the earlier PSN ``selective`` alone (ooo mode's
        selective repeat); returns the frame length (0 if the socket was full)."""
        cfg = self.config
        psn = qp.snd_nxt if selective is None else selective
        msgs = qp.messages
        idx = bisect.bisect_right(msgs, psn, key=lambda m: m.first_psn) - 1
        msg = msgs[idx]
        index = psn - msg.first_psn
        offset = index * cfg.mtu
        length = min(cfg.mtu, msg.length - offset)
        first, last = psn == msg.first_psn, psn == msg.last_psn
        if first and last:
            op = packets.OP_SEND_ONLY
        elif first:
            op = packets.OP_SEND_FIRST
        elif last:
            op = packets.OP_SEND_LAST
        else:
            op = packets.OP_SEND_MIDDLE
        # ask for an ACK every ack_every PSNs, at a message's end, and when the window fills; a
        # selective retransmission fills the hole that holds the window back: have it acknowledged
        ackreq = (last or (psn + 1) % cfg.ack_every == 0 or psn + 1 - qp.snd_una >= cfg.window
                  or selective is not None)
        payload = self._zeros[:length] if msg.data is None else msg.data[offset:offset + length]
        hdr = qp.data_header
        if length != qp.header_payload:  # only a message's last packet is short
            udp_len = UDP_LEN + packets.BTH_LEN + length + packets.ICRC_LEN
            struct.pack_into("!H", hdr, IP_OFF + 2, IP_LEN + udp_len)
            struct.pack_into("!H", hdr, IP_OFF + 10, 0)
            struct.pack_into("!H", hdr, IP_OFF + 10, ip_checksum(hdr[IP_OFF:UDP_OFF]))
            struct.pack_into("!H", hdr, UDP_OFF + 4, udp_len)
            qp.header_payload = length
        hdr[BTH_OFF] = op
        struct.pack_into("!I", hdr, BTH_OFF + 8, (0x80000000 if ackreq else 0) | (psn & PSN_MASK))
        if not self._send_frame(hdr, payload):
            return 0  # socket buffer full: try again on the next poll
        first_transmission = psn >= qp.highest_sent
        if first_transmission:
            qp.highest_sent = psn + 1
        else:
            qp.retransmissions += 1
        if ackreq:
            qp.last_ackreq_sent = now
            # the highest PSN asked about: a selective retransmission must not hide a later request
            qp.owed_psn = max(qp.owed_psn, psn)
            if qp.rtt_probe is None and first_transmission:  # Karn: never time a retransmission
                qp.rtt_probe = (psn, now)
        if selective is None:
            qp.snd_nxt = psn + 1
        qp.packets_sent += 1
        frame_len = HDR_LEN + length + 4
        qp.bytes_sent += length
        if qp.rate:
            qp.rate.on_sent(frame_len, now)
        return frame_len

    def _go_back(self, qp: QueuePair, psn: int) -> None:
        if psn < qp.snd_nxt:
            qp.snd_nxt = max(psn, qp.snd_una)

    def _acknowledge(self, qp: QueuePair, upto: int, now: float) -> None:
        """Every PSN below ``upto`` is acknowledged."""
        if upto <= qp.snd_una:
            return
        qp.snd_una = min(upto, qp.next_psn)
        qp.last_progress = now
        qp.backoff = 1
        if qp.rtt_probe and qp.rtt_probe[0] < upto:
            sample = now - qp.rtt_probe[1]
            if qp.srtt is None:
                qp.srtt, qp.rttvar = sample, sample / 2
            else:
                qp.rttvar = 0.75 * qp.rttvar + 0.25 * abs(qp.srtt - sample)
                qp.srtt = 0.875 * qp.srtt + 0.125 * sample
            qp.rtt_probe = None
        if qp.snd_nxt < qp.snd_una:
            qp.snd_nxt = qp.snd_una
        while qp.messages and qp.messages[0].last_psn < qp.snd_una:
            msg = qp.messages.popleft()
            msg.completed = now
            if msg.on_complete:
                msg.on_complete(msg)

    # ---- responder --------------------------------------------------------------------

    def _send_ack(self, qp: QueuePair, psn: int, syndrome: int) -> None:
        # a full socket loses it like a wire would: the requester's timeout recovers
        if self._reply(qp.ack_header, psn & PSN_MASK, (syndrome << 24) | (qp.msn & PSN_MASK)):
            self._take_line(HDR_LEN + 4 + packets.ICRC_LEN)

    def _take_line(self, frame_len: int) -> None:
        """A frame sent outside the data pacer (ACK, CNP) delays the host's next data frame."""
        self._next_host_send += wire_bytes(frame_len) * 8 / self.config.line_rate

    # ---- the wire (Python; the C twins in native_transport.c replace these per instance) ----

    def _send_frame(self, hdr: bytearray, payload) -> int:
        """Headers, payload and ICRC as one frame; 0 when the socket buffer is full."""
        try:
            return self.sock.sendmsg([hdr, payload, icrc(hdr, payload)])
        except BlockingIOError:
            return 0

    def _reply(self, hdr: bytearray, psn: int, aeth: int) -> int:
        """An ACK/NAK: ``psn`` (AckReq clear) into the headers, then the AETH and the ICRC."""
        struct.pack_into("!I", hdr, BTH_OFF + 8, psn)
        tail = struct.pack("!I", aeth)
        return self._send_frame(hdr, tail)

    def _recv_batch(self, limit: int) -> list[bytes]:
        frames = []
        for _ in range(limit):
            try:
                frames.append(self.sock.recv(9216))
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in (errno.ENETDOWN, errno.ENXIO):
                    break
                raise
        return frames

    def _receive(self, frame: bytes, now: float) -> None:
        if len(frame) < HDR_LEN + 4 or frame[IP_OFF] != 0x45:
            return  # not IPv4 without options
        dst_ip = frame[IP_OFF + 16:IP_OFF + 20]
        if dst_ip != self._local_ip_bytes:
            return
        total = struct.unpack_from("!H", frame, IP_OFF + 2)[0]
        end = IP_OFF + total - packets.ICRC_LEN       # strip Ethernet padding and the ICRC
        opcode = frame[BTH_OFF]
        qpn = int.from_bytes(frame[BTH_OFF + 5:BTH_OFF + 8], "big")
        word = struct.unpack_from("!I", frame, BTH_OFF + 8)[0]
        psn24 = word & PSN_MASK
        peer_ip = socket.inet_ntoa(frame[IP_OFF + 12:IP_OFF + 16])
        qp = self.qps.get((peer_ip, qpn))
        if qp is None:
            if opcode > packets.OP_SEND_ONLY or not qpn:
                return  # ACK/CNP for a QP we never opened
            qp = self._new_qp(peer_ip, qpn, frame[6:12])
        if opcode == packets.OP_ACK:
            syndrome = frame[HDR_LEN]
            psn = unwrap_psn(psn24, qp.snd_una)
            if syndrome & 0xE0 == 0x60:               # NAK: resend from its PSN (ooo: just it)
                qp.naks_received += 1
                self._acknowledge(qp, psn, now)
                if not self.config.ooo:
                    self._go_back(qp, psn)
                elif qp.snd_una <= psn < qp.snd_nxt and psn not in qp.resend:
                    qp.resend.append(psn)
            elif syndrome & 0xE0 == 0:
                self._acknowledge(qp, psn + 1, now)
            return
        if opcode == packets.OP_CNP:
            qp.cnps_received += 1
            if qp.rate:
                qp.rate.on_cnp(now)
                self._sample_rate(qp, now, force=True)
            return
        if opcode > packets.OP_SEND_ONLY:
            return  # an operation this transport does not implement
        cfg = self.config
        if cfg.drop_probability and self._rng.random() < cfg.drop_probability:
            qp.dropped_by_test += 1
            return
        ce = frame[IP_OFF + 1] & 0b11 == 0b11 or (cfg.ce_probability and self._rng.random() < cfg.ce_probability)
        if ce:
            qp.ce_received += 1
            if now - qp.last_cnp_sent >= cfg.effective_cnp_interval():
                try:
                    self.sock.send(qp.cnp_frame)
                    self._take_line(len(qp.cnp_frame))
                    qp.cnps_sent += 1
                    qp.last_cnp_sent = now
                except BlockingIOError:
                    pass
        psn = unwrap_psn(psn24, qp.epsn)
        ackreq = bool(word & 0x80000000)
        if psn < qp.epsn:                              # duplicate: re-acknowledge what we have
            qp.duplicates += 1
            overtaken_by = qp.nak_holes.pop(psn, -1) if cfg.ooo else -1
            if overtaken_by >= 0:                      # a NAKed PSN twice: reordering, not loss
                qp.spurious_naks += 1
                qp.nak_threshold = max(qp.nak_threshold, min(overtaken_by + 1, cfg.window // 2))
            if ackreq:
                self._send_ack(qp, qp.epsn - 1, packets.AETH_ACK)
            return
        length = end - HDR_LEN
        payload = memoryview(frame)[HDR_LEN:end] if cfg.keep_data else None
        if psn > qp.epsn:
            if cfg.ooo:
                self._hold(qp, psn, opcode, ackreq, length, payload)
            else:                                      # gap: one NAK until the gap is filled
                qp.out_of_order += 1
                if not qp.nak_outstanding:
                    self._nak_hole(qp)
            return
        if qp.nak_outstanding and psn in qp.nak_holes:   # ooo: remember how late it came
            qp.nak_holes[psn] = len(qp.rx_pending)
        qp.epsn += 1
        qp.nak_outstanding = False
        qp.packets_received += 1
        qp.bytes_received += length
        done = self._place(qp, opcode, length, payload)
        delivered = [done] if done else []
        if qp.rx_pending:                              # ooo: the packets held above now follow on
            ackreq |= self._drain(qp, delivered)
            if len(qp.rx_pending) >= qp.nak_threshold:   # ... up to a further hole
                self._nak_hole(qp)                       # which also ACKs below it
                ackreq = False
        if ackreq:
            self._send_ack(qp, qp.epsn - 1, packets.AETH_ACK)
        if self.on_message:
            for nbytes, data in delivered:
                self.on_message(qp, nbytes, data, now)

    def _place(self, qp: QueuePair, opcode: int, length: int, payload: memoryview | None) -> tuple | None:
        """Append the packet at ePSN to its message; (bytes, data) when that completes the message."""
        qp.rx_bytes_in_message += length
        if payload is not None:
            qp.rx_buffer += payload
        if opcode not in (packets.OP_SEND_LAST, packets.OP_SEND_ONLY):
            return None
        qp.msn += 1
        done = qp.rx_bytes_in_message, bytes(qp.rx_buffer) if payload is not None else None
        qp.rx_buffer.clear()
        qp.rx_bytes_in_message = 0
        return done

    def _hold(self, qp: QueuePair, psn: int, opcode: int, ackreq: bool, length: int,
              payload: memoryview | None) -> None:
        """ooo mode: keep a packet that arrived ahead of ePSN until the sequence reaches it."""
        pending = qp.rx_pending
        if psn in pending:
            qp.duplicates += 1
            return
        qp.out_of_order += 1
        if psn - qp.epsn >= self.config.window:
            return  # beyond the receive window: no room to place it, the requester's timeout resends it
        pending[psn] = (opcode, ackreq, length, payload)
        qp.packets_received += 1
        qp.bytes_received += length
        if len(pending) >= qp.nak_threshold and not qp.nak_outstanding:
            self._nak_hole(qp)

    def _nak_hole(self, qp: QueuePair) -> None:
        """NAK the hole at ePSN ("PSN sequence error"): resend from it, or in ooo mode just it."""
        qp.nak_outstanding = True
        if self.config.ooo:
            if len(qp.nak_holes) >= 64:                # forget holes long filled
                oldest = qp.epsn - self.config.window
                qp.nak_holes = {k: v for k, v in qp.nak_holes.items() if k >= oldest}
            qp.nak_holes[qp.epsn] = -1
        self._send_ack(qp, qp.epsn, packets.AETH_NAK_PSN_SEQUENCE_ERROR)

    def _drain(self, qp: QueuePair, delivered: list) -> bool:
        """Move the held packets that now continue the sequence into their messages; whether
        any of them asked for an ACK."""
        pending = qp.rx_pending
        ackreq = False
        while (held := pending.pop(qp.epsn, None)) is not None:
            opcode, asked, length, payload = held
            qp.epsn += 1
            ackreq |= asked
            done = self._place(qp, opcode, length, payload)
            if done:
                delivered.append(done)
        return ackreq

    # ---- event loop -------------------------------------------------------------------

    def _sample_rate(self, qp: QueuePair, now: float, force: bool = False) -> None:
        last_t, last_rate = qp.rate_samples[-1]
        rate = qp.rate.rate
        if rate != last_rate and (force or now - last_t >= self.config.rate_sample_interval):
            qp.rate_samples.append((now, rate))

    def poll(self, timeout: float = 0.0) -> None:
        """Receive what has arrived, handle timeouts, send what pacing allows; wait at most
        ``timeout`` seconds for something to do."""
        sock = self.sock
        now = self.clock()
        buffered = self.config.drain_rate is not None or self._rx or now < self.stuck_until
        for frame in self._recv_batch(256):
            if buffered:
                self._rx_arrive(frame)
            else:
                self._receive(frame, now)
        while True:
            try:
                self._pause(self._mac_control.recv(128), now)
            except BlockingIOError:
                break
        now = self.clock()
        wake = self._rx_service(now) if buffered or self._xoff else None
        sent_wake = self._transmit(now)
        if sent_wake is not None and (wake is None or sent_wake < wake):
            wake = sent_wake
        if timeout > 0:
            wait = timeout if wake is None else max(0.0, min(timeout, wake - self.clock()))
            if wait > 0:
                select.select([sock, self._mac_control], [], [], wait)

    # ---- the NIC's receive buffer and the pauses it sends ---------------------------------

    def stuck(self, seconds: float | None = None) -> None:
        """Fault injection: from now on (for ``seconds``, or for good) the receive path drains
        nothing and the NIC pauses its data priority continuously."""
        self.stuck_until = self.clock() + seconds if seconds else float("inf")

    def _rx_arrive(self, frame: bytes) -> None:
        if self.rx_bytes + len(frame) > self.config.rx_buffer:
            self.rx_drops += 1
            return
        self._rx.append(frame)
        self.rx_bytes += len(frame)
        if self.rx_bytes > self.max_rx_bytes:
            self.max_rx_bytes = self.rx_bytes

    def _rx_service(self, now: float) -> float | None:
        """Take frames out of the receive buffer as the drain rate allows, then pause or resume
        the link; returns when this is next due."""
        cfg = self.config
        stuck = now < self.stuck_until
        if not stuck:
            rate = cfg.drain_rate
            # a late poll may catch up a few frames, as the pacer does
            slack = cfg.burst * (HDR_LEN + cfg.mtu + packets.ICRC_LEN) * 8 / rate if rate else 0.0
            while self._rx and self._rx_free_at <= now:
                frame = self._rx.popleft()
                self.rx_bytes -= len(frame)
                if rate:
                    self._rx_free_at = max(self._rx_free_at, now - slack) + len(frame) * 8 / rate
                self._receive(frame, now)
        if stuck:
            want = True
        elif cfg.host_pfc:
            want = self.rx_bytes > (cfg.rx_xon if self._xoff else cfg.rx_xoff)
        else:
            want = False
        if want and (not self._xoff or now >= self._pfc_refresh_at):
            self._send_pfc(True, now)
        elif not want and self._xoff:
            self._send_pfc(False, now)
        wake = self._pfc_refresh_at if self._xoff else None
        if self._rx and not stuck and (wake is None or self._rx_free_at < wake):
            wake = self._rx_free_at
        if stuck and self.stuck_until < (wake or float("inf")):
            wake = self.stuck_until
        return wake

    def _send_pfc(self, pause: bool, now: float) -> None:
        if pause and not self._xoff:
            self.xoff_events += 1
        self._xoff = pause
        # refresh at half the pause time, so the peer never resumes while we are full; a stuck
        # NIC storms: it repeats its pause 64 times per pause time
        refresh = self._pause_s / 64 if now < self.stuck_until else self._pause_s / 2
        self._pfc_refresh_at = now + refresh if pause else float("inf")
        try:
            self._mac_control.send(self._pfc_frames[pause])
            self.pfc_tx += 1
        except BlockingIOError:
            self._pfc_refresh_at = now      # try again on the next poll

    def nic_counters(self) -> dict:
        return {"pfc_tx": self.pfc_tx, "xoff_events": self.xoff_events, "pause_rx": self.pause_frames,
                "rx_drops": self.rx_drops, "max_rx_bytes": self.max_rx_bytes,
                "stuck": self.clock() < self.stuck_until}

    def _pause(self, frame: bytes, now: float) -> None:
        """A MAC control frame: PFC pauses our data priority, PAUSE the whole link."""
        if len(frame) < 18:
            return
        opcode = int.from_bytes(frame[14:16], "big")
        if opcode == packets.PFC_OPCODE and len(frame) >= 34:
            if not frame[17] >> self.config.data_priority & 1:
                return  # another priority's pause
            quanta = int.from_bytes(frame[18 + 2 * self.config.data_priority:20 + 2 * self.config.data_priority], "big")
        elif opcode == packets.PAUSE_OPCODE:
            quanta = int.from_bytes(frame[16:18], "big")
        else:
            return
        self.pause_frames += 1
        self.paused_until = now + packets.pause_quanta_to_seconds(quanta, self.config.line_rate) if quanta else 0.0
        self._unpaused_at = self.paused_until or now

    def rto(self, qp: QueuePair) -> float:
        """The QP's current retransmission timeout."""
        base = self.config.rto if qp.srtt is None else max(self.config.rto, qp.srtt + 4 * qp.rttvar)
        return base * qp.backoff

    def _transmit(self, now: float) -> float | None:
        """Send every packet whose time has come; returns when the next one is due."""
        cfg = self.config
        line_gap = 8 / cfg.line_rate
        slack = cfg.burst * wire_bytes(HDR_LEN + cfg.mtu + packets.ICRC_LEN) * line_gap
        if now < self.paused_until:
            return self.paused_until
        wake: float | None = None
        sent_any = True
        while sent_any:
            sent_any = False
            for _ in range(len(self._rr)):
                qp = self._rr[0]
                self._rr.rotate(-1)
                if qp.snd_una <= qp.owed_psn and now - max(qp.last_progress, qp.last_ackreq_sent) > self.rto(qp):
                    qp.timeouts += 1
                    qp.backoff = min(64, qp.backoff * 2)
                    qp.rtt_probe = None
                    qp.snd_nxt = qp.snd_una               # ooo too: no later packet revealed the loss
                    qp.resend.clear()
                    qp.last_progress = now
                if qp.rate:
                    qp.rate.advance(now)
                    self._sample_rate(qp, now)
                if not qp.has_work:
                    qp.paced = False
                    continue
                resend = qp.resend
                while resend and not qp.snd_una <= resend[0] < qp.snd_nxt:
                    resend.popleft()                      # acknowledged meanwhile, or a go-back covers it
                selective = resend[0] if resend else None
                if selective is None and qp.snd_nxt >= qp.next_psn:
                    qp.paced = False
                    continue
                if selective is None and qp.snd_nxt - qp.snd_una >= cfg.window:
                    qp.paced = False
                    due = max(qp.last_progress, qp.last_ackreq_sent) + self.rto(qp)
                    wake = due if wake is None else min(wake, due)
                    continue
                due = max(qp.next_send_time, self._next_host_send)
                if due > now:
                    qp.paced = True
                    wake = due if wake is None else min(wake, due)
                    continue
                frame_len = self._send_data(qp, now, selective)
                if not frame_len:
                    qp.paced = False
                    wake = now + 0.0005
                    break
                if qp.paced:
                    self.pacing_error.add(int((now - max(due, self._unpaused_at)) * 1e6))
                qp.paced = True
                if selective is not None:
                    resend.popleft()
                rate = qp.rate.rate if qp.rate else cfg.line_rate
                wire = wire_bytes(frame_len)
                qp.next_send_time = max(qp.next_send_time, now - slack) + wire * 8 / rate
                self._next_host_send = max(self._next_host_send, now - slack) + wire * line_gap
                sent_any = True
            now = self.clock()
        return wake

    def pacing_report(self) -> dict:
        """The pacing error figure for the fidelity monitor (switch/fidelity.py), with its budget:
        the PFC reaction allowance at the line rate, as for the switches (a host late by more keeps
        sending after a pause longer than the fabric's headroom allows for)."""
        frame = HDR_LEN + self.config.mtu + 4
        return budget(self.pacing_error, reaction_allowance_us(self.config.line_rate, frame, scale=self.config.scale),
                      allowance_why(self.config.line_rate, frame, scale=self.config.scale))

    def busy(self) -> bool:
        """Whether any QP still has unacknowledged data, or the NIC's receive side has work."""
        return bool(self._rx) or self._xoff or any(qp.messages for qp in self.qps.values())

    def run_until(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = self.clock() + timeout
        while not done():
            remaining = deadline - self.clock()
            if remaining <= 0:
                return False
            self.poll(min(remaining, 0.005))
        return True

    def blast(self, qp: QueuePair, seconds: float) -> int:
        """Send full-MTU data frames back to back for ``seconds``, ignoring ACKs, window and pacing:
        the host process's packet rate ceiling. Returns the number of frames sent."""
        msg_packets = 1 << 20
        self.post_send(qp, msg_packets * self.config.mtu)
        sent = 0
        end = self.clock() + seconds
        while (now := self.clock()) < end:
            for _ in range(64):
                if qp.snd_nxt >= qp.next_psn:
                    self.post_send(qp, msg_packets * self.config.mtu)
                if self._send_data(qp, now):
                    sent += 1
                else:
                    select.select([], [self.sock], [], 0.001)
        return sent


def _mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)

