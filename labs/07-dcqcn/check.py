"""Lab 07 checker: your rate cut inside fabriclab's DCQCN reaction point, first on single CNPs,
then with your dcqcn.yaml in a 4 -> 1 incast at 40 Gbit/s (fabriclab/labs/dcqcn_bench.py: a
seeded fluid model, no network needed)."""
from __future__ import annotations

import importlib.util

import yaml

from fabriclab.errors import UserError
from fabriclab.labs import dcqcn_bench
from fabriclab.labs.checks import Check
from fabriclab.traffic.dcqcn import PAPER, Dcqcn
from fabriclab.units import parse_size

QUEUE_GOAL = 50_000       # bytes: 95th percentile of the steady-state queue
UTILISATION_GOAL = 0.97
FAIRNESS_GOAL = 0.95


def student_reaction_point(run) -> type[Dcqcn]:
    path = run.file("reaction_point.py")
    spec = importlib.util.spec_from_file_location("lab07_reaction_point", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        cut = module.cut
    except Exception as exc:     # the student's file: any error is theirs to see, in one line
        raise UserError(f"{path}: {type(exc).__name__}: {exc}") from None

    class StudentDcqcn(Dcqcn):
        def cut(self) -> None:
            rate, target, alpha = cut(self.rate, self.target, self.alpha, self.params.g)
            self.rate, self.target, self.alpha = max(self.params.min_rate, rate), target, alpha

    return StudentDcqcn


def knobs(run) -> tuple[dcqcn_bench.Marking, float]:
    path = run.file("dcqcn.yaml")
    try:
        data = yaml.safe_load(path.read_text()) or {}
        marking = dcqcn_bench.Marking(parse_size(data["kmin"], "kmin"), parse_size(data["kmax"], "kmax"),
                                      float(data["pmax"]))
        g = float(data["g"])
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: {type(exc).__name__}: {exc}") from None
    if not (0 <= marking.pmax <= 1 and 0 < g < 1 and marking.kmin <= marking.kmax):
        raise UserError(f"{path}: need 0 <= pmax <= 1, 0 < g < 1 and kmin <= kmax")
    return marking, g


def one_cnp(cls: type[Dcqcn], alpha: float) -> Dcqcn:
    rp = cls(dcqcn_bench.LINE_RATE, PAPER, 0.0)
    rp.alpha = alpha
    rp.on_cnp(1e-9)
    return rp


def checks(run):
    cls = student_reaction_point(run)
    line, g = dcqcn_bench.LINE_RATE, PAPER.g
    try:
        first, second = one_cnp(cls, 1.0), one_cnp(cls, 0.5)
    except Exception as exc:
        raise UserError(f"cut() failed: {type(exc).__name__}: {exc}") from None
    yield Check("a CNP at α = 1 halves the rate and keeps the old rate as the target",
                abs(first.rate - line / 2) < 1 and abs(first.target - line) < 1 and abs(first.alpha - 1) < 1e-9,
                f"rate {first.rate / 1e9:.2f} Gbit/s, target {first.target / 1e9:.2f}, α {first.alpha:.4f}")
    yield Check("a CNP at α = 0.5 cuts a quarter, and α moves towards 1 by g",
                abs(second.rate - line * 0.75) < 1 and abs(second.alpha - ((1 - g) * 0.5 + g)) < 1e-9,
                f"rate {second.rate / 1e9:.2f} Gbit/s, α {second.alpha:.5f} (expected {(1 - g) * 0.5 + g:.5f})")
    marking, g = knobs(run)
    steady = dcqcn_bench.run(cls, marking, g).tail()
    p95 = steady.queue_percentile(0.95)
    yield Check(f"4 -> 1 incast: the queue's 95th percentile stays below {QUEUE_GOAL // 1000} KB", p95 < QUEUE_GOAL,
                f"{p95 / 1000:.1f} KB")
    used = steady.utilisation()
    yield Check(f"the port stays busy: at least {UTILISATION_GOAL:.0%} of 40 Gbit/s used", used >= UTILISATION_GOAL,
                f"{used:.1%} used")
    fair = steady.fairness()
    yield Check(f"the four flows share the port fairly (Jain's index at least {FAIRNESS_GOAL})", fair >= FAIRNESS_GOAL,
                f"Jain {fair:.3f}")
