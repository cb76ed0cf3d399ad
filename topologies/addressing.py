"""The fabric's addressing plan: every address is derived from small integers, so it is
deterministic and can be read back from a packet capture.

- Edge switches (the ones hosts attach to: leaves, fat-tree edges, dumbbell and ring
  switches) are numbered 1, 2, ... in the order the topology declares them: the *subnet index* e.
- Subnet of edge e: ``10.0.e.0/24``; its gateway (the edge switch's router address) is
  ``10.0.e.254``.
- Host i (1-based) on edge e: ``10.0.e.i/24``, MAC ``02:00:0a:00:EE:II`` (the IPv4 address
  in the last four bytes, locally administered bit set). Hosts are named ``h<e>_<i>``.
- Switch with device id d: router MAC ``02:f0:00:00:DH:DL`` (d as 16 bits), P4Runtime on
  ``127.0.0.1:(grpc_port_base + d)``, 9559 + d by default (9559 is P4Runtime's IANA port).
- Hosts resolve every address on their subnet and the gateway to their edge switch's router
  MAC with static ARP entries, so every frame a host sends is routed by its edge switch.
"""
from __future__ import annotations

import ipaddress

from fabriclab.errors import UserError

MAX_SUBNETS = 255          # e is the third octet of 10.0.e.0/24
MAX_HOSTS_PER_SUBNET = 253  # .1 ... .253; .254 is the gateway
GATEWAY_HOST_OCTET = 254
DEFAULT_GRPC_PORT_BASE = 9559
MAX_DEVICE_ID = 0xFFFF


def subnet(edge_index: int) -> ipaddress.IPv4Network:
    """Subnet of edge switch number ``edge_index`` (1-based)."""
    if not 1 <= edge_index <= MAX_SUBNETS:
        raise UserError(f"at most {MAX_SUBNETS} switches can have hosts (addressing plan 10.0.e.0/24), "
                        f"got switch number {edge_index}")
    return ipaddress.IPv4Network(f"10.0.{edge_index}.0/24")


def gateway_ip(edge_index: int) -> str:
    return str(subnet(edge_index).network_address + GATEWAY_HOST_OCTET)


def host_ip(edge_index: int, host_number: int) -> str:
    if not 1 <= host_number <= MAX_HOSTS_PER_SUBNET:
        raise UserError(f"at most {MAX_HOSTS_PER_SUBNET} hosts fit on one switch (addressing plan 10.0.e.1-253), "
                        f"got host number {host_number}")
    return str(subnet(edge_index).network_address + host_number)


def host_mac(ip: str) -> str:
    """The host's IPv4 address in the MAC's last four bytes: 10.0.3.2 -> 02:00:0a:00:03:02."""
    return "02:00:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


def router_mac(device_id: int) -> str:
    if not 0 <= device_id <= MAX_DEVICE_ID:
        raise UserError(f"device id must be 0..{MAX_DEVICE_ID}, got {device_id}")
    return f"02:f0:00:00:{device_id >> 8:02x}:{device_id & 0xFF:02x}"


def host_name(edge_index: int, host_number: int, prefix: str = "") -> str:
    return f"{prefix}h{edge_index}_{host_number}"


def mac_to_int(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


def ip_to_int(ip: str) -> int:
    return int(ipaddress.IPv4Address(ip))
