"""Agents, the schedule runner and ``fabriclab traffic`` end to end over a veth pair."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from fabriclab.cli import main
from fabriclab.traffic import collectives
from fabriclab.traffic.iperf import IperfServer, run_client
from fabriclab.traffic.metrics import read_jsonl
from fabriclab.traffic.netns import VethPair
from fabriclab.traffic.runner import HostHandle, ScheduleRunner

pytestmark = pytest.mark.root
RATE = 100e6


@pytest.fixture
def veth():
    with VethPair(f"r{os.getpid() % 100000}", rate=RATE) as pair:
        yield pair


def _handles(pair: VethPair) -> list[HostHandle]:
    return [HostHandle(h.netns, h.ip, h.ifname, h.netns_path) for h in pair.hosts]


def test_ring_allreduce_over_agents(veth):
    size = 1_000_000
    sched = collectives.build("allreduce", 2, size)
    with ScheduleRunner(sched, _handles(veth), ["--rate", "100M", "--dcqcn", "paper"], line_rate=RATE,
                        mtu=1024) as runner:
        result = runner.run(iterations=2, gap=0.01, timeout=60)
    assert len(result.collectives) == 2 and len(result.flows) == 2 * len(sched.flows)
    for c in result.collectives:
        # each rank sends 2(n-1)/n·S = S bytes through a 100 Mbit/s link: it cannot beat that
        assert c.time > size * 8 / RATE
        assert 0.25 * RATE < c.busbw * 8 <= RATE   # generous floor: 2 cores shared
    by_id = {}
    for f in result.flows:
        assert f.bytes == size // 2 and f.end > f.start and f.slowdown >= 1.0
        by_id[(f.iteration, f.flow)] = f
    # dependencies held: a step-1 flow started only after its step-0 input was delivered
    for it in range(2):
        assert by_id[(it, 2)].start >= by_id[(it, 1)].end
        assert by_id[(it, 3)].start >= by_id[(it, 0)].end
    stats = result.qp_stats[veth.hosts[1].netns]
    assert sum(q["bytes_received"] for q in stats) == 2 * size  # two iterations, S/2 per step, 2 steps


def test_loss_without_pfc_shows_as_retransmissions(veth):
    sched = collectives.build("incast", 2, 500_000)
    argv = ["--rate", "100M", "--dcqcn", "off", "--rto", "20ms", "--drop-probability", "0.02"]
    with ScheduleRunner(sched, _handles(veth), argv, line_rate=RATE, mtu=1024) as runner:
        result = runner.run(timeout=60)
    (flow,) = result.flows
    assert flow.bytes == 500_000 and flow.retransmissions > 0
    dropped = sum(q["dropped_by_test"] for q in result.qp_stats[veth.hosts[0].netns])
    assert dropped > 0 and flow.retransmissions >= dropped


def test_a_stuck_receiver_leaves_the_run_incomplete_and_paused(veth):
    """A timed command makes the receiver's NIC stuck: its pauses hold the sender, nothing more
    completes; with allow_incomplete the run ends at its timeout with what did complete."""
    sched = collectives.Schedule("flows", 2, 0, [collectives.Flow(0, 0, 1, 200_000, 0),
                                                 collectives.Flow(1, 0, 1, 3_000_000, 0, (), 0.6)])
    receiver = veth.hosts[1].netns
    with ScheduleRunner(sched, _handles(veth), ["--rate", "100M", "--dcqcn", "off"], line_rate=RATE, mtu=1024,
                        commands=[(0.5, receiver, {"op": "stuck"})]) as runner:
        result = runner.run(timeout=2.5, allow_incomplete=True)
    assert [f.flow for f in result.flows] == [0] and result.incomplete == 1
    nic = result.nic_stats[receiver]
    assert nic["stuck"] and nic["pfc_tx"] > 10 and nic["xoff_events"] == 1
    assert result.nic_stats[veth.hosts[0].netns]["pause_rx"] > 10             # the sender heard them
    with ScheduleRunner(sched, _handles(veth), ["--rate", "100M", "--dcqcn", "off"], line_rate=RATE, mtu=1024,
                        commands=[(0.5, receiver, {"op": "stuck"})]) as runner:
        with pytest.raises(TimeoutError):
            runner.run(timeout=1.5)


def _fake_fabric(tmp_path, pair: VethPair) -> str:
    """A run directory whose fabric.json names the veth hosts, plus stand-ins for their Mininet
    shells (processes in each namespace whose argv carries 'mininet:<host>')."""
    hosts = [dict(name=h.netns, ip=h.ip, prefix_len=24, mac=h.mac, gateway_ip="192.0.2.254",
                  gateway_mac="02:00:00:00:00:fe", switch="s1", switch_port=i + 1) for i, h in enumerate(pair.hosts)]
    links = [dict(node1=h["name"], port1=0, node2="s1", port2=h["switch_port"], rate_bps=int(RATE)) for h in hosts]
    doc = dict(topology="file", params={}, mtu=1500, hosts=hosts, links=links,
               switches=[dict(name="s1", device_id=1, role="leaf", grpc_port=50001, router_mac="02:00:00:00:00:fe")])
    (tmp_path / "fabric.json").write_text(json.dumps(doc))
    return str(tmp_path)


def test_cli_runs_a_collective_on_a_described_fabric(veth, tmp_path, capsys):
    run_dir = _fake_fabric(tmp_path, veth)
    shells = [subprocess.Popen(["ip", "netns", "exec", h.netns, sys.executable, "-c", "import time; time.sleep(120)",
                                f"mininet:{h.netns}"]) for h in veth.hosts]
    try:
        from fabriclab.errors import UserError
        from fabriclab.traffic.cli import find_mininet_host_pid

        deadline = time.monotonic() + 10
        for h in veth.hosts:  # the stand-in shells need a moment to exec into their command line
            while True:
                try:
                    find_mininet_host_pid(h.netns)
                    break
                except UserError:
                    assert time.monotonic() < deadline, f"shell for {h.netns} did not start"
                    time.sleep(0.05)
        out = tmp_path / "records.jsonl"
        names = ",".join(h.netns for h in veth.hosts)
        code = main(["traffic", "alltoall", "--hosts", names, "--size", "400KB", "--iterations", "2",
                     "--run-dir", run_dir, "--json", str(out)])
        assert code == 0
        records = read_jsonl(out)
        flows = [r for r in records if r["kind"] == "flow"]
        colls = [r for r in records if r["kind"] == "collective"]
        assert len(flows) == 4 and len(colls) == 2
        assert all(f["bytes"] == 200_000 and f["fct"] > 0 for f in flows)
        assert all(c["busbw"] == pytest.approx(c["algbw"] / 2) for c in colls)   # (n-1)/n, n = 2
        assert "alltoall" in capsys.readouterr().out
    finally:
        for shell in shells:
            shell.kill()
            shell.wait()


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["traffic", "allreduce", "--hosts", "h1,h2", "--run-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "fabric.json not found" in err and "Traceback" not in err
    assert main(["traffic", "allreduce", "--hosts", "h1", "--run-dir", str(tmp_path)]) == 2
    assert main(["traffic", "allscatter", "--hosts", "h1,h2", "--run-dir", str(tmp_path)]) == 2
    assert "unknown pattern" in capsys.readouterr().err


def test_iperf_tcp_between_namespaces(veth):
    a, b = veth.hosts
    with IperfServer(b.netns_path):
        result = run_client(a.netns_path, b.ip, seconds=1)
    assert result.received_bytes > 0
    assert 0.3 * RATE < result.bits_per_second <= 1.1 * RATE


@pytest.mark.parametrize("argv, message", [
    (["--dcqcn", "fastest"], "unknown DCQCN preset"),
    (["--rate", "fast"], "--rate"),
    (["--mtu", "20"], "--mtu"),
    (["--window", "0"], "--window"),
    (["--priority", "8"], "--priority"),
    (["--drop-probability", "1.5"], "--drop-probability"),
    (["--rto", "soon"], "--rto"),
])
def test_bad_transport_options(argv, message):
    import argparse

    from fabriclab.errors import UserError
    from fabriclab.traffic.agent import add_transport_arguments, transport_config

    parser = argparse.ArgumentParser()
    add_transport_arguments(parser)
    with pytest.raises(UserError, match=message):
        transport_config(parser.parse_args(argv))


def test_transport_options_scale_dcqcn():
    import argparse

    from fabriclab.traffic.agent import add_transport_arguments, transport_argv, transport_config

    parser = argparse.ArgumentParser()
    add_transport_arguments(parser)
    args = parser.parse_args(["--rate", "10M", "--dcqcn", "mellanox", "--priority", "4"])
    config = transport_config(args)
    assert config.line_rate == 10e6 and config.data_priority == 4
    assert config.dcqcn.rate_timer == pytest.approx(300e-6 * 10_000)   # 100G / 10M = scale 10000
    assert transport_config(parser.parse_args(transport_argv(args))) == config  # round trip to the agent


def test_cli_defaults_to_the_newest_run_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FABRICLAB_RUN_DIR", raising=False)
    assert main(["traffic", "allreduce", "--hosts", "h1,h2"]) == 2
    assert "fabriclab up" in capsys.readouterr().err
    for name in ("up-1", "up-2"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "fabric.json").write_text(json.dumps(
            dict(topology="file", params={}, switches=[], hosts=[], links=[])))
        os.utime(tmp_path / "runs" / name / "fabric.json", (1000 + len(name), 1000 + int(name[-1])))
    assert main(["traffic", "allreduce", "--hosts", "h1,h2"]) == 2
    err = capsys.readouterr().err
    assert "no host 'h1'" in err and "up-2" in err


def test_data_priority_comes_from_the_controller_settings(tmp_path):
    from fabriclab.controller.settings import ControllerSettings
    from fabriclab.traffic.cli import data_priority

    assert data_priority(tmp_path, 26) == 3                      # no controller.json: the defaults
    ControllerSettings(dscp_priority={26: 5, 48: 6}, default_priority=1).save(tmp_path / "controller.json")
    assert data_priority(tmp_path, 26) == 5 and data_priority(tmp_path, 10) == 1


def test_a_failing_agent_is_reported_with_its_reason(veth):
    hosts = _handles(veth)
    hosts[1].ifname = "flnosuch0"
    with pytest.raises(RuntimeError, match="no interface flnosuch0"):
        with ScheduleRunner(collectives.build("incast", 2, 1000), hosts, [], line_rate=RATE, mtu=1024):
            pass
