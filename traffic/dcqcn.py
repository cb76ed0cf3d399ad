"""DCQCN reaction point: the per-flow rate controller of a RoCEv2 sender.

Zhu et al., "Congestion Control for Large-Scale RDMA Deployments", SIGCOMM 2015, section 3.1:

* on a CNP (at most one cut per ``rate_decrease_interval``):
      RT <- RC;  RC <- RC·(1 - α/2);  α <- (1 - g)·α + g
  and the increase machinery restarts (timer, byte counter and both stage counts reset);
* every ``alpha_timer`` without a CNP: α <- (1 - g)·α;
* a rate-increase event fires when the timer T expires or the byte counter has counted B bytes;
  with i_T, i_B the number of such expiries since the last cut (so the first F events after a
  cut are the F fast-recovery stages):
      max(i_T, i_B) <= F         fast recovery:      RC <- (RT + RC)/2
      min(i_T, i_B) > F          hyper increase:     RT <- RT + R_HAI,  RC <- (RT + RC)/2
      otherwise                  additive increase:  RT <- RT + R_AI,   RC <- (RT + RC)/2
  (rates are clamped to [min_rate, line_rate]);
* timer-only increase (``byte_counter = 0``, what Mellanox NICs and the HPCC simulator's
  rdma-hw.cc "Mlx" functions run): i_T <= F fast recovery, i_T = F + 1 additive increase, then
  hyper increase -- the paper's rule with i_B stuck at 0 would never reach hyper increase;
* ``alpha_on_first_cnp`` (Mellanox): α is set to 1 by a flow's first CNP, and α's timer starts
  then, instead of α decaying from 1 since the flow began (which made the first cut tiny).

The class is pure: time is passed in (seconds, any origin), so tests drive it in virtual time.
Presets are given at real-fabric speed and mapped to the testbed with ``DcqcnParams.scaled``.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from fabriclab.errors import UserError
from fabriclab.traffic.scale import TimeScale


@dataclass(frozen=True)
class DcqcnParams:
    g: float                        # α gain
    alpha_timer: float              # s: α decays once per period without CNP
    rate_timer: float               # s: T, the rate-increase timer
    byte_counter: int               # bytes: B, the rate-increase byte counter
    fast_recovery_stages: int       # F
    rate_ai: float                  # bit/s: additive increase step R_AI
    rate_hai: float                 # bit/s: hyper increase step R_HAI
    min_rate: float                 # bit/s: never cut below this
    rate_decrease_interval: float   # s: at most one cut per interval (Mellanox); 0 = every CNP
    cnp_interval: float             # s: notification point: at most one CNP per flow per interval
    initial_alpha: float = 1.0
    alpha_on_first_cnp: bool = False  # α <- 1 on the first CNP, α timer from then on (Mellanox)
    increase_at_bps: float = 0.0    # R_AI/R_HAI are given for this link rate and follow the real
                                    # link's rate proportionally (Mellanox); 0: fixed

    def scaled(self, scale: TimeScale) -> "DcqcnParams":
        """The same controller on a testbed: rates ÷ scale, times × scale, bytes unchanged."""
        return replace(self,
                       alpha_timer=scale.time(self.alpha_timer), rate_timer=scale.time(self.rate_timer),
                       rate_ai=scale.rate(self.rate_ai), rate_hai=scale.rate(self.rate_hai),
                       min_rate=scale.rate(self.min_rate),
                       rate_decrease_interval=scale.time(self.rate_decrease_interval),
                       cnp_interval=scale.time(self.cnp_interval))

    def for_link(self, real_link_bps: float) -> "DcqcnParams":
        """The preset on a real link of ``real_link_bps`` (before ``scaled``)."""
        if not self.increase_at_bps:
            return self
        factor = real_link_bps / self.increase_at_bps
        return replace(self, rate_ai=self.rate_ai * factor, rate_hai=self.rate_hai * factor)

    def with_overrides(self, **overrides: float) -> "DcqcnParams":
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise UserError(f"unknown DCQCN parameter(s) {sorted(unknown)}; known: {sorted(known)}")
        return replace(self, **overrides)


# The SIGCOMM'15 paper's values (at 40 Gbit/s): g = 1/256, 55 µs timers, B = 10 MB, F = 5,
# CNP interval 50 µs, R_AI = 40 Mbit/s. ASSUMPTIONS (the paper fixes neither): R_HAI = 10·R_AI =
# 400 Mbit/s, and a 40 Mbit/s rate floor (= R_AI).
PAPER = DcqcnParams(g=1 / 256, alpha_timer=55e-6, rate_timer=55e-6, byte_counter=10_000_000,
                    fast_recovery_stages=5, rate_ai=40e6, rate_hai=400e6, min_rate=40e6,
                    rate_decrease_interval=0.0, cnp_interval=50e-6)

# Mellanox-style DCQCN as the HPCC ns-3 simulator runs it (its run.py and rdma-hw.cc "Mlx"
# functions; values in /work/shared/reference/lossless-ethernet.md): α timer 1 µs, rate-increase
# timer 300 µs and no byte counter, F = 1, cuts at most every 4 µs, α = 1 on the first CNP,
# R_AI / R_HAI = 20 / 200 Mbit/s at 100 Gbit/s (proportional to the link rate), 1 Gbit/s floor.
# The CNP interval (4 µs) is this preset's choice: the reference gives none.
MELLANOX = DcqcnParams(g=1 / 256, alpha_timer=1e-6, rate_timer=300e-6, byte_counter=0,
                       fast_recovery_stages=1, rate_ai=20e6, rate_hai=200e6, min_rate=1e9,
                       rate_decrease_interval=4e-6, cnp_interval=4e-6, alpha_on_first_cnp=True,
                       increase_at_bps=100e9)

# RED marking each preset is run with, at the real link rate: (Kmin bytes, Kmax bytes, Pmax).
# Paper: 5 KB / 200 KB / 1 % (at 40 Gbit/s, not scaled). Mellanox/HPCC: Kmin = 100 KB·bw/25G,
# Kmax = 400 KB·bw/25G, Pmax = 0.2.
def ecn_profile(name: str, real_link_bps: float) -> tuple[int, int, float]:
    """The marking profile preset ``name`` runs with on a real link of ``real_link_bps``."""
    preset(name)
    if name == "mellanox":
        return round(100_000 * real_link_bps / 25e9), round(400_000 * real_link_bps / 25e9), 0.2
    return 5_000, 200_000, 0.01

PRESETS: dict[str, DcqcnParams] = {"paper": PAPER, "mellanox": MELLANOX}


def preset(name: str) -> DcqcnParams:
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown DCQCN preset {name!r}; choose one of {', '.join(PRESETS)}") from None


class Dcqcn:
    """One flow's reaction point. Call ``advance(now)`` before reading ``rate``."""

    def __init__(self, line_rate: float, params: DcqcnParams, now: float):
        if line_rate <= 0:
            raise ValueError("line rate must be positive")
        self.params = params
        self.line_rate = float(line_rate)
        self.rate = self.line_rate          # RC: current rate (flows start at line rate)
        self.target = self.line_rate        # RT: target rate
        self.alpha = params.initial_alpha
        self.cuts = 0
        self.cnps = 0
        self._timer_stage = 0               # i_T
        self._byte_stage = 0                # i_B
        self._bytes = 0                     # bytes counted towards B
        # Mellanox: α and rate timers only run once the first CNP came
        self._next_alpha = float("inf") if params.alpha_on_first_cnp else now + params.alpha_timer
        self._next_rate_timer = float("inf") if params.alpha_on_first_cnp else now + params.rate_timer
        self._cnp_since_alpha = False
        self._last_cut = float("-inf")

    def on_cnp(self, now: float) -> None:
        """A congestion notification for this flow arrived."""
        self.advance(now)
        self.cnps += 1
        p = self.params
        if p.alpha_on_first_cnp and self.cnps == 1:
            self.alpha = 1.0
        if now - self._last_cut < p.rate_decrease_interval:
            # cut suppressed, but α still learns that congestion persists
            self._cnp_since_alpha = True
            return
        self.cut()
        self.cuts += 1
        self._last_cut = now
        self._cnp_since_alpha = True
        self._timer_stage = self._byte_stage = self._bytes = 0
        self._next_rate_timer = now + p.rate_timer
        self._next_alpha = now + p.alpha_timer

    def cut(self) -> None:
        """The rate decrease itself (a seam: labs/07-dcqcn has students write it)."""
        p = self.params
        self.target = self.rate
        self.rate = max(p.min_rate, self.rate * (1 - self.alpha / 2))
        self.alpha = (1 - p.g) * self.alpha + p.g

    def on_sent(self, nbytes: int, now: float) -> None:
        """Count transmitted bytes toward the byte counter B (none: timer-only increase)."""
        self.advance(now)
        if not self.params.byte_counter:
            return
        self._bytes += nbytes
        while self._bytes >= self.params.byte_counter:
            self._bytes -= self.params.byte_counter
            self._byte_stage += 1
            self._increase()

    def advance(self, now: float) -> None:
        """Fire every α and rate timer expiry up to ``now``, in time order."""
        p = self.params
        while True:
            due_alpha, due_rate = self._next_alpha, self._next_rate_timer
            if min(due_alpha, due_rate) > now:
                return
            if due_alpha <= due_rate:
                if not self._cnp_since_alpha:
                    self.alpha = (1 - p.g) * self.alpha
                self._cnp_since_alpha = False
                self._next_alpha = due_alpha + p.alpha_timer
            else:
                self._timer_stage += 1
                self._next_rate_timer = due_rate + p.rate_timer
                self._increase()

    def _increase(self) -> None:
        p = self.params
        if self.rate >= self.line_rate and self.target >= self.line_rate:
            return  # already at line rate: nothing to recover
        f = p.fast_recovery_stages
        if not p.byte_counter:                    # timer only: F fast recovery, one AI, then HAI
            step = 0.0 if self._timer_stage <= f else p.rate_ai if self._timer_stage == f + 1 else p.rate_hai
            self.target = min(self.line_rate, self.target + step)
        elif max(self._timer_stage, self._byte_stage) <= f:
            pass  # fast recovery: RT unchanged
        elif min(self._timer_stage, self._byte_stage) > f:
            self.target = min(self.line_rate, self.target + p.rate_hai)
        else:
            self.target = min(self.line_rate, self.target + p.rate_ai)
        self.rate = min(self.line_rate, (self.target + self.rate) / 2)

    def next_event(self) -> float:
        """When the next timer fires (for event loops that sleep until then)."""
        return min(self._next_alpha, self._next_rate_timer)
