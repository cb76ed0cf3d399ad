"""Reading a running switch's counters and queues, for the CLI, tests and policies.

- ``switch_stats``: the switch's own view (ports, traffic manager queues, PFC) from its runtime
  API (JSON over TCP on the P4Runtime port + 1000, see switch/runtime_api.py); ``saved_stats``:
  the same document from the file the switch rewrites every second and at exit (``--stats-file``).
- ``p4_port_counter``: the data plane's per-port counters of fabric.p4 (``port_rx``,
  ``port_tx``) read over P4Runtime as a non-primary client, so the controller keeps its role.
"""
from __future__ import annotations

import json
from pathlib import Path

from fabriclab.errors import UserError
from fabriclab.switch.runtime_api import RuntimeApiClient, default_api_addr
from fabriclab.topologies.description import SwitchSpec


def switch_stats(sw: SwitchSpec, timeout: float = 5.0) -> dict:
    """``ports`` (rx/tx per port), ``drops`` and ``tm`` (per port and priority: queue depth,
    drops, PFC). JSON keys are strings: stats["ports"]["3"]."""
    with RuntimeApiClient(default_api_addr(sw.grpc_addr), timeout=timeout) as api:
        return api.call("stats")


def saved_stats(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        raise UserError(f"no readable switch stats file {path}") from None


def p4_port_counter(sw: SwitchSpec, counter: str = "FabricEgress.port_tx") -> dict[int, tuple[int, int]]:
    """``{port: (packets, bytes)}`` of an indirect per-port counter, for ports that counted."""
    from fabriclab.p4runtime.client import P4RuntimeClient

    with P4RuntimeClient(sw.grpc_addr, device_id=sw.device_id) as client:
        client.fetch_p4info()
        return {port: value for port, value in client.read_counter(counter).items() if value[0]}
