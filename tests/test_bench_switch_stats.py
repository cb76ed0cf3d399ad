"""Drop counters read from python switches' ``--stats-file`` JSON (bench/switch_stats.py)."""
from __future__ import annotations

import json

from fabriclab.bench.switch_stats import drops_by_reason, drops_in


def _stats(port_drops: list[dict], tm_drops: dict, queue_drops: dict, switch_drops: dict) -> dict:
    return {"ports": {str(i + 1): {"ifname": f"x{i}", "drops": d} for i, d in enumerate(port_drops)},
            "drops": switch_drops,
            "tm": {"drops": tm_drops,
                   "ports": {"1": {"priorities": {"0": {"drops": queue_drops}, "3": {"drops": {}}}}}}}


def test_drops_are_summed_by_place_and_reason():
    stats = _stats([{"rx_socket_full": 5}, {"rx_socket_full": 2, "tx_buffer_full": 1}], {"no_such_port": 4},
                   {"queue_full": 3}, {"pipeline_error": 1})
    assert drops_by_reason(stats) == {"port:rx_socket_full": 7, "port:tx_buffer_full": 1,
                                      "switch:pipeline_error": 1, "tm:no_such_port": 4, "tm:queue_full": 3}


def test_a_switch_that_dropped_nothing_reports_nothing():
    assert drops_by_reason(_stats([{}, {}], {}, {}, {})) == {}


def test_drops_in_adds_switches(tmp_path):
    a, b = tmp_path / "l1.stats.json", tmp_path / "s1.stats.json"
    a.write_text(json.dumps(_stats([{"rx_socket_full": 5}], {}, {"queue_full": 1}, {})))
    b.write_text(json.dumps(_stats([{"rx_socket_full": 3}], {}, {}, {})))
    assert drops_in([a, b]) == {"port:rx_socket_full": 8, "tm:queue_full": 1}
