"""Lab 07's test bench: N DCQCN senders into one switch port, in virtual time.

A fluid model at a fixed step: each flow sends at its DCQCN rate; the port drains at line rate;
the queue (bytes) holds what arrives beyond that. The switch marks each packet CE with the RED
probability of the current queue (kmin/kmax/pmax); the receiver (notification point) answers a
flow's marked packets with at most one CNP per cnp_interval, which reaches the sender one
base RTT later. The senders are fabriclab's own reaction point (traffic/dcqcn.py, the paper's
preset at 40 Gbit/s) with the student's rate cut. Seeded: the same inputs give the same run.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from fabriclab.traffic.dcqcn import PAPER, Dcqcn

LINE_RATE = 40e9          # bit/s, the paper's NICs
PACKET = 1000             # bytes per packet
BASE_RTT = 10e-6          # s: how long a CNP takes to reach the sender
STEP = 2e-6               # s
FLOWS = 4
SECONDS = 0.03


@dataclass
class Marking:
    kmin: int      # bytes
    kmax: int      # bytes
    pmax: float

    def probability(self, queue: float) -> float:
        if queue <= self.kmin:
            return 0.0
        if queue > self.kmax:
            return 1.0
        return self.pmax * (queue - self.kmin) / max(1, self.kmax - self.kmin)


@dataclass
class Outcome:
    queue: list[float] = field(default_factory=list)          # bytes queued, per step
    sent: list[float] = field(default_factory=list)           # bytes the port sent, per step
    rates: list[list[float]] = field(default_factory=list)    # bit/s of every flow, per step
    cnps: int = 0

    def tail(self, fraction: float = 0.5) -> "Outcome":
        """The last ``fraction`` of the run: the steady state, after the start-up burst."""
        start = int(len(self.queue) * (1 - fraction))
        return Outcome(self.queue[start:], self.sent[start:], self.rates[start:], self.cnps)

    def queue_percentile(self, q: float) -> float:
        ordered = sorted(self.queue)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def utilisation(self) -> float:
        return sum(self.sent) / (LINE_RATE * STEP / 8 * len(self.sent))

    def fairness(self) -> float:
        """Jain's index of the flows' mean rates."""
        means = [sum(r[i] for r in self.rates) / len(self.rates) for i in range(len(self.rates[0]))]
        return sum(means) ** 2 / (len(means) * sum(m * m for m in means))


def run(reaction_point: type[Dcqcn], marking: Marking, g: float, flows: int = FLOWS, seconds: float = SECONDS,
        seed: int = 1) -> Outcome:
    rng = random.Random(seed)
    params = PAPER.with_overrides(g=g)
    senders = [reaction_point(LINE_RATE, params, 0.0) for _ in range(flows)]
    last_cnp = [float("-inf")] * flows
    pending: list[tuple[float, int]] = []     # (arrival time, flow) of CNPs in flight, in time order
    out = Outcome()
    queue = 0.0
    drain = LINE_RATE * STEP / 8
    now = 0.0
    while now < seconds:
        now += STEP
        while pending and pending[0][0] <= now:
            senders[pending.pop(0)[1]].on_cnp(now)
            out.cnps += 1
        p = marking.probability(queue)
        arrived = 0.0
        for i, sender in enumerate(senders):
            sender.advance(now)
            nbytes = sender.rate * STEP / 8
            sender.on_sent(int(nbytes), now)
            arrived += nbytes
            if p and now - last_cnp[i] >= params.cnp_interval and rng.random() < 1 - (1 - p) ** (nbytes / PACKET):
                last_cnp[i] = now
                pending.append((now + BASE_RTT, i))
        out.sent.append(min(drain, queue + arrived))
        queue = max(0.0, queue + arrived - drain)
        out.queue.append(queue)
        out.rates.append([s.rate for s in senders])
    return out
