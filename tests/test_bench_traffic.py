"""``fabriclab bench traffic``: host packet rate and a ring all-reduce's busbw on the smallest
leaf-spine, with tiny sizes (nothing here asserts a speed)."""
from __future__ import annotations

import os

import pytest

from fabriclab.bench import traffic as bench

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")]


def test_host_pps_is_positive_and_consistent_with_the_bit_rate():
    figures = bench.measure_host_pps(seconds=0.3, tag=f"p{os.getpid() % 100000}")
    assert figures["host_pps"] > 0
    assert figures["host_mbps"] == pytest.approx(figures["host_pps"] * figures["frame_bytes"] * 8 / 1e6)


def test_transport_options_run_at_the_link_rate():
    options = bench.transport_options(50_000_000)
    assert options.rate == "50000000" and options.mtu == 1024


@pytest.mark.mininet
def test_allreduce_busbw_is_a_plausible_fraction_of_the_link(tmp_path):
    figures = bench.allreduce_busbw(tmp_path / "run", size=300_000, iterations=1,
                                    fabric={"spines": 1, "leaves": 2, "hosts_per_leaf": 1},
                                    prefix="flqt", grpc_port_base=21970)
    assert figures["allreduce_ranks"] == 2 and figures["link_mbps"] == 100
    assert figures["allreduce_busbw_mbps"] > 0
    # the hosts pace at the link rate: the bus bandwidth cannot exceed it
    assert 0 < figures["busbw_fraction_of_link"] <= 1.05
    assert figures["busbw_fraction_of_link"] == pytest.approx(
        figures["allreduce_busbw_mbps"] / figures["link_mbps"], rel=0.01)
    assert all(count > 0 for count in figures["switch_drops"].values())   # read from the switches' stats

