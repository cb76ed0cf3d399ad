"""``P4Switch``: a Mininet switch node running a P4 software switch process.

Two targets:

- ``python``: fabriclab's own switch (``fabriclab switch``): the compiled P4 program, the traffic
  manager with priority queues and PFC, and a P4Runtime server.
- ``bmv2``: the P4 reference switch ``simple_switch_grpc`` running ``p4c-bm2-ss`` output, its
  egress queues paced at the link rate (no PFC): see ``bmv2.py``.

Switches stay in the root network namespace (as Mininet's own switches do) so the controller
reaches every P4Runtime server on 127.0.0.1; port p of switch s is the veth ``s-eth<p>``.
Each switch process gets its own log file (and pcaps, if asked) under the run directory, runs
in its own session (a Ctrl-C at the terminal reaches ``fabriclab up`` only, which stops the
switches in order) and is killed by the kernel if the process that started it dies (strictly:
the thread, as PR_SET_PDEATHSIG has it, so start fabrics from a thread that outlives them).
"""
from __future__ import annotations

import ctypes
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from mininet.node import Switch

from fabriclab.errors import UserError
from fabriclab.topologies import bmv2
from fabriclab.topologies.bmv2 import CPU_PORT

TARGETS = ("python", "bmv2")
_PR_SET_PDEATHSIG = 1


def choose_target(requested: str | None) -> str:
    """``python`` unless asked otherwise; ``auto`` picks bmv2 where its tools are on PATH.
    Only the python target has PFC, hence the default."""
    if requested in (None, "python"):
        return "python"
    if requested == "auto":
        return "python" if bmv2.missing_reason() else "bmv2"
    if requested == "bmv2":
        if bmv2.missing_reason():
            raise UserError(f"--target bmv2: {bmv2.missing_reason()}")
        return "bmv2"
    raise UserError(f"unknown target {requested!r} (choose from python, bmv2, auto)")


def die_with_parent() -> None:
    """In the child before exec: SIGTERM us when the process that started us dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class P4Switch(Switch):
    """``program``: the python target loads it at start; without it the switch waits for a
    pipeline over P4Runtime (how ``FabricNetwork`` runs it: the controller pushes fabric.p4)."""

    def __init__(self, name: str, device_id: int, grpc_port: int, run_dir: str, program: str | None = None,
                 target: str = "python", config_file: str | None = None, pcap: bool = False,
                 bmv2_json: str | None = None, bmv2_log: bool = False, **params):
        params.pop("inNamespace", None)
        super().__init__(name, inNamespace=False, **params)
        if target not in TARGETS:
            raise UserError(f"unknown target {target!r} (choose from {', '.join(TARGETS)})")
        self.device_id = device_id
        self.grpc_port = grpc_port
        self.run_dir = Path(run_dir)
        self.program = program
        self.target = target
        self.config_file = config_file
        self.pcap = pcap
        self.bmv2_json = bmv2_json
        self.bmv2_log = bmv2_log     # bmv2 target: BMv2's per-packet trace into <name>.bmv2.log
        self.log_path = self.run_dir / "switches" / f"{name}.log"
        self.stats_path = self.run_dir / "switches" / f"{name}.stats.json"   # python target: final counters stay
        self.pfc_log_path = self.run_dir / "switches" / f"{name}.pfc.log"   # python target: every PFC frame
        self.process: subprocess.Popen | None = None
        self.worker: SwitchWorker | None = None    # the process that runs this switch with others

    def run_by(self, worker: "SwitchWorker") -> None:
        """This switch runs in ``worker``'s process (python target): its log is the worker's."""
        self.worker = worker
        self.log_path = worker.log_path

    @property
    def grpc_addr(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def data_ports(self) -> dict[int, str]:
        """P4 port number -> interface name (Mininet's control interface 'lo' is not one)."""
        return {port: intf.name for intf, port in sorted(self.ports.items(), key=lambda item: item[1])
                if intf.name != "lo"}

    def _interface_args(self) -> list[str]:
        return [arg for port, name in self.data_ports().items() for arg in ("-i", f"{port}@{name}")]

    def command(self) -> list[str]:
        if self.target == "python":
            return [sys.executable, "-m", "fabriclab", "switch", *self.switch_args()]
        pcap_dir = self.run_dir / "pcap" / self.name
        if not self.bmv2_json:
            raise UserError(f"{self.name}: the bmv2 target needs the program compiled by p4c-bm2-ss")
        return bmv2.command(device_id=self.device_id, grpc_port=self.grpc_port, interfaces=self.data_ports(),
                            json_path=self.bmv2_json, log_file=self.log_path.with_suffix(".bmv2.log") if self.bmv2_log else None,
                            pcap_dir=pcap_dir if self.pcap else None, priority_queues=bmv2.has_priority_queues())

    def configure_queues(self) -> None:
        """bmv2 target: every egress queue paced at its link's rate, as deep as the python
        target's threshold lets one queue grow (the python target's TM does this itself)."""
        lines = bmv2.queue_commands(self.config_file, list(self.data_ports()), bmv2.has_priority_queues())
        bmv2.run_cli(self.grpc_port, lines)

    def switch_args(self) -> list[str]:
        """The python target's ``fabriclab switch`` options for this switch (also a line of a
        worker's spec)."""
        args = [*self._interface_args(), "--name", self.name, "--device-id", str(self.device_id), "--grpc-addr", self.grpc_addr,
                "--cpu-port", str(CPU_PORT), "--stats-file", str(self.stats_path), "--pfc-log", str(self.pfc_log_path)]
        if self.program:   # else the switch waits for the controller's SetForwardingPipelineConfig
            args += ["--p4", self.program]
        if self.config_file:
            args += ["--config", self.config_file]
        if self.pcap:
            args += ["--pcap", str(self.run_dir / "pcap" / self.name)]
        return args

    def start(self, controllers: list) -> None:
        """Start the switch process (unless a SwitchWorker runs it); ``wait_ready`` then waits
        for its P4Runtime server."""
        if self.pcap:
            (self.run_dir / "pcap" / self.name).mkdir(parents=True, exist_ok=True)
        if self.worker is not None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        with open(self.log_path, "ab") as log:
            log.write((" ".join(cmd) + "\n").encode())
            log.flush()
            self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, preexec_fn=die_with_parent)

    def wait_ready(self, deadline: float) -> None:
        """Block until the P4Runtime port accepts connections; a dead process or the deadline
        (time.monotonic) raises UserError quoting the end of the switch's log."""
        while True:
            if self.process is None or self.process.poll() is not None:
                raise UserError(f"switch {self.name} exited at start: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.grpc_port), timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise UserError(f"switch {self.name}: no P4Runtime server on {self.grpc_addr} in time: {self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def stop(self, deleteIntfs: bool = True) -> None:  # noqa: N803 - Mininet's signature
        self.stop_process()
        super().stop(deleteIntfs)

    def stop_process(self, timeout: float = 5.0) -> None:
        if self.worker is not None:
            self.worker.stop(timeout)
        else:
            stop_process(self.process, timeout)
        self.process = None

    def connected(self) -> bool:
        return self.process is not None and self.process.poll() is None



def stop_process(process: subprocess.Popen | None, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; reaps it."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class SwitchWorker:
    """One ``fabriclab switch-worker`` process running several python-target P4Switches
    (``fabriclab up --switch-workers``): its spec is ``switches/worker-<index>.spec`` in the run
    directory, one line of ``fabriclab switch`` options per switch; its log ``worker-<index>.log``."""

    def __init__(self, index: int, switches: list[P4Switch], run_dir: str | Path):
        self.switches = switches
        self.spec_path = Path(run_dir) / "switches" / f"worker-{index}.spec"
        self.log_path = self.spec_path.with_suffix(".log")
        self.process: subprocess.Popen | None = None
        for switch in switches:
            switch.run_by(self)

    def start(self) -> None:
        self.spec_path.parent.mkdir(parents=True, exist_ok=True)
        self.spec_path.write_text("".join(shlex.join(sw.switch_args()) + "\n" for sw in self.switches))
        cmd = [sys.executable, "-m", "fabriclab", "switch-worker", str(self.spec_path)]
        with open(self.log_path, "ab") as log:
            log.write((" ".join(cmd) + "\n").encode())
            log.flush()
            self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, preexec_fn=die_with_parent)
        for switch in self.switches:
            switch.process = self.process

    def stop(self, timeout: float = 5.0) -> None:
        stop_process(self.process, timeout)
