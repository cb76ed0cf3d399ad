"""A variant's fidelity: did the emulation keep time while the traffic ran?

The switches publish their frame lateness and loop lag, the host agents their pacing error, each
with the budget its 99th percentile must stay within (switch/fidelity.py says why those budgets).
Here the switches' figures are cut to the traffic window (the last counter sample minus the
first) and judged together with the hosts': ``ok`` or ``degraded``. An expectation naming a
degraded variant is "not valid" -- neither held nor failed: the numbers it would compare are not
what the fabric it describes would have produced.
"""
from __future__ import annotations

from fabriclab.switch.fidelity import Figure, Histogram, judge

# the worst p99 of each kind, summarised per variant (figure names end with the kind)
WORST = {"lateness_p99_us": "frame lateness", "loop_lag_p99_us": "loop lag", "pacing_p99_us": "pacing error"}
NOT_VALID_EXIT = 4      # `fabriclab run`: nothing failed, but a degraded variant left expectations unjudged


def _window(entry: dict, before: dict | None) -> Histogram:
    histogram = Histogram.from_list(entry["histogram"])
    return histogram.minus(Histogram.from_list(before["histogram"])) if before else histogram


def variant_fidelity(first: dict[str, dict], last: dict[str, dict], pacing: dict[str, dict]) -> dict:
    """``first``/``last``: every switch's stats when the traffic started and ended; ``pacing``:
    per host its agent's pacing figure. judge()'s verdict plus the worst p99 of each kind."""
    figures = []
    for sw, stats in sorted(last.items()):
        block = stats.get("fidelity")
        if not block:
            continue           # a switch without the monitor (bmv2)
        before = (first.get(sw) or {}).get("fidelity") or {}
        for key, kind in (("lateness", "frame lateness"), ("loop_lag", "loop lag")):
            entry = block[key]
            figures.append(Figure(f"{sw} {kind}", _window(entry, before.get(key)), entry["budget_us"], entry["why"]))
    for host, figure in sorted(pacing.items()):
        figures.append(Figure(f"{host} pacing error", Histogram.from_list(figure["histogram"]),
                              figure["budget_us"], figure["why"]))
    verdict = judge(figures)
    for key, kind in WORST.items():
        p99s = [v["p99"] for what, v in verdict["figures"].items() if what.endswith(kind) and v["p99"] is not None]
        verdict[key] = max(p99s, default=None)
    return verdict


def not_valid_because(variants: set[str], results: dict[str, dict]) -> str | None:
    """Why an expectation over ``variants`` cannot be judged (a degraded variant), or None."""
    degraded = sorted(v for v in variants if (results.get(v, {}).get("fidelity") or {}).get("status") == "degraded")
    if not degraded:
        return None
    return f"not valid: fidelity degraded in {', '.join(degraded)}"


def verdict(expectations: list[dict]) -> str:
    """``failed`` if an expectation failed, else ``not valid`` if a degraded variant left one
    unjudged (``valid: false``), else ``held`` (one not supported on a target counts for neither)."""
    if any(e["held"] is False for e in expectations):
        return "failed"
    if any(e.get("valid") is False for e in expectations):
        return "not valid"
    return "held"
