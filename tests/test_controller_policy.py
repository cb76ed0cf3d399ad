"""Policies driven with synthetic loads, and the controller's model of the tables: repair on a
reduced graph, hitless re-weighting into the spare half, pins, the paths traffic takes."""
from __future__ import annotations

import math

import pytest

from fabriclab.controller.elephant import Elephant
from fabriclab.controller.fabric_state import BUCKETS_PER_MEMBER, FabricState
from fabriclab.controller.policy import (POLICIES, Decision, FabricView, FlowKey, GroupView, HeavyFlow, LinkLoad, Pin,
                                         Policy, Wcmp, apportion, make_policy, register, wcmp_weights)
from fabriclab.controller.settings import ControllerSettings
from fabriclab.errors import UserError
from fabriclab.topologies.leafspine import leafspine

RATE = 10_000_000


def fabric(spines=2, leaves=2, hosts=2):
    d = leafspine(spines=spines, leaves=leaves, hosts_per_leaf=hosts, host_rate=RATE, fabric_rate=RATE)
    state = FabricState(d, ControllerSettings())
    state.sync_routes(state.routes(), 0.0)
    return d, state


def loads_for(d, utils: dict[tuple[str, int], float]) -> dict[tuple[str, int], LinkLoad]:
    out = {}
    for sw in d.switches:
        for port, (peer, _) in d.switch_ports(sw.name).items():
            u = utils.get((sw.name, port), 0.0)
            out[(sw.name, port)] = LinkLoad(sw.name, port, peer, RATE, u, u * RATE, 0, False, True)
    return out


def view(d, state, utils, now=10.0, heavy=(), pins=None) -> FabricView:
    groups = [GroupView(sw, g.gid, g.members, g.weights, g.capacity, g.changed_at)
              for sw, t in state.tables.items() for g in t.groups.values()]
    return FabricView(now=now, loads=loads_for(d, utils), groups=groups, heavy=list(heavy), pins=pins or {},
                      paths=state.switch_paths, host_rate_bps=lambda ip: RATE)


# -- wcmp ----------------------------------------------------------------------------------

def test_apportion_keeps_every_member_and_the_total():
    assert apportion([0.5, 0.5], 16) == (8, 8)
    assert apportion([0.99, 0.01], 16) == (15, 1)
    assert apportion([0.2, 0.0, 0.8], 10) == (2, 0, 8)
    assert sum(apportion([1 / 3] * 3, 16)) == 16


def test_wcmp_weights_favour_the_less_loaded_member_damped():
    w = wcmp_weights((1, 1), [1.0, 0.0], 16)
    assert w[1] > w[0] > 0 and sum(w) == 16
    # blended half-way with the current split: a single poll never empties a member
    assert w == (6, 10)
    # a member whose link is down gets nothing
    assert wcmp_weights((1, 1, 1), [0.2, None, 0.2], 24)[1] == 0
    # balanced loads leave the split where it is
    assert wcmp_weights((6, 10), [0.5, 0.5], 16) == (6, 10)


def test_wcmp_reweighs_an_imbalanced_group_then_waits_and_ignores_noise():
    d, state = fabric()
    policy = Wcmp(hysteresis=0.15, min_interval_s=1.0)
    hot = {("l1", 3): 0.95, ("l1", 4): 0.05}     # l1's uplink to s1 full, to s2 idle
    decision = policy.decide(view(d, state, hot))
    assert set(decision.weights) == {("l1", 1)}
    weights = decision.weights[("l1", 1)]
    assert weights[1] > weights[0] and sum(weights) == 2 * BUCKETS_PER_MEMBER

    state.weight_writes(state.tables["l1"].group(1), weights, now=10.0)
    assert not policy.decide(view(d, state, hot, now=10.5)), "minimum interval between changes"
    assert policy.decide(view(d, state, hot, now=11.5)).weights
    noisy = {("l1", 3): 0.55, ("l1", 4): 0.45}       # within the hysteresis band
    assert not policy.decide(view(d, state, noisy, now=20.0))


def test_static_changes_nothing_and_unknown_policies_are_refused():
    d, state = fabric()
    assert not Policy().decide(view(d, state, {("l1", 3): 1.0}))
    assert {"static", "wcmp", "elephant"} <= set(POLICIES)
    with pytest.raises(UserError, match="unknown policy 'nope'"):
        make_policy("nope")
    with pytest.raises(UserError, match="bad parameters"):
        make_policy("wcmp", {"colour": 1})


def test_a_policy_is_one_class_with_one_method():
    @register
    class PinNothing(Policy):
        name = "test-quiet"

        def decide(self, view):
            return Decision(release=set(view.pins))

    try:
        assert isinstance(make_policy("test-quiet"), PinNothing)
    finally:
        del POLICIES["test-quiet"]


# -- elephant -------------------------------------------------------------------------------

def flow(d, src, dst, sport):
    return FlowKey(d.host(src).ip, d.host(dst).ip, 17, sport, 4791)


def test_elephants_are_placed_first_fit_on_paths_with_room():
    d, state = fabric(hosts=3)
    e1, e2 = flow(d, "h1_1", "h2_1", 0xC001), flow(d, "h1_2", "h2_2", 0xC002)
    heavy = [HeavyFlow(e1, "l1", "l2", RATE), HeavyFlow(e2, "l1", "l2", RATE)]
    decision = Elephant().decide(view(d, state, {}, heavy=heavy))
    paths = {k: path for k, (path, _) in decision.pin.items()}
    assert set(paths) == {e1, e2}
    # each elephant can fill its NIC: the second does not fit beside the first
    assert paths[e1][0] != paths[e2][0] and {hop[0][0] for hop in paths.values()} == {"l1"}
    assert all(demand == RATE for _, demand in decision.pin.values())

    # a third elephant from a sender that already has one: demands share the NIC, it fits nowhere
    # without the other two's room... but here both spines are full, so it stays on ECMP
    e3 = flow(d, "h1_3", "h2_3", 0xC003)
    pins = {k: Pin(k, p, RATE, 0.0, 0.0) for k, p in paths.items()}
    third = Elephant().decide(view(d, state, {}, heavy=[HeavyFlow(e3, "l1", "l2", RATE)], pins=pins))
    assert not third.pin and not third.release


def test_demand_is_the_senders_nic_shared_and_idle_pins_are_released():
    d, state = fabric()
    a, b = flow(d, "h1_1", "h2_1", 1), flow(d, "h1_1", "h2_2", 2)
    decision = Elephant().decide(view(d, state, {}, heavy=[HeavyFlow(a, "l1", "l2", RATE),
                                                           HeavyFlow(b, "l1", "l2", RATE)]))
    assert sorted(demand for _, demand in decision.pin.values()) == [RATE / 2, RATE / 2]
    # two half-rate flows fit on one path: first fit puts both on the first
    assert len({path for path, _ in decision.pin.values()}) == 1

    pins = {a: Pin(a, decision.pin[a][0], RATE / 2, 0.0, idle_s=5.0),
            b: Pin(b, decision.pin[b][0], RATE / 2, 0.0, idle_s=0.1)}
    assert Elephant(idle_s=1.0).decide(view(d, state, {}, pins=pins)).release == {a}


# -- the controller's table model ------------------------------------------------------------

def test_repair_moves_routes_off_a_dead_link_and_restores_the_old_group():
    d, state = fabric(leaves=3)
    assert {p["share"] for p in state.paths("h1_1", "h2_1")} == {0.5}
    state.down.add(("s1", 1))          # s1's port to l1 lost carrier: the whole link is down
    assert not state.link_up("l1", 3)
    writes = state.sync_routes(state.routes(), 1.0)
    # l1 and the other leaves stop using s1 towards/from l1; s1 reaches l1 through another leaf
    assert set(writes) == {"l1", "l2", "l3", "s1"}
    assert all(w.op == "MODIFY" for w in writes["l1"])
    assert [p["hops"] for p in state.paths("h1_1", "h2_1")] == [["h1_1", "l1", "s2", "l2", "h2_1"]]
    assert state.switch_paths("l1", "l2") == [(("l1", 4), ("s2", 2))]

    state.down.discard(("s1", 1))
    restored = state.sync_routes(state.routes(), 2.0)
    assert set(restored) == {"l1", "l2", "l3", "s1"}
    # the old group still exists: only routes are rewritten, no member entries
    assert all(w.table.endswith("ipv4_route") for w in restored["l1"])
    assert {p["share"] for p in state.paths("h1_1", "h2_1")} == {0.5}
    assert state.sync_routes(state.routes(), 3.0) == {}


def test_a_partitioned_destination_gets_route_miss():
    d, state = fabric(spines=1)
    state.down.add(("l2", 3))
    writes = state.sync_routes(state.routes(), 1.0)
    assert [w.action for w in writes["l1"]] == ["FabricIngress.route_miss"]
    assert state.paths("h1_1", "h2_1") == []


def test_reweighting_writes_the_spare_half_then_flips_the_group():
    d, state = fabric()
    group = state.tables["l1"].group(1)
    assert (group.base, group.size, group.half, group.weights) == (0, 16, 0, (8, 8))
    before = list(group.buckets)
    writes = state.weight_writes(group, (4, 12), now=5.0)
    members = [w for w in writes if w.table.endswith(".lb_member")]
    assert [w.match["meta.lb_index"] for w in members] == list(range(group.capacity, group.capacity + 16))
    assert all(w.op == "INSERT" for w in members)
    assert sum(1 for w in members if w.params["port"] == 4) == 12
    # resilient: only the four buckets the new weights need change owner
    assert sum(a != b for a, b in zip(before, group.buckets)) == 4
    flip = writes[-1]
    assert flip.table.endswith("lb_group") and flip.op == "MODIFY"
    assert flip.params == {"base": group.capacity, "size": 16} and group.changed_at == 5.0
    # back to the first half, whose entries exist
    again = state.weight_writes(group, (8, 8), now=6.0)
    ops = [w.op for w in again if w.table.endswith(".lb_member")]
    assert set(ops) == {"MODIFY"} and len(ops) == 16 and again[-1].params["base"] == 0
    shares = dict((p["hops"][2], p["share"]) for p in state.paths("h1_1", "h2_1"))
    assert shares == {"s1": 0.5, "s2": 0.5}
    with pytest.raises(ValueError, match="do not fit"):
        state.weight_writes(group, (20, 20), now=7.0)


def test_pins_are_written_on_every_hop_and_removed():
    d, state = fabric()
    key = flow(d, "h1_1", "h2_1", 7)
    writes = state.pin_writes(key, (("l1", 4), ("s2", 2)))
    assert set(writes) == {"l1", "s2"}
    entry = writes["l1"][0]
    assert entry.table.endswith("flow_override") and entry.params == {"port": 4, "dmac": d.switch("s2").router_mac}
    assert entry.match["hdr.ipv4.src_addr"] == d.host("h1_1").ip and entry.op == "INSERT"
    removed = state.unpin_writes(key)
    assert {w.op for ws in removed.values() for w in ws} == {"DELETE"} and set(removed) == {"l1", "s2"}
    assert state.unpin_writes(key) == {}
    assert not math.isnan(group_capacity(state))


def group_capacity(state) -> float:
    return float(state.tables["l1"].group(1).capacity)
