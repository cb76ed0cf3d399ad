"""BMv2 as fabriclab's second target: ``simple_switch_grpc`` running ``p4c-bm2-ss`` output.

What the python target's switch does on its own, done here for BMv2 from its documented
interfaces (behavioral-model docs/simple_switch.md, runtime_CLI, P4Runtime):

* the command line: no per-packet log unless asked (``--bmv2-log``: BMv2's ``--log-file``
  trace costs it a third of its packet rate), eight priority queues where the binary has
  ``--priority-queues``, a Thrift port for ``simple_switch_CLI``;
* egress queues paced at the link rate and as deep as the python target's dynamic threshold
  lets one congested queue grow (``set_queue_rate``/``set_queue_depth`` over Thrift), so that
  ``enq_qdepth`` — and ECN marking on it — mean what they mean on the python target;
* counters for the scenario sampler over P4Runtime: BMv2 has no runtime API, so port bytes,
  queue depths and ECN marks come from ``p4/fabric.p4``'s own counters and registers.

BMv2 has no PFC: a scenario variant that needs it is reported as not supported on bmv2.
"""
from __future__ import annotations

import functools
import math
import shutil
import subprocess
from pathlib import Path

from fabriclab.errors import UserError

BINARIES = ("simple_switch_grpc", "p4c-bm2-ss")
CLI = "simple_switch_CLI"
THRIFT_BASE = 9090         # BMv2's default Thrift port, offset per switch as gRPC ports are from 9559
GRPC_BASE = 9559
PRIORITY_QUEUES = 8
CPU_PORT = 255             # p4/include/defines.p4 CPU_PORT_NUMBER
NOT_SUPPORTED = {"pfc": "PFC is not supported on bmv2 (simple_switch sends and honours no pause frames)"}


def missing_reason() -> str | None:
    """Why ``--target bmv2`` cannot run here, or None."""
    missing = [binary for binary in (*BINARIES, CLI) if not shutil.which(binary)]
    if missing:
        names = ", ".join(missing[:-1]) + " and " + missing[-1] if len(missing) > 1 else missing[0]
        return f"{names} not on PATH (build them with `make bmv2`, e.g. in the Vagrant VM)"
    return None


def compile_program(program: Path, out_dir: Path) -> tuple[Path, Path]:
    """``p4c-bm2-ss`` (v1model is its default architecture): (BMv2 JSON, P4Info text) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{program.stem}.json"
    p4info_path = out_dir / f"{program.stem}.p4info.txt"      # .txt: text format in every p4c
    result = subprocess.run(["p4c-bm2-ss", "-o", str(json_path), "--p4runtime-files", str(p4info_path),
                             str(program)], capture_output=True, text=True)
    if result.returncode != 0:
        first = (result.stderr or result.stdout).strip().splitlines()
        raise UserError(f"p4c-bm2-ss could not compile {program}: {first[0] if first else 'no output'}")
    return json_path, p4info_path


def thrift_port(grpc_port: int) -> int:
    return THRIFT_BASE + grpc_port - GRPC_BASE


@functools.lru_cache(maxsize=None)
def has_priority_queues(binary: str = "simple_switch_grpc") -> bool:
    """Whether this simple_switch_grpc takes ``--priority-queues`` (newer releases do)."""
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--priority-queues" in out.stdout + out.stderr


def command(*, device_id: int, grpc_port: int, interfaces: dict[int, str], json_path: str,
            log_file: Path | None = None, pcap_dir: Path | None = None, priority_queues: bool = False) -> list[str]:
    """simple_switch_grpc's argv. ``log_file``: BMv2's per-packet trace goes there; without it
    BMv2 logs nothing per packet (its logger is off unless --log-file or --log-console)."""
    cmd = ["simple_switch_grpc", "--device-id", str(device_id),
           *(arg for port, name in interfaces.items() for arg in ("-i", f"{port}@{name}")),
           "--thrift-port", str(thrift_port(grpc_port))]
    if log_file is not None:
        cmd += ["--log-file", str(log_file), "--log-level", "trace", "--log-flush"]
    if pcap_dir is not None:
        cmd += ["--pcap", str(pcap_dir)]
    cmd += [json_path, "--", "--grpc-server-addr", f"127.0.0.1:{grpc_port}", "--cpu-port", str(CPU_PORT)]
    if priority_queues:
        cmd += ["--priority-queues", str(PRIORITY_QUEUES)]
    return cmd


def queue_commands(config_file: str | Path, ports: list[int], priority_queues: bool) -> list[str]:
    """``simple_switch_CLI`` lines giving every egress queue of ``ports`` the link's rate (in
    MTU-sized frames per second: BMv2 paces packets, not bytes) and the depth the python
    target's traffic manager lets one congested queue reach (alpha / (1 + alpha) of the shared
    buffer, or the static ``queue_limit``), in packets."""
    from fabriclab.switch.switch_config import load_config

    config = load_config(config_file)
    resolved = config.resolve(ports)
    limit = (config.queue_limit_bytes if config.queue_limit_bytes is not None
             else config.alpha / (1 + config.alpha) * resolved.shared_bytes)
    depth = max(1, int(limit // config.max_frame))
    lines = []
    for port in ports:
        pps = max(1, math.floor(resolved.ports[port].rate_bps / (8 * config.max_frame)))
        targets = [f"{port} {prio}" for prio in range(PRIORITY_QUEUES)] if priority_queues else [str(port)]
        for target in targets:
            lines += [f"set_queue_rate {pps} {target}", f"set_queue_depth {depth} {target}"]
    return lines


def run_cli(grpc_port: int, lines: list[str], timeout: float = 60.0) -> str:
    """Feed ``lines`` to simple_switch_CLI on the switch's Thrift port; a refused command is a
    UserError quoting BMv2's answer."""
    try:
        proc = subprocess.run([CLI, "--thrift-port", str(thrift_port(grpc_port))], input="\n".join(lines) + "\n",
                              capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"{CLI} on Thrift port {thrift_port(grpc_port)} failed: {exc}") from None
    bad = [ln for ln in proc.stdout.splitlines() if "Error" in ln or "Invalid" in ln or "exception" in ln.lower()]
    if proc.returncode != 0 or bad:
        reason = (bad or (proc.stderr.strip().splitlines() or ["no output"]))[0]
        raise UserError(f"{CLI} on Thrift port {thrift_port(grpc_port)}: {reason.strip()}")
    return proc.stdout


def not_supported(variant_config: dict) -> str | None:
    """Why a scenario variant cannot run as written on bmv2, or None."""
    if variant_config["switch"]["pfc"]:
        return NOT_SUPPORTED["pfc"]
    return None


class StatsClient:
    """The scenario sampler's view of one BMv2 switch, read from fabric.p4's own counters and
    registers over P4Runtime (over simple_switch_CLI for registers where the switch's
    P4Runtime server does not read them), in the shape of the python target's runtime API
    ``stats``: per port ``tx_bytes`` (``FabricEgress.port_tx``) and per priority ``qdepth``
    (``port_queue_depth``: what the last packet out left behind) and ``max_qdepth``
    (``FabricEgress.queue_depth_max``). BMv2 counts no drops per queue; ``queue_drops`` is the
    switch's total: frames in, less those its ingress dropped, less frames out."""

    def __init__(self, grpc_addr: str, device_id: int, ports: list[int], grpc_port: int):
        from fabriclab.p4runtime.client import P4RuntimeClient

        self.ports, self.grpc_port = ports, grpc_port
        self.client = P4RuntimeClient(grpc_addr, device_id=device_id, timeout=10.0)
        # reads need no stream: no arbitration, so the controller stays primary
        self.client.fetch_p4info()

    def call(self, cmd: str, **args):
        if cmd == "stats":
            return self.stats()
        if cmd == "counters":
            return self.counters(args["name"])
        raise UserError(f"bmv2 switches answer 'stats' and 'counters', not {cmd!r}")

    def counters(self, name: str) -> dict[str, list]:
        """Every P4 counter called ``name`` (or ending in ``.name``): its cells as [packets, bytes]."""
        out = {}
        for full in self.client.names.names("counters"):
            if full == name or full.endswith("." + name):
                cells = self.client.read_counter(full)
                out[full] = [list(cells.get(i, (0, 0))) for i in range(max(cells, default=-1) + 1)]
        return out

    def register(self, name: str) -> dict[int, int]:
        from fabriclab.p4runtime.client import P4RuntimeError

        try:
            return self.client.read_register(name)
        except P4RuntimeError:
            # simple_switch_CLI answers "RuntimeCmd: NAME= v0, v1, ..." on one line
            answer = run_cli(self.grpc_port, [f"register_read {name}"])
            line = next((ln for ln in answer.splitlines() if f"{name}=" in ln), "")
            values = line.partition("=")[2].split(",")
            return {i: int(v) for i, v in enumerate(values) if v.strip().isdigit()}

    def stats(self) -> dict:
        tx = self.client.read_counter("FabricEgress.port_tx")
        rx = self.client.read_counter("FabricIngress.port_rx")
        ingress_drops = self.client.read_counter("FabricIngress.ingress_drops")
        depth = self.register("port_queue_depth")
        peak = self.register("FabricEgress.queue_depth_max")
        received = sum(rx.get(p, (0, 0))[0] for p in self.ports)
        sent = sum(tx.get(p, (0, 0))[0] for p in self.ports)
        ports = {str(port): {"tx_bytes": tx.get(port, (0, 0))[1],
                             "priorities": {str(prio): {"qdepth": depth.get(port * 8 + prio, 0),
                                                        "max_qdepth": peak.get(port * 8 + prio, 0), "drops": {}}
                                            for prio in range(PRIORITY_QUEUES)}}
                 for port in self.ports}
        dropped = received - sum(cells[0] for cells in ingress_drops.values()) - sent
        return {"target": "bmv2", "tm": {"ports": ports}, "queue_drops": max(0, dropped)}

    def close(self) -> None:
        self.client.close()
