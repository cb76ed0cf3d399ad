"""Fabrics brought up in Mininet with python P4 switches, fabric.p4 and the os-ken controller.

Node names carry a per-test prefix and every fabric its own P4Runtime port range, so these
tests do not collide with other fabrics on the machine. The autouse leftovers fixture
(conftest.py) checks that no process, veth or namespace survives a test.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from fabriclab.controller.settings import ControllerSettings
from fabriclab.topologies.checks import far_pair, iperf, ping_all
from fabriclab.topologies.fattree import fattree
from fabriclab.topologies.leafspine import leafspine
from fabriclab.topologies.network import FabricNetwork
from fabriclab.topologies.telemetry import p4_port_counter

pytestmark = [
    pytest.mark.mininet, pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for Mininet"),
]


def _all_reachable(network: FabricNetwork) -> None:
    pairs, failed = ping_all(network.net, [h.name for h in network.description.hosts])
    assert pairs == len(network.description.hosts) * (len(network.description.hosts) - 1)
    assert failed == []


def test_leafspine_2x2x2_pingall_and_cli_commands(tmp_path, caplog):
    from mininet.log import setLogLevel

    from fabriclab.topologies.fabric_cli import FabricCLI

    d = leafspine(spines=2, leaves=2, hosts_per_leaf=2, prefix="ta", grpc_port_base=21100)
    with FabricNetwork(d, tmp_path / "run") as network:
        assert network.report.routes == 10      # 2 leaves x (2 /32 + 1 remote /24) + 2 spines x 2 /24
        _all_reachable(network)
        victim = network.net.get(d.hosts[0].name)      # answers no echo request: pingall names its pairs
        victim.cmd("sysctl -qw net.ipv4.icmp_echo_ignore_all=1")
        try:
            names = [h.name for h in d.hosts]
            _, failed = ping_all(network.net, names, timeout_s=1)
        finally:
            victim.cmd("sysctl -qw net.ipv4.icmp_echo_ignore_all=0")
        assert sorted(failed) == sorted((src, victim.name) for src in names if src != victim.name)
        assert network.controller_status()["state"] == "ready"
        script = tmp_path / "cli.txt"
        script.write_text("stats tal1\nqueues\npfc tas1\npfcwd tal2\nstats nosuch\n")
        setLogLevel("output")
        with open(script) as commands:
            FabricCLI(network.net, network=network, stdin=commands)
        out = caplog.text    # Mininet's output() goes through logging
    assert "tal1 (device 1)" in out and "tal1-eth3" in out and "-> tas1" in out
    assert "tas1: shared buffer" in out and "tas2: shared buffer" in out
    assert "no switch named nosuch" in out
    assert "tal2: PFC watchdog off" in out
    assert (tmp_path / "run" / "fabric.json").exists()


@pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 not installed")
def test_leafspine_2x4x2_pingall_and_iperf_across_spines(tmp_path):
    d = leafspine(spines=2, leaves=4, hosts_per_leaf=2, prefix="tb", grpc_port_base=21200)
    with FabricNetwork(d, tmp_path / "run") as network:
        _all_reachable(network)
        src, dst = far_pair(d)
        assert d.host(src).switch != d.host(dst).switch
        result = iperf(network.net, src, dst, seconds=1.5)
        assert result.error is None
        assert 1e6 < result.bits_per_second <= 100e6 * 1.05     # flows, and no faster than the 100M links
        spines_tx = sum(packets for s in ("tbs1", "tbs2") for packets, _ in p4_port_counter(d.switch(s)).values())
        assert spines_tx > 1000                                   # the flow crossed a spine


def test_fattree_k4_pingall(tmp_path):
    d = fattree(k=4, hosts_per_edge=1, prefix="tc", grpc_port_base=21300)
    with FabricNetwork(d, tmp_path / "run") as network:
        assert len(network.net.switches) == 20
        _all_reachable(network)


def test_yaml_topology_through_fabriclab_up_check(tmp_path):
    topo = tmp_path / "triangle.yaml"
    topo.write_text("""
rate: 50M
switches:
  - {name: x1, hosts: 2}
  - {name: x2, hosts: 1}
  - {name: x3, role: spine}
links:
  - [x1, x3]
  - [x2, x3]
  - {nodes: [x1, x2], count: 2}
""")
    run_dir = tmp_path / "run"
    out = subprocess.run([sys.executable, "-m", "fabriclab", "up", "--topo-file", str(topo), "--prefix", "td",
                          "--grpc-port-base", "21400", "--run-dir", str(run_dir), "--lb", "flowlet", "--check",
                          "--rest-port", "0"],    # not 8080: whatever else runs on the machine
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "6/6 reachable" in out.stderr and "Mbit/s" in out.stderr
    # shortest paths: x1 <-> x2 over the two direct links (one group), never via x3
    switches = json.loads((run_dir / "controller-status.json").read_text())["switches"]
    assert switches["tdx1"]["groups"] == 1 and switches["tdx3"]["groups"] == 0
    assert json.loads((run_dir / "controller.json").read_text())["lb"] == "flowlet"


def _single_flow_spine_split(tmp_path, lb: str, prefix: str, port_base: int) -> list[int]:
    """Send one ping flow h1_1 -> h2_1 and return the frames leaf 1 sent to each spine."""
    d = leafspine(spines=2, leaves=2, hosts_per_leaf=1, prefix=prefix, grpc_port_base=port_base)
    with FabricNetwork(d, tmp_path / "run", settings=ControllerSettings(lb=lb)) as network:
        leaf = d.switch(f"{prefix}l1")
        uplinks = [port for port, (peer, _) in d.switch_ports(leaf.name).items() if d.is_switch(peer)]
        before = p4_port_counter(leaf)
        out = network.net.get(f"{prefix}h1_1").cmd(f"ping -q -c 200 -i 0.005 {d.host(f'{prefix}h2_1').ip}")
        assert " 0% packet loss" in out, out
        after = p4_port_counter(leaf)
        return [after.get(p, (0, 0))[0] - before.get(p, (0, 0))[0] for p in uplinks]


def test_spray_spreads_one_flow_over_both_spines(tmp_path):
    split = _single_flow_spine_split(tmp_path, "spray", "te", 21500)
    assert sum(split) >= 200
    assert min(split) >= 0.3 * sum(split), split       # random per packet: ~50/50


def test_ecmp_keeps_one_flow_on_one_spine(tmp_path):
    split = _single_flow_spine_split(tmp_path, "ecmp", "tf", 21600)
    assert sum(split) >= 200
    assert min(split) == 0, split                       # one 5-tuple, one path


def test_adaptive_mode_with_ecn_reaches_everything(tmp_path):
    from fabriclab.controller.settings import EcnSettings

    d = leafspine(spines=2, leaves=2, hosts_per_leaf=1, prefix="tk", grpc_port_base=22000)
    settings = ControllerSettings(lb="adaptive", ecn=EcnSettings(enabled=True))
    with FabricNetwork(d, tmp_path / "run", settings=settings) as network:
        _all_reachable(network)
        assert network.report.entries > 0
