"""``fabriclab demo`` (what ``make demo`` runs): the incast scenario with PFC on and off on the
default leaf-spine, its summary table first, then where the report is."""
from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")


def run(args: argparse.Namespace) -> int:
    from fabriclab.scenarios import cli

    return cli.run(argparse.Namespace(scenario="incast", out=args.out, json=f"{args.out}/results.json",
                                      variant=None))
