"""Run a scenario: for each variant bring the fabric up, replay its traffic while sampling every
switch's counters, tear the fabric down; then evaluate the expectations and write the results
(``results.json``), the plots and ``report.html``. Each variant's fidelity (fidelity.py) decides
whether its expectations are judged at all.

All traffic entries of a variant run as one merged flow schedule (one transport agent per host,
so two entries on one host share its link as they would on a real NIC); each entry keeps its
own name for the metrics (``flows.<name>.*``, ``victim_mbps`` for an entry named ``victim``).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from fabriclab.errors import UserError
from fabriclab.scenarios.control import (LinkEvents, adaptive_figures, check_events, controller_figures,
                                         link_down_drops)
from fabriclab.scenarios.fidelity import not_valid_because, variant_fidelity, verdict
from fabriclab.scenarios.schema import Scenario
from fabriclab.topologies.description import FabricDescription
from fabriclab.traffic.scale import TimeScale

Progress = Callable[[str], None]
FLOW_SIZE_BINS = [10_000, 100_000, 1_000_000, 10_000_000, 1 << 62]   # bytes, upper bounds
COLLECTIVE_PATTERNS = ("allreduce", "allreduce-hd", "allgather", "reducescatter", "alltoall", "incast",
                       "background")


# --- what a variant runs on -----------------------------------------------------------------

def time_scale(config: dict) -> TimeScale:
    """The variant's time scale: ``scale``, else a 100 Gbit/s fabric run at ``rate`` (as the agents)."""
    return TimeScale(config["scale"]) if config.get("scale") else TimeScale.from_rates(100e9, config["rate"])


def payload_mtu(config: dict) -> int:
    return min(config["transport"]["mtu"], 1024)   # RoCE payload MTU: the largest IB MTU that fits


def fabric_description(config: dict) -> FabricDescription:
    from fabriclab.topologies.catalog import describe

    if "topology_file" in config:
        return describe(None, {}, topo_file=config["topology_file"])
    topo = dict(config["topology"])
    kind = topo.pop("kind")
    topo.setdefault("host_rate", config["rate"])
    topo.setdefault("fabric_rate", config["rate"])
    if config.get("delay"):     # given at real-fabric time: cable delays are scaled like every time
        topo.setdefault("delay", time_scale(config).time(config["delay"]))
    return describe(kind, topo)


def base_rtt_of(description: FabricDescription, mtu: int) -> Callable[[str, str], float]:
    """(src host, dst host) -> the path's base RTT, for HPCC's standalone FCT."""
    from fabriclab.traffic.metrics import base_rtt

    return lambda src, dst: base_rtt([(l.rate_bps, l.delay_s) for l in description.path_links(src, dst)], mtu)


def controller_settings(config: dict):
    from fabriclab.controller.settings import ControllerSettings, EcnSettings
    from fabriclab.traffic.dcqcn import ecn_profile
    from fabriclab.traffic.scale import DEFAULT_SCALE

    sw, transport, controller = config["switch"], config["transport"], config["controller"]
    ecn = sw["ecn"]
    scale = time_scale(config)
    # "auto": the marking profile the DCQCN preset is run with, at the emulated real link rate
    kmin, kmax, pmax = ecn_profile(transport["preset"], scale.real_rate(config["rate"]))
    return ControllerSettings(
        lb=sw["lb"], flowlet_gap_s=scale.time(sw["flowlet_gap"]),
        dscp_priority={transport["data_dscp"]: 3, transport["cnp_dscp"]: 6},
        ecn=EcnSettings(enabled=ecn["enabled"], kmin_bytes=kmin if ecn["kmin"] == "auto" else ecn["kmin"],
                        kmax_bytes=kmax if ecn["kmax"] == "auto" else ecn["kmax"],
                        pmax=pmax if ecn["pmax"] == "auto" else ecn["pmax"]),
        policy=controller["policy"], policy_params=dict(controller["params"]), repair=controller["repair"],
        poll_interval_s=controller["poll_interval"] * (config.get("scale") or DEFAULT_SCALE),
        rest_port=0)    # any free port: the runner reads the controller's figures through it


def switch_config(config: dict) -> dict:
    """The switch.yaml every switch of the variant gets (ports are filled in by bring-up)."""
    sw = config["switch"]
    out: dict[str, Any] = {"alpha": sw["alpha"], "scheduler": sw["scheduler"], "scale": time_scale(config).scale,
                           "lossless": list(sw["lossless_priorities"]) if sw["pfc"] else []}
    if sw["buffer"] != "auto":
        out["buffer"] = sw["buffer"]
    pfc = {key: sw[key] for key in ("xoff", "xon", "headroom") if sw[key] != "auto"}
    if pfc:
        out["pfc"] = pfc
    if sw["pfcwd"]["enabled"] and sw["pfcwd"]["ports"] == ["all"]:
        out["pfcwd"] = _pfcwd_yaml(sw["pfcwd"], "all")
    return out


def _pfcwd_yaml(wd: dict, ports) -> dict:
    return {"enabled": True, "action": wd["action"], "detection_time": f"{wd['detection_time'] * 1e6:g}us",
            "restoration_time": f"{wd['restoration_time'] * 1e6:g}us",
            "poll_interval": f"{wd['poll_interval'] * 1e6:g}us", "ports": ports}


def switch_overrides(config: dict, description: FabricDescription) -> dict[str, dict]:
    """switch.yaml keys for some switches only: the watchdog where ``pfcwd.ports`` names
    switches (every port) or ``SWITCH:PORT``s rather than ``all``."""
    wd = config["switch"]["pfcwd"]
    if not wd["enabled"] or wd["ports"] == ["all"]:
        return {}
    chosen: dict[str, set[int] | None] = {}
    for spec in wd["ports"]:
        name, _, port = spec.partition(":")
        known = description.switch_ports(name) if name in {s.name for s in description.switches} else {}
        if not known or port and (not port.isdigit() or int(port) not in known):
            raise UserError(f"switch.pfcwd.ports: {spec!r} is not SWITCH or SWITCH:PORT of this topology "
                            f"(switches: {', '.join(s.name for s in description.switches)})")
        if not port:
            chosen[name] = None
        elif chosen.get(name, set()) is not None:
            chosen.setdefault(name, set()).add(int(port))
    return {name: {"pfcwd": _pfcwd_yaml(wd, "all" if ports is None else sorted(ports))}
            for name, ports in chosen.items()}


def host_options(config: dict, plan: "TrafficPlan") -> tuple[dict[str, list[str]], list[tuple[float, str, dict]]]:
    """Per host agent options (a slow receiver) and timed agent commands (a stuck NIC)."""
    argv: dict[str, list[str]] = {}
    commands = []
    for host, settings in config["hosts"].items():
        if host not in plan.hosts:
            raise UserError(f"hosts.{host}: not a host that takes part in the traffic "
                            f"({', '.join(plan.hosts)})")
        if "slow_receiver" in settings:
            argv[host] = ["--slow-receiver", str(settings["slow_receiver"])]
        if "stuck_nic" in settings:
            stuck = settings["stuck_nic"]
            commands.append((stuck.get("start", 0.0), host, {"op": "stuck", "seconds": stuck.get("duration")}))
    return argv, commands


def transport_argv(config: dict) -> list[str]:
    transport = config["transport"]
    argv = ["--rate", str(config["rate"]), "--mtu", str(payload_mtu(config)),
            "--dcqcn", transport["preset"] if transport["dcqcn"] else "off",
            "--dscp-data", str(transport["data_dscp"]), "--dscp-cnp", str(transport["cnp_dscp"])]
    if transport["ooo"]:
        argv.append("--ooo")
    argv += ["--rx-buffer", str(transport["rx_buffer"])]
    if not transport["host_pfc"]:
        argv.append("--no-host-pfc")
    if config.get("scale"):
        argv += ["--scale", str(config["scale"])]
    return argv


@dataclass
class TrafficPlan:
    """The variant's RoCE traffic as one schedule over ``hosts``, and which entry owns each flow."""
    hosts: list[str]
    schedule: Any
    entry_of_flow: list[str]
    entries: dict[str, dict] = field(default_factory=dict)   # name -> {"pattern", "size", "ranks", "flows"}
    iperf: list[dict] = field(default_factory=list)


def traffic_plan(config: dict, description: FabricDescription) -> TrafficPlan:
    from fabriclab.traffic import collectives
    from fabriclab.traffic.collectives import Flow, Schedule

    known = {h.name for h in description.hosts}
    hosts: list[str] = []

    def rank(name: str, where: str) -> int:
        if name not in known:
            raise UserError(f"{where}: no host {name!r} in this topology (hosts: {', '.join(sorted(known))})")
        if name not in hosts:
            hosts.append(name)
        return hosts.index(name)

    merged = Schedule("scenario", 0, 0)
    owners: list[str] = []
    entries: dict[str, dict] = {}
    iperf: list[dict] = []
    for i, entry in enumerate(config["traffic"]):
        where = f"traffic[{i}]"
        name = entry.get("name", f"{entry['pattern']}{i}")
        if entry["pattern"] == "iperf3":
            rank(entry["src"], where), rank(entry["dst"], where)
            iperf.append({**entry, "name": name})
            continue
        size = entry.get("size", 1_000_000)
        if entry["pattern"] == "flow":
            members = [entry["src"], entry["dst"]]
            part = Schedule("flow", 2, size, [Flow(0, 0, 1, size, 0)])
        else:
            # incast's rank 0 is the receiver
            members = ([entry["dst"]] if entry["pattern"] == "incast" else []) + entry["hosts"]
            part = collectives.build(entry["pattern"], len(members), size)
        ranks = [rank(h, where) for h in members]
        base = len(merged.flows)
        for flow in part.flows:
            merged.flows.append(Flow(base + flow.id, ranks[flow.src], ranks[flow.dst], flow.size, flow.step,
                                     tuple(base + d for d in flow.deps), entry.get("start", 0.0)))
            owners.append(name)
        entries[name] = {"pattern": part.pattern, "size": size, "ranks": len(members),
                         "flows": list(range(base, len(merged.flows)))}
    for spec in config["capture"]:
        switch, _, port = spec.partition(":")
        if not port.isdigit() or int(port) not in description.switch_ports(switch):
            raise UserError(f"capture: {spec!r} is not SWITCH:PORT of this topology "
                            f"(switches: {', '.join(s.name for s in description.switches)})")
    merged.ranks = len(hosts)
    merged.size = sum(e["size"] for e in entries.values())
    return TrafficPlan(hosts, merged, owners, entries, iperf)


# --- sampling the switches ------------------------------------------------------------------

class CounterSampler(threading.Thread):
    """Polls every switch's runtime API for TM and port statistics at a fixed interval."""

    def __init__(self, description: FabricDescription, interval: float, target: str = "python"):
        super().__init__(daemon=True, name="counter-sampler")
        from fabriclab.switch.runtime_api import RuntimeApiClient, default_api_addr
        from fabriclab.topologies.bmv2 import StatsClient

        self.interval = interval
        if target == "bmv2":   # no runtime API: fabric.p4's counters over P4Runtime
            self.clients = {sw.name: StatsClient(sw.grpc_addr, sw.device_id, description.switch_ports(sw.name),
                                                 sw.grpc_port) for sw in description.switches}
        else:   # a switch busy forwarding on a slow machine answers late; giving up would end the series
            self.clients = {sw.name: RuntimeApiClient(default_api_addr(sw.grpc_addr), timeout=60.0)
                            for sw in description.switches}
        self.samples: list[tuple[float, dict[str, dict]]] = []
        self.errors: list[str] = []
        self._stop_event = threading.Event()
        self.t0 = time.monotonic()

    def sample(self) -> dict[str, dict]:
        return {name: client.call("stats") for name, client in self.clients.items()}

    def run(self) -> None:
        while not self._stop_event.is_set():
            started = time.monotonic()
            try:
                self.samples.append((started - self.t0, self.sample()))
            except Exception as exc:  # a switch that stops answering ends the sampling, not the run
                self.errors.append(str(exc))
                return
            self._stop_event.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)

    def counters(self, name: str) -> dict[str, dict[str, list]]:
        """P4 counter arrays of every switch, e.g. ``FabricEgress.ecn_marks``."""
        return {sw: client.call("counters", name=name) for sw, client in self.clients.items()}

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


# --- turning samples and flow records into metrics ------------------------------------------

def switch_metrics(samples: list[tuple[float, dict[str, dict]]], lossless: set[int]) -> dict:
    """Totals from the last sample and time series from all of them."""
    if not samples:
        return {"drops": {"lossless": None, "lossy": None}, "pfc_pause_tx": None, "pfc_pause_rx": None,
                "max_queue_pkts": None, "headroom_overflow": None, "pfcwd_storms": None, "frozen_s": None,
                "timeseries": {"t": []}}
    times = [t for t, _ in samples]
    last = samples[-1][1]
    drops = {"lossless": 0, "lossy": 0}
    pause_tx = pause_rx = max_queue = overflow = storms = 0
    for stats in last.values():
        drops["lossy"] += stats.get("queue_drops", 0)   # bmv2: the switch's total, lossy (no PFC)
        for port in stats["tm"]["ports"].values():
            for prio, q in port["priorities"].items():
                kind = "lossless" if int(prio) in lossless else "lossy"
                drops[kind] += sum(q["drops"].values())
                pause_tx += q.get("pfc_tx", 0)
                pause_rx += q.get("pfc_rx", 0)
                overflow += q.get("headroom_overflow", 0)
                storms += q.get("pfcwd_storms", 0)
                max_queue = max(max_queue, q["max_qdepth"])
    queue: dict[str, list[int]] = {}
    throughput: dict[str, list[float]] = {}
    paused_since: dict[str, float] = {}
    intervals: list[list] = []
    previous: dict[str, tuple[float, int]] = {}
    for i, (t, per_switch) in enumerate(samples):
        for sw, stats in per_switch.items():
            for port_no, port in stats["tm"]["ports"].items():
                key = f"{sw}:{port_no}"
                prev_t, prev_bytes = previous.get(key, (t, port["tx_bytes"]))
                if key in previous:
                    throughput.setdefault(key, []).append(
                        (port["tx_bytes"] - prev_bytes) * 8 / 1e6 / max(t - prev_t, 1e-6))
                previous[key] = (t, port["tx_bytes"])
                for prio, q in port["priorities"].items():
                    qkey = f"{key}/q{prio}"
                    if q["max_qdepth"] or qkey in queue:
                        queue.setdefault(qkey, [0] * i).append(q["qdepth"])
                    lane = f"{key}|{prio}"
                    if q.get("paused") and lane not in paused_since:
                        paused_since[lane] = t
                    elif not q.get("paused") and lane in paused_since:
                        intervals.append([paused_since.pop(lane), t, key, int(prio)])
    # the hottest queue's average depth while it was busy: the burst's peak aside, how long
    # the queue stays built up is what ECN+DCQCN changes
    busy_means = [sum(v for v in series if v) / max(1, sum(1 for v in series if v)) for series in queue.values()]
    for lane, start in paused_since.items():
        key, prio = lane.split("|")
        intervals.append([start, times[-1], key, int(prio)])
    return {"drops": drops, "pfc_pause_tx": pause_tx, "pfc_pause_rx": pause_rx, "max_queue_pkts": max_queue,
            "headroom_overflow": overflow, "hot_queue_mean_pkts": max(busy_means, default=0.0),
            "pfcwd_storms": storms, "frozen_s": frozen_seconds(samples, lossless),
            "timeseries": {"t": times, "queue_pkts": queue, "throughput_mbps": throughput,
                           "pause_intervals": sorted(intervals)}}


def frozen_seconds(samples: list[tuple[float, dict[str, dict]]], lossless: set[int]) -> float:
    """The longest span over which no switch dequeued a lossless packet while some lossless queue
    held packets and was paused: the fabric frozen (a PFC deadlock, or a storm that spread)."""
    longest, since, previous = 0.0, None, None
    for t, per_switch in samples:
        dequeued, stalled = 0, False
        for stats in per_switch.values():
            for port in stats["tm"]["ports"].values():
                for prio, q in port["priorities"].items():
                    if int(prio) in lossless:
                        dequeued += q["dequeued"]
                        stalled = stalled or bool(q["qdepth"] and q.get("paused"))
        if previous is not None and dequeued == previous[1] and stalled:
            since = previous[0] if since is None else since
            longest = max(longest, t - since)
        else:
            since = None
        previous = (t, dequeued)
    return longest


def keep_captures(run_dir: Path, chosen: list[str]) -> None:
    """The switches capture every port (``--pcap``); keep the chosen ``SWITCH:PORT`` ones."""
    wanted = {tuple(spec.split(":")) for spec in chosen}
    for pcap in (run_dir / "pcap").glob("*/port*.pcap"):
        port = pcap.name.removeprefix("port").split("-")[0]
        if (pcap.parent.name, port) not in wanted:
            pcap.unlink()


def pfc_log_intervals(run_dir: Path, t0: float) -> tuple[list[list], list[str]] | None:
    """Exact pause intervals from the switches' PFC logs (``TIME_NS PORT PRIORITY pause|resume
    tx|rx|wd`` per frame): a port is paused from a received pause until the resume that follows
    (or until the PFC watchdog lifts it, ``resume wd``).
    Also the events in the HPCC simulator's style, ``time node port priority pause|resume``,
    sent side. None where no switch wrote a log (e.g. the bmv2 target)."""
    logs = sorted((run_dir / "switches").glob("*.pfc.log"))
    if not logs:
        return None
    intervals, events = [], []
    for log in logs:
        switch = log.name.removesuffix(".pfc.log")
        since: dict[tuple[str, str], float] = {}
        last = 0.0
        for line in log.read_text().splitlines():
            try:
                time_ns, port, prio, kind, direction = line.split()
                t = int(time_ns) / 1e9 - t0
            except ValueError:
                continue  # a line cut short by the switch's exit
            last = max(last, t)
            if direction == "tx":
                events.append(f"{t:.6f} {switch} {port} {prio} {kind}")
            elif kind == "pause":
                since.setdefault((port, prio), t)
            elif (port, prio) in since:
                intervals.append([since.pop((port, prio)), t, f"{switch}:{port}", int(prio)])
        intervals += [[start, last, f"{switch}:{port}", int(prio)] for (port, prio), start in since.items()]
    return sorted(intervals), sorted(events, key=lambda e: float(e.split()[0]))


def traffic_metrics(plan: TrafficPlan, flows: list, t0: float) -> dict:
    """Per entry: completion time, algbw/busbw (collectives) or rate (single flows)."""
    from fabriclab.traffic.metrics import busbw_factor, slowdown_summary

    per_entry: dict[str, dict] = {}
    by_id = {}
    for record in flows:
        by_id.setdefault(record.flow, []).append(record)
    ccts, fcts = [], []
    for name, entry in plan.entries.items():
        records = [r for fid in entry["flows"] for r in by_id.get(fid, [])]
        if not records:        # none completed (the run timed out)
            per_entry[name] = {"pattern": entry["pattern"], "completed": 0, "flows": len(entry["flows"])}
            continue
        rounds: dict[int, list] = {}
        for r in records:
            rounds.setdefault(r.iteration, []).append(r)
        # one iteration's bytes over one iteration's time (the mean over iterations, as
        # nccl-tests averages), never one iteration's bytes over all of them
        cct = sum(max(r.end for r in rs) - min(r.start for r in rs) for rs in rounds.values()) / len(rounds)
        algbw = entry["size"] / cct if cct > 0 else 0.0
        rates = [r.bytes * 8 / 1e6 / r.fct for r in records if r.fct > 0]
        per_round = sum(r.bytes for r in records) / len(rounds)
        per_entry[name] = {
            "fairness": sum(rates) ** 2 / (len(rates) * sum(x * x for x in rates)) if rates else None,
            "pattern": entry["pattern"], "cct_s": cct, "bytes": sum(r.bytes for r in records),
            "iterations": len(rounds),
            "rate_mbps": per_round * 8 / 1e6 / cct if cct > 0 else 0.0,
            "algbw_mbps": algbw * 8 / 1e6,
            "busbw_mbps": (algbw * busbw_factor(entry["pattern"], entry["ranks"]) * 8 / 1e6
                           if entry["pattern"] != "flow" else algbw * 8 / 1e6),
            "retransmissions": sum(r.retransmissions for r in records),
            "cnp": sum(r.cnps_sent for r in records),
            "completed": len(records), "flows": len(entry["flows"]),
        }
        ccts.append(cct)
        fcts += [r.fct for r in records]
    collectives = [e for e in per_entry.values() if e["pattern"] in COLLECTIVE_PATTERNS and e["completed"]]
    main = collectives[0] if collectives else next((e for e in per_entry.values() if e["completed"]), {})
    flow_rates = {}
    for record in flows:
        points = [(t - t0, bps / 1e6) for t, bps in record.rate_samples]
        if points:
            flow_rates[f"{plan.entry_of_flow[record.flow]}#{record.flow}"] = points
    return {
        "flows": per_entry,
        "cct_s": main.get("cct_s"), "busbw_mbps": main.get("busbw_mbps"), "algbw_mbps": main.get("algbw_mbps"),
        "fairness": main.get("fairness"),
        "retransmissions": sum(r.retransmissions for r in flows),
        "cnp": sum(r.cnps_sent for r in flows),
        "victim_mbps": per_entry.get("victim", {}).get("rate_mbps"),
        # FCT / FCT alone, p50/p95/p99 per flow-size bin, as the HPCC simulator's analysis reports it
        "fct_slowdown": slowdown_summary(flows, FLOW_SIZE_BINS),
        "timeseries": {"flow_rate_mbps": flow_rates, "cct_s": ccts, "fct_s": fcts},
    }


# --- one variant, then the whole scenario ---------------------------------------------------

def run_variant(name: str, config: dict, run_dir: Path, progress: Progress, target: str = "python",
                bmv2_log: bool = False) -> dict:
    from fabriclab.topologies.network import FabricNetwork
    from fabriclab.traffic.cli import find_mininet_host_pid
    from fabriclab.traffic.runner import HostHandle, ScheduleRunner

    description = fabric_description(config)
    plan = traffic_plan(config, description)
    host_argv, commands = host_options(config, plan)
    lossless = set(config["switch"]["lossless_priorities"]) if config["switch"]["pfc"] else set()
    network = FabricNetwork(description, run_dir, target=target, settings=controller_settings(config),
                            switch_config=switch_config(config), pcap=bool(config["capture"]),
                            progress=lambda step: progress(f"{name}: {step}"), bmv2_log=bmv2_log,
                            switch_overrides=switch_overrides(config, description))
    started = time.monotonic()
    with network:
        bring_up = network.report
        handles = []
        for host in plan.hosts:
            spec = description.host(host)
            pid = find_mininet_host_pid(host)
            handles.append(HostHandle(name=host, ip=spec.ip, ifname=spec.intf, netns_path=f"/proc/{pid}/ns/net"))
        sampler = CounterSampler(description, config["sample_interval"], target)
        sampler.start()
        error = None
        background = IperfTraffic(plan.iperf, {h.name: h for h in handles})
        link_events = LinkEvents(network, config["events"])
        result = None
        try:
            progress(f"{name}: traffic")
            background.start()
            link_events.start()
            if plan.schedule.flows:
                with ScheduleRunner(plan.schedule, handles, transport_argv(config), line_rate=config["rate"],
                                    mtu=payload_mtu(config), base_rtt=base_rtt_of(description, payload_mtu(config)),
                                    dcqcn_preset=config["transport"]["preset"] if config["transport"]["dcqcn"] else "",
                                    progress=lambda done, total: progress(f"{name}: traffic {done}/{total} flows"),
                                    host_argv=host_argv, commands=commands) as runner:
                    result = runner.run(iterations=config["iterations"], timeout=config["duration"],
                                        allow_incomplete=config["allow_incomplete"])
            background.join(config["duration"])
            time.sleep(2 * config["sample_interval"])  # let the last queues drain into the samples
        except (TimeoutError, RuntimeError) as exc:
            error = str(exc)
        finally:
            sampler.stop()
            background.join(30)
            link_events.stop()
            control = controller_figures(network)
        error = error or background.error or link_events.error
        ecn = _ecn_marks(sampler)
        sampler.close()
    metrics = switch_metrics(sampler.samples, lossless)
    samples = sampler.samples    # the fidelity window: the traffic, from the first sample to the last
    metrics["fidelity"] = variant_fidelity(samples[0][1] if samples else {}, samples[-1][1] if samples else {},
                                           result.pacing if result is not None else {})
    keep_captures(run_dir, config["capture"])
    logged = pfc_log_intervals(run_dir, sampler.t0)
    if logged is not None:
        metrics["timeseries"]["pause_intervals"], events = logged
        (run_dir / "pfc_events.txt").write_text("".join(f"{e}\n" for e in events))
    # how far pauses spread: the switch egress lanes (port, priority) that were ever paused
    metrics["paused_lanes"] = len({(port, prio) for _, _, port, prio in metrics["timeseries"]["pause_intervals"]})
    if result is not None:
        from fabriclab.traffic.metrics import write_jsonl

        write_jsonl([*result.flows, *result.collectives], run_dir / "flows.jsonl")
        traffic = traffic_metrics(plan, result.flows, sampler.t0)
        metrics["timeseries"].update(traffic.pop("timeseries"))
        metrics.update(traffic)
        nics = result.nic_stats.values()
        metrics.update(flows_completed=len(result.flows), flows_incomplete=result.incomplete,
                       host_pfc_tx=sum(n.get("pfc_tx", 0) for n in nics),
                       host_rx_drops=sum(n.get("rx_drops", 0) for n in nics))
        metrics.update(adaptive_figures(plan, result.flows, config["rate"], min(config["transport"]["mtu"], 1024)))
    metrics.update(control, link_events=link_events.done,
                   link_down_drops=link_down_drops(sampler.samples) if config["events"] else None)
    metrics.setdefault("flows", {}).update(background.results)
    if "victim" in background.results:
        metrics["victim_mbps"] = background.results["victim"]["rate_mbps"]
    metrics.update(ecn_marked=ecn, error=error, bring_up_s=bring_up.seconds,
                   wall_s=time.monotonic() - started, routes=bring_up.routes)
    return metrics


class IperfTraffic:
    """The scenario's iperf3 (TCP) entries, each a client/server pair on its own port, running
    in threads beside the RoCE traffic for the entry's ``duration`` (default 5 s)."""

    BASE_PORT = 5301

    def __init__(self, entries: list[dict], hosts: dict):
        self.entries, self.hosts = entries, hosts
        self.results: dict[str, dict] = {}
        self.error: str | None = None
        self.threads = [threading.Thread(target=self._run, args=(i, e), daemon=True) for i, e in enumerate(entries)]

    def _run(self, index: int, entry: dict) -> None:
        from fabriclab.traffic.iperf import IperfServer, run_client

        src, dst = self.hosts[entry["src"]], self.hosts[entry["dst"]]
        port = self.BASE_PORT + index
        time.sleep(entry.get("start", 0.0))
        try:
            with IperfServer(dst.netns_path, port=port):
                report = run_client(src.netns_path, dst.ip, seconds=entry.get("duration", 5.0), port=port)
        except (RuntimeError, OSError, ValueError) as exc:
            self.error = f"iperf3 {entry['name']}: {exc}"
            return
        self.results[entry["name"]] = {"pattern": "iperf3", "rate_mbps": report.bits_per_second / 1e6,
                                       "bytes": report.received_bytes, "retransmissions": report.retransmits or 0}

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))


def _ecn_marks(sampler: CounterSampler) -> int | None:
    try:
        arrays = sampler.counters("ecn_marks")
    except Exception:
        return None
    return sum(cell[0] for per_switch in arrays.values() for cells in per_switch.values() for cell in cells)


def run_scenario(scenario: Scenario, out_dir: Path, variants: list[str] | None = None,
                 progress: Progress = lambda message: None, targets: tuple[str, ...] = ("python",),
                 bmv2_log: bool = False) -> dict:
    """Every chosen variant on every target (``python``, ``bmv2``), then the expectations on
    each target. With two targets a variant's results are ``VARIANT@TARGET``, side by side; a
    variant a target cannot run as written (PFC on bmv2) is recorded as not supported there,
    and the expectations that name it are neither held nor failed on that target."""
    from fabriclab.topologies import bmv2

    chosen = variants or list(scenario.variants)
    unknown = [v for v in chosen if v not in scenario.variants]
    if unknown:
        raise UserError(f"scenario {scenario.name} has no variant {unknown[0]!r} "
                        f"(variants: {', '.join(scenario.variants)})")
    for vname in chosen:  # check hosts and topologies of every variant before starting anything
        config = scenario.variants[vname]
        description = fabric_description(config)
        host_options(config, traffic_plan(config, description))
        switch_overrides(config, description)
        check_events(config["events"], description)
    out_dir.mkdir(parents=True, exist_ok=True)

    def key(vname: str, target: str) -> str:
        return f"{vname}@{target}" if len(targets) > 1 else vname

    results: dict[str, Any] = {"scenario": scenario.name, "description": scenario.description,
                               "targets": list(targets),
                               "variants": {key(v, t): {} for v in chosen for t in targets}}   # side by side
    for target in targets:
        for vname in chosen:
            config = scenario.variants[vname]
            reason = bmv2.not_supported(config) if target == "bmv2" else None
            if reason:
                results["variants"][key(vname, target)] = {"target": target, "not_supported": reason}
                continue
            result = run_variant(vname, config, out_dir / key(vname, target), progress, target=target,
                                 bmv2_log=bmv2_log)
            results["variants"][key(vname, target)] = {"target": target, **result}
    results["expectations"] = []
    for target in targets:
        measured = {vname: results["variants"][key(vname, target)] for vname in chosen}
        for exp in scenario.expectations:
            if not exp.variants() <= set(chosen):
                continue  # names a variant that was not run (--variant)
            missing = [measured[v]["not_supported"] for v in sorted(exp.variants()) if "not_supported" in measured[v]]
            entry = {"text": exp.text, "target": target}
            if missing:
                held, detail = None, f"not supported on {target}: {missing[0]}"
            else:
                held, detail = exp.evaluate(measured)
                reason = not_valid_because(exp.variants(), measured)
                if reason:
                    held, detail = None, f"{reason} (measured {detail})"
                    entry["valid"] = False
            results["expectations"].append({**entry, "held": held, "detail": detail})
    results["verdict"] = verdict(results["expectations"])
    (out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return results
