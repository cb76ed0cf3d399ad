"""``fabriclab bench``: speed and memory measurements (never timed tests).

Each benchmark prints a rich table and, with ``--json``, writes its figures as JSON.
"""
from __future__ import annotations

import argparse
import importlib
import json

# benchmark name -> module with run(args) -> dict of figures
BENCHMARKS = {
    "pipeline": "fabriclab.bench.pipeline",
    "dataplane": "fabriclab.bench.dataplane",
    "fabric": "fabriclab.bench.fabric",
    "traffic": "fabriclab.bench.traffic",
    "controller": "fabriclab.bench.controller",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("benchmark", choices=[*BENCHMARKS, "all"], help="what to measure")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON ('-' for stdout)")
    parser.add_argument("--packets", type=int, default=20_000, help="packets per pipeline measurement")
    parser.add_argument("--target", choices=("python", "bmv2", "both"), default="python",
                        help="dataplane: fabriclab's switch (default), BMv2's simple_switch_grpc, or both; "
                        "the kernel bridge is measured as the machine's ceiling every time")
    parser.add_argument("--rate", default="20M,100M",
                        help="host link rates of the traffic benchmark's fabric, comma-separated (default 20M,100M)")
    from fabriclab.bench.fabric import configure_fabric_options

    configure_fabric_options(parser)


def run(args: argparse.Namespace) -> int:
    names = list(BENCHMARKS) if args.benchmark == "all" else [args.benchmark]
    figures = {name: importlib.import_module(BENCHMARKS[name]).run(args) for name in names}
    if args.json:
        text = json.dumps(figures if len(names) > 1 else figures[names[0]], indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
    return 0
