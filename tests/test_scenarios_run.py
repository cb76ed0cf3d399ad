"""Every built-in scenario runs end to end in Mininet and the effect it is known for holds;
the run writes results JSON with the documented keys, a report and non-empty plots."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fabriclab.scenarios.schema import builtin_scenarios

VARIANT_KEYS = {"drops", "pfc_pause_tx", "pfc_pause_rx", "ecn_marked", "cnp", "retransmissions", "cct_s",
                "busbw_mbps", "max_queue_pkts"}
PLOTS = ("variants", "queues", "pauses", "flow_rates", "throughput", "completion")


@pytest.mark.mininet
@pytest.mark.parametrize("scenario", [p.stem for p in builtin_scenarios()])
def test_builtin_scenario_holds_its_expectations(scenario, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "fabriclab", "run", scenario, "--out", str(out),
                           "--json", str(tmp_path / "results.json")],
                          capture_output=True, text=True, timeout=900)
    results = json.loads((tmp_path / "results.json").read_text())
    failed = [e for e in results["expectations"] if not e["held"]]
    assert proc.returncode == 0 and not failed, f"{failed}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert results["scenario"] == scenario
    assert results["expectations"], "a built-in scenario asserts its effect"
    for name, variant in results["variants"].items():
        assert VARIANT_KEYS <= set(variant), f"{name}: missing {VARIANT_KEYS - set(variant)}"
        assert set(variant["drops"]) == {"lossless", "lossy"}
        assert variant["error"] is None
    report = out / "report.html"
    assert report.stat().st_size > 10_000 and "data:image/png;base64" in report.read_text()
    for plot in PLOTS:
        png = out / f"{plot}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000, plot
