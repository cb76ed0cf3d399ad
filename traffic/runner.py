"""Replay a flow schedule on real hosts: one agent per host, a coordinator that starts each flow
when its dependencies have been delivered, and the metrics of every flow and iteration.

The coordinator talks to the agents over their stdin/stdout (``agent.py``); a flow from rank s
to rank d rides QP ``1 + s·1024 + d`` (one QP per ordered pair, messages delivered in order),
so the k-th message delivered on that QP is the k-th flow the coordinator started on it.
"""
from __future__ import annotations

import json
import selectors
import subprocess
import sys
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Callable

from fabriclab.errors import UserError
from fabriclab.traffic.collectives import Schedule
from fabriclab.traffic.metrics import CollectiveRecord, FlowRecord, fct_slowdown

MAX_RANKS = 1024
AGENT_START_TIMEOUT_S = 300.0   # an agent imports scapy (~1 s here): minutes in a VM without acceleration


@dataclass
class HostHandle:
    """Where a host's agent runs: its name, IP, interface and network namespace file."""
    name: str
    ip: str
    ifname: str
    netns_path: str            # /proc/<pid>/ns/net (Mininet) or /run/netns/<name>
    mac: str | None = None


@dataclass
class RunResult:
    flows: list[FlowRecord] = field(default_factory=list)
    collectives: list[CollectiveRecord] = field(default_factory=list)
    qp_stats: dict[str, list[dict]] = field(default_factory=dict)
    nic_stats: dict[str, dict] = field(default_factory=dict)   # per host: PFC sent, receive drops...
    pacing: dict[str, dict] = field(default_factory=dict)   # per host: the pacing error figure (fidelity)
    incomplete: int = 0          # flows that had not completed when the run timed out


class AgentProcess:
    def __init__(self, host: HostHandle, transport_argv: list[str]):
        self.host = host
        cmd = ["nsenter", f"--net={host.netns_path}", sys.executable, "-m", "fabriclab.traffic.agent",
               "--ifname", host.ifname, *transport_argv]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._buffer = b""

    def send(self, **cmd) -> None:
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()

    def read_events(self) -> list[dict]:
        chunk = self.proc.stdout.read1(65536)
        if not chunk:
            err = self.proc.stderr.read().decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"agent on {self.host.name} exited: {err[-1] if err else 'no message'}")
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send(op="quit")
                self.proc.wait(timeout=3)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()


def qpn_for(src: int, dst: int) -> int:
    return 1 + src * MAX_RANKS + dst


class ScheduleRunner:
    """Runs ``schedule`` over ``hosts`` (rank i = hosts[i]). ``host_argv`` adds agent options per
    host name; ``commands`` are ``(seconds after the start, host name, command)`` sent to agents
    as the run goes (e.g. a stuck NIC)."""

    def __init__(self, schedule: Schedule, hosts: list[HostHandle], transport_argv: list[str], *,
                 line_rate: float, mtu: int, dcqcn_preset: str = "",
                 base_rtt: Callable[[str, str], float] | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 host_argv: dict[str, list[str]] | None = None, commands: list[tuple[float, str, dict]] = ()):
        if len(hosts) < schedule.ranks:
            raise UserError(f"pattern needs {schedule.ranks} hosts, got {len(hosts)}")
        if schedule.ranks > MAX_RANKS:
            raise UserError(f"at most {MAX_RANKS} ranks")
        self.schedule, self.hosts = schedule, hosts[:schedule.ranks]
        self.transport_argv = transport_argv
        self.line_rate, self.mtu, self.dcqcn_preset = line_rate, mtu, dcqcn_preset
        self.base_rtt = base_rtt           # (src host, dst host) -> s: the path's base RTT
        self.progress = progress
        self.host_argv = host_argv or {}
        ranks = {h.name: r for r, h in enumerate(self.hosts)}
        unknown = [name for _, name, _ in commands if name not in ranks]
        if unknown:
            raise UserError(f"no host {unknown[0]!r} among the ranks")
        self.commands = sorted((t, ranks[name], cmd) for t, name, cmd in commands)
        self.agents: list[AgentProcess] = []
        self._partial: list[FlowRecord] = []      # flows completed so far in the running iteration
        self._cnps_seen: dict[tuple[int, int], int] = defaultdict(int)  # receiving QP's running total
        self._selector = selectors.DefaultSelector()

    def __enter__(self) -> "ScheduleRunner":
        try:
            for host in self.hosts:
                agent = AgentProcess(host, self.transport_argv + self.host_argv.get(host.name, []))
                self.agents.append(agent)
                self._selector.register(agent.proc.stdout, selectors.EVENT_READ, len(self.agents) - 1)
            waiting = set(range(len(self.agents)))
            deadline = time.monotonic() + AGENT_START_TIMEOUT_S
            while waiting:
                for rank, event in self._events(deadline):
                    if event["ev"] == "ready":
                        self.hosts[rank].mac = event["mac"]
                        waiting.discard(rank)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for agent in self.agents:
            agent.stop()
        self._selector.close()

    def _events(self, deadline: float, max_wait: float = 1.0):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out waiting for the host agents")
        for key, _ in self._selector.select(min(remaining, max_wait)):
            rank = key.data
            for event in self.agents[rank].read_events():
                if event.get("ev") == "error":
                    raise RuntimeError(f"agent on {self.hosts[rank].name}: {event['message']}")
                yield rank, event

    def run(self, iterations: int = 1, gap: float = 0.0, timeout: float = 600.0,
            allow_incomplete: bool = False) -> RunResult:
        """Every iteration of the schedule; past ``timeout`` a TimeoutError, or with
        ``allow_incomplete`` the flows completed so far (``incomplete`` counts the others)."""
        result = RunResult()
        deadline = time.monotonic() + timeout
        for iteration in range(iterations):
            if iteration and gap:
                time.sleep(gap)
            try:
                flows, collective = self._run_once(iteration, deadline)
            except TimeoutError:
                if not allow_incomplete:
                    raise
                for rec in self._partial:
                    rec.slowdown = self._slowdown(rec)
                result.flows += self._partial
                result.incomplete = len(self.schedule.flows) * (iterations - iteration) - len(self._partial)
                break
            result.flows += flows
            result.collectives.append(collective)
        for rank, agent in enumerate(self.agents):
            agent.send(op="stats")
        pending = set(range(len(self.agents)))
        stats_deadline = time.monotonic() + 10
        while pending:
            for rank, event in self._events(stats_deadline):
                if event["ev"] == "stats":
                    result.qp_stats[self.hosts[rank].name] = event["qps"]
                    result.nic_stats[self.hosts[rank].name] = event.get("nic", {})
                    result.pacing[self.hosts[rank].name] = event["pacing"]
                    pending.discard(rank)
        return result

    def _slowdown(self, rec: FlowRecord) -> float:
        """HPCC's slowdown: FCT to the last ACK over the standalone FCT, base RTT included."""
        rtt = self.base_rtt(rec.src, rec.dst) if self.base_rtt else 0.0
        return fct_slowdown((rec.acked or rec.end) - rec.start, rec.bytes, self.line_rate, self.mtu, rtt)

    def _run_once(self, iteration: int, deadline: float) -> tuple[list[FlowRecord], CollectiveRecord]:
        sched = self.schedule
        waiting_on = {f.id: len(f.deps) for f in sched.flows}
        dependents: dict[int, list[int]] = defaultdict(list)
        for f in sched.flows:
            for d in f.deps:
                dependents[d].append(f.id)
        in_flight: dict[tuple[int, int], deque[int]] = defaultdict(deque)  # (src, dst) -> flow ids in order
        records: dict[int, FlowRecord] = {}
        delivered: set[int] = set()
        acked: set[int] = set()
        ip_rank = {h.ip: r for r, h in enumerate(self.hosts)}

        def start(fid: int) -> None:
            f = sched.flows[fid]
            src, dst = self.hosts[f.src], self.hosts[f.dst]
            in_flight[(f.src, f.dst)].append(fid)
            records[fid] = FlowRecord(flow=fid, src=src.name, dst=dst.name, bytes=f.size, start=0.0, end=0.0,
                                      iteration=iteration, pattern=sched.pattern)
            self.agents[f.src].send(op="send", flow=fid, peer=dst.ip, qpn=qpn_for(f.src, f.dst), size=f.size)

        began = time.monotonic()
        timed = sorted((f.start_s, f.id) for f in sched.flows if not f.deps and f.start_s > 0)
        commands = list(self.commands) if iteration == 0 else []
        for f in sched.flows:
            if not f.deps and f.start_s <= 0:
                start(f.id)
        total = len(sched.flows)
        self._partial = []
        while len(delivered) < total or len(acked) < total:
            while timed and time.monotonic() - began >= timed[0][0]:
                start(timed.pop(0)[1])
            while commands and time.monotonic() - began >= commands[0][0]:
                _, rank, cmd = commands.pop(0)
                self.agents[rank].send(**cmd)
            upcoming = ([timed[0][0]] if timed else []) + ([commands[0][0]] if commands else [])
            wait = max(0.0, began + min(upcoming) - time.monotonic()) if upcoming else 1.0
            for rank, event in self._events(deadline, max_wait=wait):
                if event["ev"] == "acked":
                    rec = records[event["flow"]]
                    rec.start = event["t_post"]
                    rec.acked = event["t_done"]
                    rec.retransmissions = event["retransmissions"]
                    rec.timeouts = event["timeouts"]
                    rec.cnps_received = event["cnps_received"]
                    rec.rate_samples = [tuple(s) for s in event["rates"]]
                    acked.add(event["flow"])
                    if event["flow"] in delivered:
                        self._partial.append(rec)
                elif event["ev"] == "delivered":
                    src = ip_rank.get(event["peer"])
                    queue = in_flight.get((src, rank))
                    if not queue:
                        continue  # a message we did not start (e.g. another tool's traffic)
                    fid = queue.popleft()
                    rec = records[fid]
                    rec.end = event["t"]
                    rec.cnps_sent = event["cnps_sent"] - self._cnps_seen[(src, rank)]
                    self._cnps_seen[(src, rank)] = event["cnps_sent"]
                    delivered.add(fid)
                    if fid in acked:
                        self._partial.append(rec)
                    if self.progress:
                        self.progress(len(delivered), total)
                    for nxt in dependents[fid]:
                        waiting_on[nxt] -= 1
                        if waiting_on[nxt] == 0:
                            start(nxt)
        flows = [records[f.id] for f in sched.flows]
        for rec in flows:
            rec.slowdown = self._slowdown(rec)
        first_start = min(r.start for r in flows)
        last_end = max(r.end for r in flows)
        collective = CollectiveRecord(sched.pattern, sched.ranks, sched.size, iteration, last_end - first_start,
                                      dcqcn_preset=self.dcqcn_preset)
        return flows, collective
