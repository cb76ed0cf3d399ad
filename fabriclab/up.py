"""``fabriclab up``: bring a fabric up in Mininet, install routes, open the Mininet CLI (with
``stats``, ``queues``, ``pfc``, ``link X Y down|up`` and ``paths``; the controller's REST API
URL is in the summary), tear everything down on exit; ``--check`` instead pings all
pairs, runs one iperf3 across the fabric, prints a summary and exits 0 only if all is reachable.
"""
from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    topo = parser.add_argument_group("topology")
    topo.add_argument("--topo", help="leafspine (default), fattree, dumbbell or ring")
    topo.add_argument("--topo-file", metavar="YAML", help="a topology drawn in YAML (see topologies/yamlfile.py)")
    topo.add_argument("--spines", type=int, help="leafspine: spine switches (default 2)")
    topo.add_argument("--leaves", type=int, help="leafspine: leaf switches (default 4)")
    topo.add_argument("--hosts-per-leaf", type=int, help="leafspine: hosts on each leaf (default 2)")
    topo.add_argument("--links-per-spine", type=int, help="leafspine: parallel links per leaf-spine pair (default 1)")
    topo.add_argument("--k", type=int, help="fattree: k-ary three-tier fat-tree (default 4)")
    topo.add_argument("--hosts-per-edge", type=int, help="fattree: hosts per edge switch (default k/2)")
    topo.add_argument("--hosts", type=int, help="dumbbell: hosts on each side (default 2)")
    topo.add_argument("--switches", type=int, help="ring: switches in the ring (default 4)")
    topo.add_argument("--hosts-per-switch", type=int, help="ring: hosts on each switch (default 1)")
    topo.add_argument("--rate", help="host link rate, and fabric link rate unless --fabric-rate (default 100M)")
    topo.add_argument("--fabric-rate", help="switch-to-switch link rate")
    topo.add_argument("--delay", help="one-way delay of every link, applied at switch egress (e.g. 10us)")
    topo.add_argument("--mtu", type=int, help="IP MTU of every interface (default 1500)")
    topo.add_argument("--prefix", help="prefix for every node name, to run two fabrics side by side")
    topo.add_argument("--grpc-port-base", type=int,
                      help="switch with device id d serves P4Runtime on this + d (default 9559)")
    fabric = parser.add_argument_group("switches and controller")
    fabric.add_argument("--target", default="python", help="python (default), bmv2, or auto (bmv2 if installed)")
    fabric.add_argument("--bmv2-log", action="store_true",
                        help="bmv2: write BMv2's per-packet trace (switches/<name>.bmv2.log; it slows BMv2 down)")
    fabric.add_argument("--lb", default="ecmp", help="load balancing: ecmp (default), spray (random per packet), spray-rr (round robin), flowlet, adaptive")
    fabric.add_argument("--flowlet-gap", default="5ms", help="idle gap that starts a new flowlet (default 5ms)")
    fabric.add_argument("--ecn", action="store_true", help="mark ECN (DCQCN paper thresholds)")
    fabric.add_argument("--policy", default="static",
                        help="routing policy: static (default), wcmp (re-weigh groups from measured load), "
                             "elephant (pin heavy flows, Hedera-like)")
    fabric.add_argument("--poll-interval", default="200ms", help="controller telemetry poll interval (default 200ms)")
    fabric.add_argument("--rest-port", type=int, default=8080,
                        help="controller REST API port on 127.0.0.1 (default 8080; 0: any free port)")
    fabric.add_argument("--config", metavar="SWITCH_YAML", help="switch.yaml applied to every switch "
                        "(port rates and delays come from the topology)")
    fabric.add_argument("--p4", metavar="PROGRAM", help="data-plane program (default p4/fabric.p4)")
    fabric.add_argument("--pcap", action="store_true", help="capture every switch port into RUN_DIR/pcap")
    fabric.add_argument("--switch-workers", type=int, metavar="N",
                        help="python switches run in N processes, several per process (default: one per core); "
                             "0: one process per switch")
    parser.add_argument("--run-dir", help="where fabric.json, logs and captures go (default runs/up-<time>)")
    parser.add_argument("--check", action="store_true",
                        help="ping all pairs and run one iperf3 across the fabric instead of the CLI; "
                        "exit 0 only if every pair is reachable and iperf3 ran")
    parser.add_argument("--iperf-time", type=float, default=2.0, help="--check: iperf3 duration in seconds")


class Terminated(BaseException):
    """SIGTERM: unwinds through Mininet's CLI, which swallows KeyboardInterrupt."""


def _on_sigterm(signum, frame):
    raise Terminated()


def run(args: argparse.Namespace) -> int:
    import yaml
    from rich.console import Console

    from fabriclab.controller.settings import ControllerSettings, EcnSettings
    from fabriclab.errors import UserError
    from fabriclab.topologies.catalog import describe
    from fabriclab.topologies.network import DEFAULT_PROGRAM, FabricNetwork, default_switch_workers
    from fabriclab.topologies.p4switch import choose_target
    from fabriclab.topologies.summary import bring_up_table
    from fabriclab.units import parse_duration, parse_rate

    if os.geteuid() != 0:
        raise UserError("fabriclab up needs root (Mininet creates namespaces and veths)")
    rate = parse_rate(args.rate, "--rate") if args.rate else None
    params = {
        "spines": args.spines, "leaves": args.leaves, "hosts_per_leaf": args.hosts_per_leaf,
        "links_per_spine": args.links_per_spine, "k": args.k, "hosts_per_edge": args.hosts_per_edge,
        "hosts": args.hosts, "switches": args.switches, "hosts_per_switch": args.hosts_per_switch,
        "host_rate": rate, "fabric_rate": parse_rate(args.fabric_rate, "--fabric-rate") if args.fabric_rate else None,
        "delay": parse_duration(args.delay, "--delay") if args.delay else None, "mtu": args.mtu,
        "prefix": args.prefix, "grpc_port_base": args.grpc_port_base,
    }
    description = describe(args.topo, params, topo_file=args.topo_file)
    settings = ControllerSettings(lb=args.lb, flowlet_gap_s=parse_duration(args.flowlet_gap, "--flowlet-gap"),
                                  ecn=EcnSettings(enabled=args.ecn), policy=args.policy,
                                  poll_interval_s=parse_duration(args.poll_interval, "--poll-interval"),
                                  rest_port=args.rest_port)
    settings.validate()
    switch_config = {}
    if args.config:
        from fabriclab.switch.switch_config import load_config

        load_config(args.config)   # validate now: one clear error instead of N dead switches
        switch_config = yaml.safe_load(Path(args.config).read_text()) or {}
    run_dir = Path(args.run_dir or f"runs/up-{time.strftime('%Y%m%d-%H%M%S')}")
    console = Console(stderr=True)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with console.status("bringing the fabric up") as status:
            def progress(step: str) -> None:
                status.update(step)
                console.log(step)

            network = FabricNetwork(description, run_dir, target=choose_target(args.target),
                                    program=args.p4 or DEFAULT_PROGRAM, settings=settings,
                                    switch_config=switch_config, pcap=args.pcap, progress=progress,
                                    switch_workers=default_switch_workers() if args.switch_workers is None
                                    else args.switch_workers, bmv2_log=args.bmv2_log)
            report = network.start()
        try:
            console.print(bring_up_table(network, report))
            if args.check:
                from fabriclab.topologies.checks import check_fabric, check_table

                result = check_fabric(network, iperf_seconds=args.iperf_time)
                console.print(check_table(result))
                return 0 if result.ok else 1
            from mininet.log import setLogLevel

            from fabriclab.topologies.fabric_cli import FabricCLI

            setLogLevel("output")    # the CLI's answers; Mininet's own progress chatter stays hidden
            FabricCLI(network.net, network=network)
            return 0
        finally:
            with console.status("tearing the fabric down"):
                network.stop()
            console.log(f"fabric down; logs in {network.run_dir}")
    except Terminated:
        console.log("terminated")
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)
