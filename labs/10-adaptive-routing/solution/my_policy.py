"""Lab 10 solution: weighted ECMP from measured load, with hysteresis and a hold-down time."""
from fabriclab.controller.policy import Decision, FabricView, Policy

MARGIN = 0.1          # act only on a utilisation difference above this
HOLD_S = 1.5          # leave a group alone this long after changing it
STEP = 0.5            # move half-way towards the target split each time


class LabPolicy(Policy):
    name = "lab10"

    def decide(self, view: FabricView) -> Decision:
        decision = Decision()
        for group in view.groups:
            if view.now - group.changed_at < HOLD_S:
                continue
            loads = [view.loads.get((group.switch, m.port)) for m in group.members]
            if any(load is None or not load.up for load in loads):
                continue            # link failures are the controller's repair's business
            utils = [load.util for load in loads]
            if max(utils) - min(utils) <= MARGIN:
                continue
            total = sum(group.weights)
            # what each member carries of this group's traffic, and what it could carry:
            # its share now, scaled by its spare capacity (plus a little so none starves)
            share = [w / total for w in group.weights]
            target = [s * (1.0 - min(u, 1.0) + 0.2) for s, u in zip(share, utils)]
            norm = sum(target)
            mixed = [(1 - STEP) * s + STEP * t / norm for s, t in zip(share, target)]
            weights = [max(1, round(m * group.capacity)) for m in mixed]
            while sum(weights) > group.capacity:
                weights[weights.index(max(weights))] -= 1
            if tuple(weights) != tuple(group.weights):
                decision.weights[(group.switch, group.group_id)] = tuple(weights)
        return decision
