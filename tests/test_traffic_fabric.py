"""End to end: a ring all-reduce over a 2-spine, 2-leaf, 2-hosts-per-leaf P4 fabric in Mininet."""
from __future__ import annotations

import pytest

from fabriclab.cli import main
from fabriclab.topologies.leafspine import leafspine
from fabriclab.topologies.network import FabricNetwork
from fabriclab.traffic.metrics import read_jsonl

pytestmark = [pytest.mark.root, pytest.mark.mininet]
RATE = 100_000_000


def test_ring_allreduce_on_leafspine(tmp_path):
    description = leafspine(spines=2, leaves=2, hosts_per_leaf=2, host_rate=RATE, prefix="tr",
                            grpc_port_base=22600)
    hosts = [h.name for h in description.hosts]
    size = 2_000_000
    with FabricNetwork(description, tmp_path / "run"):
        out = tmp_path / "allreduce.jsonl"
        code = main(["traffic", "allreduce", "--hosts", ",".join(hosts), "--size", str(size),
                     "--run-dir", str(tmp_path / "run"), "--json", str(out), "--timeout", "120s"])
    assert code == 0
    records = read_jsonl(out)
    flows = [r for r in records if r["kind"] == "flow"]
    (coll,) = [r for r in records if r["kind"] == "collective"]
    n = len(hosts)
    assert len(flows) == 2 * (n - 1) * n
    assert sum(f["bytes"] for f in flows) == 2 * (n - 1) * size
    # each rank pushes 2(n-1)/n·S through its 100 Mbit/s link, so busbw cannot exceed the link
    assert 0 < coll["busbw"] * 8 <= RATE * 1.02
    assert coll["time"] >= 2 * (n - 1) / n * size * 8 / RATE
