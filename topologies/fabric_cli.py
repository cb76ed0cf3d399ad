"""Mininet's CLI with fabric commands: ``stats``, ``queues``, ``pfc`` and ``pfcwd`` read every
switch's runtime API (or one switch's: ``stats l1``); ``link X Y down|up`` (Mininet's, then the
controller's repair as it reports it) and ``paths h1_1 h2_1`` ask the controller's REST API."""
from __future__ import annotations

import sys
import time

from mininet.cli import CLI
from mininet.log import output

from fabriclab.errors import UserError
from fabriclab.topologies.telemetry import saved_stats, switch_stats


class FabricCLI(CLI):
    prompt = "fabriclab> "

    def __init__(self, mininet, network, stdin=sys.stdin, **kwargs):
        self.network = network      # set before CLI.__init__, which runs the command loop
        # Commands from a file or pipe other than our terminal: cmd.Cmd reads self.stdin only
        # without raw input (input() would read sys.stdin).
        self.use_rawinput = stdin is sys.stdin
        super().__init__(mininet, stdin=stdin, **kwargs)

    def _switches(self, line: str):
        names = line.split()
        specs = self.network.description.switches
        unknown = [n for n in names if n not in {s.name for s in specs}]
        if unknown:
            output(f"no switch named {unknown[0]}\n")
            return []
        return [s for s in specs if not names or s.name in names]

    def _each(self, line: str, show) -> None:
        for sw in self._switches(line):
            try:
                try:
                    stats = switch_stats(sw)
                except UserError:
                    path = self.network.run_dir / "switches" / f"{sw.name}.stats.json"
                    stats = saved_stats(path)
                    output(f"({sw.name}: runtime API not answering; counters from {path.name}, up to 1 s old)\n")
            except Exception as exc:  # a dead switch must not end the CLI session
                output(f"{sw.name}: {exc}\n")
                continue
            show(sw, stats)

    def do_stats(self, line: str) -> None:
        """stats [switch ...]: frames and bytes per port, and drops."""
        def show(sw, stats):
            output(f"{sw.name} (device {sw.device_id})\n")
            peers = self.network.description.switch_ports(sw.name)
            for port, p in sorted(stats["ports"].items(), key=lambda item: int(item[0])):
                peer = peers.get(int(port), ("?", 0))[0]
                output(f"  port {port:>3} {p['ifname']:<15} -> {peer:<10} rx {p['rx_frames']:>9} fr "
                       f"{p['rx_bytes']:>12} B   tx {p['tx_frames']:>9} fr {p['tx_bytes']:>12} B\n")
            drops = {**stats.get("drops", {}), **stats["tm"].get("drops", {})}
            if drops:
                output(f"  drops: {', '.join(f'{k}={v}' for k, v in sorted(drops.items()))}\n")
        self._each(line, show)

    def do_queues(self, line: str) -> None:
        """queues [switch ...]: non-empty or ever-used egress queues per port and priority."""
        def show(sw, stats):
            buffer = stats["tm"]["buffer"]
            output(f"{sw.name}: shared buffer {buffer['shared_used']}/{buffer['shared_bytes']} B "
                   f"(peak {buffer['max_shared_used']} B)\n")
            for port, p in sorted(stats["tm"]["ports"].items(), key=lambda item: int(item[0])):
                for prio, q in sorted(p["priorities"].items(), key=lambda item: int(item[0])):
                    if q["enqueued"] or q["qdepth"]:
                        dropped = sum(q["drops"].values())
                        output(f"  port {port:>3} prio {prio}: depth {q['qdepth']:>4} pkts {q['qbytes']:>8} B "
                               f"(peak {q['max_qbytes']} B)  enq {q['enqueued']} deq {q['dequeued']} drop {dropped}\n")
        self._each(line, show)

    def _rest(self, method: str, path: str) -> tuple[int, dict] | None:
        from fabriclab.controller.rest import rest_call

        url = self.network.rest_url
        if not url:
            output("the controller has no REST API (fabriclab up --rest-port)\n")
            return None
        try:
            return rest_call(url, method, path)
        except OSError as exc:
            output(f"controller REST API at {url}: {exc}\n")
            return None

    def do_link(self, line: str) -> None:
        """link NODE1 NODE2 up|down: take the link(s) between two nodes down or up (both ends);
        the switches notice the carrier change and the controller reroutes around it."""
        args = line.split()
        if len(args) != 3 or args[2] not in ("up", "down"):
            output("usage: link NODE1 NODE2 up|down\n")
            return
        a, b, state = args
        for node in (a, b):
            if node not in self.mn.nameToNode:
                output(f"no node named {node}\n")
                return
        if not self.mn.nameToNode[a].connectionsTo(self.mn.nameToNode[b]):
            output(f"{a} and {b} are not linked\n")
            return
        answer = self._rest("GET", "/fabric") if self.network.rest_url else None
        seen = len(answer[1].get("repairs", [])) if answer and answer[0] == 200 else None
        self.mn.configLinkStatus(a, b, state)
        described = self.network.description
        if seen is None or not (described.is_switch(a) and described.is_switch(b)):
            output(f"link {a} {b} {state}\n")
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            answer = self._rest("GET", "/fabric")
            repairs = answer[1].get("repairs", []) if answer and answer[0] == 200 else []
            if len(repairs) > seen:
                r = repairs[-1]
                if not r["switches"]:
                    output(f"link {a} {b} {state}; routes unchanged\n")
                else:
                    output(f"link {a} {b} {state}; routes repaired in {r['repair_ms']:.1f} ms (detection "
                           f"{r['detected_ms']:.1f} ms + reprogramming {r['reprogrammed_ms']:.1f} ms), "
                           f"{len(r['switches'])} switches rewritten\n")
                return
            time.sleep(0.05)
        output(f"link {a} {b} {state}; the controller reported no repair within 10 s"
               f"{'' if answer and answer[1].get('repair', True) else ' (repair is off)'}\n")

    def do_paths(self, line: str) -> None:
        """paths SRC_HOST DST_HOST: the path(s) traffic between two hosts takes now, with the
        share of flows on each (ECMP weights), and pinned flows."""
        args = line.split()
        if len(args) != 2:
            output("usage: paths SRC_HOST DST_HOST\n")
            return
        answer = self._rest("GET", f"/paths?src={args[0]}&dst={args[1]}")
        if answer is None:
            return
        status, body = answer
        if status != 200:
            output(f"{body.get('error', status)}\n")
            return
        if not body["paths"]:
            output(f"no path from {args[0]} to {args[1]}\n")
        for path in body["paths"]:
            output(f"  {' -> '.join(path['hops'])}   {path['share'] * 100:.0f} %\n")
        for pin in body["pinned"]:
            output(f"  pinned {pin['flow']}: {' -> '.join(pin['path'])}\n")

    def do_pfc(self, line: str) -> None:
        """pfc [switch ...]: PFC pauses sent/received and paused time per port and priority."""
        def show(sw, stats):
            output(f"{sw.name}\n")
            quiet = True
            for port, p in sorted(stats["tm"]["ports"].items(), key=lambda item: int(item[0])):
                for prio, q in sorted(p["priorities"].items(), key=lambda item: int(item[0])):
                    if q.get("pfc_tx") or q.get("pfc_rx") or q.get("paused"):
                        quiet = False
                        output(f"  port {port:>3} prio {prio}: sent {q['pfc_tx']} received {q['pfc_rx']} "
                               f"xoff events {q['xoff_events']} paused {q['paused_ns'] / 1e6:.1f} ms"
                               f"{'  PAUSED' if q['paused'] else ''}\n")
            if quiet:
                output("  no PFC frames sent or received\n")
        self._each(line, show)

    def do_pfcwd(self, line: str) -> None:
        """pfcwd [switch ...]: PFC watchdog state, storms and restorations per watched queue."""
        def show(sw, stats):
            wd = stats["tm"]["config"].get("pfcwd")
            if wd is None:
                output(f"{sw.name}: PFC watchdog off\n")
                return
            output(f"{sw.name}: PFC watchdog, action {wd['action']}, detection {wd['detection_ns'] / 1e6:g} ms, "
                   f"restoration {wd['restoration_ns'] / 1e6:g} ms\n")
            for port, p in sorted(stats["tm"]["ports"].items(), key=lambda item: int(item[0])):
                for prio, q in sorted(p["priorities"].items(), key=lambda item: int(item[0])):
                    if q.get("pfcwd") == "stormed" or q.get("pfcwd_storms"):
                        output(f"  port {port:>3} prio {prio}: {q['pfcwd']}  storms {q['pfcwd_storms']} "
                               f"restorations {q['pfcwd_restorations']} dropped {q['drops'].get('pfcwd', 0)}\n")
            if not any(q.get("pfcwd_storms") for p in stats["tm"]["ports"].values() for q in p["priorities"].values()):
                output("  no storm so far\n")
        self._each(line, show)
