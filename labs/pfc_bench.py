"""Lab 04's test bench: a switch's traffic manager between PFC-honouring senders, in virtual time.

Two senders (ports 1 and 2) send priority-3 frames back to back at line rate to one receiver
(port 3): a 2:1 overload. The switch is fabriclab's own traffic manager with the student's
``switch.yaml`` (the bench sets the link rate, cable delay and MTU). A frame reaches the switch
one cable delay after it has been serialised; a PFC frame the switch sends reaches its sender
one cable delay after it leaves (the traffic manager applies the delay), and the sender's NIC
reacts RESPONSE later: from then on it starts no new frame of the paused priority until the
pause expires or an XON comes. The frame on the wire always completes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

RATE_BPS = 10_000_000_000
CABLE_DELAY_S = 5e-6           # 1 km of fibre
MTU = 1500
FRAME = MTU + 14               # bytes a sender puts in a frame
RESPONSE_NS = 2_000            # the sender NIC's reaction time to a pause
PRIORITY = 3
FRAMES_PER_SENDER = 1500
STEP_NS = 100
WIRE_OVERHEAD = 24             # preamble, SFD, inter-frame gap, FCS


@dataclass
class Sender:
    port: int
    left: int = FRAMES_PER_SENDER
    busy_until: int = 0
    pause_from: int | None = None     # when a received pause takes effect
    paused_until: int = 0

    def paused(self, now: int) -> bool:
        return self.pause_from is not None and self.pause_from <= now < self.paused_until


@dataclass
class Outcome:
    sent: int = 0
    delivered: int = 0
    xoff: int = 0                  # PFC frames pausing priority 3, as decoded off the wire
    xon: int = 0                   # ... and resuming it
    drops: dict[str, int] = field(default_factory=dict)
    headroom_overflows: int = 0
    max_headroom: int = 0          # bytes of headroom the busiest ingress port used
    headroom: int = 0              # bytes configured per (port, lossless priority)
    lossless: tuple[int, ...] = ()
    busy_ns: int = 0               # how long port 3 had a frame on the wire
    elapsed_ns: int = 0


class _Forward:
    """The pipeline's egress half, reduced to handing the frame on."""

    def egress_frame(self, job, *_):
        return job.ctx


def run(config_data: dict) -> Outcome:
    from scapy.contrib.mac_control import MACControlClassBasedFlowControl
    from scapy.layers.l2 import Ether

    from fabriclab.switch.pfc import quanta_to_ns
    from fabriclab.switch.switch_config import config_from_dict
    from fabriclab.switch.traffic_manager import TrafficManager
    from fabriclab.v1model.pipeline import EgressJob

    config = config_from_dict({**config_data, "rate": RATE_BPS, "delay": CABLE_DELAY_S, "mtu": MTU, "ports": {}})
    resolved = config.resolve([1, 2, 3])
    senders = {1: Sender(1), 2: Sender(2)}
    out = Outcome(headroom=resolved.ports[1].headroom_bytes, lossless=tuple(sorted(config.lossless)))
    frame = bytes(FRAME)
    serialise = (FRAME + WIRE_OVERHEAD) * 8 * 1_000_000_000 // RATE_BPS
    delay = int(CABLE_DELAY_S * 1e9)
    now = 0

    def transmit(port: int, data: bytes) -> None:
        if port == 3:
            out.delivered += 1
            out.busy_ns += serialise
            return
        pfc = Ether(data).getlayer(MACControlClassBasedFlowControl)
        if pfc is None or not pfc.c3_enabled:
            return
        sender = senders[port]
        sender.pause_from = now + RESPONSE_NS
        if pfc.c3_pause_time:
            out.xoff += 1
            sender.paused_until = sender.pause_from + quanta_to_ns(pfc.c3_pause_time, RATE_BPS)
        else:
            out.xon += 1
            sender.paused_until = sender.pause_from

    tm = TrafficManager(resolved, transmit, _Forward())
    arrivals: list[tuple[int, int]] = []          # (time the last bit arrives, ingress port)
    deadline = 50 * FRAMES_PER_SENDER * serialise
    while now < deadline:
        tm.advance(now)
        while arrivals and arrivals[0][0] <= now:
            _, port = arrivals.pop(0)
            tm.enqueue(EgressJob(3, PRIORITY, FRAME, 0, 0, port, frame), now)
        for sender in senders.values():
            if sender.left and now >= sender.busy_until and not sender.paused(now):
                sender.left -= 1
                out.sent += 1
                sender.busy_until = now + serialise
                arrivals.append((sender.busy_until + delay, sender.port))
        arrivals.sort()
        if out.delivered + sum(sum(d.values()) for d in _drops(tm)) >= 2 * FRAMES_PER_SENDER:
            break
        now += STEP_NS
    out.elapsed_ns = now
    stats = tm.stats()
    for port in stats["ports"].values():
        entry = port["priorities"][PRIORITY]
        for reason, count in entry["drops"].items():
            out.drops[reason] = out.drops.get(reason, 0) + count
        out.headroom_overflows += entry.get("headroom_overflow", 0)
        out.max_headroom = max(out.max_headroom, entry.get("max_headroom_bytes", 0))
    return out


def _drops(tm) -> list[dict[str, int]]:
    return [port.drops[PRIORITY] for port in tm.ports.values()]
