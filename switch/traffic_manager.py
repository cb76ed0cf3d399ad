"""The traffic manager between the pipeline's ingress and egress halves.

Per egress port: eight queues chosen by ``job.priority`` (7 is served first, as IEEE 802.1Q
orders priorities), a scheduler (strict priority, or deficit weighted round robin where weight
0 means strict above the weighted ones), a line rate and an optional propagation delay. One
shared buffer for every queue, with per-queue static or dynamic (alpha x free) thresholds for
lossy priorities, and per-(ingress port, priority) PFC accounting with headroom for lossless
ones (``pfc.PfcState``).

Time is injected: every public method takes ``now_ns`` (any monotonic origin) and the TM
never reads a clock. The switch's event loop calls ``enqueue``/``receive_control`` as frames
arrive and ``advance(now)`` when ``next_event_time()`` comes; tests drive virtual time the same
way, deterministically.

Line rate: a frame occupies the wire for its bytes + 24 (preamble and SFD 8, inter-frame gap
12, and the FCS 4, which frames from AF_PACKET sockets never carry), at least 64 + 20 bytes for a
minimum-size frame. A frame is handed to ``transmit`` when its first bit reaches the far end:
when it starts serializing, plus the port's propagation delay; the port stays busy for the
serialization time. MAC Control (PFC) frames go before queued data and are never paused
(IEEE 802.3 31B.3.1), but do not preempt a frame on the wire.

Two implementations: ``TrafficManager`` here is the reference; ``NativeTrafficManager``
(switch/native_tm.c, built like the native P4 engine) does the same in C, about 1.5 µs less per
frame. ``make_traffic_manager`` picks the C one where it builds; tests/test_tm_native_differential.py
holds them to identical transmissions, QueueMeta, PFC events and stats. When several ports are
due at the same time, both serve the lowest port number first.

PFC watchdog (``pfcwd`` in switch.yaml), after SONiC's: every ``poll_interval`` it looks at each
watched lossless queue; one found paused, holding packets and without a dequeue since the last
look, poll after poll for ``detection_time``, is *stormed*: its pauses are ignored and, with
action ``drop``, its packets flushed and arrivals for it dropped (drop reason ``pfcwd``). A
stormed queue for which no pause frame came for ``restoration_time`` is restored. Each storm
and restoration is one log line and counted per priority. The polls are TM events like any
other (``next_event_time``), taken only while some watched queue is paused or stormed.

Egress sees ``QueueMeta`` as simple_switch fills it: enq_qdepth and deq_qdepth in packets
(of the packet's own queue, excluding the packet), enq_timestamp and deq_timedelta in µs.
"""
from __future__ import annotations

import logging
import os
from collections import deque
from pathlib import Path
from typing import Callable

from fabriclab.switch.pfc import (NEVER, NUM_PRIORITIES, PfcState, build_pfc_frame, is_mac_control,
                                  parse_mac_control)
from fabriclab.switch.switch_config import ResolvedConfig

log = logging.getLogger(__name__)

WIRE_OVERHEAD = 24          # preamble+SFD 8, IFG 12, FCS 4
MIN_WIRE_FRAME = 64         # with FCS
HIGHEST_FIRST = tuple(range(NUM_PRIORITIES - 1, -1, -1))
HIGHEST_SET = tuple(m.bit_length() - 1 for m in range(1 << NUM_PRIORITIES))   # mask -> top queue


def wire_bytes(frame_len: int) -> int:
    """What a frame of ``frame_len`` bytes as AF_PACKET carries it (no FCS) spends on the wire:
    + FCS, preamble/SFD and inter-frame gap, at least a minimum frame's. Hosts pace on this too."""
    return frame_len + WIRE_OVERHEAD if frame_len + 4 >= MIN_WIRE_FRAME else MIN_WIRE_FRAME + 20


class _Port:
    """One egress port's queues, scheduler state and counters."""

    __slots__ = ("number", "rate_bps", "delay_ns", "pfc", "mac", "ns_per_byte_q16", "queues", "qbytes",
                 "nonempty", "control", "delay_line", "busy_until", "due", "deficit", "rr", "rr_credited",
                 "enqueued", "dequeued", "max_qdepth", "max_qbytes", "drops", "tx_frames", "tx_bytes",
                 "control_tx", "wd_watch", "wd_stormed", "wd_left", "wd_deq", "wd_storms", "wd_restores")

    def __init__(self, number: int, rate_bps: int | None, delay_ns: int, pfc: PfcState | None, mac: bytes):
        self.number = number
        self.rate_bps = rate_bps
        self.delay_ns = delay_ns
        self.pfc = pfc
        self.mac = mac
        # ns per wire byte, scaled by 2**16 to keep integer arithmetic exact enough
        self.ns_per_byte_q16 = (8_000_000_000 << 16) // rate_bps if rate_bps else 0
        self.queues: list[deque] = [deque() for _ in range(NUM_PRIORITIES)]
        self.qbytes = [0] * NUM_PRIORITIES
        self.nonempty = 0                     # bit q set when queue q holds packets
        self.control: deque[bytes] = deque()  # MAC Control frames, sent before data
        self.delay_line: deque[tuple[int, bytes]] = deque()
        self.busy_until = 0
        self.due = NEVER                      # when the TM next has work here (cached)
        self.deficit = [0] * NUM_PRIORITIES
        self.rr = 0                           # DWRR: queue being visited
        self.rr_credited = False              # DWRR: quantum already granted for this visit
        self.enqueued = [0] * NUM_PRIORITIES
        self.dequeued = [0] * NUM_PRIORITIES
        self.max_qdepth = [0] * NUM_PRIORITIES
        self.max_qbytes = [0] * NUM_PRIORITIES
        self.drops: list[dict[str, int]] = [{} for _ in range(NUM_PRIORITIES)]
        self.tx_frames = 0
        self.tx_bytes = 0
        self.control_tx = 0
        # PFC watchdog: priorities watched and stormed (bit masks), per priority the time left
        # before a storm (operational) or a restoration (stormed), dequeues at the last look, events
        self.wd_watch = 0
        self.wd_stormed = 0
        self.wd_left = [0] * NUM_PRIORITIES
        self.wd_deq = [0] * NUM_PRIORITIES
        self.wd_storms = [0] * NUM_PRIORITIES
        self.wd_restores = [0] * NUM_PRIORITIES


class TrafficManager:
    """Queues, shared buffer, PFC and line-rate scheduling for every port of one switch."""

    def __init__(self, resolved: ResolvedConfig, transmit: Callable[[int, bytes], None], pipeline=None,
                 now_ns: int = 0, macs: dict[int, bytes] | None = None):
        cfg = resolved.config
        self.resolved = resolved
        self.transmit = transmit
        self.pipeline = pipeline
        self.now = now_ns
        self.lossless = cfg.lossless
        self._lossless_mask = sum(1 << q for q in cfg.lossless)
        self.alpha = cfg.alpha
        self.queue_limit = cfg.queue_limit_bytes
        self.dwrr = cfg.scheduler == "dwrr"
        self.quantum = [w * cfg.max_frame for w in cfg.weights]
        self.strict_mask = sum(1 << q for q in range(NUM_PRIORITIES) if self.dwrr and not cfg.weights[q])
        self.shared_bytes = resolved.shared_bytes
        self.xoff_bytes = resolved.xoff_bytes
        self.xon_bytes = resolved.xon_bytes
        self.xon_offset = resolved.xon_offset
        self.shared_used = 0
        self.headroom_used = 0
        self.max_shared_used = 0
        self.drops: dict[str, int] = {}      # drops not tied to a port's queue (no such port...)
        # called as (now_ns, port, priority, pause, direction "rx"|"tx"|"wd") for every PFC
        # decision sent or obeyed ("wd": the watchdog lifted a pause): the `time node port
        # pause|resume` event log lossless simulators emit
        self.pfc_event: Callable[[int, int, int, bool, str], None] | None = None
        self.ports: dict[int, _Port] = {}
        self._active: set[_Port] = set()
        wd = cfg.pfcwd
        self.wd_drop = wd is not None and wd.action == "drop"
        self.wd_detection = round(wd.detection_s * 1e9) if wd else 0
        self.wd_restoration = round(wd.restoration_s * 1e9) if wd else 0
        self.wd_poll = round(wd.poll_s * 1e9) if wd else 0
        self.wd_next = NEVER                 # the watchdog's next look
        macs = macs or {}
        for number, params in resolved.ports.items():
            pfc = PfcState(number, params.rate_bps, cfg.pause_quanta, params.headroom_bytes)
            port = self.ports[number] = _Port(number, params.rate_bps, params.delay_ns, pfc,
                                              macs.get(number, _default_mac(number)))
            if wd is not None and (wd.ports is None or number in wd.ports):
                port.wd_watch = self._lossless_mask
                port.wd_left = [self.wd_detection] * NUM_PRIORITIES

    def add_unshaped_port(self, number: int) -> None:
        """A port without line rate or PFC (the CPU port): frames leave as soon as they are queued."""
        self.ports[number] = _Port(number, None, 0, None, _default_mac(number))

    def set_pipeline(self, pipeline) -> None:
        """Swap the pipeline; queued jobs belong to the old program and are dropped."""
        for port in self.ports.values():
            for q, queue in enumerate(port.queues):
                while queue:
                    job = queue.popleft()[0]
                    self._release(port, q, job, self.now)
                    _count(port.drops[q], "pipeline_swap")
            port.nonempty = 0
            self._refresh(port)
        self.pipeline = pipeline

    # ---- arrivals ----

    def enqueue(self, job, now_ns: int) -> bool:
        """Queue one ``EgressJob`` from the ingress half; False if it was dropped.

        Jobs enqueued at the same ``now_ns`` arrive together: the scheduler picks among all of
        them at the next ``advance``."""
        if now_ns > self.now:
            self.advance(now_ns)
        return self._admit(job, self.now)

    def receive_control(self, port_number: int, frame: bytes, now_ns: int) -> bool:
        """Consume a MAC Control frame received on ``port_number``; False if ``frame`` is not one."""
        if not is_mac_control(frame):
            return False
        if now_ns > self.now:
            self.advance(now_ns)
        port = self.ports.get(port_number)
        control = parse_mac_control(frame)
        if port is None or port.pfc is None or control is None:
            _count(self.drops, "mac_control_ignored")
            return True
        pfc = port.pfc
        pfc.receive(control, self.now)
        if port.wd_watch & pfc.pause_seen and self.wd_next == NEVER:
            self.wd_next = self.now + self.wd_poll
        self._refresh(port)
        if self.pfc_event is not None:
            for q in range(NUM_PRIORITIES):
                if control.class_enable >> q & 1 and not pfc.wd_ignore >> q & 1:   # obeyed
                    self.pfc_event(self.now, port_number, q, control.quanta[q] > 0, "rx")
        return True

    def _admit(self, job, now: int) -> bool:
        port = self.ports.get(job.egress_port)
        if port is None:
            _count(self.drops, "no_such_port")
            return False
        q = job.priority & 7
        length = job.length
        if port.wd_stormed >> q & 1 and self.wd_drop:
            _count(port.drops[q], "pfcwd")
            return False
        free = self.shared_bytes - self.shared_used
        if self._lossless_mask >> q & 1:
            ingress = self.ports.get(job.ingress_port)
            pfc = ingress.pfc if ingress is not None else None
            if pfc is None:  # from the CPU port or recirculation: nobody to pause, keep it anyway
                self.shared_used += length
            else:
                xoff = self.xoff_bytes if self.xoff_bytes is not None else int(self.alpha * free)
                taken = pfc.charge(q, length, min(xoff, pfc.shared[q] + free))
                if taken < 0:                   # the headroom is full: dropped, a lossless drop
                    if not pfc.xoff[q]:
                        self._send_pfc(ingress, q, True, now)
                    _count(port.drops[q], "headroom_overflow")
                    return False
                self.shared_used += taken
                self.headroom_used += length - taken
                if pfc.needs_xoff(q):
                    self._send_pfc(ingress, q, True, now)
        else:
            if length > free:
                _count(port.drops[q], "buffer_full")
                return False
            limit = self.queue_limit if self.queue_limit is not None else self.alpha * free
            if port.qbytes[q] + length > limit:
                _count(port.drops[q], "queue_limit")
                return False
            self.shared_used += length
        if self.shared_used > self.max_shared_used:
            self.max_shared_used = self.shared_used
        queue = port.queues[q]
        depth = len(queue)
        queue.append((job, now, depth))
        port.enqueued[q] += 1
        qbytes = port.qbytes
        qbytes[q] += length
        if depth >= port.max_qdepth[q]:
            port.max_qdepth[q] = depth + 1
        if qbytes[q] > port.max_qbytes[q]:
            port.max_qbytes[q] = qbytes[q]
        if port.nonempty or port.control or port.delay_line or port.pfc is not None and port.pfc.xoff_count:
            port.nonempty |= 1 << q
            self._refresh(port)
        else:
            # the common case, an idle port: it is due when the wire is free (or its pause ends)
            port.nonempty = 1 << q
            pfc = port.pfc
            due = port.busy_until
            if pfc is not None and pfc.paused_until[q] > due:
                due = pfc.paused_until[q]
            port.due = due
            self._active.add(port)
        return True

    def _release(self, port: _Port, q: int, job, now: int) -> None:
        length = job.length
        port.qbytes[q] -= length
        if not self._lossless_mask >> q & 1:
            self.shared_used -= length
            return
        ingress = self.ports.get(job.ingress_port)
        pfc = ingress.pfc if ingress is not None else None
        if pfc is None:
            self.shared_used -= length
            return
        freed = pfc.release(q, length)
        self.shared_used -= freed
        self.headroom_used -= length - freed
        if pfc.xoff[q]:
            if self.xon_bytes is not None:
                xon = self.xon_bytes
            else:
                xon = max(0, int(self.alpha * (self.shared_bytes - self.shared_used)) - self.xon_offset)
            if pfc.needs_xon(q, xon):
                self._send_pfc(ingress, q, False, now)

    def _send_pfc(self, port: _Port, q: int, pause: bool, now: int) -> None:
        port.control.append(build_pfc_frame(port.mac, port.pfc.pause_frame_timers(q, pause, now)))
        self._refresh(port)
        if self.pfc_event is not None:
            self.pfc_event(now, port.number, q, pause, "tx")

    # ---- time ----

    def next_event_time(self) -> int | None:
        """When ``advance`` next has work to do (ns), or None if the TM is idle."""
        earliest = min((port.due for port in self._active), default=NEVER)
        if self.wd_next < earliest:
            earliest = self.wd_next
        if earliest == NEVER:
            return None
        return earliest if earliest > self.now else self.now

    def advance(self, now_ns: int) -> None:
        """Run every transmission, pause expiry, refresh and delayed delivery due by ``now_ns``,
        port by port in time order (ports interact through the shared buffer and PFC)."""
        active = self._active
        step = self._step
        while True:
            best = None
            best_due = now_ns + 1
            for port in active:
                due = port.due
                # ties: the lowest port number first, so the order never depends on the set's
                if due < best_due or due == best_due and best is not None and port.number < best.number:
                    best, best_due = port, due
            if self.wd_next <= now_ns and (best is None or self.wd_next <= best_due):
                if self.wd_next > self.now:      # the watchdog looks before ports due at the same time
                    self.now = self.wd_next
                self._watchdog(self.now)
                continue
            if best is None:
                break
            if best_due > self.now:
                self.now = best_due
            step(best, self.now)
        if now_ns > self.now:
            self.now = now_ns

    def _refresh(self, port: _Port) -> None:
        """Recompute ``port.due`` after its state changed; only ports with something due stay active."""
        pfc = port.pfc
        if port.control:
            due = port.busy_until
        elif port.nonempty:
            due = port.busy_until
            if pfc is not None and pfc.pause_horizon > due:
                # the earliest a non-empty queue may send: its pause's end
                ready = NEVER
                mask = port.nonempty
                for q in HIGHEST_FIRST:
                    if mask >> q & 1 and pfc.paused_until[q] < ready:
                        ready = pfc.paused_until[q]
                if ready > due:
                    due = ready
        else:
            due = NEVER
        if port.delay_line and port.delay_line[0][0] < due:
            due = port.delay_line[0][0]
        if pfc is not None and pfc.xoff_count:
            refresh = min(pfc.refresh_at)
            if refresh < due:
                due = refresh
        port.due = due
        if due == NEVER:
            self._active.discard(port)
        else:
            self._active.add(port)

    def _step(self, port: _Port, now: int) -> None:
        """Whatever is due on ``port`` at ``now``; then ``port.due`` is brought up to date."""
        line = port.delay_line
        while line and line[0][0] <= now:
            self.transmit(port.number, line.popleft()[1])
        pfc = port.pfc
        if pfc is not None and pfc.xoff_count:
            for q in range(NUM_PRIORITIES):
                if pfc.xoff[q] and pfc.refresh_at[q] <= now:
                    self._send_pfc(port, q, True, now)
        if now >= port.busy_until:
            if port.control:
                port.control_tx += 1
                self._wire(port, port.control.popleft(), now)
            elif port.nonempty:
                if self.dwrr or pfc is not None and pfc.pause_horizon > now:
                    q = self._pick(port, now)
                else:
                    q = HIGHEST_SET[port.nonempty]
                if q is not None:
                    self._dequeue(port, q, now)
        if port.nonempty or port.control or port.delay_line or pfc is not None and pfc.xoff_count:
            self._refresh(port)
        else:                                   # the common case: nothing left to do here
            port.due = NEVER
            self._active.discard(port)

    def _watchdog(self, now: int) -> None:
        """One look of the PFC watchdog at every watched queue (SONiC's detection and restoration)."""
        poll = self.wd_poll
        busy = False                            # something to look at next time
        for port in self.ports.values():
            watch = port.wd_watch
            if not watch:
                continue
            pfc = port.pfc
            seen, pfc.pause_seen = pfc.pause_seen, 0
            for q in range(NUM_PRIORITIES):
                if not watch >> q & 1:
                    continue
                if port.wd_stormed >> q & 1:
                    port.wd_left[q] = self.wd_restoration if seen >> q & 1 else port.wd_left[q] - poll
                    if port.wd_left[q] <= 0:
                        self._restore(port, q, now)
                    busy = True
                    continue
                paused = pfc.paused_until[q] > now
                stalled = paused and port.nonempty >> q & 1 and port.dequeued[q] == port.wd_deq[q]
                port.wd_deq[q] = port.dequeued[q]
                if stalled:
                    port.wd_left[q] -= poll
                    if port.wd_left[q] <= 0:
                        self._storm(port, q, now)
                else:
                    port.wd_left[q] = self.wd_detection
                busy = busy or paused
        self.wd_next = self.wd_next + poll if busy else NEVER

    def _storm(self, port: _Port, q: int, now: int) -> None:
        port.wd_stormed |= 1 << q
        port.wd_storms[q] += 1
        port.wd_left[q] = self.wd_restoration
        port.pfc.ignore_pauses(q, True, now)
        if self.pfc_event is not None:         # the pause in force no longer holds the queue
            self.pfc_event(now, port.number, q, False, "wd")
        flushed = 0
        if self.wd_drop:
            queue = port.queues[q]
            while queue:
                job = queue.popleft()[0]
                self._release(port, q, job, now)
                _count(port.drops[q], "pfcwd")
                flushed += 1
            port.nonempty &= ~(1 << q)
        log.warning("pfcwd: port %d priority %d: PFC storm detected (paused, no dequeue for %g ms); action %s, "
                    "%d packets flushed", port.number, q, self.wd_detection / 1e6,
                    "drop" if self.wd_drop else "forward", flushed)
        self._refresh(port)

    def _restore(self, port: _Port, q: int, now: int) -> None:
        port.wd_stormed &= ~(1 << q)
        port.wd_restores[q] += 1
        port.wd_left[q] = self.wd_detection
        port.pfc.ignore_pauses(q, False, now)
        log.info("pfcwd: port %d priority %d: restored (no pause frame for %g ms); %d packets dropped so far",
                 port.number, q, self.wd_restoration / 1e6, port.drops[q].get("pfcwd", 0))

    def _pick(self, port: _Port, now: int) -> int | None:
        """The queue to serve now, or None if every non-empty queue is paused."""
        pfc = port.pfc
        mask = port.nonempty
        if pfc is not None and pfc.pause_horizon > now:
            for q in range(NUM_PRIORITIES):
                if mask >> q & 1 and pfc.paused_until[q] > now:
                    mask &= ~(1 << q)
        if not mask:
            return None
        if not self.dwrr:
            return HIGHEST_SET[mask]
        if mask & self.strict_mask:
            return HIGHEST_SET[mask & self.strict_mask]
        # deficit round robin (Shreedhar & Varghese, SIGCOMM 1995), one packet per call
        while True:
            q = port.rr
            if mask >> q & 1:
                if not port.rr_credited:
                    port.deficit[q] += self.quantum[q]
                    port.rr_credited = True
                size = port.queues[q][0][0].length
                if size <= port.deficit[q]:
                    port.deficit[q] -= size
                    return q
            elif not port.nonempty >> q & 1:
                port.deficit[q] = 0       # an empty queue keeps no credit
            port.rr = (q + 1) % NUM_PRIORITIES
            port.rr_credited = False

    def _dequeue(self, port: _Port, q: int, now: int) -> None:
        queue = port.queues[q]
        job, enq_ns, enq_depth = queue.popleft()
        if not queue:
            port.nonempty &= ~(1 << q)
        port.dequeued[q] += 1
        if self._lossless_mask >> q & 1:
            self._release(port, q, job, now)
        else:                                   # _release's lossy case, inlined: once per frame
            port.qbytes[q] -= job.length
            self.shared_used -= job.length
        pipeline = self.pipeline
        if pipeline is None:
            _count(port.drops[q], "no_pipeline")
            return
        try:
            result = pipeline.egress_frame(job, now // 1000, enq_ns // 1000, enq_depth,
                                           (now - enq_ns) // 1000, len(queue))
        except Exception as exc:  # a program bug must cost one packet, not the switch
            _count(port.drops[q], "pipeline_error")
            if port.drops[q]["pipeline_error"] == 1:
                from fabriclab.v1model.runtime import packet_failure
                log.error("packet for port %d dropped in egress: %s (logged once)", port.number, packet_failure(exc))
            return
        if result.__class__ is bytes:      # the common case: one frame for this port
            self._wire(port, result, now)
        elif result is not None:
            number = port.number
            for out_port, frame in result.frames:
                if out_port == number:
                    self._wire(port, frame, now)
                else:
                    self.transmit(out_port, frame)
            for extra in result.jobs:
                self._admit(extra, now)

    def _wire(self, port: _Port, frame: bytes, now: int) -> None:
        start = now if now > port.busy_until else port.busy_until
        length = len(frame)
        port.busy_until = start + ((wire_bytes(length) * port.ns_per_byte_q16) >> 16)
        port.tx_frames += 1
        port.tx_bytes += length
        if port.delay_ns:
            port.delay_line.append((start + port.delay_ns, frame))   # _step refreshes the port
        else:
            self.transmit(port.number, frame)

    # ---- views ----

    def queue_depth(self, port: int, priority: int) -> int:
        return len(self.ports[port].queues[priority])

    def stats(self) -> dict:
        """Counters per port and priority, buffer use and the resolved config (JSON-ready)."""
        now = self.now
        ports = {}
        for number, port in sorted(self.ports.items()):
            pfc_stats = port.pfc.stats(now) if port.pfc is not None else None
            priorities = {}
            for q in range(NUM_PRIORITIES):
                entry = {"enqueued": port.enqueued[q], "dequeued": port.dequeued[q],
                         "qdepth": len(port.queues[q]), "qbytes": port.qbytes[q],
                         "max_qdepth": port.max_qdepth[q], "max_qbytes": port.max_qbytes[q],
                         "drops": dict(port.drops[q])}
                if pfc_stats is not None:
                    entry.update(pfc_stats["priorities"][q])
                    entry["pfcwd"] = ("stormed" if port.wd_stormed >> q & 1 else
                                      "operational" if port.wd_watch >> q & 1 else "off")
                    entry["pfcwd_storms"] = port.wd_storms[q]
                    entry["pfcwd_restorations"] = port.wd_restores[q]
                priorities[q] = entry
            ports[number] = {"rate_bps": port.rate_bps, "delay_ns": port.delay_ns, "tx_frames": port.tx_frames,
                             "tx_bytes": port.tx_bytes, "control_tx": port.control_tx,
                             "pause_rx": pfc_stats["pause_rx"] if pfc_stats else 0, "priorities": priorities}
        return {"now_ns": now,
                "buffer": {"shared_bytes": self.shared_bytes, "shared_used": self.shared_used,
                           "max_shared_used": self.max_shared_used, "headroom_used": self.headroom_used},
                "drops": dict(self.drops), "config": self.resolved.as_dict(), "ports": ports}


def _count(counter: dict[str, int], reason: str) -> None:
    counter[reason] = counter.get(reason, 0) + 1


def _default_mac(port: int) -> bytes:
    """A locally administered source MAC for PFC frames of a port whose MAC we were not told."""
    return bytes((0x02, 0x66, 0x6C, 0, (port >> 8) & 0xFF, port & 0xFF))


class _NativeLoader:
    """The native TM's class, built once per process (None with the reason when it cannot be)."""

    cls: type | None = None
    problem: str | None = None

    @classmethod
    def get(cls) -> type | None:
        if cls.cls is None and cls.problem is None:
            from fabriclab.compiler.native_build import NativeUnavailable, load_shipped
            try:
                cls.cls = _native_class(load_shipped(Path(__file__).resolve().parent / "native_tm.c").Core)
            except NativeUnavailable as exc:
                cls.problem = str(exc)
        return cls.cls


def _native_class(core: type) -> type:
    class NativeTrafficManager(core):
        """``TrafficManager`` in C (switch/native_tm.c): the same constructor, public methods and
        attributes (not the per-port internals) and the same stats()."""

        __slots__ = ()

        def __init__(self, resolved: ResolvedConfig, transmit: Callable[[int, bytes], None], pipeline=None,
                     now_ns: int = 0, macs: dict[int, bytes] | None = None):
            cfg = resolved.config
            macs = macs or {}
            wd = cfg.pfcwd
            ports = [(number, params.rate_bps, params.delay_ns, params.headroom_bytes,
                      bytes(macs.get(number, _default_mac(number))),
                      wd is not None and (wd.ports is None or number in wd.ports))
                     for number, params in resolved.ports.items()]
            watchdog = None if wd is None else (wd.action == "drop", round(wd.detection_s * 1e9),
                                                round(wd.restoration_s * 1e9), round(wd.poll_s * 1e9))
            super().__init__(resolved, transmit, pipeline, now_ns, cfg.lossless, float(cfg.alpha),
                             cfg.queue_limit_bytes, cfg.scheduler == "dwrr",
                             tuple(w * cfg.max_frame for w in cfg.weights), resolved.shared_bytes,
                             resolved.xoff_bytes, resolved.xon_bytes, resolved.xon_offset, cfg.pause_quanta, ports,
                             watchdog)

    return NativeTrafficManager


def native_traffic_manager_class() -> type | None:
    """The C implementation, or None if it cannot be built here (``native_problem()`` says why)."""
    return _NativeLoader.get()


def native_problem() -> str | None:
    _NativeLoader.get()
    return _NativeLoader.problem


def make_traffic_manager(resolved: ResolvedConfig, transmit: Callable[[int, bytes], None], pipeline=None,
                         now_ns: int = 0, macs: dict[int, bytes] | None = None, engine: str | None = None):
    """A traffic manager: the C one where it builds, else the Python reference.

    ``engine``: "native" (UserError if it cannot be built), "python", or "auto"; None means
    ``$FABRICLAB_ENGINE``, else "auto" (the same switch as the P4 engine's)."""
    from fabriclab.errors import UserError

    engine = engine or os.environ.get("FABRICLAB_ENGINE") or "auto"
    if engine not in ("auto", "native", "python"):
        raise UserError(f"unknown engine {engine!r} (choose from auto, native, python)")
    if engine != "python":
        native = native_traffic_manager_class()
        if native is not None:
            return native(resolved, transmit, pipeline, now_ns, macs)
        if engine == "native":
            raise UserError(f"the native traffic manager is not available: {native_problem()}")
        log.info("the traffic manager runs in Python: %s", native_problem())
    return TrafficManager(resolved, transmit, pipeline, now_ns, macs)
