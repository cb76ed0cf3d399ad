"""Network namespaces for hosts outside Mininet: a veth pair between two namespaces (tests and
the host packet-rate benchmark), and entering a namespace from Python.

Names carry the ``fl`` prefix so a leftover is recognisably ours. Addresses come from TEST-NET-1
(192.0.2.0/24, RFC 5737): they live only inside the namespaces this module creates.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from dataclasses import dataclass
from typing import Iterator

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@contextlib.contextmanager
def in_netns(path: str) -> Iterator[None]:
    """Run the body with this thread in the network namespace at ``path`` (e.g.
    /run/netns/NAME or /proc/PID/ns/net). Sockets created inside stay in that namespace."""
    with open("/proc/thread-self/ns/net") as home, open(path) as target:
        if _libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({path})")
        try:
            yield
        finally:
            if _libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns(back home)")


@dataclass
class VethHost:
    netns: str
    ifname: str
    ip: str
    mac: str

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"

    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns]


class VethPair:
    """Two namespaces ``fl<tag>a``/``fl<tag>b`` joined by a veth pair named like Mininet's host
    interfaces (``fl<tag>a-eth0``); a context manager that removes both on exit. ``rate`` (bit/s)
    adds a tbf shaper on both ends, like a Mininet link."""

    def __init__(self, tag: str, rate: float | None = None, mtu: int = 1500):
        if len(tag) > 7:
            raise ValueError("tag too long for interface names (15 characters)")
        self.tag, self.rate, self.mtu = tag, rate, mtu
        self.hosts = [VethHost(f"fl{tag}a", f"fl{tag}a-eth0", "192.0.2.1", "02:00:c0:00:02:01"),
                      VethHost(f"fl{tag}b", f"fl{tag}b-eth0", "192.0.2.2", "02:00:c0:00:02:02")]

    def __enter__(self) -> "VethPair":
        a, b = self.hosts
        try:
            for h in self.hosts:
                _run("ip", "netns", "add", h.netns)
            _run("ip", "link", "add", a.ifname, "type", "veth", "peer", "name", b.ifname)
            for h in self.hosts:
                _run("ip", "link", "set", h.ifname, "netns", h.netns)
                ns = h.exec_prefix()
                _run(*ns, "ip", "link", "set", h.ifname, "address", h.mac, "mtu", str(self.mtu), "up")
                _run(*ns, "ip", "addr", "add", f"{h.ip}/24", "dev", h.ifname)
                _run(*ns, "ip", "link", "set", "lo", "up")
                if self.rate:
                    burst = max(3000, int(self.rate / 8 / 250))
                    _run(*ns, "tc", "qdisc", "add", "dev", h.ifname, "root", "tbf", "rate", f"{int(self.rate)}bit",
                         "burst", str(burst), "latency", "50ms")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for h in self.hosts:
            # deleting a namespace destroys its veth end, and with it the peer
            subprocess.run(["ip", "netns", "del", h.netns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.hosts[0].ifname], capture_output=True)


def netns_path_of_pid(pid: int) -> str:
    path = f"/proc/{pid}/ns/net"
    if not os.path.exists(path):
        raise FileNotFoundError(f"no process {pid} (is the fabric still up?)")
    return path
