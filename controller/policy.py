"""Routing policies: what the controller changes, every poll, from what the fabric reports.

Writing your own is one class with one method::

    from fabriclab.controller.policy import Decision, FabricView, Policy, register

    @register
    class Quiet(Policy):
        name = "quiet"                         # fabriclab up --policy quiet; scenario controller: {policy: quiet}

        def decide(self, view: FabricView) -> Decision:
            return Decision()                  # change nothing

``decide`` runs on the controller's telemetry thread after every poll. ``view`` is read-only:
per directed link the smoothed utilisation, queue and PFC state; every next-hop group with
its members and current weights; the heavy flows the data plane reported; the pinned flows;
the live shortest paths between two switches. The ``Decision`` lists new group weights,
flows to pin to a path and pins to release; the controller writes them (groups hitlessly:
the new buckets go into the group's spare half, then the group entry flips to it) and raises
``EventTableChanged``. A policy keeps whatever state it likes on ``self``. Link failures are
not a policy's business: repair runs before any policy, and ``view`` shows only live links.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from fabriclab.controller.routing import NextHop
from fabriclab.errors import UserError


@dataclass(frozen=True)
class LinkLoad:
    """One direction of one link, seen from the switch port that sends into it."""
    switch: str
    port: int
    neighbour: str
    rate_bps: int
    util: float            # smoothed utilisation, 0..1 (EWMA over polls)
    tx_bps: float          # last poll interval's rate
    queue_bytes: int       # egress queue occupancy, all priorities
    paused: bool           # a PFC pause holds at least one priority
    up: bool


@dataclass(frozen=True)
class FlowKey:
    src: str               # dotted IPv4
    dst: str
    proto: int
    sport: int
    dport: int

    def __str__(self) -> str:
        return f"{self.src}:{self.sport}->{self.dst}:{self.dport}/{self.proto}"


@dataclass(frozen=True)
class GroupView:
    switch: str
    group_id: int
    members: tuple[NextHop, ...]
    weights: tuple[int, ...]
    capacity: int          # most buckets the group can hold (sum of weights <= capacity)
    changed_at: float      # controller clock (s) of the last change, -inf if never


@dataclass(frozen=True)
class HeavyFlow:
    key: FlowKey
    switch: str            # the switch whose data plane reported it (where the paths fork)
    dst_switch: str        # the edge switch of the destination
    rate_bps: float        # measured when reported


@dataclass(frozen=True)
class Pin:
    key: FlowKey
    path: tuple[tuple[str, int], ...]   # (switch, egress port) hops, first = where the flow forks
    demand_bps: float
    pinned_at: float
    idle_s: float          # how long the pinned flow has sent nothing


@dataclass
class FabricView:
    now: float                                         # controller clock, seconds
    loads: dict[tuple[str, int], LinkLoad]             # (switch, port) -> load of the link it sends into
    groups: list[GroupView]
    heavy: list[HeavyFlow]                             # reported, not pinned
    pins: dict[FlowKey, Pin]
    # (from switch, to switch) -> live shortest paths as (switch, egress port) hops
    paths: Callable[[str, str], list[tuple[tuple[str, int], ...]]]
    host_rate_bps: Callable[[str], int]                # host IP -> its NIC rate


@dataclass
class Decision:
    weights: dict[tuple[str, int], tuple[int, ...]] = field(default_factory=dict)   # (switch, group) -> weights
    pin: dict[FlowKey, tuple[tuple[tuple[str, int], ...], float]] = field(default_factory=dict)  # -> (path, demand)
    release: set[FlowKey] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.weights or self.pin or self.release)


class Policy:
    """Base class; ``static`` itself: install equal-cost routes and leave them alone."""
    name = "static"

    def decide(self, view: FabricView) -> Decision:
        return Decision()


POLICIES: dict[str, type[Policy]] = {}


def register(cls: type[Policy]) -> type[Policy]:
    POLICIES[cls.name] = cls
    return cls


register(Policy)


@register
class Wcmp(Policy):
    """Weighted ECMP from measured load: every group's buckets move towards the members with
    spare capacity. The target share of member i is its current share times ``(1 - util_i) +
    prior`` (balanced members keep their split; ``prior`` keeps a saturated member in the group),
    blended half-way with the current share so one poll cannot swing a group from one extreme to
    the other. A group changes only when
    its members' utilisations differ by more than ``hysteresis`` and at least ``min_interval_s``
    after its last change, so measurement noise and the traffic's own response to a change do
    not make it oscillate. A member whose link is down has weight 0 (repair does that anyway)."""
    name = "wcmp"

    def __init__(self, hysteresis: float = 0.15, min_interval_s: float = 1.0, prior: float = 0.5):
        self.hysteresis, self.min_interval_s, self.prior = hysteresis, min_interval_s, prior

    def decide(self, view: FabricView) -> Decision:
        decision = Decision()
        for group in view.groups:
            if view.now - group.changed_at < self.min_interval_s:
                continue
            loads = [view.loads.get((group.switch, m.port)) for m in group.members]
            utils = [load.util if load is not None and load.up else None for load in loads]
            live = [u for u in utils if u is not None]
            if len(live) < 2 or max(live) - min(live) <= self.hysteresis:
                continue
            weights = wcmp_weights(group.weights, utils, group.capacity, self.prior)
            if weights != group.weights:
                decision.weights[(group.switch, group.group_id)] = weights
        return decision


def wcmp_weights(current: tuple[int, ...], utils: list[float | None], capacity: int,
                 prior: float = 0.5) -> tuple[int, ...]:
    """New bucket counts (summing to ``capacity``) for members with utilisations ``utils``
    (None: member down, weight 0). Pure, so the unit tests drive it with synthetic loads."""
    total = sum(w for w, u in zip(current, utils) if u is not None) or 1
    share = [w / total if u is not None else 0.0 for w, u in zip(current, utils)]
    target = [s * ((1.0 - min(max(u, 0.0), 1.0)) + prior) if u is not None else 0.0 for s, u in zip(share, utils)]
    target_total = sum(target) or 1.0
    blend = [(s + t / target_total) / 2 for s, t in zip(share, target)]
    return apportion(blend, capacity)


def apportion(shares: list[float], buckets: int) -> tuple[int, ...]:
    """Largest-remainder rounding of ``shares`` to whole buckets summing to ``buckets``; every
    member with a positive share keeps at least one bucket."""
    total = sum(shares)
    exact = [s / total * buckets for s in shares]
    counts = [max(1, math.floor(e)) if s > 0 else 0 for s, e in zip(shares, exact)]
    while sum(counts) > buckets:
        i = max((i for i, c in enumerate(counts) if c > 1), key=lambda i: counts[i] - exact[i])
        counts[i] -= 1
    while sum(counts) < buckets:
        i = max((i for i, s in enumerate(shares) if s > 0), key=lambda i: exact[i] - counts[i])
        counts[i] += 1
    return tuple(counts)


def make_policy(name: str, params: dict | None = None) -> Policy:
    from fabriclab.controller import elephant  # noqa: F401  (registers "elephant")

    if name not in POLICIES:
        raise UserError(f"unknown policy {name!r} (choose from {', '.join(sorted(POLICIES))})")
    try:
        return POLICIES[name](**(params or {}))
    except TypeError as exc:
        raise UserError(f"policy {name}: bad parameters ({exc})") from None
