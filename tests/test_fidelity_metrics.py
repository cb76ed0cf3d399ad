"""Metrics and derived settings that must follow the definitions they cite: busbw over several
iterations, HPCC's base RTT in the ideal FCT, and time constants (cable delay, flowlet gap, ECN
profile, headroom allowance) that follow the time scale."""
from __future__ import annotations

import pytest

from fabriclab.scenarios.runner import (TrafficPlan, base_rtt_of, controller_settings, fabric_description,
                                        switch_config, traffic_metrics)
from fabriclab.scenarios.schema import DEFAULTS, deep_merge
from fabriclab.traffic.metrics import FlowRecord, fct_slowdown, ideal_fct


def _config(**overrides) -> dict:
    return deep_merge(DEFAULTS, {"rate": 20_000_000, **overrides})


def test_busbw_of_several_iterations_is_one_iterations_bytes_over_one_iterations_time():
    """Each iteration moves ``size`` bytes in ~1 s: busbw must not fall with the iteration count
    (one iteration's bytes over all iterations' time made it fall as 1/iterations)."""
    plan = TrafficPlan(["a", "b"], None, ["ar", "ar"],
                       {"ar": {"pattern": "allreduce", "size": 1_000_000, "ranks": 2, "flows": [0, 1]}})
    records = [FlowRecord(fid, "a", "b", 500_000, start=10.0 * it, end=10.0 * it + 1.0, iteration=it)
               for it in range(3) for fid in (0, 1)]
    one = traffic_metrics(plan, records[:2], 0.0)
    three = traffic_metrics(plan, records, 0.0)
    assert one["cct_s"] == three["cct_s"] == pytest.approx(1.0)
    assert three["busbw_mbps"] == pytest.approx(one["busbw_mbps"]) == pytest.approx(8.0)   # 1 MB/s x 2(n-1)/n
    assert three["flows"]["ar"]["iterations"] == 3


def test_ideal_fct_includes_the_base_rtt_as_hpcc_defines_slowdown():
    config = _config(topology={"kind": "leafspine", "spines": 1, "leaves": 2, "hosts_per_leaf": 1},
                     delay=1e-6, scale=1000)
    description = fabric_description(config)
    assert all(link.delay_s == pytest.approx(1e-3) for link in description.links)   # 1 µs real x 1000
    rtt = base_rtt_of(description, 1024)("h1_1", "h2_1")
    frame_time = (1024 + 58 + 24) * 8 / 20e6
    assert rtt == pytest.approx(4 * (2 * 1e-3 + frame_time))          # 4 links: host-leaf-spine-leaf-host
    alone = ideal_fct(100_000, 20e6, 1024, rtt)
    assert alone == pytest.approx(rtt + ideal_fct(100_000, 20e6, 1024))
    assert fct_slowdown(alone, 100_000, 20e6, 1024, rtt) == pytest.approx(1.0)
    assert fct_slowdown(alone, 100_000, 20e6, 1024) > 1.15            # without it: a false slowdown


def test_time_constants_follow_the_scale():
    config = _config(scale=5000, switch={"lb": "flowlet", "ecn": {"enabled": True}},
                     transport={"dcqcn": True, "preset": "mellanox"})
    settings = controller_settings(config)
    assert settings.flowlet_gap_s == pytest.approx(50e-6 * 5000)      # a real-fabric gap, scaled
    # the preset's own marking profile at the real rate (20 Mbit/s x 5000 = 100 Gbit/s)
    assert (settings.ecn.kmin_bytes, settings.ecn.kmax_bytes, settings.ecn.pmax) == (400_000, 1_600_000, 0.2)
    assert switch_config(config)["scale"] == 5000                     # headroom: 100G's 31B allowance
    assert controller_settings(_config(switch={"ecn": {"enabled": True}})).ecn.kmin_bytes == 5_000
