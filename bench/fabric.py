"""``fabriclab bench fabric``: how long a Mininet fabric takes to come up and route, and what
its switches cost in memory.

For each fabric (leaf-spine spines x leaves x hosts per leaf, and the k=8 fat-tree: 80
switches, 128 hosts) the benchmark runs the bring-up of ``topologies/network.py``
(``FabricNetwork.start``: run directory, Mininet nodes and veths, switch worker processes, the
controller pushing fabric.p4 and installing every route, host setup) and times it (``up_s``),
then pings every ordered host pair (``pingall_s``; "clean" when every pair answers), and reads
the resident memory of the fabric's processes from /proc while it is up: the switch processes
in total, that amortised per switch, the largest switch process, and the controller. The
fabric is torn down even on Ctrl-C (FabricNetwork.stop). ``--runs N`` repeats each fabric and
reports the median of every figure (and the range of the bring-up time).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

from fabriclab.errors import UserError
from fabriclab.topologies.network import rss_mb

# name -> (topology, parameters); grpc ports apart from tests' (21xxx) and `fabriclab up` (9559)
FABRICS = {
    "leafspine_2x4x4": ("leafspine", {"spines": 2, "leaves": 4, "hosts_per_leaf": 4}),
    "leafspine_4x8x4": ("leafspine", {"spines": 4, "leaves": 8, "hosts_per_leaf": 4}),
    "fattree_k8": ("fattree", {"k": 8}),
}
GRPC_PORT_BASE = 24500


def fabric_network(params: dict, run_dir: Path, prefix: str, grpc_port_base: int,
                      progress: Callable[[str], None] | None = None, topo: str = "leafspine",
                      switch_workers: int | None = None):
    """A FabricNetwork (not started) with the default settings of ``fabriclab up`` (switch
    workers: one per core unless given)."""
    from fabriclab.topologies.fattree import fattree
    from fabriclab.topologies.leafspine import leafspine
    from fabriclab.topologies.network import FabricNetwork

    from fabriclab.topologies.network import default_switch_workers

    build = {"leafspine": leafspine, "fattree": fattree}[topo]
    description = build(**params, prefix=prefix, grpc_port_base=grpc_port_base)
    workers = default_switch_workers() if switch_workers is None else switch_workers
    return FabricNetwork(description, run_dir, progress=progress, switch_workers=workers)


def measure_fabric(params: dict, run_dir: Path, prefix: str = "flbf", grpc_port_base: int = GRPC_PORT_BASE,
                   progress: Callable[[str], None] | None = None, topo: str = "leafspine",
                   switch_workers: int | None = None) -> dict:
    """Bring the fabric up, ping all pairs, read memory, tear it down; the figures."""
    from fabriclab.topologies.checks import ping_all

    network = fabric_network(params, run_dir, prefix, grpc_port_base, progress, topo, switch_workers)
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
        memory = network.memory()
        largest = max(rss_mb(pid) for pid in {sw.process.pid for sw in network.net.switches})
    finally:
        if progress:
            progress("tearing down")
        network.stop()
    return {"up_s": round(up_s, 2), "pingall_s": round(pingall_s, 2), "pingall_clean": not failed,
            "unreachable_pairs": len(failed), "pairs": pairs, "routes": report.routes, "entries": report.entries,
            "switches": report.switches, "hosts": report.hosts, "switch_processes": memory["switch_processes"],
            "rss_mb_switches": memory["switches_mb"], "rss_mb_per_switch": memory["per_switch_mb"],
            "rss_mb_max": round(largest, 1), "rss_mb_controller": memory["controller_mb"],
            "rss_mb_total": memory["total_mb"],
            "steps_s": {step: round(seconds, 2) for step, seconds in report.steps}}


def median_of(runs: list[dict]) -> dict:
    """The median of every numeric figure over runs (the rest from the last run), plus the
    bring-up time of each run."""
    merged = dict(runs[-1])
    for key, value in runs[-1].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[key] = round(statistics.median(run[key] for run in runs), 2)
    merged["pingall_clean"] = all(run["pingall_clean"] for run in runs)
    merged["runs"] = len(runs)
    merged["up_s_each"] = [run["up_s"] for run in runs]
    return merged


def configure_fabric_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=1, help="fabric: bring each fabric up this many times, "
                        "report medians (default 1)")
    parser.add_argument("--fabrics", help=f"fabric: comma-separated subset of {', '.join(FABRICS)}")
    parser.add_argument("--switch-workers", type=int, metavar="N",
                        help="fabric: switch processes (default: one per core; 0: one per switch)")


def run(args: argparse.Namespace) -> dict:
    import os

    from mininet.log import setLogLevel
    from rich.console import Console
    from rich.table import Table

    if os.geteuid() != 0:
        raise UserError("fabriclab bench fabric needs root (Mininet)")
    runs = getattr(args, "runs", 1)
    if runs < 1:
        raise UserError(f"--runs must be at least 1, got {runs}")
    chosen = list(FABRICS) if not getattr(args, "fabrics", None) else args.fabrics.split(",")
    for name in chosen:
        if name not in FABRICS:
            raise UserError(f"unknown fabric {name!r} (choose from {', '.join(FABRICS)})")
    setLogLevel("warning")
    console = Console(stderr=True)
    results = {}
    with console.status("fabric benchmark") as spinner:
        for index, name in enumerate(chosen):
            topo, params = FABRICS[name]
            measured = []
            for attempt in range(runs):
                def progress(step: str, name=name, attempt=attempt) -> None:
                    spinner.update(f"{name} run {attempt + 1}/{runs}: {step}")
                    console.log(f"{name} run {attempt + 1}/{runs}: {step}")

                with tempfile.TemporaryDirectory(prefix=f"fabriclab-bench-{name}-") as tmp:
                    measured.append(measure_fabric(params, Path(tmp) / "run", prefix=f"flbf{index}",
                                                   grpc_port_base=GRPC_PORT_BASE + 100 * index, progress=progress,
                                                   topo=topo, switch_workers=getattr(args, "switch_workers", None)))
            results[name] = median_of(measured)
    table = Table(title="Mininet fabric bring-up (fabriclab switches, fabric.p4, os-ken controller)",
                  caption=f"median of {runs} run(s); up: to routes installed and hosts configured; ping: every "
                          "ordered host pair; RSS: the switch processes in total (per switch), the controller")
    table.add_column("fabric", no_wrap=True)
    for column in ("switches", "hosts", "up s", "ping s", "clean", "RSS MiB", "ctrl MiB"):
        table.add_column(column, justify="right")
    for name, r in results.items():
        table.add_row(name, str(r["switches"]), str(r["hosts"]), f"{r['up_s']:.1f}", f"{r['pingall_s']:.1f}",
                      "yes" if r["pingall_clean"] else f"NO ({r['unreachable_pairs']})",
                      f"{r['rss_mb_switches']:.0f} ({r['rss_mb_per_switch']:.0f}/sw)", f"{r['rss_mb_controller']:.0f}")
    console.print(table)
    return results
