"""Lab 10 checker: your policy in a closed loop with a model of two uplinks, one of them also
carrying traffic the policy cannot move (fabriclab/labs/routing_bench.py; the controller's own
view and decision types, no network needed)."""
from __future__ import annotations

import importlib.util

from fabriclab.errors import UserError
from fabriclab.labs import routing_bench as bench
from fabriclab.labs.checks import Check

BALANCE = 0.15         # final utilisations at most this far apart
CALM_POLLS = 15        # the last polls, in which ...
MAX_CHANGES = 2        # ... the group changes at most this often


def student_policy(run):
    path = run.file("my_policy.py")
    spec = importlib.util.spec_from_file_location("lab10_policy", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        return module.LabPolicy()
    except Exception as exc:     # the student's file: any error is theirs to see, in one line
        raise UserError(f"{path}: {type(exc).__name__}: {exc}") from None


def decide(policy, utils: dict[int, float], weights=(8, 8)):
    try:
        return policy.decide(bench.view(10.0, utils, weights, float("-inf")))
    except Exception as exc:
        raise UserError(f"decide() failed: {type(exc).__name__}: {exc}") from None


def checks(run):
    policy = student_policy(run)
    hot = decide(policy, {3: 0.95, 4: 0.30}).weights.get(("l1", 1))
    yield Check("an overloaded uplink (95 %) loses buckets to an idle one (30 %)",
                hot is not None and len(hot) == 2 and hot[0] < 8 < hot[1], f"weights (8, 8) -> {hot or 'unchanged'}")
    calm = decide(student_policy(run), {3: 0.50, 4: 0.55})
    yield Check("uplinks 5 points apart are left alone (noise, not imbalance)", not calm.weights,
                f"weights -> {calm.weights.get(('l1', 1), 'unchanged')}")
    try:
        trace = bench.run(student_policy(run))
    except Exception as exc:
        raise UserError(f"decide() failed: {type(exc).__name__}: {exc}") from None
    yield Check("every decision is one the controller accepts (each member >= 1 bucket, within capacity)",
                not trace.invalid, trace.invalid[0] if trace.invalid else f"{len(trace.changes)} changes, all valid")
    u3, u4 = trace.utils[-1]
    yield Check(f"after {bench.POLLS} polls neither uplink is saturated and they are within {BALANCE:.2f}",
                max(u3, u4) < 0.95 and abs(u3 - u4) <= BALANCE,
                f"utilisation {u3:.2f} and {u4:.2f}, weights {trace.weights[-1]}")
    late = [p for p in trace.changes if p > bench.POLLS - CALM_POLLS]
    yield Check(f"it settles: at most {MAX_CHANGES} changes in the last {CALM_POLLS} polls", len(late) <= MAX_CHANGES,
                f"changes at polls {trace.changes or 'none'}")
