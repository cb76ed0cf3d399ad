"""The switch's ports: one AF_PACKET raw socket per interface, counters and optional pcap.

Each socket is bound to its interface with ETH_P_ALL and is non-blocking. Frames arrive in a
memory-mapped receive ring (PACKET_RX_RING, TPACKET_V2; Documentation/networking/packet_mmap.rst
in the Linux tree): no system call per frame, which roughly halves the cost of receiving in
Python compared with recvmsg. Each slot's header carries the kernel's receive timestamp, which
``receive_stamped`` returns with the frame. The walk reads slots in order while they are
TP_STATUS_USER; should the read position ever part from the kernel's (a deaf port: the kernel
fills slots we are not looking at), ``resync`` moves it to the oldest waiting frame.
Frames the kernel loops back because *we* sent them (sll_pkttype
PACKET_OUTGOING) are ignored; PACKET_IGNORE_OUTGOING (Linux 4.20+) keeps them out of the ring.
Sending is one send() per frame with a large socket buffer. Frames carry no FCS (the kernel
strips it), so a minimum frame here is 60 bytes.

VLAN tags: the kernel's receive path always moves an 802.1Q tag out of the frame into packet
metadata (``skb_vlan_untag`` in ``__netif_receive_skb_core``, whatever the offload settings);
the ring's frame header carries it (tp_vlan_tci). The P4 program must see the PCP that
classifies lossless traffic, so receiving puts the tag back where it was, as libpcap does.

The pcap writer is classic libpcap format (https://wiki.wireshark.org/Development/LibpcapFileFormat):
a 24-byte global header (magic 0xa1b2c3d4, version 2.4, snaplen, linktype 1 = Ethernet), then per
record a 16-byte header (seconds, microseconds, captured length, original length) and the bytes.
"""
from __future__ import annotations

import errno
import mmap
import os
import socket
import struct
import time
from pathlib import Path

from fabriclab.errors import UserError

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_IGNORE_OUTGOING = 23
TPACKET_V2 = 1
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1 << 0
TP_STATUS_COPY = 1 << 1
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
SOCKET_BUFFER_BYTES = 8 << 20
RING_BYTES = 8 << 20                 # per port: 4096 slots of 2 KiB for a 1500-byte MTU
RING_BLOCK_BYTES = 1 << 16
RING_HEADROOM = 128                  # tpacket2_hdr + sockaddr_ll + alignment before the frame
SLL_PKTTYPE_OFFSET = 32 + 10         # sockaddr_ll follows the 32-byte tpacket2_hdr
MAX_FRAME = 65535
PCAP_LINKTYPE_ETHERNET = 1
PACKET_OUTGOING = socket.PACKET_OUTGOING

_TPACKET2_HDR = struct.Struct("=IIIHHIIHH")   # status, len, snaplen, mac, net, sec, nsec, vlan_tci, vlan_tpid
_STATUS = struct.Struct("I")
_VLAN = struct.Struct("!HH")
_PCAP_GLOBAL = struct.Struct("<IHHiIII")
_PCAP_RECORD = struct.Struct("<IIII")


class PcapWriter:
    """Appends frames to a classic pcap file with µs timestamps."""

    def __init__(self, path: str | Path, snaplen: int = MAX_FRAME):
        self.path = Path(path)
        self.snaplen = snaplen
        self._file = open(self.path, "wb")
        self._file.write(_PCAP_GLOBAL.pack(0xA1B2C3D4, 2, 4, 0, 0, snaplen, PCAP_LINKTYPE_ETHERNET))

    def write(self, frame: bytes, time_ns: int | None = None) -> None:
        if time_ns is None:
            time_ns = time.time_ns()
        seconds, rest = divmod(time_ns, 1_000_000_000)
        data = frame[:self.snaplen]
        self._file.write(_PCAP_RECORD.pack(seconds, rest // 1000, len(data), len(frame)))
        self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def read_pcap(path: str | Path) -> list[tuple[int, bytes]]:
    """(time in ns, frame) records of a classic µs pcap file: for tests and tools."""
    data = Path(path).read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    if magic != 0xA1B2C3D4:
        raise ValueError(f"{path}: not a little-endian microsecond pcap file")
    records, offset = [], _PCAP_GLOBAL.size
    while offset + _PCAP_RECORD.size <= len(data):
        seconds, micros, caplen, _ = _PCAP_RECORD.unpack_from(data, offset)
        offset += _PCAP_RECORD.size
        records.append((seconds * 1_000_000_000 + micros * 1000, data[offset:offset + caplen]))
        offset += caplen
    return records


class Port:
    """One switch port: a raw socket on ``ifname`` plus counters and an optional pcap."""

    def __init__(self, number: int, ifname: str, pcap_dir: str | Path | None = None, max_frame: int = 1522):
        self.number = number
        self.ifname = ifname
        self.rx_frames = self.rx_bytes = self.tx_frames = self.tx_bytes = 0
        self.drops: dict[str, int] = {}
        try:  # protocol 0: nothing is received before the ring exists and bind() names ETH_P_ALL
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise UserError("raw sockets need root (CAP_NET_RAW)") from None
        try:
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        except OSError:
            pass  # older kernel: the sll_pkttype check in receive() does the job
        try:  # the FORCE variant ignores the net.core.wmem_max cap; we are root
            sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, SOCKET_BUFFER_BYTES)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
        # the receive ring: slots of a power of two that holds the largest frame
        self._slot = 1 << (max_frame + RING_HEADROOM - 1).bit_length()
        block = max(RING_BLOCK_BYTES, self._slot)
        self._slots = max(RING_BYTES, block) // self._slot
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING,
                            struct.pack("IIII", block, self._slots * self._slot // block, self._slot, self._slots))
            self._ring = mmap.mmap(sock.fileno(), self._slots * self._slot, mmap.MAP_SHARED,
                                   mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as exc:
            sock.close()
            raise UserError(f"port {number}: cannot map a receive ring on {ifname!r}: {exc.strerror}") from None
        try:
            sock.bind((ifname, ETH_P_ALL))
        except OSError as exc:
            self._ring.close()
            sock.close()
            raise UserError(f"port {number}: cannot open interface {ifname!r}: {exc.strerror}") from None
        self._next = 0                        # the ring slot to read next
        sock.setblocking(False)
        self.sock = sock
        self.mac = _interface_mac(ifname)
        self.pcap = PcapWriter(Path(pcap_dir) / f"port{number}-{ifname}.pcap") if pcap_dir else None

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive(self, limit: int) -> list[bytes]:
        """Up to ``limit`` frames received since the last call (never blocks)."""
        return [frame for _, frame in self.receive_stamped(limit)]

    def receive_stamped(self, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` (arrival time, frame) pairs received since the last call (never blocks).

        The arrival time is the kernel's receive timestamp from the slot header (tp_sec/tp_nsec,
        CLOCK_REALTIME ns): a batch read at once still carries each frame's own arrival time.
        The walk goes on from the slot after the last one read while slots are TP_STATUS_USER;
        ``resync`` repairs the position if it ever stops matching the kernel's."""
        got = []
        ring, slot, slots, index = self._ring, self._slot, self._slots, self._next
        unpack, pcap, hand_back = _TPACKET2_HDR.unpack_from, self.pcap, _STATUS.pack_into
        rx_bytes = 0
        for _ in range(limit):
            offset = index * slot
            status, length, captured, mac, _, sec, nsec, tci, tpid = unpack(ring, offset)
            if not status & TP_STATUS_USER:
                break
            if captured < length:
                _count(self.drops, "rx_too_big")      # larger than a ring slot (e.g. GSO from a host)
                if status & TP_STATUS_COPY:
                    self._discard_copy()
            elif length < 14:
                _count(self.drops, "rx_runt")
            elif ring[offset + SLL_PKTTYPE_OFFSET] != PACKET_OUTGOING:
                frame = ring[offset + mac:offset + mac + captured]
                if status & TP_STATUS_VLAN_VALID:
                    if not status & TP_STATUS_VLAN_TPID_VALID:
                        tpid = 0x8100
                    frame = frame[:12] + _VLAN.pack(tpid, tci) + frame[12:]
                stamp = sec * 1_000_000_000 + nsec
                got.append((stamp, frame))
                rx_bytes += len(frame)
                if pcap is not None:
                    pcap.write(frame, stamp)
            hand_back(ring, offset, TP_STATUS_KERNEL)
            index += 1
            if index == slots:
                index = 0
        self._next = index
        self.rx_frames += len(got)
        self.rx_bytes += rx_bytes
        if got:
            self._order_stamps(got, index)
        return got

    def _order_stamps(self, got: list[tuple[int, bytes]], next_index: int) -> None:
        """Make arrival times never decrease along the ring: a frame is given no later a time
        than any frame after it (in ``got``, or the next waiting slot). Under overload the
        ring holds frames tens of ms old, and a slot the kernel fills out of turn (see
        ``resync``) can carry a fresh stamp among them; taken as is, it would move the
        traffic manager's clock far ahead and every older frame after it would bunch up."""
        status, *_, sec, nsec, _, _ = _TPACKET2_HDR.unpack_from(self._ring, next_index * self._slot)
        bound = sec * 1_000_000_000 + nsec if status & TP_STATUS_USER else got[-1][0]
        for i in range(len(got) - 1, -1, -1):
            stamp = got[i][0]
            if stamp > bound:
                got[i] = (bound, got[i][1])
            else:
                bound = stamp

    def resync(self) -> bool:
        """Move the read position to the oldest frame waiting in the ring, wherever it is.

        The kernel fills slots in order and we read them in order, so the positions should
        never part; but a reader that waits on a slot the kernel is not going to fill next
        would receive nothing until the kernel wrapped round to it (thousands of frames).
        The switch calls this when epoll keeps reporting the socket readable while the slot
        at our position stays empty. True if the position moved."""
        unpack, slot = _TPACKET2_HDR.unpack_from, self._slot
        oldest = None
        for index in range(self._slots):
            status, _, _, _, _, sec, nsec, _, _ = unpack(self._ring, index * slot)
            if status & TP_STATUS_USER and (oldest is None or (sec, nsec) < oldest[0]):
                oldest = ((sec, nsec), index)
        if oldest is None or oldest[1] == self._next:
            return False
        self._next = oldest[1]
        _count(self.drops, "rx_ring_resync")
        return True

    def _discard_copy(self) -> None:
        """A TP_STATUS_COPY slot's full frame waits in the socket queue: take it out, unused."""
        try:
            self.sock.recv(MAX_FRAME, socket.MSG_DONTWAIT)
        except OSError:
            pass

    def clear_error(self) -> None:
        """Read (and so clear) a pending socket error, e.g. ENETDOWN when the link goes away;
        the ring never calls recv(), and epoll keeps reporting an unread error."""
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            _count(self.drops, f"rx_error_{errno.errorcode.get(code, code)}")

    def send(self, frame: bytes) -> bool:
        """Transmit one frame; a full socket buffer or a down link counts a drop instead."""
        try:
            self.sock.send(frame)
        except BlockingIOError:
            _count(self.drops, "tx_buffer_full")
            return False
        except OSError as exc:
            reason = {errno.EMSGSIZE: "tx_too_big", errno.ENOBUFS: "tx_buffer_full",
                      errno.ENETDOWN: "tx_interface_down", errno.ENXIO: "tx_interface_down"}.get(exc.errno)
            if reason is None:
                raise
            _count(self.drops, reason)
            return False
        self.tx_frames += 1
        self.tx_bytes += len(frame)
        if self.pcap is not None:
            self.pcap.write(frame)
        return True

    def kernel_drops(self) -> int:
        """Frames the kernel dropped because our receive buffer was full (we fell behind)."""
        try:  # struct tpacket_stats {tp_packets, tp_drops}; reading resets the kernel's counters
            _, dropped = struct.unpack("II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        except OSError:
            return self.drops.get("rx_socket_full", 0)
        if dropped:
            _count(self.drops, "rx_socket_full", dropped)
        return self.drops.get("rx_socket_full", 0)

    def stats(self) -> dict:
        self.kernel_drops()
        return {"ifname": self.ifname, "rx_frames": self.rx_frames, "rx_bytes": self.rx_bytes,
                "tx_frames": self.tx_frames, "tx_bytes": self.tx_bytes, "drops": dict(self.drops)}

    def close(self) -> None:
        self._ring.close()
        self.sock.close()
        if self.pcap is not None:
            self.pcap.close()


def _interface_mac(ifname: str) -> bytes:
    try:
        text = Path(f"/sys/class/net/{ifname}/address").read_text().strip()
        return bytes.fromhex(text.replace(":", ""))
    except (OSError, ValueError):
        return bytes(6)


def _count(counter: dict[str, int], reason: str, n: int = 1) -> None:
    counter[reason] = counter.get(reason, 0) + n


def parse_interface_arg(text: str) -> tuple[int, str]:
    """``1@veth1`` -> (1, 'veth1'), as simple_switch's ``-i``."""
    number, sep, ifname = text.partition("@")
    if not sep or not number.isdigit() or not ifname:
        raise UserError(f"-i {text!r}: expected PORT@IFNAME, e.g. 1@veth1")
    if int(number) >= 511:
        raise UserError(f"-i {text}: port numbers go up to 510 (511 is v1model's drop port)")
    if not os.path.exists(f"/sys/class/net/{ifname}"):
        raise UserError(f"-i {text}: no interface named {ifname!r}")
    return int(number), ifname
