"""Scenario keys of the PFC pathologies (host NICs, the switches' watchdog, runs allowed to end
incomplete) and the metrics that show them; the scenarios themselves run end to end in
test_scenarios_run.py (pfc-deadlock, pfc-storm, slow-receiver)."""
from __future__ import annotations

import textwrap

import pytest

from fabriclab.errors import UserError
from fabriclab.scenarios.runner import (fabric_description, frozen_seconds, host_options, switch_config,
                                        switch_overrides, traffic_plan, transport_argv)
from fabriclab.scenarios.schema import ScenarioError, load_scenario

BASE = """
name: t
topology: {kind: leafspine, spines: 1, leaves: 2, hosts_per_leaf: 2}
rate: 20M
traffic:
  - {name: a, pattern: flow, src: h2_1, dst: h1_1, size: 1MB}
"""


def scenario(tmp_path, extra: str):
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(BASE) + textwrap.dedent(extra))
    return load_scenario(str(path))


def variant(tmp_path, extra: str) -> dict:
    return next(iter(scenario(tmp_path, extra).variants.values()))


def test_hosts_become_agent_options_and_timed_commands(tmp_path):
    config = variant(tmp_path, """
        transport: {host_pfc: false, rx_buffer: 64KB}
        hosts:
          h1_1: {slow_receiver: 5M}
          h2_1: {stuck_nic: {start: 0.5s, duration: 2s}}
        """)
    plan = traffic_plan(config, fabric_description(config))
    argv, commands = host_options(config, plan)
    assert argv == {"h1_1": ["--slow-receiver", "5000000"]}
    assert commands == [(0.5, "h2_1", {"op": "stuck", "seconds": 2.0})]
    words = transport_argv(config)
    assert words[words.index("--rx-buffer") + 1] == "64000" and "--no-host-pfc" in words


def test_a_host_outside_the_traffic_cannot_be_given_nic_settings(tmp_path):
    config = variant(tmp_path, "hosts: {h1_2: {slow_receiver: 5M}}\n")
    with pytest.raises(UserError, match="hosts.h1_2: not a host that takes part"):
        host_options(config, traffic_plan(config, fabric_description(config)))


def test_pfcwd_on_all_ports_goes_to_every_switch(tmp_path):
    config = variant(tmp_path, "switch: {pfcwd: {enabled: true, action: forward, detection_time: 300ms}}\n")
    wd = switch_config(config)["pfcwd"]
    assert wd["action"] == "forward" and wd["ports"] == "all" and wd["detection_time"] == "300000us"
    assert switch_overrides(config, fabric_description(config)) == {}


def test_pfcwd_on_chosen_ports_only_configures_those_switches(tmp_path):
    config = variant(tmp_path, "switch: {pfcwd: {enabled: true, ports: ['l1:1', 'l1:3', s1]}}\n")
    assert "pfcwd" not in switch_config(config)
    overrides = switch_overrides(config, fabric_description(config))
    assert overrides["l1"]["pfcwd"]["ports"] == [1, 3] and overrides["s1"]["pfcwd"]["ports"] == "all"
    assert "l2" not in overrides
    config = variant(tmp_path, "switch: {pfcwd: {enabled: true, ports: ['l1:9']}}\n")
    with pytest.raises(UserError, match="'l1:9' is not SWITCH or SWITCH:PORT"):
        switch_overrides(config, fabric_description(config))


@pytest.mark.parametrize("extra, message", [
    ("hosts: {h1_1: {slow_receiver: fast}}\n", "hosts: h1_1.slow_receiver"),
    ("hosts: {h1_1: {stuck: true}}\n", "hosts: h1_1.stuck: unknown key"),
    ("hosts: [h1_1]\n", "hosts: expected a mapping"),
    ("switch: {pfcwd: {action: alert}}\n", "switch.pfcwd.action"),
    ("switch: {pfcwd: {enabled: true, poll_interval: 1s}}\n", "poll_interval must not exceed"),
    ("allow_incomplete: sometimes\n", "allow_incomplete"),
    ("transport: {host_pfc: 1}\n", "transport.host_pfc"),
])
def test_bad_keys_fail_with_one_line(tmp_path, extra, message):
    with pytest.raises(ScenarioError, match=message):
        scenario(tmp_path, extra)


def test_a_ring_takes_only_its_own_parameters(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(BASE.replace("{kind: leafspine, spines: 1, leaves: 2, hosts_per_leaf: 2}",
                                 "{kind: ring, switches: 5, hosts_per_switch: 1}").replace("h2_1", "h3_1"))
    config = next(iter(load_scenario(str(path)).variants.values()))
    assert [s.name for s in fabric_description(config).switches] == ["r1", "r2", "r3", "r4", "r5"]


def sample(dequeued: int, qdepth: int, paused: bool) -> dict:
    queue = {"dequeued": dequeued, "qdepth": qdepth, "paused": paused}
    return {"sw": {"tm": {"ports": {"1": {"priorities": {"3": queue, "0": {"dequeued": dequeued}}}}}}}


def test_frozen_is_the_longest_span_without_a_lossless_dequeue_while_paused():
    samples = [(0.0, sample(0, 0, False)), (1.0, sample(10, 5, True)), (2.0, sample(10, 5, True)),
               (3.5, sample(10, 5, True)), (4.0, sample(11, 5, True)), (5.0, sample(11, 5, True)),
               (6.0, sample(11, 0, False)), (7.0, sample(11, 0, False))]
    assert frozen_seconds(samples, {3}) == 2.5      # 1.0 -> 3.5; idle and unpaused does not count
    assert frozen_seconds(samples, set()) == 0.0
