"""Topology names as users type them, and the parameters each one takes."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from fabriclab.errors import UserError
from fabriclab.topologies.description import FabricDescription
from fabriclab.topologies.dumbbell import dumbbell
from fabriclab.topologies.fattree import fattree
from fabriclab.topologies.leafspine import leafspine
from fabriclab.topologies.ring import ring
from fabriclab.topologies.yamlfile import from_yaml

# name -> (builder, parameters only that topology takes)
TOPOLOGIES: dict[str, tuple[Callable[..., FabricDescription], tuple[str, ...]]] = {
    "leafspine": (leafspine, ("spines", "leaves", "hosts_per_leaf", "links_per_spine")),
    "fattree": (fattree, ("k", "hosts_per_edge")),
    "dumbbell": (dumbbell, ("hosts",)),
    "ring": (ring, ("switches", "hosts_per_switch")),
}
COMMON_PARAMS = ("host_rate", "fabric_rate", "delay", "prefix", "grpc_port_base", "mtu")
SPECIFIC_PARAMS = tuple(sorted({p for _, params in TOPOLOGIES.values() for p in params}))


def describe(topology: str | None, params: dict, topo_file: str | Path | None = None) -> FabricDescription:
    """Build the description of topology ``topology`` (or of ``topo_file``) from the parameters
    the user gave; ``None`` values mean 'not given'. Parameters the topology does not take are
    an error rather than silently ignored."""
    given = {k: v for k, v in params.items() if v is not None}
    unknown = sorted(set(given) - set(COMMON_PARAMS) - set(SPECIFIC_PARAMS))
    if unknown:
        raise UserError(f"unknown topology parameter {unknown[0]!r}")
    if topo_file is not None:
        if topology not in (None, "file"):
            raise UserError("give either --topo or --topo-file, not both")
        _reject(given, (), "--topo-file", also_reject=("host_rate", "fabric_rate", "delay", "mtu"))
        return from_yaml(topo_file, **{k: given[k] for k in ("prefix", "grpc_port_base") if k in given})
    topology = topology or "leafspine"
    if topology not in TOPOLOGIES:
        raise UserError(f"unknown topology {topology!r} (choose from {', '.join(TOPOLOGIES)}, or use --topo-file)")
    builder, own = TOPOLOGIES[topology]
    _reject(given, own, f"--topo {topology}")
    return builder(**given)


def _reject(given: dict, own: tuple[str, ...], what: str, also_reject: tuple[str, ...] = ()) -> None:
    for name in given:
        if name in also_reject or (name not in own and name not in COMMON_PARAMS):
            raise UserError(f"--{name.replace('_', '-')} does not apply to {what}")
