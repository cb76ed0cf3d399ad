"""The switch's ports: one AF_PACKET raw socket per interface, counters and optional pcap.

Each socket is bound to its interface with ETH_P_ALL, non-blocking, with large kernel buffers.
Frames the kernel loops back to us because *we* sent them (sll_pkttype PACKET_OUTGOING) are
ignored; where the kernel supports PACKET_IGNORE_OUTGOING (Linux 4.20+) it does not even queue
them. Frames carry no FCS (the kernel strips it), so a minimum frame here is 60 bytes.

VLAN tags: the kernel's receive path always moves an 802.1Q tag out of the frame into packet
metadata (``skb_vlan_untag`` in ``__netif_receive_skb_core``, whatever the offload settings), and
AF_PACKET hands the frame over without it, the tag in PACKET_AUXDATA. The P4 program must see the
PCP that classifies lossless traffic, so receiving asks for the aux data and puts the tag back
where it was, as libpcap does.

The pcap writer is classic libpcap format (https://wiki.wireshark.org/Development/LibpcapFileFormat):
a 24-byte global header (magic 0xa1b2c3d4, version 2.4, snaplen, linktype 1 = Ethernet), then per
record a 16-byte header (seconds, microseconds, captured length, original length) and the bytes.
"""
from __future__ import annotations

import errno
import logging
import os
import socket
import struct
import sys
import time
from pathlib import Path

from fabriclab.errors import UserError

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_AUXDATA = 8
PACKET_IGNORE_OUTGOING = 23
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
SOCKET_BUFFER_BYTES = 8 << 20
MAX_FRAME = 65535
PCAP_LINKTYPE_ETHERNET = 1

_AUXDATA = struct.Struct("=IIIHHHH")   # struct tpacket_auxdata (linux/if_packet.h)
_STATUS_LOW_BYTE = 0 if sys.byteorder == "little" else 3   # where tp_status's VLAN bit lives
_AUX_SPACE = socket.CMSG_SPACE(_AUXDATA.size)
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

    def __init__(self, number: int, ifname: str, pcap_dir: str | Path | None = None):
        self.number = number
        self.ifname = ifname
        self.rx_frames = self.rx_bytes = self.tx_frames = self.tx_bytes = 0
        self.drops: dict[str, int] = {}
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError:
            raise UserError("raw sockets need root (CAP_NET_RAW)") from None
        try:
            sock.bind((ifname, ETH_P_ALL))
        except OSError as exc:
            sock.close()
            raise UserError(f"port {number}: cannot open interface {ifname!r}: {exc.strerror}") from None
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        try:
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        except OSError:
            pass  # older kernel: the sll_pkttype check below does the job
        for option, forced in ((socket.SO_RCVBUF, SO_RCVBUFFORCE), (socket.SO_SNDBUF, SO_SNDBUFFORCE)):
            try:  # the FORCE variants ignore the net.core.*mem_max caps; we are root
                sock.setsockopt(socket.SOL_SOCKET, forced, SOCKET_BUFFER_BYTES)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
        sock.setblocking(False)
        self.sock = sock
        self.mac = _interface_mac(ifname)
        self.pcap = PcapWriter(Path(pcap_dir) / f"port{number}-{ifname}.pcap") if pcap_dir else None

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive(self, limit: int) -> list[bytes]:
        """Up to ``limit`` frames received since the last call (never blocks)."""
        frames = []
        recvmsg = self.sock.recvmsg
        outgoing = socket.PACKET_OUTGOING
        pcap = self.pcap
        for _ in range(limit):
            try:
                frame, ancillary, _, address = recvmsg(MAX_FRAME, _AUX_SPACE)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in (errno.ENETDOWN, errno.ENXIO):
                    _count(self.drops, "rx_interface_down")
                    break
                raise
            if address[2] == outgoing:
                continue
            if len(frame) < 14:
                _count(self.drops, "rx_runt")
                continue
            if ancillary and ancillary[0][2][_STATUS_LOW_BYTE] & TP_STATUS_VLAN_VALID:
                frame = _restore_vlan_tag(frame, ancillary[0][2])
            frames.append(frame)
            self.rx_bytes += len(frame)
            if pcap is not None:
                pcap.write(frame)
        self.rx_frames += len(frames)
        return frames

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
        self.sock.close()
        if self.pcap is not None:
            self.pcap.close()


def _restore_vlan_tag(frame: bytes, auxdata: bytes) -> bytes:
    """Put back the 802.1Q tag the kernel moved into ``auxdata`` (our only control message)."""
    status, _, _, _, _, tci, tpid = _AUXDATA.unpack_from(auxdata)
    tpid = tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100
    return frame[:12] + struct.pack("!HH", tpid, tci) + frame[12:]


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
    if not os.path.exists(f"/sys/class/net/{ifname}"):
        raise UserError(f"-i {text}: no interface named {ifname!r}")
    return int(number), ifname
