"""``fabriclab lab list|start|check|reset``: the teaching labs, and any exercise folder in the
p4lang/tutorials layout (``start DIR``, ``check DIR --pingall``)."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from fabriclab.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    sub.add_parser("list", help="number, title, level and minutes of every lab")
    start = sub.add_parser("start", help="bring a lab (or a tutorials exercise folder) up and open the Mininet CLI")
    check = sub.add_parser("check", help="run a lab's checker: each check ✔/✘ with what it measured")
    reset = sub.add_parser("reset", help="put the files a lab has you edit back as they were (yours saved as .bak)")
    for cmd in (start, check, reset):
        cmd.add_argument("lab", help="a lab's number or name (see 'lab list'), or an exercise folder")
    for cmd in (start, check):
        cmd.add_argument("--solution", action="store_true", help="use the lab's solution/ instead of your files")
        cmd.add_argument("--run-dir", help="where logs and captures go (default runs/lab-<name>-<time>)")
    start.add_argument("--pcap", action="store_true", help="capture every switch port into RUN_DIR/pcap")
    check.add_argument("--json", action="store_true", help="print the results as JSON (for grading)")
    check.add_argument("--pingall", action="store_true",
                       help="exercise folders: bring it up and check that every host reaches every other")


def run(args: argparse.Namespace) -> int:
    return {"list": _list, "start": _start, "check": _check, "reset": _reset}[args.action](args)


def _list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from fabriclab.labs.catalog import all_labs

    table = Table(title="fabriclab labs")
    for column in ("#", "title", "level", "minutes", "you edit"):
        table.add_column(column)
    for lab in all_labs():
        table.add_row(lab.number, lab.title, lab.level, str(lab.minutes), ", ".join(lab.edit))
    Console().print(table)
    return 0


def _target(args: argparse.Namespace):
    """(LabRun, None) for a lab; (None, Exercise) for a tutorials exercise folder."""
    from fabriclab.labs.catalog import LabRun, find_lab
    from fabriclab.labs.exercise import load_exercise

    if getattr(args, "pingall", False) and Path(args.lab).is_dir():   # any folder in the tutorials layout
        return None, load_exercise(args.lab, args.solution)
    lab = find_lab(args.lab)
    if lab is not None:
        run_dir = Path(args.run_dir) if getattr(args, "run_dir", None) else None
        return LabRun(lab, getattr(args, "solution", False), run_dir), None
    if Path(args.lab).is_dir():
        return None, load_exercise(args.lab, getattr(args, "solution", False))
    raise UserError(f"no lab {args.lab!r} (see 'fabriclab lab list') and no such folder")


def _run_dir(args: argparse.Namespace, name: str) -> Path:
    return Path(args.run_dir or f"runs/lab-{name}-{time.strftime('%Y%m%d-%H%M%S')}")


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise UserError(f"{what} needs root (Mininet creates namespaces and veths)")


def _start(args: argparse.Namespace) -> int:
    from rich.console import Console

    from fabriclab.labs.start import network_for
    from fabriclab.topologies.summary import bring_up_table

    _need_root("lab start")
    run, exercise = _target(args)
    console = Console(stderr=True)
    if run is not None:
        name, hints = run.lab.name, run.lab.hints
        network = network_for(run, _run_dir(args, name), args.pcap, console.log)
    else:
        from fabriclab.labs.exercise_network import ExerciseNetwork

        name, hints = exercise.folder.name, ""
        network = ExerciseNetwork(exercise, _run_dir(args, name), pcap=args.pcap, progress=console.log)
    report = network.start()
    try:
        if network.description.topology == "exercise":    # no controller: its rows would mislead
            console.print(f"{name}: {report.switches} switches, {report.hosts} hosts, {report.entries} entries "
                          f"written from the runtime JSON, up in {report.seconds:.1f} s; logs in {network.run_dir}")
        else:
            console.print(bring_up_table(network, report))
        if hints:
            console.print(hints.rstrip())
        from mininet.log import setLogLevel

        from fabriclab.topologies.fabric_cli import FabricCLI

        setLogLevel("output")
        FabricCLI(network.net, network=network)
    finally:
        network.stop()
        console.log(f"down; logs in {network.run_dir}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from fabriclab.labs.checks import Check, report_json

    run, exercise = _target(args)
    if exercise is not None:
        if not args.pingall:
            raise UserError(f"{exercise.folder} is an exercise folder without a checker: give --pingall")
        name = exercise.folder.name
        checks = _pingall(exercise, _run_dir(args, name), args.json)
    else:
        name = run.lab.name
        checks = []
        try:
            for check in run.lab.checker().checks(run):
                checks.append(check)
                if not args.json:
                    print(check.line(), flush=True)
        except UserError as exc:
            checks.append(Check("the lab runs", False, str(exc)))
            if not args.json:
                print(checks[-1].line())
    if args.json:
        sys.stdout.write(report_json(name, args.solution, checks))
    else:
        print(f"{sum(c.passed for c in checks)}/{len(checks)} checks passed")
    return 0 if checks and all(c.passed for c in checks) else 1


def _pingall(exercise, run_dir: Path, quiet: bool) -> list:
    from fabriclab.labs.checks import Check
    from fabriclab.labs.exercise_network import ExerciseNetwork

    _need_root("lab check --pingall")
    with ExerciseNetwork(exercise, run_dir) as network:
        results = network.pingall()
    checks = [Check(f"{r.src} reaches {r.dst}", r.ok, f"ping {r.ip}: {'reply' if r.ok else 'no reply'}")
              for r in results]
    if not quiet:
        for check in checks:
            print(check.line())
    return checks


def _reset(args: argparse.Namespace) -> int:
    run, exercise = _target(args)
    if run is None:
        raise UserError("reset works on the labs (see 'fabriclab lab list'), not on exercise folders")
    lab = run.lab
    top = subprocess.run(["git", "-C", str(lab.path), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if top.returncode != 0:
        raise UserError(f"{lab.path} is not in a git checkout: cannot tell what the files looked like")
    root = Path(top.stdout.strip())
    for name in lab.edit:
        path = lab.path / name
        rel = path.resolve().relative_to(root.resolve()).as_posix()
        pristine = subprocess.run(["git", "-C", str(root), "show", f"HEAD:{rel}"], capture_output=True)
        if pristine.returncode != 0:
            raise UserError(f"{rel} is not in the repository's HEAD")
        if path.exists() and path.read_bytes() != pristine.stdout:
            path.with_name(path.name + ".bak").write_bytes(path.read_bytes())
            print(f"{rel}: your version saved as {path.name}.bak")
        path.write_bytes(pristine.stdout)
        print(f"{rel}: reset")
    return 0
