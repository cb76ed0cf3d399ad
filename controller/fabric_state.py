"""The controller's model of the fabric and of what it wrote: which links are up, every switch's
routes and next-hop groups (members, weights, the live half of their bucket range), pinned
flows; and the table writes that take the switches from one state to the next.

Each group owns ``2 * capacity`` consecutive ``lb_member`` indexes (capacity =
``BUCKETS_PER_MEMBER`` per member) and always uses ``capacity`` buckets: equal weights are the
members interleaved (a b a b ...), so a hash offset lands on the member ``hash mod members``
as with one bucket per member. Re-weighting is resilient: only as many buckets as the new
weights need change owner (chosen at random among the over-weighted member's), so most flows
keep their member. The new buckets are written into the half the group does not use, then
its ``lb_group`` entry flips ``base``/``size`` to that half: a packet sees the old buckets or
the new ones, never a mix. Routes whose next hops change (a link went down or came
back) are MODIFY'd to a group of the new members (created on first use and kept, so a restored
link finds its old group), or to ``route_to_port`` when one next hop is left, or to
``route_miss`` when none is (a partition).
"""
from __future__ import annotations

import ipaddress
import math
import random
from dataclasses import dataclass, field

from fabriclab.controller.fabric_rules import INGRESS, LB_ACTIONS, TableWrite
from fabriclab.controller.policy import FlowKey
from fabriclab.controller.routing import NextHop, Route, compute_routes, switch_graph
from fabriclab.controller.settings import ControllerSettings
from fabriclab.topologies.description import FabricDescription

BUCKETS_PER_MEMBER = 8      # how finely a re-weighted group splits its load (1/8 of a member's fair share)


@dataclass
class Group:
    gid: int
    members: tuple[NextHop, ...]
    region: int                        # first lb_member index of the group's two halves
    capacity: int                      # buckets per half
    weights: tuple[int, ...]
    mode: str                          # settings.LB_MODES name
    half: int = 0                      # the live half
    buckets: list[NextHop] = field(default_factory=list)        # the live half's buckets, in order
    filled: list[int] = field(default_factory=lambda: [0, 0])   # entries that exist in each half
    changed_at: float = -math.inf      # controller clock of the last weight change

    @property
    def base(self) -> int:
        return self.region + self.half * self.capacity

    @property
    def size(self) -> int:
        return sum(self.weights)


@dataclass
class SwitchTables:
    """What one switch holds, as the controller wrote it."""
    routes: dict[str, tuple[NextHop, ...]] = field(default_factory=dict)   # prefix -> next hops
    groups: dict[tuple[NextHop, ...], Group] = field(default_factory=dict)
    pins: dict[FlowKey, NextHop] = field(default_factory=dict)
    next_region: int = 0

    def group(self, gid: int) -> Group:
        for group in self.groups.values():
            if group.gid == gid:
                return group
        raise KeyError(gid)


class FabricState:
    def __init__(self, description: FabricDescription, settings: ControllerSettings):
        self.description = description
        self.settings = settings
        self.down: set[tuple[str, int]] = set()          # switch ports without carrier
        self.tables = {sw.name: SwitchTables() for sw in description.switches}
        self._rng = random.Random(0x5EED)     # which buckets move: varied, yet reproducible

    # -- links ---------------------------------------------------------------------------
    def link_up(self, switch: str, port: int) -> bool:
        """A link is up when neither end has lost carrier."""
        if (switch, port) in self.down:
            return False
        peer = self.description.switch_ports(switch).get(port)
        return peer is None or (peer[0], peer[1]) not in self.down

    def dead_ports(self) -> set[tuple[str, int]]:
        """Both ends of every link that is down."""
        return {(sw.name, port) for sw in self.description.switches for port in self.description.switch_ports(sw.name)
                if not self.link_up(sw.name, port)}

    def routes(self) -> dict[str, list[Route]]:
        return compute_routes(self.description, self.dead_ports())

    # -- routes and groups ----------------------------------------------------------------
    def sync_routes(self, routes: dict[str, list[Route]], now: float) -> dict[str, list[TableWrite]]:
        """Writes that make every switch's routes match ``routes``; switch -> writes (only
        switches with changes). The first call installs everything (INSERTs)."""
        out: dict[str, list[TableWrite]] = {}
        for switch, switch_routes in routes.items():
            tables = self.tables[switch]
            writes: list[TableWrite] = []
            for route in switch_routes:
                if tables.routes.get(route.prefix) == route.next_hops:
                    continue
                op = "MODIFY" if route.prefix in tables.routes else "INSERT"
                writes += self._route_writes(tables, route, op, now)
                tables.routes[route.prefix] = route.next_hops
            for prefix in set(tables.routes) - {r.prefix for r in switch_routes}:   # now unreachable
                writes.append(TableWrite(f"{INGRESS}.ipv4_route", {"hdr.ipv4.dst_addr": prefix},
                                         f"{INGRESS}.route_miss", op="MODIFY"))
                tables.routes[prefix] = ()
            if writes:
                out[switch] = writes
        return out

    def _route_writes(self, tables: SwitchTables, route: Route, op: str, now: float) -> list[TableWrite]:
        match = {"hdr.ipv4.dst_addr": route.prefix}
        if not route.next_hops:
            return [TableWrite(f"{INGRESS}.ipv4_route", match, f"{INGRESS}.route_miss", op=op)]
        if len(route.next_hops) == 1:
            hop = route.next_hops[0]
            return [TableWrite(f"{INGRESS}.ipv4_route", match, f"{INGRESS}.route_to_port",
                               {"port": hop.port, "dmac": hop.mac}, op=op)]
        writes = []
        group = tables.groups.get(route.next_hops)
        if group is None:
            group = self._new_group(tables, route.next_hops)
            writes += self.weight_writes(group, (BUCKETS_PER_MEMBER,) * len(group.members), now, first=True)
        writes.append(TableWrite(f"{INGRESS}.ipv4_route", match, f"{INGRESS}.route_to_group",
                                 {"group_id": group.gid}, op=op))
        return writes

    def _new_group(self, tables: SwitchTables, members: tuple[NextHop, ...]) -> Group:
        capacity = BUCKETS_PER_MEMBER * len(members)
        group = Group(gid=len(tables.groups) + 1, members=members, region=tables.next_region, capacity=capacity,
                      weights=(), mode=self.settings.lb)
        tables.next_region += 2 * capacity
        tables.groups[members] = group
        return group

    def weight_writes(self, group: Group, weights: tuple[int, ...], now: float, first: bool = False) -> list[TableWrite]:
        """Buckets for ``weights`` into the spare half (the live one for a new group), then the
        group entry pointing at them."""
        if len(weights) != len(group.members) or min(weights) < 0 or not any(weights) or sum(weights) > group.capacity:
            raise ValueError(f"weights {weights} do not fit group {group.gid} "
                             f"({len(group.members)} members, at most {group.capacity} buckets)")
        half = group.half if first else 1 - group.half
        buckets = spread(group.members, weights) if first else self._moved(group, weights)
        writes = []
        region = group.region + half * group.capacity
        for offset, hop in enumerate(buckets):
            op = "MODIFY" if offset < group.filled[half] else "INSERT"
            writes.append(TableWrite(f"{INGRESS}.lb_member", {"meta.lb_index": region + offset},
                                     f"{INGRESS}.set_member", {"port": hop.port, "dmac": hop.mac}, op=op))
            # the adaptive mode's second candidate is looked up in a twin table (a table applies once)
            writes.append(TableWrite(f"{INGRESS}.lb_member_alt", {"meta.lb_alt_index": region + offset},
                                     f"{INGRESS}.set_alt_member", {"port": hop.port, "dmac": hop.mac}, op=op))
        group.filled[half] = max(group.filled[half], len(buckets))
        group.half, group.weights, group.buckets = half, tuple(weights), buckets
        if not first:
            group.changed_at = now
        writes.append(self.group_entry(group, "INSERT" if first else "MODIFY"))
        return writes

    def _moved(self, group: Group, weights: tuple[int, ...]) -> list[NextHop]:
        """The live buckets with as few owners changed as ``weights`` need."""
        buckets = list(group.buckets) + [None] * (sum(weights) - len(group.buckets))
        del buckets[sum(weights):]
        free = [i for i, hop in enumerate(buckets) if hop is None]
        for member, weight in zip(group.members, weights):
            mine = [i for i, hop in enumerate(buckets) if hop == member]
            surplus = len(mine) - weight
            if surplus > 0:
                free += self._rng.sample(mine, surplus)
        self._rng.shuffle(free)
        for member, weight in zip(group.members, weights):
            missing = weight - sum(1 for i, hop in enumerate(buckets) if hop == member and i not in free)
            for _ in range(max(0, missing)):
                buckets[free.pop()] = member
        return buckets

    def group_entry(self, group: Group, op: str = "MODIFY") -> TableWrite:
        params = {"base": group.base, "size": group.size}
        if group.mode == "flowlet":
            params["gap_us"] = round(self.settings.flowlet_gap_s * 1e6)
        return TableWrite(f"{INGRESS}.lb_group", {"meta.lb_group": group.gid}, f"{INGRESS}.{LB_ACTIONS[group.mode]}",
                          params, op=op)

    # -- pinned flows ----------------------------------------------------------------------
    def pin_writes(self, key: FlowKey, path: tuple[tuple[str, int], ...]) -> dict[str, list[TableWrite]]:
        out: dict[str, list[TableWrite]] = {}
        for switch, port in path:
            tables = self.tables[switch]
            peer = self.description.switch_ports(switch)[port][0]
            hop = NextHop(port, self._mac_of(peer), peer)
            op = "MODIFY" if key in tables.pins else "INSERT"
            tables.pins[key] = hop
            out.setdefault(switch, []).append(TableWrite(f"{INGRESS}.flow_override", flow_match(key),
                                                         f"{INGRESS}.pin_flow", {"port": port, "dmac": hop.mac}, op=op))
        return out

    def unpin_writes(self, key: FlowKey) -> dict[str, list[TableWrite]]:
        out: dict[str, list[TableWrite]] = {}
        for switch, tables in self.tables.items():
            if tables.pins.pop(key, None) is not None:
                out.setdefault(switch, []).append(TableWrite(f"{INGRESS}.flow_override", flow_match(key), "",
                                                             op="DELETE"))
        return out

    def _mac_of(self, node: str) -> str:
        if self.description.is_switch(node):
            return self.description.switch(node).router_mac
        return self.description.host(node).mac

    # -- where traffic goes ------------------------------------------------------------------
    def switch_paths(self, src: str, dst: str) -> list[tuple[tuple[str, int], ...]]:
        """Every live shortest path from switch ``src`` to switch ``dst`` as (switch, egress
        port) hops, one per choice of parallel link, in a stable order."""
        import networkx as nx

        graph = switch_graph(self.description, self.dead_ports())
        try:
            node_paths = sorted(nx.all_shortest_paths(graph, src, dst))
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            return []
        out: list[tuple[tuple[str, int], ...]] = []
        for nodes in node_paths:
            partial: list[tuple[tuple[str, int], ...]] = [()]
            for a, b in zip(nodes, nodes[1:]):
                ports = sorted(data["ports"][a] for data in graph.get_edge_data(a, b).values())
                partial = [p + ((a, port),) for p in partial for port in ports]
            out += partial
        return out

    def next_hops(self, switch: str, dst_ip: str) -> list[tuple[NextHop, float]]:
        """(next hop, share of the traffic) for ``dst_ip`` at ``switch``, by the written tables."""
        tables = self.tables[switch]
        addr = ipaddress.ip_address(dst_ip)
        best = None
        for prefix, hops in tables.routes.items():
            net = ipaddress.ip_network(prefix)
            if addr in net and (best is None or net.prefixlen > best[0].prefixlen):
                best = (net, hops)
        if best is None or not best[1]:
            return []
        hops = best[1]
        if len(hops) == 1:
            return [(hops[0], 1.0)]
        group = tables.groups[hops]
        total = sum(group.weights)
        return [(m, w / total) for m, w in zip(group.members, group.weights) if w]

    def paths(self, src_host: str, dst_host: str) -> list[dict]:
        """Every path traffic from ``src_host`` to ``dst_host`` can take now, with its share."""
        src, dst = self.description.host(src_host), self.description.host(dst_host)
        out: list[dict] = []

        def walk(switch: str, hops: list[str], share: float) -> None:
            if len(hops) > 2 * len(self.tables) + 2:
                return   # a loop in the tables: report nothing further
            for hop, part in self.next_hops(switch, dst.ip):
                if not self.link_up(switch, hop.port):
                    continue
                if hop.neighbour == dst_host:
                    out.append({"hops": hops + [switch, dst_host], "share": round(share * part, 4)})
                elif self.description.is_switch(hop.neighbour):
                    walk(hop.neighbour, hops + [switch], share * part)

        if src.switch == dst.switch:
            return [{"hops": [src_host, src.switch, dst_host], "share": 1.0}]
        walk(src.switch, [src_host], 1.0)
        return out


def spread(members: tuple[NextHop, ...], weights: tuple[int, ...]) -> list[NextHop]:
    """The members interleaved over ``sum(weights)`` buckets, each ``weight`` times (8, 8 ->
    a b a b ...; 2, 1 -> a b a)."""
    slots = sorted(((i + 0.5) / w, n) for n, w in enumerate(weights) for i in range(w))
    return [members[n] for _, n in slots]


def flow_match(key: FlowKey) -> dict:
    return {"hdr.ipv4.src_addr": key.src, "hdr.ipv4.dst_addr": key.dst, "hdr.ipv4.protocol": key.proto,
            "meta.l4_src_port": key.sport, "meta.l4_dst_port": key.dport}
