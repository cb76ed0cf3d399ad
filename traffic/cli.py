"""``fabriclab traffic PATTERN --hosts h1,h2,... --size 8MB``: replay a collective on a running fabric.

The fabric is found through its run directory's ``fabric.json`` (written by ``fabriclab up``);
each host's network namespace is that of its Mininet shell (the process whose command line ends
in ``mininet:<host>``). From the Mininet CLI: ``sh fabriclab traffic allreduce --hosts h1,h2``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from fabriclab.errors import UserError

RUNS = Path("runs")  # where ``fabriclab up`` puts its run directories (runs/up-<time>)


def configure(parser: argparse.ArgumentParser) -> None:
    from fabriclab.traffic.agent import add_transport_arguments
    from fabriclab.traffic.collectives import PATTERNS

    parser.add_argument("pattern", help=f"one of {', '.join(PATTERNS)}, or a JSON trace file")
    parser.add_argument("--hosts", required=True, help="comma-separated host names; rank i = i-th host")
    parser.add_argument("--size", default="8MB", help="message size S per collective (default 8MB)")
    parser.add_argument("--iterations", type=int, default=1, help="times to run the collective (default 1)")
    parser.add_argument("--gap", default="0s", help="pause between iterations (default 0s)")
    parser.add_argument("--json", metavar="FILE", help="append per-flow and per-iteration records (JSON lines)")
    parser.add_argument("--run-dir", default=os.environ.get("FABRICLAB_RUN_DIR"),
                        help="the running fabric's run directory (default $FABRICLAB_RUN_DIR, else the newest "
                             "runs/*/ with a fabric.json)")
    parser.add_argument("--timeout", default="600s", help="give up after this long (default 600s)")
    add_transport_arguments(parser, rate_help="host link rate (default: the hosts' link rate in fabric.json)")
    parser.set_defaults(rate=None, priority=None)  # defaults from fabric.json and controller.json


def find_mininet_host_pid(name: str) -> int:
    """The PID of Mininet host ``name``'s shell (Mininet starts it as ``bash ... mininet:<name>``)."""
    tag = f"mininet:{name}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                words = f.read().split(b"\0")
        except OSError:
            continue
        if tag in words:
            return int(entry)
    raise UserError(f"host {name} is not running (no Mininet shell 'mininet:{name}'): is the fabric up?")


def newest_run_dir() -> Path:
    candidates = sorted(RUNS.glob("*/fabric.json"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise UserError(f"no {RUNS}/*/fabric.json here: start a fabric with 'fabriclab up' or pass --run-dir")
    return candidates[-1].parent


def resolve_hosts(run_dir: str | Path, names: list[str]):
    from fabriclab.topologies.description import FabricDescription
    from fabriclab.traffic.runner import HostHandle

    path = Path(run_dir) / "fabric.json"
    if not path.exists():
        raise UserError(f"{path} not found: start a fabric with 'fabriclab up' or pass --run-dir")
    fabric = FabricDescription.load(path)
    handles, rates = [], []  # rates: each host's link
    for name in names:
        try:
            spec = fabric.host(name)
        except KeyError:
            raise UserError(f"no host {name!r} in {path}; hosts: {', '.join(h.name for h in fabric.hosts)}") from None
        pid = find_mininet_host_pid(name)
        handles.append(HostHandle(name=name, ip=spec.ip, ifname=spec.intf, netns_path=f"/proc/{pid}/ns/net"))
        rates.append(fabric.link_rate(spec.switch, spec.switch_port))
    return handles, min(rates), fabric.mtu


def data_priority(run_dir: Path, dscp: int) -> int:
    """The priority the fabric's controller gives ``dscp`` (what PFC pauses), from controller.json."""
    from fabriclab.controller.settings import DEFAULT_DSCP_PRIORITY, ControllerSettings

    path = run_dir / "controller.json"
    if not path.exists():
        return DEFAULT_DSCP_PRIORITY.get(dscp, 0)
    settings = ControllerSettings.load(path)
    return settings.dscp_priority.get(dscp, settings.default_priority)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fabriclab.traffic import collectives
    from fabriclab.traffic.agent import transport_argv, transport_config
    from fabriclab.traffic.metrics import write_jsonl
    from fabriclab.traffic.runner import ScheduleRunner
    from fabriclab.traffic.transport import HDR_LEN
    from fabriclab.units import parse_duration, parse_size

    names = [n.strip() for n in args.hosts.split(",") if n.strip()]
    if len(names) < 2 or len(set(names)) != len(names):
        raise UserError("--hosts needs at least two distinct host names")
    if args.iterations < 1:
        raise UserError("--iterations must be at least 1")
    size = parse_size(args.size, "--size")
    if args.pattern.endswith(".json"):
        schedule = collectives.load_trace(args.pattern)
    else:
        schedule = collectives.build(args.pattern, len(names), size)
    run_dir = Path(args.run_dir or newest_run_dir())
    hosts, link_rate, fabric_mtu = resolve_hosts(run_dir, names)
    if args.rate is None:
        args.rate = str(link_rate)
    if args.priority is None:
        args.priority = data_priority(run_dir, args.dscp_data)
    config = transport_config(args)  # check every transport option before starting agents
    headers = HDR_LEN - 14 + 4  # IP + UDP + BTH + ICRC count against the IP MTU
    if config.mtu + headers > fabric_mtu:
        raise UserError(f"--mtu {config.mtu} + {headers} bytes of headers exceeds the fabric MTU {fabric_mtu}")
    line_rate = config.line_rate
    console = Console()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(f"{schedule.pattern} ×{args.iterations}", total=len(schedule.flows) * args.iterations)
        done_before = [0]

        def progress(delivered: int, total: int) -> None:
            bar.update(task, completed=done_before[0] + delivered)
            if delivered == total:
                done_before[0] += total

        try:
            with ScheduleRunner(schedule, hosts, transport_argv(args), line_rate=line_rate, mtu=args.mtu,
                                dcqcn_preset=args.dcqcn, progress=progress) as runner:
                result = runner.run(args.iterations, parse_duration(args.gap, "--gap"),
                                    parse_duration(args.timeout, "--timeout"))
        except TimeoutError:
            raise UserError(f"{schedule.pattern} did not finish within {args.timeout}") from None
        except RuntimeError as exc:  # an agent failed: its own message says why
            raise UserError(str(exc), exit_code=1) from None
    if args.json:
        write_jsonl(result.flows + result.collectives, args.json)
    print_summary(console, result, schedule)
    return 0


def print_summary(console, result, schedule) -> None:
    from rich.table import Table

    from fabriclab.traffic.metrics import percentile

    table = Table(title=f"{schedule.pattern}: {schedule.ranks} ranks, {schedule.size} B, {len(schedule.flows)} flows")
    for col in ("iter", "time (ms)", "algbw (Mbit/s)", "busbw (Mbit/s)", "FCT p50/p99 (ms)", "retx", "CNPs"):
        table.add_column(col, justify="right")
    for c in result.collectives:
        flows = [f for f in result.flows if f.iteration == c.iteration]
        fcts = [f.fct * 1e3 for f in flows]
        table.add_row(str(c.iteration), f"{c.time * 1e3:.1f}", f"{c.algbw * 8 / 1e6:.1f}", f"{c.busbw * 8 / 1e6:.1f}",
                      f"{percentile(fcts, 50):.1f}/{percentile(fcts, 99):.1f}",
                      str(sum(f.retransmissions for f in flows)), str(sum(f.cnps_received for f in flows)))
    console.print(table)
