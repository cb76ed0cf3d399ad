"""Lab 11 checker: a probe crossing three switches comes out with one hop record per switch,
newest first, carrying the queue each switch had (the compiled program on s1, s2 and s3 with
their runtime JSON, each egress seeing a chosen queue; no network needed)."""
from __future__ import annotations

import struct

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from fabriclab.labs.checks import Check
from fabriclab.labs.pipeline_bench import PipelineBench, bench_for

PROTO_PROBE = 0xFD
HOP = struct.Struct("!IHHII")          # switch id, ingress port, egress port, enq_qdepth, deq_timedelta (µs)
QUEUES = {1: (5, 40), 2: (0, 0), 3: (12, 90)}   # switch -> (packets queued ahead, µs waited)


def probe() -> bytes:
    return bytes(Ether(src="08:00:00:00:01:11", dst="08:00:00:00:01:00")
                 / IP(src="10.0.1.1", dst="10.0.2.2", proto=PROTO_PROBE) / bytes([0]) / b"probe")


def through(benches: list[PipelineBench], frame: bytes) -> bytes | None:
    """The frame as h2 gets it after s1, s2, s3 (entering each on port 1), or None if lost."""
    for number, bench in enumerate(benches, 1):
        depth, waited = QUEUES[number]
        out = bench.send_queued(frame, 1, depth, waited)
        if len(out) != 1 or out[0][0] != 2:
            return None
        frame = out[0][1]
    return frame


def records(frame: bytes) -> tuple[int, list[tuple]]:
    ip = IP(frame[14:])
    body = bytes(ip.payload)
    count = body[0]
    return count, [HOP.unpack_from(body, 1 + i * HOP.size) for i in range(count) if 1 + (i + 1) * HOP.size <= len(body)]


def checks(run):
    benches = []
    for number in (1, 2, 3):
        bench = yield from bench_for(run, "probe.p4", f"s{number}-runtime.json")
        if bench is None:
            return
        benches.append(bench)
    out = through(benches, probe())
    yield Check("a probe from h1 reaches h2 through s1, s2, s3", out is not None, "arrived" if out else "lost on the way")
    if out is None:
        return
    count, hops = records(out)
    yield Check("it carries three hop records", count == 3 and len(hops) == 3, f"hop count {count}, {len(hops)} records")
    ids = [h[0] for h in hops]
    yield Check("newest first: switch ids 3, 2, 1", ids == [3, 2, 1], f"ids {ids}")
    ports = [(h[1], h[2]) for h in hops]
    yield Check("each record names the ports the probe used (in 1, out 2)", ports == [(1, 2)] * 3, f"ports {ports}")
    queues = [(h[3], h[4]) for h in hops]
    want = [QUEUES[i] for i in ids] if ids == [3, 2, 1] else [QUEUES[3], QUEUES[2], QUEUES[1]]
    yield Check("each record holds that switch's queue: depth and µs waited", queues == want,
                f"(depth, µs) {queues}, expected {want}")
    ip = IP(out[14:])
    sent = IP(probe()[14:])
    checksum = ip.chksum
    del ip.chksum
    valid = IP(bytes(ip)).chksum == checksum
    yield Check("IPv4 total length grew by 16 B per hop and the checksum is valid",
                ip.len == sent.len + 3 * HOP.size and ip.len == len(out) - 14 and valid,
                f"length {sent.len} -> {ip.len} ({len(out) - 14} on the wire), checksum {'valid' if valid else 'wrong'}")
    plain = bytes(Ether(src="08:00:00:00:01:11", dst="08:00:00:00:01:00") / IP(src="10.0.1.1", dst="10.0.2.2")
                  / UDP(sport=1, dport=2) / b"data")
    out = through(benches, plain)
    yield Check("ordinary packets cross unchanged in length", out is not None and len(out) == len(plain),
                f"{len(plain)} B in, {len(out) if out else 0} B out")
