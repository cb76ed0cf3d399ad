"""``FabricTopo``: a Mininet ``Topo`` realising a ``FabricDescription``.

Like Mininet's own topologies it is only a description of nodes and links; ``Mininet(topo)``
creates them. Link rates and delays are not Mininet link parameters here (no TCLink: the kernel
has no netem): the P4 switch's traffic manager paces each switch port and bring-up shapes each
host's interface, both from the description.
"""
from __future__ import annotations

from mininet.topo import Topo

from fabriclab.topologies.description import FabricDescription


class FabricTopo(Topo):
    def __init__(self, description: FabricDescription):
        self.description = description
        super().__init__()

    def build(self) -> None:
        for sw in self.description.switches:
            # The dpid carries the device id so Mininet never derives one from the name.
            self.addSwitch(sw.name, dpid=f"{sw.device_id:016x}", device_id=sw.device_id, grpc_port=sw.grpc_port)
        for host in self.description.hosts:
            self.addHost(host.name, ip=f"{host.ip}/{host.prefix_len}", mac=host.mac,
                         defaultRoute=f"via {host.gateway_ip}")
        for link in self.description.links:
            self.addLink(link.node1, link.node2, port1=link.port1, port2=link.port2)
