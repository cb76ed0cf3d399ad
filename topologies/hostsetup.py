"""Interface and host settings that make veths behave like a lossless-fabric NIC port.

- Offloads off on every veth end (``ethtool -K tx rx tso gso gro off``): otherwise the kernel
  hands the switch 64 KB TSO/GRO super-frames instead of MTU-sized frames, and checksums are
  left for a NIC that does not exist.
- IPv6 off on fabric interfaces: the switches route IPv4 only, and router solicitations / MLD
  reports would be noise in counters and captures.
- Hosts: MTU from the description; static ARP for the gateway and every other host on the
  subnet, all resolving to the edge switch's router MAC (so the edge switch routes every frame,
  even between neighbours); ``net.ipv4.tcp_ecn=1`` so TCP negotiates ECN; the host's egress
  shaped to its link rate with tbf (the kernel has no netem, and a veth has no line rate).
- DSCP: hosts send DSCP 0 unless the sender sets it (IP_TOS); see
  ``fabriclab.controller.settings`` for the DSCP -> priority classes the switches apply.
"""
from __future__ import annotations

import subprocess

from fabriclab.topologies.description import FabricDescription, HostSpec

OFFLOADS = ("tx", "rx", "tso", "gso", "gro")


def offload_args(intf: str) -> list[str]:
    args = ["ethtool", "-K", intf]
    for feature in OFFLOADS:
        args += [feature, "off"]
    return args


def tune_switch_interface(intf: str, mtu: int) -> None:
    """Root-namespace end of a switch port."""
    subprocess.run(offload_args(intf), capture_output=True, check=False)
    subprocess.run(["ip", "link", "set", "dev", intf, "mtu", str(mtu)], capture_output=True, check=True)
    subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{intf}.disable_ipv6=1"], capture_output=True, check=False)


def tbf_command(intf: str, rate_bps: int, mtu: int) -> str:
    # burst: at least a few frames and one kernel tick's worth at 1000 Hz, so tbf reaches the rate
    burst = max(4 * (mtu + 14), rate_bps // 8 // 1000)
    return f"tc qdisc replace dev {intf} root tbf rate {rate_bps}bit burst {burst} latency 100ms"


def host_commands(host: HostSpec, description: FabricDescription, rate_bps: int) -> list[str]:
    """Shell commands run inside the host's namespace."""
    intf = host.intf
    neighbours = [h.ip for h in description.hosts_of(host.switch) if h.name != host.name]
    cmds = [
        " ".join(offload_args(intf)) + " 2>/dev/null",
        f"ip link set dev {intf} mtu {description.mtu}",
        "sysctl -qw net.ipv4.tcp_ecn=1 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
    ]
    cmds += [f"ip neigh replace {ip} lladdr {host.gateway_mac} dev {intf} nud permanent"
             for ip in [host.gateway_ip, *neighbours]]
    cmds.append(tbf_command(intf, rate_bps, description.mtu))
    return cmds
