"""Plain TCP (or UDP) background traffic with iperf3, run inside host network namespaces.

``IperfServer`` starts ``iperf3 -s -1`` in one namespace; ``run_client`` runs the client in
another and returns the JSON report's essentials. Both enter the namespace with nsenter, so a
namespace is a file: /proc/<pid>/ns/net (Mininet host) or /run/netns/<name>.
"""
from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass

DEFAULT_PORT = 5201


def _in_netns(netns_path: str, *cmd: str) -> list[str]:
    return ["nsenter", f"--net={netns_path}", *cmd]


@dataclass
class IperfResult:
    sent_bytes: int
    received_bytes: int
    seconds: float
    bits_per_second: float        # receiver's goodput
    retransmits: int | None       # TCP only
    lost_percent: float | None    # UDP only


class IperfServer:
    """An iperf3 server for one test (``-1``), stopped on exit if it is still running."""

    def __init__(self, netns_path: str, port: int = DEFAULT_PORT):
        self.proc = subprocess.Popen(_in_netns(netns_path, "iperf3", "-s", "-1", "-p", str(port)),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def __enter__(self) -> "IperfServer":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()


def run_client(netns_path: str, server_ip: str, *, seconds: float = 5, port: int = DEFAULT_PORT,
               udp_rate: str | None = None, dscp: int = 0, connect_retries: int = 20) -> IperfResult:
    """Run the client to completion; ``udp_rate`` (e.g. '50M') switches to UDP at that rate."""
    cmd = ["iperf3", "-c", server_ip, "-p", str(port), "-J", "-t", str(seconds), "--tos", str(dscp << 2)]
    if udp_rate:
        cmd += ["-u", "-b", udp_rate]
    for _ in range(connect_retries):  # the server may still be starting
        proc = subprocess.run(_in_netns(netns_path, *cmd), capture_output=True, text=True, timeout=seconds + 30)
        report = json.loads(proc.stdout or "{}")
        if "error" not in report or "connect" not in report["error"]:
            break
        time.sleep(0.1)
    if "error" in report:
        raise RuntimeError(f"iperf3: {report['error']}")
    return parse_report(report)


def parse_report(report: dict) -> IperfResult:
    end = report["end"]
    if "sum_received" in end:  # TCP
        sent, received = end["sum_sent"], end["sum_received"]
        return IperfResult(sent["bytes"], received["bytes"], received["seconds"], received["bits_per_second"],
                           sent.get("retransmits"), None)
    total = end["sum"]  # UDP
    received = total["bytes"] * (1 - total.get("lost_percent", 0) / 100)
    return IperfResult(total["bytes"], int(received), total["seconds"],
                       total["bits_per_second"] * (1 - total.get("lost_percent", 0) / 100), None,
                       total.get("lost_percent"))
