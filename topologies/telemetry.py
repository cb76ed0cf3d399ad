"""Reading a running switch's counters and queues through its runtime API (JSON over TCP on
the P4Runtime port + 1000, see target/runtime_api.py): for the CLI, tests and policies."""
from __future__ import annotations

from fabriclab.target.runtime_api import RuntimeApiClient, default_api_addr
from fabriclab.topologies.description import SwitchSpec


def switch_stats(sw: SwitchSpec, timeout: float = 5.0) -> dict:
    """The switch's ``stats``: ``ports`` (rx/tx per port), ``drops`` and ``tm`` (per port and
    priority: queue depth, drops, PFC). JSON keys are strings: ports["3"]."""
    with RuntimeApiClient(default_api_addr(sw.grpc_addr), timeout=timeout) as api:
        return api.call("stats")


def port_tx_frames(stats: dict) -> dict[int, int]:
    return {int(port): entry["tx_frames"] for port, entry in stats["ports"].items()}


def port_rx_frames(stats: dict) -> dict[int, int]:
    return {int(port): entry["rx_frames"] for port, entry in stats["ports"].items()}
