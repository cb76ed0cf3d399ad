"""The seam for adaptive routing: a policy turns port telemetry into next-hop group weights.

A weight is how many buckets a member gets in the group's range of ``lb_member`` (0 leaves it
out). Today the controller calls ``weigh`` once per group when it installs routes, with no load
yet, so ``EqualWeights`` gives static ECMP/spray/flowlet groups; the data plane's ``adaptive``
mode (power of two choices on queue depth) needs no controller help. A load-aware policy that
re-weighs groups from live ``PortLoad`` on a timer plugs in here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fabriclab.controller.routing import NextHop


@dataclass(frozen=True)
class PortLoad:
    """What a switch reports about one egress port."""
    tx_bytes: int          # cumulative
    queue_bytes: int       # current egress queue occupancy, all priorities
    paused: bool           # a PFC pause is holding at least one priority


class Policy(Protocol):
    def weigh(self, switch: str, members: tuple[NextHop, ...], load: dict[int, PortLoad]) -> tuple[int, ...]:
        """One weight >= 0 per member, at least one above 0."""


class EqualWeights:
    def weigh(self, switch: str, members: tuple[NextHop, ...], load: dict[int, PortLoad]) -> tuple[int, ...]:
        return (1,) * len(members)
