"""``fabriclab controller``: the fabric's control plane as a process (started by ``fabriclab up``)."""
from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fabric", type=Path, required=True, help="fabric.json written at bring-up")
    parser.add_argument("--settings", type=Path, required=True, help="controller.json (LB mode, DSCP classes, ECN)")
    parser.add_argument("--status", type=Path, required=True, help="where to report progress (JSON)")
    parser.add_argument("--p4", type=Path, required=True, help="the data-plane program pushed to every switch")
    parser.add_argument("--bmv2-json", type=Path, help="bmv2 target: p4c-bm2-ss output pushed as the device config")
    parser.add_argument("--p4info", type=Path, help="bmv2 target: p4c's P4Info (text format) for --bmv2-json")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def run(args: argparse.Namespace) -> int:
    from fabriclab.controller.runner import run_controller

    from fabriclab.errors import UserError

    if (args.bmv2_json is None) != (args.p4info is None):
        raise UserError("--bmv2-json and --p4info go together")
    return run_controller(args.fabric, args.settings, args.status, args.p4, args.log_level,
                          bmv2=(args.bmv2_json, args.p4info) if args.bmv2_json else None)
