"""The table entries the controller derives for fabric.p4, checked against the compiled
program's own tables and actions."""
from __future__ import annotations

import pytest

from fabriclab.controller.fabric_rules import LB_ACTIONS, ecn_profile_params, hash_seed, switch_rules
from fabriclab.controller.fabric_state import FabricState
from fabriclab.controller.settings import ControllerSettings, EcnSettings
from fabriclab.errors import UserError
from fabriclab.topologies.leafspine import leafspine
from fabriclab.topologies.network import DEFAULT_PROGRAM


@pytest.fixture(scope="module")
def program_info():
    from fabriclab.compiler import driver

    return driver.compile_file(str(DEFAULT_PROGRAM), [], {}).info


class _Rules:
    def __init__(self, writes, state, switch):
        self.writes = writes
        self.routes = len(state.tables[switch].routes)
        self.groups = state.tables[switch].groups


def _rules(lb="ecmp", ecn=False, spines=2):
    d = leafspine(spines=spines, leaves=3, hosts_per_leaf=2)
    settings = ControllerSettings(lb=lb, ecn=EcnSettings(enabled=ecn))
    state = FabricState(d, settings)
    writes = switch_rules(d, "l1", settings) + state.sync_routes(state.routes(), 0.0)["l1"]
    return d, _Rules(writes, state, "l1")


def test_every_write_names_a_real_table_key_and_action(program_info):
    tables, actions = program_info.tables, program_info.actions
    for lb in LB_ACTIONS:
        _, rules = _rules(lb=lb, ecn=True)
        for w in rules.writes:
            table = tables[w.table]
            assert set(w.match) == {k.name for k in table.keys}, w
            assert w.action in {a.name for a in table.actions}, w
            assert set(w.params) == {p.name for p in actions[w.action].params}, w


def test_routes_groups_and_members():
    d, rules = _rules(lb="flowlet")
    routes = [w for w in rules.writes if w.table.endswith("ipv4_route")]
    assert rules.routes == len(routes) == 2 + 2        # two hosts, two remote leaves
    host = [w for w in routes if w.match["hdr.ipv4.dst_addr"] == "10.0.1.2/32"][0]
    assert host.action.endswith("route_to_port") and host.params == {"port": 2, "dmac": d.host("h1_2").mac}
    # both remote leaves share one group over the two spines
    assert len(rules.groups) == 1
    assert {w.params["group_id"] for w in routes if w.action.endswith("route_to_group")} == {1}
    group = [w for w in rules.writes if w.table.endswith("lb_group")][0]
    # eight buckets per member, interleaved: offset h lands on member h mod 2, as with one each
    assert group.action.endswith("lb_flowlet") and group.params == {"base": 0, "size": 16, "gap_us": 5000}
    members = sorted((w.match["meta.lb_index"], w.params["port"], w.params["dmac"])
                     for w in rules.writes if w.table.endswith(".lb_member"))
    assert members == [(i, (3, 4)[i % 2], d.switch(("s1", "s2")[i % 2]).router_mac) for i in range(16)]
    assert len([w for w in rules.writes if w.table.endswith("lb_member_alt")]) == 16
    identity = rules.writes[0]
    assert identity.default and identity.params["router_mac"] == d.switch("l1").router_mac


def test_dscp_classes_and_ecn_profile():
    d, rules = _rules(ecn=True)
    dscp = {w.match["hdr.ipv4.dscp"]: w.params["priority"] for w in rules.writes if w.table.endswith("dscp_priority")}
    assert dscp == {26: 3, 48: 6}
    ecn = [w for w in rules.writes if w.table.endswith("ecn_profile")]
    assert len(ecn) == len(d.switch_ports("l1")) * 8
    assert ecn[0].params == ecn_profile_params(ControllerSettings(ecn=EcnSettings(enabled=True)))
    _, no_ecn = _rules(ecn=False)
    assert not [w for w in no_ecn.writes if w.table.endswith("ecn_profile")]


def test_ecn_profile_reaches_pmax_at_kmax():
    params = ecn_profile_params(ControllerSettings(ecn=EcnSettings(True, 15_180, 151_800, 0.01)))
    assert (params["kmin"], params["kmax"]) == (15_180, 151_800)      # bytes, as configured
    assert params["slope"] * (params["kmax"] - params["kmin"]) == pytest.approx(0.01 * 2**32, rel=5e-3)
    assert params["slope"] < 2**32 and ecn_profile_params(ControllerSettings(ecn=EcnSettings(True, 0, 1, 1.0)))[
        "slope"] == 2**32 - 1


def test_hash_seeds_differ_between_neighbouring_switches():
    assert len({hash_seed(i) for i in range(1, 200)}) == 199


def test_settings_round_trip_and_validation(tmp_path):
    settings = ControllerSettings(lb="adaptive", dscp_priority={10: 2}, ecn=EcnSettings(True, 1000, 2000, 0.5))
    settings.save(tmp_path / "c.json")
    assert ControllerSettings.load(tmp_path / "c.json") == settings
    with pytest.raises(UserError, match="unknown load-balancing mode"):
        ControllerSettings(lb="random").validate()
    with pytest.raises(UserError, match="DSCP must be"):
        ControllerSettings(dscp_priority={64: 1}).validate()
    (tmp_path / "bad.json").write_text('{"lb": "ecmp", "colour": 1}')
    with pytest.raises(UserError, match="not controller settings"):
        ControllerSettings.load(tmp_path / "bad.json")
