"""Match-action tables, their entries, action profiles and action selectors (runtime state).

Semantics follow P4Runtime v1 (section 9.1 "TableEntry"): an entry is identified by its
match and (for tables with ternary, range or optional keys) its priority, higher priority
wins; LPM picks the longest prefix. Errors carry the gRPC code name P4Runtime prescribes.

Match values per key kind (selector keys are not part of the match):
exact ``int`` | ternary ``(value, mask)`` | lpm ``(value, prefix_len)`` | range ``(lo, hi)``
| optional ``int`` or ``None`` (wildcard).

``Table.lookup(key)`` takes one int per non-selector key, in key order, and is on the
per-packet path: exact tables are one dict lookup, LPM tables one dict per prefix length
(longest first), tables with priorities an ordered scan of precomputed mask/range checks.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from fabriclab.v1model.hashing import DEFAULT_HASH_UNIT, HashUnit, pack_fields
from fabriclab.compiler.program import ActionInfo, ActionProfileInfo, TableInfo

PRIORITY_KINDS = frozenset({"ternary", "range", "optional"})


class StateError(Exception):
    """A control-plane request the runtime state refuses; ``code`` is the gRPC code name."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class ActionCall:
    name: str
    args: tuple[int, ...] = ()


@dataclass
class TableEntry:
    match: tuple
    priority: int = 0                      # higher wins (P4Runtime); 0 for exact/lpm-only tables
    action: ActionCall | None = None       # direct action ...
    member_id: int | None = None           # ... or an action-profile member ...
    group_id: int | None = None            # ... or an action-selector group
    packets: int = 0                       # direct counter
    bytes: int = 0
    meter: tuple | None = None             # direct meter config (cir, cburst, pir, pburst)
    # the direct meter's token buckets (externs.MeterCell), created on first execution
    meter_cell: object = field(default=None, repr=False, compare=False)


def _ones(width: int) -> int:
    return (1 << width) - 1


def _prefix_mask(prefix_len: int, width: int) -> int:
    return _ones(width) ^ _ones(width - prefix_len)


def check_action_args(action: ActionInfo, args: tuple[int, ...], where: str) -> None:
    """INVALID_ARGUMENT unless ``args`` fit ``action``'s parameters in number and width."""
    if len(args) != len(action.params):
        raise StateError("INVALID_ARGUMENT", f"{where}: action {action.name} takes {len(action.params)} "
                                             f"arguments, got {len(args)}")
    for param, value in zip(action.params, args):
        if not isinstance(value, int) or not 0 <= value <= _ones(param.bitwidth):
            raise StateError("INVALID_ARGUMENT", f"{where}: argument {param.name}={value!r} of {action.name} "
                                                 f"does not fit bit<{param.bitwidth}>")


class ActionProfile:
    """An ``action_profile`` (members) or ``action_selector`` (members and weighted groups)."""

    def __init__(self, info: ActionProfileInfo, actions: dict[str, ActionInfo] | None = None,
                 hash_unit: HashUnit = DEFAULT_HASH_UNIT):
        self.info = info
        self.actions = actions or {}
        self.hash_unit = hash_unit
        self.members: dict[int, ActionCall] = {}
        self.groups: dict[int, list[tuple[int, int]]] = {}       # group id -> [(member id, weight)]
        self._choices: dict[int, tuple[ActionCall, ...]] = {}    # group id -> members repeated by weight
        self.tables: list[Table] = []                            # tables implemented by this profile

    # -- members
    def insert_member(self, member_id: int, call: ActionCall) -> None:
        if member_id in self.members:
            raise StateError("ALREADY_EXISTS", f"{self.info.name}: member {member_id} already exists")
        if len(self.members) >= self.info.size:
            raise StateError("RESOURCE_EXHAUSTED", f"{self.info.name}: all {self.info.size} members in use")
        self._check_call(call)
        self.members[member_id] = call

    def modify_member(self, member_id: int, call: ActionCall) -> None:
        if member_id not in self.members:
            raise StateError("NOT_FOUND", f"{self.info.name}: no member {member_id}")
        self._check_call(call)
        self.members[member_id] = call
        self._rebuild_choices()

    def delete_member(self, member_id: int) -> None:
        if member_id not in self.members:
            raise StateError("NOT_FOUND", f"{self.info.name}: no member {member_id}")
        if any(member_id == m for group in self.groups.values() for m, _ in group) or \
                any(e.member_id == member_id for t in self.tables for e in t.entries()):
            raise StateError("FAILED_PRECONDITION", f"{self.info.name}: member {member_id} is in use")
        del self.members[member_id]

    # -- groups
    def insert_group(self, group_id: int, members: list[tuple[int, int]]) -> None:
        if group_id in self.groups:
            raise StateError("ALREADY_EXISTS", f"{self.info.name}: group {group_id} already exists")
        self._check_group(members)
        self.groups[group_id] = list(members)
        self._rebuild_choices()

    def modify_group(self, group_id: int, members: list[tuple[int, int]]) -> None:
        if group_id not in self.groups:
            raise StateError("NOT_FOUND", f"{self.info.name}: no group {group_id}")
        self._check_group(members)
        self.groups[group_id] = list(members)
        self._rebuild_choices()

    def delete_group(self, group_id: int) -> None:
        if group_id not in self.groups:
            raise StateError("NOT_FOUND", f"{self.info.name}: no group {group_id}")
        if any(e.group_id == group_id for t in self.tables for e in t.entries()):
            raise StateError("FAILED_PRECONDITION", f"{self.info.name}: group {group_id} is in use")
        del self.groups[group_id]
        del self._choices[group_id]

    def select(self, group_id: int, selector_input: bytes | tuple) -> ActionCall | None:
        """The member a packet with this selector input hashes to (None for an empty group).

        As BMv2's action selector: hash the selector fields with the selector's algorithm and
        index the group's members (ordered by member id; PI expands weights by repetition)
        with ``hash % size``.
        """
        choices = self._choices[group_id]
        if not choices:
            return None
        if len(choices) == 1:
            return choices[0]
        data = selector_input if isinstance(selector_input, (bytes, bytearray)) else pack_fields(selector_input)
        h = self.hash_unit.compute(self.info.selector_algorithm or "crc16", data)
        if self.info.selector_bitwidth:
            h &= _ones(self.info.selector_bitwidth)
        return choices[h % len(choices)]

    def reset(self) -> None:
        self.members.clear()
        self.groups.clear()
        self._choices.clear()

    def _check_call(self, call: ActionCall) -> None:
        allowed = {ref.name for t in self.tables for ref in t.info.actions if ref.scope != "DEFAULT_ONLY"}
        if allowed and call.name not in allowed:
            raise StateError("INVALID_ARGUMENT", f"{self.info.name}: action {call.name} is not an action "
                                                 f"of the tables this profile implements")
        if call.name in self.actions:
            check_action_args(self.actions[call.name], tuple(call.args), self.info.name)

    def _check_group(self, members: list[tuple[int, int]]) -> None:
        if not self.info.with_selector:
            raise StateError("INVALID_ARGUMENT", f"{self.info.name}: an action profile without selector "
                                                 f"has no groups")
        seen = set()
        for member_id, weight in members:
            if member_id not in self.members:
                raise StateError("NOT_FOUND", f"{self.info.name}: no member {member_id}")
            if member_id in seen:
                raise StateError("INVALID_ARGUMENT", f"{self.info.name}: member {member_id} listed twice")
            if weight < 1:
                raise StateError("INVALID_ARGUMENT", f"{self.info.name}: member {member_id} has weight {weight}")
            seen.add(member_id)
        total = sum(weight for _, weight in members)
        if self.info.max_group_size and total > self.info.max_group_size:
            raise StateError("RESOURCE_EXHAUSTED", f"{self.info.name}: group weight {total} exceeds "
                                                   f"max_group_size {self.info.max_group_size}")

    def _rebuild_choices(self) -> None:
        self._choices = {
            group_id: tuple(self.members[m] for m, weight in sorted(members) for _ in range(weight))
            for group_id, members in self.groups.items()
        }


class Table:
    """One match-action table: entries, default action and the lookup structures."""

    def __init__(self, info: TableInfo, actions: dict[str, ActionInfo] | None = None,
                 profile: ActionProfile | None = None):
        self.info = info
        self.actions = actions or {}
        self.profile = profile
        if profile is not None:
            profile.tables.append(self)
        self.match_keys = [k for k in info.keys if k.match_kind != "selector"]
        self.kinds = tuple(k.match_kind for k in self.match_keys)
        self.widths = tuple(k.bitwidth for k in self.match_keys)
        self.needs_priority = any(kind in PRIORITY_KINDS for kind in self.kinds)
        self.scopes = {ref.name: ref.scope for ref in info.actions}
        # Lookup structures are created once and only cleared in place: generated code binds
        # ``table.lookup`` once, so it must stay valid across reset().
        self._entries: dict[tuple, TableEntry] = {}     # (match, priority) -> entry, insertion order
        self._exact: dict[tuple, TableEntry] = {}
        self._lpm: dict[int, dict] = {}                 # prefix len -> {masked key: entry}
        self._lpm_levels: list[tuple[int, dict]] = []   # (mask, dict), longest prefix first
        self._ordered: list[tuple] = []                 # (entry, masked checks, range checks)
        self._order_keys: list[tuple[int, int]] = []    # (-priority, seq), parallel to _ordered
        # bumped by every change of entries or default action: the native engine's lookup
        # memo is valid while the version it was filled under is current
        self.version = 0
        lpm_positions = [i for i, kind in enumerate(self.kinds) if kind == "lpm"]
        if self.needs_priority or len(lpm_positions) > 1:
            self._layout = "ordered"
            self.lookup = self._lookup_ordered
        elif lpm_positions:
            self._layout = "lpm"
            self._lpm_pos = lpm_positions[0]
            self.lookup = self._lookup_lpm_single if len(self.kinds) == 1 else self._lookup_lpm
        else:
            self._layout = "exact"
            self.lookup = self._exact.get
        self.reset()

    # -- control plane
    def reset(self) -> None:
        """Forget all entries; restore the const entries and the program's default action."""
        for container in (self._entries, self._exact, self._lpm, self._lpm_levels, self._ordered,
                          self._order_keys):
            container.clear()
        self._seq = 0
        self.version += 1
        self.default = ActionCall(self.info.default_action, tuple(self.info.default_args))
        count = len(self.info.const_entries)
        for index, const in enumerate(self.info.const_entries):
            # p4c numbers const entries count, count-1, ..., 1 (first listed wins) when the
            # table needs priorities, and gives none otherwise
            priority = (const.priority if const.priority > 0 else count - index) if self.needs_priority else 0
            entry = TableEntry(match=self._normalize_match(const.match), priority=priority,
                               action=ActionCall(const.action, tuple(const.args)))
            self._add(entry)

    def insert(self, entry: TableEntry) -> None:
        self._check_writable()
        entry.match = self._normalize_match(entry.match)
        self._check_priority(entry.priority)
        self._check_action(entry)
        if (entry.match, entry.priority) in self._entries:
            raise StateError("ALREADY_EXISTS", f"{self.info.name}: entry already exists")
        if len(self._entries) >= self.info.size:
            raise StateError("RESOURCE_EXHAUSTED", f"{self.info.name}: table full ({self.info.size} entries)")
        self._add(entry)

    def modify(self, entry: TableEntry) -> None:
        """Change an existing entry's action (and meter config if given); counters are kept."""
        self._check_writable()
        match = self._normalize_match(entry.match)
        current = self._entries.get((match, entry.priority))
        if current is None:
            raise StateError("NOT_FOUND", f"{self.info.name}: no such entry")
        self._check_action(entry)
        current.action, current.member_id, current.group_id = entry.action, entry.member_id, entry.group_id
        self.version += 1
        if entry.meter is not None:
            current.meter = entry.meter

    def delete(self, match: tuple, priority: int = 0) -> None:
        self._check_writable()
        match = self._normalize_match(match)
        entry = self._entries.pop((match, priority), None)
        if entry is None:
            raise StateError("NOT_FOUND", f"{self.info.name}: no such entry")
        self._remove_from_index(entry)

    def get(self, match: tuple, priority: int = 0) -> TableEntry | None:
        return self._entries.get((self._normalize_match(match), priority))

    def entries(self) -> list[TableEntry]:
        return list(self._entries.values())

    def set_default(self, call: ActionCall) -> None:
        if self.info.const_default_action:
            raise StateError("PERMISSION_DENIED", f"{self.info.name}: the default action is const")
        scope = self.scopes.get(call.name)
        if scope is None or scope == "TABLE_ONLY":
            raise StateError("INVALID_ARGUMENT", f"{self.info.name}: {call.name} cannot be the default action")
        if call.name in self.actions:
            check_action_args(self.actions[call.name], tuple(call.args), self.info.name)
        self.default = ActionCall(call.name, tuple(call.args))
        self.version += 1

    def reset_default(self) -> None:
        if self.info.const_default_action:
            raise StateError("PERMISSION_DENIED", f"{self.info.name}: the default action is const")
        self.default = ActionCall(self.info.default_action, tuple(self.info.default_args))
        self.version += 1

    def resolve(self, entry: TableEntry | None, selector_input: bytes | tuple = b"") -> ActionCall:
        """The action to run for a lookup result: through the profile/selector, or the default."""
        if entry is None:
            return self.default
        if entry.action is not None:
            return entry.action
        if entry.member_id is not None:
            return self.profile.members[entry.member_id]
        return self.profile.select(entry.group_id, selector_input) or self.default

    # -- data plane (self.lookup is bound to one of these, or to the exact dict's get, in __init__)
    def _lookup_lpm_single(self, key: tuple[int, ...]) -> TableEntry | None:
        value = key[0]
        for mask, level in self._lpm_levels:
            entry = level.get(value & mask)
            if entry is not None:
                return entry
        return None

    def _lookup_lpm(self, key: tuple[int, ...]) -> TableEntry | None:
        pos = self._lpm_pos
        head, value, tail = key[:pos], key[pos], key[pos + 1:]
        for mask, level in self._lpm_levels:
            entry = level.get(head + (value & mask,) + tail)
            if entry is not None:
                return entry
        return None

    def _lookup_ordered(self, key: tuple[int, ...]) -> TableEntry | None:
        for entry, masked, ranges in self._ordered:
            for i, mask, value in masked:
                if key[i] & mask != value:
                    break
            else:
                for i, lo, hi in ranges:
                    if not lo <= key[i] <= hi:
                        break
                else:
                    return entry
        return None

    # -- internals
    def _check_writable(self) -> None:
        if self.info.is_const_table:
            raise StateError("PERMISSION_DENIED", f"{self.info.name}: const table (entries are part of the program)")

    def _check_priority(self, priority: int) -> None:
        if self.needs_priority and priority <= 0:
            raise StateError("INVALID_ARGUMENT", f"{self.info.name}: entries need a priority > 0")
        if not self.needs_priority and priority != 0:
            raise StateError("INVALID_ARGUMENT", f"{self.info.name}: exact/lpm entries take no priority")

    def _check_action(self, entry: TableEntry) -> None:
        where = self.info.name
        indirect = entry.member_id is not None or entry.group_id is not None
        if self.profile is not None:
            if entry.action is not None or not indirect or \
                    (entry.member_id is not None and entry.group_id is not None):
                raise StateError("INVALID_ARGUMENT", f"{where}: entries of this table name one action-profile "
                                                     f"member or group")
            if entry.member_id is not None and entry.member_id not in self.profile.members:
                raise StateError("NOT_FOUND", f"{where}: no member {entry.member_id} in {self.profile.info.name}")
            if entry.group_id is not None and entry.group_id not in self.profile.groups:
                raise StateError("NOT_FOUND", f"{where}: no group {entry.group_id} in {self.profile.info.name}")
            return
        if entry.action is None or indirect:
            raise StateError("INVALID_ARGUMENT", f"{where}: entries of this table need a direct action")
        scope = self.scopes.get(entry.action.name)
        if scope is None or scope == "DEFAULT_ONLY":
            raise StateError("INVALID_ARGUMENT", f"{where}: {entry.action.name} is not allowed in table entries")
        entry.action = ActionCall(entry.action.name, tuple(entry.action.args))
        if entry.action.name in self.actions:
            check_action_args(self.actions[entry.action.name], entry.action.args, where)

    def _normalize_match(self, match) -> tuple:
        if len(match) != len(self.kinds):
            raise StateError("INVALID_ARGUMENT", f"{self.info.name}: {len(self.kinds)} match fields, "
                                                 f"got {len(match)}")
        out = []
        for key, kind, value in zip(self.match_keys, self.kinds, match):
            out.append(_normalize_field(self.info.name, key.name, kind, key.bitwidth, value))
        return tuple(out)

    def _add(self, entry: TableEntry) -> None:
        self._entries[(entry.match, entry.priority)] = entry
        self.version += 1
        self._seq += 1
        if self._layout == "exact":
            self._exact[entry.match] = entry
        elif self._layout == "lpm":
            value, plen = entry.match[self._lpm_pos]
            level = self._lpm.get(plen)
            if level is None:
                level = self._lpm[plen] = {}
                self._rebuild_lpm_levels()
            level[self._lpm_key(entry.match)] = entry
        else:
            sort_key = (-entry.priority, self._seq)
            pos = bisect_left(self._order_keys, sort_key)
            self._order_keys.insert(pos, sort_key)
            self._ordered.insert(pos, (entry, *self._checks(entry.match)))

    def _remove_from_index(self, entry: TableEntry) -> None:
        self.version += 1
        if self._layout == "exact":
            del self._exact[entry.match]
        elif self._layout == "lpm":
            plen = entry.match[self._lpm_pos][1]
            level = self._lpm[plen]
            del level[self._lpm_key(entry.match)]
            if not level:
                del self._lpm[plen]
                self._rebuild_lpm_levels()
        else:
            pos = next(i for i, item in enumerate(self._ordered) if item[0] is entry)
            del self._ordered[pos]
            del self._order_keys[pos]

    def _lpm_key(self, match: tuple):
        if len(match) == 1:
            return match[0][0]
        pos = self._lpm_pos
        return match[:pos] + (match[pos][0],) + match[pos + 1:]

    def _rebuild_lpm_levels(self) -> None:
        width = self.widths[self._lpm_pos]
        self._lpm_levels[:] = [(_prefix_mask(plen, width), self._lpm[plen]) for plen in sorted(self._lpm, reverse=True)]

    def _checks(self, match: tuple) -> tuple[tuple, tuple]:
        masked, ranges = [], []
        for i, (kind, width, value) in enumerate(zip(self.kinds, self.widths, match)):
            if kind == "exact":
                masked.append((i, _ones(width), value))
            elif kind == "ternary":
                if value[1]:
                    masked.append((i, value[1], value[0]))
            elif kind == "lpm":
                if value[1]:
                    masked.append((i, _prefix_mask(value[1], width), value[0]))
            elif kind == "optional":
                if value is not None:
                    masked.append((i, _ones(width), value))
            elif kind == "range":
                if value != (0, _ones(width)):
                    ranges.append((i, value[0], value[1]))
        return tuple(masked), tuple(ranges)


def _normalize_field(table: str, name: str, kind: str, width: int, value):
    """Check one match value against its key and return its canonical (hashable) form."""
    limit = _ones(width)

    def fits(v) -> bool:
        return isinstance(v, int) and 0 <= v <= limit

    where = f"{table}: key {name} ({kind}, bit<{width}>)"
    if kind == "exact":
        if not fits(value):
            raise StateError("INVALID_ARGUMENT", f"{where}: value {value!r} does not fit")
        return value
    if kind == "optional":
        if value is not None and not fits(value):
            raise StateError("INVALID_ARGUMENT", f"{where}: value {value!r} does not fit")
        return value
    try:
        a, b = value
    except (TypeError, ValueError):
        raise StateError("INVALID_ARGUMENT", f"{where}: expected a pair, got {value!r}") from None
    if kind == "ternary":
        if not fits(a) or not fits(b):
            raise StateError("INVALID_ARGUMENT", f"{where}: value/mask {value!r} do not fit")
        if a & ~b:
            raise StateError("INVALID_ARGUMENT", f"{where}: value {a:#x} has bits outside mask {b:#x}")
        return (a, b)
    if kind == "lpm":
        if not fits(a) or not isinstance(b, int) or not 0 <= b <= width:
            raise StateError("INVALID_ARGUMENT", f"{where}: value/prefix {value!r} invalid")
        if a & ~_prefix_mask(b, width):
            raise StateError("INVALID_ARGUMENT", f"{where}: value {a:#x} has bits beyond prefix /{b}")
        return (a, b)
    if kind == "range":
        if not fits(a) or not fits(b) or a > b:
            raise StateError("INVALID_ARGUMENT", f"{where}: range {value!r} invalid")
        return (a, b)
    raise StateError("INVALID_ARGUMENT", f"{where}: unknown match kind")
