"""Lab 08's test bench: one RoCE-like message sprayed over four paths, in virtual time.

The sender puts one packet on the wire per microsecond, spraying them round robin over four
paths whose one-way delays differ (so packets arrive out of order), keeps at most WINDOW
packets unacknowledged, and reacts to what the receiver sends back (after RETURN_DELAY):

* ("ack", p)  — cumulative: every PSN up to p has arrived;
* ("nak", p)  — go back N: send again from p onwards (what RoCE's RC transport does);
* ("snak", p) — selective: send p again, only p (IRN-style selective repeat).

A timeout (RTO without progress) goes back to the oldest unacknowledged PSN. One packet is
lost on its first transmission so that the recovery path is exercised.
"""
from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

PACKETS = 2000
WINDOW = 128
PATH_DELAYS_US = (10, 16, 22, 28)
JITTER_US = 3
RETURN_DELAY_US = 10
RTO_US = 400
LOST_PSN = 700


@dataclass
class Outcome:
    delivered: list[int]
    sent: int              # packets put on the wire, first transmissions and retransmissions
    retransmitted: int
    timeouts: int
    finish_us: int | None  # when the last packet was delivered in order (None: never)

    @property
    def ideal_us(self) -> int:
        return PACKETS + max(PATH_DELAYS_US) + JITTER_US


def run(receiver, seed: int = 1, limit_us: int = 200_000) -> Outcome:
    rng = random.Random(seed)
    events: list[tuple[int, int, str, tuple]] = []   # (time, order, kind, data)
    order = 0

    def at(t: int, kind: str, data: tuple) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (t, order, kind, data))

    next_psn, una, sent, retx, timeouts = 0, 0, 0, 0, 0
    resend: list[int] = []
    ever_sent: set[int] = set()
    lost_once = False
    last_progress = 0
    finish = None
    path = 0
    now = 0
    while now < limit_us:
        # one packet per microsecond: a selective retransmission first, else the next PSN
        psn = None
        if resend:
            psn = resend.pop(0)
        elif next_psn < min(PACKETS, una + WINDOW):
            psn = next_psn
            next_psn += 1
        if psn is not None and psn >= una:
            sent += 1
            if psn in ever_sent:
                retx += 1
            ever_sent.add(psn)
            if psn == LOST_PSN and not lost_once:
                lost_once = True
            else:
                at(now + PATH_DELAYS_US[path] + rng.randint(0, JITTER_US), "data", (psn,))
            path = (path + 1) % len(PATH_DELAYS_US)
        now += 1
        while events and events[0][0] <= now:
            t, _, kind, data = heapq.heappop(events)
            if kind == "data":
                for reply in receiver.on_packet(data[0]) or []:
                    at(t + RETURN_DELAY_US, "reply", reply)
                if finish is None and len(receiver.delivered) >= PACKETS:
                    finish = t
            else:
                what, p = data
                if what == "ack" and p + 1 > una:
                    una, last_progress = p + 1, now
                    next_psn = max(next_psn, una)
                elif what == "nak" and p >= una:
                    una, last_progress = max(una, p), now
                    next_psn = p
                    resend.clear()
                elif what == "snak" and p >= una and p not in resend:
                    resend.append(p)
        if una >= PACKETS:
            break
        if now - last_progress > RTO_US:
            timeouts += 1
            next_psn, last_progress = una, now
            resend.clear()
    return Outcome(list(receiver.delivered), sent, retx, timeouts, finish)
