"""Lab 08: the receiving NIC of a RoCE connection whose packets are sprayed over four paths.

``on_packet`` is called for every data packet that arrives (its PSN: 0, 1, 2, ...) and returns
what the receiver sends back, each a (kind, psn) pair:

* ("ack", p)  — cumulative acknowledgement: every PSN up to p has arrived;
* ("nak", p)  — go back N: the sender resends p and everything after it;
* ("snak", p) — selective NAK: the sender resends p only.

Append each PSN to ``self.delivered`` when the application may have it: in order, once.
"""


class Receiver:
    def __init__(self, window: int):
        self.window = window            # the sender never has more than this many PSNs unacknowledged
        self.expected = 0               # the next PSN to deliver
        self.delivered: list[int] = []
        self.nak_outstanding = False

    def on_packet(self, psn: int) -> list[tuple[str, int]]:
        # This is RoCE's reliable connection today: strictly in order (go-back-N).
        if psn == self.expected:
            self.delivered.append(psn)
            self.expected += 1
            self.nak_outstanding = False
            return [("ack", psn)]
        if psn < self.expected:                       # a duplicate: say again where we are
            return [("ack", self.expected - 1)] if self.expected else []
        # TODO (task 3): an out-of-order packet. Today it is thrown away and the sender told to
        # go back — with spraying that is most packets. Keep it instead (within the window),
        # deliver in order once the gap fills, and NAK a missing PSN — selectively, and only
        # once enough later packets have overtaken it that it must be lost, not just late.
        if not self.nak_outstanding:
            self.nak_outstanding = True
            return [("nak", self.expected)]
        return []
