"""Assembles a ``FabricDescription`` node by node, handing out device ids, port numbers and
addresses by the plan in ``addressing``; every topology (generated or from YAML) uses it."""
from __future__ import annotations

from fabriclab.errors import UserError
from fabriclab.topologies import addressing
from fabriclab.topologies.description import FabricDescription, HostSpec, LinkSpec, SwitchSpec


class DescriptionBuilder:
    """Names given to ``add_*`` are logical; ``prefix`` is prepended to every node name so two
    fabrics can share one machine (switch interfaces live in the root namespace)."""

    def __init__(self, topology: str, params: dict, *, prefix: str = "",
                 grpc_port_base: int = addressing.DEFAULT_GRPC_PORT_BASE, mtu: int = 1500):
        self.prefix = prefix
        self.grpc_port_base = grpc_port_base
        self.description = FabricDescription(topology=topology, params=dict(params), mtu=mtu)
        self._next_port: dict[str, int] = {}
        self._subnets = 0

    def add_switch(self, name: str, role: str) -> str:
        full = self.prefix + name
        device_id = len(self.description.switches) + 1
        self.description.switches.append(SwitchSpec(
            name=full, device_id=device_id, role=role, grpc_port=self.grpc_port_base + device_id,
            router_mac=addressing.router_mac(device_id)))
        self._next_port[full] = 1
        return full

    def add_link(self, node1: str, node2: str, rate_bps: int, delay_s: float = 0.0) -> LinkSpec:
        """Link two switches (full names) on their next free ports."""
        for node in (node1, node2):
            if node not in self._next_port:
                raise UserError(f"link {node1}-{node2}: unknown switch {node!r}")
        if node1 == node2:
            raise UserError(f"link {node1}-{node2}: a switch cannot link to itself")
        link = LinkSpec(node1, self._take_port(node1), node2, self._take_port(node2), rate_bps, delay_s)
        self.description.links.append(link)
        return link

    def add_hosts(self, switch: str, count: int, rate_bps: int, delay_s: float = 0.0) -> list[str]:
        """Attach ``count`` hosts to ``switch`` (full name), giving it the next subnet."""
        if count <= 0:
            return []
        sw = self.description.switch(switch)
        if sw.subnet_index is None:
            self._subnets += 1
            sw.subnet_index = self._subnets
            addressing.subnet(sw.subnet_index)  # raises past the plan's last subnet
        first = len(self.description.hosts_of(switch)) + 1
        names = []
        for number in range(first, first + count):
            ip = addressing.host_ip(sw.subnet_index, number)
            name = addressing.host_name(sw.subnet_index, number, self.prefix)
            port = self._take_port(switch)
            self.description.hosts.append(HostSpec(
                name=name, ip=ip, prefix_len=24, mac=addressing.host_mac(ip), gateway_ip=sw.gateway_ip,
                gateway_mac=sw.router_mac, switch=switch, switch_port=port))
            self.description.links.append(LinkSpec(name, 0, switch, port, rate_bps, delay_s))
            names.append(name)
        return names

    def build(self) -> FabricDescription:
        self.description.validate()
        return self.description

    def _take_port(self, switch: str) -> int:
        port = self._next_port[switch]
        self._next_port[switch] = port + 1
        return port
