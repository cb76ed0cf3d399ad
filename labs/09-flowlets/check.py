"""Lab 09 checker: flowlets keep a burst on one path, move flows between bursts, and — with the
gap chosen right — never reorder (packets through the compiled program with s1-runtime.json on
a virtual clock; the two uplinks' paths take 200 µs and 700 µs, as topology.json draws them)."""
from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from fabriclab.labs.checks import Check
from fabriclab.labs.pipeline_bench import bench_for

PATH_US = {3: 200, 4: 700}      # h1 -> h3 through spine s2 (port 3) or s3 (port 4)


def frame(sport: int) -> bytes:
    return bytes(Ether(src="08:00:00:00:01:11", dst="08:00:00:00:01:00") / IP(src="10.0.1.1", dst="10.0.3.3")
                 / UDP(sport=sport, dport=4791) / bytes(100))


class Clock:
    """Virtual µs that only move forward across the checks (the registers remember times)."""
    def __init__(self):
        self.now = 1_000_000

    def after(self, us: int) -> int:
        self.now += us
        return self.now


def port_of(bench, sport: int, now: int) -> int | None:
    ports = [p for p, _ in bench.send(frame(sport), 1, now)]
    return ports[0] if len(ports) == 1 and ports[0] in PATH_US else None


def checks(run):
    bench = yield from bench_for(run, "flowlet.p4", "s1-runtime.json")
    if bench is None:
        return
    clock = Clock()
    # two flows, interleaved, each sending every 50 µs: far below any sensible gap
    seen = {5001: set(), 5002: set()}
    for _ in range(40):
        for sport in seen:
            seen[sport].add(port_of(bench, sport, clock.after(25)))
    yield Check("a burst (a packet every 50 µs) stays on one uplink; two interleaved flows each keep theirs",
                all(len(s) == 1 and None not in s for s in seen.values()),
                "; ".join(f"flow {sport}: ports {sorted(map(str, s))}" for sport, s in seen.items()))
    moves, bursts, split = set(), 30, 0
    for _ in range(bursts):
        ports = {port_of(bench, 6000, clock.after(gap)) for gap in (20_000, 50, 50)}
        split += len(ports) != 1
        moves |= ports
    yield Check("after 20 ms idle a flow starts a new flowlet: 30 bursts use both uplinks, each burst one",
                moves == set(PATH_US) and split == 0,
                f"uplinks used {sorted(map(str, moves))}, {split} of {bursts} bursts split")
    # one flow at many packet spacings below the 500 µs the two paths differ by
    late, lost, spacings = 0, 0, range(100, 500, 20)
    for spacing in spacings:
        clock.after(20_000)
        arrivals = []
        for seq in range(20):
            now = clock.after(spacing)
            port = port_of(bench, 7000, now)
            if port is None:
                lost += 1
            else:
                arrivals.append((now + PATH_US[port], seq))
        order = [seq for _, seq in sorted(arrivals)]
        late += sum(1 for a, b in zip(order, order[1:]) if b < a)
    yield Check("a flow sending every 100..480 µs over paths 500 µs apart: no packet overtakes another",
                late == 0 and lost == 0,
                f"{late} of {20 * len(spacings)} packets arrived out of order" + (f", {lost} lost" if lost else ""))
