"""Helpers several test modules share (plain functions; fixtures live in conftest.py)."""
from __future__ import annotations

import time
from typing import Any, Callable


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy or ``timeout`` seconds pass; the
    last value it returned. Timeouts are generous: a slow machine passes, it only waits longer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    return condition()


def numbered_frame(seq: int) -> bytes:
    """A 64-byte Ethernet frame (EtherType 0x88b5, local experimental) carrying ``seq``."""
    return bytes.fromhex("020000000002" "020000000001" "88b5") + seq.to_bytes(4, "big") + bytes(46)
