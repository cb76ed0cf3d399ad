"""The v1model architecture around the generated code, with simple_switch's semantics.

The generated module supplies the programmable blocks (parser, verifyChecksum, ingress,
egress, computeChecksum, deparser); this module supplies what simple_switch does between them
(behavioral-model targets/simple_switch/simple_switch.cpp, ingress_thread/egress_thread):

* after ingress, in this order: ingress-to-egress clone (the *original* packet is parsed again,
  metadata reset except the preserved field list), resubmit (the original packet re-enters
  ingress and nothing else happens to this one), multicast through the PRE (every copy gets
  instance_type REPLICATION and its egress_rid), else unicast to egress_spec, dropped if 511;
* at egress: egress_spec starts at a value that is not the drop port, the E2E clone is taken
  after egress (headers kept, metadata reset) even when the packet itself is then dropped, the
  deparsed packet is recirculated (metadata reset except the preserved list) or transmitted.

The blocks come from an engine (``PythonEngine``: the generated Python; ``NativeEngine``: the
C extension native_codegen.py generates). Both create, copy and preserve contexts through the
same small interface and fuse the common paths (fresh context + parser + verifyChecksum +
ingress in one call; egress + computeChecksum + deparser in another), so this glue is shared.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from fabriclab.compiler.program import ProgramInfo
from fabriclab.v1model.state import RuntimeState

log = logging.getLogger(__name__)

DROP_PORT = 511
# standard_metadata.instance_type values (v1model.p4 / simple_switch.h PktInstanceType)
NORMAL, INGRESS_CLONE, EGRESS_CLONE, COALESCED, RECIRC, REPLICATION, RESUBMIT = range(7)
# simple_switch has no bound; a program that resubmits or recirculates forever would hang
# process(), so a packet is dropped after this many trips through ingress.
MAX_REENTRIES = 32
_MASK32, _MASK48 = (1 << 32) - 1, (1 << 48) - 1
_MAX_QDEPTH = (1 << 19) - 1    # enq_qdepth/deq_qdepth are bit<19>


class PacketContext:
    """One packet between the blocks: its headers, metadata and the v1model side effects
    requested by extern calls (clone, resubmit, recirculate, truncate).

    It is also the frame of the top-level controls: their local variables live here as extra
    attributes (hence no ``__slots__``), which spares a frame object per control per packet.
    Class attributes give the defaults, so creating one costs three stores.
    """

    payload = b""                   # the bytes after the last extracted header
    clone_session = None            # clone*(): mirror session id
    clone_field_list = None         # clone_preserving_field_list(): @field_list index
    resubmit_field_list = None
    recirculate_field_list = None
    truncate_to = None              # truncate(): bytes kept on output
    reentries = 0                   # trips through resubmit/recirculate so far
    now_us = 0                      # meters run on this clock
    meter_color = 0                 # the direct meter's color for the running action
    length = 0                      # simple_switch's packet-length register (bytes)

    def __init__(self, hdr, meta, sm):
        self.hdr = hdr
        self.meta = meta
        self.sm = sm

    @property
    def _ctx(self) -> "PacketContext":
        """Top-level actions reach the packet as ``F._ctx`` from any control's frame."""
        return self


class EgressJob:
    """A packet between the halves: what the traffic manager needs, and its context."""

    __slots__ = ("egress_port", "priority", "length", "instance_type", "egress_rid", "ingress_port", "ctx")

    def __init__(self, egress_port: int, priority: int, length: int, instance_type: int, egress_rid: int,
                 ingress_port: int, ctx: object):
        self.egress_port = egress_port
        self.priority = priority          # standard_metadata.priority -> queue 0..7
        self.length = length              # bytes, for buffer accounting
        self.instance_type = instance_type
        self.egress_rid = egress_rid
        self.ingress_port = ingress_port
        self.ctx = ctx                    # opaque: the packet's headers and metadata between the halves

    def __repr__(self) -> str:
        return (f"EgressJob(egress_port={self.egress_port}, priority={self.priority}, length={self.length}, "
                f"instance_type={self.instance_type}, egress_rid={self.egress_rid}, "
                f"ingress_port={self.ingress_port})")


@dataclass(slots=True)
class QueueMeta:
    now_us: int
    enq_timestamp: int     # µs
    enq_qdepth: int        # packets, as simple_switch
    deq_timedelta: int     # µs
    deq_qdepth: int


@dataclass(slots=True)
class EgressResult:
    frames: list[tuple[int, bytes]]   # (port, frame) to transmit
    jobs: list[EgressJob]             # E2E clones and recirculation results to enqueue


class PythonEngine:
    """The generated Python blocks behind the interface both engines give the glue.

    ``ingress`` makes a fresh context and runs parser, verifyChecksum and ingress; ``parse``
    makes one and only parses; ``egress`` runs the egress half and returns the frame, or None
    when the glue must look at the context (E2E clone, drop, recirculation); ``deparse`` is
    computeChecksum + deparser + truncation.
    """

    name = "python"

    def __init__(self, blocks: dict):
        self._new_headers = blocks["new_headers"]
        self._new_metadata = blocks["new_metadata"]
        self._new_standard_metadata = blocks["new_standard_metadata"]
        self._parse = blocks["parser"]
        self._verify_checksum = blocks["verify_checksum"]
        self._ingress = blocks["ingress"]
        self._egress = blocks["egress"]
        self._compute_checksum = blocks["compute_checksum"]
        self._deparse = blocks["deparser"]
        self._preserve = blocks["preserve_field_list"]

    def _fresh(self, frame: bytes, ingress_port: int, now_us: int, instance_type: int,
               preserved_from: PacketContext | None, field_list: int | None) -> PacketContext:
        ctx = PacketContext(self._new_headers(), self._new_metadata(), self._new_standard_metadata())
        if preserved_from is not None:
            self._preserve(field_list, preserved_from.meta, ctx.meta)
            ctx.reentries = preserved_from.reentries + 1
        sm = ctx.sm
        sm.ingress_port = ingress_port
        sm.packet_length = ctx.length = len(frame)
        sm.instance_type = instance_type
        sm.ingress_global_timestamp = now_us & _MASK48
        ctx.now_us = now_us
        return ctx

    def ingress(self, frame: bytes, ingress_port: int, now_us: int, instance_type: int = NORMAL,
                preserved_from: PacketContext | None = None, field_list: int | None = None) -> PacketContext:
        ctx = self._fresh(frame, ingress_port, now_us, instance_type, preserved_from, field_list)
        self._parse(ctx, frame)
        self._verify_checksum(ctx)
        self._ingress(ctx)
        return ctx

    def parse(self, frame: bytes, ingress_port: int, now_us: int, instance_type: int) -> PacketContext:
        ctx = self._fresh(frame, ingress_port, now_us, instance_type, None, None)
        self._parse(ctx, frame)
        return ctx

    def preserve(self, field_list: int | None, src: PacketContext, dst: PacketContext) -> None:
        self._preserve(field_list, src.meta, dst.meta)

    def copy(self, ctx: PacketContext) -> PacketContext:
        copy = PacketContext(ctx.hdr._copy(), ctx.meta._copy(), ctx.sm._copy())
        copy.payload = ctx.payload
        copy.truncate_to = ctx.truncate_to
        copy.reentries = ctx.reentries
        copy.length = ctx.length
        return copy

    def egress_clone(self, ctx: PacketContext, length: int) -> PacketContext:
        # headers as egress left them, metadata reset except the preserved list
        clone = PacketContext(ctx.hdr._copy(), self._new_metadata(), self._new_standard_metadata())
        clone.payload = ctx.payload
        clone.length = length
        self._preserve(ctx.clone_field_list, ctx.meta, clone.meta)
        clone.sm.instance_type = EGRESS_CLONE
        clone.reentries = ctx.reentries
        return clone

    def egress(self, ctx: PacketContext, egress_port: int, length: int, now_us: int, enq_timestamp: int,
               enq_qdepth: int, deq_timedelta: int, deq_qdepth: int) -> bytes | None:
        sm = ctx.sm
        sm.egress_port = egress_port
        sm.egress_spec = 0     # simple_switch: anything but the drop port (512 wraps to 0)
        sm.packet_length = ctx.length = length
        # the fields are bit<32>/bit<19>/bit<48>: values wrap like simple_switch's
        sm.enq_timestamp = enq_timestamp & _MASK32
        sm.enq_qdepth = min(enq_qdepth, _MAX_QDEPTH)
        sm.deq_timedelta = deq_timedelta & _MASK32
        sm.deq_qdepth = min(deq_qdepth, _MAX_QDEPTH)
        sm.egress_global_timestamp = now_us & _MASK48
        ctx.now_us = now_us
        ctx.clone_session = None
        self._egress(ctx)
        if ctx.clone_session is not None or sm.egress_spec == DROP_PORT or ctx.recirculate_field_list is not None:
            return None
        return self.deparse(ctx)

    def deparse(self, ctx: PacketContext) -> bytes:
        self._compute_checksum(ctx)
        data = self._deparse(ctx)
        if ctx.truncate_to is not None:
            data = data[: ctx.truncate_to]
        return data


class NativeEngine:
    """A program's extension module (native_codegen) bound to one pipeline's runtime state.

    The module's functions take the engine object first; ``functools.partial`` binds it
    without a Python frame per call.
    """

    name = "native"

    def __init__(self, module, state: RuntimeState):
        from fabriclab.v1model import runtime

        engine = module.engine(state, runtime)
        self.ingress = functools.partial(module.ingress, engine)
        self.parse = functools.partial(module.parse, engine)
        self.preserve = module.preserve
        self.copy = module.copy
        self.egress_clone = module.egress_clone
        self.egress = module.egress
        self.deparse = module.deparse


class Pipeline:
    """An instance of a compiled program: an engine's blocks + runtime state + v1model glue."""

    def __init__(self, info: ProgramInfo, blocks: dict | None, state: RuntimeState | None = None,
                 cpu_port: int | None = None, engine=None):
        self.info = info
        self.state = state if state is not None else RuntimeState(info)
        self.cpu_port = cpu_port
        self.engine = engine if engine is not None else PythonEngine(blocks)

    # -- ingress half ---------------------------------------------------------------------

    def ingress(self, frame: bytes, ingress_port: int, now_us: int) -> list[EgressJob]:
        ctx = self.engine.ingress(frame, ingress_port, now_us, NORMAL, None, None)
        if ctx.clone_session is None and ctx.resubmit_field_list is None:
            sm = ctx.sm
            if not sm.mcast_grp:    # the common case: unicast or drop
                if sm.egress_spec == DROP_PORT:
                    return []
                return [EgressJob(sm.egress_spec, sm.priority, ctx.length, NORMAL, 0, sm.ingress_port, ctx)]
        return self._after_ingress(ctx, frame, now_us)

    def _after_ingress(self, ctx, frame: bytes, now_us: int) -> list[EgressJob]:
        jobs: list[EgressJob] = []
        while True:
            sm = ctx.sm
            if ctx.clone_session is not None:
                self._clone_at_ingress(ctx, frame, now_us, jobs)
            if ctx.resubmit_field_list is None:
                break
            if ctx.reentries >= MAX_REENTRIES:
                log.warning("packet resubmitted %d times: dropped", MAX_REENTRIES)
                return jobs
            # The original packet re-enters ingress; this copy goes nowhere else.
            ctx = self.engine.ingress(frame, sm.ingress_port, now_us, RESUBMIT, ctx, ctx.resubmit_field_list)
        mgid = sm.mcast_grp
        if mgid:
            sm.instance_type = REPLICATION
            self._replicate(ctx, mgid, ctx.length, jobs)
        elif sm.egress_spec != DROP_PORT:
            sm.instance_type = NORMAL
            jobs.append(EgressJob(sm.egress_spec, sm.priority, ctx.length, NORMAL, 0,
                                  sm.ingress_port, ctx))
        return jobs

    def _clone_at_ingress(self, ctx, frame: bytes, now_us: int, jobs: list[EgressJob]) -> None:
        session = self.state.pre.clone_session(ctx.clone_session)
        if session is None:
            return
        # simple_switch parses the original packet again for the clone.
        clone = self.engine.parse(frame, ctx.sm.ingress_port, now_us, INGRESS_CLONE)
        self.engine.preserve(ctx.clone_field_list, ctx, clone)
        clone.sm.instance_type = INGRESS_CLONE
        clone.sm.ingress_port = ctx.sm.ingress_port
        self._send_clone(clone, session, len(frame), jobs)

    def _send_clone(self, clone, session, length: int, jobs: list[EgressJob]) -> None:
        if session.truncate_length:
            clone.truncate_to = session.truncate_length
        if session.mgid:
            # the replicas must not share the object the port copy below uses
            replicated = self.engine.copy(clone) if session.egress_port is not None else clone
            self._replicate(replicated, session.mgid, length, jobs)
        if session.egress_port is not None:
            sm = clone.sm
            jobs.append(EgressJob(session.egress_port, sm.priority, length, sm.instance_type, 0,
                                  sm.ingress_port, clone))

    def _replicate(self, ctx, mgid: int, length: int, jobs: list[EgressJob]) -> None:
        replicas = self.state.pre.replicate(mgid)
        for i, (port, rid) in enumerate(replicas):
            copy = ctx if i == len(replicas) - 1 else self.engine.copy(ctx)
            copy.sm.egress_rid = rid
            jobs.append(EgressJob(port, copy.sm.priority, length, copy.sm.instance_type, rid,
                                  copy.sm.ingress_port, copy))

    # -- egress half ----------------------------------------------------------------------

    def egress(self, job: EgressJob, meta: QueueMeta) -> EgressResult:
        result = self.egress_frame(job, meta.now_us, meta.enq_timestamp, meta.enq_qdepth,
                                   meta.deq_timedelta, meta.deq_qdepth)
        if result is None:
            return EgressResult([], [])
        if isinstance(result, EgressResult):
            return result
        return EgressResult([(job.egress_port, result)], [])

    def egress_frame(self, job: EgressJob, now_us: int, enq_timestamp: int, enq_qdepth: int,
                     deq_timedelta: int, deq_qdepth: int) -> bytes | EgressResult | None:
        """The egress half as the traffic manager runs it for every packet, without per-packet
        result objects: the frame for ``job.egress_port`` (bytes), None when nothing leaves,
        or an ``EgressResult`` when the packet made clones or recirculated."""
        ctx = job.ctx
        data = self.engine.egress(ctx, job.egress_port, job.length, now_us, enq_timestamp,
                                  enq_qdepth, deq_timedelta, deq_qdepth)
        if data is not None:
            return data
        jobs: list[EgressJob] = []
        if ctx.clone_session is not None:
            self._clone_at_egress(ctx, ctx.length, jobs)
        if ctx.sm.egress_spec == DROP_PORT:
            return EgressResult([], jobs) if jobs else None
        data = self.engine.deparse(ctx)
        if ctx.recirculate_field_list is not None:
            if ctx.reentries >= MAX_REENTRIES:
                log.warning("packet recirculated %d times: dropped", MAX_REENTRIES)
                return EgressResult([], jobs) if jobs else None
            again = self.engine.ingress(data, 0, now_us, RECIRC, ctx, ctx.recirculate_field_list)
            jobs.extend(self._after_ingress(again, data, now_us))
            return EgressResult([], jobs)
        return EgressResult([(job.egress_port, data)], jobs) if jobs else data

    def _clone_at_egress(self, ctx, length: int, jobs: list[EgressJob]) -> None:
        session = self.state.pre.clone_session(ctx.clone_session)
        if session is None:
            return
        self._send_clone(self.engine.egress_clone(ctx, length), session, length, jobs)

    # -- both halves ----------------------------------------------------------------------

    def process(self, frame: bytes, ingress_port: int, now_us: int = 0) -> list[tuple[int, bytes]]:
        """Ingress then egress with empty queues; E2E clones and recirculations included."""
        pending = self.ingress(frame, ingress_port, now_us)
        if not pending:
            return []
        out: list[tuple[int, bytes]] = []
        queue_meta = QueueMeta(now_us, now_us, 0, 0, 0)
        trips = 0
        while pending and trips < 64 * MAX_REENTRIES:
            trips += 1
            result = self.egress(pending.pop(0), queue_meta)
            out.extend(result.frames)
            pending.extend(result.jobs)
        return out
