"""Topologies drawn by users in a YAML file::

    rate: 100M              # default rate of every link (default 100M)
    delay: 0                # default one-way delay of every link (default 0)
    mtu: 1500
    switches:
      - name: t1
        role: leaf          # leaf | spine | edge | aggregation | core | switch (default)
        hosts: 2            # hosts attached to this switch (default 0)
        host_rate: 100M     # rate of those hosts' links (default: rate)
      - {name: sp1, role: spine}
    links:
      - [t1, sp1]                                        # short form
      - {nodes: [t1, sp1], rate: 1G, delay: 1ms, count: 2}  # count: parallel links

Hosts are named and addressed by the addressing plan (subnets numbered in switch order).
"""
from __future__ import annotations

from pathlib import Path

import yaml

from fabriclab.errors import UserError
from fabriclab.topologies.builder import DescriptionBuilder
from fabriclab.topologies.description import SWITCH_ROLES, FabricDescription
from fabriclab.topologies.fabric_topo import FabricTopo
from fabriclab.units import parse_duration, parse_rate

_TOP_KEYS = {"rate", "delay", "mtu", "switches", "links"}
_SWITCH_KEYS = {"name", "role", "hosts", "host_rate"}
_LINK_KEYS = {"nodes", "rate", "delay", "count"}


def from_yaml(path: str | Path, prefix: str = "", grpc_port_base: int = 9559) -> FabricDescription:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise UserError(f"cannot read topology file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return from_mapping(data, where=str(path), prefix=prefix, grpc_port_base=grpc_port_base)


def from_mapping(data: object, where: str = "topology", prefix: str = "",
                 grpc_port_base: int = 9559) -> FabricDescription:
    top = _mapping(data, where, _TOP_KEYS)
    rate = parse_rate(top.get("rate", "100M"), f"{where}: rate")
    delay = parse_duration(top.get("delay", 0), f"{where}: delay")
    switches = top.get("switches")
    if not isinstance(switches, list) or not switches:
        raise UserError(f"{where}: 'switches' must be a non-empty list")
    b = DescriptionBuilder("file", {"file": where}, prefix=prefix, grpc_port_base=grpc_port_base,
                           mtu=_positive_int(top.get("mtu", 1500), f"{where}: mtu"))
    full_names: dict[str, str] = {}
    host_counts = []
    for i, entry in enumerate(switches):
        here = f"{where}: switches[{i}]"
        sw = _mapping(entry, here, _SWITCH_KEYS)
        name = sw.get("name")
        if not isinstance(name, str) or not name:
            raise UserError(f"{here}: needs a 'name'")
        if name in full_names:
            raise UserError(f"{here}: duplicate switch name {name!r}")
        role = sw.get("role", "switch")
        if role not in SWITCH_ROLES:
            raise UserError(f"{here}: unknown role {role!r} (choose from {', '.join(SWITCH_ROLES)})")
        full_names[name] = b.add_switch(name, role)
        hosts = sw.get("hosts", 0)
        if not isinstance(hosts, int) or hosts < 0:
            raise UserError(f"{here}: 'hosts' must be a whole number >= 0, got {hosts!r}")
        host_counts.append((full_names[name], hosts, parse_rate(sw.get("host_rate", rate), f"{here}: host_rate")))
    for switch, count, host_rate in host_counts:
        b.add_hosts(switch, count, host_rate, delay)
    if not any(count for _, count, _ in host_counts):
        raise UserError(f"{where}: no switch has hosts (give at least one switch 'hosts: N')")
    for i, entry in enumerate(top.get("links") or []):
        here = f"{where}: links[{i}]"
        if isinstance(entry, list):
            entry = {"nodes": entry}
        link = _mapping(entry, here, _LINK_KEYS)
        nodes = link.get("nodes")
        if not isinstance(nodes, list) or len(nodes) != 2:
            raise UserError(f"{here}: needs exactly two switch names")
        for node in nodes:
            if node not in full_names:
                raise UserError(f"{here}: unknown node {node!r}")
        count = link.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise UserError(f"{here}: 'count' must be a whole number >= 1, got {count!r}")
        link_rate = parse_rate(link.get("rate", rate), f"{here}: rate")
        link_delay = parse_duration(link.get("delay", delay), f"{here}: delay")
        for _ in range(count):
            b.add_link(full_names[nodes[0]], full_names[nodes[1]], link_rate, link_delay)
    return b.build()


def _mapping(value: object, where: str, allowed: set[str]) -> dict:
    if not isinstance(value, dict):
        raise UserError(f"{where}: expected a mapping, got {type(value).__name__}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    return value


def _positive_int(value: object, where: str) -> int:
    if not isinstance(value, int) or value <= 0:
        raise UserError(f"{where}: expected a positive whole number, got {value!r}")
    return value


class FileTopo(FabricTopo):
    def __init__(self, path: str, **params):
        super().__init__(from_yaml(path, **params))
