"""Dumbbell: two switches joined by one bottleneck link, ``hosts`` hosts on each side."""
from __future__ import annotations

from fabriclab.errors import UserError
from fabriclab.topologies.builder import DescriptionBuilder
from fabriclab.topologies.description import FabricDescription
from fabriclab.topologies.fabric_topo import FabricTopo


def dumbbell(hosts: int = 2, host_rate: int = 100_000_000, fabric_rate: int | None = None,
             delay: float = 0.0, prefix: str = "", grpc_port_base: int = 9559, mtu: int = 1500) -> FabricDescription:
    if hosts < 1:
        raise UserError(f"dumbbell needs at least 1 host per side, got {hosts}")
    fabric_rate = fabric_rate or host_rate
    params = dict(hosts=hosts, host_rate=host_rate, fabric_rate=fabric_rate, delay=delay)
    b = DescriptionBuilder("dumbbell", params, prefix=prefix, grpc_port_base=grpc_port_base, mtu=mtu)
    left, right = b.add_switch("sw1", "switch"), b.add_switch("sw2", "switch")
    b.add_hosts(left, hosts, host_rate, delay)
    b.add_hosts(right, hosts, host_rate, delay)
    b.add_link(left, right, fabric_rate, delay)
    return b.build()


class DumbbellTopo(FabricTopo):
    def __init__(self, **params):
        super().__init__(dumbbell(**params))
