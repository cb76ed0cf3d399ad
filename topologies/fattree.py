"""The three-tier k-ary fat-tree of Al-Fares et al. ("A Scalable, Commodity Data Center Network
Architecture", SIGCOMM 2008): k pods of k/2 edge and k/2 aggregation switches, (k/2)^2 core
switches, k/2 hosts per edge (k^3/4 hosts). Aggregation switch j of every pod links to core
switches j*k/2 ... j*k/2 + k/2 - 1. ``hosts_per_edge`` can shrink the host count to keep small
test fabrics cheap. (The two-tier Clos is ``leafspine``.)
"""
from __future__ import annotations

from fabriclab.errors import UserError
from fabriclab.topologies.builder import DescriptionBuilder
from fabriclab.topologies.description import FabricDescription
from fabriclab.topologies.fabric_topo import FabricTopo


def fattree(k: int = 4, hosts_per_edge: int | None = None, host_rate: int = 100_000_000,
            fabric_rate: int | None = None, delay: float = 0.0, prefix: str = "",
            grpc_port_base: int = 9559, mtu: int = 1500) -> FabricDescription:
    if k < 2 or k % 2:
        raise UserError(f"fattree needs an even k >= 2, got {k}")
    half = k // 2
    hosts_per_edge = half if hosts_per_edge is None else hosts_per_edge
    if hosts_per_edge < 1:
        raise UserError(f"fattree needs at least 1 host per edge switch, got {hosts_per_edge}")
    fabric_rate = fabric_rate or host_rate
    params = dict(k=k, hosts_per_edge=hosts_per_edge, host_rate=host_rate, fabric_rate=fabric_rate, delay=delay)
    b = DescriptionBuilder("fattree", params, prefix=prefix, grpc_port_base=grpc_port_base, mtu=mtu)
    edges = [[b.add_switch(f"e{p}_{j}", "edge") for j in range(1, half + 1)] for p in range(1, k + 1)]
    aggs = [[b.add_switch(f"a{p}_{j}", "aggregation") for j in range(1, half + 1)] for p in range(1, k + 1)]
    cores = [b.add_switch(f"c{i}", "core") for i in range(1, half * half + 1)]
    for pod in edges:
        for edge in pod:
            b.add_hosts(edge, hosts_per_edge, host_rate, delay)
    for pod_edges, pod_aggs in zip(edges, aggs):
        for edge in pod_edges:
            for agg in pod_aggs:
                b.add_link(edge, agg, fabric_rate, delay)
    for pod_aggs in aggs:
        for j, agg in enumerate(pod_aggs):
            for core in cores[j * half:(j + 1) * half]:
                b.add_link(agg, core, fabric_rate, delay)
    return b.build()


class FatTreeTopo(FabricTopo):
    def __init__(self, **params):
        super().__init__(fattree(**params))
