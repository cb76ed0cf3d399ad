"""``fabriclab run NAME|FILE``: run a scenario's variants back to back, sample the switches,
evaluate the expectations, and write results.json, the plots and report.html.

Exit status: 0 every expectation held, 1 one failed, 4 none failed but some were not valid
(a variant's fidelity was degraded: scenarios/fidelity.py), 2 bad input."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fabriclab.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", help="a built-in scenario name (see 'fabriclab scenarios') or a YAML file")
    parser.add_argument("--out", help="run directory (default runs/<scenario>-<time>)")
    parser.add_argument("--json", metavar="FILE", help="also write the results JSON here")
    parser.add_argument("--variant", action="append", help="run only this variant (repeatable)")
    parser.add_argument("--target", choices=("python", "bmv2", "both"), default="python",
                        help="switches: fabriclab's (default), BMv2's simple_switch_grpc, or both side by side")
    parser.add_argument("--bmv2-log", action="store_true",
                        help="bmv2: write BMv2's per-packet trace (switches/<name>.bmv2.log; it slows BMv2 down)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from fabriclab.scenarios.fidelity import NOT_VALID_EXIT
    from fabriclab.scenarios.report import SUMMARY_METRICS, metric, write_report
    from fabriclab.scenarios.runner import run_scenario
    from fabriclab.scenarios.schema import load_scenario
    from fabriclab.topologies import bmv2

    console = Console()
    scenario = load_scenario(args.scenario)
    targets = ("python", "bmv2") if args.target == "both" else (args.target,)
    if "bmv2" in targets and bmv2.missing_reason():
        raise UserError(f"--target {args.target}: {bmv2.missing_reason()}")
    out = Path(args.out or f"runs/{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    with console.status(f"scenario {scenario.name}") as status:
        results = run_scenario(scenario, out, args.variant, progress=status.update, targets=targets,
                               bmv2_log=args.bmv2_log)
        status.update("writing the report")
        report = write_report(results, out)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")

    console.print(f"[bold]{escape(scenario.name)}[/bold]: {escape(scenario.description)}")
    table = Table()
    table.add_column("metric")
    for vname in results["variants"]:
        table.add_column(vname, justify="right")
    for path, label in SUMMARY_METRICS:
        values = [metric(r, path) for r in results["variants"].values()]
        if any(v is not None for v in values):
            table.add_row(label, *("–" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)
                                   for v in values))
    console.print(table)
    for vname, result in results["variants"].items():
        if result.get("error"):
            console.print(f"[red]variant {escape(vname)}: {escape(result['error'])}[/red]")
        elif result.get("flows_incomplete"):
            console.print(f"[yellow]variant {escape(vname)}: {result['flows_incomplete']} flow(s) had not completed "
                          f"when the run ended (allow_incomplete)[/yellow]")
        if result.get("not_supported"):
            console.print(f"[yellow]variant {escape(vname)}: {escape(result['not_supported'])}[/yellow]")
        for reason in (result.get("fidelity") or {}).get("reasons", []):
            console.print(f"[yellow]variant {escape(vname)}: fidelity degraded: {escape(reason)}[/yellow]")
    for exp in results["expectations"]:
        mark = {True: "[green]✔[/green]", False: "[red]✘[/red]", None: "[yellow]–[/yellow]"}[exp["held"]]
        if exp.get("valid") is False:
            mark = "[yellow]⚠[/yellow]"
        where = f"[{exp['target']}] " if len(targets) > 1 else ""
        console.print(f"{mark} {escape(where + exp['text'])}   ({escape(exp['detail'])})")
    console.print(f"report: {report}")
    if results["verdict"] == "not valid":
        console.print("[bold yellow]verdict: NOT VALID[/bold yellow] -- the emulation could not keep time (see "
                      "above), so the expectations were not judged; re-run on an idle or faster machine, "
                      "or at a lower rate")
        return NOT_VALID_EXIT
    return 0 if results["verdict"] == "held" else 1
