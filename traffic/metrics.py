"""Flow and collective metrics, in the units the RDMA simulators and nccl-tests report.

* per flow: bytes, FCT, retransmissions, CNPs sent/received, rate over time, FCT slowdown as
  the HPCC simulator defines it: FCT until the sender has the last ACK, divided by the flow's
  standalone FCT = the path's base RTT + its bytes with headers at the bottleneck rate (>= 1);
* per collective: completion time, algbw = S / time and busbw = algbw × factor, where the factor
  is nccl-tests' (doc/PERFORMANCE.md): all-reduce 2(n−1)/n; all-gather, reduce-scatter and
  all-to-all (n−1)/n. nccl-tests has no incast: ours uses n−1, so its busbw is the goodput into
  the sink (n−1 senders of S bytes each). Anything else: 1.

Records are saved as JSON lines, one object per flow or collective iteration.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Iterable

from fabriclab.traffic.packets import BTH_LEN, ICRC_LEN

# Ethernet header + IPv4 + UDP + BTH + ICRC, and preamble/SFD + FCS + inter-frame gap on the wire
ROCE_HEADER_BYTES = 14 + 20 + 8 + BTH_LEN + ICRC_LEN
WIRE_OVERHEAD_BYTES = 8 + 4 + 12


def busbw_factor(pattern: str, ranks: int) -> float:
    """nccl-tests' bus-bandwidth factor for a collective of ``ranks`` participants."""
    if pattern.startswith("allreduce"):
        return 2 * (ranks - 1) / ranks
    if pattern in ("allgather", "reducescatter", "alltoall"):
        return (ranks - 1) / ranks
    if pattern == "incast":
        return float(ranks - 1)
    return 1.0


def base_rtt(path: list[tuple[float, float]], mtu: int) -> float:
    """HPCC's base RTT of a path given as (rate bit/s, one-way delay s) per link: twice the
    propagation delay plus one full frame's serialisation at every hop (store and forward)."""
    frame_bits = (ROCE_HEADER_BYTES + mtu + WIRE_OVERHEAD_BYTES) * 8
    return sum(2 * delay + frame_bits / rate for rate, delay in path)


def ideal_fct(size: int, line_rate_bps: float, mtu: int, base_latency: float = 0.0) -> float:
    """The FCT of a flow alone: its frames serialised at line rate plus the path's base RTT."""
    frames = max(1, math.ceil(size / mtu))
    wire_bytes = size + frames * (ROCE_HEADER_BYTES + WIRE_OVERHEAD_BYTES)
    return base_latency + wire_bytes * 8 / line_rate_bps


def fct_slowdown(fct: float, size: int, line_rate_bps: float, mtu: int, base_latency: float = 0.0) -> float:
    return max(1.0, fct / ideal_fct(size, line_rate_bps, mtu, base_latency))


@dataclass
class FlowRecord:
    flow: int
    src: str
    dst: str
    bytes: int
    start: float                 # s (the runner's clock)
    end: float
    retransmissions: int = 0     # data packets sent again (go-back-N)
    timeouts: int = 0
    cnps_received: int = 0       # at the sender (reaction point)
    cnps_sent: int = 0           # by the receiver (notification point)
    rate_samples: list[tuple[float, float]] = field(default_factory=list)  # (s, bit/s) DCQCN rate
    iteration: int = 0
    pattern: str = ""
    slowdown: float | None = None
    kind: str = "flow"
    acked: float = 0.0           # s: when the sender had the last ACK (HPCC's FCT ends there)

    @property
    def fct(self) -> float:
        return self.end - self.start

    def to_json(self) -> dict:
        doc = asdict(self)
        doc["fct"] = self.fct
        return doc


@dataclass
class CollectiveRecord:
    pattern: str
    ranks: int
    size: int                    # bytes (S)
    iteration: int
    time: float                  # s: first flow start to last flow delivery
    dcqcn_preset: str = ""
    kind: str = "collective"

    @property
    def algbw(self) -> float:
        """bytes/s, as nccl-tests: S / time."""
        return self.size / self.time if self.time > 0 else 0.0

    @property
    def busbw(self) -> float:
        return self.algbw * busbw_factor(self.pattern, self.ranks)

    def to_json(self) -> dict:
        doc = asdict(self)
        doc.update(algbw=self.algbw, busbw=self.busbw,
                   algbw_mbps=self.algbw * 8 / 1e6, busbw_mbps=self.busbw * 8 / 1e6)
        return doc


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def slowdown_summary(records: Iterable[FlowRecord], bins: list[int]) -> list[dict]:
    """p50/p95/p99 FCT slowdown per flow-size bin (upper bounds in bytes), like HPCC's fct analysis."""
    grouped: dict[int, list[float]] = {b: [] for b in bins}
    for r in records:
        if r.slowdown is None:
            continue
        upper = next((b for b in bins if r.bytes <= b), None)
        if upper is not None:
            grouped[upper].append(r.slowdown)
    return [{"size_upto": b, "flows": len(v), "p50": percentile(v, 50), "p95": percentile(v, 95),
             "p99": percentile(v, 99)} for b, v in grouped.items() if v]


def write_jsonl(records: Iterable[FlowRecord | CollectiveRecord], out: str | Path | IO[str]) -> None:
    lines = "".join(json.dumps(r.to_json(), sort_keys=True) + "\n" for r in records)
    if hasattr(out, "write"):
        out.write(lines)
    else:
        with open(out, "a") as f:
            f.write(lines)


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
