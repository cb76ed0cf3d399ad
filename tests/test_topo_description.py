"""Topologies, the addressing plan, the description's JSON form and validation."""
from __future__ import annotations

import ipaddress
import json

import pytest

from fabriclab.errors import UserError
from fabriclab.topologies import addressing
from fabriclab.topologies.catalog import describe
from fabriclab.topologies.description import FabricDescription
from fabriclab.topologies.dumbbell import dumbbell
from fabriclab.topologies.fattree import fattree
from fabriclab.topologies.leafspine import LeafSpineTopo, leafspine
from fabriclab.topologies.ring import ring


def test_leafspine_counts_ports_and_oversubscription():
    d = leafspine(spines=2, leaves=4, hosts_per_leaf=3, host_rate=100_000_000, fabric_rate=50_000_000)
    assert [s.role for s in d.switches].count("leaf") == 4
    assert [s.role for s in d.switches].count("spine") == 2
    assert len(d.hosts) == 12
    assert len(d.switch_links()) == 8
    # hosts take the leaf's first ports, uplinks follow
    assert d.switch_ports("l1") == {1: ("h1_1", 0), 2: ("h1_2", 0), 3: ("h1_3", 0), 4: ("s1", 1), 5: ("s2", 1)}
    assert d.params["oversubscription"] == pytest.approx(3 * 100 / (2 * 50))
    assert d.link_rate("l1", 4) == 50_000_000 and d.link_rate("l1", 1) == 100_000_000


def test_addressing_plan_is_deterministic_and_consistent():
    d = leafspine(spines=1, leaves=3, hosts_per_leaf=2, grpc_port_base=20000)
    for sw in d.switches:
        assert sw.grpc_port == 20000 + sw.device_id
        assert sw.router_mac == addressing.router_mac(sw.device_id)
    for host in d.hosts:
        leaf = d.switch(host.switch)
        assert ipaddress.IPv4Address(host.ip) in ipaddress.IPv4Network(leaf.subnet)
        assert host.gateway_ip == leaf.gateway_ip and host.gateway_mac == leaf.router_mac
        assert host.mac == "02:00:" + ":".join(f"{int(o):02x}" for o in host.ip.split("."))
        assert host.name == f"h{leaf.subnet_index}_{host.ip.split('.')[-1]}"
    assert d.host("h3_2").ip == "10.0.3.2"
    assert len({s.router_mac for s in d.switches}) == len(d.switches)


def test_fattree_k4_matches_al_fares():
    d = fattree(k=4)
    roles = [s.role for s in d.switches]
    assert (roles.count("edge"), roles.count("aggregation"), roles.count("core")) == (8, 8, 4)
    assert len(d.hosts) == 16
    # every core switch reaches every pod exactly once; every agg has k/2 up and k/2 down
    for core in (s.name for s in d.switches if s.role == "core"):
        pods = sorted(peer.split("_")[0] for peer, _ in d.switch_ports(core).values())
        assert pods == ["a1", "a2", "a3", "a4"]
    assert all(len(d.switch_ports(s.name)) == 4 for s in d.switches)
    assert len(fattree(k=4, hosts_per_edge=1).hosts) == 8


def test_dumbbell_and_ring_shapes():
    d = dumbbell(hosts=3)
    assert len(d.switch_links()) == 1 and len(d.hosts) == 6
    r = ring(switches=5, hosts_per_switch=2)
    degrees = {s.name: sum(1 for peer, _ in r.switch_ports(s.name).values() if r.is_switch(peer)) for s in r.switches}
    assert set(degrees.values()) == {2} and len(r.hosts) == 10


def test_json_round_trip(tmp_path):
    d = fattree(k=4, hosts_per_edge=1, delay=1e-5)
    path = tmp_path / "fabric.json"
    d.save(path)
    again = FabricDescription.load(path)
    assert again == d
    assert json.loads(path.read_text())["switches"][0]["grpc_port"] == 9560


def test_mininet_topo_mirrors_description():
    topo = LeafSpineTopo(spines=2, leaves=2, hosts_per_leaf=1)
    assert sorted(topo.switches()) == sorted(s.name for s in topo.description.switches)
    assert sorted(topo.hosts()) == sorted(h.name for h in topo.description.hosts)
    assert len(topo.links()) == len(topo.description.links)
    info = topo.linkInfo("l1", "h1_1")
    assert {info["port1"], info["port2"]} == {0, 1}
    assert topo.nodeInfo("h1_1")["ip"] == "10.0.1.1/24"


@pytest.mark.parametrize("topo,params,message", [
    ("leafspine", {"spines": 0}, "at least 1 spine"),
    ("leafspine", {"leaves": 2, "hosts_per_leaf": 254}, "at most 253 hosts"),
    ("leafspine", {"leaves": 256, "hosts_per_leaf": 1}, "at most 255 switches"),
    ("fattree", {"k": 3}, "even k"),
    ("ring", {"switches": 1}, "at least 2 switches"),
    ("mesh", {}, "unknown topology 'mesh'"),
    ("leafspine", {"k": 4}, "--k does not apply to --topo leafspine"),
    ("fattree", {"prefix": "averyverylongprefix"}, "longer than 15"),
])
def test_validation_errors_are_one_clear_line(topo, params, message):
    with pytest.raises(UserError, match=message) as info:
        describe(topo, params)
    assert "\n" not in str(info.value)


def test_validation_catches_inconsistent_descriptions():
    d = leafspine(spines=1, leaves=2, hosts_per_leaf=1)
    d.switches[1].device_id = d.switches[0].device_id
    with pytest.raises(UserError, match="duplicate device id"):
        d.validate()
    d = leafspine(spines=1, leaves=2, hosts_per_leaf=1)
    d.links[0].node2 = "nowhere"
    with pytest.raises(UserError, match="unknown node 'nowhere'"):
        d.validate()
    with pytest.raises(UserError, match="not a fabric description"):
        FabricDescription.from_dict({"topology": "x"})
