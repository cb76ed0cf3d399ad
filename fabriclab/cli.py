"""The ``fabriclab`` command: one subcommand per job, each defined in its own module.

A subcommand module exposes ``configure(parser)`` and ``run(args) -> int`` and keeps its
top-level imports light, so ``fabriclab --help`` does not pay for grpc, mininet or matplotlib.
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys

from fabriclab.errors import InternalError, UserError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "compile": ("fabriclab.compiler.compile_cmd", "compile a P4_16 v1model program for fabriclab's target"),
    "stf": ("fabriclab.v1model.stf", "run an STF packet test against a P4 program"),
    "switch": ("fabriclab.switch.switch", "run the software switch (PFC traffic manager, P4Runtime) on interfaces"),
    "switch-worker": ("fabriclab.switch.worker", "run several switches in one process (fabriclab up --switch-workers)"),
    "switch-cli": ("fabriclab.switch.switch_cli", "simple_switch_CLI-style commands over P4Runtime, plus queue/PFC views"),
    "bench": ("fabriclab.bench.cli", "measure speed and memory (pipeline, dataplane, fabric, traffic)"),
    "up": ("fabriclab.up", "bring a fabric up in Mininet (P4 switches, controller, routes); --check to test it"),
    "clean": ("fabriclab.clean", "remove switch/controller processes, veths and namespaces left by fabrics"),
    "controller": ("fabriclab.controller.cli", "the os-ken fabric controller (started by fabriclab up)"),
    "traffic": ("fabriclab.traffic.cli", "replay an AI collective (RoCEv2-like transport, DCQCN) on a running fabric"),
    "run": ("fabriclab.scenarios.cli", "run a congestion scenario's variants and write results, plots and a report"),
    "scenarios": ("fabriclab.scenarios.list_cmd", "list the built-in scenarios"),
    "lab": ("fabriclab.labs.cli", "teaching labs: list, start, check (✔/✘, --json for grading), reset; "
            "also runs P4 tutorials exercise folders"),
    "demo": ("fabriclab.demo", "the main job of 'make demo': the incast scenario, PFC on vs off"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every subcommand; with ``command``, only that one's module is imported and configured
    (a switch process then pays for neither scapy nor matplotlib)."""
    parser = argparse.ArgumentParser(prog="fabriclab", description="Lossless Ethernet testbed for AI fabrics")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if command in (None, name):
            module = importlib.import_module(module_name)
            module.configure(cmd)
            cmd.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(words[0] if words and words[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every command's cleanup (finally blocks) runs.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        return int(args._module.run(args) or 0)
    except UserError as exc:
        print(f"fabriclab {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"fabriclab {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141
    except InternalError as exc:
        print(f"fabriclab: internal error: {exc}", file=sys.stderr)
        return InternalError.exit_code
    except Exception as exc:     # no traceback, ever: a bug is one line and exit code 3
        print(f"fabriclab: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return InternalError.exit_code


if __name__ == "__main__":
    sys.exit(main())
