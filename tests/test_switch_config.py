"""switch.yaml: validation errors are one clear line; defaults follow the documented formulas."""
from __future__ import annotations

import pytest

from fabriclab.errors import UserError
from fabriclab.switch.switch_config import (SHARED_FRAMES_PER_PORT, config_from_dict, load_config,
                                            response_allowance_bytes)


def test_defaults_follow_the_formulas():
    cfg = config_from_dict({"rate": "1G", "delay": "10us", "mtu": 1500, "lossless": [3, 4],
                            "pfc": {"response_time": "0us"}})
    resolved = cfg.resolve([1, 2, 3])
    max_frame = 1522
    headroom = 2 * 1_000_000_000 * 10e-6 / 8 + 2 * max_frame + 2 * 64     # 802.3 31B: 2 quanta at 1G
    assert resolved.ports[2].headroom_bytes == int(headroom)
    shared = SHARED_FRAMES_PER_PORT * max_frame * 3
    assert resolved.shared_bytes == shared
    assert resolved.buffer_bytes == shared + 3 * 2 * resolved.ports[1].headroom_bytes
    assert resolved.xoff_bytes == int(0.125 * shared / 1.125)
    assert resolved.xon_bytes == resolved.xoff_bytes - 2 * max_frame


def test_headroom_scales_with_rate_and_delay_per_port():
    cfg = config_from_dict({"rate": "100M", "ports": {2: {"rate": "1G", "delay": "50us"}}})
    resolved = cfg.resolve([1, 2])
    slow, fast = resolved.ports[1], resolved.ports[2]
    assert (slow.rate_bps, slow.delay_ns) == (100_000_000, 0)
    assert (fast.rate_bps, fast.delay_ns) == (1_000_000_000, 50_000)
    # 2 x rate x delay + rate x response time (4 ms default) + 31B allowance grow with the port's rate
    assert fast.headroom_bytes - slow.headroom_bytes == int(2 * 1e9 * 50e-6 / 8 + 0.9e9 * 4e-3 / 8 + 64)


def test_response_allowance_is_the_real_speeds_and_grows_with_it():
    """802.3 Annex 31B: 60 quanta at 10G, 394 at 100G (the 10G figure at every speed was wrong)."""
    assert response_allowance_bytes(10e9) == 3840 and response_allowance_bytes(100e9) == 25_216
    assert response_allowance_bytes(25e9) == 118 * 64 and response_allowance_bytes(1e9) == 128
    base = {"rate": "20M", "pfc": {"response_time": "0us"}}
    at_10g = config_from_dict({**base, "scale": 500}).resolve([1]).ports[1].headroom_bytes
    at_100g = config_from_dict({**base, "scale": 5000}).resolve([1]).ports[1].headroom_bytes
    assert at_100g - at_10g == 25_216 - 3840
    with pytest.raises(UserError, match="scale"):
        config_from_dict({"scale": 0.5})


def test_explicit_buffer_leaves_headroom_out_of_the_shared_pool():
    resolved = config_from_dict({"buffer": "1MB", "pfc": {"headroom": "20KB"}, "lossless": [3]}).resolve([1, 2])
    assert resolved.shared_bytes == 1_000_000 - 2 * 20_000
    assert resolved.buffer_bytes == 1_000_000


def test_dynamic_xoff():
    resolved = config_from_dict({"pfc": {"xoff": "dynamic"}}).resolve([1])
    assert resolved.xoff_bytes is None and resolved.xon_bytes is None


@pytest.mark.parametrize("doc, message", [
    ({"rate": "fast"}, "rate"),
    ({"bogus": 1}, "unknown key 'bogus'"),
    ({"pfc": {"xof": 1}}, "unknown key 'xof' in pfc"),
    ({"lossless": [8]}, "priority 8"),
    ({"scheduler": "wfq"}, "scheduler"),
    ({"weights": [1, 2]}, "weights"),
    ({"weights": [0] * 8}, "at least one"),
    ({"alpha": -1}, "alpha"),
    ({"pfc": {"quanta": 70000}}, "quanta"),
    ({"pfc": {"xoff": "10KB", "xon": "20KB"}}, "below pfc.xoff"),
    ({"ports": {"one": {"rate": "1G"}}}, "port number"),
    ({"ports": {1: {"speed": "1G"}}}, "ports.1"),
    ({"buffer": "10KB"}, "shared buffer"),
])
def test_bad_configs_give_one_line(doc, message):
    with pytest.raises(UserError) as info:
        config_from_dict(doc).resolve([1, 2])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_load_config_file(tmp_path):
    path = tmp_path / "switch.yaml"
    path.write_text("rate: 10M\nlossless: [3]\npfc:\n  quanta: 1000\nports:\n  1: {delay: 5us}\n")
    cfg = load_config(path)
    assert cfg.rate_bps == 10_000_000 and cfg.pause_quanta == 1000
    assert cfg.resolve([1]).ports[1].delay_ns == 5000
    path.write_text("rate: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(path)
    with pytest.raises(UserError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_example_file_documents_the_defaults():
    from fabriclab import ROOT
    from fabriclab.switch.switch_config import SwitchConfig

    assert load_config(ROOT / "switch" / "switch.yaml") == SwitchConfig()
