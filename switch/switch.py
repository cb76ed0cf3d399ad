"""``fabriclab switch``: the software switch process, shaped like simple_switch_grpc.

    fabriclab switch --p4 PROGRAM.p4|COMPILED_DIR -i 1@veth1 -i 2@veth2 [--device-id N]
                     [--grpc-addr 127.0.0.1:9559] [--api-addr ADDR] [--cpu-port N]
                     [--config switch.yaml] [--pcap DIR] [--stats-file FILE] [--pfc-log FILE]
                     [--log-level LEVEL]

Without ``--p4`` it forwards nothing until a controller sends SetForwardingPipelineConfig.
Besides P4Runtime it serves the runtime API (``runtime_api.py``: live TM stats and thresholds
for ``switch-cli`` and scenario samplers) on the gRPC port + 1000 unless ``--api-addr`` says otherwise.

One thread runs the data plane (of this switch, or of every switch of a worker process, see
``serve_switches`` and switch/worker.py): an epoll loop over the port sockets, a wake-up eventfd (packet-outs
from gRPC threads) and a timerfd armed at the traffic manager's next event with nanosecond
precision (epoll's own timeout is whole milliseconds, too coarse to pace a 100 Mbit/s port); an
event due within SPIN_NS is polled for instead, which spares the timer's system calls at high
rates. Each wake-up reads up to RX_BUDGET frames per port and takes ``handle.lock`` once for the
whole batch — the received frames, packet-outs and the TM's transmissions — so a P4Runtime write
from a gRPC thread lands between two batches, never inside a packet. Transmissions are staged in
each port's transmit ring and leave with one system call per port at the end of the turn (sooner
every ``ports.TX_BATCH`` frames, and at once for PFC/PAUSE frames). Every frame enters the TM
at its kernel receive timestamp, so the TM serves its queues between the arrivals of one batch
as a port at line rate would; the TM's clock follows the arrivals and moves to "now" only on a
turn without any (see serve()). Every frame's lateness against its scheduled departure and every
wake-up's lag go to the fidelity monitor (fidelity.py, ``stats()["fidelity"]``). SIGTERM/SIGINT
unwind the loop; sockets, pcaps and the server are closed.

The ``Switch`` object is the handle the P4Runtime server is given:

* ``lock`` (re-entrant): hold it around any read or write of ``pipeline.state``;
* ``pipeline``: the running ``Pipeline`` or None; ``set_pipeline(compiled)`` instantiates a
  ``CompiledProgram`` and swaps it in (queued packets of the old program are dropped);
* ``tm``, ``ports``, ``cpu_port``, ``stats()``;
* ``inject_packet_out(frame)``: thread-safe; the frame (packet_out header included) enters
  ingress on the CPU port at the loop's next turn;
* ``packet_in_sink``: called, outside the lock, with every frame the pipeline sends to the CPU port.
"""
from __future__ import annotations

import argparse
import collections
import ctypes
import gc
import json
import logging
import os
import select
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from fabriclab.errors import UserError
from fabriclab.v1model.loader import instantiate
from fabriclab.v1model.runtime import packet_failure

log = logging.getLogger(__name__)

RX_BUDGET = 256                # frames read per port per wake-up: the ring is drained in a few
                               # turns, and a busy port cannot starve the others for long
SPIN_NS = 10_000               # a TM event sooner than this is polled for, not timer-armed: a timer
                               # round trip costs a few µs; a longer spin would take CPU that the
                               # other switches of a fabric need on a small machine
BACKLOG_NS = 200_000           # how far the TM's clock stays behind now when no frame arrives (see serve)
RESYNC_AFTER_NS = 20_000_000   # readable yet nothing at our ring slot this long: resync the walk
STATS_INTERVAL_NS = 1_000_000_000


class _Timer:
    """A CLOCK_MONOTONIC timerfd, armed at absolute nanosecond times (Python 3.11 has no os.timerfd)."""

    CLOCK_MONOTONIC = 1
    TFD_NONBLOCK_CLOEXEC = 0o4000 | 0o2000000
    TFD_TIMER_ABSTIME = 1

    class _Spec(ctypes.Structure):
        _fields_ = [("interval_s", ctypes.c_long), ("interval_ns", ctypes.c_long),
                    ("value_s", ctypes.c_long), ("value_ns", ctypes.c_long)]

    def __init__(self):
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.timerfd_create(self.CLOCK_MONOTONIC, self.TFD_NONBLOCK_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self.armed_at: int | None = None

    def arm(self, at_ns: int | None) -> None:
        """Make sure we wake by monotonic time ``at_ns`` (None: nothing to wait for).

        An already armed earlier time is kept: waking early costs one empty turn of the loop,
        re-arming costs a system call on almost every turn (the TM's next event moves with
        every frame sent)."""
        if at_ns is None or (self.armed_at is not None and self.armed_at <= at_ns):
            return
        self.armed_at = at_ns
        spec = self._Spec(0, 0, *divmod(max(at_ns, 1), 1_000_000_000))
        if self._libc.timerfd_settime(self.fd, self.TFD_TIMER_ABSTIME, ctypes.byref(spec), None) < 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    def clear(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            pass
        self.armed_at = None

    def close(self) -> None:
        os.close(self.fd)


class Switch:
    """Ports + pipeline + traffic manager, and the handle other threads use (see module doc)."""

    def __init__(self, config, interfaces: list[tuple[int, str]], cpu_port: int | None = None,
                 pcap_dir: str | None = None, name: str = "switch"):
        from fabriclab.switch.carrier import CarrierMonitor
        from fabriclab.switch.fidelity import SwitchMonitor
        from fabriclab.switch.ports import Port
        from fabriclab.switch.traffic_manager import make_traffic_manager

        self.name = name              # in log lines: a worker process runs many switches
        self.lock = threading.RLock()
        self.cpu_port = cpu_port
        self.pipeline = None
        self.packet_in_sink: Callable[[bytes], None] | None = None
        self.drops: dict[str, int] = {}
        self.ports: dict = {}
        self.carrier = None
        self.link_events: list[dict] = []          # carrier changes: {"seq", "port", "up", "time_ns"}
        self.link_changed = threading.Condition()
        resolved = config.resolve(sorted(number for number, _ in interfaces))
        try:
            for number, ifname in interfaces:
                self.ports[number] = Port(number, ifname, pcap_dir, config.max_frame,
                                          resolved.ports[number].rate_bps)
            self.carrier = CarrierMonitor({n: p.ifname for n, p in self.ports.items()})
        except BaseException:
            self.close()
            raise
        self.tm = make_traffic_manager(resolved, self._transmit, now_ns=time.monotonic_ns(),
                                       macs={n: p.mac for n, p in self.ports.items()})
        if cpu_port is not None:
            self.tm.add_unshaped_port(cpu_port)
        self.monitor = SwitchMonitor(max((p.rate_bps for p in resolved.ports.values()), default=config.rate_bps),
                                     config.max_frame, config.response_time_s, BACKLOG_NS, config.scale)
        self._scheduled = self.monitor.scheduled
        self._packet_outs: collections.deque[bytes] = collections.deque()
        self._packet_ins: list[bytes] = []
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._stop = threading.Event()
        self._pfc_log = None
        self.next_event: int | None = None       # when the TM next needs a turn (monotonic ns, see turn)
        self._empty_since: dict = {}             # port -> since when it is readable, yet our ring slot empty
        self.down = {n for n, up in self.carrier.up.items() if not up}   # ports without carrier: never sent into

    # ---- the handle ----

    def set_pipeline(self, compiled) -> None:
        """Instantiate ``compiled`` (a CompiledProgram) and make it the running program."""
        pipeline = instantiate(compiled)
        pipeline.cpu_port = self.cpu_port
        with self.lock:
            self.tm.set_pipeline(pipeline)
            self.pipeline = pipeline
        os.eventfd_write(self._wake_fd, 1)   # the flush may have queued PFC resumes: let the loop look
        log.info("%s: pipeline %s installed", self.name, pipeline.info.name)

    def inject_packet_out(self, frame: bytes) -> None:
        """Queue a controller's frame to enter ingress on the CPU port (any thread)."""
        self._packet_outs.append(frame)
        os.eventfd_write(self._wake_fd, 1)

    def stop(self) -> None:
        """Ask the loop to return (any thread)."""
        self._stop.set()
        os.eventfd_write(self._wake_fd, 1)

    def stats(self) -> dict:
        with self.lock:
            pipeline = self.pipeline
            return {"program": pipeline.info.name if pipeline else None,
                    "engine": pipeline.engine.name if pipeline else None,
                    "ports": {n: {**p.stats(), "up": n not in self.down} for n, p in sorted(self.ports.items())},
                    "drops": dict(self.drops), "tm": self.tm.stats(), "fidelity": self.monitor.stats()}

    def wait_link_events(self, since: int | None, timeout: float) -> dict:
        """Carrier changes after event number ``since`` (None: none, just the state), waiting up
        to ``timeout`` seconds for one; with every port's state now and the last event number."""
        with self.link_changed:
            if since is not None:
                self.link_changed.wait_for(lambda: self.link_events and self.link_events[-1]["seq"] > since, timeout)
            events = [e for e in self.link_events if since is not None and e["seq"] > since]
            return {"seq": self.link_events[-1]["seq"] if self.link_events else 0, "events": events,
                    "up": {n: n not in self.down for n in sorted(self.ports)}}

    def _carrier_changed(self, now_ns: int) -> None:
        changes = self.carrier.read()
        if not changes:
            return
        with self.link_changed:
            for port, up in changes:
                (self.down.discard if up else self.down.add)(port)
                seq = self.link_events[-1]["seq"] + 1 if self.link_events else 1
                self.link_events.append({"seq": seq, "port": port, "up": up, "time_ns": now_ns})
                log.info("%s: port %d (%s) %s", self.name, port, self.ports[port].ifname, "up" if up else "down: carrier lost")
            del self.link_events[:-1000]
            self.link_changed.notify_all()

    # ---- the data plane ----

    def _transmit(self, port: int, frame: bytes) -> None:
        out = self.ports.get(port)
        if out is not None:
            if self.down and port in self.down:   # no carrier: the frame would be lost on the wire
                _count(self.drops, "port_down")
                return
            out.stage(frame)
            self._scheduled.append(self.tm.now)   # the frame's scheduled departure (fidelity.py)
            if frame[12:14] == b"\x88\x08":   # PFC/PAUSE: the peer must hear it now, not at the turn's end
                out.flush()
        elif port == self.cpu_port:
            self._packet_ins.append(frame)
        else:
            _count(self.drops, "no_such_port")

    def _ingress_batch(self, port: int, frames: list[tuple[int, bytes]], to_monotonic: int, latest: int) -> None:
        """``_ingress`` for a batch of (kernel stamp, frame) from one port: each frame enters at
        its own arrival time (on the monotonic clock, never later than ``latest``), so the TM
        sends what a real port would have sent between two arrivals of one batch."""
        pipeline, tm = self.pipeline, self.tm
        enqueue = tm.enqueue
        for stamp, frame in frames:
            at = stamp + to_monotonic
            if at > latest:
                at = latest
            if frame[12] == 0x88 and frame[13] == 0x08:
                tm.receive_control(port, frame, at)
                continue
            if pipeline is None:
                _count(self.drops, "no_pipeline")
                continue
            try:
                jobs = pipeline.ingress(frame, port, at // 1000)
            except Exception as exc:
                self._pipeline_failed(port, exc)
                continue
            for job in jobs:
                enqueue(job, at)

    def _pipeline_failed(self, port: int, exc: Exception) -> None:
        _count(self.drops, "pipeline_error")
        if self.drops["pipeline_error"] == 1:
            log.error("%s: packet from port %d dropped: %s (logged once; drops['pipeline_error'] counts them)",
                      self.name, port, packet_failure(exc))

    def _ingress(self, port: int, frame: bytes, now_ns: int) -> None:
        tm = self.tm
        if frame[12] == 0x88 and frame[13] == 0x08:   # MAC Control: PFC/PAUSE belong to the MAC, not to P4
            tm.receive_control(port, frame, now_ns)
            return
        pipeline = self.pipeline
        if pipeline is None:
            _count(self.drops, "no_pipeline")
            return
        try:
            jobs = pipeline.ingress(frame, port, now_ns // 1000)
        except Exception as exc:
            self._pipeline_failed(port, exc)
            return
        for job in jobs:
            tm.enqueue(job, now_ns)

    def log_pfc_events(self, path: str) -> None:
        """Append every PFC decision to ``path`` as 'TIME_NS PORT PRIORITY pause|resume tx|rx|wd'."""
        self._pfc_log = open(path, "a", buffering=1 << 16)

        def write(now_ns: int, port: int, priority: int, pause: bool, direction: str) -> None:
            self._pfc_log.write(f"{now_ns} {port} {priority} {'pause' if pause else 'resume'} {direction}\n")

        self.tm.pfc_event = write

    def serve(self, stats_file: str | None = None) -> None:
        """Run the data plane until ``stop()`` (or a signal unwinds it)."""
        serve_switches([(self, stats_file)])

    def turn(self, events: list[tuple[int, object]], now: int, to_monotonic: int) -> None:
        """One turn of the loop for this switch: read the ports that had ``events`` ((epoll
        mask, port), or (mask, _WAKE | _CARRIER) for its eventfd and netlink socket), move the TM
        on, flush the rings."""
        tm, monitor = self.tm, self.monitor
        idle = True                      # no port had frames for us this turn
        with self.lock:
            started = time.monotonic_ns()   # not ``now``: switches sharing the loop took their turns first
            if self.next_event is not None and started >= self.next_event:   # woke for the TM: how late?
                monitor.loop_lag.add((started - self.next_event) // 1000)
            for mask, port in events:
                if port is _WAKE:
                    os.eventfd_read(self._wake_fd)
                    self._drain_packet_outs(now - BACKLOG_NS)   # on the TM's clock, as below
                    continue
                if port is _CARRIER:
                    self._carrier_changed(now)
                    continue
                if mask & select.EPOLLERR:
                    port.clear_error()
                frames = port.receive_stamped(RX_BUDGET)
                if frames or mask & select.EPOLLIN:
                    idle = False     # readable yet empty: frames wait (see resync below)
                if frames:   # no stamp is later than now, unless the clock stepped
                    self._ingress_batch(port.number, frames, to_monotonic, time.monotonic_ns())
                empty_since = self._empty_since
                if frames or not mask & select.EPOLLIN:
                    empty_since[port] = None
                elif empty_since.get(port) is None:
                    empty_since[port] = now
                elif now - empty_since[port] > RESYNC_AFTER_NS:
                    # a slot the kernel is still copying into is empty for
                    # microseconds; this long means our position is lost
                    port.resync()
                    empty_since[port] = None
            # A frame is stamped when the kernel takes it in, and may reach the ring
            # hundreds of µs later (softirq backlog on a busy CPU); had the TM's clock
            # run past its stamp, it would enter at the clock's time, bunched with its
            # successors into one burst. So a turn with arrivals leaves the clock at the
            # last one (sending what is due by then), and a turn without moves it only to
            # BACKLOG_NS before now: queued frames leave that much later, a constant delay.
            tm.advance(now - BACKLOG_NS if idle else tm.now)
            next_event = tm.next_event_time()
            self.next_event = None if next_event is None else next_event + BACKLOG_NS
            for port in self.ports.values():
                port.flush()
            monitor.departed(time.monotonic_ns())
        if self._packet_ins:
            self._deliver_packet_ins()

    def turn_failed(self) -> None:
        """Something other than the P4 program failed in ``turn`` (the TM, a port): count it,
        log it once, drop what was in hand, and go on; the switches sharing the loop go on too."""
        _count(self.drops, "switch_error")
        if self.drops["switch_error"] == 1:
            log.exception("%s: a turn of the data plane failed (logged once; counted as switch_error)", self.name)
        self.next_event = None           # wait for the next frame rather than retrying at once
        try:
            for port in self.ports.values():
                port.flush()
        except Exception:
            pass                         # already counted

    def _flush_files(self, stats_file: str | None) -> None:
        """Make what happened so far visible to readers of the stats file, pcaps and PFC log."""
        if stats_file:
            self.write_stats(stats_file)
        for port in self.ports.values():
            if port.pcap is not None:
                port.pcap.flush()
        if self._pfc_log is not None:
            self._pfc_log.flush()

    def _drain_packet_outs(self, now: int) -> None:
        while self._packet_outs:
            frame = self._packet_outs.popleft()
            if self.cpu_port is None:
                _count(self.drops, "packet_out_without_cpu_port")
                continue
            self._ingress(self.cpu_port, frame, now)

    def _deliver_packet_ins(self) -> None:
        frames, self._packet_ins = self._packet_ins, []
        sink = self.packet_in_sink
        if sink is None:
            self.drops["packet_in_no_controller"] = self.drops.get("packet_in_no_controller", 0) + len(frames)
            return
        for frame in frames:
            sink(frame)

    def write_stats(self, path: str) -> None:
        """Write ``stats()`` as JSON, atomically (readers never see half a file)."""
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(self.stats(), f, indent=1)
        os.replace(tmp, path)

    def close(self) -> None:
        for port in self.ports.values():
            port.close()
        if getattr(self, "carrier", None) is not None:
            self.carrier.close()
            self.carrier = None
        if getattr(self, "_pfc_log", None) is not None:
            self._pfc_log.close()
            self._pfc_log = None
        if getattr(self, "_wake_fd", None) is not None:
            os.close(self._wake_fd)
            self._wake_fd = None


def _count(counter: dict[str, int], reason: str) -> None:
    counter[reason] = counter.get(reason, 0) + 1


_WAKE, _CARRIER = "wake", "carrier"     # turn(): events of a switch's eventfd and netlink socket


def serve_switches(members: list[tuple[Switch, str | None]]) -> None:
    """The data plane of one or more switches (with their stats files) on this thread, until
    each is stopped or a signal unwinds it: one epoll over every port, each switch's wake-up
    eventfd and one timerfd armed at the soonest TM event of any switch (see the module doc).
    A switch whose turn fails is counted and logged (``Switch.turn_failed``); the others go on."""
    timer = _Timer()
    poller = select.epoll()
    owner: dict[int, tuple[Switch, object]] = {}        # fd -> (switch, port or _WAKE or _CARRIER)
    stats_files = dict((id(switch), stats_file) for switch, stats_file in members)
    running = [switch for switch, _ in members]
    for switch in running:
        switch.next_event = None
        for port in switch.ports.values():
            owner[port.fileno()] = (switch, port)
        owner[switch._wake_fd] = (switch, _WAKE)
        owner[switch.carrier.fileno()] = (switch, _CARRIER)
    for fd in owner:
        poller.register(fd, select.EPOLLIN)
    poller.register(timer.fd, select.EPOLLIN)
    monotonic_ns, time_ns = time.monotonic_ns, time.time_ns
    next_stats = monotonic_ns() + STATS_INTERVAL_NS
    for switch in running:
        log.info("%s ready: ports %s", switch.name,
                 ", ".join(f"{n}@{p.ifname}" for n, p in sorted(switch.ports.items())))
    # what exists now (the program, its tables, gRPC) lives as long as the switch: keep it out
    # of the collector's full passes, which would otherwise stall the loop for milliseconds
    gc.freeze()
    try:
        while running:
            soonest = min((sw.next_event for sw in running if sw.next_event is not None), default=None)
            if soonest is None:
                timeout = 1.0
            elif soonest - monotonic_ns() <= SPIN_NS:
                timeout = 0        # sooner than a timer round trip: look again straight away
            else:
                timer.arm(soonest)
                timeout = 1.0
            try:
                events = poller.poll(timeout)
            except InterruptedError:
                continue
            now = monotonic_ns()
            to_monotonic = now - time_ns()   # ring timestamps are CLOCK_REALTIME
            work: dict[Switch, list] = {}
            for fd, mask in events:
                if fd == timer.fd:
                    timer.clear()
                    continue
                switch, port = owner[fd]
                work.setdefault(switch, []).append((mask, port))
            for switch in running:
                got = work.get(switch)
                if got is None and (switch.next_event is None or switch.next_event > now):
                    continue
                try:
                    switch.turn(got or (), now, to_monotonic)
                except Exception:
                    switch.turn_failed()
            if now >= next_stats:
                for switch in running:
                    switch._flush_files(stats_files[id(switch)])
                next_stats = now + STATS_INTERVAL_NS
            for switch in [sw for sw in running if sw._stop.is_set()]:
                running.remove(switch)
                _leave_loop(switch, poller, stats_files[id(switch)])
    finally:
        for switch in running:
            _leave_loop(switch, poller, stats_files[id(switch)])
        poller.close()
        timer.close()


def _leave_loop(switch: Switch, poller: select.epoll, stats_file: str | None) -> None:
    for port in switch.ports.values():
        port.flush()
        poller.unregister(port.fileno())
    poller.unregister(switch._wake_fd)
    poller.unregister(switch.carrier.fileno())
    switch._flush_files(stats_file)


# ---- the subcommand ----

def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--p4", metavar="PROGRAM", help="P4 program (.p4) or compiled output directory; "
                        "without it, wait for SetForwardingPipelineConfig")
    parser.add_argument("-i", "--interface", action="append", default=[], metavar="PORT@IFNAME",
                        help="attach interface IFNAME as port PORT (repeat)")
    parser.add_argument("--device-id", type=int, default=0, help="P4Runtime device id (default 0)")
    parser.add_argument("--grpc-addr", default="127.0.0.1:9559",
                        help="P4Runtime server address (default 127.0.0.1:9559; 'none' to run without)")
    parser.add_argument("--api-addr", help="runtime API address (default: the gRPC port + 1000; 'none' to run without)")
    parser.add_argument("--cpu-port", type=int, help="port number whose frames become packet-ins")
    parser.add_argument("--config", metavar="SWITCH_YAML", help="ports, buffer, scheduler and PFC settings")
    parser.add_argument("--pcap", metavar="DIR", help="write one pcap per port (rx and tx) into DIR")
    parser.add_argument("--stats-file", metavar="FILE", help="write counters as JSON every second and at exit")
    parser.add_argument("--pfc-log", metavar="FILE", help="append one line per PFC frame sent or received: "
                        "'TIME_NS PORT PRIORITY pause|resume tx|rx|wd' (monotonic clock; "
                        "wd: the PFC watchdog lifted a pause)")
    parser.add_argument("--name", default="switch", help="the switch's name in log lines (default: switch)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--engine", choices=("auto", "native", "python"),
                        help="native (C, built with gcc) or python; auto (default, or $FABRICLAB_ENGINE): "
                             "native where it builds")


def _load_program(path: str):
    from fabriclab.compiler import driver

    if not os.path.exists(path):
        raise UserError(f"--p4 {path}: no such file or directory")
    return driver.load(path)   # a CompileError is reported by run()


def api_addr_for(addr: str | None, grpc_addr: str) -> str | None:
    """The runtime API address of a switch: ``addr`` as given, else the gRPC port + 1000 (port 0
    with port 0); None when disabled."""
    from fabriclab.switch.runtime_api import default_api_addr, split_addr

    if addr is None:
        if grpc_addr.lower() == "none":
            return None
        host, port = split_addr(grpc_addr)
        addr = f"{host}:0" if port == 0 else default_api_addr(grpc_addr)
    return None if addr.lower() == "none" else addr


def open_switch(args: argparse.Namespace) -> Switch:
    """A switch as ``fabriclab switch`` options describe it, with its program (``--p4``) and
    PFC log: ready to serve. UserError (CompileError for a bad program) on bad options."""
    from fabriclab.switch.ports import parse_interface_arg
    from fabriclab.switch.switch_config import load_config

    if not args.interface:
        raise UserError("give at least one port: -i PORT@IFNAME")
    interfaces = [parse_interface_arg(text) for text in args.interface]
    numbers = [n for n, _ in interfaces]
    if len(set(numbers)) != len(numbers):
        raise UserError("each port number may be given once")
    if len({ifname for _, ifname in interfaces}) != len(interfaces):
        raise UserError("each interface may be attached once")
    if args.cpu_port is not None and not 0 <= args.cpu_port < 511:
        raise UserError(f"--cpu-port {args.cpu_port}: must be in 0..510 (511 is v1model's drop port)")
    if args.cpu_port is not None and args.cpu_port in numbers:
        raise UserError(f"--cpu-port {args.cpu_port} is also a data port")
    if args.pcap:
        try:
            Path(args.pcap).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--pcap {args.pcap}: {exc.strerror}") from None
    config = load_config(args.config)
    compiled = _load_program(args.p4) if args.p4 else None
    switch = Switch(config, interfaces, args.cpu_port, args.pcap, name=args.name)
    try:
        if args.pfc_log:
            try:
                switch.log_pfc_events(args.pfc_log)
            except OSError as exc:
                raise UserError(f"--pfc-log {args.pfc_log}: {exc.strerror}") from None
        if compiled is not None:
            switch.set_pipeline(compiled)
    except BaseException:
        switch.close()
        raise
    return switch


def start_servers(grpc_server, api_server) -> None:
    """Start the P4Runtime and runtime API servers (either may be None); UserError when one
    cannot listen."""
    if grpc_server is not None:
        try:
            grpc_server.start()
        except OSError as exc:
            raise UserError(f"--grpc-addr: {exc}") from None
        for device_id, port in grpc_server.ports.items():
            log.info("P4Runtime server on %s (port %d), device id %d", grpc_server.addrs[device_id], port, device_id)
    if api_server is not None:
        try:
            api_server.start()
        except OSError as exc:
            raise UserError(f"runtime API address: {exc.strerror or exc}") from None
        log.info("runtime API on port(s) %s", ", ".join(map(str, api_server.ports)))


def stop_servers(grpc_server, api_server) -> None:
    for server in (grpc_server, api_server):
        if server is not None:
            server.stop()


def run(args: argparse.Namespace) -> int:
    from fabriclab.compiler.diagnostics import CompileError
    from fabriclab.p4runtime.server import P4RuntimeServer
    from fabriclab.switch.runtime_api import RuntimeApiServer

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    if args.engine:    # read by instantiate, also for programs loaded over P4Runtime
        os.environ["FABRICLAB_ENGINE"] = args.engine
    try:
        switch = open_switch(args)
    except CompileError as exc:
        print(exc.format(), file=sys.stderr)
        return exc.exit_code
    grpc_server = api_server = None
    try:
        if args.grpc_addr.lower() != "none":
            grpc_server = P4RuntimeServer(switch, args.grpc_addr, args.device_id)
        api_addr = api_addr_for(args.api_addr, args.grpc_addr)
        if api_addr is not None:
            api_server = RuntimeApiServer(switch, api_addr)
        start_servers(grpc_server, api_server)
        if grpc_server is not None:
            switch.packet_in_sink = grpc_server.packet_in
        switch.serve(args.stats_file)
    except KeyboardInterrupt:  # SIGTERM/SIGINT: the normal way to stop a switch
        log.info("stopping")
    finally:
        stop_servers(grpc_server, api_server)
        switch.close()
    return 0
