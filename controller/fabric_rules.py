"""What the controller writes into ``p4/fabric.p4`` on one switch, as plain data.

Tables (see p4/README.md): ``switch_config`` (identity), ``dscp_priority``/``pcp_priority``
(traffic classes), ``ecn_profile`` (RED marking per port and priority) here; ``ipv4_route``,
``lb_group``, ``lb_member``/``lb_member_alt`` and ``flow_override`` are written by
``fabric_state.py``, which tracks what they hold as links fail and policies re-weigh.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fabriclab.controller.settings import ControllerSettings
from fabriclab.topologies.description import FabricDescription

INGRESS = "FabricIngress"
EGRESS = "FabricEgress"
NUM_PRIORITIES = 8
ECN_PROBABILITY_ONE = 1 << 32       # fabric.p4 compares random() in [0, 2^24) shifted by 8 bits

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
    op: str = "INSERT"               # INSERT, MODIFY or DELETE (entries; a default is always a MODIFY)


def hash_seed(device_id: int) -> int:
    """Distinct per switch so the tiers do not all pick the same member (hash polarisation)."""
    return (device_id * 0x9E37) & 0xFFFF     # golden-ratio multiplier spreads consecutive ids


def ecn_profile_params(settings: ControllerSettings) -> dict[str, int]:
    """kmin/kmax in bytes (fabric.p4 marks on the queue's byte depth, as switches do: converting
    to packets at 1518-byte frames made the thresholds act ~28 % low for 1082-byte RoCE frames);
    slope so that P(mark) reaches pmax at kmax, in units of 2^-32 per byte (fits 32 bits)."""
    kmin, kmax = settings.ecn.kmin_bytes, settings.ecn.kmax_bytes
    if kmax == kmin:
        return {"kmin": kmin, "kmax": kmax, "slope": ECN_PROBABILITY_ONE - 1}
    return {"kmin": kmin, "kmax": kmax,
            "slope": min(ECN_PROBABILITY_ONE - 1, round(settings.ecn.pmax * ECN_PROBABILITY_ONE / (kmax - kmin)))}


def switch_rules(description: FabricDescription, switch: str, settings: ControllerSettings) -> list[TableWrite]:
    """Everything but routes and groups (those are ``fabric_state.FabricState``'s): the switch's
    identity, the traffic classes and the ECN profiles."""
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
    if settings.ecn.enabled:
        profile = ecn_profile_params(settings)
        for port in description.switch_ports(switch):
            writes += [TableWrite(f"{EGRESS}.ecn_profile",
                                  {"standard_metadata.egress_port": port, "meta.priority": priority},
                                  f"{EGRESS}.set_ecn_profile", dict(profile)) for priority in range(NUM_PRIORITIES)]
    return writes
