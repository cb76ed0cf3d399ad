"""bench/switch_loop.py: every frame preloaded into the receive ring leaves through the traffic
manager and the transmit ring, flat out, without a drop (nothing here asserts a speed)."""
from __future__ import annotations

import pytest

from fabriclab.bench.switch_loop import run_rounds

pytestmark = pytest.mark.root


def test_every_preloaded_frame_is_forwarded():
    result = run_rounds(frames=800, rounds=2, size=1400, program=None, profile=False)
    assert result["port1_rx"] == result["port2_tx"] == 1600
    assert result["drops"] == {}
    assert result["best_cpu_us_per_frame"] > 0
