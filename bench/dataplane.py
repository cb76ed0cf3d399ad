"""``fabriclab bench dataplane``: what one ``fabriclab switch`` forwards between two hosts, against
the machine's ceilings on the same topology: the kernel's bridge (what this machine forwards at
all) and a bare Python AF_PACKET forwarder (what a Python switch could reach); with ``--target
both`` (or ``bmv2``) also BMv2's ``simple_switch_grpc`` running the same fabric.p4, where installed.

    ns fl<tag>h1 [eth0 10.0.0.1] --veth-- fl<tag>-p1 ==(forwarder)== fl<tag>-p2 --veth-- [eth0 10.0.0.2] ns fl<tag>h2

The switch runs ``p4/fabric.p4`` with host routes written over P4Runtime, ports at 10 Gbit/s
so its traffic manager never paces below what Python can forward (see SWITCH_YAML). Per forwarder:

* RTT: ping h1 -> h2 (average, ms), and TCP Mbit/s: iperf3 h1 -> h2, on the idle forwarder;
* UDP packets/s: the highest offered rate of 1400-byte frames with < 1 % loss, found by
  doubling the rate, then bisection; raw-socket sender and receiver (bench/rawflow.py) whose
  per-frame loops are C, so neither limits the figure, and the hosts' IP stacks are not in it;
  then a ping checks it still forwards.

Hosts resolve each other statically: to the router MAC through fabric.p4 (it routes every
IPv4 frame and drops ARP), to the peer's own MAC through the bridge and the bare forwarder. Offloads are
off on every veth end, as in a fabric (topologies/hostsetup.py). Everything created —
namespaces, veths, processes — is removed on exit, Ctrl-C and SIGTERM included.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from fabriclab import P4_DIR
from fabriclab.bench.switch_stats import drops_in
from fabriclab.errors import UserError

FRAME_SIZE = 1400
MAX_LOSS = 0.01
FIRST_RATE = 2000.0               # frames/s of the first UDP run; doubled while runs pass
SENDER_SHORTFALL = 0.9            # a sender offering less than this share of the rate is the limit
STEP_SECONDS = 1.0
BISECTIONS = 5
TCP_SECONDS = 3.0
PINGS = 20
# 10G ports so the switch's CPU, not its pacing, limits the rate; a static 1 MB lossy queue so
# that what is measured is forwarding capacity, not the dynamic threshold's drops of a burst.
SWITCH_YAML = "rate: 10G\nqueue_limit: 1MB\n"
SWITCH_START_TIMEOUT_S = 90.0     # the switch compiles fabric.p4 at start; 2 cores shared
BMV2_QUEUE_PACKETS = 1000         # BMv2's queues in packets: about the fabriclab switch's 1 MB
ROUTER_MAC = "02:00:00:bd:00:fe"
SWITCH_STATS = "switch.stats.json"
SINK_IP = "10.0.0.3"              # routed to h2 but not h2's address: its kernel drops the
                                  # benchmark frames silently (no ICMP port-unreachable back)


@dataclass
class BenchHost:
    netns: str
    ip: str
    mac: str
    port_ifname: str              # the root-namespace end, a switch port
    ifname: str = "eth0"

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return _run("ip", "netns", "exec", self.netns, *cmd, check=check)


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Teardown that a second Ctrl-C (or SIGTERM) cannot cut short."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise UserError(f"{' '.join(cmd)}: {(result.stderr or result.stdout).strip() or 'failed'}")
    return result


class TwoHostTopology:
    """Two host namespaces, each on a veth whose other end stays in the root namespace for a
    forwarder. A context manager; ``tag`` keeps names apart (``fl<tag>h1``, ``fl<tag>-p1``)."""

    def __init__(self, tag: str = "bd"):
        if len(tag) > 8:
            raise ValueError("tag too long for interface names")
        self.hosts = [BenchHost(f"fl{tag}h{i}", f"10.0.0.{i}", f"02:00:00:bd:00:0{i}", f"fl{tag}-p{i}")
                      for i in (1, 2)]

    def __enter__(self) -> "TwoHostTopology":
        from fabriclab.topologies.hostsetup import offload_args

        try:
            for host in self.hosts:
                _run("ip", "netns", "add", host.netns)
                _run("ip", "link", "add", host.port_ifname, "type", "veth", "peer", "name", host.ifname,
                     "netns", host.netns)
                _run(*offload_args(host.port_ifname), check=False)
                _run("sysctl", "-qw", f"net.ipv6.conf.{host.port_ifname}.disable_ipv6=1", check=False)
                _run("ip", "link", "set", host.port_ifname, "up")
                host.run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", check=False)
                host.run(*offload_args(host.ifname), check=False)
                host.run("ip", "link", "set", host.ifname, "address", host.mac, "up")
                host.run("ip", "addr", "add", f"{host.ip}/24", "dev", host.ifname)
                host.run("ip", "link", "set", "lo", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def point_at(self, macs: tuple[str, str]) -> None:
        """Static neighbour entries: h1 reaches h2 at ``macs[0]``, h2 reaches h1 at ``macs[1]``."""
        (h1, h2), (mac_to_h2, mac_to_h1) = self.hosts, macs
        h1.run("ip", "neigh", "replace", h2.ip, "lladdr", mac_to_h2, "dev", h1.ifname, "nud", "permanent")
        h2.run("ip", "neigh", "replace", h1.ip, "lladdr", mac_to_h1, "dev", h2.ifname, "nud", "permanent")

    def __exit__(self, *exc) -> None:
        with signals_blocked():
            for host in self.hosts:
                # deleting the namespace destroys its veth end, and with it the peer
                _run("ip", "netns", "del", host.netns, check=False)
                if Path("/sys/class/net", host.port_ifname).exists():
                    _run("ip", "link", "del", host.port_ifname, check=False)


# ---- forwarders ----

class Forwarder:
    """A forwarder process between the two switch ports; stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, name: str, cmd: list[str], log_path: Path):
        from fabriclab.topologies.p4switch import die_with_parent

        self.name = name
        self.log_path = log_path
        with open(log_path, "wb") as log:
            # own session: a Ctrl-C at the terminal reaches us, and we stop it in order;
            # die_with_parent: even a kill -9 of the benchmark does not leave it running
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                                         start_new_session=True, preexec_fn=die_with_parent)

    def log_tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no output"

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def failure(self) -> str:
        return f"{self.name} exited ({self.proc.returncode}): {self.log_tail()}"

    def stop(self) -> None:
        with signals_blocked():
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc.stdout.close()


class Bridge:
    """The kernel's bridge between the two switch ports: no process, nothing to exit."""

    name = "kernel bridge"

    def __init__(self, ifname: str, ports: list[str]):
        self.ifname, self.ports = ifname, ports

    def exited(self) -> bool:
        return False

    def failure(self) -> str:
        return f"{self.name} {self.ifname} stopped forwarding"

    def stop(self) -> None:
        with signals_blocked():
            _run("ip", "link", "del", self.ifname, check=False)   # frees its ports for the next forwarder


def start_bridge(topo: TwoHostTopology, workdir: Path) -> Bridge:
    h1, h2 = topo.hosts
    bridge = Bridge(h1.port_ifname.removesuffix("-p1") + "-br", [h1.port_ifname, h2.port_ifname])
    try:
        _run("ip", "link", "add", bridge.ifname, "type", "bridge", "forward_delay", "0")
        for port in bridge.ports:
            _run("ip", "link", "set", port, "master", bridge.ifname)
        _run("ip", "link", "set", bridge.ifname, "up")
        topo.point_at((h2.mac, h1.mac))
    except BaseException:
        bridge.stop()
        raise
    return bridge


def start_bare_forwarder(topo: TwoHostTopology, workdir: Path) -> Forwarder:
    h1, h2 = topo.hosts
    fwd = Forwarder("bare forwarder", [sys.executable, "-m", "fabriclab.bench.bare_forwarder",
                                       h1.port_ifname, h2.port_ifname], workdir / "bare.log")
    try:
        if fwd.proc.stdout.readline().strip() != b"ready":
            fwd.proc.wait()
            raise UserError(fwd.failure())
        topo.point_at((h2.mac, h1.mac))
    except BaseException:
        fwd.stop()
        raise
    return fwd


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tcp_port_free(port: int) -> bool:
    if not 1024 <= port < 65536:
        return False
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_fabriclab_switch(topo: TwoHostTopology, workdir: Path,
                           program: Path = P4_DIR / "fabric.p4") -> Forwarder:
    """``fabriclab switch`` running ``program`` with host routes for h1, h2 and the sink address."""
    h1, h2 = topo.hosts
    config = workdir / "switch.yaml"
    config.write_text(SWITCH_YAML)
    addr = f"127.0.0.1:{_free_tcp_port()}"
    fwd = Forwarder("fabriclab switch", [sys.executable, "-m", "fabriclab", "switch", "--p4", str(program),
                                         "-i", f"1@{h1.port_ifname}", "-i", f"2@{h2.port_ifname}",
                                         "--grpc-addr", addr, "--device-id", "1", "--config", str(config),
                                         "--stats-file", str(workdir / SWITCH_STATS), "--log-level", "warning"],
                    workdir / "switch.log")
    try:
        client = _connect(fwd, addr)
        try:
            _write_routes(client, topo)
        finally:
            client.close()
        topo.point_at((ROUTER_MAC, ROUTER_MAC))
    except BaseException:
        fwd.stop()
        raise
    return fwd


def _write_routes(client, topo: TwoHostTopology) -> None:
    """fabric.p4's switch config and host routes to h1, h2 and the sink address."""
    h1, h2 = topo.hosts
    client.set_default_action("switch_config", "set_switch_config",
                              {"switch_id": 1, "router_mac": ROUTER_MAC, "hash_seed": 0})
    for ip, port, mac in ((h1.ip, 1, h1.mac), (h2.ip, 2, h2.mac), (SINK_IP, 2, h2.mac)):
        client.insert_table_entry("ipv4_route", {"hdr.ipv4.dst_addr": f"{ip}/32"}, "route_to_port",
                                  {"port": port, "dmac": mac})


def _connect(fwd: Forwarder, addr: str, pipeline: tuple[Path, Path] | None = None):
    """A P4Runtime client of the starting switch once it serves a pipeline: its own (it loaded
    the program), or ``pipeline`` = (P4Info text, device config) pushed here (BMv2)."""
    from google.protobuf import text_format

    from fabriclab.p4runtime.client import P4RuntimeClient, P4RuntimeError

    deadline = time.monotonic() + SWITCH_START_TIMEOUT_S
    while True:
        if fwd.exited():
            raise UserError(fwd.failure())
        client = P4RuntimeClient(addr, device_id=1, timeout=2.0)
        try:
            client.connect(fetch_p4info=pipeline is None)
            if pipeline is not None:
                from finsy.proto import p4i

                p4info_path, config_path = pipeline
                client.set_pipeline_config(text_format.Parse(p4info_path.read_text(), p4i.P4Info()),
                                           config_path.read_bytes())
            if client.names is not None:
                return client
        except P4RuntimeError:
            pass
        client.close()
        if time.monotonic() > deadline:
            raise UserError(f"{fwd.name}: no P4Runtime pipeline on {addr} within "
                            f"{SWITCH_START_TIMEOUT_S:.0f} s; its log ends: {fwd.log_tail()}")
        time.sleep(0.3)


# ---- measurements ----

def _rawflow(host: BenchHost, *args: str) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", host.netns, sys.executable, "-m", "fabriclab.bench.rawflow",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen, what: str) -> dict:
    out, err = proc.communicate(timeout=60)
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise UserError(f"{what} failed: {err.strip().splitlines()[-1] if err.strip() else 'no output'}") from None


def udp_step(topo: TwoHostTopology, dst_mac: str, rate: float, seconds: float) -> dict:
    """One run at ``rate`` frames/s (0: flat out): sent, received, loss, delivered pps."""
    h1, h2 = topo.hosts
    tag = secrets.token_hex(8)
    receiver = _rawflow(h2, "receive", h2.ifname, "--tag", tag, "--seconds", f"{seconds + 1.0:.2f}")
    sender = None
    try:
        if receiver.stdout.readline().strip() != "ready":
            raise UserError(f"receiver: {receiver.stderr.read().strip() or 'did not start'}")
        sender = _rawflow(h1, "send", h1.ifname, "--dst-mac", dst_mac, "--src-ip", h1.ip, "--dst-ip", SINK_IP,
                          "--tag", tag, "--size", str(FRAME_SIZE), "--rate", f"{rate:.0f}",
                          "--seconds", f"{seconds:.2f}")
        sent = _result(sender, "sender")
        received = _result(receiver, "receiver")["received"]
    finally:
        for proc in (sender, receiver):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
    loss = 1 - received / sent["sent"] if sent["sent"] else 1.0
    return {"offered_pps": sent["sent"] / sent["seconds"], "sent": sent["sent"], "received": received,
            "loss": loss, "delivered_pps": received / sent["seconds"]}


def max_udp_pps(topo: TwoHostTopology, dst_mac: str, seconds: float = STEP_SECONDS,
                bisections: int = BISECTIONS, on_step=None) -> dict:
    """The highest offered rate with < MAX_LOSS loss: the rate doubles from FIRST_RATE while
    runs pass, then bisection between the best passing and the lowest failing rate (ramping up
    keeps the overload, and so the run's length, mild). ``sender_limited``: the sender could not offer the
    rate asked while nothing was lost, so the figure is the sender's, a lower bound."""
    steps = []

    def step(rate: float) -> dict:
        result = udp_step(topo, dst_mac, rate, seconds)
        steps.append(result)
        if on_step:
            on_step(result)
        return result

    best, failing, rate = 0.0, None, FIRST_RATE
    while failing is None:
        result = step(rate)
        if result["loss"] >= MAX_LOSS:
            failing = rate
        elif result["offered_pps"] < SENDER_SHORTFALL * rate:
            return {"pps": result["delivered_pps"], "steps": steps, "sender_limited": True}
        else:
            best = rate
            rate *= 2
    if best == 0:
        raise UserError(f"{failing:,.0f} frames/s already lose {steps[-1]['loss']:.0%}: the forwarder "
                        f"{'does not forward' if steps[-1]['received'] == 0 else 'is far too slow'}")
    for _ in range(bisections):
        rate = (best + failing) / 2
        if step(rate)["loss"] < MAX_LOSS:
            best = rate
        else:
            failing = rate
    passing = [s["delivered_pps"] for s in steps if s["loss"] < MAX_LOSS]
    return {"pps": max(passing), "steps": steps, "sender_limited": False}


def tcp_mbps(topo: TwoHostTopology, seconds: float = TCP_SECONDS) -> float:
    """iperf3 h1 -> h2; tried twice, since on a loaded machine a client has been seen to hang
    past its test time (stopped by run_client's timeout)."""
    from fabriclab.traffic.iperf import IperfServer, run_client

    h1, h2 = topo.hosts
    error = None
    for _ in range(2):
        try:
            with IperfServer(h2.netns_path):
                return run_client(h1.netns_path, h2.ip, seconds=seconds).bits_per_second / 1e6
        except (subprocess.TimeoutExpired, RuntimeError) as exc:
            error = exc
    raise UserError(f"iperf3 {h1.ip} -> {h2.ip} failed twice: {error}")


def rtt_ms(topo: TwoHostTopology, count: int = PINGS) -> float:
    h1, h2 = topo.hosts
    out = h1.run("ping", "-q", "-c", str(count), "-i", "0.05", "-W", "2", h2.ip, check=False).stdout
    m = re.search(r"= [\d.]+/([\d.]+)/", out)
    if not m:
        raise UserError(f"ping {h2.ip} through the forwarder got no reply")
    return float(m.group(1))


def measure(topo: TwoHostTopology, fwd_mac: str, seconds: float, bisections: int, tcp_seconds: float,
            status=None) -> dict:
    """RTT and TCP on the idle forwarder, then the UDP search, then whether it still forwards."""
    def on_step(step: dict) -> None:
        if status:
            status(f"UDP {step['offered_pps']:,.0f} pps offered: {step['loss']:.1%} loss")

    if status:
        status("ping")
    rtt = rtt_ms(topo)
    if status:
        status("TCP (iperf3)")
    tcp = tcp_mbps(topo, tcp_seconds)
    udp = max_udp_pps(topo, fwd_mac, seconds, bisections, on_step)
    try:
        rtt_ms(topo, count=3)
        still_forwards = True
    except UserError:
        still_forwards = False
        if status:
            status("no ping reply after the UDP runs: the forwarder stopped forwarding")
    return {"pps": udp["pps"], "sender_limited": udp["sender_limited"], "tcp_mbps": tcp, "rtt_ms": rtt,
            "forwards_after_udp": still_forwards}


def start_bmv2_switch(topo: TwoHostTopology, workdir: Path, program: Path = P4_DIR / "fabric.p4") -> Forwarder:
    """BMv2's simple_switch_grpc running ``program`` (compiled by p4c-bm2-ss), with the same
    routes as ``start_fabriclab_switch`` and queues as deep as its (BMV2_QUEUE_PACKETS)."""
    from fabriclab.topologies import bmv2

    h1, h2 = topo.hosts
    json_path, p4info_path = bmv2.compile_program(program, workdir)
    grpc_port = _free_tcp_port()
    while not _tcp_port_free(bmv2.thrift_port(grpc_port)):   # its Thrift port goes with it
        grpc_port = _free_tcp_port()
    cmd = bmv2.command(device_id=1, grpc_port=grpc_port, interfaces={1: h1.port_ifname, 2: h2.port_ifname},
                       json_path=str(json_path), priority_queues=bmv2.has_priority_queues())
    fwd = Forwarder("simple_switch_grpc", cmd, workdir / "bmv2.log")
    fwd.grpc_port = grpc_port
    try:
        client = _connect(fwd, f"127.0.0.1:{grpc_port}", pipeline=(p4info_path, json_path))
        try:
            _write_routes(client, topo)
        finally:
            client.close()
        bmv2.run_cli(grpc_port, [f"set_queue_depth {BMV2_QUEUE_PACKETS}"])
        topo.point_at((ROUTER_MAC, ROUTER_MAC))
    except BaseException:
        fwd.stop()
        raise
    return fwd


FORWARDERS = {"bridge": start_bridge, "bare": start_bare_forwarder, "fabriclab": start_fabriclab_switch,
              "bmv2": start_bmv2_switch}
TARGET_FORWARDERS = {"python": ("bridge", "bare", "fabriclab"), "bmv2": ("bridge", "bmv2"),
                     "both": ("bridge", "bare", "fabriclab", "bmv2")}


def compare_forwarders(tag: str = "bd", seconds: float = STEP_SECONDS, bisections: int = BISECTIONS,
                       tcp_seconds: float = TCP_SECONDS, status=None,
                       forwarders: tuple[str, ...] = TARGET_FORWARDERS["python"]) -> dict:
    """The forwarders on one topology, one after the other; the JSON figures, per forwarder
    ``<name>_pps``, ``<name>_tcp_mbps``, ``<name>_rtt_ms``, ``<name>_sender_limited`` (no loss
    even flat out: the figure is the sender's, a lower bound) and ``<name>_forwards_after_udp``."""
    from fabriclab.bench.rawflow import native

    native()    # build the C sender/receiver now, not inside a timed step
    figures: dict = {"program": "fabric.p4", "frame_bytes": FRAME_SIZE, "forwarders": list(forwarders)}
    with tempfile.TemporaryDirectory(prefix="fabriclab-bench-") as tmp, TwoHostTopology(tag) as topo:
        for name in forwarders:
            if status:
                status(f"starting the {name} forwarder")
            fwd = FORWARDERS[name](topo, Path(tmp))
            try:
                mac = topo.hosts[1].mac if name in ("bridge", "bare") else ROUTER_MAC
                measured = measure(topo, mac, seconds, bisections, tcp_seconds,
                                   status and (lambda text, n=name: status(f"{n}: {text}")))
            except UserError:
                if fwd.exited():   # the real cause
                    raise UserError(fwd.failure()) from None
                raise
            finally:
                fwd.stop()
            figures.update({f"{name}_pps": round(measured["pps"]), f"{name}_tcp_mbps": round(measured["tcp_mbps"], 1),
                            f"{name}_rtt_ms": measured["rtt_ms"], f"{name}_sender_limited": measured["sender_limited"],
                            f"{name}_forwards_after_udp": measured["forwards_after_udp"]})
        if "fabriclab" in forwarders:
            stats = Path(tmp) / SWITCH_STATS     # written by the switch as it exits
            figures["fabriclab_switch_drops"] = drops_in([stats]) if stats.exists() else {}
            figures["engine"] = json.loads(stats.read_text()).get("engine") if stats.exists() else None
    for name in ("fabriclab", "bmv2"):
        for ceiling in ("bare", "bridge"):
            if f"{name}_pps" in figures and figures.get(f"{ceiling}_pps"):
                figures[f"{name}_to_{ceiling}"] = round(figures[f"{name}_pps"] / figures[f"{ceiling}_pps"], 3)
    return figures


LABELS = {"bridge": "kernel bridge", "bare": "bare AF_PACKET forwarder", "fabriclab": "fabriclab switch",
          "bmv2": "simple_switch_grpc"}


def run(args: argparse.Namespace) -> dict:
    from rich.console import Console
    from rich.table import Table

    from fabriclab.topologies import bmv2

    if os.geteuid() != 0:
        raise UserError("fabriclab bench dataplane needs root (namespaces, veths, raw sockets)")
    target = getattr(args, "target", "python")
    if target in ("bmv2", "both") and bmv2.missing_reason():
        raise UserError(f"--target {target}: {bmv2.missing_reason()}")
    forwarders = TARGET_FORWARDERS[target]
    console = Console(stderr=True)
    with console.status("dataplane benchmark") as spinner:
        def status(text: str) -> None:
            spinner.update(text)
            console.log(text)

        figures = compare_forwarders(status=status, forwarders=forwarders)
    table = Table(title=f"two hosts through one forwarder ({FRAME_SIZE}-byte UDP frames, < 1 % loss; "
                        "C sender and receiver)")
    table.add_column("")
    for name in forwarders:
        engine = f" ({figures['program']}, {figures.get('engine')} engine)" if name == "fabriclab" else ""
        table.add_column(LABELS[name] + engine, justify="right")
    table.add_row("UDP packets/s", *(f"{figures[f'{n}_pps']:,}" + (" (sender-bound)" if figures[f"{n}_sender_limited"]
                                                                   else "") for n in forwarders))
    table.add_row("TCP Mbit/s (iperf3)", *(f"{figures[f'{n}_tcp_mbps']:.0f}" for n in forwarders))
    table.add_row("ping RTT ms", *(f"{figures[f'{n}_rtt_ms']:.3f}" for n in forwarders))
    console.print(table)
    if "fabriclab_switch_drops" in figures:
        drops = ", ".join(f"{reason} {count:,}" for reason, count in figures["fabriclab_switch_drops"].items())
        console.print(f"fabriclab switch drops over the whole run: {drops or 'none'}")
    for name in ("fabriclab", "bmv2"):
        for ceiling, goal in (("bridge", ""), ("bare", " (goal: 50 %)")):
            ratio = figures.get(f"{name}_to_{ceiling}")
            if ratio is not None:
                console.print(f"{LABELS[name]} / {LABELS[ceiling]}: {ratio:.0%}{goal if name == 'fabriclab' else ''}")
    return figures
