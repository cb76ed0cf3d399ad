"""Ring of switches, each with its own hosts: switch i links to switch i+1 (and the last to the
first; two switches get two parallel links). With traffic that crosses several hops in one direction, every switch's buffer waits
on the next one's: the cyclic buffer dependency behind PFC deadlocks."""
from __future__ import annotations

from fabriclab.errors import UserError
from fabriclab.topologies.builder import DescriptionBuilder
from fabriclab.topologies.description import FabricDescription
from fabriclab.topologies.fabric_topo import FabricTopo


def ring(switches: int = 4, hosts_per_switch: int = 1, host_rate: int = 100_000_000,
         fabric_rate: int | None = None, delay: float = 0.0, prefix: str = "",
         grpc_port_base: int = 9559, mtu: int = 1500) -> FabricDescription:
    if switches < 2:
        raise UserError(f"ring needs at least 2 switches, got {switches}")
    if hosts_per_switch < 1:
        raise UserError(f"ring needs at least 1 host per switch, got {hosts_per_switch}")
    fabric_rate = fabric_rate or host_rate
    params = dict(switches=switches, hosts_per_switch=hosts_per_switch, host_rate=host_rate,
                  fabric_rate=fabric_rate, delay=delay)
    b = DescriptionBuilder("ring", params, prefix=prefix, grpc_port_base=grpc_port_base, mtu=mtu)
    names = [b.add_switch(f"r{i}", "switch") for i in range(1, switches + 1)]
    for name in names:
        b.add_hosts(name, hosts_per_switch, host_rate, delay)
    for i, name in enumerate(names):
        b.add_link(name, names[(i + 1) % switches], fabric_rate, delay)
    return b.build()


class RingTopo(FabricTopo):
    def __init__(self, **params):
        super().__init__(ring(**params))
