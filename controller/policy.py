"""The seam for adaptive routing: a policy turns port telemetry into next-hop group weights.

The controller calls ``weigh`` every ``ControllerSettings.adaptive_interval_s`` for each group
of each switch whose LB mode is ``adaptive`` and installs the weights it returns (a weight is
how many times the member appears in the group's member table, 0 removes it for now).
``EqualWeights`` keeps static ECMP behaviour; a load-aware policy plugs in here.
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
