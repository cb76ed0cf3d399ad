"""``fabriclab switch-cli`` against a running P4Runtime server and runtime API (real compiled
pipeline and real traffic manager, no sockets), and the runtime API protocol itself."""
from __future__ import annotations

import io
import json
import socket

import pytest

from fabriclab.cli import main
from fabriclab.p4runtime.client import P4RuntimeClient
from fabriclab.switch.runtime_api import (RuntimeApiClient, RuntimeApiError, RuntimeApiServer,
                                          default_api_addr)
from fabriclab.switch.pfc import build_pfc_frame
from fabriclab.switch.switch_config import PfcwdConfig, SwitchConfig
from fabriclab.switch.traffic_manager import TrafficManager
from test_p4runtime_server import FakeSwitch, ipv4_frame, program_path, serve  # noqa: F401 (fixture)


def switch_with_tm() -> FakeSwitch:
    config = SwitchConfig(rate_bps=10**9, pfcwd=PfcwdConfig(detection_s=0.2, restoration_s=0.2, poll_s=0.1,
                                                            ports=frozenset({2})))
    tm = TrafficManager(config.resolve([1, 2]), transmit=lambda port, frame: None)
    ports = {n: {"ifname": f"veth{n}", "rx_frames": 0, "rx_bytes": 0, "tx_frames": 0, "tx_bytes": 0, "drops": {}}
             for n in (1, 2)}
    return FakeSwitch(tm=tm, ports=ports)


def offer(switch: FakeSwitch, frame: bytes, port: int, count: int) -> None:
    """Run ``count`` frames through ingress into the TM at one instant: they queue up."""
    with switch.lock:
        for _ in range(count):
            for job in switch.pipeline.ingress(frame, port, 0):
                job.priority = 3                      # the lossless priority of the default config
                switch.tm.enqueue(job, switch.tm.now)


@pytest.fixture
def lab(program_path):
    """(switch, grpc addr, api addr) with the test program installed."""
    switch = switch_with_tm()
    with serve(switch=switch) as (_, grpc_addr, _server):
        api = RuntimeApiServer(switch, "127.0.0.1:0")
        api.start()
        try:
            with P4RuntimeClient(grpc_addr, device_id=0, election_id=1).connect() as c:
                c.set_pipeline(str(program_path))
            yield switch, grpc_addr, f"127.0.0.1:{api.port}"
        finally:
            api.stop()


def cli(lab, *command: str) -> int:
    _, grpc_addr, api_addr = lab
    return main(["switch-cli", "--grpc-addr", grpc_addr, "--api-addr", api_addr, *command])


def test_runtime_api_protocol(lab):
    switch, _, api_addr = lab
    offer(switch, ipv4_frame("10.0.0.1"), 1, 0)
    with RuntimeApiClient(api_addr) as api:
        assert api.call("info") == {"program": "p4rt_test", "ports": [1, 2], "cpu_port": 255}
        assert set(api.call("stats")["tm"]["ports"]) == {"1", "2"}
        assert api.call("set_tm", alpha=0.5, queue_limit=20000)["alpha"] == 0.5
        assert (switch.tm.alpha, switch.tm.queue_limit) == (0.5, 20000)
        assert api.call("set_tm", queue_limit="dynamic")["queue_limit"] is None
        with pytest.raises(RuntimeApiError, match="alpha must be a positive number"):
            api.call("set_tm", alpha=-1)
        with pytest.raises(RuntimeApiError, match="unknown command"):
            api.call("reboot")
        with pytest.raises(RuntimeApiError, match="bad arguments"):
            api.call("stats", verbose=True)
        switch.receive(ipv4_frame("10.0.0.1"), 4)
        assert api.call("registers", name="last_seen") == {"MyIngress.last_seen": [0, 0, 0, 0, 1, 0, 0, 0]}
        assert api.call("counters")["MyIngress.port_counter"][4] == [1, len(ipv4_frame("10.0.0.1"))]
    with socket.create_connection(("127.0.0.1", int(api_addr.rsplit(":", 1)[1]))) as raw:
        raw.sendall(b"not json\n")
        answer = json.loads(raw.makefile().readline())
    assert answer["ok"] is False and answer["error"]
    assert default_api_addr("127.0.0.1:9561") == "127.0.0.1:10561"


def test_table_commands(lab, capsys):
    switch, _, _ = lab
    assert cli(lab, "table_add", "ipv4_lpm", "forward", "10.1.0.0/16", "=>", "2") == 0
    assert cli(lab, "table_add", "acl", "acl_drop", "6&&&0xff", "80->443", "*", "=>", "7") == 0
    assert cli(lab, "table_add", "mac_table", "forward_mac", "00:00:00:00:00:01", "=>", "3", "aa:bb:cc:dd:ee:ff") == 0
    entries = switch.pipeline.state.tables["MyIngress.acl"].entries()
    assert [(e.match[:2], e.priority) for e in entries] == [(((6, 0xFF), (80, 443)), 7)]
    capsys.readouterr()
    assert cli(lab, "table_dump", "ipv4_lpm") == 0
    dump = capsys.readouterr().out
    assert "0xa010000/16" in dump and "MyIngress.forward(port=0x2)" in dump and "default: MyIngress.drop()" in dump
    assert [p for p, _ in switch.receive(ipv4_frame("10.1.9.9"), 1)] == [2]   # ipv4_lpm runs after mac_table
    assert cli(lab, "table_set_default", "ipv4_lpm", "forward", "5") == 0
    assert switch.pipeline.state.tables["MyIngress.ipv4_lpm"].default.args == (5,)
    assert cli(lab, "table_delete", "ipv4_lpm", "10.1.0.0/16") == 0
    assert cli(lab, "table_delete", "acl", "6&&&0xff", "80->443", "*", "7") == 0
    assert switch.pipeline.state.tables["MyIngress.ipv4_lpm"].entries() == []
    assert switch.pipeline.state.tables["MyIngress.acl"].entries() == []
    capsys.readouterr()
    assert cli(lab, "table_num_entries", "mac_table") == 0
    assert capsys.readouterr().out.strip() == "1"


def test_profile_register_counter_meter_and_pre_commands(lab, capsys):
    switch, _, _ = lab
    state = switch.pipeline.state
    commands = "\n".join([
        "act_prof_create_member ecmp_selector 1 forward 11",
        "act_prof_create_member ecmp_selector 2 forward 12",
        "act_prof_create_group ecmp_selector 7 1",
        "act_prof_add_member_to_group ecmp_selector 2 7",
        "table_indirect_add_with_group ecmp 10.0.0.1 => 7",
        "register_write last_seen 3 77",
        "register_read last_seen 3",
        "counter_read port_counter 2",
        "meter_set_rates port_meter 1 0.5:1000 1:2000",
        "meter_get_rates port_meter 1",
        "mirroring_add 5 9",
        "mc_mgrp_create 3",
        "mc_node_create 0 1 2",
        "mc_node_create 4 6",
        "mc_node_associate 3 0",
        "mc_node_associate 3 1",
        "mc_dump",
    ]) + "\n"
    _, grpc_addr, api_addr = lab
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdin", io.StringIO(commands))
        assert main(["switch-cli", "--grpc-addr", grpc_addr, "--api-addr", api_addr]) == 0
    out = capsys.readouterr().out
    assert state.action_profiles["MyIngress.ecmp_selector"].groups == {7: [(1, 1), (2, 1)]}
    assert state.tables["MyIngress.ecmp"].entries()[0].group_id == 7
    assert state.registers["MyIngress.last_seen"].read(3) == 77 and "last_seen[3]= 77" in out
    assert "port_counter[2]= BmCounterValue(packets=0, bytes=0)" in out
    assert state.meters["MyIngress.port_meter"].get_config(1) == (500000, 1000, 1000000, 2000)
    assert "committed 0.5/µs burst 1000; peak 1/µs burst 2000" in out
    assert state.pre.clone_sessions[5].egress_port == 9
    assert state.pre.multicast_groups[3] == [(1, 0), (2, 0), (6, 4)]
    assert "mgrp 3: port 1 rid 0, port 2 rid 0, port 6 rid 4" in out
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdin", io.StringIO("register_reset last_seen\ncounter_reset port_counter\n"))
        assert main(["switch-cli", "--grpc-addr", grpc_addr, "--api-addr", api_addr]) == 0
    assert state.registers["MyIngress.last_seen"].read(3) == 0


def test_queue_pfc_and_port_views(lab, capsys):
    switch, _, _ = lab
    assert cli(lab, "table_add", "ipv4_lpm", "forward", "10.0.0.0/8", "=>", "2") == 0
    offer(switch, ipv4_frame("10.0.0.9"), 1, 5)        # 5 frames at once on a 1 Gb/s port: a queue
    capsys.readouterr()
    assert cli(lab, "queues", "2") == 0
    queues = capsys.readouterr().out
    row = next(line for line in queues.splitlines() if line.replace("│", " ").split()[:2] == ["2", "3"])
    size = len(ipv4_frame("10.0.0.9"))      # time has not advanced: all five are still queued
    assert row.replace("│", " ").split()[2:7] == ["5", str(5 * size), "5", str(5 * size), "5"]
    assert cli(lab, "pfc") == 0
    assert "PFC (lossless priorities 3)" in capsys.readouterr().out

def test_pfcwd_view(lab, capsys):
    switch, _, _ = lab
    assert cli(lab, "table_add", "ipv4_lpm", "forward", "10.0.0.0/8", "=>", "2") == 0
    with switch.lock:          # port 2's peer pauses priority 3 for good (33.5 ms at 1G, refreshed)
        for t in range(0, 400_000_000, 20_000_000):
            switch.tm.receive_control(2, build_pfc_frame(bytes(6), {3: 0xFFFF}), t)
            if t == 0:
                offer(switch, ipv4_frame("10.0.0.9"), 1, 4)
    capsys.readouterr()
    assert cli(lab, "pfcwd") == 0
    out = capsys.readouterr().out
    assert "action drop, detection 200 ms, restoration 200 ms" in out
    row = next(line.replace("│", " ").split() for line in out.splitlines() if "stormed" in line)
    assert row[:6] == ["2", "3", "stormed", "1", "0", "4"]       # port, prio, state, storms, restored, dropped
    assert cli(lab, "pfcwd", "1") == 0 and "stormed" not in capsys.readouterr().out   # port 1 is not watched
    assert cli(lab, "ports") == 0
    assert "veth1" in capsys.readouterr().out
    assert cli(lab, "tm_set", "alpha=0.25") == 0
    assert switch.tm.alpha == 0.25 and "alpha         0.25" in capsys.readouterr().out


def test_errors_are_one_line(lab, capsys):
    assert cli(lab, "table_add", "no_such_table", "forward", "1", "=>", "2") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fabriclab switch-cli: error: no table 'no_such_table'")
    assert cli(lab, "table_add", "acl", "acl_drop", "6&&&0xff", "1->2", "*") == 2   # no priority
    assert "end the command with a priority" in capsys.readouterr().err
    assert cli(lab, "table_add", "ipv4_lpm", "forward", "10.0.0.0/8", "=>", "2") == 0
    assert cli(lab, "table_add", "ipv4_lpm", "forward", "10.0.0.0/8", "=>", "2") == 2
    assert "ALREADY_EXISTS" in capsys.readouterr().err
    assert cli(lab, "frobnicate") == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err
    _, grpc_addr, _ = lab
    assert main(["switch-cli", "--grpc-addr", grpc_addr, "--api-addr", "127.0.0.1:1", "queues"]) == 2
    assert "cannot reach the switch runtime API" in capsys.readouterr().err
    with pytest.MonkeyPatch.context() as mp:      # a batch goes on after a bad line, then fails
        mp.setattr("sys.stdin", io.StringIO("register_read nope 0\nregister_write last_seen 1 5\n"))
        assert cli(lab) == 1
    assert lab[0].pipeline.state.registers["MyIngress.last_seen"].read(1) == 5
    assert capsys.readouterr().out.startswith("Error: no register 'nope'")
