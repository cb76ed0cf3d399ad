"""What the controller writes into ``p4/fabric.p4`` on one switch, as plain data.

Tables (see p4/README.md): ``switch_config`` (identity), ``dscp_priority``/``pcp_priority``
(traffic classes), ``ipv4_route`` (LPM -> a port or a next-hop group), ``lb_group`` (the
group's members range and LB mode), ``lb_member`` and ``lb_member_alt`` (the members; a member
repeated w times has weight w), ``ecn_profile`` (RED marking per port and priority).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from fabriclab.controller.policy import EqualWeights, Policy
from fabriclab.controller.routing import NextHop, Route
from fabriclab.controller.settings import ControllerSettings
from fabriclab.topologies.description import FabricDescription

INGRESS = "FabricIngress"
EGRESS = "FabricEgress"
NUM_PRIORITIES = 8
ECN_PROBABILITY_ONE = 1 << 24       # fabric.p4 draws random() in [0, 2^24): ECN_RANDOM_MAX + 1
ETHERNET_OVERHEAD = 18              # header + FCS: a full-MTU frame is mtu + 18 bytes

# --lb name -> the lb_group action that selects the data-plane mode
LB_ACTIONS = {
    "ecmp": "lb_ecmp",               # per-flow 5-tuple hash
    "spray": "lb_spray_random",      # per-packet random member
    "spray-rr": "lb_spray_round_robin",  # per-packet, members in turn
    "flowlet": "lb_flowlet",         # new random member after an idle gap (LetFlow)
    "adaptive": "lb_least_loaded",   # power of two choices on egress queue depth
}


@dataclass
class TableWrite:
    table: str
    match: dict[str, Any]
    action: str
    params: dict[str, Any] = field(default_factory=dict)
    default: bool = False            # set the table's default action (a MODIFY) instead of inserting


@dataclass
class SwitchRules:
    writes: list[TableWrite]
    routes: int                      # ipv4_route entries
    groups: dict[tuple[NextHop, ...], int]   # members -> group id


def hash_seed(device_id: int) -> int:
    """Distinct per switch so the tiers do not all pick the same member (hash polarisation)."""
    return (device_id * 0x9E37) & 0xFFFF     # golden-ratio multiplier spreads consecutive ids


def ecn_profile_params(settings: ControllerSettings, mtu: int) -> dict[str, int]:
    """kmin/kmax in packets (fabric.p4 compares enq_qdepth, which simple_switch counts in packets),
    converted at full-size frames; slope so that P(mark) reaches pmax at kmax."""
    frame = mtu + ETHERNET_OVERHEAD
    kmin = math.ceil(settings.ecn.kmin_bytes / frame)
    kmax = max(kmin, math.ceil(settings.ecn.kmax_bytes / frame))
    slope = ECN_PROBABILITY_ONE if kmax == kmin else round(settings.ecn.pmax * ECN_PROBABILITY_ONE / (kmax - kmin))
    return {"kmin": kmin, "kmax": kmax, "slope": slope}


def switch_rules(description: FabricDescription, switch: str, routes: list[Route],
                 settings: ControllerSettings, policy: Policy | None = None) -> SwitchRules:
    policy = policy or EqualWeights()
    sw = description.switch(switch)
    writes = [TableWrite(f"{INGRESS}.switch_config", {}, f"{INGRESS}.set_switch_config",
                         {"switch_id": sw.device_id, "router_mac": sw.router_mac,
                          "hash_seed": hash_seed(sw.device_id)}, default=True)]
    for dscp in range(64):
        priority = settings.dscp_priority.get(dscp, settings.default_priority)
        if priority:
            writes.append(TableWrite(f"{INGRESS}.dscp_priority", {"hdr.ipv4.dscp": dscp},
                                     f"{INGRESS}.set_priority", {"priority": priority}))
    # A VLAN-tagged frame's PCP is its 802.1Q priority already.
    writes += [TableWrite(f"{INGRESS}.pcp_priority", {"hdr.vlan.pcp": pcp}, f"{INGRESS}.set_priority",
                          {"priority": pcp}) for pcp in range(1, NUM_PRIORITIES)]

    groups: dict[tuple[NextHop, ...], int] = {}
    next_base = 0
    group_writes: list[TableWrite] = []
    for route in routes:
        if not route.next_hops:
            continue
        match = {"hdr.ipv4.dst_addr": route.prefix}
        if len(route.next_hops) == 1:
            hop = route.next_hops[0]
            writes.append(TableWrite(f"{INGRESS}.ipv4_route", match, f"{INGRESS}.route_to_port",
                                     {"port": hop.port, "dmac": hop.mac}))
            continue
        if route.next_hops not in groups:
            group_id = len(groups) + 1
            groups[route.next_hops] = group_id
            weights = policy.weigh(switch, route.next_hops, {})
            if len(weights) != len(route.next_hops) or min(weights) < 0 or not any(weights):
                raise ValueError(f"policy gave weights {weights} for {len(route.next_hops)} members of {route.prefix} "
                                 f"on {switch}: need one weight >= 0 per member, one above 0")
            buckets = [hop for hop, weight in zip(route.next_hops, weights) for _ in range(weight)]
            group_writes += _group_writes(group_id, next_base, buckets, settings)
            next_base += len(buckets)
        writes.append(TableWrite(f"{INGRESS}.ipv4_route", match, f"{INGRESS}.route_to_group",
                                 {"group_id": groups[route.next_hops]}))
    writes += group_writes

    if settings.ecn.enabled:
        profile = ecn_profile_params(settings, description.mtu)
        for port in description.switch_ports(switch):
            writes += [TableWrite(f"{EGRESS}.ecn_profile",
                                  {"standard_metadata.egress_port": port, "meta.priority": priority},
                                  f"{EGRESS}.set_ecn_profile", dict(profile)) for priority in range(NUM_PRIORITIES)]
    return SwitchRules(writes, sum(1 for w in writes if w.table.endswith(".ipv4_route")), groups)


def _group_writes(group_id: int, base: int, buckets: list[NextHop], settings: ControllerSettings) -> list[TableWrite]:
    params: dict[str, Any] = {"base": base, "size": len(buckets)}
    if settings.lb == "flowlet":
        params["gap_us"] = round(settings.flowlet_gap_s * 1e6)
    writes = [TableWrite(f"{INGRESS}.lb_group", {"meta.lb_group": group_id},
                         f"{INGRESS}.{LB_ACTIONS[settings.lb]}", params)]
    for offset, hop in enumerate(buckets):
        writes.append(TableWrite(f"{INGRESS}.lb_member", {"meta.lb_index": base + offset},
                                 f"{INGRESS}.set_member", {"port": hop.port, "dmac": hop.mac}))
        # The adaptive mode's second candidate is looked up in a twin table (a table applies once).
        writes.append(TableWrite(f"{INGRESS}.lb_member_alt", {"meta.lb_alt_index": base + offset},
                                 f"{INGRESS}.set_alt_member", {"port": hop.port, "dmac": hop.mac}))
    return writes
