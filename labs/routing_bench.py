"""Lab 10's test bench: a controller policy in a closed loop with a model of one leaf's uplinks.

Leaf l1 has two 10 Gbit/s uplinks (ports 3 and 4, to spines s1 and s2). Group 1 (its route to
the other leaves) carries 12 Gbit/s, split over the uplinks by the group's weights; port 3 also
carries 5 Gbit/s the policy cannot move (another group's, say). Every poll (1 s) the policy sees
the utilisation the previous weights caused and may re-weigh the group; the controller's view,
decision and group types are fabriclab's own (controller/policy.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from fabriclab.controller.policy import Decision, FabricView, GroupView, LinkLoad, Policy
from fabriclab.controller.routing import NextHop

RATE = 10e9
MOVABLE = 12e9
FIXED = {3: 5e9, 4: 0.0}
CAPACITY = 16
POLLS = 30
MEMBERS = (NextHop(3, "02:f0:00:00:00:03", "s1"), NextHop(4, "02:f0:00:00:00:04", "s2"))


@dataclass
class Trace:
    utils: list[tuple[float, float]] = field(default_factory=list)      # per poll: port 3, port 4
    weights: list[tuple[int, ...]] = field(default_factory=list)        # per poll, after the decision
    changes: list[int] = field(default_factory=list)                    # polls at which weights changed
    invalid: list[str] = field(default_factory=list)                    # decisions the controller would refuse


def loads_for(utils: dict[int, float]) -> dict[tuple[str, int], LinkLoad]:
    return {("l1", port): LinkLoad("l1", port, f"s{port - 2}", int(RATE), util, util * RATE,
                                   int(util * 100_000), False, True) for port, util in utils.items()}


def view(now: float, utils: dict[int, float], weights: tuple[int, ...], changed_at: float) -> FabricView:
    group = GroupView("l1", 1, MEMBERS, weights, CAPACITY, changed_at)
    return FabricView(now, loads_for(utils), [group], [], {}, lambda a, b: [], lambda ip: int(RATE))


def valid(decision: Decision) -> str | None:
    for key, weights in decision.weights.items():
        if key != ("l1", 1):
            return f"weights for an unknown group {key}"
        if len(weights) != len(MEMBERS) or min(weights) < 1 or sum(weights) > CAPACITY:
            return f"weights {weights}: need {len(MEMBERS)} members, each >= 1, sum <= {CAPACITY}"
    return None


def run(policy: Policy, polls: int = POLLS) -> Trace:
    trace = Trace()
    weights, changed_at = (CAPACITY // 2, CAPACITY // 2), float("-inf")
    for poll in range(1, polls + 1):
        total = sum(weights)
        utils = {port: min(1.0, (FIXED[m.port] + MOVABLE * w / total) / RATE)
                 for port, m, w in zip((3, 4), MEMBERS, weights)}
        trace.utils.append((utils[3], utils[4]))
        decision = policy.decide(view(float(poll), utils, weights, changed_at))
        problem = valid(decision)
        if problem:
            trace.invalid.append(f"poll {poll}: {problem}")
        elif ("l1", 1) in decision.weights and tuple(decision.weights[("l1", 1)]) != weights:
            weights, changed_at = tuple(decision.weights[("l1", 1)]), float(poll)
            trace.changes.append(poll)
        trace.weights.append(weights)
    return trace
