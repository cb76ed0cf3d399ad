"""Reachability and throughput checks of a running fabric (``fabriclab up --check``, tests)."""
from __future__ import annotations

import json
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


def ping_all(net, hosts: list[str], timeout_s: int = 2) -> tuple[int, list[tuple[str, str]]]:
    """Ping every ordered pair; each host pings all others at once. Pairs that fail are tried
    once more (a first packet may meet a switch still settling). Returns (pairs, failed)."""
    ips = {name: net.get(name).IP() for name in hosts}

    def round_of(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        failed = []
        by_src: dict[str, list[str]] = {}
        for src, dst in pairs:
            by_src.setdefault(src, []).append(dst)
        for src, dsts in by_src.items():
            script = " ".join(f"(ping -c1 -W{timeout_s} {ips[d]} >/dev/null 2>&1 && echo OK {d} || echo FAIL {d}) &"
                              for d in dsts) + " wait"
            out = net.get(src).cmd(script)
            ok = {line.split()[1] for line in out.splitlines() if line.startswith("OK ")}
            failed += [(src, d) for d in dsts if d not in ok]
        return failed

    pairs = [(a, b) for a in hosts for b in hosts if a != b]
    failed = round_of(pairs)
    if failed:
        failed = round_of(failed)
    return len(pairs), failed


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
