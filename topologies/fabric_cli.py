"""Mininet's CLI with fabric commands: ``stats``, ``queues``, ``pfc`` and ``pfcwd`` read every
switch's runtime API (or one switch's: ``stats l1``)."""
from __future__ import annotations

import sys

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
