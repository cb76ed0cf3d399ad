"""``FabricNetwork``: bring a described fabric up in Mininet with P4 switches and the controller,
and take it down again leaving nothing behind.

Bring-up, in order: write ``fabric.json``, ``controller.json`` and one ``switches/<name>.yaml``
per switch into the run directory; create nodes and veths (Mininet); tune every interface;
start every switch process and wait for its P4Runtime server; start the controller process
(``fabriclab controller``) and wait until it reports the routes installed; configure hosts.

Teardown runs with SIGINT/SIGTERM blocked so a second Ctrl-C cannot leave half a fabric: the
controller, the switch processes, Mininet's nodes, then any veth of this fabric still present.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from fabriclab.controller.settings import ControllerSettings
from fabriclab.errors import UserError
from fabriclab.topologies.description import FabricDescription

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROGRAM = REPO_ROOT / "p4" / "fabric.p4"
# Bring-up deadlines, sized for a VM without hardware acceleration (p4runtime/client.py says why);
# a process that dies is reported at once, so only a hung one waits this long.
SWITCH_START_TIMEOUT_S = 600.0    # a Python interpreter with grpc per worker (or per switch), on 2 shared cores
CONTROLLER_TIMEOUT_S = 1800.0     # connect (300 s) + pipeline (900 s) + table writes (120 s per batch)
RUNTIME_API_OFFSET = 1000          # switch/runtime_api.py default_api_addr: the P4Runtime port + 1000

Progress = Callable[[str], None]


@dataclass
class BringUpReport:
    switches: int = 0
    hosts: int = 0
    links: int = 0
    routes: int = 0
    entries: int = 0
    seconds: float = 0.0
    steps: list[tuple[str, float]] = field(default_factory=list)


class FabricNetwork:
    def __init__(self, description: FabricDescription, run_dir: str | Path, *, target: str = "python",
                 program: str | Path = DEFAULT_PROGRAM, settings: ControllerSettings | None = None,
                 switch_config: dict | None = None, pcap: bool = False, progress: Progress | None = None,
                 switch_workers: int | None = None, bmv2_log: bool = False,
                 switch_overrides: dict[str, dict] | None = None):
        description.validate()
        self.description = description
        self.run_dir = Path(run_dir).resolve()
        self.target = target
        self.program = Path(program).resolve()
        self.settings = settings or ControllerSettings()
        self.settings.validate()
        self.switch_config = switch_config or {}
        self.switch_overrides = switch_overrides or {}   # switch name -> top-level switch.yaml keys
        self.pcap = pcap
        # python switches spread over this many worker processes, several per process (None:
        # $FABRICLAB_SWITCH_WORKERS, else 0: a process per switch, what scenarios' fidelity
        # budgets were measured with: switches sharing a loop and a GIL are later under load)
        if switch_workers is None:
            given = os.environ.get("FABRICLAB_SWITCH_WORKERS", "0")
            try:
                switch_workers = int(given)
            except ValueError:
                raise UserError(f"FABRICLAB_SWITCH_WORKERS={given}: not a number") from None
        self.switch_workers = switch_workers
        if self.switch_workers < 0:
            raise UserError(f"--switch-workers must be 0 or more, got {switch_workers}")
        self.workers: list = []
        self.progress = progress or (lambda message: None)
        self.net = None
        self.bmv2_json: str | None = None      # p4c-bm2-ss output, for the bmv2 target
        self.p4info_path: Path | None = None   # and p4c's P4Info, which the controller pushes
        self.bmv2_log = bmv2_log               # bmv2 target: BMv2's per-packet trace (slows it down)
        self.controller: subprocess.Popen | None = None
        self.report = BringUpReport()

    # -- paths ---------------------------------------------------------------------------
    @property
    def fabric_json(self) -> Path:
        return self.run_dir / "fabric.json"

    @property
    def settings_json(self) -> Path:
        return self.run_dir / "controller.json"

    @property
    def status_json(self) -> Path:
        return self.run_dir / "controller-status.json"

    def switch_config_path(self, name: str) -> Path:
        return self.run_dir / "switches" / f"{name}.yaml"

    # -- bring-up ------------------------------------------------------------------------
    def start(self) -> BringUpReport:
        started = time.monotonic()
        if not self.program.exists():
            raise UserError(f"P4 program {self.program} not found")
        taken = [name for name in interface_names(self.description) if Path("/sys/class/net", name).exists()]
        if taken:
            # Never build over (and later delete) another fabric's interfaces.
            raise UserError(f"interface {taken[0]} already exists: another fabric uses these node names "
                            "(give --prefix, or run fabriclab clean)")
        for sw in self.description.switches:
            for port, what in ((sw.grpc_port, "P4Runtime"), (sw.grpc_port + RUNTIME_API_OFFSET, "runtime API")):
                if not port_free(port):
                    raise UserError(f"port {port} ({what} of switch {sw.name}) is in use: another fabric? "
                                    "(give --grpc-port-base)")
        if self.settings.rest_port and not port_free(self.settings.rest_port, self.settings.rest_host):
            raise UserError(f"port {self.settings.rest_port} (the controller's REST API) is in use: "
                            "another fabric? (give --rest-port)")
        try:
            self._step("writing run directory", self._write_run_dir)
            self._step("creating nodes and links", self._build)
            self._step("starting switches", self._start_switches)
            self._step("installing routes", self._start_controller)
            if self.target == "bmv2":
                self._step("pacing bmv2 queues at the link rates", self._configure_bmv2_queues)
            self._step("configuring hosts", self._configure_hosts)
        except BaseException:
            self.stop()
            raise
        d = self.description
        self.report.switches, self.report.hosts, self.report.links = len(d.switches), len(d.hosts), len(d.links)
        self.report.seconds = time.monotonic() - started
        return self.report

    def _step(self, what: str, action: Callable[[], None]) -> None:
        self.progress(what)
        t0 = time.monotonic()
        try:
            action()
        finally:
            self._record_processes()
        self.report.steps.append((what, time.monotonic() - t0))

    def _record_processes(self) -> None:
        """pid and command-line marker of every process this fabric runs, for ``fabriclab
        clean --run-dir`` after a kill -9 (the marker guards against reused pids)."""
        processes = {}
        if self.net is not None:
            for node in self.net.hosts + self.net.switches:
                if node.shell is not None:
                    processes[f"{node.name}:shell"] = {"pid": node.pid, "marker": f"mininet:{node.name}"}
            for switch in self.net.switches:
                if getattr(switch, "process", None) is not None:
                    processes[switch.name] = {"pid": switch.process.pid, "marker": str(self.run_dir)}
        if self.controller is not None:
            processes["controller"] = {"pid": self.controller.pid, "marker": str(self.run_dir)}
        if self.run_dir.exists():
            (self.run_dir / "processes.json").write_text(json.dumps(processes, indent=1) + "\n")

    def _write_run_dir(self) -> None:
        (self.run_dir / "switches").mkdir(parents=True, exist_ok=True)
        self.description.save(self.fabric_json)
        self.settings.save(self.settings_json)
        self.status_json.unlink(missing_ok=True)
        if self.target == "bmv2":
            self._compile_for_bmv2()
        for sw in self.description.switches:
            config = {**self.switch_config, **self.switch_overrides.get(sw.name, {})}
            config["mtu"] = self.description.mtu
            # Every port runs at its link's rate with its link's delay (the TM paces it).
            ports = {port: {"rate": self.description.link_at(sw.name, port).rate_bps,
                            "delay": self.description.link_at(sw.name, port).delay_s}
                     for port in self.description.switch_ports(sw.name)}
            config["ports"] = {**ports, **(self.switch_config.get("ports") or {})}
            self.switch_config_path(sw.name).write_text(yaml.safe_dump(config, sort_keys=False))

    def _compile_for_bmv2(self) -> None:
        from fabriclab.topologies import bmv2

        json_path, p4info_path = bmv2.compile_program(self.program, self.run_dir / "build")
        self.bmv2_json, self.p4info_path = str(json_path), p4info_path

    def _build(self) -> None:
        from mininet.link import Link
        from mininet.net import Mininet

        from fabriclab.topologies.fabric_topo import FabricTopo
        from fabriclab.topologies.hostsetup import tune_switch_interface
        from fabriclab.topologies.p4switch import P4Switch

        def make_switch(name: str, **params) -> P4Switch:
            # The controller pushes the program to python switches; bmv2 starts from p4c's JSON.
            return P4Switch(name, run_dir=str(self.run_dir), target=self.target, bmv2_json=self.bmv2_json,
                            bmv2_log=self.bmv2_log, config_file=str(self.switch_config_path(name)), pcap=self.pcap,
                            **params)

        self.net = Mininet(topo=FabricTopo(self.description), switch=make_switch, link=Link, controller=None,
                           build=False, autoSetMacs=False, autoStaticArp=False)
        self.net.build()
        for sw in self.net.switches:
            for intf in sw.intfList():
                if intf.name != "lo":
                    tune_switch_interface(intf.name, self.description.mtu)

    def _start_switches(self) -> None:
        """Every switch process at once (they start in parallel), then wait for each switch's
        P4Runtime server. Python switches go round-robin into ``switch_workers`` processes."""
        from fabriclab.topologies.p4switch import SwitchWorker

        switches = self.net.switches
        if self.target == "python" and self.switch_workers:
            count = min(self.switch_workers, len(switches))
            self.workers = [SwitchWorker(i, switches[i::count], self.run_dir) for i in range(count)]
        for switch in switches:
            switch.start([])
        for worker in self.workers:
            worker.start()
        deadline = time.monotonic() + SWITCH_START_TIMEOUT_S
        for switch in switches:
            switch.wait_ready(deadline)

    def _configure_bmv2_queues(self) -> None:
        for switch in self.net.switches:
            switch.configure_queues()

    def memory(self) -> dict:
        """Resident memory (VmRSS, MiB) of the fabric's processes while it runs: the switch
        processes in total and per switch, and the controller."""
        pids = {sw.process.pid for sw in self.net.switches if getattr(sw, "process", None) is not None}
        switch_mb = sum(rss_mb(pid) for pid in pids)
        controller_mb = rss_mb(self.controller.pid) if self.controller is not None else 0.0
        count = len(self.net.switches)
        return {"switch_processes": len(pids), "switches_mb": round(switch_mb, 1),
                "per_switch_mb": round(switch_mb / count, 1) if count else None,
                "controller_mb": round(controller_mb, 1), "total_mb": round(switch_mb + controller_mb, 1)}

    def _start_controller(self) -> None:
        cmd = [sys.executable, "-m", "fabriclab", "controller", "--fabric", str(self.fabric_json),
               "--settings", str(self.settings_json), "--status", str(self.status_json),
               "--p4", str(self.program)]
        if self.bmv2_json:
            cmd += ["--bmv2-json", self.bmv2_json, "--p4info", str(self.p4info_path)]
        log = open(self.run_dir / "controller.log", "ab")
        with log:
            from fabriclab.topologies.p4switch import die_with_parent

            self.controller = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True, preexec_fn=die_with_parent)
        deadline = time.monotonic() + CONTROLLER_TIMEOUT_S
        while True:
            status = self.controller_status()
            if status.get("state") == "ready":
                self.report.routes = status.get("routes", 0)
                self.report.entries = status.get("entries", 0)
                return
            if status.get("state") == "failed":
                raise UserError(f"controller failed: {status.get('error', 'see controller.log')}")
            if self.controller.poll() is not None:
                raise UserError(f"controller exited with status {self.controller.returncode}: see "
                                f"{self.run_dir / 'controller.log'}")
            if time.monotonic() > deadline:
                raise UserError(f"controller did not install routes within {CONTROLLER_TIMEOUT_S:.0f} s")
            time.sleep(0.1)

    @property
    def rest_url(self) -> str | None:
        """The controller's REST API, once it serves (None without one)."""
        return self.controller_status().get("rest")

    def controller_status(self) -> dict:
        try:
            return json.loads(self.status_json.read_text())
        except (OSError, ValueError):
            return {}

    def _configure_hosts(self) -> None:
        from fabriclab.topologies.hostsetup import host_commands

        for spec in self.description.hosts:
            host = self.net.get(spec.name)
            rate = self.description.link_rate(spec.name, 0)
            out = host.cmd(" && ".join(host_commands(spec, self.description, rate)) + " || echo FAILED")
            if "FAILED" in out:
                raise UserError(f"configuring host {spec.name} failed: {out.strip().splitlines()[0]}")

    # -- teardown ------------------------------------------------------------------------
    def stop(self) -> None:
        """Best effort: every step runs even if one before it failed; the first error is raised."""
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        errors: list[BaseException] = []

        def attempt(action: Callable[[], None]) -> None:
            try:
                action()
            except Exception as exc:
                errors.append(exc)

        try:
            attempt(self._stop_controller)
            if self.net is not None:
                net, self.net = self.net, None
                for switch in net.switches:
                    attempt(switch.stop_process)
                for node in net.hosts + net.switches:
                    if node.shell is not None and node.waiting:
                        # A signal interrupted a command: Mininet refuses to run another on this
                        # shell (and net.stop() runs one per interface) until it is released.
                        attempt(node.sendInt)
                        node.waiting = False
                attempt(net.stop)
                for node in net.hosts + net.switches:
                    attempt(node.terminate)    # no-op when net.stop() already did it
                attempt(lambda: remove_interfaces(self.description))   # whatever Mininet did not take down
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if errors:
            raise errors[0]

    def _stop_controller(self) -> None:
        if self.controller is None:
            return
        if self.controller.poll() is None:
            self.controller.terminate()
            try:
                self.controller.wait(5)
            except subprocess.TimeoutExpired:
                self.controller.kill()
                self.controller.wait()
        self.controller = None

    def __enter__(self) -> "FabricNetwork":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def default_switch_workers() -> int:
    """``fabriclab up`` and the benchmarks: one switch worker process per core."""
    return os.cpu_count() or 1


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MiB (VmRSS in /proc/PID/status); 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def interface_names(description: FabricDescription) -> list[str]:
    """Every root-namespace interface the fabric creates (switch ports)."""
    names = []
    for link in description.links:
        for node, intf in zip((link.node1, link.node2), link.intf_names()):
            if description.is_switch(node):
                names.append(intf)
    return names


def remove_interfaces(description: FabricDescription) -> list[str]:
    """Delete this fabric's veths that still exist (deleting one end removes its peer)."""
    removed = []
    for name in interface_names(description):
        if Path("/sys/class/net", name).exists():
            subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
            removed.append(name)
    return removed
