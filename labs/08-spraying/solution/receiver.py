"""Lab 08 solution: an IRN-like receiver (Mittal et al., SIGCOMM 2018) — out-of-order placement,
in-order delivery, cumulative ACKs, and a selective NAK for a hole once ``dupthresh`` later
packets have arrived (RFC 6675's DupThresh idea: reordering between paths is not loss)."""


class Receiver:
    def __init__(self, window: int, dupthresh: int = 24):
        self.window = window
        self.dupthresh = dupthresh       # above the packets one path can overtake another by
        self.expected = 0
        self.delivered: list[int] = []
        self.held: set[int] = set()      # arrived beyond the hole at `expected`
        self.above_hole = 0              # how many packets overtook the hole
        self.naked: int | None = None    # the hole already NAKed

    def on_packet(self, psn: int) -> list[tuple[str, int]]:
        if psn < self.expected or psn in self.held or psn >= self.expected + self.window:
            return [("ack", self.expected - 1)] if self.expected else []
        self.held.add(psn)
        if psn != self.expected:
            self.above_hole += 1
            if self.above_hole >= self.dupthresh and self.naked != self.expected:
                self.naked = self.expected
                return [("snak", self.expected)]
            return []
        while self.expected in self.held:
            self.held.discard(self.expected)
            self.delivered.append(self.expected)
            self.expected += 1
        self.above_hole = len(self.held)
        return [("ack", self.expected - 1)]
