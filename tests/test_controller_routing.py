"""Equal-cost multipath routes computed from the fabric description."""
from __future__ import annotations

import ipaddress

from fabriclab.controller.routing import compute_routes, unreachable_pairs
from fabriclab.topologies.fattree import fattree
from fabriclab.topologies.leafspine import leafspine
from fabriclab.topologies.ring import ring
from fabriclab.topologies.yamlfile import from_mapping


def _walk(description, routes, src_switch, dst_ip, choose=0):
    """Follow routes hop by hop (taking member ``choose`` mod group size); returns the switch path."""
    path = [src_switch]
    while True:
        here = path[-1]
        best = max((r for r in routes[here] if ipaddress.IPv4Address(dst_ip) in ipaddress.IPv4Network(r.prefix)),
                   key=lambda r: ipaddress.IPv4Network(r.prefix).prefixlen)
        hop = best.next_hops[choose % len(best.next_hops)]
        if not description.is_switch(hop.neighbour):
            assert description.host(hop.neighbour).ip == dst_ip
            return path
        assert hop.mac == description.switch(hop.neighbour).router_mac
        path.append(hop.neighbour)
        assert len(path) < 10, "routing loop"


def test_leafspine_uses_every_spine():
    d = leafspine(spines=3, leaves=2, hosts_per_leaf=1)
    routes = compute_routes(d)
    remote = [r for r in routes["l1"] if r.prefix == "10.0.2.0/24"][0]
    assert sorted(h.neighbour for h in remote.next_hops) == ["s1", "s2", "s3"]
    local = [r for r in routes["l1"] if r.prefix == "10.0.1.1/32"][0]
    assert local.next_hops[0].mac == d.host("h1_1").mac and local.next_hops[0].port == 1
    assert all(len(r.next_hops) == 1 for r in routes["s2"])


def test_parallel_links_are_separate_members():
    d = leafspine(spines=1, leaves=2, hosts_per_leaf=1, links_per_spine=2)
    remote = [r for r in compute_routes(d)["l1"] if r.prefix == "10.0.2.0/24"][0]
    assert [h.port for h in remote.next_hops] == [2, 3]


def test_fattree_paths_are_shortest_and_loop_free():
    d = fattree(k=4, hosts_per_edge=1)
    routes = compute_routes(d)
    inter_pod = [r for r in routes["e1_1"] if r.prefix == d.switch("e3_1").subnet][0]
    assert len(inter_pod.next_hops) == 2                       # both aggregation switches
    for choose in range(4):
        assert len(_walk(d, routes, "e1_1", d.host("h5_1").ip, choose)) == 5    # edge-agg-core-agg-edge
        assert len(_walk(d, routes, "e1_1", d.host("h2_1").ip, choose)) == 3    # same pod: via an agg


def test_ring_takes_the_short_way_round_and_splits_ties():
    d = ring(switches=4)
    routes = compute_routes(d)
    assert _walk(d, routes, "r1", d.host("h2_1").ip) == ["r1", "r2"]
    opposite = [r for r in routes["r1"] if r.prefix == d.switch("r3").subnet][0]
    assert sorted(h.neighbour for h in opposite.next_hops) == ["r2", "r4"]


def test_partitioned_fabric_is_reported():
    d = from_mapping({"switches": [{"name": "a", "hosts": 1}, {"name": "b", "hosts": 1}], "links": []})
    assert unreachable_pairs(d) == [("b", "a"), ("a", "b")]
    assert all(r.prefix.endswith("/32") for r in compute_routes(d)["a"])
