"""The P4 switch node's command lines, target choice and the host/interface settings."""
from __future__ import annotations

import pytest

from fabriclab.errors import UserError
from fabriclab.topologies import bmv2, p4switch
from fabriclab.topologies.hostsetup import host_commands, offload_args, tbf_command
from fabriclab.topologies.leafspine import leafspine


def test_target_choice(monkeypatch):
    assert p4switch.choose_target(None) == "python"
    monkeypatch.setattr(bmv2.shutil, "which", lambda name: None)
    assert p4switch.choose_target("auto") == "python"
    with pytest.raises(UserError, match="simple_switch_grpc, p4c-bm2-ss and simple_switch_CLI not on PATH"):
        p4switch.choose_target("bmv2")
    monkeypatch.setattr(bmv2.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert p4switch.choose_target("auto") == "bmv2"
    with pytest.raises(UserError, match="unknown target 'tofino'"):
        p4switch.choose_target("tofino")


class _FakeSwitch(p4switch.P4Switch):
    """A P4Switch without Mininet's shell: only the command-line logic is under test."""

    def __init__(self, ports, **params):
        self.name = "l1"
        self.ports = ports
        vars(self).update(params)


class _Intf:
    def __init__(self, name):
        self.name = name


def _switch(target, **extra):
    ports = {_Intf("lo"): 0, _Intf("l1-eth2"): 2, _Intf("l1-eth1"): 1}
    params = dict(device_id=3, grpc_port=9562, run_dir=p4switch.Path("/r"), program=None, target=target,
                  config_file="/r/switches/l1.yaml", pcap=True, bmv2_json=None,
                  log_path=p4switch.Path("/r/switches/l1.log"), stats_path=p4switch.Path("/r/switches/l1.stats.json"),
                  pfc_log_path=p4switch.Path("/r/switches/l1.pfc.log"))
    params.update(extra)
    return _FakeSwitch(ports, **params)


def test_python_target_command():
    cmd = _switch("python").command()
    assert cmd[1:4] == ["-m", "fabriclab", "switch"]
    assert cmd[4:8] == ["-i", "1@l1-eth1", "-i", "2@l1-eth2"]      # by port number, control 'lo' left out
    for flag, value in (("--device-id", "3"), ("--grpc-addr", "127.0.0.1:9562"), ("--cpu-port", "255"),
                        ("--config", "/r/switches/l1.yaml"), ("--pcap", "/r/pcap/l1"),
                        ("--pfc-log", "/r/switches/l1.pfc.log")):
        assert cmd[cmd.index(flag) + 1] == value
    assert "--p4" not in cmd
    assert "--p4" in _switch("python", program="/p/fabric.p4").command()


def test_bmv2_target_command():
    cmd = _switch("bmv2", bmv2_json="/r/build/fabric.json", bmv2_log=False).command()
    assert cmd[0] == "simple_switch_grpc"
    assert cmd[cmd.index("-i") + 1] == "1@l1-eth1" and "--log-file" not in cmd
    assert cmd[cmd.index("--thrift-port") + 1] == "9093"
    assert cmd[cmd.index("--pcap") + 1] == "/r/pcap/l1"
    assert cmd[cmd.index("--") - 1] == "/r/build/fabric.json"
    assert cmd[cmd.index("--grpc-server-addr") + 1] == "127.0.0.1:9562"
    logged = _switch("bmv2", bmv2_json="/r/build/fabric.json", bmv2_log=True).command()
    assert logged[logged.index("--log-file") + 1] == "/r/switches/l1.bmv2.log"
    with pytest.raises(UserError, match="needs the program compiled"):
        _switch("bmv2").command()


def test_host_commands():
    d = leafspine(spines=1, leaves=2, hosts_per_leaf=3)
    host = d.host("h1_2")
    cmds = host_commands(host, d, 50_000_000)
    assert cmds[0].startswith(" ".join(offload_args("h1_2-eth0")))
    arp = [c for c in cmds if c.startswith("ip neigh")]
    # gateway and both neighbours, all to the leaf's router MAC
    assert sorted(c.split()[3] for c in arp) == ["10.0.1.1", "10.0.1.254", "10.0.1.3"]
    assert all(f"lladdr {d.switch('l1').router_mac}" in c for c in arp)
    assert any("net.ipv4.tcp_ecn=1" in c for c in cmds)
    assert cmds[-1] == tbf_command("h1_2-eth0", 50_000_000, 1500)
    assert "rate 50000000bit" in cmds[-1]
    assert offload_args("x") == ["ethtool", "-K", "x", "tx", "off", "rx", "off", "tso", "off", "gso", "off",
                                 "gro", "off"]
