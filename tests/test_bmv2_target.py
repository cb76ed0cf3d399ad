"""The bmv2 target (topologies/bmv2.py): simple_switch_grpc's command line, its queues set from
the link rates over simple_switch_CLI, and its counters in the sampler's shape. What needs BMv2
itself runs only where it is installed (the Vagrant VM with FABRICLAB_BMV2=1) and says so."""
from __future__ import annotations

import os
import stat

import pytest

from fabriclab.errors import UserError
from fabriclab.switch.switch_config import load_config
from fabriclab.topologies import bmv2

BMV2_MISSING = bmv2.missing_reason()


def _argv(**extra):
    args = dict(device_id=3, grpc_port=9562, interfaces={1: "l1-eth1", 2: "l1-eth2"}, json_path="/r/fabric.json")
    args.update(extra)
    return bmv2.command(**args)


def test_no_per_packet_log_unless_asked():
    quiet = _argv()
    assert not any(arg.startswith("--log") for arg in quiet)
    assert quiet[:3] == ["simple_switch_grpc", "--device-id", "3"]
    assert quiet[quiet.index("--thrift-port") + 1] == "9093"
    assert quiet[quiet.index("--") - 1] == "/r/fabric.json"
    target_args = quiet[quiet.index("--") + 1:]
    assert target_args == ["--grpc-server-addr", "127.0.0.1:9562", "--cpu-port", "255"]
    logged = _argv(log_file=bmv2.Path("/r/switches/l1.bmv2.log"))
    assert logged[logged.index("--log-file") + 1] == "/r/switches/l1.bmv2.log" and "--log-flush" in logged
    queues = _argv(priority_queues=True)
    assert queues[queues.index("--priority-queues") + 1] == "8"
    assert queues.index("--priority-queues") > queues.index("--")     # a simple_switch_grpc option


def _config(tmp_path, text: str):
    path = tmp_path / "l1.yaml"
    path.write_text(text)
    return path


def test_queues_follow_the_link_rate_and_the_python_targets_buffer(tmp_path):
    path = _config(tmp_path, "mtu: 1500\nalpha: 0.125\nports:\n  1: {rate: 20000000}\n  2: {rate: 10000000}\n")
    lines = bmv2.queue_commands(path, [1, 2], priority_queues=False)
    max_frame = load_config(path).max_frame       # an MTU-sized frame on the wire
    shared = 128 * max_frame * 2    # the python target's shared pool for two ports
    depth = int(0.125 / 1.125 * shared // max_frame)
    assert lines == [f"set_queue_rate {20_000_000 // (8 * max_frame)} 1", f"set_queue_depth {depth} 1",
                     f"set_queue_rate {10_000_000 // (8 * max_frame)} 2", f"set_queue_depth {depth} 2"]
    # eight priority queues: each gets the port's rate and depth
    per_priority = bmv2.queue_commands(path, [1, 2], priority_queues=True)
    assert len(per_priority) == 32 and per_priority[:2] == [f"set_queue_rate {20_000_000 // (8 * max_frame)} 1 0",
                                                            f"set_queue_depth {depth} 1 0"]
    static = _config(tmp_path, "mtu: 1500\nqueue_limit: 150KB\n")
    assert bmv2.queue_commands(static, [1], False)[1] == f"set_queue_depth {150_000 // max_frame} 1"


def _fake_cli(tmp_path, monkeypatch, answer: str):
    """A simple_switch_CLI on PATH that records its stdin and prints ``answer``."""
    script = tmp_path / "simple_switch_CLI"
    script.write_text(f"#!/bin/sh\ncat > {tmp_path}/stdin.txt\necho \"$@\" > {tmp_path}/argv.txt\n"
                      f"printf '%s\\n' '{answer}'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")


def test_cli_commands_reach_the_switchs_thrift_port(tmp_path, monkeypatch):
    _fake_cli(tmp_path, monkeypatch, "RuntimeCmd: ")
    bmv2.run_cli(9561, ["set_queue_rate 1651 1", "set_queue_depth 56 1"])
    assert (tmp_path / "argv.txt").read_text().split() == ["--thrift-port", "9092"]
    assert (tmp_path / "stdin.txt").read_text() == "set_queue_rate 1651 1\nset_queue_depth 56 1\n"


def test_a_command_bmv2_refuses_is_one_clear_error(tmp_path, monkeypatch):
    _fake_cli(tmp_path, monkeypatch, "Invalid port 9")
    with pytest.raises(UserError, match="Thrift port 9092: Invalid port 9"):
        bmv2.run_cli(9561, ["set_queue_rate 1651 9"])


def test_pfc_variants_are_not_supported():
    config = {"switch": {"pfc": True}}
    assert bmv2.not_supported(config) == bmv2.NOT_SUPPORTED["pfc"]
    assert bmv2.not_supported({"switch": {"pfc": False}}) is None


class _FakeP4Runtime:
    """read_counter/read_register answers of a fabric.p4 switch with ports 1 and 2."""

    class names:   # noqa: N801 - mirrors P4RuntimeClient.names
        @staticmethod
        def names(kind):
            return ["FabricEgress.ecn_marks", "FabricEgress.port_tx", "FabricIngress.port_rx"]

    counters = {"FabricEgress.port_tx": {1: (40, 40_000), 2: (500, 700_000)},
                "FabricIngress.port_rx": {1: (560, 750_000), 2: (42, 41_000)},
                "FabricIngress.ingress_drops": {2: (5, 0)},
                "FabricEgress.ecn_marks": {2: (7, 0)}}
    registers = {"port_queue_depth": {2 * 8 + 3: 12}, "FabricEgress.queue_depth_max": {2 * 8 + 3: 64, 1 * 8: 2}}

    def read_counter(self, name):
        return self.counters[name]

    def read_register(self, name):
        return self.registers[name]


def _stats_client():
    client = bmv2.StatsClient.__new__(bmv2.StatsClient)
    client.ports, client.grpc_port, client.client = [1, 2], 9561, _FakeP4Runtime()
    return client


def test_stats_have_the_samplers_shape():
    stats = _stats_client().call("stats")
    port2 = stats["tm"]["ports"]["2"]
    assert port2["tx_bytes"] == 700_000
    assert port2["priorities"]["3"] == {"qdepth": 12, "max_qdepth": 64, "drops": {}}
    assert stats["tm"]["ports"]["1"]["priorities"]["0"]["max_qdepth"] == 2
    # 602 in, 5 dropped by ingress, 540 out: 57 lost in the queues, all lossy on BMv2
    assert stats["queue_drops"] == 57
    assert _stats_client().call("counters", name="ecn_marks") == {"FabricEgress.ecn_marks": [[0, 0], [0, 0], [7, 0]]}
    with pytest.raises(UserError, match="'stats' and 'counters'"):
        _stats_client().call("registers")


@pytest.mark.skipif(BMV2_MISSING is not None, reason=f"BMv2 is not installed: {BMV2_MISSING}")
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, veths)")
def test_bmv2_forwards_fabric_p4_with_paced_queues_and_reports_counters(tmp_path):
    from fabriclab.bench import dataplane

    with dataplane.TwoHostTopology(f"b{os.getpid() % 10000}") as topo:
        fwd = dataplane.start_bmv2_switch(topo, tmp_path)
        try:
            step = dataplane.udp_step(topo, dataplane.ROUTER_MAC, rate=500, seconds=0.5)
            stats = bmv2.StatsClient(f"127.0.0.1:{fwd.grpc_port}", 1, [1, 2], fwd.grpc_port).call("stats")
        finally:
            fwd.stop()
    assert step["received"] > 0.9 * step["sent"] > 0
    assert stats["tm"]["ports"]["2"]["tx_bytes"] >= step["received"] * 1400


def test_scenario_sampler_reads_bmv2_switches_over_p4runtime(monkeypatch):
    from fabriclab.scenarios import runner
    from fabriclab.topologies.leafspine import leafspine

    stats = _stats_client().call("stats")
    made = []

    class Recorder:
        def __init__(self, grpc_addr, device_id, ports, grpc_port):
            made.append((grpc_addr, device_id, ports, grpc_port))

    monkeypatch.setattr(bmv2, "StatsClient", Recorder)
    description = leafspine(spines=1, leaves=2, hosts_per_leaf=1)
    sampler = runner.CounterSampler(description, 0.1, "bmv2")
    assert set(sampler.clients) == {sw.name for sw in description.switches}
    assert sorted(made) == sorted((sw.grpc_addr, sw.device_id, description.switch_ports(sw.name), sw.grpc_port)
                                  for sw in description.switches)
    # the switch's queue drops count as lossy drops in the variant's results
    assert runner.switch_metrics([(0.0, {"l1": stats})], lossless=set())["drops"] == {"lossless": 0, "lossy": 57}


def test_registers_fall_back_to_simple_switch_cli(tmp_path, monkeypatch):
    """Where the switch's P4Runtime server does not read a register, simple_switch_CLI does."""
    from fabriclab.p4runtime.client import P4RuntimeError

    class NoRegisters(_FakeP4Runtime):
        def read_register(self, name):
            raise P4RuntimeError("UNIMPLEMENTED", "register reads")

    _fake_cli(tmp_path, monkeypatch, "RuntimeCmd: port_queue_depth= 0, 3, 0, 7")
    client = _stats_client()
    client.client = NoRegisters()
    assert client.register("port_queue_depth") == {0: 0, 1: 3, 2: 0, 3: 7}
    assert (tmp_path / "stdin.txt").read_text() == "register_read port_queue_depth\n"
