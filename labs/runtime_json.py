"""``sN-runtime.json``: a switch's static control-plane state, as the P4 tutorials write it.

    {"target": "bmv2", "p4info": "...", "bmv2_json": "...",          (ignored: we compile the .p4)
     "table_entries": [
        {"table": "MyIngress.ipv4_lpm", "match": {"hdr.ipv4.dstAddr": ["10.0.1.1", 32]},
         "action_name": "MyIngress.ipv4_forward", "action_params": {"dstAddr": "08:00:00:00:01:11", "port": 1}},
        {"table": "MyIngress.acl", "match": {"hdr.ipv4.protocol": [6, 255]}, "priority": 10, ...},
        {"table": "MyIngress.ipv4_lpm", "default_action": true, "action_name": "MyIngress.drop", "action_params": {}}],
     "multicast_group_entries": [{"multicast_group_id": 1, "replicas": [{"egress_port": 1, "instance": 1}]}],
     "clone_session_entries": [{"clone_session_id": 5, "replicas": [{"egress_port": 4, "instance": 1}],
                                "packet_length_bytes": 0}]}

Match values by key kind: exact ``value``; lpm ``[value, prefix_len]``; ternary ``[value, mask]``;
range ``[low, high]``; optional ``value``. Values are numbers or strings the tutorials use
(``"10.0.1.1"``, ``"08:00:00:00:01:11"``, ``"0x0a"``). Entries of tables with ternary, range or
optional keys need a non-zero ``priority`` (higher wins), as the tutorials' loader insists.

The file is loaded once (``load``) and then written to a running switch over P4Runtime
(``apply_p4runtime``), as the tutorials' own loader does, or straight into an in-process
pipeline's state (``apply_state``) for checkers that need no network.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabriclab.errors import UserError

PRIORITY_KINDS = ("ternary", "range", "optional")


@dataclass
class TableWrite:
    table: str
    match: dict[str, Any]
    action: str
    params: dict[str, Any]
    priority: int = 0
    default: bool = False


@dataclass
class RuntimeConfig:
    path: Path
    tables: list[TableWrite] = field(default_factory=list)
    multicast: dict[int, list[tuple[int, int]]] = field(default_factory=dict)   # group -> (port, instance)
    clones: dict[int, tuple[list[tuple[int, int]], int]] = field(default_factory=dict)  # session -> (replicas, length)


def load(path: str | Path) -> RuntimeConfig:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    config = RuntimeConfig(path)
    for i, entry in enumerate(data.get("table_entries") or []):
        where = f"{path}: table_entries[{i}]"
        try:
            config.tables.append(TableWrite(
                table=str(entry["table"]), match=dict(entry.get("match") or {}),
                action=str(entry["action_name"]), params=dict(entry.get("action_params") or {}),
                priority=int(entry.get("priority") or 0), default=bool(entry.get("default_action", False))))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{where}: {_reason(exc)}") from None
    for i, entry in enumerate(data.get("multicast_group_entries") or []):
        try:
            config.multicast[int(entry["multicast_group_id"])] = _replicas(entry["replicas"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{path}: multicast_group_entries[{i}]: {_reason(exc)}") from None
    for i, entry in enumerate(data.get("clone_session_entries") or []):
        try:
            config.clones[int(entry["clone_session_id"])] = (_replicas(entry["replicas"]),
                                                             int(entry.get("packet_length_bytes") or 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{path}: clone_session_entries[{i}]: {_reason(exc)}") from None
    return config


def _reason(exc: Exception) -> str:
    return f"missing key {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)


def _replicas(items: list) -> list[tuple[int, int]]:
    return [(int(r["egress_port"]), int(r.get("instance", 0))) for r in items]


PAIRS = {"lpm": "[value, prefix_len]", "ternary": "[value, mask]", "range": "[low, high]"}


def _match_value(kind: str, value: Any) -> Any:
    """A JSON match value as the P4Runtime client takes it (pairs as tuples)."""
    if kind in PAIRS:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ValueError(f"a {kind} value is a pair {PAIRS[kind]}, got {value!r}")
        return tuple(value)
    return value


def apply_p4runtime(client, config: RuntimeConfig) -> int:
    """Write every entry to a switch over P4Runtime (``client``: a connected P4RuntimeClient
    whose P4Info is loaded); returns the number of entities written."""
    from fabriclab.p4runtime.client import P4RuntimeError

    written = 0
    for i, write in enumerate(config.tables):
        where = f"{config.path.name}: table_entries[{i}] ({write.table})"
        try:
            if write.default:
                client.set_default_action(write.table, write.action, write.params)
            else:
                info = client.names.table(write.table)
                kinds = {mf.name: _kind_name(mf.match_type) for mf in info.match_fields}
                if not write.priority and any(kinds.get(k) in PRIORITY_KINDS for k in kinds):
                    raise UserError(f"{where}: entries of a table with ternary, range or optional keys need a "
                                    "non-zero 'priority'")
                match = {name: _match_value(kinds.get(name, "exact"), value)
                         for name, value in write.match.items()}
                client.insert_table_entry(write.table, match, write.action, write.params, write.priority)
        except (P4RuntimeError, ValueError, KeyError) as exc:
            raise UserError(f"{where}: {exc}") from None
        written += 1
    for group, replicas in config.multicast.items():
        try:
            client.insert_multicast_group(group, replicas)
        except P4RuntimeError as exc:
            raise UserError(f"{config.path.name}: multicast group {group}: {exc}") from None
        written += 1
    for session, (replicas, length) in config.clones.items():
        try:
            client.insert_clone_session(session, replicas, packet_length=length)
        except P4RuntimeError as exc:
            raise UserError(f"{config.path.name}: clone session {session}: {exc}") from None
        written += 1
    return written


def _kind_name(match_type: int) -> str:
    from finsy.proto import p4i

    return p4i.MatchField.MatchType.Name(match_type).lower()


def apply_state(state, config: RuntimeConfig) -> None:
    """Write every entry straight into a pipeline's ``RuntimeState`` (no switch, no gRPC)."""
    from fabriclab.p4runtime.client import parse_value
    from fabriclab.v1model.pre import CloneSession
    from fabriclab.v1model.stf import resolve_name, wildcard
    from fabriclab.v1model.tables import ActionCall, StateError, TableEntry

    for i, write in enumerate(config.tables):
        where = f"{config.path.name}: table_entries[{i}] ({write.table})"
        try:
            table = state.tables[resolve_name("table", write.table, state.tables)]
            action_name = resolve_name("action", write.action, [ref.name for ref in table.info.actions])
            action = state.info.actions[action_name]
            unknown = set(write.params) - {p.name for p in action.params}
            if unknown:
                raise UserError(f"action {action_name} has no parameter {', '.join(sorted(unknown))}")
            args = tuple(parse_value(write.params[p.name]) for p in action.params)
            call = ActionCall(action_name, args)
            if write.default:
                table.set_default(call)
                continue
            if table.needs_priority and not write.priority:
                raise UserError("entries of a table with ternary, range or optional keys need a non-zero 'priority'")
            match = [wildcard(k.match_kind, k.bitwidth) for k in table.match_keys]
            index = {k.name: n for n, k in enumerate(table.match_keys)}
            for name, value in write.match.items():
                if name not in index:
                    raise UserError(f"no match field {name!r} (fields: {', '.join(index)})")
                key = table.match_keys[index[name]]
                value = _match_value(key.match_kind, value)
                if key.match_kind in PAIRS:
                    first, second = parse_value(value[0]), value[1]
                    match[index[name]] = (first, int(second) if key.match_kind == "lpm" else parse_value(second))
                else:
                    match[index[name]] = parse_value(value)
            table.insert(TableEntry(tuple(match), write.priority if table.needs_priority else 0, action=call))
        except KeyError as exc:
            raise UserError(f"{where}: missing {exc}") from None
        except (StateError, ValueError, UserError) as exc:
            raise UserError(f"{where}: {exc}") from None
    for group, replicas in config.multicast.items():
        state.pre.insert_multicast_group(group, replicas)
    for session, (replicas, length) in config.clones.items():
        if len(replicas) != 1:
            raise UserError(f"{config.path.name}: clone session {session}: one replica is supported without a switch")
        state.pre.insert_clone_session(CloneSession(session, replicas=replicas, truncate_length=length))
