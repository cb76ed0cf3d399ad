"""Reachability and throughput checks of a running fabric (``fabriclab up --check``, tests)."""
from __future__ import annotations

import json
import select
import socket
import struct
import time
from dataclasses import dataclass, field

from rich.table import Table

IPERF_PORT = 5201


@dataclass
class IperfResult:
    src: str
    dst: str
    bits_per_second: float
    error: str | None = None


@dataclass
class CheckResult:
    pairs: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    iperf: IperfResult | None = None
    seconds: float = 0.0

    @property
    def all_reachable(self) -> bool:
        return self.pairs > 0 and not self.failed

    @property
    def ok(self) -> bool:
        return self.all_reachable and (self.iperf is None or self.iperf.error is None)


def ping_all(net, hosts: list[str], timeout_s: float = 2.0) -> tuple[int, list[tuple[str, str]]]:
    """Ping every ordered pair: ICMP echo from each host's own namespace (a raw socket opened
    there), every request sent at once in chunks of PING_CHUNK, replies collected until all are
    in or ``timeout_s`` after the last request. Pairs that fail are tried once more (a first
    packet may meet a switch still settling). Returns (pairs, failed).

    One process and no fork per pair: a k=8 fat-tree has 16256 ordered pairs."""
    from fabriclab.traffic.netns import in_netns

    ips = {name: net.get(name).IP() for name in hosts}
    socks: dict[str, socket.socket] = {}
    try:
        for name in hosts:
            with in_netns(f"/proc/{net.get(name).pid}/ns/net"):
                sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            socks[name] = sock
        pairs = [(a, b) for a in hosts for b in hosts if a != b]
        failed = _ping_round(socks, ips, hosts, pairs, timeout_s, attempt=0)
        if failed:
            failed = _ping_round(socks, ips, hosts, failed, timeout_s, attempt=1)
        return len(pairs), failed
    finally:
        for sock in socks.values():
            sock.close()


PING_CHUNK = 256        # echo requests sent before the replies so far are read: bursts stay short


def _ping_round(socks: dict, ips: dict, hosts: list[str], pairs: list[tuple[str, str]], timeout_s: float,
                attempt: int) -> list[tuple[str, str]]:
    """Send one echo request per pair (ICMP id: the source's index; sequence: the destination's
    index and the attempt), collect replies; the pairs without one."""
    index = {name: i for i, name in enumerate(hosts)}
    waiting = set(pairs)
    by_sock = {sock.fileno(): name for name, sock in socks.items()}

    def collect(wait: float) -> None:
        ready, _, _ = select.select(list(socks.values()), [], [], wait)
        for sock in ready:
            src = by_sock[sock.fileno()]
            while True:
                try:
                    packet = sock.recv(2048)
                except BlockingIOError:
                    break
                icmp = packet[(packet[0] & 0x0F) * 4:]
                if len(icmp) < 8 or icmp[0] != 0:            # echo replies only
                    continue
                ident, seq = struct.unpack_from("!HH", icmp, 4)
                if ident == index[src] and seq >> 15 == attempt and (seq & 0x7FFF) < len(hosts):
                    waiting.discard((src, hosts[seq & 0x7FFF]))

    for start in range(0, len(pairs), PING_CHUNK):
        for src, dst in pairs[start:start + PING_CHUNK]:
            header = struct.pack("!BBHHH", 8, 0, 0, index[src], attempt << 15 | index[dst])
            payload = b"fabriclab-ping"
            checksum = _inet_checksum(header + payload)
            try:
                socks[src].sendto(header[:2] + struct.pack("!H", checksum) + header[4:] + payload, (ips[dst], 0))
            except OSError:
                pass                                          # counted as unreachable
        collect(0.005)
    deadline = time.monotonic() + timeout_s
    while waiting and time.monotonic() < deadline:
        collect(min(0.05, max(0.0, deadline - time.monotonic())))
    return [pair for pair in pairs if pair in waiting]


def _inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def far_pair(description) -> tuple[str, str] | None:
    """The first host of the first and of the last switch with hosts: a path across the fabric."""
    edges = [sw.name for sw in description.switches if sw.subnet_index is not None]
    if len(edges) < 2:
        return None
    return description.hosts_of(edges[0])[0].name, description.hosts_of(edges[-1])[0].name


def iperf(net, src: str, dst: str, seconds: float) -> IperfResult:
    """One TCP iperf3 run from ``src`` to ``dst``; the server exits after it (``-1``)."""
    server = net.get(dst).popen(["iperf3", "-s", "-1", "-p", str(IPERF_PORT)])
    try:
        for _ in range(50):
            out = net.get(src).cmd(f"iperf3 -c {net.get(dst).IP()} -p {IPERF_PORT} -t {seconds:g} -J 2>&1")
            try:
                report = json.loads(out[out.index("{"):])
            except ValueError:
                return IperfResult(src, dst, 0.0, out.strip().splitlines()[-1] if out.strip() else "no output")
            if "error" in report and "connect" in report["error"]:
                time.sleep(0.1)   # server not listening yet
                continue
            if "error" in report:
                return IperfResult(src, dst, 0.0, report["error"])
            return IperfResult(src, dst, float(report["end"]["sum_received"]["bits_per_second"]))
        return IperfResult(src, dst, 0.0, "iperf3 server never listened")
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()


def check_fabric(network, iperf_seconds: float = 2.0) -> CheckResult:
    started = time.monotonic()
    result = CheckResult()
    hosts = [h.name for h in network.description.hosts]
    result.pairs, result.failed = ping_all(network.net, hosts)
    pair = far_pair(network.description)
    if pair is not None:
        result.iperf = iperf(network.net, *pair, iperf_seconds)
    result.seconds = time.monotonic() - started
    return result


def check_table(result: CheckResult) -> Table:
    table = Table(title="fabric check")
    table.add_column("check")
    table.add_column("result")
    table.add_column("ok")
    reached = result.pairs - len(result.failed)
    table.add_row("ping all pairs", f"{reached}/{result.pairs} reachable", "yes" if result.all_reachable else "NO")
    for src, dst in result.failed[:5]:
        table.add_row("", f"{src} -> {dst} unreachable", "")
    if result.iperf is not None:
        i = result.iperf
        table.add_row(f"iperf3 {i.src} -> {i.dst}", i.error or f"{i.bits_per_second / 1e6:.1f} Mbit/s",
                      "yes" if i.bits_per_second > 0 else "NO")
    table.add_row("time", f"{result.seconds:.1f} s", "")
    return table
