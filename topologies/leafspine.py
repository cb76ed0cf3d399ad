"""Two-tier leaf-spine (folded Clos): every leaf links to every spine; hosts hang off leaves.

Oversubscription at a leaf = hosts_per_leaf * host_rate / (spines * links_per_spine * fabric_rate).
"""
from __future__ import annotations

from fabriclab.errors import UserError
from fabriclab.topologies.builder import DescriptionBuilder
from fabriclab.topologies.description import FabricDescription
from fabriclab.topologies.fabric_topo import FabricTopo


def leafspine(spines: int = 2, leaves: int = 4, hosts_per_leaf: int = 2, host_rate: int = 100_000_000,
              fabric_rate: int | None = None, delay: float = 0.0, links_per_spine: int = 1,
              prefix: str = "", grpc_port_base: int = 9559, mtu: int = 1500) -> FabricDescription:
    if spines < 1:
        raise UserError(f"leafspine needs at least 1 spine, got {spines}")
    if leaves < 1:
        raise UserError(f"leafspine needs at least 1 leaf, got {leaves}")
    if hosts_per_leaf < 1:
        raise UserError(f"leafspine needs at least 1 host per leaf, got {hosts_per_leaf}")
    if links_per_spine < 1:
        raise UserError(f"leafspine needs at least 1 link per leaf-spine pair, got {links_per_spine}")
    fabric_rate = fabric_rate or host_rate
    params = dict(spines=spines, leaves=leaves, hosts_per_leaf=hosts_per_leaf, host_rate=host_rate,
                  fabric_rate=fabric_rate, delay=delay, links_per_spine=links_per_spine,
                  oversubscription=hosts_per_leaf * host_rate / (spines * links_per_spine * fabric_rate))
    b = DescriptionBuilder("leafspine", params, prefix=prefix, grpc_port_base=grpc_port_base, mtu=mtu)
    leaf_names = [b.add_switch(f"l{i}", "leaf") for i in range(1, leaves + 1)]
    spine_names = [b.add_switch(f"s{i}", "spine") for i in range(1, spines + 1)]
    for leaf in leaf_names:
        b.add_hosts(leaf, hosts_per_leaf, host_rate, delay)
    for leaf in leaf_names:
        for spine in spine_names:
            for _ in range(links_per_spine):
                b.add_link(leaf, spine, fabric_rate, delay)
    return b.build()


class LeafSpineTopo(FabricTopo):
    def __init__(self, **params):
        super().__init__(leafspine(**params))
