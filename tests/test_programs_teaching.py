"""Teaching programs in tests/programs/: the behaviour their STF files cannot reach (queue depth,
time, many flows). Forwarding byte for byte is in tests/stf/<name>.stf."""
from __future__ import annotations

import functools
import struct
from collections import Counter
from pathlib import Path

from scapy.all import IP, TCP, Ether, Raw, raw

from fabriclab.v1model.pipeline import QueueMeta
from fabriclab.v1model.tables import ActionCall, TableEntry
from fabriclab.v1model.loader import instantiate

PROGRAMS = Path(__file__).resolve().parent / "programs"


@functools.lru_cache(maxsize=None)
def compiled(name: str):
    from fabriclab.compiler.driver import compile_file
    return compile_file(str(PROGRAMS / f"{name}.p4"))


def add(pipeline, table: str, match: tuple, action: str, *args: int) -> None:
    pipeline.state.tables[table].insert(TableEntry(match=match, action=ActionCall(action, args)))


def ipv4(dst: str = "10.0.1.1", ecn: int = 0, sport: int = 1000) -> bytes:
    return raw(Ether(dst="00:00:00:00:01:00", src="00:00:00:00:00:aa")
               / IP(src="10.0.0.1", dst=dst, tos=ecn) / TCP(sport=sport, dport=80) / Raw(b"x"))


def test_ecn_marks_at_the_default_threshold_of_ten_packets():
    pipeline = instantiate(compiled("ecn"))
    add(pipeline, "MyIngress.ipv4_lpm", ((0x0A000100, 24),), "MyIngress.ipv4_forward", 0x0101, 1)

    def ecn_out(depth: int, ecn: int) -> int:
        (job,) = pipeline.ingress(ipv4(ecn=ecn), 2, 0)
        (frame,) = pipeline.egress(job, QueueMeta(0, 0, depth, 0, depth)).frames
        return Ether(frame[1])[IP].tos & 3

    assert ecn_out(9, 0b10) == 0b10
    assert ecn_out(10, 0b10) == 0b11
    assert ecn_out(500, 0b01) == 0b11
    assert ecn_out(500, 0b00) == 0b00


def test_load_balance_keeps_flows_whole_and_uses_both_next_hops():
    pipeline = instantiate(compiled("load_balance"))
    add(pipeline, "MyIngress.ecmp_group", ((0x0A000000, 24),), "MyIngress.set_ecmp_select", 0, 2)
    add(pipeline, "MyIngress.ecmp_nhop", (0,), "MyIngress.set_nhop", 0x0A0A, 2)
    add(pipeline, "MyIngress.ecmp_nhop", (1,), "MyIngress.set_nhop", 0x0B0B, 3)
    add(pipeline, "MyEgress.send_frame", (2,), "MyEgress.rewrite_mac", 0x0200)
    add(pipeline, "MyEgress.send_frame", (3,), "MyEgress.rewrite_mac", 0x0300)
    per_flow = {}
    for sport in range(40000, 40400):
        ports = {pipeline.process(ipv4("10.0.0.7", sport=sport), 1)[0][0] for _ in range(3)}
        assert len(ports) == 1
        per_flow[sport] = ports.pop()
    counts = Counter(per_flow.values())
    assert set(counts) == {2, 3} and min(counts.values()) > 150, counts


def test_link_monitor_reports_the_interval_between_probes():
    pipeline = instantiate(compiled("link_monitor"))
    probe = bytes.fromhex("ffffffffffff0000000000aa0812") + bytes([0, 1, 2])
    first = pipeline.process(probe, 1, now_us=1_000)[0][1]
    second = pipeline.process(probe, 1, now_us=5_000)[0][1]

    def times(frame: bytes) -> tuple[int, int]:
        record = frame[16:34]
        last = int.from_bytes(record[6:12], "big")
        cur = int.from_bytes(record[12:18], "big")
        return last, cur

    assert times(first) == (0, 1_000)
    assert times(second) == (1_000, 5_000)
    assert struct.unpack("!I", second[18:22])[0] == len(probe)   # byte_cnt: only the probe itself
