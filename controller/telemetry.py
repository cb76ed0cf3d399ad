"""The controller's telemetry: one poll reads every switch, side by side, and turns the counts
into a smoothed utilisation per directed link.

Per switch and poll: fabric.p4's per-port byte counters (``FabricEgress.port_tx``,
``FabricIngress.port_rx``) over P4Runtime, one Read RPC for all ports; and from the switch's
runtime API (``stats``) the egress queue occupancy per port and priority, the PFC paused state
and the ports' carrier. Utilisation of the link a port sends into is ``tx bits / interval /
rate``, smoothed as an EWMA with gain ``smoothing`` per poll. ``poll_ms`` is how long the last
poll of all switches took (what ``fabriclab bench controller`` reports).
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fabriclab.controller.policy import LinkLoad
from fabriclab.switch.runtime_api import RuntimeApiClient, default_api_addr
from fabriclab.topologies.description import FabricDescription

PORT_COUNTERS = ("FabricEgress.port_tx", "FabricIngress.port_rx")


@dataclass
class PortSample:
    tx_bytes: int
    rx_bytes: int
    queue_bytes: dict[int, int]       # priority -> bytes queued
    queue_pkts: dict[int, int]
    paused: list[int]                 # priorities a PFC pause holds
    up: bool


@dataclass
class SwitchSample:
    at: float                         # time.monotonic() of the sample
    ports: dict[int, PortSample] = field(default_factory=dict)


class Telemetry:
    def __init__(self, description: FabricDescription, clients: dict[str, Any], smoothing: float = 0.5):
        self.description = description
        self.clients = clients                 # the controller's P4Runtime clients, by switch
        self.smoothing = smoothing
        self.api: dict[str, RuntimeApiClient] = {}
        self.samples: dict[str, SwitchSample] = {}
        self.loads: dict[tuple[str, int], LinkLoad] = {}
        self.poll_ms: float | None = None
        self.polls = 0
        self._pool = ThreadPoolExecutor(max_workers=min(8, max(1, len(description.switches))),
                                        thread_name_prefix="telemetry")

    def poll(self) -> dict[tuple[str, int], LinkLoad]:
        started = time.monotonic()
        names = [sw.name for sw in self.description.switches]
        fresh = dict(zip(names, self._pool.map(self._sample, names)))
        self.poll_ms = (time.monotonic() - started) * 1000
        for name, sample in fresh.items():
            previous = self.samples.get(name)
            self.samples[name] = sample
            for port, now in sample.ports.items():
                peer = self.description.switch_ports(name).get(port, ("?", 0))[0]
                rate = self.description.link_rate(name, port)
                tx_bps = 0.0
                if previous is not None and port in previous.ports and sample.at > previous.at:
                    tx_bps = max(0, now.tx_bytes - previous.ports[port].tx_bytes) * 8 / (sample.at - previous.at)
                old = self.loads.get((name, port))
                util = min(1.0, tx_bps / rate) if rate else 0.0
                if old is not None and now.up:
                    util = old.util + self.smoothing * (util - old.util)
                self.loads[(name, port)] = LinkLoad(name, port, peer, rate, util if now.up else 0.0, tx_bps,
                                                    sum(now.queue_bytes.values()), bool(now.paused), now.up)
        self.polls += 1
        return dict(self.loads)

    def _sample(self, name: str) -> SwitchSample:
        ports = sorted(self.description.switch_ports(name))
        client = self.clients[name]
        counters = client.read_counter_cells(PORT_COUNTERS, ports)
        stats = self._api(name).call("stats")
        sample = SwitchSample(time.monotonic())
        for port in ports:
            tm = stats["tm"]["ports"].get(str(port), {"priorities": {}})
            queues = {int(p): q["qbytes"] for p, q in tm["priorities"].items()}
            sample.ports[port] = PortSample(
                tx_bytes=counters[PORT_COUNTERS[0]].get(port, (0, 0))[1],
                rx_bytes=counters[PORT_COUNTERS[1]].get(port, (0, 0))[1],
                queue_bytes=queues, queue_pkts={int(p): q["qdepth"] for p, q in tm["priorities"].items()},
                paused=sorted(int(p) for p, q in tm["priorities"].items() if q.get("paused")),
                up=stats["ports"].get(str(port), {}).get("up", True))
        return sample

    def _api(self, name: str) -> RuntimeApiClient:
        if name not in self.api:
            self.api[name] = RuntimeApiClient(default_api_addr(self.description.switch(name).grpc_addr))
        return self.api[name]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for api in self.api.values():
            api.close()
        self.api.clear()
