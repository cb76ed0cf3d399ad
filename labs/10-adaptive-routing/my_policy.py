"""Lab 10: an adaptive-routing policy for fabriclab's controller.

The controller calls ``decide(view)`` after every telemetry poll (controller/policy.py explains
the view and the decision). Here: re-weigh each next-hop group so that traffic moves from
loaded uplinks to idle ones — weighted ECMP driven by measurement.
"""
from fabriclab.controller.policy import Decision, FabricView, Policy


class LabPolicy(Policy):
    name = "lab10"

    def decide(self, view: FabricView) -> Decision:
        decision = Decision()
        for group in view.groups:
            # the load of the link behind each member: view.loads[(group.switch, member.port)]
            # TODO (task 2): when the members' utilisations differ by more than a margin, give
            # the less loaded members more of the group's buckets: new weights (one per member,
            # each at least 1, summing to at most group.capacity) in
            # decision.weights[(group.switch, group.group_id)].
            # TODO (task 3): do not change a group again too soon after its last change
            # (group.changed_at, view.now): the traffic needs a poll or two to follow.
            pass
        return decision
