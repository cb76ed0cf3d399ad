"""``ExerciseNetwork``: a tutorials-layout exercise up in Mininet on fabriclab's switch.

The exercise becomes a ``FabricDescription`` so bring-up and teardown are ``FabricNetwork``'s
(run directory, switch processes, interface tuning, leftovers removed on every exit path);
what differs is done here: every switch starts with the exercise's program, its
``sN-runtime.json`` is written over P4Runtime as the tutorials' loader writes it, and each
host gets ``eth0`` and runs its ``commands`` instead of fabriclab's addressing plan.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from fabriclab.errors import UserError
from fabriclab.labs.exercise import DEFAULT_RATE_BPS, Exercise
from fabriclab.topologies.description import FabricDescription, HostSpec, LinkSpec, SwitchSpec
from fabriclab.topologies.network import FabricNetwork

GRPC_PORT_BASE = 50050     # switch i (from 1) serves P4Runtime on 50050 + i, as the tutorials' do


def describe_exercise(exercise: Exercise, grpc_port_base: int = GRPC_PORT_BASE) -> FabricDescription:
    switches = [SwitchSpec(name, i, "switch", grpc_port_base + i, router_mac="")
                for i, name in enumerate(exercise.switches, 1)]
    hosts = []
    for host in exercise.hosts.values():
        link = next((l for l in exercise.links if host.name in (l.node1, l.node2)), None)
        if link is None:
            raise UserError(f"{exercise.topology_path}: host {host.name} has no link")
        switch, port = (link.node2, link.port2) if link.node1 == host.name else (link.node1, link.port1)
        hosts.append(HostSpec(host.name, host.ip, host.prefix_len, host.mac, host.gateway, "", switch, port))
    links = [LinkSpec(l.node1, l.port1, l.node2, l.port2, l.rate_bps or DEFAULT_RATE_BPS, l.delay_s)
             for l in exercise.links]
    return FabricDescription("exercise", {"folder": str(exercise.folder)}, switches, hosts, links)


@dataclass
class PingResult:
    src: str
    dst: str
    ip: str
    ok: bool


class ExerciseNetwork(FabricNetwork):
    def __init__(self, exercise: Exercise, run_dir: str | Path, pcap: bool = False, progress=None):
        super().__init__(describe_exercise(exercise), run_dir, program=exercise.program, pcap=pcap,
                         progress=progress)
        self.exercise = exercise
        self.entries = 0

    def start(self):
        from fabriclab.labs.pipeline_bench import compile_program

        compile_program(self.program)      # a compile error in one line, before anything starts
        return super().start()

    def _build(self) -> None:
        from mininet.link import Link
        from mininet.net import Mininet
        from mininet.node import Host
        from mininet.topo import Topo

        from fabriclab.topologies.hostsetup import tune_switch_interface
        from fabriclab.topologies.p4switch import P4Switch

        description = self.description

        class Topology(Topo):
            def build(self) -> None:
                for sw in description.switches:
                    self.addSwitch(sw.name, dpid=f"{sw.device_id:016x}", device_id=sw.device_id,
                                   grpc_port=sw.grpc_port)
                for host in description.hosts:
                    self.addHost(host.name, ip=f"{host.ip}/{host.prefix_len}", mac=host.mac)
                for link in description.links:
                    self.addLink(link.node1, link.node2, port1=link.port1, port2=link.port2)

        def make_switch(name: str, **params) -> P4Switch:
            return P4Switch(name, run_dir=str(self.run_dir), program=str(self.program),
                            config_file=str(self.switch_config_path(name)), pcap=self.pcap, **params)

        self.net = Mininet(topo=Topology(), switch=make_switch, host=Host, link=Link, controller=None,
                           build=False, autoSetMacs=False, autoStaticArp=False)
        self.net.build()
        for sw in self.net.switches:
            for intf in sw.intfList():
                if intf.name != "lo":
                    tune_switch_interface(intf.name, description.mtu)

    def _start_controller(self) -> None:
        """No controller: each switch's runtime JSON, written over P4Runtime."""
        from fabriclab.labs import runtime_json
        from fabriclab.p4runtime.client import P4RuntimeClient, P4RuntimeError

        for sw in self.description.switches:
            path = self.exercise.switches[sw.name]
            if path is None:
                continue
            config = runtime_json.load(path)
            try:
                with P4RuntimeClient(sw.grpc_addr, device_id=sw.device_id).connect() as client:
                    self.entries += runtime_json.apply_p4runtime(client, config)
            except P4RuntimeError as exc:
                raise UserError(f"switch {sw.name}: {exc}") from None
        self.report.entries = self.entries

    def _configure_hosts(self) -> None:
        from fabriclab.topologies.hostsetup import offload_args, tbf_command

        for spec in self.description.hosts:
            host = self.net.get(spec.name)
            host.defaultIntf().rename("eth0")        # the tutorials' commands name it
            setup = [" ".join(offload_args("eth0")) + " 2>/dev/null",
                     "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"]
            rate = next(l.rate_bps for l in self.exercise.links if spec.name in (l.node1, l.node2))
            if rate:       # the tutorials shape a link only when it has a bandwidth
                setup.append(tbf_command("eth0", rate, self.description.mtu))
            out = host.cmd(" && ".join(setup) + " || echo FAILED")
            if "FAILED" in out:
                raise UserError(f"configuring host {spec.name} failed: {out.strip().splitlines()[0]}")
            for command in self.exercise.hosts[spec.name].commands:
                host.cmd(command)

    def pingall(self, tries: int = 3, timeout_s: int = 1) -> list[PingResult]:
        """Every host pings every other host's IP; a pair passes if one of ``tries`` rounds gets
        a reply. Within a round each host pings all the others at once, so a broken exercise
        fails in seconds rather than minutes."""
        hosts = self.description.hosts
        reached: set[tuple[str, str]] = set()
        for attempt in range(tries):
            for src in hosts:
                targets = [dst for dst in hosts if dst.name != src.name and (src.name, dst.name) not in reached]
                if not targets:
                    continue
                pings = " ".join(f"(ping -c 1 -W {timeout_s} {dst.ip} >/dev/null 2>&1 && echo REPLY {dst.ip}) &"
                                 for dst in targets)
                out = self.net.get(src.name).cmd(f"{pings} wait")
                replied = {line.split()[1] for line in out.splitlines() if line.startswith("REPLY ")}
                reached |= {(src.name, dst.name) for dst in targets if dst.ip in replied}
            if len(reached) == len(hosts) * (len(hosts) - 1):
                break
            time.sleep(0.2)
        return [PingResult(src.name, dst.name, dst.ip, (src.name, dst.name) in reached)
                for src in hosts for dst in hosts if src.name != dst.name]
