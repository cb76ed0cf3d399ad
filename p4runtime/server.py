"""P4Runtime v1 gRPC server of the fabriclab software switch, over ``RuntimeState``.

Protobuf stubs come from ``finsy.proto``: they import natively with the current protobuf
(upb). The ``p4runtime`` wheel's generated stubs only work in protobuf's slow pure-Python
mode (PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python), so we do not use them.

Behaviour follows the P4Runtime Specification v1.3 (https://p4.org/p4-spec/p4runtime/),
sections on client arbitration, forwarding-pipeline configuration, bytestrings, P4 entity
messages, error reporting of Write batches, and StreamChannel packet I/O and digests;
PI's simple_switch_grpc was the reference for details the spec leaves open (error wording
finsy matches, clone sessions with several replicas).

Not supported: roles other than the default one, ROLLBACK_ON_ERROR/DATAPLANE_ATOMIC
atomicity, one-shot action-selector programming, value sets, extern entries, idle timeouts
(all UNIMPLEMENTED). Digest lists are checked every few milliseconds.

``p4_device_config`` (our "device blob") is P4 source, compiled by the switch:
 - raw P4_16 text of a self-contained program (only <core.p4>/<v1model.p4> includes), or
 - JSON ``{"format": "fabriclab-p4-source-v1", "main": "x.p4", "files": {name: text},
   "defines": {NAME: value}}`` carrying the main file and every local ``#include``;
   :func:`pack_device_config` builds it from a path.

Threading: gRPC serves RPCs on its own thread pool; every read or mutation of the runtime
state happens under ``handle.lock``, the lock the switch's data-plane loop also holds.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import queue
import tempfile
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import grpc
from finsy.proto import p4i, p4r, p4r_grpc, rpc_code, rpc_status

from fabriclab.compiler.program import ProgramInfo, TableInfo
from fabriclab.p4runtime.codec import DEVICE_CONFIG_FORMAT, encode_int
from fabriclab.v1model.tables import ActionCall, StateError, TableEntry

log = logging.getLogger(__name__)

P4RUNTIME_API_VERSION = "1.3.0"
CLONE_GROUP_BASE = 1 << 32   # hidden multicast groups of multi-replica clone sessions
NO_PIPELINE = "No forwarding pipeline config set for this device"  # finsy matches this text


class P4RuntimeRpcError(Exception):
    """A request (or one update of a Write) that fails with a gRPC canonical code."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _fail(code: grpc.StatusCode, message: str) -> P4RuntimeRpcError:
    return P4RuntimeRpcError(code, message)


INVALID = grpc.StatusCode.INVALID_ARGUMENT


# --- canonical bytestrings -----------------------------------------------------------

def decode_int(data: bytes, bitwidth: int, what: str) -> int:
    """Accepts canonical and zero-padded bytestrings; rejects empty or too-wide values."""
    if not data:
        raise _fail(INVALID, f"{what}: empty bytestring")
    value = int.from_bytes(data, "big")
    if value >> bitwidth:
        raise _fail(grpc.StatusCode.OUT_OF_RANGE, f"{what}: value 0x{value:x} does not fit in {bitwidth} bits")
    return value


# --- device config ---------------------------------------------------------------------

_COMPILED_KEEP = 4
_compiled: dict[bytes, Any] = {}    # sha256 of a device config -> its CompiledProgram, newest last
_compile_lock = threading.Lock()


def compile_device_config(blob: bytes) -> Any:
    """Compile a ``p4_device_config`` into a ``CompiledProgram`` (INVALID_ARGUMENT if bad).

    Once per process for the same bytes: the switches of a worker process share the program
    (each instantiates its own pipeline and state from it), and a controller pushes the same
    config to all of them at once."""
    key = hashlib.sha256(blob).digest()
    with _compile_lock:
        compiled = _compiled.pop(key, None) or _compile_device_config(blob)
        _compiled[key] = compiled
        while len(_compiled) > _COMPILED_KEEP:
            del _compiled[next(iter(_compiled))]
        return compiled


def _compile_device_config(blob: bytes) -> Any:
    from fabriclab.compiler import driver
    from fabriclab.compiler.diagnostics import CompileError

    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(INVALID, "p4_device_config is neither P4 source nor a fabriclab JSON config") from None
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
            if doc.get("format") != DEVICE_CONFIG_FORMAT:
                raise ValueError(f"format is not {DEVICE_CONFIG_FORMAT!r}")
            main, files, defines = doc["main"], doc["files"], doc.get("defines", {})
        except (ValueError, KeyError, AttributeError) as exc:
            raise _fail(INVALID, f"bad p4_device_config JSON: {exc}") from None
    else:
        main, files, defines = "program.p4", {"program.p4": text}, {}
    with tempfile.TemporaryDirectory(prefix="fabriclab-p4rt-") as tmp:
        for rel, content in files.items():
            path = os.path.normpath(os.path.join(tmp, rel))
            if not path.startswith(tmp + os.sep):
                raise _fail(INVALID, f"p4_device_config file name escapes its folder: {rel}")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(content)
        try:
            return driver.compile_file(os.path.join(tmp, main), [tmp], defines)
        except CompileError as exc:
            raise _fail(INVALID, f"P4 program does not compile: {exc}") from None


# --- P4Info index: IDs -> program entities ---------------------------------------------

@dataclass
class TableMeta:
    id: int
    info: TableInfo
    # P4Info match field id -> (position in the runtime match tuple, match kind, bitwidth, name)
    fields: dict[int, tuple[int, str, int, str]]
    action_scopes: dict[int, str]          # action id -> TABLE_AND_DEFAULT | TABLE_ONLY | DEFAULT_ONLY
    needs_priority: bool

    @property
    def name(self) -> str:
        return self.info.name


@dataclass
class ActionMeta:
    id: int
    name: str
    params: dict[int, tuple[int, int, str]]   # param id -> (position, bitwidth, name)


@dataclass
class Layout:
    """A @controller_header: (metadata id, name, bitwidth) in wire order."""
    fields: list[tuple[int, str, int]]

    @property
    def length(self) -> int:
        return (sum(width for _, _, width in self.fields) + 7) // 8


@dataclass
class P4InfoIndex:
    p4info: Any
    program: ProgramInfo
    tables: dict[int, TableMeta] = field(default_factory=dict)
    actions: dict[int, ActionMeta] = field(default_factory=dict)
    action_ids: dict[str, int] = field(default_factory=dict)
    action_profiles: dict[int, str] = field(default_factory=dict)
    counters: dict[int, str] = field(default_factory=dict)
    direct_counters: dict[int, str] = field(default_factory=dict)   # id -> table name
    meters: dict[int, str] = field(default_factory=dict)
    direct_meters: dict[int, str] = field(default_factory=dict)     # id -> table name
    registers: dict[int, str] = field(default_factory=dict)
    digests: dict[int, str] = field(default_factory=dict)
    digest_ids: dict[str, int] = field(default_factory=dict)
    packet_in: Layout | None = None
    packet_out: Layout | None = None

    @classmethod
    def build(cls, p4info: Any, program: ProgramInfo) -> "P4InfoIndex":
        """Index ``p4info`` (the controller's, IDs as p4c assigns them) against the program.

        Names must match the compiled program; a mismatch is INVALID_ARGUMENT."""
        index = cls(p4info, program)

        def need(table: dict, name: str, kind: str):
            if name not in table:
                raise _fail(INVALID, f"P4Info does not match the P4 program: no {kind} {name!r}")
            return table[name]

        for action in p4info.actions:
            info = need(program.actions, action.preamble.name, "action")
            widths = {p.name: (pos, p.bitwidth) for pos, p in enumerate(info.params)}
            params = {}
            for p in action.params:
                pos, width = need(widths, p.name, f"parameter of {info.name}")
                if width != p.bitwidth:
                    raise _fail(INVALID, f"P4Info does not match the P4 program: {info.name}.{p.name} width")
                params[p.id] = (pos, width, p.name)
            index.actions[action.preamble.id] = ActionMeta(action.preamble.id, info.name, params)
            index.action_ids[info.name] = action.preamble.id
        for table in p4info.tables:
            info = need(program.tables, table.preamble.name, "table")
            keys = [k for k in info.keys if k.match_kind != "selector"]
            positions = {k.name: (pos, k) for pos, k in enumerate(keys)}
            fields = {}
            for mf in table.match_fields:
                pos, key = need(positions, mf.name, f"match field of {info.name}")
                if key.bitwidth != mf.bitwidth:
                    raise _fail(INVALID, f"P4Info does not match the P4 program: {info.name} {mf.name} width")
                fields[mf.id] = (pos, key.match_kind, key.bitwidth, mf.name)
            scopes = {ref.id: p4i.ActionRef.Scope.Name(ref.scope) for ref in table.action_refs}
            index.tables[table.preamble.id] = TableMeta(
                table.preamble.id, info, fields, scopes,
                any(k.match_kind in ("ternary", "range", "optional") for k in keys))
        for profile in p4info.action_profiles:
            need(program.action_profiles, profile.preamble.name, "action profile")
            index.action_profiles[profile.preamble.id] = profile.preamble.name
        for kind, entries, target in (("counter", p4info.counters, index.counters),
                                      ("meter", p4info.meters, index.meters),
                                      ("register", p4info.registers, index.registers)):
            table = {"counter": program.counters, "meter": program.meters, "register": program.registers}[kind]
            for entry in entries:
                need(table, entry.preamble.name, kind)
                target[entry.preamble.id] = entry.preamble.name
        for kind, entries, target in (("direct counter", p4info.direct_counters, index.direct_counters),
                                      ("direct meter", p4info.direct_meters, index.direct_meters)):
            table_names = {t.preamble.id: t.preamble.name for t in p4info.tables}
            for entry in entries:
                target[entry.preamble.id] = need(table_names, entry.direct_table_id, f"table of {kind}")
        for digest in p4info.digests:
            need(program.digests, digest.preamble.name, "digest")
            index.digests[digest.preamble.id] = digest.preamble.name
            index.digest_ids[digest.preamble.name] = digest.preamble.id
        for header in p4info.controller_packet_metadata:
            layout = Layout([(m.id, m.name, m.bitwidth) for m in header.metadata])
            if header.preamble.name == "packet_in":
                index.packet_in = layout
            elif header.preamble.name == "packet_out":
                index.packet_out = layout
        return index

    def table(self, table_id: int) -> TableMeta:
        if table_id not in self.tables:
            raise _fail(grpc.StatusCode.NOT_FOUND, f"unknown table id {table_id}")
        return self.tables[table_id]

    def lookup(self, ids: dict[int, str], entity_id: int, kind: str) -> str:
        if entity_id not in ids:
            raise _fail(grpc.StatusCode.NOT_FOUND, f"unknown {kind} id {entity_id}")
        return ids[entity_id]


# --- controller headers ----------------------------------------------------------------

def pack_header(layout: Layout, values: dict[int, int]) -> bytes:
    """Serialise a @controller_header, fields MSB first (missing metadata is 0)."""
    bits, total = 0, 0
    for mid, name, width in layout.fields:
        value = values.get(mid, 0)
        if value >> width:
            raise _fail(grpc.StatusCode.OUT_OF_RANGE, f"metadata {name}: value does not fit in {width} bits")
        bits, total = (bits << width) | value, total + width
    return bits.to_bytes((total + 7) // 8, "big") if total else b""


def unpack_header(layout: Layout, data: bytes) -> dict[int, int]:
    total = sum(width for _, _, width in layout.fields)
    bits = int.from_bytes(data[: (total + 7) // 8], "big") >> ((8 - total % 8) % 8)
    values, shift = {}, total
    for mid, _, width in layout.fields:
        shift -= width
        values[mid] = (bits >> shift) & ((1 << width) - 1)
    return values


# --- arbitration -----------------------------------------------------------------------

@dataclass(eq=False)
class ControllerStream:
    """One StreamChannel: its election id once arbitrated and its outgoing message queue."""
    election_id: int | None = None
    outbox: "queue.Queue[p4r.StreamMessageResponse | None]" = field(default_factory=queue.Queue)

    def send(self, message: p4r.StreamMessageResponse) -> None:
        self.outbox.put(message)


class Arbitration:
    """Default-role primary election: the stream with the highest election id is primary."""

    def __init__(self, device_id: int):
        self.device_id = device_id
        self._lock = threading.Lock()
        self._streams: list[ControllerStream] = []

    def primary(self) -> ControllerStream | None:
        with self._lock:
            return self._primary()

    def _primary(self) -> ControllerStream | None:
        live = [s for s in self._streams if s.election_id is not None]
        return max(live, key=lambda s: s.election_id) if live else None

    def is_primary_election_id(self, election_id: int) -> bool:
        primary = self.primary()
        return primary is not None and primary.election_id == election_id

    def update(self, stream: ControllerStream, election_id: int) -> None:
        with self._lock:
            if any(s is not stream and s.election_id == election_id for s in self._streams):
                raise _fail(INVALID, "Election id already exists")
            old = self._primary()
            stream.election_id = election_id
            if stream not in self._streams:
                self._streams.append(stream)
            self._announce(changed=self._primary() is not old, requester=stream)

    def remove(self, stream: ControllerStream) -> None:
        with self._lock:
            if stream not in self._streams:
                return
            old = self._primary()
            self._streams.remove(stream)
            if self._primary() is not old:
                self._announce(changed=True, requester=None)

    def _announce(self, changed: bool, requester: ControllerStream | None) -> None:
        """Tell the requester its role; on a change of primary tell every stream."""
        primary = self._primary()
        for stream in self._streams:
            if not changed and stream is not requester:
                continue
            is_primary = stream is primary
            status = rpc_status.Status(code=rpc_code.OK if is_primary else rpc_code.ALREADY_EXISTS,
                                       message="Is primary" if is_primary else "Is backup")
            update = p4r.MasterArbitrationUpdate(device_id=self.device_id, status=status)
            update.election_id.high, update.election_id.low = divmod(primary.election_id, 1 << 64)
            stream.send(p4r.StreamMessageResponse(arbitration=update))


def election_int(eid: Any) -> int:
    return (eid.high << 64) | eid.low


# --- digests ---------------------------------------------------------------------------

@dataclass
class DigestConfig:
    max_list_size: int      # 0: no limit
    max_timeout_ns: int     # 0: send at once
    ack_timeout_ns: int     # 0: repeats are not held back


# --- the servicer ----------------------------------------------------------------------

class P4RuntimeServicer(p4r_grpc.P4RuntimeServicer):
    """The P4Runtime service over one switch ``handle`` (see P4RuntimeServer)."""

    def __init__(self, handle: Any, device_id: int):
        self.handle = handle
        self.device_id = device_id
        self.arbitration = Arbitration(device_id)
        self._index: P4InfoIndex | None = None
        self._indexed_pipeline: Any = None
        self._index_lock = threading.RLock()   # packet-ins build the index without handle.lock
        self._config = p4r.ForwardingPipelineConfig()
        self._saved: tuple[Any, Any, Any] | None = None   # VERIFY_AND_SAVE: (compiled, index, config)
        self._digest_configs: dict[int, DigestConfig] = {}
        self.group_max_size: dict[tuple[str, int], int] = {}   # (profile, group id) -> max_size
        self._digest_pending: dict[tuple, int] = {}         # (digest id, values) -> deadline ns
        self._digest_lists: dict[int, list[tuple]] = {}     # list id -> pending keys
        self._digest_batches: dict[int, tuple[int, list[tuple]]] = {}   # digest id -> (oldest ns, keys)
        self._next_list_id = 1

    # -- helpers --

    def _check_device(self, device_id: int) -> None:
        if device_id != self.device_id:
            raise _fail(grpc.StatusCode.NOT_FOUND, f"unknown device id {device_id} (this is {self.device_id})")

    def index(self) -> P4InfoIndex:
        """The index of the current pipeline; rebuilt when the switch changed the pipeline
        itself (e.g. started with ``--p4``): then the P4Info is ours and there is no cookie."""
        with self._index_lock:
            pipeline = self.handle.pipeline
            if pipeline is None:
                raise _fail(grpc.StatusCode.FAILED_PRECONDITION, NO_PIPELINE)
            if pipeline is not self._indexed_pipeline:
                from fabriclab.compiler.p4info import build_p4info

                p4info = build_p4info(pipeline.info)
                self._index = P4InfoIndex.build(p4info, pipeline.info)
                self._indexed_pipeline = pipeline
                self._config = p4r.ForwardingPipelineConfig(p4info=p4info)
                self._forget_program_extras()
            return self._index

    def _forget_program_extras(self) -> None:
        """What the server keeps beside the runtime state belongs to one program."""
        self._digest_configs.clear()
        self._digest_pending.clear()
        self._digest_lists.clear()
        self._digest_batches.clear()
        self.group_max_size.clear()

    @staticmethod
    def _abort(context: grpc.ServicerContext, exc: P4RuntimeRpcError):
        context.abort(exc.code, exc.message)

    # -- RPCs --

    def Capabilities(self, request, context):
        return p4r.CapabilitiesResponse(p4runtime_api_version=P4RUNTIME_API_VERSION)

    def SetForwardingPipelineConfig(self, request, context):
        try:
            self._check_device(request.device_id)
            if not self.arbitration.is_primary_election_id(election_int(request.election_id)):
                raise _fail(grpc.StatusCode.PERMISSION_DENIED, "Not primary")
            action = p4r.SetForwardingPipelineConfigRequest.Action.Name(request.action)
            if action == "COMMIT":
                if self._saved is None:
                    raise _fail(grpc.StatusCode.FAILED_PRECONDITION, "COMMIT without a saved config")
                self._commit(*self._saved)
                self._saved = None
            elif action in ("VERIFY", "VERIFY_AND_SAVE", "VERIFY_AND_COMMIT"):
                verified = self._verify(request.config)
                if action == "VERIFY_AND_SAVE":
                    self._saved = verified
                elif action == "VERIFY_AND_COMMIT":
                    self._commit(*verified)
            else:
                raise _fail(grpc.StatusCode.UNIMPLEMENTED, f"{action} is not supported")
        except P4RuntimeRpcError as exc:
            self._abort(context, exc)
        except Exception as exc:  # e.g. a compiler bug: report it, keep serving
            log.exception("SetForwardingPipelineConfig failed")
            context.abort(grpc.StatusCode.INTERNAL, f"internal error: {exc!r}")
        return p4r.SetForwardingPipelineConfigResponse()

    def _verify(self, config) -> tuple[Any, P4InfoIndex, Any]:
        if not config.p4_device_config:
            raise _fail(INVALID, "p4_device_config is empty (expected P4 source, see p4runtime_server.py)")
        compiled = compile_device_config(config.p4_device_config)
        p4info = config.p4info
        if not p4info.tables and not p4info.actions:
            from fabriclab.compiler.p4info import build_p4info

            p4info = build_p4info(compiled.info)
        index = P4InfoIndex.build(p4info, compiled.info)
        stored = p4r.ForwardingPipelineConfig()
        stored.CopyFrom(config)
        stored.p4info.CopyFrom(p4info)
        return compiled, index, stored

    def _commit(self, compiled, index: P4InfoIndex, config) -> None:
        with self.handle.lock, self._index_lock:
            self.handle.set_pipeline(compiled)
            self._index, self._indexed_pipeline, self._config = index, self.handle.pipeline, config
            self._forget_program_extras()

    def GetForwardingPipelineConfig(self, request, context):
        try:
            self._check_device(request.device_id)
            with self.handle.lock:
                self.index()
                config = self._config
        except P4RuntimeRpcError as exc:
            self._abort(context, exc)
        kind = p4r.GetForwardingPipelineConfigRequest.ResponseType.Name(request.response_type)
        out = p4r.ForwardingPipelineConfig()
        if config.HasField("cookie"):
            out.cookie.CopyFrom(config.cookie)
        if kind in ("ALL", "P4INFO_AND_COOKIE"):
            out.p4info.CopyFrom(config.p4info)
        if kind in ("ALL", "DEVICE_CONFIG_AND_COOKIE"):
            out.p4_device_config = config.p4_device_config
        return p4r.GetForwardingPipelineConfigResponse(config=out)

    def Write(self, request, context):
        try:
            self._check_device(request.device_id)
            if request.role:
                raise _fail(grpc.StatusCode.UNIMPLEMENTED, "only the default role is supported")
            if not self.arbitration.is_primary_election_id(election_int(request.election_id)):
                raise _fail(grpc.StatusCode.PERMISSION_DENIED, "Not primary")
            if request.atomicity != p4r.WriteRequest.CONTINUE_ON_ERROR:
                raise _fail(grpc.StatusCode.UNIMPLEMENTED, "only CONTINUE_ON_ERROR atomicity is supported")
            with self.handle.lock:
                writer = EntityWriter(self.index(), self.handle.pipeline.state, self)
                results = []
                for update in request.updates:
                    try:
                        writer.apply(update)
                        results.append(None)
                    except P4RuntimeRpcError as exc:
                        results.append(exc)
                    except Exception as exc:  # a bug must not take the server down
                        log.exception("Write update failed")
                        results.append(_fail(grpc.StatusCode.INTERNAL, f"internal error: {exc}"))
        except P4RuntimeRpcError as exc:
            self._abort(context, exc)
        if any(results):
            self._abort_with_update_errors(context, results)
        return p4r.WriteResponse()

    @staticmethod
    def _abort_with_update_errors(context, results: list[P4RuntimeRpcError | None]):
        """P4Runtime error reporting: status UNKNOWN whose google.rpc.Status details hold one p4.v1.Error per update."""
        status = rpc_status.Status(code=grpc.StatusCode.UNKNOWN.value[0], message="Write failure")
        for exc in results:
            error = p4r.Error(canonical_code=exc.code.value[0] if exc else rpc_code.OK,
                              message=exc.message if exc else "")
            status.details.add().Pack(error)
        context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
        context.abort(grpc.StatusCode.UNKNOWN, "Write failure")

    def Read(self, request, context):
        try:
            self._check_device(request.device_id)
            with self.handle.lock:
                reader = EntityReader(self.index(), self.handle.pipeline.state, self)
                entities = []
                for entity in request.entities:
                    entities.extend(reader.read(entity))
        except P4RuntimeRpcError as exc:
            self._abort(context, exc)
        except Exception as exc:
            log.exception("Read failed")
            context.abort(grpc.StatusCode.INTERNAL, f"internal error: {exc}")
        # Stream in chunks so a large table does not hit the 4 MiB message limit.
        for start in range(0, max(len(entities), 1), 1000):
            yield p4r.ReadResponse(entities=entities[start:start + 1000])

    def StreamChannel(self, request_iterator, context):
        stream = ControllerStream()
        context.add_callback(lambda: stream.outbox.put(None))
        reader = threading.Thread(target=self._read_stream, args=(request_iterator, stream, context),
                                  name="p4rt-stream", daemon=True)
        reader.start()
        try:
            while True:
                message = stream.outbox.get()
                if message is None:
                    break
                if isinstance(message, P4RuntimeRpcError):
                    context.abort(message.code, message.message)
                yield message
        finally:
            self.arbitration.remove(stream)

    def _read_stream(self, requests: Iterator, stream: ControllerStream, context) -> None:
        try:
            for request in requests:
                kind = request.WhichOneof("update")
                if kind == "arbitration":
                    self._arbitrate(request.arbitration, stream)
                elif stream.election_id is None:
                    stream.outbox.put(_fail(grpc.StatusCode.FAILED_PRECONDITION,
                                            "the first stream message must be an arbitration update"))
                    return
                elif kind == "packet":
                    self._packet_out(request.packet, stream)
                elif kind == "digest_ack":
                    self._digest_ack(request.digest_ack)
        except P4RuntimeRpcError as exc:
            stream.outbox.put(exc)
        except grpc.RpcError:
            pass  # the client went away
        except Exception:
            log.exception("StreamChannel reader failed")
        finally:
            stream.outbox.put(None)

    def _arbitrate(self, update, stream: ControllerStream) -> None:
        self._check_device(update.device_id)
        if update.role.name or update.role.id:
            raise _fail(grpc.StatusCode.UNIMPLEMENTED, "only the default role is supported")
        self.arbitration.update(stream, election_int(update.election_id))

    def _packet_out(self, packet, stream: ControllerStream) -> None:
        try:
            if stream is not self.arbitration.primary():
                raise _fail(grpc.StatusCode.PERMISSION_DENIED, "packet-out from a backup controller")
            layout = self.index().packet_out
            header = b""
            if layout is not None:
                known = {mid: (name, width) for mid, name, width in layout.fields}
                values = {}
                for meta in packet.metadata:
                    if meta.metadata_id not in known:
                        raise _fail(INVALID, f"unknown packet_out metadata id {meta.metadata_id}")
                    name, width = known[meta.metadata_id]
                    values[meta.metadata_id] = decode_int(meta.value, width, f"packet_out.{name}")
                header = pack_header(layout, values)
            self.handle.inject_packet_out(header + packet.payload)
        except P4RuntimeRpcError as exc:
            error = p4r.StreamError(canonical_code=exc.code.value[0], message=exc.message)
            error.packet_out.packet_out.CopyFrom(packet)
            stream.send(p4r.StreamMessageResponse(error=error))

    # -- to the primary controller --

    def packet_in(self, frame: bytes) -> None:
        """A frame the pipeline sent to the CPU port: a PacketIn to the primary controller."""
        primary = self.arbitration.primary()
        if primary is None:
            return
        try:
            layout = self.index().packet_in
        except P4RuntimeRpcError:
            layout = None
        message = p4r.PacketIn()
        if layout is not None and len(frame) >= layout.length:
            for mid, value in unpack_header(layout, frame).items():
                message.metadata.add(metadata_id=mid, value=encode_int(value))
            frame = frame[layout.length:]
        message.payload = frame
        primary.send(p4r.StreamMessageResponse(packet=message))

    def set_digest_config(self, digest_id: int, config: DigestConfig | None) -> None:
        if config is None:
            self._digest_configs.pop(digest_id, None)
        else:
            self._digest_configs[digest_id] = config

    def digest_config(self, digest_id: int) -> DigestConfig | None:
        return self._digest_configs.get(digest_id)

    def flush_digests(self) -> None:
        """Turn ``state.digests`` into DigestLists for the primary controller: a list goes out
        when it holds ``max_list_size`` digests or its oldest one waited ``max_timeout_ns``."""
        with self.handle.lock:
            pipeline = self.handle.pipeline
            if pipeline is None:
                return
            now = time.monotonic_ns()
            if pipeline.state.digests:
                self._collect_digests(pipeline.state.digests, now)
            lists = self._due_digest_lists(now) if self._digest_batches else []
        primary = self.arbitration.primary()
        for message in lists:
            if primary is not None:
                primary.send(p4r.StreamMessageResponse(digest=message))

    def _collect_digests(self, digests, now: int) -> None:
        index = self.index()
        self._digest_pending = {k: d for k, d in self._digest_pending.items() if d > now}
        while digests:
            name, values = digests.popleft()
            digest_id = index.digest_ids.get(name)
            config = self._digest_configs.get(digest_id)
            key = (digest_id, tuple(values))
            if config is None or key in self._digest_pending:
                continue  # not enabled by a DigestEntry, or sent and neither acked nor timed out
            if config.ack_timeout_ns:
                self._digest_pending[key] = now + config.ack_timeout_ns
            self._digest_batches.setdefault(digest_id, (now, []))[1].append(key)

    def _due_digest_lists(self, now: int) -> list:
        lists = []
        for digest_id, (oldest, keys) in list(self._digest_batches.items()):
            config = self._digest_configs.get(digest_id)
            size = config.max_list_size if config is not None else 0
            while size and len(keys) >= size:
                lists.append(self._digest_list(digest_id, keys[:size]))
                del keys[:size]
            if keys and (config is None or now - oldest >= config.max_timeout_ns):
                lists.append(self._digest_list(digest_id, keys))
                keys = []
            if keys:
                self._digest_batches[digest_id] = (oldest, keys)
            else:
                del self._digest_batches[digest_id]
        return lists

    def _digest_list(self, digest_id: int, keys: list[tuple]) -> Any:
        list_id, self._next_list_id = self._next_list_id, self._next_list_id + 1
        self._digest_lists[list_id] = list(keys)
        message = p4r.DigestList(digest_id=digest_id, list_id=list_id, timestamp=time.time_ns())
        for _, values in keys:
            member = message.data.add()
            for value in values:
                member.struct.members.add(bitstring=encode_int(value))
        return message

    def _digest_ack(self, ack) -> None:
        with self.handle.lock:
            for key in self._digest_lists.pop(ack.list_id, []):
                self._digest_pending.pop(key, None)


# --- entity translation ----------------------------------------------------------------

def _state_call(fn: Callable, *args):
    """Run a runtime-state operation, turning its StateError into the gRPC code it names."""
    try:
        return fn(*args)
    except StateError as exc:
        raise _fail(getattr(grpc.StatusCode, exc.code, grpc.StatusCode.UNKNOWN), exc.message) from None


class EntityWriter:
    """Applies one Update at a time to the runtime state (caller holds ``handle.lock``)."""

    def __init__(self, index: P4InfoIndex, state: Any, servicer: P4RuntimeServicer):
        self.index, self.state, self.servicer = index, state, servicer

    def apply(self, update) -> None:
        op = p4r.Update.Type.Name(update.type)
        if op not in ("INSERT", "MODIFY", "DELETE"):
            raise _fail(INVALID, "update type is UNSPECIFIED")
        kind = update.entity.WhichOneof("entity")
        handler = getattr(self, f"_write_{kind}", None)
        if handler is None:
            raise _fail(grpc.StatusCode.UNIMPLEMENTED, f"writing {kind} entities is not supported")
        handler(op, getattr(update.entity, kind))

    def _modify_only(self, op: str, kind: str) -> None:
        if op != "MODIFY":
            raise _fail(INVALID, f"{kind} entries only support MODIFY")

    def _write_table_entry(self, op: str, msg) -> None:
        meta = self.index.table(msg.table_id)
        table = self.state.tables[meta.name]
        if msg.is_default_action:
            self._modify_only(op, "default")
            if msg.match:
                raise _fail(INVALID, "a default entry has no match fields")
            if not msg.HasField("action"):
                _state_call(table.reset_default)
                return
            call = self._direct_action(meta, msg.action, default=True)
            _state_call(table.set_default, call)
            return
        if meta.info.is_const_table:
            raise _fail(grpc.StatusCode.PERMISSION_DENIED, f"table {meta.name} is const")
        match = self._match(meta, msg.match)
        priority = self._priority(meta, msg.priority)
        if op == "DELETE":
            _state_call(table.delete, match, priority)
            return
        entry = TableEntry(match=match, priority=priority)
        which = msg.action.WhichOneof("type")
        if which == "action":
            entry.action = self._direct_action(meta, msg.action, default=False)
        elif which in ("action_profile_member_id", "action_profile_group_id"):
            profile_name = meta.info.implementation
            profile = self.index.program.action_profiles.get(profile_name) if profile_name else None
            if profile is None:
                raise _fail(INVALID, f"table {meta.name} has no action profile")
            if which == "action_profile_member_id":
                entry.member_id = msg.action.action_profile_member_id
            else:
                if not profile.with_selector:
                    raise _fail(INVALID, f"table {meta.name}'s action profile has no selector: no groups")
                entry.group_id = msg.action.action_profile_group_id
        elif which == "action_profile_action_set":
            raise _fail(grpc.StatusCode.UNIMPLEMENTED, "one-shot action selector programming is not supported")
        else:
            raise _fail(INVALID, f"table entry for {meta.name} has no action")
        if msg.HasField("counter_data"):
            entry.packets, entry.bytes = msg.counter_data.packet_count, msg.counter_data.byte_count
        if msg.HasField("meter_config"):
            entry.meter = _meter_tuple(msg.meter_config)
        if op == "INSERT":
            _state_call(table.insert, entry)
            return
        _state_call(table.modify, entry)   # keeps counters, and the meter unless one is given
        if msg.HasField("counter_data"):
            current = table.get(match, priority)
            current.packets, current.bytes = entry.packets, entry.bytes

    def _match(self, meta: TableMeta, field_matches) -> tuple:
        """P4Runtime FieldMatches -> the runtime match tuple; omitted fields are don't-care."""
        keys = [k for k in meta.info.keys if k.match_kind != "selector"]
        values: list[Any] = [None] * len(keys)
        for fm in field_matches:
            if fm.field_id not in meta.fields:
                raise _fail(INVALID, f"unknown match field id {fm.field_id} for table {meta.name}")
            pos, kind, width, name = meta.fields[fm.field_id]
            if values[pos] is not None:
                raise _fail(INVALID, f"match field {name} given twice")
            given = fm.WhichOneof("field_match_type")
            if given != kind:
                raise _fail(INVALID, f"match field {name} is {kind}, not {given}")
            what = f"{meta.name} {name}"
            full = (1 << width) - 1
            if kind == "exact":
                values[pos] = decode_int(fm.exact.value, width, what)
            elif kind == "ternary":
                value = decode_int(fm.ternary.value, width, what)
                mask = decode_int(fm.ternary.mask, width, what + " mask")
                if mask == 0:
                    raise _fail(INVALID, f"{what}: a zero mask must be omitted (don't care)")
                if value & ~mask:
                    raise _fail(INVALID, f"{what}: value has bits set outside the mask")
                values[pos] = (value, mask)
            elif kind == "lpm":
                value, plen = decode_int(fm.lpm.value, width, what), fm.lpm.prefix_len
                if not 0 < plen <= width:
                    raise _fail(INVALID, f"{what}: prefix length {plen} not in 1..{width} (omit for /0)")
                if value & (full >> plen):
                    raise _fail(INVALID, f"{what}: value has bits set past the prefix length")
                values[pos] = (value, plen)
            elif kind == "range":
                low = decode_int(fm.range.low, width, what + " low")
                high = decode_int(fm.range.high, width, what + " high")
                if low > high:
                    raise _fail(INVALID, f"{what}: low > high")
                if (low, high) == (0, full):
                    raise _fail(INVALID, f"{what}: a full range must be omitted (don't care)")
                values[pos] = (low, high)
            elif kind == "optional":
                values[pos] = decode_int(fm.optional.value, width, what)
        for pos, key in enumerate(keys):
            if values[pos] is not None:
                continue
            width = key.bitwidth
            if key.match_kind == "exact":
                raise _fail(INVALID, f"{meta.name}: exact match field {key.name} is missing")
            values[pos] = {"ternary": (0, 0), "lpm": (0, 0), "range": (0, (1 << width) - 1),
                           "optional": None}[key.match_kind]
        return tuple(values)

    @staticmethod
    def _priority(meta: TableMeta, priority: int) -> int:
        if meta.needs_priority and priority <= 0:
            raise _fail(INVALID, f"table {meta.name} needs a priority > 0 (ternary/range/optional keys)")
        if not meta.needs_priority and priority != 0:
            raise _fail(INVALID, f"table {meta.name} takes no priority (exact/lpm keys only)")
        return priority

    def _direct_action(self, meta: TableMeta, table_action, default: bool):
        if table_action.WhichOneof("type") != "action":
            raise _fail(INVALID, "a default entry takes a direct action")
        action = table_action.action
        if action.action_id not in self.index.actions:
            raise _fail(grpc.StatusCode.NOT_FOUND, f"unknown action id {action.action_id}")
        scope = meta.action_scopes.get(action.action_id)
        if scope is None:
            raise _fail(INVALID, f"action id {action.action_id} is not an action of table {meta.name}")
        if scope == ("TABLE_ONLY" if default else "DEFAULT_ONLY"):
            raise _fail(INVALID, f"action {self.index.actions[action.action_id].name} is {scope} in {meta.name}")
        return self.action_call(action)

    def action_call(self, action) -> ActionCall:
        meta = self.index.actions.get(action.action_id)
        if meta is None:
            raise _fail(grpc.StatusCode.NOT_FOUND, f"unknown action id {action.action_id}")
        args: list[int | None] = [None] * len(meta.params)
        for param in action.params:
            if param.param_id not in meta.params:
                raise _fail(INVALID, f"unknown parameter id {param.param_id} for action {meta.name}")
            pos, width, name = meta.params[param.param_id]
            if args[pos] is not None:
                raise _fail(INVALID, f"parameter {name} of {meta.name} given twice")
            args[pos] = decode_int(param.value, width, f"{meta.name} {name}")
        missing = [meta.params[i][2] for i in meta.params if args[meta.params[i][0]] is None]
        if missing:
            raise _fail(INVALID, f"action {meta.name} is missing parameters: {', '.join(missing)}")
        return ActionCall(meta.name, tuple(args))

    def _write_action_profile_member(self, op: str, msg) -> None:
        profile = self.state.action_profiles[self.index.lookup(
            self.index.action_profiles, msg.action_profile_id, "action profile")]
        if op == "DELETE":
            _state_call(profile.delete_member, msg.member_id)
            return
        call = self.action_call(msg.action)
        _state_call(profile.insert_member if op == "INSERT" else profile.modify_member, msg.member_id, call)

    def _write_action_profile_group(self, op: str, msg) -> None:
        name = self.index.lookup(self.index.action_profiles, msg.action_profile_id, "action profile")
        profile, info = self.state.action_profiles[name], self.index.program.action_profiles[name]
        key = (name, msg.group_id)
        if op == "DELETE":
            _state_call(profile.delete_group, msg.group_id)
            self.servicer.group_max_size.pop(key, None)
            return
        # P4Runtime: weight 0 is read as 1; max_size bounds the group's total weight
        members = [(m.member_id, m.weight or 1) for m in msg.members]
        if info.max_group_size and msg.max_size > info.max_group_size:
            raise _fail(INVALID, f"{name}: max_size {msg.max_size} exceeds max_group_size {info.max_group_size}")
        max_size = msg.max_size if op == "INSERT" else self.servicer.group_max_size.get(key, 0)
        if max_size and sum(w for _, w in members) > max_size:
            raise _fail(grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"{name}: group {msg.group_id} exceeds its max_size {max_size}")
        _state_call(profile.insert_group if op == "INSERT" else profile.modify_group, msg.group_id, members)
        if op == "INSERT":
            self.servicer.group_max_size[key] = msg.max_size

    def _write_counter_entry(self, op: str, msg) -> None:
        self._modify_only(op, "counter")
        names = [self.index.lookup(self.index.counters, msg.counter_id, "counter")] if msg.counter_id \
            else list(self.index.counters.values())
        for name in names:
            counter = self.state.counters[name]
            indices = [msg.index.index] if msg.HasField("index") else range(counter.info.size)
            for i in indices:
                _state_call(counter.write, i, msg.data.packet_count, msg.data.byte_count)

    def _write_direct_counter_entry(self, op: str, msg) -> None:
        self._modify_only(op, "direct counter")
        entry = self._direct_target(msg.table_entry)
        entry.packets, entry.bytes = msg.data.packet_count, msg.data.byte_count

    def _write_meter_entry(self, op: str, msg) -> None:
        self._modify_only(op, "meter")
        meter = self.state.meters[self.index.lookup(self.index.meters, msg.meter_id, "meter")]
        config = _meter_tuple(msg.config) if msg.HasField("config") else None
        indices = [msg.index.index] if msg.HasField("index") else range(meter.info.size)
        for i in indices:
            if config is None:   # an unset config restores the default: every packet GREEN
                _state_call(meter.reset_config, i)
            else:
                _state_call(meter.set_config, i, *config)

    def _write_direct_meter_entry(self, op: str, msg) -> None:
        self._modify_only(op, "direct meter")
        entry = self._direct_target(msg.table_entry)
        # an unset config restores the default (every packet GREEN)
        entry.meter = _meter_tuple(msg.config) if msg.HasField("config") else None
        entry.meter_cell = None

    def _direct_target(self, table_entry):
        """The stored entry a direct counter/meter entry names (mutated in place)."""
        meta = self.index.table(table_entry.table_id)
        table = self.state.tables[meta.name]
        match = self._match(meta, table_entry.match)
        entry = _state_call(table.get, match, self._priority(meta, table_entry.priority))
        if entry is None:
            raise _fail(grpc.StatusCode.NOT_FOUND, f"no such entry in {meta.name}")
        return entry

    def _write_register_entry(self, op: str, msg) -> None:
        self._modify_only(op, "register")
        name = self.index.lookup(self.index.registers, msg.register_id, "register")
        register, info = self.state.registers[name], self.index.program.registers[name]
        if msg.data.WhichOneof("data") != "bitstring":
            raise _fail(INVALID, f"register {name} data must be a bitstring")
        value = decode_int(msg.data.bitstring, info.bitwidth, name)
        indices = [msg.index.index] if msg.HasField("index") else range(info.size)
        for i in indices:
            _state_call(register.write, i, value)

    def _write_packet_replication_engine_entry(self, op: str, msg) -> None:
        pre = self.state.pre
        if msg.WhichOneof("type") == "multicast_group_entry":
            group = msg.multicast_group_entry
            if op == "DELETE":
                _state_call(pre.delete_multicast_group, group.multicast_group_id)
            else:
                fn = pre.insert_multicast_group if op == "INSERT" else pre.modify_multicast_group
                _state_call(fn, group.multicast_group_id, _replicas(group.replicas))
        elif msg.WhichOneof("type") == "clone_session_entry":
            self._write_clone_session(op, msg.clone_session_entry)
        else:
            raise _fail(INVALID, "empty packet replication engine entry")

    def _write_clone_session(self, op: str, msg) -> None:
        """A clone session with several replicas clones to a hidden multicast group, as PI
        does for simple_switch; its id lies above P4Runtime's 32-bit group ids."""
        from fabriclab.v1model.pre import CloneSession

        pre, hidden = self.state.pre, CLONE_GROUP_BASE + msg.session_id
        if op == "DELETE":
            _state_call(pre.delete_clone_session, msg.session_id)
            pre.multicast_groups.pop(hidden, None)
            return
        if op == "MODIFY" and msg.session_id not in pre.clone_sessions:
            raise _fail(grpc.StatusCode.NOT_FOUND, f"no clone session {msg.session_id}")
        replicas = _replicas(msg.replicas)
        session = CloneSession(msg.session_id, class_of_service=msg.class_of_service,
                               truncate_length=msg.packet_length_bytes, replicas=replicas)
        if len(replicas) > 1:
            session.mgid = hidden
        fn = pre.insert_clone_session if op == "INSERT" else pre.modify_clone_session
        _state_call(fn, session)
        if len(replicas) > 1:
            pre.multicast_groups[hidden] = list(replicas)
        else:
            pre.multicast_groups.pop(hidden, None)

    def _write_digest_entry(self, op: str, msg) -> None:
        self.index.lookup(self.index.digests, msg.digest_id, "digest")
        exists = self.servicer.digest_config(msg.digest_id) is not None
        if op == "INSERT" and exists:
            raise _fail(grpc.StatusCode.ALREADY_EXISTS, f"digest {msg.digest_id} is already configured")
        if op != "INSERT" and not exists:
            raise _fail(grpc.StatusCode.NOT_FOUND, f"digest {msg.digest_id} is not configured")
        config = None if op == "DELETE" else DigestConfig(msg.config.max_list_size, msg.config.max_timeout_ns,
                                                          msg.config.ack_timeout_ns)
        self.servicer.set_digest_config(msg.digest_id, config)


def _meter_tuple(config) -> tuple[int, int, int, int]:
    if config.cir > config.pir:
        raise _fail(INVALID, "meter cir must not exceed pir")
    return (config.cir, config.cburst, config.pir, config.pburst)


def _replicas(replicas) -> list[tuple[int, int]]:
    """Replica messages -> [(egress port, instance)]; 1.4's bytes ``port`` or ``egress_port``."""
    out = []
    for replica in replicas:
        if replica.WhichOneof("port_kind") == "port":
            port = decode_int(replica.port, 32, "replica port")
        else:
            port = replica.egress_port
        out.append((port, replica.instance))
    if len(set(out)) != len(out):
        raise _fail(INVALID, "duplicate replica (port, instance)")
    return out


class EntityReader:
    """Answers one read filter (with wildcards) from the runtime state (caller holds the lock)."""

    def __init__(self, index: P4InfoIndex, state: Any, servicer: P4RuntimeServicer):
        self.index, self.state, self.servicer = index, state, servicer
        self.writer = EntityWriter(index, state, servicer)   # shares the match/priority parsing

    def read(self, entity) -> list:
        kind = entity.WhichOneof("entity")
        handler = getattr(self, f"_read_{kind}", None)
        if handler is None:
            raise _fail(grpc.StatusCode.UNIMPLEMENTED, f"reading {kind} entities is not supported")
        return handler(getattr(entity, kind))

    def _tables(self, table_id: int) -> list[TableMeta]:
        return [self.index.table(table_id)] if table_id else list(self.index.tables.values())

    def _read_table_entry(self, msg) -> list:
        out = []
        for meta in self._tables(msg.table_id):
            table = self.state.tables[meta.name]
            if msg.is_default_action:
                entity = p4r.Entity()
                entity.table_entry.table_id = meta.id
                entity.table_entry.is_default_action = True
                self._set_action(entity.table_entry.action, table.default)
                out.append(entity)
                continue
            if msg.match:
                entry = _state_call(table.get, self.writer._match(meta, msg.match),
                                    self.writer._priority(meta, msg.priority))
                entries = [entry] if entry is not None else []
            else:
                entries = table.entries()
            for entry in entries:
                entity = p4r.Entity()
                self.table_entry(meta, entry, entity.table_entry)
                out.append(entity)
        return out

    def table_entry(self, meta: TableMeta, entry, out) -> None:
        out.table_id = meta.id
        out.priority = entry.priority
        out.is_const = meta.info.is_const_table
        for field_id, (pos, kind, width, _) in sorted(meta.fields.items()):
            value = entry.match[pos]
            fm = p4r.FieldMatch(field_id=field_id)
            if kind == "exact":
                fm.exact.value = encode_int(value)
            elif kind == "ternary":
                if value[1] == 0:
                    continue
                fm.ternary.value, fm.ternary.mask = encode_int(value[0]), encode_int(value[1])
            elif kind == "lpm":
                if value[1] == 0:
                    continue
                fm.lpm.value, fm.lpm.prefix_len = encode_int(value[0]), value[1]
            elif kind == "range":
                if tuple(value) == (0, (1 << width) - 1):
                    continue
                fm.range.low, fm.range.high = encode_int(value[0]), encode_int(value[1])
            elif kind == "optional":
                if value is None:
                    continue
                fm.optional.value = encode_int(value)
            out.match.append(fm)
        if entry.action is not None:
            self._set_action(out.action, entry.action)
        elif entry.member_id is not None:
            out.action.action_profile_member_id = entry.member_id
        elif entry.group_id is not None:
            out.action.action_profile_group_id = entry.group_id
        if meta.info.direct_counter:
            out.counter_data.packet_count, out.counter_data.byte_count = entry.packets, entry.bytes
        if meta.info.direct_meter and entry.meter is not None:
            _set_meter(out.meter_config, entry.meter)

    def _set_action(self, table_action, call) -> None:
        self.action(table_action.action, call)

    def action(self, out, call) -> None:
        action_id = self.index.action_ids[call.name]
        out.action_id = action_id
        for param_id, (pos, _, _) in sorted(self.index.actions[action_id].params.items()):
            out.params.add(param_id=param_id, value=encode_int(call.args[pos]))

    def _profiles(self, profile_id: int) -> list[tuple[int, str]]:
        if profile_id:
            return [(profile_id, self.index.lookup(self.index.action_profiles, profile_id, "action profile"))]
        return list(self.index.action_profiles.items())

    def _read_action_profile_member(self, msg) -> list:
        out = []
        for profile_id, name in self._profiles(msg.action_profile_id):
            members = self.state.action_profiles[name].members
            ids = [msg.member_id] if msg.member_id else sorted(members)
            for member_id in ids:
                if member_id not in members:
                    continue
                entity = p4r.Entity()
                m = entity.action_profile_member
                m.action_profile_id, m.member_id = profile_id, member_id
                self.action(m.action, members[member_id])
                out.append(entity)
        return out

    def _read_action_profile_group(self, msg) -> list:
        out = []
        for profile_id, name in self._profiles(msg.action_profile_id):
            groups = self.state.action_profiles[name].groups
            ids = [msg.group_id] if msg.group_id else sorted(groups)
            for group_id in ids:
                if group_id not in groups:
                    continue
                entity = p4r.Entity()
                g = entity.action_profile_group
                g.action_profile_id, g.group_id = profile_id, group_id
                g.max_size = self.servicer.group_max_size.get((name, group_id), 0)
                for member_id, weight in groups[group_id]:
                    g.members.add(member_id=member_id, weight=weight)
                out.append(entity)
        return out

    def _read_counter_entry(self, msg) -> list:
        out = []
        ids = [msg.counter_id] if msg.counter_id else sorted(self.index.counters)
        for counter_id in ids:
            counter = self.state.counters[self.index.lookup(self.index.counters, counter_id, "counter")]
            indices = [msg.index.index] if msg.HasField("index") else range(counter.info.size)
            for i in indices:
                packets, nbytes = _state_call(counter.read, i)
                entity = p4r.Entity()
                c = entity.counter_entry
                c.counter_id, c.index.index = counter_id, i
                c.data.packet_count, c.data.byte_count = packets, nbytes
                out.append(entity)
        return out

    def _direct_tables(self, table_entry, ids: dict[int, str]) -> list[TableMeta]:
        metas = self._tables(table_entry.table_id)
        wanted = set(ids.values())
        return [m for m in metas if m.name in wanted]

    def _direct_entries(self, table_entry, ids: dict[int, str]):
        for meta in self._direct_tables(table_entry, ids):
            if table_entry.table_id and table_entry.match:
                yield meta, self.writer._direct_target(table_entry)
                continue
            for entry in self.state.tables[meta.name].entries():
                yield meta, entry

    def _read_direct_counter_entry(self, msg) -> list:
        out = []
        for meta, entry in self._direct_entries(msg.table_entry, self.index.direct_counters):
            entity = p4r.Entity()
            self.table_entry(meta, entry, entity.direct_counter_entry.table_entry)
            entity.direct_counter_entry.table_entry.ClearField("counter_data")
            entity.direct_counter_entry.table_entry.ClearField("meter_config")
            entity.direct_counter_entry.data.packet_count = entry.packets
            entity.direct_counter_entry.data.byte_count = entry.bytes
            out.append(entity)
        return out

    def _read_direct_meter_entry(self, msg) -> list:
        out = []
        for meta, entry in self._direct_entries(msg.table_entry, self.index.direct_meters):
            entity = p4r.Entity()
            self.table_entry(meta, entry, entity.direct_meter_entry.table_entry)
            entity.direct_meter_entry.table_entry.ClearField("counter_data")
            entity.direct_meter_entry.table_entry.ClearField("meter_config")
            if entry.meter is not None:
                _set_meter(entity.direct_meter_entry.config, entry.meter)
            out.append(entity)
        return out

    def _read_meter_entry(self, msg) -> list:
        out = []
        ids = [msg.meter_id] if msg.meter_id else sorted(self.index.meters)
        for meter_id in ids:
            meter = self.state.meters[self.index.lookup(self.index.meters, meter_id, "meter")]
            indices = [msg.index.index] if msg.HasField("index") else range(meter.info.size)
            for i in indices:
                config = _state_call(meter.get_config, i)
                entity = p4r.Entity()
                m = entity.meter_entry
                m.meter_id, m.index.index = meter_id, i
                if config is not None:
                    _set_meter(m.config, config)
                out.append(entity)
        return out

    def _read_register_entry(self, msg) -> list:
        out = []
        ids = [msg.register_id] if msg.register_id else sorted(self.index.registers)
        for register_id in ids:
            name = self.index.lookup(self.index.registers, register_id, "register")
            register, info = self.state.registers[name], self.index.program.registers[name]
            indices = [msg.index.index] if msg.HasField("index") else range(info.size)
            for i in indices:
                value = _state_call(register.read, i)
                entity = p4r.Entity()
                r = entity.register_entry
                r.register_id, r.index.index = register_id, i
                r.data.bitstring = encode_int(value & ((1 << info.bitwidth) - 1))
                out.append(entity)
        return out

    def _read_packet_replication_engine_entry(self, msg) -> list:
        pre, out = self.state.pre, []
        if msg.WhichOneof("type") == "multicast_group_entry":
            wanted = msg.multicast_group_entry.multicast_group_id
            groups = pre.multicast_groups
            for group_id in ([wanted] if wanted else sorted(groups)):
                if group_id not in groups or group_id >= CLONE_GROUP_BASE:
                    continue
                entity = p4r.Entity()
                g = entity.packet_replication_engine_entry.multicast_group_entry
                g.multicast_group_id = group_id
                for port, instance in groups[group_id]:
                    g.replicas.add(egress_port=port, instance=instance)
                out.append(entity)
        elif msg.WhichOneof("type") == "clone_session_entry":
            wanted = msg.clone_session_entry.session_id
            sessions = pre.clone_sessions
            for session_id in ([wanted] if wanted else sorted(sessions)):
                if session_id not in sessions:
                    continue
                session = sessions[session_id]
                entity = p4r.Entity()
                s = entity.packet_replication_engine_entry.clone_session_entry
                s.session_id, s.class_of_service = session_id, session.class_of_service
                s.packet_length_bytes = session.truncate_length
                for port, instance in session.replicas:
                    s.replicas.add(egress_port=port, instance=instance)
                out.append(entity)
        return out

    def _read_digest_entry(self, msg) -> list:
        out = []
        ids = [msg.digest_id] if msg.digest_id else sorted(self.index.digests)
        for digest_id in ids:
            self.index.lookup(self.index.digests, digest_id, "digest")
            config = self.servicer.digest_config(digest_id)
            if config is None:
                continue
            entity = p4r.Entity()
            entity.digest_entry.digest_id = digest_id
            entity.digest_entry.config.max_list_size = config.max_list_size
            entity.digest_entry.config.max_timeout_ns = config.max_timeout_ns
            entity.digest_entry.config.ack_timeout_ns = config.ack_timeout_ns
            out.append(entity)
        return out


def _set_meter(out, config: tuple) -> None:
    out.cir, out.cburst, out.pir, out.pburst = config


# --- the server ------------------------------------------------------------------------

class DeviceRouter(p4r_grpc.P4RuntimeServicer):
    """One gRPC service for several devices: each request goes to the servicer of its
    ``device_id`` (a StreamChannel by the device id of its first message, the arbitration
    update), so the switches of a worker process share one server and its threads."""

    def __init__(self):
        self.devices: dict[int, P4RuntimeServicer] = {}

    def _device(self, device_id: int, context) -> "P4RuntimeServicer":
        servicer = self.devices.get(device_id)
        if servicer is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown device id {device_id} "
                          f"(this server has {', '.join(map(str, sorted(self.devices)))})")
        return servicer

    def Capabilities(self, request, context):
        return p4r.CapabilitiesResponse(p4runtime_api_version=P4RUNTIME_API_VERSION)

    def SetForwardingPipelineConfig(self, request, context):
        return self._device(request.device_id, context).SetForwardingPipelineConfig(request, context)

    def GetForwardingPipelineConfig(self, request, context):
        return self._device(request.device_id, context).GetForwardingPipelineConfig(request, context)

    def Write(self, request, context):
        return self._device(request.device_id, context).Write(request, context)

    def Read(self, request, context):
        return self._device(request.device_id, context).Read(request, context)

    def StreamChannel(self, request_iterator, context):
        try:
            first = next(request_iterator)
        except (StopIteration, grpc.RpcError):
            return
        if first.WhichOneof("update") != "arbitration":
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the first stream message must be an arbitration update")
        servicer = self._device(first.arbitration.device_id, context)
        yield from servicer.StreamChannel(itertools.chain([first], request_iterator), context)


class P4RuntimeServer:
    """The switch's P4Runtime endpoint.

    ``handle`` must provide: ``lock`` (held around every runtime-state access),
    ``pipeline`` (a ``Pipeline`` or None), ``set_pipeline(compiled_program)`` and
    ``inject_packet_out(frame)``. The switch calls :meth:`packet_in` for each frame the
    pipeline sends to its CPU port.
    """

    DIGEST_POLL_S = 0.005

    def __init__(self, handle: Any = None, addr: str | None = None, device_id: int = 0):
        self.router = DeviceRouter()
        self.addrs: dict[int, str] = {}          # device id -> address it listens on
        self.ports: dict[int, int] = {}          # device id -> bound port (useful with port 0)
        self._server: grpc.Server | None = None
        self._stop = threading.Event()
        self._digest_thread: threading.Thread | None = None
        if handle is not None:
            self.add_device(handle, addr, device_id)

    def add_device(self, handle: Any, addr: str, device_id: int) -> None:
        """Serve ``handle`` as device ``device_id`` on ``addr`` too (before ``start``)."""
        if device_id in self.router.devices:
            raise ValueError(f"device id {device_id} is served already")
        self.router.devices[device_id] = P4RuntimeServicer(handle, device_id)
        self.addrs[device_id] = addr

    @property
    def servicer(self) -> "P4RuntimeServicer":
        """The servicer of a one-device server."""
        (servicer,) = self.router.devices.values()
        return servicer

    @property
    def port(self) -> int:
        """The bound port of a one-device server."""
        (port,) = self.ports.values() or (0,)
        return port

    @property
    def addr(self) -> str:
        (addr,) = self.addrs.values()
        return addr

    def start(self) -> None:
        # Each StreamChannel holds two threads for its lifetime (a controller keeps one open
        # per device): leave room for RPCs.
        workers = 16 + 2 * len(self.router.devices)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="p4rt"),
                                   options=[("grpc.max_receive_message_length", 64 << 20),
                                            ("grpc.so_reuseport", 0)])
        p4r_grpc.add_P4RuntimeServicer_to_server(self.router, self._server)
        for device_id, addr in self.addrs.items():
            try:
                port = self._server.add_insecure_port(addr)
            except RuntimeError:   # grpc raises this for an address in use or malformed
                port = 0
            if port == 0:
                self._server = None
                self.ports.clear()
                raise OSError(f"P4Runtime server cannot listen on {addr} (in use or malformed)")
            self.ports[device_id] = port
        self._server.start()
        self._stop.clear()
        self._digest_thread = threading.Thread(target=self._poll_digests, name="p4rt-digests", daemon=True)
        self._digest_thread.start()

    def _poll_digests(self) -> None:
        while not self._stop.wait(self.DIGEST_POLL_S):
            for servicer in self.router.devices.values():
                try:
                    servicer.flush_digests()
                except Exception:
                    log.exception("digest delivery failed (device %d)", servicer.device_id)

    def packet_in(self, frame: bytes) -> None:
        """Deliver a frame the pipeline sent to the CPU port of a one-device server (thread-safe);
        ``packet_in_sink(device_id)`` for one of several."""
        self.servicer.packet_in(frame)

    def packet_in_sink(self, device_id: int) -> Callable[[bytes], None]:
        return self.router.devices[device_id].packet_in

    def stop(self, grace: float = 0.5) -> None:
        self._stop.set()
        if self._digest_thread is not None:
            self._digest_thread.join()
            self._digest_thread = None
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
