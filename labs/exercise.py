"""An exercise folder in the p4lang/tutorials layout, read into plain data.

The layout (as the tutorials' ``utils/run_exercise.py`` reads it):

* ``topology.json`` in the folder, or in the sub-folder its Makefile's ``TOPO`` names
  (``TOPO = pod-topo/topology.json``): ``hosts`` (name -> ``ip`` with prefix, ``mac``,
  ``commands`` run in the host once it is up), ``switches`` (name -> ``runtime_json``, the
  switch's ``sN-runtime.json``), ``links`` (``[a, b]`` or ``[a, b, latency, bandwidth]``; a switch
  end is ``s1-p2``: port 2 of s1; latency in ms or a string such as ``"5ms"``, bandwidth in Mbit/s);
* the program: the folder's one ``.p4`` file, or ``solution/*.p4``;
* hosts name their interface ``eth0`` (the commands say ``dev eth0``).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from fabriclab.errors import UserError
from fabriclab.units import parse_duration

DEFAULT_RATE_BPS = 1_000_000_000     # a link without bandwidth: unshaped in the tutorials
_TOPO_LINE = re.compile(r"^\s*TOPO\s*[:?]?=\s*(\S+)", re.M)
_GATEWAY = re.compile(r"\b(?:route add default gw|ip route add default via)\s+(\d+\.\d+\.\d+\.\d+)")


@dataclass
class ExerciseHost:
    name: str
    ip: str              # without the prefix length
    prefix_len: int
    mac: str
    commands: list[str] = field(default_factory=list)

    @property
    def gateway(self) -> str:
        for command in self.commands:
            m = _GATEWAY.search(command)
            if m:
                return m.group(1)
        return ""


@dataclass
class ExerciseLink:
    node1: str
    port1: int           # 0 for a host
    node2: str
    port2: int
    delay_s: float = 0.0
    rate_bps: int | None = None


@dataclass
class Exercise:
    folder: Path
    topology_path: Path
    program: Path
    hosts: dict[str, ExerciseHost]
    switches: dict[str, Path | None]          # name -> runtime JSON (None: no static entries)
    links: list[ExerciseLink]


def topology_file(folder: Path) -> Path:
    """``topology.json`` in the folder, or the one its Makefile's TOPO names."""
    direct = folder / "topology.json"
    if direct.exists():
        return direct
    makefile = folder / "Makefile"
    if makefile.exists():
        m = _TOPO_LINE.search(makefile.read_text(errors="replace"))
        if m and (folder / m.group(1)).exists():
            return folder / m.group(1)
    raise UserError(f"{folder}: no topology.json (neither in the folder nor where its Makefile's TOPO points)")


def program_file(folder: Path, solution: bool) -> Path:
    where = folder / "solution" if solution else folder
    programs = sorted(where.glob("*.p4"))
    if len(programs) == 1:
        return programs[0]
    # several (a shared include, say): the one named like the folder's own program
    own = sorted(folder.glob("*.p4"))
    named = [p for p in programs if any(p.name == o.name for o in own)] if solution else []
    if len(named) == 1:
        return named[0]
    if not programs:
        raise UserError(f"{where}: no .p4 program")
    raise UserError(f"{where}: several .p4 programs ({', '.join(p.name for p in programs)}): cannot tell which to run")


def load_exercise(folder: str | Path, solution: bool = False) -> Exercise:
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise UserError(f"{folder}: not a directory")
    path = topology_file(folder)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    try:
        hosts = {name: _host(name, spec) for name, spec in data["hosts"].items()}
        switches = {name: _runtime_path(folder, path.parent, (spec or {}).get("runtime_json"), solution)
                    for name, spec in data["switches"].items()}
        links = [_link(item, hosts, switches) for item in data["links"]]
    except KeyError as exc:
        raise UserError(f"{path}: missing key {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: {exc}") from None
    return Exercise(folder, path, program_file(folder, solution), hosts, switches, links)


def _host(name: str, spec: dict) -> ExerciseHost:
    ip, _, prefix = str(spec["ip"]).partition("/")
    return ExerciseHost(name, ip, int(prefix or 24), str(spec["mac"]), [str(c) for c in spec.get("commands", [])])


def _runtime_path(folder: Path, topo_dir: Path, name: str | None, solution: bool) -> Path | None:
    if not name:
        return None
    if solution and (folder / "solution" / Path(name).name).exists():
        return folder / "solution" / Path(name).name
    for base in (folder, topo_dir):
        if (base / name).exists():
            return base / name
    raise ValueError(f"runtime_json {name!r} not found (looked in {folder} and {topo_dir})")


def _end(node: str, hosts: dict, switches: dict) -> tuple[str, int]:
    if node in hosts:
        return node, 0
    name, sep, port = node.partition("-")
    if not sep or name not in switches or not re.fullmatch(r"p\d+", port):
        raise ValueError(f"link end {node!r} is neither a host nor a switch port like s1-p1")
    return name, int(port[1:])


def _link(item: list, hosts: dict, switches: dict) -> ExerciseLink:
    if not isinstance(item, list) or len(item) < 2:
        raise ValueError(f"a link is [node1, node2, latency, bandwidth], got {item!r}")
    (node1, port1), (node2, port2) = _end(item[0], hosts, switches), _end(item[1], hosts, switches)
    if node2 in hosts and node1 not in hosts:       # host first, as the tutorials order them
        (node1, port1), (node2, port2) = (node2, port2), (node1, port1)
    latency = item[2] if len(item) > 2 else 0
    delay = parse_duration(f"{latency}ms" if isinstance(latency, (int, float)) else str(latency), "latency")
    bandwidth = item[3] if len(item) > 3 else None
    rate = int(float(bandwidth) * 1_000_000) if bandwidth else None
    return ExerciseLink(node1, port1, node2, port2, delay, rate)


def topology_json(description) -> dict:
    """A fabriclab fabric (``FabricDescription``) drawn as a tutorials ``topology.json``: what
    the labs that run fabric.p4 and the controller ship, so every lab folder has the layout."""
    def end(node: str, port: int) -> str:
        return node if not description.is_switch(node) else f"{node}-p{port}"

    hosts = {h.name: {"ip": f"{h.ip}/{h.prefix_len}", "mac": h.mac,
                      "commands": [f"route add default gw {h.gateway_ip} dev eth0",
                                   f"arp -i eth0 -s {h.gateway_ip} {h.gateway_mac}"]}
             for h in description.hosts}
    links = [[end(l.node1, l.port1), end(l.node2, l.port2), f"{l.delay_s * 1e3:g}ms", l.rate_bps / 1e6]
             for l in description.links]
    return {"hosts": hosts, "switches": {sw.name: {} for sw in description.switches}, "links": links}
