"""Scenario files: a bad file fails with one line naming the file and the key."""
from __future__ import annotations

import textwrap

import pytest

from fabriclab.scenarios.expectations import parse_expectation, ExpectationError
from fabriclab.scenarios.schema import ScenarioError, load_scenario

GOOD = """
name: t
topology: {kind: leafspine, spines: 2, leaves: 2, hosts_per_leaf: 2}
rate: 100M
switch: {pfc: true, ecn: {enabled: true, kmin: 5KB, kmax: 50KB, pmax: 0.1}}
traffic:
  - {pattern: incast, hosts: [h1, h2, h3], dst: h4, size: 1MB}
variants:
  pfc: {}
  no-pfc: {switch: {pfc: false}}
expectations:
  - "drops.lossless[pfc] == 0"
  - "retransmissions[no-pfc] > 0"
"""


def write(tmp_path, text: str):
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_good_file_expands_variants_with_defaults(tmp_path):
    scenario = load_scenario(str(write(tmp_path, GOOD)))
    assert set(scenario.variants) == {"pfc", "no-pfc"}
    assert scenario.variants["pfc"]["switch"]["pfc"] is True
    assert scenario.variants["no-pfc"]["switch"]["pfc"] is False
    # the override touched only pfc: ECN settings stay merged in
    assert scenario.variants["no-pfc"]["switch"]["ecn"]["kmax"] == 50_000
    assert scenario.variants["pfc"]["rate"] == 100_000_000
    assert scenario.variants["pfc"]["transport"]["data_dscp"] == 26  # default
    assert [e.text for e in scenario.expectations][0] == "drops.lossless[pfc] == 0"


@pytest.mark.parametrize("change, message", [
    (("rate: 100M", "rate: fast"), "rate: expected a rate like '100M' or '1G', got 'fast'"),
    (("spines: 2", "spines: 0"), "topology.spines: must be 1..64, got 0"),
    (("pfc: true,", "pfc: yes-please,"), "switch.pfc: expected true or false, got 'yes-please'"),
    (("pmax: 0.1", "pmax: 3"), "switch.ecn.pmax: must be between 0 and 1, got 3"),
    (("kmin: 5KB", "kmin: 500KB"), "switch.ecn: kmin (500000) must not exceed kmax (50000)"),
    (("size: 1MB", "size: 1MB, colour: red"), "traffic[0].colour: unknown key"),
    (("pattern: incast", "pattern: broadcast-storm"), "traffic[0].pattern: expected one of"),
    (('"retransmissions[no-pfc] > 0"', '"retransmissions[nopfc] > 0"'),
     "expectations: 'retransmissions[nopfc] > 0' names unknown variant(s) nopfc"),
    (('"retransmissions[no-pfc] > 0"', '"retransmissions[no-pfc] > zero"'),
     "expectations[1]: cannot read 'zero' in 'retransmissions[no-pfc] > zero'"),
    (("name: t", "nam: t"), "nam: unknown key"),
    (("rate: 100M", "rate: 100M\ncontroller: {policy: magic}"), "controller: unknown policy 'magic'"),
    (("rate: 100M", "rate: 100M\ncontroller: {policy: wcmp, params: {colour: 1}}"), "controller: policy wcmp: bad"),
    (("rate: 100M", "rate: 100M\nevents: [{at: 1s, link: [l1], state: down}]"),
     "events[0].link: needs at least 2"),
    (("rate: 100M", "rate: 100M\nevents: [{at: 1s, link: [l1, s1], state: sideways}]"),
     "events[0].state: expected one of up, down"),
    (("rate: 100M", "rate: 100M\nevents: [{link: [l1, s1], state: down}]"), "events[0]: missing key 'at'"),
])
def test_bad_file_names_file_and_key(tmp_path, change, message):
    old, new = change
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    text = str(info.value)
    assert text.startswith(str(path)), text
    assert message in text, text
    assert "\n" not in text


def test_invalid_yaml_reports_line(tmp_path):
    path = write(tmp_path, "name: t\ntraffic: [\n")
    with pytest.raises(ScenarioError, match=r"s.yaml:\d+:\d+: not valid YAML"):
        load_scenario(str(path))


def test_unknown_builtin_name():
    with pytest.raises(ScenarioError, match="no built-in scenario named 'nope'"):
        load_scenario("nope")


def test_expectations_evaluate_against_results():
    results = {"a": {"busbw_mbps": 80.0, "drops": {"lossless": 0}}, "b": {"busbw_mbps": 50.0}}
    assert parse_expectation("busbw_mbps[a] > busbw_mbps[b]").evaluate(results) == (True, "80 > 50")
    assert parse_expectation("busbw_mbps[a] > 2 * busbw_mbps[b]").evaluate(results)[0] is False
    assert parse_expectation("drops.lossless[a] == 0").evaluate(results)[0] is True
    held, why = parse_expectation("drops.lossless[b] == 0").evaluate(results)
    assert not held and "no metric 'drops.lossless'" in why
    with pytest.raises(ExpectationError):
        parse_expectation("busbw_mbps[a] > busbw_mbps[b] > 1")


def test_unknown_host_or_capture_port_fails_before_anything_starts(tmp_path):
    import subprocess
    import sys

    for old, new, message in (("dst: h2_2", "dst: h9_9", "no host 'h9_9' in this topology"),
                              ("name: t", "name: t\nevents: [{at: 1s, link: [l1, l2], state: down}]",
                               "events[0]: l1 and l2 are not linked"),
                              ("name: t", "name: t\ncapture: [\"l7:1\"]", "capture: 'l7:1' is not SWITCH:PORT")):
        valid = GOOD.replace("h1, h2, h3], dst: h4", "h1_1, h1_2, h2_1], dst: h2_2")
        path = write(tmp_path, valid.replace(old, new))
        proc = subprocess.run([sys.executable, "-m", "fabriclab", "run", str(path), "--out", str(tmp_path / "o")],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert not (tmp_path / "o").exists()  # nothing was started or written
