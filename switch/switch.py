"""``fabriclab switch``: the software switch process, shaped like simple_switch_grpc.

    fabriclab switch --p4 PROGRAM.p4|COMPILED_DIR -i 1@veth1 -i 2@veth2 [--device-id N]
                     [--grpc-addr 127.0.0.1:9559] [--api-addr ADDR] [--cpu-port N]
                     [--config switch.yaml] [--pcap DIR] [--stats-file FILE] [--pfc-log FILE]
                     [--log-level LEVEL]

Without ``--p4`` it forwards nothing until a controller sends SetForwardingPipelineConfig.
Besides P4Runtime it serves the runtime API (``runtime_api.py``: live TM stats and thresholds
for ``switch-cli`` and scenario samplers) on the gRPC port + 1000 unless ``--api-addr`` says otherwise.

One thread runs the data plane: an epoll loop over the port sockets, a wake-up eventfd (packet-outs
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
                 pcap_dir: str | None = None):
        from fabriclab.switch.carrier import CarrierMonitor
        from fabriclab.switch.fidelity import SwitchMonitor
        from fabriclab.switch.ports import Port
        from fabriclab.switch.traffic_manager import make_traffic_manager

        self.lock = threading.RLock()
        self.cpu_port = cpu_port
        self.pipeline = None
        self.packet_in_sink: Callable[[bytes], None] | None = None
        self.drops: dict[str, int] = {}
        self.ports: dict = {}
        self.carrier = None
        self.link_events: list[dict] = []          # carrier changes: {"seq", "port", "up", "time_ns"}
        self.link_changed = threading.Condition()
        try:
            for number, ifname in interfaces:
                self.ports[number] = Port(number, ifname, pcap_dir, config.max_frame)
            self.carrier = CarrierMonitor({n: p.ifname for n, p in self.ports.items()})
        except BaseException:
            self.close()
            raise
        resolved = config.resolve(sorted(self.ports))
        self.tm = make_traffic_manager(resolved, self._transmit, now_ns=time.monotonic_ns(),
                                       macs={n: p.mac for n, p in self.ports.items()})
        if cpu_port is not None:
            self.tm.add_unshaped_port(cpu_port)
        self.monitor = SwitchMonitor(max((p.rate_bps for p in resolved.ports.values()), default=config.rate_bps),
                                     config.max_frame, config.response_time_s, BACKLOG_NS)
        self._scheduled = self.monitor.scheduled
        self._packet_outs: collections.deque[bytes] = collections.deque()
        self._packet_ins: list[bytes] = []
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._stop = threading.Event()
        self._pfc_log = None
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
        log.info("pipeline %s installed", pipeline.info.name)

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
                log.info("port %d (%s) %s", port, self.ports[port].ifname, "up" if up else "down: carrier lost")
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
            except Exception:
                self._pipeline_failed(port)
                continue
            for job in jobs:
                enqueue(job, at)

    def _pipeline_failed(self, port: int) -> None:
        _count(self.drops, "pipeline_error")
        if self.drops["pipeline_error"] == 1:
            log.exception("the pipeline failed on a packet from port %d (logged once)", port)

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
        except Exception:
            self._pipeline_failed(port)
            return
        for job in jobs:
            tm.enqueue(job, now_ns)

    def log_pfc_events(self, path: str) -> None:
        """Append every PFC decision to ``path`` as 'TIME_NS PORT PRIORITY pause|resume tx|rx'."""
        self._pfc_log = open(path, "a", buffering=1 << 16)

        def write(now_ns: int, port: int, priority: int, pause: bool, direction: str) -> None:
            self._pfc_log.write(f"{now_ns} {port} {priority} {'pause' if pause else 'resume'} {direction}\n")

        self.tm.pfc_event = write

    def serve(self, stats_file: str | None = None) -> None:
        """Run the data plane until ``stop()`` (or a signal unwinds it)."""
        timer = _Timer()
        poller = select.epoll()
        by_fd = {p.fileno(): p for p in self.ports.values()}
        for fd in by_fd:
            poller.register(fd, select.EPOLLIN)
        poller.register(self._wake_fd, select.EPOLLIN)
        poller.register(timer.fd, select.EPOLLIN)
        carrier_fd = self.carrier.fileno()
        poller.register(carrier_fd, select.EPOLLIN)
        empty_since: dict[int, int | None] = dict.fromkeys(by_fd)   # readable, yet our ring slot empty
        tm, monitor = self.tm, self.monitor
        ingress_batch = self._ingress_batch
        ports = tuple(self.ports.values())
        monotonic_ns, time_ns = time.monotonic_ns, time.time_ns
        next_stats = monotonic_ns() + STATS_INTERVAL_NS
        log.info("switch ready: ports %s", ", ".join(f"{n}@{p.ifname}" for n, p in sorted(self.ports.items())))
        next_event = None
        # what exists now (the program, its tables, gRPC) lives as long as the switch: keep it out
        # of the collector's full passes, which would otherwise stall the loop for milliseconds
        gc.freeze()
        try:
            while not self._stop.is_set():
                if next_event is None:
                    timeout = 1.0
                elif next_event - monotonic_ns() <= SPIN_NS:
                    timeout = 0        # sooner than a timer round trip: look again straight away
                else:
                    timer.arm(next_event)
                    timeout = 1.0
                try:
                    events = poller.poll(timeout)
                except InterruptedError:
                    continue
                now = monotonic_ns()
                to_monotonic = now - time_ns()   # ring timestamps are CLOCK_REALTIME
                idle = True                      # no port had frames for us this turn
                with self.lock:
                    if next_event is not None and now >= next_event:   # woke for the TM: how late?
                        monitor.loop_lag.add((now - next_event) // 1000)
                    for fd, mask in events:
                        port = by_fd.get(fd)
                        if port is not None:
                            if mask & select.EPOLLERR:
                                port.clear_error()
                            number = port.number
                            frames = port.receive_stamped(RX_BUDGET)
                            if frames or mask & select.EPOLLIN:
                                idle = False     # readable yet empty: frames wait (see resync below)
                            if frames:   # no stamp is later than now, unless the clock stepped
                                ingress_batch(number, frames, to_monotonic, monotonic_ns())
                            if frames or not mask & select.EPOLLIN:
                                empty_since[fd] = None
                            elif empty_since[fd] is None:
                                empty_since[fd] = now
                            elif now - empty_since[fd] > RESYNC_AFTER_NS:
                                # a slot the kernel is still copying into is empty for
                                # microseconds; this long means our position is lost
                                port.resync()
                                empty_since[fd] = None
                        elif fd == self._wake_fd:
                            os.eventfd_read(self._wake_fd)
                            self._drain_packet_outs(now - BACKLOG_NS)   # on the TM's clock, as below
                        elif fd == carrier_fd:
                            self._carrier_changed(now)
                        else:
                            timer.clear()
                    # A frame is stamped when the kernel takes it in, and may reach the ring
                    # hundreds of µs later (softirq backlog on a busy CPU); had the TM's clock
                    # run past its stamp, it would enter at the clock's time, bunched with its
                    # successors into one burst. So a turn with arrivals leaves the clock at the
                    # last one (sending what is due by then), and a turn without moves it only to
                    # BACKLOG_NS before now: queued frames leave that much later, a constant delay.
                    tm.advance(now - BACKLOG_NS if idle else tm.now)
                    next_event = tm.next_event_time()
                    if next_event is not None:
                        next_event += BACKLOG_NS
                    for port in ports:
                        port.flush()
                    monitor.departed(monotonic_ns())
                if self._packet_ins:
                    self._deliver_packet_ins()
                if now >= next_stats:
                    self._flush_files(stats_file)
                    next_stats = now + STATS_INTERVAL_NS
        finally:
            for port in ports:
                port.flush()
            poller.close()
            timer.close()
            self._flush_files(stats_file)

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
                        "'TIME_NS PORT PRIORITY pause|resume tx|rx' (monotonic clock)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--engine", choices=("auto", "native", "python"),
                        help="native (C, built with gcc) or python; auto (default, or $FABRICLAB_ENGINE): "
                             "native where it builds")


def _load_program(path: str):
    from fabriclab.compiler import driver

    if not os.path.exists(path):
        raise UserError(f"--p4 {path}: no such file or directory")
    return driver.load(path)   # a CompileError is reported by run()


def _start_p4runtime(switch: Switch, addr: str, device_id: int):
    """The P4Runtime server, or None if disabled."""
    if addr.lower() == "none":
        return None
    from fabriclab.p4runtime.server import P4RuntimeServer

    server = P4RuntimeServer(switch, addr, device_id)
    try:
        server.start()
    except OSError as exc:
        raise UserError(f"--grpc-addr {addr}: {exc}") from None
    switch.packet_in_sink = server.packet_in
    log.info("P4Runtime server on %s (port %d), device id %d", addr, server.port, device_id)
    return server


def _start_runtime_api(switch: Switch, addr: str | None, grpc_addr: str):
    """The runtime API server (TM stats and thresholds), or None if disabled."""
    from fabriclab.switch.runtime_api import RuntimeApiServer, default_api_addr, split_addr

    if addr is None:
        if grpc_addr.lower() == "none":
            return None
        host, port = split_addr(grpc_addr)
        addr = f"{host}:0" if port == 0 else default_api_addr(grpc_addr)
    if addr.lower() == "none":
        return None
    server = RuntimeApiServer(switch, addr)
    try:
        server.start()
    except OSError as exc:
        raise UserError(f"runtime API address {addr}: {exc.strerror or exc}") from None
    log.info("runtime API on %s (port %d)", addr, server.port)
    return server


def run(args: argparse.Namespace) -> int:
    from fabriclab.compiler.diagnostics import CompileError
    from fabriclab.switch.ports import parse_interface_arg
    from fabriclab.switch.switch_config import load_config

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s: %(message)s")
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
    if args.engine:    # read by CompiledProgram.instantiate, also for programs loaded over P4Runtime
        os.environ["FABRICLAB_ENGINE"] = args.engine
    try:
        compiled = _load_program(args.p4) if args.p4 else None
    except CompileError as exc:
        print(exc.format(), file=sys.stderr)
        return exc.exit_code
    switch = Switch(config, interfaces, args.cpu_port, args.pcap)
    servers = []
    try:
        if args.pfc_log:
            try:
                switch.log_pfc_events(args.pfc_log)
            except OSError as exc:
                raise UserError(f"--pfc-log {args.pfc_log}: {exc.strerror}") from None
        if compiled is not None:
            switch.set_pipeline(compiled)
        servers.append(_start_p4runtime(switch, args.grpc_addr, args.device_id))
        servers.append(_start_runtime_api(switch, args.api_addr, args.grpc_addr))
        switch.serve(args.stats_file)
    except KeyboardInterrupt:  # SIGTERM/SIGINT: the normal way to stop a switch
        log.info("stopping")
    finally:
        for server in servers:
            if server is not None:
                server.stop()
        switch.close()
    return 0
