"""``fabriclab run --target python|bmv2|both``: variants run per target and side by side, the
expectations checked on each target, and what BMv2 cannot do (PFC) reported as not supported.
The fabrics are replaced by a recorder here; tests/test_bmv2_target.py runs BMv2 itself where
it is installed."""
from __future__ import annotations

import json

import pytest

from fabriclab.cli import main
from fabriclab.scenarios import runner
from fabriclab.scenarios.report import write_report
from fabriclab.scenarios.schema import load_scenario
from fabriclab.topologies import bmv2


def _recorded(calls: list):
    """run_variant's stand-in: what each (variant, target) would have measured."""
    def run_variant(name, config, run_dir, progress, target="python", bmv2_log=False):
        calls.append((name, target, bmv2_log, config["switch"]["pfc"]))
        lossy = 0 if config["switch"]["pfc"] else (120 if target == "python" else 95)
        return {"drops": {"lossless": 0, "lossy": lossy}, "pfc_pause_tx": 50 if config["switch"]["pfc"] else 0,
                "retransmissions": 0 if config["switch"]["pfc"] else 300, "max_queue_pkts": 60,
                "timeseries": {"t": [0.0, 0.1], "queue_pkts": {"l2:3/q0": [1, 60]}}}
    return run_variant


def test_both_targets_run_side_by_side_and_pfc_is_not_supported_on_bmv2(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(runner, "run_variant", _recorded(calls))
    results = runner.run_scenario(load_scenario("incast"), tmp_path, targets=("python", "bmv2"))
    # the pfc variant never started on bmv2: nothing there could have held it
    assert calls == [("pfc", "python", False, True), ("no-pfc", "python", False, False),
                     ("no-pfc", "bmv2", False, False)]
    assert list(results["variants"]) == ["pfc@python", "pfc@bmv2", "no-pfc@python", "no-pfc@bmv2"]
    assert results["targets"] == ["python", "bmv2"]
    assert results["variants"]["pfc@bmv2"] == {"target": "bmv2", "not_supported": bmv2.NOT_SUPPORTED["pfc"]}
    assert results["variants"]["no-pfc@bmv2"]["target"] == "bmv2"
    by_target = {}
    for exp in results["expectations"]:
        by_target.setdefault(exp["target"], []).append(exp)
    assert [e["held"] for e in by_target["python"]] == [True] * 5
    # on bmv2 only the expectation about no-pfc alone could be checked
    bmv2_held = {e["text"]: e["held"] for e in by_target["bmv2"]}
    assert bmv2_held == {"drops.lossless[pfc] == 0": None, "pfc_pause_tx[pfc] > 0": None,
                         "drops.lossy[no-pfc] > 0": True, "retransmissions[no-pfc] > 0": True,
                         "retransmissions[pfc] == 0": None}
    assert all("not supported on bmv2" in e["detail"] for e in by_target["bmv2"] if e["held"] is None)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["variants"]["pfc@bmv2"]["not_supported"]

    page = write_report(results, tmp_path).read_text()
    header = page.index("<th>pfc@python</th><th>pfc@bmv2</th><th>no-pfc@python</th><th>no-pfc@bmv2</th>")
    assert header > 0 and "not supported on bmv2" in page


def test_a_failed_expectation_on_one_target_fails_it_there_only(tmp_path, monkeypatch):
    calls = []
    record = _recorded(calls)

    def lossless_bmv2(name, config, run_dir, progress, target="python", bmv2_log=False):
        metrics = record(name, config, run_dir, progress, target, bmv2_log)
        if target == "bmv2":
            metrics["retransmissions"] = 0      # BMv2 did not reproduce the loss
        return metrics

    monkeypatch.setattr(runner, "run_variant", lossless_bmv2)
    results = runner.run_scenario(load_scenario("incast"), tmp_path, ["no-pfc"], targets=("python", "bmv2"))
    held = {(e["target"], e["text"]): e["held"] for e in results["expectations"]}
    assert held[("python", "retransmissions[no-pfc] > 0")] is True
    assert held[("bmv2", "retransmissions[no-pfc] > 0")] is False


def test_one_target_keeps_plain_variant_names(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(runner, "run_variant", _recorded(calls))
    results = runner.run_scenario(load_scenario("incast"), tmp_path, ["no-pfc"], targets=("bmv2",),
                                  bmv2_log=True)
    assert list(results["variants"]) == ["no-pfc"] and results["targets"] == ["bmv2"]
    assert calls == [("no-pfc", "bmv2", True, False)]


def test_run_refuses_bmv2_where_it_is_not_installed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))       # no simple_switch_grpc, no p4c-bm2-ss
    rc = main(["run", "incast", "--target", "both", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "simple_switch_grpc" in err[0] and "make bmv2" in err[0]
    assert not (tmp_path / "run").exists()
