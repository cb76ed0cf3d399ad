"""fabric.p4 egress: RED-style ECN marking measured against the Kmin/Kmax/Pmax formula, and the
queue telemetry registers."""
from __future__ import annotations

import math

from scapy.all import IP, Ether

from test_fabric_p4 import FabricSwitch, checksum_ok, udp_frame

KMIN, KMAX, PMAX = 10, 50, 0.2
ECT0, ECT1, NOT_ECT, CE = 0b10, 0b01, 0b00, 0b11
DATA_DSCP, DATA_PRIORITY = 26, 3


def marking_switch() -> FabricSwitch:
    sw = FabricSwitch()
    sw.route_to_port("10.1.0.0", 16, 2, "00:00:00:00:00:02")
    sw.dscp(DATA_DSCP, DATA_PRIORITY)
    sw.ecn_profile(2, DATA_PRIORITY, KMIN, KMAX, PMAX)
    return sw


def ecn_after(sw: FabricSwitch, depth: int, ecn: int = ECT0, dscp: int = DATA_DSCP) -> int:
    out = sw.send_queued(udp_frame(dscp=dscp, ecn=ecn), enq_qdepth=depth, deq_qdepth=depth)
    assert len(out) == 1
    return Ether(out[0][1])[IP].tos & 0b11


def expected_probability(depth: int) -> float:
    if depth <= KMIN:
        return 0.0
    if depth > KMAX:
        return 1.0
    return PMAX * (depth - KMIN) / (KMAX - KMIN)


def test_marking_probability_follows_kmin_kmax_pmax():
    sw = marking_switch()
    n = 1500
    for depth in (0, KMIN, 20, 30, KMAX, KMAX + 1, 400):
        marks = sum(ecn_after(sw, depth) == CE for _ in range(n))
        p = expected_probability(depth)
        slack = 5 * math.sqrt(n * p * (1 - p))        # five binomial standard deviations
        assert abs(marks - n * p) <= slack, (depth, marks, n * p)


def test_ect1_is_marked_too_and_ce_stays_ce():
    sw = marking_switch()
    assert ecn_after(sw, KMAX + 5, ecn=ECT1) == CE
    assert ecn_after(sw, KMAX + 5, ecn=CE) == CE
    assert ecn_after(sw, 0, ecn=CE) == CE
    assert ecn_after(sw, 0, ecn=ECT1) == ECT1


def test_not_ect_is_never_marked():
    sw = marking_switch()
    assert {ecn_after(sw, depth, ecn=NOT_ECT) for depth in (30, KMAX + 1, 10_000) for _ in range(100)} == {NOT_ECT}


def test_only_configured_priorities_are_marked():
    sw = marking_switch()
    assert {ecn_after(sw, 1000, dscp=0) for _ in range(50)} == {ECT0}     # priority 0: no profile
    assert ecn_after(sw, 1000) == CE


def test_marks_are_counted_per_port_and_checksum_stays_valid():
    sw = marking_switch()
    marked = 0
    for depth in (60, 70, 5, 80, 0, 90):
        out = sw.send_queued(udp_frame(dscp=DATA_DSCP, ecn=ECT0), enq_qdepth=depth)
        assert checksum_ok(out[0][1])
        marked += Ether(out[0][1])[IP].tos & 0b11 == CE
    assert marked == 4
    assert sw.state.counters["FabricEgress.ecn_marks"].read(2)[0] == 4


def test_queue_depth_max_and_ewma_registers():
    sw = marking_switch()
    slot = 2 * 8 + DATA_PRIORITY
    frame = udp_frame(dscp=DATA_DSCP)
    for depth in (5, 30, 12):
        sw.send_queued(frame, enq_qdepth=depth)
    assert sw.register("FabricEgress.queue_depth_max", slot) == 30
    sw.state.registers["FabricEgress.queue_depth_max"].write(slot, 0)    # the controller resets it
    sw.send_queued(frame, enq_qdepth=12)
    assert sw.register("FabricEgress.queue_depth_max", slot) == 12

    ewma = "FabricEgress.queue_depth_ewma"
    sw.state.registers[ewma].write(slot, 0)
    for _ in range(200):
        sw.send_queued(frame, enq_qdepth=16)
    steady = sw.register(ewma, slot)
    assert abs(steady / 8 - 16) <= 1                   # stored as average * 8
    sw.send_queued(frame, enq_qdepth=80)
    assert sw.register(ewma, slot) == steady - steady // 8 + 80
    assert sw.register(ewma, 3 * 8 + DATA_PRIORITY) == 0                 # other ports untouched
