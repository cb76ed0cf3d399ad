"""Lab 03 checker: ECN marks follow RED on the depth of the queue each packet joined (packets
through the compiled program's ingress and egress with chosen queue depths; s1-runtime.json sets
kmin 5, kmax 20 packets and Pmax 0.5 on every port)."""
from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from fabriclab.labs.checks import Check
from fabriclab.labs.pipeline_bench import bench_for

KMIN, KMAX, PMAX = 5, 20, 0.5
NOT_ECT, ECT1, ECT0, CE = 0, 1, 2, 3


def frame(ecn: int) -> bytes:
    return bytes(Ether(src="08:00:00:00:01:11", dst="08:00:00:00:01:00") / IP(src="10.0.1.1", dst="10.0.3.3", tos=ecn)
                 / UDP(sport=4000, dport=4791) / bytes(64))


def marks(bench, ecn: int, depth: int, packets: int) -> tuple[int, int]:
    """(packets marked CE, packets forwarded) of ``packets`` that joined a queue of ``depth``."""
    marked = forwarded = 0
    for _ in range(packets):
        for _, out in bench.send_queued(frame(ecn), 1, depth):
            forwarded += 1
            marked += Ether(out)[IP].tos & 3 == CE
    return marked, forwarded


def checks(run):
    bench = yield from bench_for(run, "ecn.p4", "s1-runtime.json")
    if bench is None:
        return
    m, n = marks(bench, ECT0, KMIN, 200)
    yield Check(f"queue of kmin ({KMIN}) packets: no ECT(0) packet marked", n == 200 and m == 0, f"{m} of {n} marked")
    m, n = marks(bench, ECT0, KMAX + 1, 200)
    yield Check(f"queue above kmax ({KMAX + 1} packets): every ECT(0) packet marked CE", n == 200 and m == n,
                f"{m} of {n} marked")
    depth = 13
    expected = PMAX * (depth - KMIN) / (KMAX - KMIN)
    m, n = marks(bench, ECT0, depth, 600)
    share = m / n if n else 0.0
    yield Check(f"queue of {depth}: marked with probability Pmax·(q−kmin)/(kmax−kmin) = {expected:.3f} ± 0.09",
                n == 600 and abs(share - expected) <= 0.09, f"{m} of {n} marked: {share:.3f}")
    m, n = marks(bench, ECT1, 100, 50)
    yield Check("ECT(1) packets are marked too (queue of 100)", n == 50 and m == n, f"{m} of {n} marked")
    m, n = marks(bench, NOT_ECT, 100, 50)
    yield Check("not-ECT packets are never marked (queue of 100)", n == 50 and m == 0, f"{m} of {n} marked")
    out = bench.send_queued(frame(ECT0), 1, 100)
    ok = False
    if out:
        ip = Ether(out[0][1])[IP]
        checksum = ip.chksum
        del ip.chksum
        ok = IP(bytes(ip)).chksum == checksum
    yield Check("a marked packet leaves with a valid IPv4 checksum", ok, "valid" if ok else f"{len(out)} packets, checksum wrong")
