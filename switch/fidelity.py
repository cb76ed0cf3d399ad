"""The fidelity monitor: how far the emulation's timing strays, and whether that is too far.

An emulation is only as good as its timing. Mininet-HiFi (Handigol et al., "Reproducible Network
Experiments Using Container-Based Emulation", CoNEXT 2012) checks invariants while an experiment
runs -- a busy link's packets leave one transmission time apart -- and calls a run unfaithful
when they are off by more than a packet's transmission time. fabriclab checks the same kind of
invariant where its timing is made:

* every switch records how late each frame, on any port, leaves against the departure its
  traffic manager scheduled at line rate (frame lateness), and how late its event loop wakes
  against the TM event it waited for (loop lag) -- ``SwitchMonitor``;
* every host agent records how late each paced packet leaves against its pacer's schedule
  (pacing error, traffic/transport.py).

Errors go into a ``Histogram`` (µs, log-linear buckets: O(1) per sample, subtractable, so a
scenario can cut out its traffic window) published with the budget its 99th percentile must stay
within. The budget is what the emulated fabric absorbs by design: the PFC headroom is sized for
a peer that reacts up to two largest frames, 802.3 31B's allowance at the real speed and a
response time late (``reaction_allowance_us``; at 20 Mbit/s standing for 20G, 8.2 ms, about
thirteen 1522-byte frame times). A switch or
host running later than that is a peer the headroom was not sized for -- pauses land late,
lossless queues overflow, ports burst, pacers lose sending time -- so its run's numbers are not
the fabric's. (Mininet-HiFi allows one packet time of error on the spacing of back-to-back
packets; lateness against an absolute schedule adds up a stall's whole length, and on a shared
2-core machine stalls of a few frame times are routine, so the budget is the design's margin.)
``judge`` turns a run's figures into ``ok`` or ``degraded``.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from fabriclab.switch.switch_config import SwitchConfig, response_allowance_bytes

RESPONSE_TIME_S = SwitchConfig.response_time_s   # the headroom formula's default peer response time

PERCENTILE = 99.0       # the percentile held to the budget: 1 % of the samples may be outliers
SUB_BUCKET_BITS = 3     # 8 buckets per power of two: a figure is at most 12.5 % under the truth


def bucket_of(value: int) -> int:
    """The lower bound of the bucket ``value`` (µs) falls in: itself below 16, then 8 per power of two."""
    shift = value.bit_length() - SUB_BUCKET_BITS - 1
    if shift > 0:
        return value >> shift << shift
    return value if value > 0 else 0


class Histogram:
    """Counts of non-negative integer samples (µs) in log-linear buckets.

    Values below 16 get a bucket each; above, 8 buckets per power of two, keyed by their lower
    bound, which is also what percentiles report. JSON form: ``[[lower_bound, count], ...]``."""

    __slots__ = ("counts",)

    def __init__(self, counts: dict[int, int] | None = None):
        self.counts: dict[int, int] = dict(counts or {})

    def add(self, value: int) -> None:
        value = bucket_of(value)
        self.counts[value] = self.counts.get(value, 0) + 1

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


def reaction_allowance_us(rate_bps: float, max_frame: int, response_time_s: float = RESPONSE_TIME_S,
                          scale: float = 1.0) -> float:
    """How late a reaction may come without breaking a lossless link: the part of the PFC
    headroom formula (switch_config.py) beyond the cable's round trip -- two largest frames
    in flight, 802.3 31B's allowance at the real speed (rate x scale) and the peer's response
    time -- as time at ``rate_bps``."""
    allowance = response_allowance_bytes(rate_bps * scale)
    return (2 * max_frame + allowance) * 8e6 / rate_bps + response_time_s * 1e6


def allowance_why(rate_bps: float, max_frame: int, response_time_s: float = RESPONSE_TIME_S,
                  scale: float = 1.0) -> str:
    """``reaction_allowance_us`` in words, for reports."""
    return (f"the PFC headroom's reaction allowance at {rate_bps / 1e6:g} Mbit/s: two {max_frame}-byte frames + "
            f"{response_allowance_bytes(rate_bps * scale)} B + {response_time_s * 1e3:g} ms response time")


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
    """One switch's figures: the lateness of every frame it sends and its event loop's lag.

    The loop appends the TM's clock to ``scheduled`` as the TM hands it a frame (the clock then
    reads that frame's scheduled departure), calls ``departed(now_ns)`` once the turn's frames
    have left (a frame flushed earlier in a long turn is charged the whole turn: an upper bound),
    and adds to ``loop_lag`` when it wakes for a TM event. Both budgets are the PFC reaction
    allowance at the switch's fastest port; lateness also allows the loop's deliberate backlog."""

    def __init__(self, fastest_bps: int, max_frame: int, response_time_s: float, backlog_ns: int,
                 scale: float = 1.0):
        self.scheduled: list[int] = []
        self.lateness = Histogram()
        self.loop_lag = Histogram()
        self.backlog_us = backlog_ns / 1000
        self.allowance_us = reaction_allowance_us(fastest_bps, max_frame, response_time_s, scale)
        self.why = allowance_why(fastest_bps, max_frame, response_time_s, scale)

    def departed(self, now_ns: int) -> None:
        """Count the lateness of the frames scheduled this turn, which left by ``now_ns``.

        The TM's clock never goes back, so ``scheduled`` is sorted: lateness falls along it, and
        each run of frames sharing a bucket is counted with one bisect instead of frame by frame
        (per frame, the hot path pays only the append)."""
        times = self.scheduled
        if not times:
            return
        counts = self.lateness.counts
        i, n = 0, len(times)
        while i < n:
            late = (now_ns - times[i]) // 1000
            bucket = bucket_of(late)
            j = n if late <= 0 else bisect.bisect_right(times, now_ns - bucket * 1000, i)
            counts[bucket] = counts.get(bucket, 0) + (j - i)
            i = j
        times.clear()

    def stats(self) -> dict:
        """The two figures with their budgets (JSON-ready)."""
        return {"lateness": budget(self.lateness, self.backlog_us + self.allowance_us,
                                   f"{self.backlog_us:g} µs loop backlog + {self.why}"),
                "loop_lag": budget(self.loop_lag, self.allowance_us, self.why)}
