"""Routes for every switch: all equal-cost shortest paths (hop count) from each switch to each
host subnet, as next-hop sets the data plane balances over.

A switch with hosts gets a /32 per attached host (next hop: the host itself); every other
switch that can reach it gets its /24 with one next hop per link that lies on a shortest path
(parallel links count separately, so two links to one spine are two members).
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from fabriclab.topologies.description import FabricDescription


@dataclass(frozen=True, order=True)
class NextHop:
    port: int
    mac: str          # destination MAC to write: the neighbour's router MAC or the host's MAC
    neighbour: str    # node name, for humans and the adaptive policy


@dataclass(frozen=True)
class Route:
    prefix: str                       # "10.0.2.0/24" or "10.0.1.1/32"
    next_hops: tuple[NextHop, ...]    # sorted by port; more than one = a balanced group


def switch_graph(description: FabricDescription, down: set[tuple[str, int]] = frozenset()) -> nx.MultiGraph:
    """Switches as nodes, one edge per switch-to-switch link (keyed by the two ports); links
    with an end in ``down`` ((switch, port) pairs) are left out."""
    graph = nx.MultiGraph()
    graph.add_nodes_from(sw.name for sw in description.switches)
    for link in description.switch_links():
        if (link.node1, link.port1) in down or (link.node2, link.port2) in down:
            continue
        graph.add_edge(link.node1, link.node2, ports={link.node1: link.port1, link.node2: link.port2})
    return graph


def compute_routes(description: FabricDescription,
                   down: set[tuple[str, int]] = frozenset()) -> dict[str, list[Route]]:
    """switch name -> its routes (host /32s first, then remote subnets by subnet index), on the
    graph without the links that have an end in ``down``."""
    graph = switch_graph(description, down)
    routes: dict[str, list[Route]] = {sw.name: [] for sw in description.switches}
    for sw in description.switches:
        for host in description.hosts_of(sw.name):
            routes[sw.name].append(Route(f"{host.ip}/32", (NextHop(host.switch_port, host.mac, host.name),)))
    edges = sorted((sw for sw in description.switches if sw.subnet_index is not None), key=lambda s: s.subnet_index)
    for dest in edges:
        distance = nx.single_source_shortest_path_length(graph, dest.name)
        for sw in description.switches:
            if sw.name == dest.name or sw.name not in distance:
                continue
            hops = []
            for _, neighbour, data in graph.edges(sw.name, data=True):
                if distance.get(neighbour) == distance[sw.name] - 1:
                    hops.append(NextHop(data["ports"][sw.name], description.switch(neighbour).router_mac, neighbour))
            routes[sw.name].append(Route(dest.subnet, tuple(sorted(hops))))
    return routes


def unreachable_pairs(description: FabricDescription) -> list[tuple[str, str]]:
    """(switch, destination switch with hosts) pairs with no path: a partitioned fabric."""
    graph = switch_graph(description)
    pairs = []
    for dest in description.switches:
        if dest.subnet_index is None:
            continue
        reach = nx.node_connected_component(graph, dest.name)
        pairs.extend((sw.name, dest.name) for sw in description.switches
                     if sw.subnet_index is not None and sw.name not in reach)
    return pairs
