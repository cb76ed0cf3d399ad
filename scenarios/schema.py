"""Scenario files: load, check and expand into one plain configuration per variant.

A scenario names a topology, switch settings, transport, traffic, a duration, variants (named
overrides of any of those, deep-merged over the base) and expectations. Everything is checked
when the file is loaded — unknown keys, wrong types, impossible values — so a bad file fails with
one line naming the file and the key before anything starts.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from fabriclab.errors import UserError
from fabriclab.scenarios.expectations import Expectation, ExpectationError, parse_expectation
from fabriclab.units import parse_duration, parse_rate, parse_size

BUILTIN_DIR = Path(__file__).resolve().parent

TOPOLOGY_KINDS = ("leafspine", "fattree", "dumbbell", "ring")
LB_MODES = ("ecmp", "spray", "spray-rr", "flowlet", "adaptive")
# collectives (traffic.collectives), one RoCE flow, or background TCP through iperf3
PATTERNS = ("allreduce", "allreduce-hd", "allgather", "reducescatter", "alltoall", "incast", "background",
            "flow", "iperf3")
DCQCN_PRESETS = ("paper", "mellanox")


class ScenarioError(UserError):
    """A scenario file that cannot run; the message starts with the file and the key."""


# --- value checkers: each returns the normalised value or raises ValueError(reason) ----------

def _int(minimum: int = 0, maximum: int | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
            raise ValueError(f"must be {bound}, got {value}")
        return value
    return check


def _float(minimum: float, maximum: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        if not minimum <= value <= maximum:
            raise ValueError(f"must be between {minimum:g} and {maximum:g}, got {value}")
        return float(value)
    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return value
    return check


def _unit(parse: Callable[[Any, str], Any], allow_auto: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if allow_auto and value == "auto":
            return "auto"
        try:
            return parse(value, "value")
        except UserError as exc:
            raise ValueError(str(exc).removeprefix("value: ")) from None
    return check


def _auto_or(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: "auto" if value == "auto" else check(value)


def _list_of(item: Callable[[Any], Any], min_len: int = 0) -> Callable[[Any], list]:
    def check(value: Any) -> list:
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {value!r}")
        if len(value) < min_len:
            raise ValueError(f"needs at least {min_len} item(s)")
        return [item(v) for v in value]
    return check


# --- the schema: section -> key -> checker (a dict means a nested section) ------------------

TOPOLOGY = {
    "kind": _choice(*TOPOLOGY_KINDS), "spines": _int(1, 64), "leaves": _int(1, 64),
    "hosts_per_leaf": _int(1, 64), "k": _int(2, 16), "switches": _int(2, 64), "hosts": _int(1, 64),
    "hosts_per_switch": _int(1, 64),
    "host_rate": _unit(parse_rate), "fabric_rate": _unit(parse_rate),
}
# kmin/kmax/pmax "auto": the profile the DCQCN preset runs with at the real link rate (traffic.dcqcn)
ECN = {"enabled": _bool, "kmin": _unit(parse_size, allow_auto=True), "kmax": _unit(parse_size, allow_auto=True),
       "pmax": _auto_or(_float(0.0, 1.0))}
# the switches' PFC watchdog; ports: "all", or SWITCH (all its ports) / SWITCH:PORT entries
PFCWD = {"enabled": _bool, "action": _choice("drop", "forward"), "detection_time": _unit(parse_duration),
         "restoration_time": _unit(parse_duration), "poll_interval": _unit(parse_duration),
         "ports": _list_of(_str, 1)}
SWITCH = {
    "pfc": _bool, "lossless_priorities": _list_of(_int(0, 7)), "buffer": _unit(parse_size, allow_auto=True),
    "xoff": _unit(parse_size, allow_auto=True), "xon": _unit(parse_size, allow_auto=True),
    "headroom": _unit(parse_size, allow_auto=True), "alpha": _float(1 / 1024, 64.0),
    "ecn": ECN, "lb": _choice(*LB_MODES), "flowlet_gap": _unit(parse_duration),
    "scheduler": _choice("strict", "dwrr"), "pfcwd": PFCWD,
}
TRANSPORT = {"dcqcn": _bool, "preset": _choice(*DCQCN_PRESETS), "ooo": _bool, "mtu": _int(256, 9000),
             "data_dscp": _int(0, 63), "cnp_dscp": _int(0, 63), "host_pfc": _bool,
             "rx_buffer": _unit(parse_size)}
FLOW = {
    "name": _str, "pattern": _choice(*PATTERNS), "hosts": _list_of(_str, 1), "src": _str, "dst": _str,
    "size": _unit(parse_size), "start": _unit(parse_duration), "duration": _unit(parse_duration),
}
# the controller (controller/policy.py): poll_interval is fabric time, scaled by `scale`
CONTROLLER = {"policy": _str, "params": None, "poll_interval": _unit(parse_duration), "repair": _bool}
# timed link events, seconds after the traffic starts (testbed time, like traffic start:)
EVENT = {"at": _unit(parse_duration), "link": _list_of(_str, 2), "state": _choice("up", "down")}
# per host NIC behaviour: a slow receiver (drain rate) or a stuck NIC (fault, from start for duration)
HOST = {"slow_receiver": _unit(parse_rate),
        "stuck_nic": {"start": _unit(parse_duration), "duration": _unit(parse_duration)}}


def _hosts(value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of host name -> settings, got {value!r}")
    return {str(name): _check(HOST, settings or {}, str(name)) for name, settings in value.items()}


BODY = {
    "topology": TOPOLOGY, "topology_file": _str, "rate": _unit(parse_rate), "scale": _float(1.0, 1e6),
    "delay": _unit(parse_duration),
    "duration": _unit(parse_duration), "switch": SWITCH, "transport": TRANSPORT,
    "traffic": [FLOW], "iterations": _int(1, 1000), "capture": _list_of(_str),
    "sample_interval": _unit(parse_duration), "hosts": _hosts,
    # a run past `duration` ends with the flows completed so far instead of an error (a deadlock)
    "allow_incomplete": _bool,
    "controller": CONTROLLER, "events": [EVENT],
}
TOP = {"name": _str, "description": _str, "variants": None, "expectations": _list_of(_str, 1), **BODY}

DEFAULTS: dict[str, Any] = {
    "topology": {"kind": "leafspine", "spines": 2, "leaves": 2, "hosts_per_leaf": 2},
    "rate": 100_000_000, "scale": None, "delay": 0.0, "duration": 60.0, "sample_interval": 0.1, "iterations": 1,
    "switch": {"pfc": True, "lossless_priorities": [3], "buffer": "auto", "xoff": "auto", "xon": "auto",
               "headroom": "auto", "alpha": 0.125, "lb": "ecmp", "flowlet_gap": 50e-6, "scheduler": "strict",
               "ecn": {"enabled": False, "kmin": "auto", "kmax": "auto", "pmax": "auto"},
               "pfcwd": {"enabled": False, "action": "drop", "detection_time": 0.2, "restoration_time": 0.2,
                         "poll_interval": 0.1, "ports": ["all"]}},
    "transport": {"dcqcn": False, "preset": "paper", "ooo": False, "mtu": 1500, "data_dscp": 26, "cnp_dscp": 48,
                  "host_pfc": True, "rx_buffer": 128_000},
    "traffic": [], "capture": [], "hosts": {}, "allow_incomplete": False,
    "events": [],
    "controller": {"policy": "static", "params": {}, "poll_interval": 200e-6, "repair": True},
}


def _check(spec: dict, data: Any, path: str) -> dict:
    if not isinstance(data, dict):
        raise ValueError(f"{path or 'file'}: expected a mapping, got {type(data).__name__}")
    out = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in spec:
            raise ValueError(f"{where}: unknown key (expected one of: {', '.join(spec)})")
        checker = spec[key]
        if checker is None:
            out[key] = value
        elif isinstance(checker, dict):
            out[key] = _check(checker, value, where)
        elif isinstance(checker, list):
            if not isinstance(value, list):
                raise ValueError(f"{where}: expected a list, got {value!r}")
            out[key] = [_check(checker[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
        else:
            try:
                out[key] = checker(value)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
    return out


def deep_merge(base: dict, override: dict) -> dict:
    """Override wins; nested mappings merge; lists are replaced whole."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _check_consistency(config: dict, where: str) -> None:
    ecn = config["switch"]["ecn"]
    if "auto" not in (ecn["kmin"], ecn["kmax"]) and ecn["kmin"] > ecn["kmax"]:
        raise ValueError(f"{where}switch.ecn: kmin ({ecn['kmin']}) must not exceed kmax ({ecn['kmax']})")
    sw = config["switch"]
    if sw["xon"] != "auto" and sw["xoff"] != "auto" and sw["xon"] >= sw["xoff"]:
        raise ValueError(f"{where}switch: xon ({sw['xon']}) must be below xoff ({sw['xoff']})")
    wd = sw["pfcwd"]
    if wd["poll_interval"] > min(wd["detection_time"], wd["restoration_time"]):
        raise ValueError(f"{where}switch.pfcwd: poll_interval must not exceed detection_time and restoration_time")
    if not config["traffic"]:
        raise ValueError(f"{where}traffic: a scenario needs at least one traffic entry")
    controller = config["controller"]
    if not isinstance(controller["params"], dict):
        raise ValueError(f"{where}controller.params: expected a mapping of policy parameters")
    from fabriclab.controller.policy import make_policy

    try:
        make_policy(controller["policy"], controller["params"])
    except UserError as exc:
        raise ValueError(f"{where}controller: {exc}") from None
    for i, ev in enumerate(config["events"]):
        missing = [key for key in ("at", "link", "state") if key not in ev]
        if missing:
            raise ValueError(f"{where}events[{i}]: missing key {missing[0]!r}")
        if len(ev["link"]) != 2:
            raise ValueError(f"{where}events[{i}].link: name the link's two nodes, e.g. [l1, s1]")
    for i, flow in enumerate(config["traffic"]):
        if "pattern" not in flow:
            raise ValueError(f"{where}traffic[{i}]: missing key 'pattern'")
        pattern = flow["pattern"]
        if pattern in ("flow", "iperf3") and not ("src" in flow and "dst" in flow):
            raise ValueError(f"{where}traffic[{i}]: pattern {pattern} needs 'src' and 'dst'")
        if pattern == "incast" and not ("hosts" in flow and "dst" in flow):
            raise ValueError(f"{where}traffic[{i}]: pattern incast needs 'hosts' (senders) and 'dst'")
        if pattern not in ("flow", "iperf3", "incast") and len(flow.get("hosts", [])) < 2:
            raise ValueError(f"{where}traffic[{i}]: pattern {pattern} needs 'hosts' with at least 2 participants")


@dataclass
class Scenario:
    name: str
    description: str
    path: Path
    variants: dict[str, dict]               # variant name -> full configuration
    expectations: list[Expectation] = field(default_factory=list)


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a YAML file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = BUILTIN_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise ScenarioError(f"no built-in scenario named {name_or_path!r} (see 'fabriclab scenarios')")
    if not path.exists():
        raise ScenarioError(f"{path}: no such file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ScenarioError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    try:
        return _build(raw, path)
    except (ValueError, ExpectationError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None


def _build(raw: Any, path: Path) -> Scenario:
    data = _check(TOP, raw, "")
    if "name" not in data:
        raise ValueError("name: missing")
    if "topology" in data and "topology_file" in data:
        raise ValueError("give either topology or topology_file, not both")
    if "topology_file" in data:
        topo_path = (path.parent / data["topology_file"]).resolve()
        if not topo_path.exists():
            raise ValueError(f"topology_file: {data['topology_file']} not found")
        data["topology_file"] = str(topo_path)
    body = {key: data[key] for key in BODY if key in data}
    base = deep_merge(DEFAULTS, body)
    if "kind" in body.get("topology", {}):   # another kind takes none of the default's parameters
        base["topology"] = dict(body["topology"])
    if "topology_file" in body:
        base.pop("topology", None)
    raw_variants = data.get("variants") or {"default": {}}
    if not isinstance(raw_variants, dict):
        raise ValueError("variants: expected a mapping of variant name -> overrides")
    variants = {}
    for vname, override in raw_variants.items():
        override = override or {}
        checked = _check(BODY, override, f"variants.{vname}")
        config = deep_merge(base, checked)
        _check_consistency(config, f"variants.{vname}: " if len(raw_variants) > 1 else "")
        variants[str(vname)] = config
    expectations = []
    for i, text in enumerate(data.get("expectations", [])):
        try:
            expectations.append(parse_expectation(text))
        except ExpectationError as exc:
            raise ValueError(f"expectations[{i}]: {exc}") from None
    for exp in expectations:
        unknown = exp.variants() - set(variants)
        if unknown:
            raise ValueError(f"expectations: {exp.text!r} names unknown variant(s) {', '.join(sorted(unknown))}")
    return Scenario(name=data["name"], description=data.get("description", ""), path=path,
                    variants=variants, expectations=expectations)


def builtin_scenarios() -> list[Path]:
    return sorted(BUILTIN_DIR.glob("*.yaml"))
