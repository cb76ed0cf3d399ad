"""The machine's ceiling for a Python switch: a two-port AF_PACKET forwarder with no pipeline.

    python -m fabriclab.bench.bare_forwarder IFNAME1 IFNAME2

Every frame received on one interface is sent unchanged out of the other: the same sockets,
buffers and epoll loop shape as ``fabriclab switch`` (switch/switch.py, switch/ports.py), minus
parsing, tables and the traffic manager. ``fabriclab bench dataplane`` compares the two.
Prints "ready" once both sockets are bound; runs until SIGTERM/SIGINT.
"""
from __future__ import annotations

import select
import signal
import socket
import sys

from fabriclab.bench.rawflow import PACKET_IGNORE_OUTGOING, SOL_PACKET, raw_socket

BATCH = 64          # frames read per socket per wake-up
MAX_FRAME = 65535


def open_port(ifname: str) -> socket.socket:
    sock = raw_socket(ifname)
    # without this the forwarder would receive its own transmissions and loop them back
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.setblocking(False)
    return sock


def forward(a: socket.socket, b: socket.socket) -> None:
    peer = {a.fileno(): (a, b), b.fileno(): (b, a)}
    poller = select.epoll()
    for fd in peer:
        poller.register(fd, select.EPOLLIN)
    while True:
        for fd, _ in poller.poll():
            rx, tx = peer[fd]
            for _ in range(BATCH):
                try:
                    frame = rx.recv(MAX_FRAME)
                except BlockingIOError:
                    break
                try:
                    tx.send(frame)
                except OSError:
                    pass    # full buffer: a drop, as a switch port counts it


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m fabriclab.bench.bare_forwarder IFNAME1 IFNAME2", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    a, b = open_port(args[0]), open_port(args[1])
    print("ready", flush=True)
    try:
        forward(a, b)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
