"""The packet replication engine: multicast groups and clone (mirror) sessions.

Modelled on simple_switch's PRE and P4Runtime's ``PacketReplicationEngineEntry``:
a multicast group is a list of replicas ``(egress_port, rid)`` (P4Runtime ``Replica``:
port and instance); a clone session sends a copy to one port (``mirroring_add``) and/or a
multicast group (``mirroring_add_mc``), with a class of service and an optional truncation
(P4Runtime ``CloneSessionEntry.packet_length_bytes``, 0 = whole packet).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from fabriclab.v1model.tables import StateError

MAX_PORT = 511   # v1model ports are bit<9>


@dataclass
class CloneSession:
    session_id: int
    egress_port: int | None = None
    mgid: int = 0                    # 0: no multicast group
    class_of_service: int = 0
    truncate_length: int = 0         # bytes kept of each clone; 0: no truncation
    replicas: list[tuple[int, int]] = field(default_factory=list)   # as written over P4Runtime


def _check_replicas(what: str, replicas) -> list[tuple[int, int]]:
    out = []
    for port, rid in replicas:
        if not 0 <= port <= MAX_PORT or rid < 0:
            raise StateError("INVALID_ARGUMENT", f"{what}: bad replica (port {port}, rid {rid})")
        if (port, rid) in out:
            raise StateError("INVALID_ARGUMENT", f"{what}: replica (port {port}, rid {rid}) listed twice")
        out.append((port, rid))
    return out


class PacketReplicationEngine:
    def __init__(self):
        self.multicast_groups: dict[int, list[tuple[int, int]]] = {}
        self.clone_sessions: dict[int, CloneSession] = {}

    # -- multicast groups
    def insert_multicast_group(self, group_id: int, replicas) -> None:
        if group_id <= 0:
            raise StateError("INVALID_ARGUMENT", f"multicast group id must be > 0, got {group_id}")
        if group_id in self.multicast_groups:
            raise StateError("ALREADY_EXISTS", f"multicast group {group_id} already exists")
        self.multicast_groups[group_id] = _check_replicas(f"multicast group {group_id}", replicas)

    def modify_multicast_group(self, group_id: int, replicas) -> None:
        if group_id not in self.multicast_groups:
            raise StateError("NOT_FOUND", f"no multicast group {group_id}")
        self.multicast_groups[group_id] = _check_replicas(f"multicast group {group_id}", replicas)

    def delete_multicast_group(self, group_id: int) -> None:
        if self.multicast_groups.pop(group_id, None) is None:
            raise StateError("NOT_FOUND", f"no multicast group {group_id}")

    def replicate(self, group_id: int) -> list[tuple[int, int]]:
        """The replicas of a group (none for an unknown group, as simple_switch drops)."""
        return self.multicast_groups.get(group_id, [])

    # -- clone sessions
    def insert_clone_session(self, session: CloneSession) -> None:
        if session.session_id in self.clone_sessions:
            raise StateError("ALREADY_EXISTS", f"clone session {session.session_id} already exists")
        self._check_session(session)
        self.clone_sessions[session.session_id] = session

    def modify_clone_session(self, session: CloneSession) -> None:
        if session.session_id not in self.clone_sessions:
            raise StateError("NOT_FOUND", f"no clone session {session.session_id}")
        self._check_session(session)
        self.clone_sessions[session.session_id] = session

    def delete_clone_session(self, session_id: int) -> None:
        if self.clone_sessions.pop(session_id, None) is None:
            raise StateError("NOT_FOUND", f"no clone session {session_id}")

    def clone_session(self, session_id: int) -> CloneSession | None:
        return self.clone_sessions.get(session_id)

    def reset(self) -> None:
        self.multicast_groups.clear()
        self.clone_sessions.clear()

    @staticmethod
    def _check_session(session: CloneSession) -> None:
        what = f"clone session {session.session_id}"
        if session.session_id < 0:
            raise StateError("INVALID_ARGUMENT", f"{what}: negative id")
        if session.egress_port is not None and not 0 <= session.egress_port <= MAX_PORT:
            raise StateError("INVALID_ARGUMENT", f"{what}: bad egress port {session.egress_port}")
        if session.truncate_length < 0 or session.mgid < 0:
            raise StateError("INVALID_ARGUMENT", f"{what}: negative truncation or group")
        session.replicas = _check_replicas(what, session.replicas)
        # A single P4Runtime replica is a plain mirror port; more need a multicast group,
        # which the caller creates and names in ``mgid``.
        if session.egress_port is None and len(session.replicas) == 1:
            session.egress_port = session.replicas[0][0]
