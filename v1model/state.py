"""``RuntimeState``: every table, profile, extern and replication entry of one program."""
from __future__ import annotations

import collections

from fabriclab.v1model.externs import Counter, Meter, Register
from fabriclab.v1model.hashing import HashUnit
from fabriclab.v1model.pre import PacketReplicationEngine
from fabriclab.compiler.program import ProgramInfo
from fabriclab.v1model.tables import ActionProfile, Table

DIGEST_QUEUE_LIMIT = 65536   # digests pile up if no controller drains them; keep the newest


class RuntimeState:
    """Built from ``ProgramInfo``; all keys are fully qualified names as in P4Info."""

    def __init__(self, info: ProgramInfo, hash_seed: int | None = None):
        self.info = info
        self.hash_unit = HashUnit(hash_seed)
        self.action_profiles: dict[str, ActionProfile] = {
            name: ActionProfile(p, info.actions, self.hash_unit) for name, p in info.action_profiles.items()
        }
        self.tables: dict[str, Table] = {
            name: Table(t, info.actions, self.action_profiles.get(t.implementation) if t.implementation else None)
            for name, t in info.tables.items()
        }
        self.registers: dict[str, Register] = {name: Register(r) for name, r in info.registers.items()}
        self.counters: dict[str, Counter] = {
            name: Counter(c) for name, c in info.counters.items() if c.direct_table is None
        }
        self.meters: dict[str, Meter] = {
            name: Meter(m) for name, m in info.meters.items() if m.direct_table is None
        }
        self.pre = PacketReplicationEngine()
        self.digests: collections.deque = collections.deque(maxlen=DIGEST_QUEUE_LIMIT)

    def reset(self) -> None:
        """Forget every entry and value written since start; const entries and defaults stay."""
        for table in self.tables.values():
            table.reset()
        for profile in self.action_profiles.values():
            profile.reset()
        for extern in (*self.registers.values(), *self.counters.values(), *self.meters.values()):
            extern.reset()
        self.pre.reset()
        self.hash_unit.reset()
        self.digests.clear()
