"""The compiled program's control-plane view: every entity a controller can name.

The compiler's back-end fills a ``ProgramInfo``; ``p4info`` turns it into P4Runtime P4Info
(and assigns the ``id`` fields as p4c does); the runtime state, the P4Runtime server, the STF
runner and the switch CLI all look entities up here. Names are fully qualified as in p4c's
P4Info (e.g. ``MyIngress.ipv4_lpm``, ``MyIngress.set_nhop``).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MatchField:
    name: str                 # as p4c names it: @name annotation, else the key expression text
    match_kind: str           # exact | ternary | lpm | range | optional | selector
    bitwidth: int
    id: int = 0               # 1-based position, as p4c numbers match fields


@dataclass
class ActionParam:
    name: str
    bitwidth: int
    id: int = 0               # 1-based position


@dataclass
class ActionInfo:
    name: str
    params: list[ActionParam] = field(default_factory=list)
    annotations: list[str] = field(default_factory=list)
    id: int = 0


@dataclass
class ActionRef:
    name: str
    scope: str = "TABLE_AND_DEFAULT"  # TABLE_AND_DEFAULT | TABLE_ONLY | DEFAULT_ONLY


@dataclass
class ConstEntry:
    match: tuple              # one value per key, in the runtime form of tables.py
    priority: int
    action: str
    args: tuple[int, ...]


@dataclass
class TableInfo:
    name: str
    keys: list[MatchField]
    actions: list[ActionRef]
    size: int = 1024
    default_action: str = "NoAction"
    default_args: tuple[int, ...] = ()
    const_default_action: bool = False
    const_entries: list[ConstEntry] = field(default_factory=list)
    is_const_table: bool = False       # `const entries`: the control plane may not write it
    implementation: str | None = None  # action_profile / action_selector instance name
    direct_counter: str | None = None
    direct_meter: str | None = None
    idle_timeout: bool = False
    annotations: list[str] = field(default_factory=list)
    id: int = 0


@dataclass
class ActionProfileInfo:
    name: str
    size: int
    with_selector: bool = False
    selector_algorithm: str | None = None   # v1model HashAlgorithm name
    selector_bitwidth: int = 0
    max_group_size: int = 0
    tables: list[str] = field(default_factory=list)
    id: int = 0


@dataclass
class CounterInfo:
    name: str
    unit: str                 # packets | bytes | packets_and_bytes
    size: int = 0
    direct_table: str | None = None
    id: int = 0


@dataclass
class MeterInfo:
    name: str
    unit: str                 # packets | bytes
    size: int = 0
    direct_table: str | None = None
    id: int = 0


@dataclass
class RegisterInfo:
    name: str
    bitwidth: int
    size: int
    signed: bool = False
    id: int = 0


@dataclass
class DigestInfo:
    name: str                 # the struct type name, as p4c names digests
    fields: list[tuple[str, int]]
    id: int = 0


@dataclass
class ControllerHeaderInfo:
    name: str                 # @controller_header("packet_in") -> "packet_in"
    fields: list[tuple[str, int]]
    id: int = 0
    type_name: str = ""       # the header type's name: p4c hashes it for the P4Info id


@dataclass
class ValueSetInfo:
    name: str
    size: int
    fields: list[MatchField]
    id: int = 0


@dataclass
class ProgramInfo:
    name: str                 # program file stem, e.g. "fabric"
    arch: str = "v1model"
    tables: dict[str, TableInfo] = field(default_factory=dict)
    actions: dict[str, ActionInfo] = field(default_factory=dict)
    action_profiles: dict[str, ActionProfileInfo] = field(default_factory=dict)
    counters: dict[str, CounterInfo] = field(default_factory=dict)   # indirect and direct
    meters: dict[str, MeterInfo] = field(default_factory=dict)       # indirect and direct
    registers: dict[str, RegisterInfo] = field(default_factory=dict)
    digests: dict[str, DigestInfo] = field(default_factory=dict)
    controller_headers: dict[str, ControllerHeaderInfo] = field(default_factory=dict)
    value_sets: dict[str, ValueSetInfo] = field(default_factory=dict)
    # explicit @id annotations, by fully qualified name; p4info honours them
    explicit_ids: dict[str, int] = field(default_factory=dict)
