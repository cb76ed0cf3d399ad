"""The fabric description: plain data naming every switch, host, port and link of a fabric.

A topology builds one; Mininet realises it (``fabric_topo.FabricTopo``); bring-up writes it to
``<run dir>/fabric.json``; the controller, scenarios and reports read it back. Nothing here
imports Mininet, so the controller and the reports can use it anywhere.

Port numbers are the switch's P4 port numbers (``standard_metadata.ingress_port``), 1-based,
and also Mininet's port numbers, so the switch interface of port p on switch s is ``s-eth<p>``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fabriclab.errors import UserError
from fabriclab.topologies import addressing

SWITCH_ROLES = ("leaf", "spine", "edge", "aggregation", "core", "switch")
MAX_INTERFACE_NAME = 15  # Linux IFNAMSIZ - 1


@dataclass
class SwitchSpec:
    name: str
    device_id: int
    role: str
    grpc_port: int
    router_mac: str
    subnet_index: int | None = None   # set on switches that hosts attach to (addressing.subnet)

    @property
    def subnet(self) -> str | None:
        return None if self.subnet_index is None else str(addressing.subnet(self.subnet_index))

    @property
    def gateway_ip(self) -> str | None:
        return None if self.subnet_index is None else addressing.gateway_ip(self.subnet_index)

    @property
    def grpc_addr(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


@dataclass
class HostSpec:
    name: str
    ip: str
    prefix_len: int
    mac: str
    gateway_ip: str
    gateway_mac: str      # the edge switch's router MAC
    switch: str
    switch_port: int

    @property
    def intf(self) -> str:
        return f"{self.name}-eth0"


@dataclass
class LinkSpec:
    node1: str
    port1: int
    node2: str
    port2: int
    rate_bps: int
    delay_s: float = 0.0

    def intf_names(self) -> tuple[str, str]:
        return f"{self.node1}-eth{self.port1}", f"{self.node2}-eth{self.port2}"


@dataclass
class FabricDescription:
    topology: str                    # leafspine | fattree | dumbbell | ring | file
    params: dict
    switches: list[SwitchSpec] = field(default_factory=list)
    hosts: list[HostSpec] = field(default_factory=list)
    links: list[LinkSpec] = field(default_factory=list)
    mtu: int = 1500

    # -- lookups -------------------------------------------------------------------------
    def switch(self, name: str) -> SwitchSpec:
        for sw in self.switches:
            if sw.name == name:
                return sw
        raise KeyError(name)

    def host(self, name: str) -> HostSpec:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def is_switch(self, name: str) -> bool:
        return any(sw.name == name for sw in self.switches)

    def switch_ports(self, name: str) -> dict[int, tuple[str, int]]:
        """port -> (peer node, peer port) for every link of switch ``name``."""
        ports = {}
        for link in self.links:
            if link.node1 == name:
                ports[link.port1] = (link.node2, link.port2)
            if link.node2 == name:
                ports[link.port2] = (link.node1, link.port1)
        return dict(sorted(ports.items()))

    def link_at(self, name: str, port: int) -> LinkSpec:
        """The link on port ``port`` of node ``name`` (hosts have port 0)."""
        for link in self.links:
            if (link.node1, link.port1) == (name, port) or (link.node2, link.port2) == (name, port):
                return link
        raise KeyError((name, port))

    def link_rate(self, name: str, port: int) -> int:
        return self.link_at(name, port).rate_bps

    def path_links(self, src: str, dst: str) -> list[LinkSpec]:
        """The links of one shortest (fewest hops) path from node ``src`` to node ``dst``."""
        via: dict[str, tuple[str, LinkSpec] | None] = {src: None}
        frontier = [src]
        while frontier and dst not in via:
            nxt = []
            for node in frontier:
                for link in self.links:
                    for a, b in ((link.node1, link.node2), (link.node2, link.node1)):
                        if a == node and b not in via:
                            via[b] = (node, link)
                            nxt.append(b)
            frontier = nxt
        if dst not in via:
            raise KeyError(f"no path from {src} to {dst}")
        path, node = [], dst
        while via[node] is not None:
            node, link = via[node]
            path.append(link)
        return path[::-1]

    def switch_links(self) -> list[LinkSpec]:
        """Links between two switches (the fabric proper)."""
        return [l for l in self.links if self.is_switch(l.node1) and self.is_switch(l.node2)]

    def hosts_of(self, switch: str) -> list[HostSpec]:
        return [h for h in self.hosts if h.switch == switch]

    # -- checks ----------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise UserError on the first inconsistency: duplicate names, ids, ports or
        addresses, links to unknown nodes, interface names too long for Linux."""
        names = [sw.name for sw in self.switches] + [h.name for h in self.hosts]
        _no_duplicates(names, "node name")
        _no_duplicates([sw.device_id for sw in self.switches], "device id")
        _no_duplicates([sw.grpc_port for sw in self.switches], "gRPC port")
        _no_duplicates([h.ip for h in self.hosts], "host IP")
        for sw in self.switches:
            if sw.role not in SWITCH_ROLES:
                raise UserError(f"switch {sw.name}: unknown role {sw.role!r} (choose from {', '.join(SWITCH_ROLES)})")
        known = set(names)
        used_ports: set[tuple[str, int]] = set()
        for link in self.links:
            for node, port in ((link.node1, link.port1), (link.node2, link.port2)):
                if node not in known:
                    raise UserError(f"link {link.node1}-{link.node2}: unknown node {node!r}")
                if (node, port) in used_ports:
                    raise UserError(f"node {node}: port {port} used by two links")
                used_ports.add((node, port))
            for intf in link.intf_names():
                if len(intf) > MAX_INTERFACE_NAME:
                    raise UserError(f"interface name {intf!r} is longer than {MAX_INTERFACE_NAME} characters: "
                                    "use shorter node names")
        for host in self.hosts:
            if (host.switch, host.switch_port) not in used_ports:
                raise UserError(f"host {host.name}: no link to {host.switch} port {host.switch_port}")

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FabricDescription":
        try:
            return cls(
                topology=data["topology"],
                params=dict(data.get("params", {})),
                switches=[SwitchSpec(**sw) for sw in data["switches"]],
                hosts=[HostSpec(**h) for h in data["hosts"]],
                links=[LinkSpec(**l) for l in data["links"]],
                mtu=int(data.get("mtu", 1500)),
            )
        except (KeyError, TypeError) as exc:
            raise UserError(f"not a fabric description: {exc}") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "FabricDescription":
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise UserError(f"cannot read fabric description {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: not JSON ({exc})") from None
        return cls.from_dict(data)


def _no_duplicates(values: list, what: str) -> None:
    seen = set()
    for value in values:
        if value in seen:
            raise UserError(f"duplicate {what}: {value}")
        seen.add(value)
