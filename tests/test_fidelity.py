"""The fidelity monitor's arithmetic and verdicts: histograms, budgets, a variant's status, and
what a degraded variant does to its expectations, the report and `fabriclab run`'s exit code."""
from __future__ import annotations

import json
import random

import pytest

from fabriclab.cli import main
from fabriclab.scenarios import runner as scenario_runner
from fabriclab.scenarios.expectations import parse_expectation
from fabriclab.scenarios.fidelity import NOT_VALID_EXIT, variant_fidelity, verdict
from fabriclab.scenarios.report import write_report
from fabriclab.scenarios.schema import load_scenario
from fabriclab.switch.fidelity import Histogram, SwitchMonitor, reaction_allowance_us


def test_histogram_percentiles_are_within_a_bucket_of_the_truth():
    h = Histogram()
    for v in range(1, 1001):
        h.add(v)
    s = h.summary()
    assert s["n"] == 1000
    assert 500 * 0.875 <= s["p50"] <= 500 and 990 * 0.875 <= s["p99"] <= 990 and 1000 * 0.875 <= s["max"] <= 1000
    small = Histogram()
    for v in (0, 3, 15, -2):
        small.add(v)
    assert small.counts == {0: 2, 3: 1, 15: 1}           # exact below 16; negatives count as on time
    assert Histogram().summary() == {"n": 0, "p50": None, "p99": None, "max": None}


def test_histogram_window_and_json_round_trip():
    h = Histogram()
    for _ in range(100):
        h.add(50)
    snapshot = Histogram.from_list(json.loads(json.dumps(h.as_list())))
    for _ in range(10):
        h.add(5000)
    window = h.minus(snapshot)
    assert window.summary()["n"] == 10 and window.percentile(50) > 4000


def test_switch_monitor_measures_lateness_against_the_schedule_and_states_its_budget():
    monitor = SwitchMonitor(20_000_000, max_frame=1522, response_time_s=1e-3, backlog_ns=200_000, scale=500)
    monitor.scheduled += [1_000_000, 1_500_000]
    monitor.departed(3_000_000)                            # 2000 and 1500 µs late
    monitor.loop_lag.add(70)
    stats = json.loads(json.dumps(monitor.stats()))
    assert Histogram.from_list(stats["lateness"]["histogram"]).summary()["max"] == 1920   # 2000 µs, in its bucket
    assert not monitor.scheduled
    # the PFC headroom beyond the cable (two 1522-byte frames + 3840 B, 31B at 10G, + 1 ms) at 20 Mbit/s
    allowance = (2 * 1522 + 3840) * 8 / 20e6 * 1e6 + 1000
    assert reaction_allowance_us(20e6, 1522, 1e-3, scale=500) == pytest.approx(allowance)
    assert stats["lateness"]["budget_us"] == pytest.approx(200 + allowance, abs=0.1)
    assert stats["loop_lag"]["budget_us"] == pytest.approx(allowance, abs=0.1)
    assert "20 Mbit/s" in stats["loop_lag"]["why"] and "3840 B" in stats["loop_lag"]["why"]


def test_a_turns_frames_are_counted_as_one_by_one():
    rng = random.Random(7)
    for _ in range(200):
        now = 10_000_000_000
        times = sorted(rng.randint(now - 50_000_000, now + 2_000) for _ in range(rng.randint(1, 300)))
        monitor = SwitchMonitor(20_000_000, max_frame=1522, response_time_s=1e-3, backlog_ns=200_000)
        monitor.scheduled += times
        monitor.departed(now)
        one_by_one = Histogram()
        for t in times:
            one_by_one.add((now - t) // 1000)
        assert monitor.lateness.counts == one_by_one.counts


def _switch_stats(lateness: list[int], lag: list[int]) -> dict:
    monitor = SwitchMonitor(20_000_000, max_frame=1522, response_time_s=1e-3, backlog_ns=200_000)
    for us in lateness:
        monitor.lateness.add(us)
    for us in lag:
        monitor.loop_lag.add(us)
    return {"fidelity": json.loads(json.dumps(monitor.stats()))}


def _pacing(errors: list[int], budget_us: float = 3400.0) -> dict:
    h = Histogram()
    for us in errors:
        h.add(us)
    return {"histogram": h.as_list(), "budget_us": budget_us, "why": "slack"}


def test_idle_figures_are_ok():
    verdict = variant_fidelity({}, {"s1": _switch_stats([250] * 500, [40] * 500)}, {"h1": _pacing([100] * 300)})
    assert verdict["status"] == "ok" and verdict["reasons"] == []
    assert verdict["lateness_p99_us"] == 240 and verdict["loop_lag_p99_us"] == 40 and verdict["pacing_p99_us"] == 96


@pytest.mark.parametrize("late, lag, pacing, culprit", [
    ([250] * 90 + [20_000] * 10, [40] * 100, [100] * 100, "s1 frame lateness"),
    ([250] * 100, [40] * 90 + [8_000] * 10, [100] * 100, "s1 loop lag"),
    ([250] * 100, [40] * 100, [100] * 90 + [30_000] * 10, "h1 pacing error"),
])
def test_any_figure_over_its_budget_degrades_the_variant(late, lag, pacing, culprit):
    verdict = variant_fidelity({}, {"s1": _switch_stats(late, lag)}, {"h1": _pacing(pacing)})
    assert verdict["status"] == "degraded"
    assert len(verdict["reasons"]) == 1 and verdict["reasons"][0].startswith(culprit + ": p99 ")
    assert not verdict["figures"][culprit]["ok"]


def test_only_the_traffic_window_counts():
    before = _switch_stats([30_000] * 100, [])             # a stall during bring-up
    after = _switch_stats([30_000] * 100 + [250] * 1000, [])
    assert variant_fidelity({"s1": before}, {"s1": after}, {})["status"] == "ok"
    assert variant_fidelity({}, {"s1": after}, {})["status"] == "degraded"


def test_not_supported_is_neither_held_nor_not_valid():
    assert verdict([{"held": True}, {"held": None, "target": "bmv2"}]) == "held"
    assert verdict([{"held": None, "valid": False}, {"held": None}]) == "not valid"
    assert verdict([{"held": None, "valid": False}, {"held": False}]) == "failed"


def test_a_switch_without_the_monitor_is_left_out():
    verdict = variant_fidelity({}, {"bmv2": {"ports": {}}}, {"h1": _pacing([100])})
    assert verdict["status"] == "ok" and list(verdict["figures"]) == ["h1 pacing error"]


def _fake_variant(name: str, status: str) -> dict:
    """What an incast variant would have measured, with the fidelity ``status``."""
    reasons = ["s1 frame lateness: p99 20480 µs > 3953.6 µs (...)"] if status == "degraded" else []
    pfc = name == "pfc"
    return {"drops": {"lossless": 0, "lossy": 0 if pfc else 5}, "pfc_pause_tx": 50 if pfc else 0,
            "retransmissions": 0 if pfc else 300, "timeseries": {"t": []},
            "fidelity": {"status": status, "reasons": reasons, "figures": {}, "lateness_p99_us": 20480,
                         "loop_lag_p99_us": 10, "pacing_p99_us": 10}}


@pytest.mark.parametrize("pfc, no_pfc, verdict_, exit_code", [
    ("ok", "ok", "held", 0),
    ("degraded", "ok", "not valid", NOT_VALID_EXIT),
    ("ok", "degraded", "not valid", NOT_VALID_EXIT),
])
def test_a_degraded_variant_makes_its_expectations_not_valid(monkeypatch, tmp_path, capsys, pfc, no_pfc, verdict_,
                                                             exit_code):
    fidelity = {"pfc": pfc, "no-pfc": no_pfc}
    monkeypatch.setattr(scenario_runner, "run_variant", lambda name, *a, **k: _fake_variant(name, fidelity[name]))
    results = scenario_runner.run_scenario(load_scenario("incast"), tmp_path)
    assert results["verdict"] == verdict_
    for e in results["expectations"]:
        degraded = any(fidelity[v] == "degraded" for v in parse_expectation(e["text"]).variants())
        assert (e["held"] is None) == (e.get("valid") is False) == degraded
        assert e["held"] is not False
        assert e["detail"].startswith("not valid: fidelity degraded in ") == degraded
    assert json.loads((tmp_path / "results.json").read_text())["verdict"] == verdict_
    report = write_report(results, tmp_path).read_text()
    assert f"verdict: <b>{verdict_}</b>" in report and ("⚠" in report) == (verdict_ == "not valid")
    assert ("every variant ok" in report) == (verdict_ == "held")

    monkeypatch.setattr(scenario_runner, "run_scenario", lambda *a, **k: results)
    assert main(["run", "incast", "--out", str(tmp_path / "cli")]) == exit_code
    out = capsys.readouterr().out
    assert ("NOT VALID" in out) == (verdict_ == "not valid") and ("fidelity degraded" in out) == (verdict_ != "held")
