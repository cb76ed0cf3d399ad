"""Carrier of the switch's ports: the operational state (RFC 2863) of each interface, read once
from sysfs and then followed through the kernel's netlink link notifications (RTMGRP_LINK),
which arrive as soon as an interface or its veth peer goes down or comes back.

A port is up when its interface is administratively up and running (IFF_UP and IFF_RUNNING:
carrier present). The switch loop polls ``fileno()`` with its ports and calls ``read()``.
"""
from __future__ import annotations

import socket
import struct
from pathlib import Path

RTMGRP_LINK = 1
RTM_NEWLINK, RTM_DELLINK = 16, 17
IFF_UP, IFF_RUNNING = 0x1, 0x40
_NLMSG = struct.Struct("=IHHII")        # len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")      # family, pad, type, index, flags, change


def oper_up(ifname: str) -> bool:
    """What sysfs says now ("unknown" is what interfaces without carrier reporting say)."""
    try:
        return Path("/sys/class/net", ifname, "operstate").read_text().strip() in ("up", "unknown")
    except OSError:
        return False


class CarrierMonitor:
    def __init__(self, ports: dict[int, str]):
        """``ports``: port number -> interface name."""
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                                  socket.NETLINK_ROUTE)
        try:
            self.sock.bind((0, RTMGRP_LINK))   # subscribe before the first read: no change slips between
            self._port_of = {socket.if_nametoindex(name): port for port, name in ports.items()}
        except OSError:
            self.sock.close()
            raise
        self.up = {port: oper_up(name) for port, name in ports.items()}

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> list[tuple[int, bool]]:
        """(port, up) for every port whose state changed since the last call."""
        changes = []
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return changes
            except OSError:       # ENOBUFS: we missed notifications; ask sysfs instead
                return changes + self._resync()
            offset = 0
            while offset + _NLMSG.size <= len(data):
                length, kind = _NLMSG.unpack_from(data, offset)[:2]
                if length < _NLMSG.size:
                    break
                if kind in (RTM_NEWLINK, RTM_DELLINK) and offset + _NLMSG.size + _IFINFO.size <= len(data):
                    _, _, index, flags, _ = _IFINFO.unpack_from(data, offset + _NLMSG.size)
                    port = self._port_of.get(index)
                    up = kind == RTM_NEWLINK and bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)
                    if port is not None and self.up[port] != up:
                        self.up[port] = up
                        changes.append((port, up))
                offset += (length + 3) & ~3

    def _resync(self) -> list[tuple[int, bool]]:
        changes = []
        for index, port in self._port_of.items():
            try:
                up = oper_up(socket.if_indextoname(index))
            except OSError:
                up = False
            if self.up[port] != up:
                self.up[port] = up
                changes.append((port, up))
        return changes

    def close(self) -> None:
        self.sock.close()
