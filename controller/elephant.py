"""``elephant``: Hedera-like placement of heavy flows (Al-Fares et al., NSDI 2010).

The data plane finds the elephants: fabric.p4 counts bytes per flow slot on the switch where a
flow's paths fork and sends a ``heavy_flow`` digest when a slot crosses the threshold the
controller set (bytes per poll interval, i.e. a rate; the controller clears the counts every
poll). The controller estimates each elephant's natural demand (its NIC rate shared with the
other elephants of the same sender, capped by the receiver's share: the first step of Hedera's
estimator) and places elephants one by one, global first fit: the first live shortest path
whose every link still has room for the demand gets the flow, pinned there with
``flow_override`` entries; a flow no path has room for stays on ECMP. A pin is released when
its flow has been idle for ``idle_s`` (the entry's direct counter stops moving), or at once when
a link of its path goes down (repair does that).
"""
from __future__ import annotations

from collections import Counter, defaultdict

from fabriclab.controller.policy import Decision, FabricView, Policy, register


@register
class Elephant(Policy):
    name = "elephant"

    def __init__(self, threshold: float = 0.1, idle_s: float = 1.0):
        # threshold: fraction of the sender's NIC rate that makes a flow an elephant (Hedera: 10 %)
        self.threshold, self.idle_s = threshold, idle_s

    def decide(self, view: FabricView) -> Decision:
        decision = Decision()
        kept = {key: pin for key, pin in view.pins.items() if pin.idle_s < self.idle_s}
        decision.release = set(view.pins) - set(kept)
        reserved: dict[tuple[str, int], float] = defaultdict(float)
        for pin in kept.values():
            for hop in pin.path:
                reserved[hop] += pin.demand_bps
        flows = sorted((f for f in view.heavy if f.key not in kept), key=lambda f: str(f.key))
        senders = Counter(f.key.src for f in flows) + Counter(p.key.src for p in kept.values())
        receivers = Counter(f.key.dst for f in flows) + Counter(p.key.dst for p in kept.values())
        for flow in flows:
            demand = min(view.host_rate_bps(flow.key.src) / senders[flow.key.src],
                         view.host_rate_bps(flow.key.dst) / receivers[flow.key.dst])
            for path in view.paths(flow.switch, flow.dst_switch):
                loads = [view.loads.get(hop) for hop in path]
                if all(load is not None and load.up and reserved[hop] + demand <= load.rate_bps * 1.0001
                       for hop, load in zip(path, loads)):
                    for hop in path:
                        reserved[hop] += demand
                    decision.pin[flow.key] = (path, demand)
                    break
        return decision
