"""Lab 12 checker: the "watchdog" variant of your deadlock.yaml, run on a Mininet ring: the
cyclic buffer dependency is broken — every flow completes — because the PFC watchdog caught
the storm, at the price of lossless drops."""
from __future__ import annotations

from fabriclab.labs.checks import Check
from fabriclab.labs.scenario_check import run_variant_of

FLOWS = 5


def checks(run):
    m = run_variant_of(run, "deadlock.yaml", "watchdog")
    done = m.get("flows_completed") or 0
    yield Check(f"the ring does not stay frozen: all {FLOWS} flows complete", done == FLOWS and not m.get("error"),
                m.get("error") or f"{done} of {FLOWS} flows completed")
    storms = m.get("pfcwd_storms") or 0
    yield Check("the PFC watchdog detected a pause storm", storms > 0, f"{storms} storms detected")
    drops = m["drops"]["lossless"] or 0
    yield Check("it broke the cycle by dropping lossless packets (the watchdog's price)", drops > 0,
                f"{drops} lossless drops")
