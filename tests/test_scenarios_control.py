"""The adaptive-routing figures from flow records: elephant throughput against the ideal
(every header at line rate) and the mice's FCT percentiles; frames cut at down ports."""
from __future__ import annotations

import pytest

from fabriclab.scenarios.control import adaptive_figures, link_down_drops
from fabriclab.scenarios.runner import TrafficPlan
from fabriclab.traffic.metrics import FlowRecord, ideal_fct

RATE, MTU, SIZE = 20e6, 1024, 1_000_000


def plan() -> TrafficPlan:
    entries = {"elephant1": {"size": SIZE, "flows": [0]}, "elephant2": {"size": SIZE, "flows": [1]},
               **{f"mice{i}": {"size": 20_000, "flows": [2 + i]} for i in range(100)}}
    return TrafficPlan(hosts=[], schedule=None, entry_of_flow=[], entries=entries)


def test_elephants_against_the_ideal_and_mice_percentiles():
    alone = ideal_fct(SIZE, RATE, MTU)
    collided = [FlowRecord(0, "a", "b", SIZE, 0.0, 2 * alone), FlowRecord(1, "c", "d", SIZE, 0.0, 2 * alone)]
    mice = [FlowRecord(2 + i, "e", "f", 20_000, 1.0, 1.0 + (i + 1) / 1000) for i in range(100)]
    figures = adaptive_figures(plan(), collided + mice, RATE, MTU)
    assert figures["elephants_of_ideal"] == pytest.approx(0.5)
    assert figures["ideal_mbps"] == pytest.approx(2 * SIZE * 8 / alone / 1e6)
    assert figures["mice_fct_p99_ms"] == pytest.approx(99.0) and figures["mice_fct_p50_ms"] == pytest.approx(50.0)
    # one elephant late by half its time: the span, not the average, counts
    late = [FlowRecord(0, "a", "b", SIZE, 0.0, alone), FlowRecord(1, "c", "d", SIZE, 0.5 * alone, 1.5 * alone)]
    assert adaptive_figures(plan(), late, RATE, MTU)["elephants_of_ideal"] == pytest.approx(2 / 3)


def test_link_down_drops_read_the_last_sample():
    samples = [(0.0, {"l1": {"drops": {}}}), (1.0, {"l1": {"drops": {"port_down": 7}}, "s1": {"drops": {"port_down": 2}}})]
    assert link_down_drops(samples) == 9 and link_down_drops([]) is None
