"""``fabriclab bench traffic``: the host side of the RoCEv2-like transport.

* ``host_pps``: frames per second one host transport process sends over a veth, unpaced
  (``fabriclab.traffic.bench.host_pps``: full-MTU data frames on the transport's hot path);
* ``allreduce_busbw_mbps``: nccl-tests' bus bandwidth of a ring all-reduce over the four hosts
  of a 2x2x2 leaf-spine (Mininet, python switches, fabric.p4), ranks in host order, so every
  link carries at most one flow per direction: uncongested. ``busbw_fraction_of_link`` is that
  over the host link rate: what the hosts, switches and transport together leave of the wire.
  The median over ``ALLREDUCE_ITERATIONS`` runs.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path
from typing import Callable

from fabriclab.errors import UserError
from fabriclab.units import parse_rate

HOST_PPS_SECONDS = 2.0
# Small enough that the python switches' sockets rarely overflow on 2 shared cores: the rx
# drops they count happen before the traffic manager, so PFC cannot prevent them and each
# costs a go-back-N window (8 MB all-reduces took minutes under load).
ALLREDUCE_SIZE = 2_000_000          # bytes S per all-reduce
ALLREDUCE_ITERATIONS = 3
ALLREDUCE_TIMEOUT_S = 600
ALLREDUCE_FABRIC = {"spines": 2, "leaves": 2, "hosts_per_leaf": 2}
GRPC_PORT_BASE = 24800              # apart from bench fabric's and the tests' ports


def measure_host_pps(seconds: float = HOST_PPS_SECONDS, tag: str = "bpps") -> dict:
    from fabriclab.traffic.bench import host_pps

    return host_pps(seconds=seconds, tag=tag)


def transport_options(rate_bps: int, mtu: int | None = None) -> argparse.Namespace:
    """The agents' transport options (defaults of ``fabriclab traffic``) at the link rate."""
    from fabriclab.traffic.agent import add_transport_arguments

    parser = argparse.ArgumentParser()
    add_transport_arguments(parser)
    argv = ["--rate", str(rate_bps)] + (["--mtu", str(mtu)] if mtu else [])
    return parser.parse_args(argv)


def allreduce_busbw(run_dir: Path, size: int = ALLREDUCE_SIZE, iterations: int = ALLREDUCE_ITERATIONS,
                    fabric: dict = ALLREDUCE_FABRIC, prefix: str = "flbt", grpc_port_base: int = GRPC_PORT_BASE,
                    progress: Callable[[str], None] | None = None,
                    on_flows: Callable[[int, int], None] | None = None) -> dict:
    """Ring all-reduce over every host of a leaf-spine: median busbw and the link rate.
    ``progress`` gets each step, ``on_flows`` (delivered, total) as flows of an iteration end."""
    from fabriclab.bench.fabric import fabric_network
    from fabriclab.bench.switch_stats import drops_in
    from fabriclab.traffic import collectives
    from fabriclab.traffic.agent import transport_argv, transport_config
    from fabriclab.traffic.runner import HostHandle, ScheduleRunner

    network = fabric_network(fabric, run_dir, prefix, grpc_port_base, progress)
    try:
        network.start()
        d = network.description
        link_bps = min(d.link_rate(h.switch, h.switch_port) for h in d.hosts)
        options = transport_options(link_bps)
        config = transport_config(options)
        hosts = [HostHandle(h.name, h.ip, h.intf, f"/proc/{network.net.get(h.name).pid}/ns/net") for h in d.hosts]
        schedule = collectives.build("allreduce", len(hosts), size)
        if progress:
            progress(f"ring all-reduce of {size / 1e6:g} MB over {len(hosts)} hosts, {iterations} times")
        try:
            with ScheduleRunner(schedule, hosts, transport_argv(options), line_rate=config.line_rate,
                                mtu=options.mtu, dcqcn_preset=options.dcqcn, progress=on_flows) as runner:
                result = runner.run(iterations=iterations, gap=0.2, timeout=ALLREDUCE_TIMEOUT_S)
        except TimeoutError:
            raise UserError(f"the all-reduce did not finish within {ALLREDUCE_TIMEOUT_S} s") from None
        except RuntimeError as exc:   # an agent failed: its message says why
            raise UserError(str(exc)) from None
    finally:
        if progress:
            progress("tearing down")
        network.stop()
    drops = drops_in(sorted((run_dir / "switches").glob("*.stats.json")))
    busbw_bps = statistics.median(c.busbw * 8 for c in result.collectives)
    retransmissions = sum(f.retransmissions for f in result.flows)
    return {"allreduce_busbw_mbps": round(busbw_bps / 1e6, 2), "link_mbps": round(link_bps / 1e6, 2),
            "busbw_fraction_of_link": round(busbw_bps / link_bps, 3), "allreduce_ranks": len(hosts),
            "allreduce_bytes": size, "allreduce_iterations": iterations,
            "allreduce_seconds": [round(c.time, 3) for c in result.collectives],
            "allreduce_retransmissions": retransmissions, "switch_drops": drops}


def run(args: argparse.Namespace) -> dict:
    from mininet.log import setLogLevel
    from rich.console import Console
    from rich.table import Table

    if os.geteuid() != 0:
        raise UserError("fabriclab bench traffic needs root (namespaces, Mininet)")
    setLogLevel("warning")
    console = Console(stderr=True)
    with console.status("traffic benchmark") as spinner:
        def progress(step: str) -> None:
            spinner.update(step)
            console.log(step)

        progress(f"host transport packet rate over a veth ({HOST_PPS_SECONDS:g} s)")
        host = measure_host_pps()
        def on_flows(delivered: int, total: int) -> None:
            spinner.update(f"ring all-reduce: {delivered}/{total} flows of this iteration delivered")

        rates = [parse_rate(text, "--rate") for text in args.rate.split(",")]
        allreduce = {}
        for rate in rates:
            label = f"{rate / 1e6:g}M"
            with tempfile.TemporaryDirectory(prefix="fabriclab-bench-traffic-") as tmp:
                fabric = {**ALLREDUCE_FABRIC, "host_rate": rate}
                allreduce[label] = allreduce_busbw(Path(tmp) / "run", fabric=fabric, progress=progress,
                                                   on_flows=on_flows)
    figures = {"host_pps": round(host["host_pps"]), "host_frame_bytes": host["frame_bytes"],
               "host_mbps": round(host["host_mbps"], 1), "host_native": host["native"], "allreduce": allreduce}
    table = Table(title="host transport")
    table.add_column("figure")
    for label in allreduce:
        table.add_column(label, justify="right")
    table.add_row(f"host_pps ({figures['host_frame_bytes']}-byte frames, one process, unpaced, "
                  f"{'C' if host['native'] else 'Python'} send path)", f"{figures['host_pps']:,}")
    rows = [("ring all-reduce busbw, {ranks} ranks on leaf-spine 2x2x2 (Mbit/s), median of {iterations}",
             lambda r: f"{r['allreduce_busbw_mbps']:.1f}"),
            ("host link rate (Mbit/s)", lambda r: f"{r['link_mbps']:.0f}"),
            ("busbw / link rate", lambda r: f"{r['busbw_fraction_of_link']:.0%}"),
            ("retransmitted packets", lambda r: f"{r['allreduce_retransmissions']:,}"),
            ("frames the switches dropped", lambda r: ", ".join(f"{reason} {count:,}" for reason, count
                                                                in r["switch_drops"].items()) or "none")]
    first = next(iter(allreduce.values()))
    for title, cell in rows:
        table.add_row(title.format(ranks=first["allreduce_ranks"], iterations=first["allreduce_iterations"]),
                      *(cell(r) for r in allreduce.values()))
    console.print(table)
    return figures
