"""fabric.p4 load balancing: each group mode, weights, and the queue-depth register that the
least-loaded mode reads."""
from __future__ import annotations

from collections import Counter

from scapy.all import Ether

from fabriclab.v1model.tables import ActionCall, TableEntry
from test_fabric_p4 import FabricSwitch, udp_frame

MEMBERS = [(2, "00:00:00:00:00:02"), (3, "00:00:00:00:00:03"), (4, "00:00:00:00:00:04"),
           (5, "00:00:00:00:00:05")]
PORTS = [port for port, _ in MEMBERS]


def switch_with_group(mode: str, members=MEMBERS, gap_us: int | None = None, **kwargs) -> FabricSwitch:
    sw = FabricSwitch(**kwargs)
    sw.route_to_group("10.1.0.0", 16, group=9)
    sw.group(9, mode, members, gap_us=gap_us)
    return sw


def egress_port(sw: FabricSwitch, frame: bytes, now_us: int = 1_000_000) -> int:
    out = sw.send(frame, now_us=now_us)
    assert len(out) == 1
    port, data = out[0]
    assert Ether(data).dst == dict(MEMBERS)[port]     # the member's MAC goes with its port
    return port


def within(counts: Counter, total: int, members: int, tolerance: float) -> bool:
    expected = total / members
    return all(abs(counts[p] - expected) <= tolerance * expected for p in PORTS[:members])


def test_ecmp_keeps_a_flow_on_one_path_and_spreads_flows():
    sw = switch_with_group("ecmp")
    one_flow = {egress_port(sw, udp_frame(sport=4242)) for _ in range(50)}
    assert len(one_flow) == 1
    flows = Counter(egress_port(sw, udp_frame(sport=10000 + i)) for i in range(2000))
    assert set(flows) == set(PORTS)
    assert within(flows, 2000, 4, 0.15), flows


def test_ecmp_hash_seed_changes_the_mapping():
    a = switch_with_group("ecmp", hash_seed=1)
    b = switch_with_group("ecmp", hash_seed=2)
    frames = [udp_frame(sport=20000 + i) for i in range(200)]
    moved = sum(egress_port(a, f) != egress_port(b, f) for f in frames)
    assert moved > 100      # about 3/4 of flows move when the seed differs


def test_random_spraying_spreads_one_flow_over_all_members():
    sw = switch_with_group("spray_random")
    frame = udp_frame(sport=7)
    counts = Counter(egress_port(sw, frame) for _ in range(2000))
    assert within(counts, 2000, 4, 0.30), counts


def test_round_robin_cycles_through_members_in_order():
    sw = switch_with_group("spray_round_robin", members=MEMBERS[:3])
    frame = udp_frame(sport=7)
    assert [egress_port(sw, frame) for _ in range(7)] == [2, 3, 4, 2, 3, 4, 2]


def test_round_robin_survives_the_group_shrinking():
    sw = switch_with_group("spray_round_robin", members=MEMBERS[:3])
    frame = udp_frame(sport=7)
    egress_port(sw, frame)
    egress_port(sw, frame)                       # next offset is now 2
    sw.state.tables["FabricIngress.lb_group"].modify(
        TableEntry(match=(9,), action=ActionCall("FabricIngress.lb_spray_round_robin", (0, 2))))
    assert [egress_port(sw, frame) for _ in range(4)] == [2, 3, 2, 3]


def test_flowlet_keeps_its_member_within_a_burst_and_may_move_after_a_gap():
    sw = switch_with_group("flowlet", gap_us=500)
    frame = udp_frame(sport=31337)
    now = 1_000_000
    chosen = []
    for _burst in range(40):
        ports = set()
        for _ in range(10):
            now += 100                          # 100 µs apart: below the 500 µs gap
            ports.add(egress_port(sw, frame, now_us=now))
        assert len(ports) == 1, "a flowlet changed path without a gap"
        chosen.append(ports.pop())
        now += 2000                             # idle longer than the gap: a new flowlet
    assert len(set(chosen)) >= 3                # 40 random picks among 4 members
    assert sum(a != b for a, b in zip(chosen, chosen[1:])) >= 15


def test_flowlets_of_different_flows_are_independent():
    sw = switch_with_group("flowlet", gap_us=500)
    now = 1_000_000
    firsts = {}
    for _ in range(20):
        now += 50
        for sport in range(1, 13):
            port = egress_port(sw, udp_frame(sport=sport), now_us=now)
            assert firsts.setdefault(sport, port) == port
    assert len(set(firsts.values())) >= 2


def set_queue_depth(sw: FabricSwitch, port: int, priority: int, depth: int) -> None:
    sw.state.registers["port_queue_depth"].write(port * 8 + priority, depth)


def test_least_loaded_avoids_the_deeper_queue_of_two():
    sw = switch_with_group("least_loaded", members=MEMBERS[:2])
    sw.dscp(26, 3)
    frame = udp_frame(dscp=26)
    set_queue_depth(sw, 2, 3, 40)
    assert {egress_port(sw, frame) for _ in range(100)} == {3}
    set_queue_depth(sw, 2, 3, 0)
    set_queue_depth(sw, 3, 3, 25)
    assert {egress_port(sw, frame) for _ in range(100)} == {2}


def test_least_loaded_compares_the_packets_own_priority():
    sw = switch_with_group("least_loaded", members=MEMBERS[:2])
    sw.dscp(26, 3)
    set_queue_depth(sw, 2, 0, 50)               # deep lossy queue on port 2 ...
    lossless = Counter(egress_port(sw, udp_frame(dscp=26)) for _ in range(200))
    assert set(lossless) == {2, 3}              # ... does not steer priority-3 traffic
    lossy = {egress_port(sw, udp_frame(dscp=0)) for _ in range(100)}
    assert lossy == {3}


def test_least_loaded_never_picks_the_one_congested_member_of_four():
    sw = switch_with_group("least_loaded")
    set_queue_depth(sw, 4, 0, 30)
    counts = Counter(egress_port(sw, udp_frame()) for _ in range(600))
    assert counts[4] == 0
    assert all(counts[p] > 100 for p in (2, 3, 5)), counts


def test_egress_writes_the_queue_depth_least_loaded_reads():
    sw = switch_with_group("least_loaded", members=MEMBERS[:2])
    sw.dscp(26, 3)
    out = sw.send_queued(udp_frame(dscp=26), enq_qdepth=20, deq_qdepth=17)
    port = out[0][0]
    assert sw.register("port_queue_depth", port * 8 + 3) == 17
    other = 5 - port                            # members are ports 2 and 3
    assert {egress_port(sw, udp_frame(dscp=26)) for _ in range(50)} == {other}


def test_weights_are_bucket_counts():
    weighted = [MEMBERS[0]] * 3 + [MEMBERS[1]]
    sw = switch_with_group("ecmp", members=weighted)
    counts = Counter(egress_port(sw, udp_frame(sport=30000 + i)) for i in range(2000))
    assert set(counts) == {2, 3}
    assert 0.68 <= counts[2] / 2000 <= 0.82, counts


def test_missing_group_or_member_drops():
    sw = FabricSwitch()
    sw.route_to_group("10.1.0.0", 16, group=1)                 # no lb_group entry
    assert sw.send(udp_frame()) == []
    sw.add("FabricIngress.lb_group", (1,), "FabricIngress.lb_ecmp", 100, 2)   # members 100, 101 absent
    assert sw.send(udp_frame()) == []
    sw.add("FabricIngress.lb_group", (2,), "FabricIngress.lb_ecmp", 0, 0)     # empty group
    sw.route_to_group("10.2.0.0", 16, group=2)
    assert sw.send(udp_frame(dst="10.2.0.1")) == []
    assert sw.drops("no_member") == 3
