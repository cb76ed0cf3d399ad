"""Lab 01 checker: the leaf routes, rewrites and drops as a router must (packets through the
compiled program with s1-runtime.json's routes; no network needed)."""
from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

from fabriclab.labs.checks import Check
from fabriclab.labs.pipeline_bench import bench_for

LEAF_MAC = "08:00:00:00:01:00"     # the gateway MAC h1 sends to (its static ARP entry)
H1 = "10.0.1.1"


def frame(dst: str, ttl: int = 64) -> bytes:
    return bytes(Ether(src="08:00:00:00:01:11", dst=LEAF_MAC) / IP(src=H1, dst=dst, ttl=ttl)
                 / UDP(sport=4000, dport=5000) / b"lab01")


def checks(run):
    bench = yield from bench_for(run, "l3_forwarding.p4", "s1-runtime.json")
    if bench is None:
        return
    out = bench.send(frame("10.0.2.2"), 1)
    ports = [p for p, _ in out]
    yield Check("a packet for h2 (10.0.2.2) leaves on port 2", ports == [2], f"left on {ports or 'no port'}")
    if ports == [2]:
        pkt = Ether(out[0][1])
        yield Check("its destination MAC is h2's, its source MAC the leaf's",
                    (pkt.dst, pkt.src) == ("08:00:00:00:02:22", LEAF_MAC), f"dst {pkt.dst}, src {pkt.src}")
        sent_ip = IP(bytes(Ether(frame("10.0.2.2")))[14:])
        got = pkt[IP]
        checksum = got.chksum
        del got.chksum
        recomputed = IP(bytes(got)).chksum
        yield Check("TTL down by one and the IPv4 checksum valid",
                    got.ttl == sent_ip.ttl - 1 and checksum == recomputed,
                    f"TTL {sent_ip.ttl} -> {got.ttl}, checksum {checksum:#06x} (valid: {recomputed:#06x})")
    ports = [p for p, _ in bench.send(frame("10.0.7.7"), 1)]
    yield Check("longest prefix: 10.0.7.7 matches only 10.0.0.0/16, the uplink on port 4", ports == [4],
                f"left on {ports or 'no port'}")
    ports = [p for p, _ in bench.send(frame("10.0.3.3"), 1)]
    yield Check("longest prefix: h3's /32 beats the /16 (port 3)", ports == [3], f"left on {ports or 'no port'}")
    ports = [p for p, _ in bench.send(frame("192.168.1.1"), 1)]
    yield Check("no route: 192.168.1.1 is dropped", ports == [], f"left on {ports or 'no port'}")
    ports = [p for p, _ in bench.send(frame("10.0.2.2", ttl=1), 1)]
    yield Check("TTL 1: dropped rather than forwarded with TTL 0", ports == [], f"left on {ports or 'no port'}")
    arp = bytes(Ether(src="08:00:00:00:01:11", dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=H1, pdst="10.0.1.10"))
    ports = [p for p, _ in bench.send(arp, 1)]
    yield Check("not IPv4 (ARP): dropped", ports == [], f"left on {ports or 'no port'}")
