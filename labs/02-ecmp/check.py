"""Lab 02 checker: a flow keeps one uplink, many flows spread over both (packets through the
compiled program with s1-runtime.json: the /16 route is an ECMP group of ports 3 and 4)."""
from __future__ import annotations

from collections import Counter

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from fabriclab.labs.checks import Check
from fabriclab.labs.pipeline_bench import bench_for

UPLINKS = (3, 4)
FLOWS = 256


def frame(sport: int, dst: str = "10.0.3.3", proto=UDP, payload: bytes = b"lab02") -> bytes:
    return bytes(Ether(src="08:00:00:00:01:11", dst="08:00:00:00:01:00") / IP(src="10.0.1.1", dst=dst)
                 / proto(sport=sport, dport=4791) / payload)


def checks(run):
    bench = yield from bench_for(run, "ecmp.p4", "s1-runtime.json")
    if bench is None:
        return
    ports = [p for p, _ in bench.send(frame(1000, dst="10.0.2.2"), 1)]
    yield Check("h1 -> h2 stays on the leaf (port 2)", ports == [2], f"left on {ports or 'no port'}")
    split = 0
    for sport in range(20000, 20016):
        seen = {p for size in (10, 500, 1200) for p, _ in bench.send(frame(sport, payload=bytes(size)), 1)}
        split += len(seen) != 1 or not seen <= set(UPLINKS)
    yield Check("every packet of a flow takes the same uplink", split == 0,
                f"{16 - split} of 16 flows on one uplink (3 packets each, different sizes)")
    per_port = Counter()
    for sport in range(10000, 10000 + FLOWS):
        for port, _ in bench.send(frame(sport), 1):
            per_port[port] += 1
    shares = {p: per_port[p] / FLOWS for p in UPLINKS}
    yield Check(f"{FLOWS} flows (UDP source ports differ) spread: each uplink carries at least 35 %",
                all(s >= 0.35 for s in shares.values()) and sum(per_port.values()) == FLOWS,
                ", ".join(f"port {p}: {per_port[p]}" for p in sorted(per_port)) or "nothing forwarded")
    per_port = Counter(p for sport in range(30000, 30000 + FLOWS) for p, _ in bench.send(frame(sport, proto=TCP), 1))
    yield Check("TCP flows spread too (the same 5-tuple hash)",
                all(per_port[p] >= 0.35 * FLOWS for p in UPLINKS),
                ", ".join(f"port {p}: {per_port[p]}" for p in sorted(per_port)) or "nothing forwarded")
