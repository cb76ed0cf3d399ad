"""``fabriclab bench fabric``: how long a Mininet leaf-spine takes to come up and route, and
what each switch process costs in memory.

For each fabric (spines x leaves x hosts per leaf) the benchmark runs the bring-up of
``topologies/network.py`` (``FabricNetwork.start``: run directory, Mininet nodes and veths,
switch processes, the controller pushing fabric.p4 and installing every route, host setup)
and times it (``up_s``), then pings every ordered host pair (``pingall_s``; "clean" when
every pair answers), and reads each switch process's resident memory from /proc while the
fabric is up. The fabric is torn down even on Ctrl-C (FabricNetwork.stop).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

from fabriclab.errors import UserError

# name -> leafspine parameters; grpc ports apart from tests' (21xxx) and `fabriclab up` (9559)
FABRICS = {
    "leafspine_2x4x4": {"spines": 2, "leaves": 4, "hosts_per_leaf": 4},
    "leafspine_4x8x4": {"spines": 4, "leaves": 8, "hosts_per_leaf": 4},
}
GRPC_PORT_BASE = 24500


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MiB (VmRSS in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise UserError(f"process {pid} has no VmRSS (exited?)")


def switch_rss_mb(network) -> list[float]:
    return [rss_mb(sw.process.pid) for sw in network.net.switches if sw.process is not None]


def leafspine_network(params: dict, run_dir: Path, prefix: str, grpc_port_base: int,
                      progress: Callable[[str], None] | None = None):
    """A FabricNetwork (not started) for a leaf-spine with the default settings of ``fabriclab up``."""
    from fabriclab.topologies.leafspine import leafspine
    from fabriclab.topologies.network import FabricNetwork

    description = leafspine(**params, prefix=prefix, grpc_port_base=grpc_port_base)
    return FabricNetwork(description, run_dir, progress=progress)


def measure_fabric(params: dict, run_dir: Path, prefix: str = "flbf", grpc_port_base: int = GRPC_PORT_BASE,
                   progress: Callable[[str], None] | None = None) -> dict:
    """Bring the fabric up, ping all pairs, read memory, tear it down; the figures."""
    from fabriclab.topologies.checks import ping_all

    network = leafspine_network(params, run_dir, prefix, grpc_port_base, progress)
    started = time.monotonic()
    try:
        report = network.start()
        up_s = time.monotonic() - started
        if progress:
            progress("ping all pairs")
        hosts = [h.name for h in network.description.hosts]
        ping_started = time.monotonic()
        pairs, failed = ping_all(network.net, hosts)
        pingall_s = time.monotonic() - ping_started
        rss = switch_rss_mb(network)
    finally:
        if progress:
            progress("tearing down")
        network.stop()
    return {"up_s": round(up_s, 2), "pingall_s": round(pingall_s, 2), "pingall_clean": not failed,
            "unreachable_pairs": len(failed), "pairs": pairs, "routes": report.routes, "entries": report.entries,
            "switches": report.switches, "hosts": report.hosts,
            "rss_mb_per_switch": round(statistics.mean(rss), 1) if rss else None,
            "rss_mb_max": round(max(rss), 1) if rss else None,
            "steps_s": {step: round(seconds, 2) for step, seconds in report.steps}}


def run(args: argparse.Namespace) -> dict:
    import os

    from mininet.log import setLogLevel
    from rich.console import Console
    from rich.table import Table

    if os.geteuid() != 0:
        raise UserError("fabriclab bench fabric needs root (Mininet)")
    setLogLevel("warning")
    console = Console(stderr=True)
    results = {}
    with console.status("fabric benchmark") as spinner:
        for index, (name, params) in enumerate(FABRICS.items()):
            def progress(step: str, name=name) -> None:
                spinner.update(f"{name}: {step}")
                console.log(f"{name}: {step}")

            with tempfile.TemporaryDirectory(prefix=f"fabriclab-bench-{name}-") as tmp:
                results[name] = measure_fabric(params, Path(tmp) / "run", prefix=f"flbf{index}",
                                               grpc_port_base=GRPC_PORT_BASE + 100 * index, progress=progress)
    table = Table(title="Mininet leaf-spine bring-up (fabriclab switches, fabric.p4, os-ken controller)",
                  caption="up: to routes installed and hosts configured; ping: every ordered host pair; "
                          "RSS: mean per switch process")
    table.add_column("fabric", no_wrap=True)
    for column in ("switches", "hosts", "up s", "ping s", "clean", "routes", "RSS MiB"):
        table.add_column(column, justify="right")
    for name, r in results.items():
        table.add_row(name, str(r["switches"]), str(r["hosts"]), f"{r['up_s']:.1f}", f"{r['pingall_s']:.1f}",
                      "yes" if r["pingall_clean"] else f"NO ({r['unreachable_pairs']} pairs)", str(r["routes"]),
                      f"{r['rss_mb_per_switch']:.0f}" if r["rss_mb_per_switch"] is not None else "-")
    console.print(table)
    return results
