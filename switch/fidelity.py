"""The fidelity monitor: how far the emulation's timing strays, and whether that is too far.

An emulation is only as good as its timing. Mininet-HiFi (Handigol et al., "Reproducible Network
Experiments Using Container-Based Emulation", CoNEXT 2012) checks invariants while an experiment
runs -- a busy link's packets leave one transmission time apart -- and calls a run unfaithful
when they are off by more than a packet's transmission time. fabriclab checks the same kind of
invariant where its timing is made:

* every switch records how late each frame leaves against the departure its traffic manager
  scheduled at line rate (frame lateness, per egress port), and how late its event loop wakes
  against the TM event it waited for (loop lag) -- ``SwitchMonitor``;
* every host agent records how late each paced packet leaves against its pacer's schedule
  (pacing error, traffic/transport.py).

Errors go into a ``Histogram`` (µs, log-linear buckets: O(1) per sample, subtractable, so a
scenario can cut out its traffic window) published with the budget its 99th percentile must stay
within: the error the emulated timing absorbs by design plus one frame time at the link's rate,
Mininet-HiFi's allowance. ``judge`` turns a run's figures into ``ok`` or ``degraded``.
"""
from __future__ import annotations

from dataclasses import dataclass

PERCENTILE = 99.0       # the percentile held to the budget: 1 % of the samples may be outliers
SUB_BUCKET_BITS = 3     # 8 buckets per power of two: a figure is at most 12.5 % under the truth


class Histogram:
    """Counts of non-negative integer samples (µs) in log-linear buckets.

    Values below 16 get a bucket each; above, 8 buckets per power of two, keyed by their lower
    bound, which is also what percentiles report. JSON form: ``[[lower_bound, count], ...]``."""

    __slots__ = ("counts",)

    def __init__(self, counts: dict[int, int] | None = None):
        self.counts: dict[int, int] = dict(counts or {})

    def add(self, value: int) -> None:
        shift = value.bit_length() - SUB_BUCKET_BITS - 1
        if shift > 0:
            value = value >> shift << shift
        elif value < 0:
            value = 0
        counts = self.counts
        counts[value] = counts.get(value, 0) + 1

    def as_list(self) -> list[list[int]]:
        return [[k, n] for k, n in sorted(self.counts.items())]

    @classmethod
    def from_list(cls, pairs) -> "Histogram":
        return cls({int(k): int(n) for k, n in pairs or ()})

    def minus(self, earlier: "Histogram") -> "Histogram":
        """The samples added since ``earlier``, a snapshot of this histogram."""
        return Histogram({k: n - earlier.counts.get(k, 0) for k, n in self.counts.items()
                          if n > earlier.counts.get(k, 0)})

    def percentile(self, p: float) -> int | None:
        """The lower bound of the bucket holding the p-th percentile sample; None when empty."""
        total = sum(self.counts.values())
        if not total:
            return None
        rank = max(1, -int(-p * total // 100))    # the smallest sample with p % at or below it
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return key
        return max(self.counts)

    def summary(self) -> dict:
        """Sample count, p50, p99 and max in µs (None when empty)."""
        return {"n": sum(self.counts.values()), "p50": self.percentile(50), "p99": self.percentile(PERCENTILE),
                "max": max(self.counts) if self.counts else None}


def frame_time_us(frame_bytes: int, rate_bps: float) -> float:
    """How long a frame of ``frame_bytes`` (FCS included) holds a link: plus preamble, SFD, IFG."""
    return (frame_bytes + 20) * 8e6 / rate_bps


def budget(histogram: Histogram, budget_us: float, why: str) -> dict:
    """A figure's JSON form: the samples and the budget for their 99th percentile, with its reason."""
    return {"histogram": histogram.as_list(), "budget_us": round(budget_us, 1), "why": why}


@dataclass
class Figure:
    """One error distribution and the budget its 99th percentile must stay within."""
    what: str                   # e.g. "leaf1 port 3 frame lateness"
    histogram: Histogram
    budget_us: float
    why: str                    # what the budget is made of

    def verdict(self) -> dict:
        summary = self.histogram.summary()
        return {**summary, "budget_us": self.budget_us,
                "ok": summary["p99"] is None or summary["p99"] <= self.budget_us}


def judge(figures: list[Figure]) -> dict:
    """``{"status": "ok"|"degraded", "reasons": [one line per figure over budget], "figures": {what: verdict}}``."""
    verdicts = {f.what: f.verdict() for f in figures}
    reasons = [f"{f.what}: p99 {verdicts[f.what]['p99']} µs > {f.budget_us:g} µs ({f.why})"
               for f in figures if not verdicts[f.what]["ok"]]
    return {"status": "degraded" if reasons else "ok", "reasons": reasons, "figures": verdicts}


class SwitchMonitor:
    """One switch's figures: frame lateness per egress port and the event loop's lag.

    The loop appends the TM's clock to ``scheduled[port]`` as the TM hands it a frame (the clock
    then reads that frame's scheduled departure), calls ``departed(now_ns)`` once the turn's
    frames have left, and adds to ``loop_lag`` when it wakes for a TM event."""

    def __init__(self, rates: dict[int, int | None], max_frame: int, backlog_ns: int):
        self.scheduled: dict[int, list[int]] = {n: [] for n in rates}
        self.lateness = {n: Histogram() for n in rates}
        self.loop_lag = Histogram()
        self.max_frame = max_frame
        self.backlog_us = backlog_ns / 1000
        self.frame_us = {n: frame_time_us(max_frame, rate) for n, rate in rates.items() if rate}

    def departed(self, now_ns: int) -> None:
        for port, times in self.scheduled.items():
            if times:
                add = self.lateness[port].add
                for t in times:
                    add((now_ns - t) // 1000)
                times.clear()

    def stats(self) -> dict:
        """Per port the lateness figure, and the loop lag figure, each with its budget (JSON-ready)."""
        frame = f"one {self.max_frame}-byte frame time"
        lateness = {port: budget(self.lateness[port], self.backlog_us + us,
                                 f"{self.backlog_us:g} µs loop backlog + {frame} at the port's rate")
                    for port, us in sorted(self.frame_us.items())}
        return {"lateness": lateness,
                "loop_lag": budget(self.loop_lag, min(self.frame_us.values(), default=0.0),
                                   f"{frame} at the fastest port")}
