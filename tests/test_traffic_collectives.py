"""Collective schedules (steps, bytes, dependencies), traces, and nccl-tests bus bandwidth."""
from __future__ import annotations

import json

import pytest

from fabriclab.errors import UserError
from fabriclab.traffic import collectives as c
from fabriclab.traffic.metrics import (CollectiveRecord, FlowRecord, busbw_factor, fct_slowdown, ideal_fct,
                                       percentile, read_jsonl, slowdown_summary, write_jsonl)

SIZES = [8_000_000, 1_000_003]  # one divisible, one not


@pytest.mark.parametrize("n", range(2, 17))
@pytest.mark.parametrize("size", SIZES)
def test_ring_allreduce_steps_and_bytes(n, size):
    s = c.ring_allreduce(n, size)
    assert s.steps == 2 * (n - 1)
    assert len(s.flows) == 2 * (n - 1) * n
    assert s.bytes_per_step() == [size] * (2 * (n - 1))     # every step moves S in total
    for f in s.flows:
        assert f.dst == (f.src + 1) % n                      # ring neighbour
        assert f.size in (size // n, size // n + 1)          # S/N per step
    by_id = {f.id: f for f in s.flows}
    for f in s.flows:
        if f.step == 0:
            assert f.deps == ()
        else:
            # waits for its input from the left neighbour's previous step, and its own previous send
            kinds = {(by_id[d].src, by_id[d].dst, by_id[d].step) for d in f.deps}
            assert kinds == {((f.src - 1) % n, f.src, f.step - 1), (f.src, f.dst, f.step - 1)}
    # each rank sends 2(N-1)/N of S overall
    sent = sum(f.size for f in s.flows if f.src == 0)
    assert abs(sent - 2 * (n - 1) * size / n) <= 2 * (n - 1)


@pytest.mark.parametrize("n", range(2, 17))
def test_ring_allgather_reducescatter(n):
    for s in (c.ring_allgather(n, 8_000_000), c.ring_reducescatter(n, 8_000_000)):
        assert s.steps == n - 1
        assert s.bytes_per_step() == [8_000_000] * (n - 1)


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_halving_doubling(n):
    size = 1 << 20
    s = c.halving_doubling_allreduce(n, size)
    rounds = n.bit_length() - 1
    assert s.steps == 2 * rounds
    expected = [size >> (k + 1) for k in range(rounds)]
    expected += list(reversed(expected))
    for step, nbytes in enumerate(expected):
        flows = [f for f in s.flows if f.step == step]
        assert len(flows) == n and all(f.size == nbytes for f in flows)
        assert all(f.dst == f.src ^ (n >> (step + 1) if step < rounds else n >> (2 * rounds - step))
                   for f in flows)
    assert sum(f.size for f in s.flows if f.src == 0) == 2 * size * (n - 1) // n


def test_halving_doubling_needs_power_of_two():
    with pytest.raises(UserError, match="power-of-two"):
        c.halving_doubling_allreduce(6, 1000)


@pytest.mark.parametrize("n", range(2, 17))
def test_alltoall_incast_background(n):
    a2a = c.alltoall(n, 1_600_000)
    assert len(a2a.flows) == n * (n - 1) and a2a.steps == 1
    assert {(f.src, f.dst) for f in a2a.flows} == {(i, j) for i in range(n) for j in range(n) if i != j}
    inc = c.incast(n, 1000)
    assert [(f.src, f.dst, f.size) for f in inc.flows] == [(r, 0, 1000) for r in range(1, n)]
    bg = c.background(n, 1000)
    assert sorted(f.src for f in bg.flows) == list(range(n)) and sorted(f.dst for f in bg.flows) == list(range(n))
    assert all(f.src != f.dst for f in bg.flows)


def test_bad_pattern_and_arguments():
    with pytest.raises(UserError, match="unknown pattern"):
        c.build("allscatter", 4, 100)
    with pytest.raises(UserError, match="at least 2"):
        c.build("allreduce", 1, 100)
    with pytest.raises(UserError, match="positive"):
        c.build("allreduce", 4, 0)


def test_busbw_factors_and_accounting():
    assert busbw_factor("allreduce", 8) == pytest.approx(2 * 7 / 8)
    assert busbw_factor("allreduce-hd", 4) == pytest.approx(1.5)
    for kind in ("allgather", "reducescatter", "alltoall"):
        assert busbw_factor(kind, 8) == pytest.approx(7 / 8)
    assert busbw_factor("incast", 8) == 7.0          # goodput into the sink
    assert busbw_factor("background", 8) == 1.0
    rec = CollectiveRecord("allreduce", 8, 8_000_000, 0, time=0.5)
    assert rec.algbw == pytest.approx(16e6)
    assert rec.busbw == pytest.approx(16e6 * 14 / 8)
    doc = rec.to_json()
    assert doc["busbw_mbps"] == pytest.approx(16e6 * 14 / 8 * 8 / 1e6)


def test_fct_slowdown_and_percentiles(tmp_path):
    alone = ideal_fct(1_000_000, 100e6, 1024)
    frames = -(-1_000_000 // 1024)
    assert alone == pytest.approx((1_000_000 + frames * (58 + 24)) * 8 / 100e6)
    assert fct_slowdown(2 * alone, 1_000_000, 100e6, 1024) == pytest.approx(2.0)
    assert fct_slowdown(alone / 2, 1_000_000, 100e6, 1024) == 1.0
    assert percentile([5, 1, 3, 2, 4], 50) == 3 and percentile(list(range(1, 101)), 99) == 99
    recs = [FlowRecord(i, "h1", "h2", size, 0.0, 1.0, slowdown=float(i)) for i, size in
            enumerate([100, 200, 5000, 6000], start=1)]
    summary = slowdown_summary(recs, [1000, 10000])
    assert summary == [{"size_upto": 1000, "flows": 2, "p50": 1.0, "p95": 2.0, "p99": 2.0},
                       {"size_upto": 10000, "flows": 2, "p50": 3.0, "p95": 4.0, "p99": 4.0}]
    out = tmp_path / "m.jsonl"
    write_jsonl(recs[:1] + [CollectiveRecord("alltoall", 4, 400, 0, 2.0)], out)
    lines = read_jsonl(out)
    assert lines[0]["kind"] == "flow" and lines[0]["fct"] == 1.0
    assert lines[1]["kind"] == "collective" and lines[1]["busbw"] == pytest.approx(200 * 3 / 4)


def _trace(tmp_path, doc) -> str:
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(path)


def test_trace_replay(tmp_path):
    path = _trace(tmp_path, {"name": "job", "size": "2MB", "phases": [
        {"flows": [{"id": "a", "src": 0, "dst": 1, "size": "1MB"}, {"id": "b", "src": 1, "dst": 2, "size": 1000}]},
        {"flows": [{"src": 2, "dst": 0, "size": 500}]},
        {"barrier": False, "flows": [{"src": 0, "dst": 2, "size": "1KiB", "after": ["a"]}]}]})
    s = c.load_trace(path)
    assert (s.pattern, s.ranks, s.size) == ("job", 3, 2_000_000)
    assert [(f.src, f.dst, f.size, f.step) for f in s.flows] == [(0, 1, 1_000_000, 0), (1, 2, 1000, 0),
                                                                  (2, 0, 500, 1), (0, 2, 1024, 2)]
    assert s.flows[2].deps == (0, 1) and s.flows[3].deps == (0,)


@pytest.mark.parametrize("doc, message", [
    ("{not json", "invalid JSON at line 1"),
    ({"phases": []}, "non-empty 'phases'"),
    ({"phases": [{"flows": [{"src": 0, "dst": 1}]}]}, "missing 'size'"),
    ({"phases": [{"flows": [{"src": 0, "dst": 0, "size": 1}]}]}, "same rank"),
    ({"phases": [{"flows": [{"src": 0, "dst": 1, "size": "lots"}]}]}, "expected a size"),
    ({"phases": [{"flows": [{"src": 0, "dst": 1, "size": 1, "after": ["x"]}]}]}, "unknown flow id 'x'"),
    ({"phases": [{"flows": [{"id": "a", "src": 0, "dst": 1, "size": 1, "after": ["b"]},
                            {"id": "b", "src": 1, "dst": 0, "size": 1, "after": ["a"]}]}]}, "cycle"),
    ({"ranks": 2, "phases": [{"flows": [{"src": 0, "dst": 5, "size": 1}]}]}, "covering every"),
])
def test_bad_traces(tmp_path, doc, message):
    with pytest.raises(UserError, match=message):
        c.load_trace(_trace(tmp_path, doc))
