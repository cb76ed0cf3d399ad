"""Raw-socket UDP sender and receiver for ``fabriclab bench dataplane``, one process each:

    python -m fabriclab.bench.rawflow send IFNAME --dst-mac MAC --src-ip A --dst-ip B --tag HEX
                                          [--size 1400] [--rate PPS] [--seconds S]
    python -m fabriclab.bench.rawflow receive IFNAME --tag HEX [--seconds S]

Both talk AF_PACKET on one interface, so neither the hosts' IP stacks nor their qdiscs are in the
measurement, and both run their per-frame loop in C (native_rawflow.c: some 400k frames/s a
core), so neither is what a benchmark measures. The sender paces to ``--rate`` frames/s (0: as
fast as it can) and prints the number it sent; the receiver prints "ready" once its socket is bound, then counts frames that
carry the 8-byte tag at the start of the UDP payload (a fresh tag per run: stragglers of an
earlier run are not counted) and prints the count after ``--seconds``.
"""
from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
from pathlib import Path

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
SOCKET_BUFFER_BYTES = 16 << 20
UDP_PORT = 9                     # discard
TAG_OFFSET = 14 + 20 + 8         # Ethernet, IPv4 without options, UDP


def ipv4_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(src_mac: bytes, dst_mac: bytes, src_ip: str, dst_ip: str, size: int, tag: bytes) -> bytes:
    """An Ethernet/IPv4/UDP frame of ``size`` bytes (no FCS), tag first in the payload.
    UDP checksum 0: "no checksum" is valid over IPv4 (RFC 768)."""
    payload_len = size - TAG_OFFSET
    if payload_len < len(tag):
        raise ValueError(f"frame size {size} too small")
    ip_len = 20 + 8 + payload_len
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, 0, 0x4000, 64, 17, 0,
                         socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    header = header[:10] + struct.pack("!H", ipv4_checksum(header)) + header[12:]
    udp = struct.pack("!HHHH", 40000, UDP_PORT, 8 + payload_len, 0)
    payload = tag + bytes(payload_len - len(tag))
    return dst_mac + src_mac + struct.pack("!H", ETH_P_IP) + header + udp + payload


def raw_socket(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((ifname, ETH_P_ALL))
    for option, forced in ((socket.SO_RCVBUF, SO_RCVBUFFORCE), (socket.SO_SNDBUF, SO_SNDBUFFORCE)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, forced, SOCKET_BUFFER_BYTES)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
    return sock


def native():
    """The C loops (native_rawflow.c), built by gcc as the switch's native modules are: a
    Python loop tops out near 120k frames/s, below what the forwarders under test reach."""
    from fabriclab.compiler import native_build

    try:
        return native_build.load((Path(__file__).resolve().parent / "native_rawflow.c").read_text())
    except (OSError, native_build.NativeUnavailable) as exc:
        raise SystemExit(f"rawflow: the C sender/receiver is unavailable: {exc}") from None


def send(ifname: str, frame: bytes, rate: float, seconds: float) -> dict:
    """Send ``frame`` at ``rate`` frames/s (0: flat out) for ``seconds``; frames the kernel
    refused (full buffer) are counted apart, not as sent. Copies, batched by sendmmsg(), not a
    PACKET_TX_RING: a ring frame stays the sender's until the receiver frees it, so a slow
    receiver would hold the sender back and hide the loss this benchmark looks for."""
    loops = native()
    sock = raw_socket(ifname)
    try:
        sent, refused, elapsed = loops.send_loop(sock.fileno(), frame, rate, seconds)
    finally:
        sock.close()
    return {"sent": sent, "refused": refused, "seconds": elapsed}


def receive(ifname: str, tag: bytes, seconds: float) -> dict:
    loops = native()
    sock = raw_socket(ifname)
    try:
        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    except OSError:
        pass   # older kernels: our receiver sends nothing anyway
    print("ready", flush=True)
    try:
        count = loops.count_loop(sock.fileno(), tag, TAG_OFFSET, seconds)
    finally:
        sock.close()
    return {"received": count}


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _own_mac(ifname: str) -> bytes:
    with open(f"/sys/class/net/{ifname}/address") as f:
        return _mac(f.read().strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rawflow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    tx = sub.add_parser("send")
    tx.add_argument("ifname")
    tx.add_argument("--dst-mac", required=True)
    tx.add_argument("--src-ip", required=True)
    tx.add_argument("--dst-ip", required=True)
    tx.add_argument("--tag", required=True, help="8 bytes in hex")
    tx.add_argument("--size", type=int, default=1400)
    tx.add_argument("--rate", type=float, default=0.0)
    tx.add_argument("--seconds", type=float, default=1.0)
    rx = sub.add_parser("receive")
    rx.add_argument("ifname")
    rx.add_argument("--tag", required=True)
    rx.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    tag = bytes.fromhex(args.tag)
    if args.mode == "send":
        frame = udp_frame(_own_mac(args.ifname), _mac(args.dst_mac), args.src_ip, args.dst_ip, args.size, tag)
        result = send(args.ifname, frame, args.rate, args.seconds)
    else:
        result = receive(args.ifname, tag, args.seconds)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
