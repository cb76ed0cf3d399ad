"""``fabriclab bench fabric`` on the smallest leaf-spine: the figures' shape and plausibility
(nothing here asserts a speed). The 2x4x4 and 4x8x4 fabrics are the benchmark's, not a test's."""
from __future__ import annotations

import os

import pytest

from fabriclab.bench import fabric as bench

pytestmark = [pytest.mark.root, pytest.mark.mininet,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for Mininet")]


def test_rss_of_this_process_is_read_from_proc():
    assert 1 < bench.rss_mb(os.getpid()) < 100_000


def test_measure_fabric_reports_bring_up_ping_routes_and_memory(tmp_path):
    # three switches in two worker processes; the other fabric tests run a process per switch
    figures = bench.measure_fabric({"spines": 1, "leaves": 2, "hosts_per_leaf": 1}, tmp_path / "run",
                                   prefix="flqf", grpc_port_base=21950, switch_workers=2)
    assert figures["switches"] == 3 and figures["hosts"] == 2
    assert figures["pairs"] == 2 and figures["pingall_clean"] and figures["unreachable_pairs"] == 0
    assert figures["routes"] > 0 and figures["entries"] >= figures["routes"]
    assert figures["up_s"] >= sum(figures["steps_s"].values()) * 0.99 > 0
    assert "starting switches" in figures["steps_s"]
    # a Python interpreter with the compiled pipeline and grpc: tens of MiB, not kilobytes or gigabytes
    assert 10 < figures["rss_mb_max"] < 2000
    assert figures["switch_processes"] == 2
    assert figures["rss_mb_per_switch"] * 3 == pytest.approx(figures["rss_mb_switches"], abs=0.2)
    assert figures["rss_mb_total"] == pytest.approx(figures["rss_mb_switches"] + figures["rss_mb_controller"], abs=0.2)
    assert figures["rss_mb_controller"] > 10


def test_median_of_runs():
    runs = [{"up_s": 3.0, "pingall_clean": True, "x": 1}, {"up_s": 1.0, "pingall_clean": False, "x": 5},
            {"up_s": 2.0, "pingall_clean": True, "x": 2}]
    merged = bench.median_of(runs)
    assert merged["up_s"] == 2.0 and merged["x"] == 2 and merged["runs"] == 3
    assert merged["up_s_each"] == [3.0, 1.0, 2.0] and merged["pingall_clean"] is False
