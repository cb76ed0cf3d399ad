"""``ProgramInfo`` -> P4Runtime P4Info, with the IDs p4c would assign.

ID assignment follows p4c's ``control-plane/p4RuntimeSymbolTable.cpp``:

* an ID is ``(resource type prefix << 24) | (hash & 0xffffff)`` where the hash is Bob
  Jenkins' one-at-a-time hash of the fully qualified name (controller headers: the header
  *type* name) and the prefixes are P4Info's ``P4Ids.Prefix`` values;
* ``@id(N)`` is honoured first: N gets the type prefix OR'd in (an N that already carries a
  different prefix is an error), and two declarations with one @id are an error;
* the remaining names of each resource type are hashed in sorted order and collisions are
  resolved by linear probing of the *hash* (hash + 1, ...), so the prefix never changes;
* match fields, action parameters and packet-IO metadata are numbered 1, 2, ... by position
  (selector keys consume a number though they are not in P4Info, as in p4c).

Aliases are the shortest unique dotted suffix among all P4Runtime names, as p4c computes them.
Entities are written in ``ProgramInfo`` order, which the driver makes p4c's (every action the
program uses, table actions and actions called from apply blocks; see ``order_as_p4c``).
"""
from __future__ import annotations

from google.protobuf import text_format

from fabriclab.errors import UserError
from fabriclab.compiler.program import ProgramInfo

ACTION, TABLE, VALUE_SET, CONTROLLER_HEADER = 0x01, 0x02, 0x03, 0x04
ACTION_PROFILE, COUNTER, DIRECT_COUNTER, METER, DIRECT_METER, REGISTER, DIGEST = (
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17)

_MATCH_TYPES = {"exact": "EXACT", "lpm": "LPM", "ternary": "TERNARY", "range": "RANGE", "optional": "OPTIONAL"}
_COUNTER_UNITS = {"bytes": "BYTES", "packets": "PACKETS", "packets_and_bytes": "BOTH"}
_METER_UNITS = {"bytes": "BYTES", "packets": "PACKETS"}
_SCOPE_ANNOTATIONS = {"DEFAULT_ONLY": "@defaultonly", "TABLE_ONLY": "@tableonly"}


def jenkins_one_at_a_time(name: str) -> int:
    """Bob Jenkins' one-at-a-time hash over the name's bytes, 32-bit, as p4c computes it."""
    h = 0
    for byte in name.encode():
        h = (h + byte) & 0xFFFFFFFF
        h = (h + (h << 10)) & 0xFFFFFFFF
        h ^= h >> 6
    h = (h + (h << 3)) & 0xFFFFFFFF
    h ^= h >> 11
    return (h + (h << 15)) & 0xFFFFFFFF


def compute_ids(symbols: dict[int, list[str]], explicit: dict[str, int]) -> dict[tuple[int, str], int]:
    """IDs for ``{prefix: [names]}``; ``explicit`` maps a name to its @id annotation value."""
    assigned: set[int] = set()
    ids: dict[tuple[int, str], int] = {}
    for prefix, names in symbols.items():
        for name in names:
            if name not in explicit or (prefix, name) in ids:
                continue
            value = explicit[name]
            top = value & 0xFF000000
            if top and top != prefix << 24:
                raise UserError(f"{name}: @id({value:#x}) has the wrong 8-bit prefix (expected {prefix:#04x})")
            value |= prefix << 24
            if value in assigned:
                raise UserError(f"@id {value} is assigned to multiple declarations (one is {name})")
            assigned.add(value)
            ids[(prefix, name)] = value
    for prefix, names in sorted(symbols.items()):
        # sorted as p4c's std::map<cstring, ...> sorts: by bytes
        for name in sorted(set(names), key=lambda n: n.encode()):
            if (prefix, name) in ids:
                continue
            source = jenkins_one_at_a_time(name)
            value = source
            while (prefix << 24) | (value & 0xFFFFFF) in assigned:
                value = (value + 1) & 0xFFFFFFFF
                if value == source:
                    raise UserError(f"no P4Runtime id left for {name}")
            ids[(prefix, name)] = (prefix << 24) | (value & 0xFFFFFF)
            assigned.add(ids[(prefix, name)])
    return ids


def _controller_header_symbol(header) -> str:
    # p4c hashes the header type's name (e.g. "packet_in_header_t"), not the annotation's
    # "packet_in"; ProgramInfo only has the latter until ControllerHeaderInfo gains type_name.
    return getattr(header, "type_name", "") or header.name


def _symbols(info: ProgramInfo) -> dict[int, list[str]]:
    counters = [c.name for c in info.counters.values() if c.direct_table is None]
    direct_counters = [c.name for c in info.counters.values() if c.direct_table is not None]
    meters = [m.name for m in info.meters.values() if m.direct_table is None]
    direct_meters = [m.name for m in info.meters.values() if m.direct_table is not None]
    return {
        ACTION: list(info.actions),
        TABLE: list(info.tables),
        VALUE_SET: list(info.value_sets),
        CONTROLLER_HEADER: [_controller_header_symbol(h) for h in info.controller_headers.values()],
        ACTION_PROFILE: list(info.action_profiles),
        COUNTER: counters,
        DIRECT_COUNTER: direct_counters,
        METER: meters,
        DIRECT_METER: direct_meters,
        REGISTER: list(info.registers),
        DIGEST: list(info.digests),
    }


def assign_ids(info: ProgramInfo) -> None:
    """Fill every ``id`` field of ``info`` in place, as p4c would number the program."""
    ids = compute_ids(_symbols(info), info.explicit_ids)
    for action in info.actions.values():
        action.id = ids[(ACTION, action.name)]
        for position, param in enumerate(action.params, 1):
            param.id = param.id or position
    for table in info.tables.values():
        table.id = ids[(TABLE, table.name)]
        for position, key in enumerate(table.keys, 1):
            key.id = key.id or position
    for value_set in info.value_sets.values():
        value_set.id = ids[(VALUE_SET, value_set.name)]
        for position, key in enumerate(value_set.fields, 1):
            key.id = key.id or position
    for header in info.controller_headers.values():
        header.id = ids[(CONTROLLER_HEADER, _controller_header_symbol(header))]
    for profile in info.action_profiles.values():
        profile.id = ids[(ACTION_PROFILE, profile.name)]
    for counter in info.counters.values():
        counter.id = ids[(COUNTER if counter.direct_table is None else DIRECT_COUNTER, counter.name)]
    for meter in info.meters.values():
        meter.id = ids[(METER if meter.direct_table is None else DIRECT_METER, meter.name)]
    for register in info.registers.values():
        register.id = ids[(REGISTER, register.name)]
    for digest in info.digests.values():
        digest.id = ids[(DIGEST, digest.name)]


def shortest_unique_suffixes(names) -> dict[str, str]:
    """Each name's shortest suffix of dot-separated components that no other name ends with."""
    counts: dict[tuple[str, ...], int] = {}
    unique = set(names)
    for name in unique:
        parts = tuple(name.split("."))
        for i in range(len(parts)):
            counts[parts[i:]] = counts.get(parts[i:], 0) + 1
    aliases = {}
    for name in unique:
        parts = name.split(".")
        for n in range(1, len(parts) + 1):
            if counts[tuple(parts[-n:])] < 2:
                break
        aliases[name] = ".".join(parts[-n:])
    return aliases


def _param_bytes(value: int, width: int) -> bytes:
    # p4c writes default-action arguments padded to the parameter's width
    return value.to_bytes(max(1, (width + 7) // 8), "big")


def _preamble(preamble, id_: int, name: str, alias: str, annotations=()) -> None:
    preamble.id = id_
    preamble.name = name
    preamble.alias = alias
    preamble.annotations.extend(annotations)


def build_p4info(info: ProgramInfo):
    """The P4Info message (``finsy.proto.p4i.P4Info``) of ``info``; assigns ids first."""
    from finsy.proto import p4i   # heavy import, only when P4Info is actually built

    assign_ids(info)
    aliases = shortest_unique_suffixes(name for names in _symbols(info).values() for name in names)
    msg = p4i.P4Info()
    msg.pkg_info.arch = info.arch

    direct_resources: dict[str, list[int]] = {}
    for extern in (*info.counters.values(), *info.meters.values()):
        if extern.direct_table is not None:
            direct_resources.setdefault(extern.direct_table, []).append(extern.id)

    for t in info.tables.values():
        table = msg.tables.add()
        _preamble(table.preamble, t.id, t.name, aliases[t.name], t.annotations)
        for key in t.keys:
            if key.match_kind == "selector":
                continue
            field = table.match_fields.add(id=key.id, name=key.name, bitwidth=key.bitwidth)
            field.match_type = p4i.MatchField.MatchType.Value(_MATCH_TYPES[key.match_kind])
        for ref in t.actions:
            action_ref = table.action_refs.add(id=info.actions[ref.name].id)
            action_ref.scope = p4i.ActionRef.Scope.Value(ref.scope)
            if ref.scope in _SCOPE_ANNOTATIONS:
                action_ref.annotations.append(_SCOPE_ANNOTATIONS[ref.scope])
        default = info.actions.get(t.default_action)
        if default is not None:
            if t.const_default_action:
                table.const_default_action_id = default.id
            table.initial_default_action.action_id = default.id
            for param, value in zip(default.params, t.default_args):
                table.initial_default_action.arguments.add(param_id=param.id,
                                                           value=_param_bytes(value, param.bitwidth))
        if t.implementation:
            table.implementation_id = info.action_profiles[t.implementation].id
        table.direct_resource_ids.extend(direct_resources.get(t.name, []))
        table.size = t.size
        if t.idle_timeout:
            table.idle_timeout_behavior = p4i.Table.IdleTimeoutBehavior.NOTIFY_CONTROL
        table.is_const_table = t.is_const_table
        table.has_initial_entries = bool(t.const_entries)

    for a in info.actions.values():
        action = msg.actions.add()
        _preamble(action.preamble, a.id, a.name, aliases[a.name], a.annotations)
        for param in a.params:
            action.params.add(id=param.id, name=param.name, bitwidth=param.bitwidth)

    for p in info.action_profiles.values():
        profile = msg.action_profiles.add()
        _preamble(profile.preamble, p.id, p.name, aliases[p.name])
        tables = p.tables or [t.name for t in info.tables.values() if t.implementation == p.name]
        profile.table_ids.extend(info.tables[name].id for name in tables)
        profile.with_selector = p.with_selector
        profile.size = p.size
        profile.max_group_size = p.max_group_size

    for c in info.counters.values():
        counter = msg.counters.add() if c.direct_table is None else msg.direct_counters.add()
        _preamble(counter.preamble, c.id, c.name, aliases[c.name])
        counter.spec.unit = p4i.CounterSpec.Unit.Value(_COUNTER_UNITS[c.unit])
        if c.direct_table is None:
            counter.size = c.size
        else:
            counter.direct_table_id = info.tables[c.direct_table].id

    for m in info.meters.values():
        meter = msg.meters.add() if m.direct_table is None else msg.direct_meters.add()
        _preamble(meter.preamble, m.id, m.name, aliases[m.name])
        meter.spec.unit = p4i.MeterSpec.Unit.Value(_METER_UNITS[m.unit])
        if m.direct_table is None:
            meter.size = m.size
        else:
            meter.direct_table_id = info.tables[m.direct_table].id

    for h in info.controller_headers.values():
        header = msg.controller_packet_metadata.add()
        # P4Info names packet-IO headers by the annotation, not by the type
        _preamble(header.preamble, h.id, h.name, h.name, [f'@controller_header("{h.name}")'])
        for position, (name, bitwidth) in enumerate(h.fields, 1):
            header.metadata.add(id=position, name=name, bitwidth=bitwidth)

    for v in info.value_sets.values():
        value_set = msg.value_sets.add()
        _preamble(value_set.preamble, v.id, v.name, aliases[v.name])
        for key in v.fields:
            field = value_set.match.add(id=key.id, name=key.name, bitwidth=key.bitwidth)
            field.match_type = p4i.MatchField.MatchType.Value(_MATCH_TYPES.get(key.match_kind, "EXACT"))
        value_set.size = v.size

    for r in info.registers.values():
        register = msg.registers.add()
        _preamble(register.preamble, r.id, r.name, aliases[r.name])
        bits = register.type_spec.bitstring.int if r.signed else register.type_spec.bitstring.bit
        bits.bitwidth = r.bitwidth
        register.size = r.size

    for d in info.digests.values():
        digest = msg.digests.add()
        _preamble(digest.preamble, d.id, d.name, aliases[d.name])
        digest.type_spec.struct.name = d.name
        struct = msg.type_info.structs[d.name]
        for name, bitwidth in d.fields:
            struct.members.add(name=name).type_spec.bitstring.bit.bitwidth = bitwidth

    msg.type_info.SetInParent()   # p4c always emits type_info, even empty
    return msg


def to_text(info: ProgramInfo) -> str:
    """P4Info in protobuf text format, with p4c's header (the content of ``<name>.p4info.txtpb``)."""
    header = "# proto-file: p4/config/v1/p4info.proto\n# proto-message: p4.config.v1.P4Info\n\n"
    return header + text_format.MessageToString(build_p4info(info))
