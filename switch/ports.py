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
Frames carry no FCS (the kernel strips it), so a minimum frame here is 60 bytes.

Sending goes through a memory-mapped transmit ring (PACKET_TX_RING, same document) on a second
socket bound with protocol 0, so it receives nothing: ``stage`` copies a frame into the next free
slot and marks it TP_STATUS_SEND_REQUEST, ``flush`` makes one send() system call that transmits
every staged frame (the switch flushes once per loop turn instead of one send() per frame;
``stage`` flushes by itself once TX_BATCH frames wait, which bounds how long a frame can wait).
With PACKET_VNET_HDR each slot starts with a virtio_net_hdr whose hdr_len is the frame's
length, which makes the kernel copy the whole frame into the socket buffer (tpacket_snd copies
hdr_len bytes, the rest would be page fragments pointing into the ring): a slot is free again
once its frame left, and a receiver still holding a clone of the frame never sees the slot
being rewritten. The kernel walks the ring in order from its own position and stops at the first
frame it cannot take (socket buffer full, device down); those frames are taken back and counted
as drops, as a refused send() was, so our position and the kernel's never part. A frame that
does not fit a slot, or is larger than the interface MTU allows, goes through the receive
socket's plain send() instead (after the staged ones, keeping the order), which reports
EMSGSIZE as before.

VLAN tags: the kernel's receive path always moves an 802.1Q tag out of the frame into packet
metadata (``skb_vlan_untag`` in ``__netif_receive_skb_core``, whatever the offload settings);
the ring's frame header carries it (tp_vlan_tci). The P4 program must see the PCP that
classifies lossless traffic, so receiving puts the tag back where it was, as libpcap does.

The per-frame loops (the receive walk, ``resync``'s scan, staging and the take-back after a
flush) also exist in C, switch/native_ports.c, built like the native P4 engine's modules; a port
uses them unless ``$FABRICLAB_ENGINE`` is ``python`` or they cannot be built (no gcc, no Python.h),
with one INFO line per process saying which. Both paths keep the same counters and state here.

The pcap writer is classic libpcap format (https://wiki.wireshark.org/Development/LibpcapFileFormat):
a 24-byte global header (magic 0xa1b2c3d4, version 2.4, snaplen, linktype 1 = Ethernet), then per
record a 16-byte header (seconds, microseconds, captured length, original length) and the bytes.
"""
from __future__ import annotations

import errno
import logging
import mmap
import os
import socket
import struct
import sys
import time
from pathlib import Path
from types import ModuleType

from fabriclab.errors import UserError

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_TX_RING = 13
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
TPACKET_V2 = 1
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1 << 0
TP_STATUS_COPY = 1 << 1
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
TP_STATUS_AVAILABLE = 0              # transmit ring slot states
TP_STATUS_SEND_REQUEST = 1
TP_STATUS_WRONG_FORMAT = 1 << 2
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
SOCKET_BUFFER_BYTES = 8 << 20
RING_BYTES = 8 << 20                 # per port at most: 4096 slots of 2 KiB for a 1500-byte MTU
TX_RING_BYTES = 2 << 20              # 1024 slots: a slot is busy only until the peer consumed the
                                     # frame (a socket queueing it orphans it), microseconds on a veth
RING_HOLD_S = 0.1                    # a port of known rate gets a receive ring that rides out a
                                     # stall of the loop this long at line rate (full-size frames),
                                     # at least 256 slots; its transmit ring a quarter of that, at
                                     # least 128: rings are resident memory (the kernel maps every
                                     # page), and a k=8 fat-tree has 640 ports
RING_BLOCK_BYTES = 1 << 16
TPACKET2_HDR_BYTES = 32              # sizeof(struct tpacket2_hdr): a frame starts after it
RING_HEADROOM = 128                  # tpacket2_hdr + sockaddr_ll + alignment before the frame
SLL_PKTTYPE_OFFSET = 32 + 10         # sockaddr_ll follows the 32-byte tpacket2_hdr
TX_VNET_OFFSET = 32                  # TPACKET2_HDRLEN - sizeof(sockaddr_ll): where a sent slot's data starts
TX_DATA_OFFSET = TX_VNET_OFFSET + 10  # after the virtio_net_hdr
# the low byte of a slot's 32-bit status word holds every transmit state
TX_STATUS_BYTE = 0 if sys.byteorder == "little" else 3
ETH_HLEN = 14
TX_BATCH = 32                        # staged frames that trigger a flush: the system call's cost is
                                     # mostly shared beyond this, and the first frame waits less
MAX_FRAME = 65535
PCAP_LINKTYPE_ETHERNET = 1
PACKET_OUTGOING = socket.PACKET_OUTGOING

_TPACKET2_HDR = struct.Struct("=IIIHHIIHH")   # status, len, snaplen, mac, net, sec, nsec, vlan_tci, vlan_tpid
_STATUS = struct.Struct("I")
# tp_len, tp_snaplen, 20 bytes of the header the kernel ignores on transmit, then the
# virtio_net_hdr: flags, gso_type (none), hdr_len, gso_size, csum_start, csum_offset
_TX_SLOT = struct.Struct("=II20xBBHHHH")
_VLAN = struct.Struct("!HH")
_PCAP_GLOBAL = struct.Struct("<IHHiIII")
_PCAP_RECORD = struct.Struct("<IIII")


def native_ports() -> ModuleType | None:
    """The C helpers of switch/native_ports.c, or None for the Python path."""
    from fabriclab.compiler.native_build import optional_shipped

    return optional_shipped(Path(__file__).resolve().parent / "native_ports.c",
                            "ports: receive walk and transmit staging")


def ring_slots(most_bytes: int, least: int, rate_bps: int | None, hold_s: float, slot: int, max_frame: int) -> int:
    """Slots of a ring that holds ``hold_s`` of full-size frames at ``rate_bps`` (None: ``most_bytes``
    worth), at least ``least``, in whole blocks of RING_BLOCK_BYTES, at most ``most_bytes`` worth."""
    block = max(RING_BLOCK_BYTES, slot)
    per_block = block // slot
    most = max(most_bytes, block) // slot
    if rate_bps is None:
        return most
    frames = max(least, int(rate_bps * hold_s / 8 / max_frame) + 1)
    return min(most, -(-frames // per_block) * per_block)


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

    def __init__(self, number: int, ifname: str, pcap_dir: str | Path | None = None, max_frame: int = 1522,
                 rate_bps: int | None = None):
        """``rate_bps``: the port's line rate, which sizes its rings (None: the largest rings)."""
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
            self._own_frames_seen = False
        except OSError:
            self._own_frames_seen = True   # older kernel: the sll_pkttype check in receive() does the job
        try:  # the FORCE variant ignores the net.core.wmem_max cap; we are root
            sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, SOCKET_BUFFER_BYTES)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
        # the receive ring: slots of a power of two that holds the largest frame
        self._slot = 1 << (max_frame + RING_HEADROOM - 1).bit_length()
        block = max(RING_BLOCK_BYTES, self._slot)
        self._slots = ring_slots(RING_BYTES, 256, rate_bps, RING_HOLD_S, self._slot, max_frame)
        self._tx_slots = ring_slots(TX_RING_BYTES, 128, rate_bps, RING_HOLD_S / 4, self._slot, max_frame)
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
        self._native = native_ports()
        try:
            self._open_tx_ring(ifname)
        except OSError as exc:
            self._ring.close()
            sock.close()
            raise UserError(f"port {number}: cannot map a transmit ring on {ifname!r}: {exc.strerror}") from None
        self.mac = _interface_mac(ifname)
        self.pcap = PcapWriter(Path(pcap_dir) / f"port{number}-{ifname}.pcap") if pcap_dir else None

    def _open_tx_ring(self, ifname: str) -> None:
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            try:
                tx.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, SOCKET_BUFFER_BYTES)
            except OSError:
                tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
            tx.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            tx.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
            block = max(RING_BLOCK_BYTES, self._slot)
            tx.setsockopt(SOL_PACKET, PACKET_TX_RING,
                          struct.pack("IIII", block, self._tx_slots * self._slot // block, self._slot, self._tx_slots))
            self._tx_ring = mmap.mmap(tx.fileno(), self._tx_slots * self._slot, mmap.MAP_SHARED,
                                      mmap.PROT_READ | mmap.PROT_WRITE)
            try:
                tx.bind((ifname, 0))           # protocol 0: this socket receives nothing
            except OSError:
                self._tx_ring.close()
                raise
        except OSError:
            tx.close()
            raise
        tx.setblocking(False)
        self._tx_sock = tx
        # the ring's path checks no MTU (virtio_net_hdr frames may be GSO): larger frames go
        # through send(), which refuses them as before
        self._tx_ring_max = min(self._slot - TX_DATA_OFFSET, _interface_mtu(ifname) + ETH_HLEN)
        if self._native is None:
            self._tx = None
            self._tx_next = 0                  # the slot the next staged frame goes into
            self._staged: list[bytes] = []     # frames in SEND_REQUEST slots, oldest first
            return
        # the C twin of stage() below, bound on the instance so a frame costs no Python frame
        self._tx = self._native.TxRing(self._tx_ring, self._slot, self._tx_slots, self._tx_ring_max,
                                       TX_BATCH, tx.fileno(), self.flush, self._stage_refused)
        self._staged = self._tx.staged         # the C object's own list
        self.stage = self._tx.stage

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
        if self._native is not None:
            got, self._next, rx_bytes = self._native.rx_walk(
                self._ring, self._slot, self._slots, self._next, limit, self._own_frames_seen,
                self.sock.fileno(), self.drops)
            if got:
                self.rx_frames += len(got)
                self.rx_bytes += rx_bytes
                if self.pcap is not None:
                    for stamp, frame in got:
                        self.pcap.write(frame, stamp)
            return got
        got = []
        ring, slot, slots, index = self._ring, self._slot, self._slots, self._next
        unpack, pcap, hand_back = _TPACKET2_HDR.unpack_from, self.pcap, _STATUS.pack_into
        append, own_frames_seen = got.append, self._own_frames_seen
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
            elif own_frames_seen and ring[offset + SLL_PKTTYPE_OFFSET] == PACKET_OUTGOING:
                pass                                   # a frame we sent, looped back
            elif not TPACKET2_HDR_BYTES <= mac <= slot - captured:   # the header lies: not our frame to read
                _count(self.drops, "rx_malformed_slot")
            else:
                frame = ring[offset + mac:offset + mac + captured]
                if status & TP_STATUS_VLAN_VALID:
                    if not status & TP_STATUS_VLAN_TPID_VALID:
                        tpid = 0x8100
                    frame = frame[:12] + _VLAN.pack(tpid, tci) + frame[12:]
                stamp = sec * 1_000_000_000 + nsec
                append((stamp, frame))
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
        if self._native is not None:
            oldest = self._native.rx_oldest(self._ring, self._slot, self._slots)
        else:
            unpack, slot, first = _TPACKET2_HDR.unpack_from, self._slot, None
            for index in range(self._slots):
                status, _, _, _, _, sec, nsec, _, _ = unpack(self._ring, index * slot)
                if status & TP_STATUS_USER and (first is None or (sec, nsec) < first[0]):
                    first = ((sec, nsec), index)
            oldest = -1 if first is None else first[1]
        if oldest < 0 or oldest == self._next:
            return False
        self._next = oldest
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

    def stage(self, frame: bytes) -> bool:
        """Put ``frame`` in the transmit ring; it leaves at the next ``flush``. False if it was
        dropped (and counted): the ring is still full after a flush (the peer takes nothing), or
        the frame did not fit the ring and send() refused it."""
        length = len(frame)
        if not ETH_HLEN <= length <= self._tx_ring_max:
            self.flush()
            return self._send_now(frame)
        ring = self._tx_ring
        offset = self._tx_next * self._slot
        if ring[offset + TX_STATUS_BYTE] != TP_STATUS_AVAILABLE:
            self.flush()                        # staged frames may be holding the slots
            offset = self._tx_next * self._slot
            if ring[offset + TX_STATUS_BYTE] != TP_STATUS_AVAILABLE:
                _count(self.drops, "tx_buffer_full")
                return False
        ring[offset + TX_DATA_OFFSET:offset + TX_DATA_OFFSET + length] = frame
        _TX_SLOT.pack_into(ring, offset + 4, length + 10, length + 10, 0, 0, length, 0, 0, 0)
        ring[offset + TX_STATUS_BYTE] = TP_STATUS_SEND_REQUEST    # last: the kernel may take it now
        self._tx_next = self._tx_next + 1 if self._tx_next + 1 < self._tx_slots else 0
        staged = self._staged
        staged.append(frame)
        if len(staged) >= TX_BATCH:
            self.flush()
        return True

    def _stage_refused(self, frame: bytes) -> bool:
        """``stage`` of the native path when the C side could not take the frame: it does not fit
        the ring, or the next slot is busy (the same policy as ``stage``)."""
        self.flush()
        if not ETH_HLEN <= len(frame) <= self._tx_ring_max:
            return self._send_now(frame)
        if self._tx.try_stage(frame):
            return True
        _count(self.drops, "tx_buffer_full")
        return False

    @property
    def staged(self) -> int:
        """Frames waiting in the transmit ring for ``flush``."""
        return len(self._staged)

    def flush(self) -> int:
        """Transmit every staged frame with one system call; returns how many left.

        As with one send() per frame, a frame the kernel refuses (the qdisc dropped it, a
        malformed frame) costs that frame only; a full socket buffer or a down link costs all
        that wait."""
        staged, sent = self._staged, 0
        while staged:
            taken, taken_bytes, left, code = self._tx.kick() if self._tx is not None else self._kick()
            reason, one_frame = None, False
            if code:
                reason, one_frame = _TX_ERRORS.get(code), code in _ONE_FRAME_ERRNOS
                if reason is None:
                    raise OSError(code, os.strerror(code))
            self.tx_frames += taken
            self.tx_bytes += taken_bytes
            if self.pcap is not None:
                self._capture_sent(staged[:taken])
            sent += taken
            if left and one_frame:
                _count(self.drops, reason)
                rest = staged[taken + 1:]
                staged.clear()
                for frame in rest:      # into the slots just taken back: fewer than TX_BATCH, no flush
                    self.stage(frame)
                continue
            if left:
                _count(self.drops, reason or "tx_buffer_full", left)
            staged.clear()
        return sent

    def _kick(self) -> tuple[int, int, int, int]:
        """One send() for every staged frame, then ``_take_back``: (frames taken, their bytes,
        frames left, errno or 0)."""
        code = 0
        try:
            self._tx_sock.send(b"")
        except OSError as exc:
            code = exc.errno
        staged = self._staged
        left = self._take_back(len(staged))
        taken = len(staged) - left
        return taken, sum(map(len, staged[:taken])), left, code

    def _take_back(self, count: int) -> int:
        """After a flush: the kernel takes slots in order and stops at the first it cannot send,
        so what it left is the tail of the last ``count`` staged slots. Mark those free again and
        move our position back to the first (where the kernel's stayed); returns how many."""
        ring, slot, index, left = self._tx_ring, self._slot, self._tx_next, 0
        while left < count:
            previous = (index or self._tx_slots) - 1
            status = ring[previous * slot + TX_STATUS_BYTE]
            if status != TP_STATUS_SEND_REQUEST and status != TP_STATUS_WRONG_FORMAT:
                break
            ring[previous * slot + TX_STATUS_BYTE] = TP_STATUS_AVAILABLE
            index, left = previous, left + 1
        self._tx_next = index
        return left

    def _capture_sent(self, frames: list[bytes]) -> None:
        now = time.time_ns()
        for frame in frames:
            self.pcap.write(frame, now)

    def send(self, frame: bytes) -> bool:
        """Transmit one frame now; a full buffer or a down link counts a drop instead."""
        self.flush()                            # what was staged before goes first
        if not self.stage(frame):
            return False
        ours = self.staged                      # 0 if it went out through send() already
        return self.flush() == ours

    def _send_now(self, frame: bytes) -> bool:
        """One send() of a frame the ring does not take (too big for a slot or the MTU, or a runt)."""
        try:
            self.sock.send(frame)
        except BlockingIOError:
            _count(self.drops, "tx_buffer_full")
            return False
        except OSError as exc:
            reason = _TX_ERRORS.get(exc.errno)
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
        if self._tx is not None:
            self._tx.close()                    # drops its callbacks: no cycle with this port
        self._ring.close()
        self.sock.close()
        self._tx_ring.close()
        self._tx_sock.close()
        if self.pcap is not None:
            self.pcap.close()


def _interface_mtu(ifname: str) -> int:
    try:
        return int(Path(f"/sys/class/net/{ifname}/mtu").read_text())
    except (OSError, ValueError):
        return 1500


def _interface_mac(ifname: str) -> bytes:
    try:
        text = Path(f"/sys/class/net/{ifname}/address").read_text().strip()
        return bytes.fromhex(text.replace(":", ""))
    except (OSError, ValueError):
        return bytes(6)


_TX_ERRORS = {errno.EMSGSIZE: "tx_too_big", errno.ENOBUFS: "tx_buffer_full", errno.EAGAIN: "tx_buffer_full",
              errno.ENETDOWN: "tx_interface_down", errno.ENXIO: "tx_interface_down", errno.EINVAL: "tx_invalid"}
# what a flush reports about the one frame it stopped at (ENOBUFS: the qdisc dropped it); the
# others (EAGAIN: socket buffer full, ENETDOWN...) hold for every frame that waits
_ONE_FRAME_ERRNOS = {errno.EMSGSIZE, errno.EINVAL, errno.ENOBUFS}


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
