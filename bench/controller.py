"""``fabriclab bench controller``: what the control loop costs and how fast it repairs, on a
leaf-spine 2x4x4 (6 switches, 16 hosts) at the default poll interval.

* ``poll_ms``: one telemetry poll of all switches (P4Runtime counter read + runtime API stats
  per switch, switches side by side), as the controller measures it; median and max over the
  polls of ``POLL_WINDOW_S``.
* ``repair_ms``: ``link l1 s1 down`` (Mininet's, both interfaces) until every affected switch
  is rewritten: the switch's carrier event (detection) plus the controller's reprogramming,
  from the controller's repair records; median of ``REPAIRS`` cuts (the link comes back up
  between them). Goal: within two poll intervals plus 100 ms.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fabriclab.errors import UserError

FABRIC = {"spines": 2, "leaves": 4, "hosts_per_leaf": 4}
GRPC_PORT_BASE = 24700
REPAIRS = 5
POLL_WINDOW_S = 5.0


def _wait_repairs(url: str, count: int, timeout: float = 30.0) -> list[dict]:
    from fabriclab.controller.rest import rest_call

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        repairs = rest_call(url, "GET", "/fabric")[1].get("repairs", [])
        if len(repairs) >= count:
            return repairs
        time.sleep(0.05)
    raise UserError(f"the controller reported {count} repairs only partly within {timeout:.0f} s")


def measure(run_dir: Path, progress=lambda message: None) -> dict:
    from fabriclab.controller.rest import rest_call
    from fabriclab.controller.settings import ControllerSettings
    from fabriclab.topologies.leafspine import leafspine
    from fabriclab.topologies.network import FabricNetwork

    description = leafspine(**FABRIC, prefix="flbc", grpc_port_base=GRPC_PORT_BASE)
    settings = ControllerSettings(rest_port=0)
    network = FabricNetwork(description, run_dir, settings=settings, progress=progress)
    try:
        network.start()
        url = network.rest_url
        progress("measuring polls")
        polls = []
        deadline = time.monotonic() + POLL_WINDOW_S
        while time.monotonic() < deadline:
            value = rest_call(url, "GET", "/fabric")[1].get("poll_ms")
            if value is not None:
                polls.append(value)
            time.sleep(settings.poll_interval_s)
        repairs = []
        for i in range(REPAIRS):
            progress(f"link flbcl1 flbcs1 down ({i + 1}/{REPAIRS})")
            issued = time.time()
            network.net.configLinkStatus("flbcl1", "flbcs1", "down")
            repairs.append(_wait_repairs(url, 2 * i + 1)[-1])
            repairs[-1]["from_command_ms"] = (repairs[-1]["at"] - issued) * 1e3
            network.net.configLinkStatus("flbcl1", "flbcs1", "up")
            _wait_repairs(url, 2 * i + 2)
            time.sleep(2 * settings.poll_interval_s)
    finally:
        network.stop()
    if not polls:
        raise UserError("the controller reported no telemetry poll")
    repair = [r["repair_ms"] for r in repairs]
    return {"fabric": "leafspine_2x4x4", "poll_interval_ms": settings.poll_interval_s * 1e3,
            "poll_ms_median": statistics.median(polls), "poll_ms_max": max(polls), "polls_sampled": len(polls),
            "repair_ms_median": statistics.median(repair), "repair_ms": repair,
            "detected_ms_median": statistics.median(r["detected_ms"] for r in repairs),
            "reprogrammed_ms_median": statistics.median(r["reprogrammed_ms"] for r in repairs),
            # from Mininet's command (ifconfig on both ends, through the nodes' shells) to repaired
            "from_command_ms_median": statistics.median(r["from_command_ms"] for r in repairs),
            "switches_rewritten": len(repairs[0]["switches"]),
            "goal_ms": 2 * settings.poll_interval_s * 1e3 + 100}


def run(args: argparse.Namespace) -> dict:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="fabriclab-bench-controller-") as tmp:
        with console.status("bench controller") as status:
            figures = measure(Path(tmp) / "run", progress=status.update)
    table = Table(title="controller on leaf-spine 2x4x4")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("poll interval", f"{figures['poll_interval_ms']:.0f} ms")
    table.add_row("one poll of all 6 switches (median / max)",
                  f"{figures['poll_ms_median']:.1f} / {figures['poll_ms_max']:.1f} ms")
    table.add_row(f"repair after link down (median of {REPAIRS})", f"{figures['repair_ms_median']:.1f} ms")
    table.add_row("  detection (carrier event to controller)", f"{figures['detected_ms_median']:.1f} ms")
    table.add_row("  reprogramming", f"{figures['reprogrammed_ms_median']:.1f} ms")
    table.add_row("from `link down` issued to repaired (median)", f"{figures['from_command_ms_median']:.1f} ms")
    table.add_row("switches rewritten per repair", str(figures["switches_rewritten"]))
    table.add_row("goal: two poll intervals + 100 ms", f"{figures['goal_ms']:.0f} ms")
    console.print(table)
    return figures
