"""``fabriclab switch-worker``: several switches in one process.

    fabriclab switch-worker SPEC [--log-level LEVEL] [--engine auto|native|python]

SPEC has one switch per line, written as the options of ``fabriclab switch`` (``-i 1@l1-eth1
--device-id 1 --grpc-addr 127.0.0.1:9560 --name l1 --stats-file ...``; ``#`` starts a comment).
Each switch keeps what it has as a process of its own: its ports, traffic manager, pipeline
instance and runtime state, P4Runtime device (its own address and device id), runtime API
address, stats file, pcaps and PFC log. What they share: the interpreter and its imports, a
program pushed to several of them (compiled once, see ``p4runtime.server.compile_device_config``),
one gRPC server (one thread pool, requests routed by device id) and one runtime API thread,
and one data-plane thread (``switch.serve_switches``: one epoll over every port).

A switch whose turn fails (its P4 program on a packet, its TM, a port) counts the failure in
its own drops (``pipeline_error``, ``switch_error``), logs it once under its name and goes
on; its neighbours in the process do not notice. One Python interpreter per core is what a
fabric needs: ``fabriclab up --switch-workers N`` spreads the switches over N of these.
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys

from fabriclab.errors import UserError

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="file with one switch per line, as `fabriclab switch` options")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--engine", choices=("auto", "native", "python"),
                        help="native (C, built with gcc) or python, for every switch; auto (default, or "
                             "$FABRICLAB_ENGINE): native where it builds")


def read_spec(path: str) -> list[argparse.Namespace]:
    """Each line's ``fabriclab switch`` options, parsed and defaulted as that command does."""
    from fabriclab.switch import switch

    try:
        with open(path) as f:
            lines = [line for line in (raw.split("#", 1)[0].strip() for raw in f) if line]
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror}") from None
    if not lines:
        raise UserError(f"{path}: no switches")
    parser = _Parser(prog="fabriclab switch", add_help=False)
    switch.configure(parser)
    specs = []
    for number, line in enumerate(lines, 1):
        try:
            specs.append(parser.parse_args(shlex.split(line)))
        except (ValueError, UserError) as exc:
            raise UserError(f"{path}: switch {number}: {exc}") from None
    for key, what in (("name", "name"), ("device_id", "device id")):
        values = [getattr(spec, key) for spec in specs]
        if len(set(values)) != len(values):
            raise UserError(f"{path}: each switch needs its own {what}")
    return specs


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):   # a bad line is one error, not a usage dump and exit
        raise UserError(message)


def run(args: argparse.Namespace) -> int:
    from fabriclab.compiler.diagnostics import CompileError
    from fabriclab.p4runtime.server import P4RuntimeServer
    from fabriclab.switch.runtime_api import RuntimeApiServer
    from fabriclab.switch.switch import api_addr_for, open_switch, serve_switches, start_servers, stop_servers

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    if args.engine:
        os.environ["FABRICLAB_ENGINE"] = args.engine
    specs = read_spec(args.spec)
    switches = []
    grpc_server, api_server = P4RuntimeServer(), RuntimeApiServer()
    try:
        for spec in specs:
            try:
                switches.append(open_switch(spec))
            except CompileError as exc:
                print(f"{spec.name}: {exc.format()}", file=sys.stderr)
                return exc.exit_code
            except UserError as exc:
                raise UserError(f"{spec.name}: {exc}") from None
        for switch, spec in zip(switches, specs):
            if spec.grpc_addr.lower() != "none":
                grpc_server.add_device(switch, spec.grpc_addr, spec.device_id)
            api_addr = api_addr_for(spec.api_addr, spec.grpc_addr)
            if api_addr is not None:
                api_server.add(switch, api_addr)
        start_servers(grpc_server if grpc_server.addrs else None, api_server)
        for switch, spec in zip(switches, specs):
            if spec.device_id in grpc_server.addrs:
                switch.packet_in_sink = grpc_server.packet_in_sink(spec.device_id)
        log.info("worker %d: %d switches (%s)", os.getpid(), len(switches), ", ".join(s.name for s in switches))
        serve_switches([(switch, spec.stats_file) for switch, spec in zip(switches, specs)])
    except KeyboardInterrupt:  # SIGTERM/SIGINT: the normal way to stop
        log.info("stopping")
    finally:
        stop_servers(grpc_server if grpc_server.ports else None, api_server)
        for switch in switches:
            switch.close()
    return 0
