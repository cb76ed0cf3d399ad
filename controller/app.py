"""``FabricController``: the os-ken application that programs a fabriclab fabric over P4Runtime
and keeps it routed.

Bring-up: it reads ``fabric.json`` and ``controller.json``, connects to every switch (as
primary, for the fabric's life), pushes the data-plane program, computes equal-cost routes and
writes them with each group's LB mode, the DSCP classes and the ECN profiles; then reports
``ready`` in the status file and raises ``EventFabricProgrammed``.

Then three loops run on hub threads (controller/README-like detail in docs/architecture.md):

* **repair** (always on): one long poll per switch on its runtime API's ``link_events``; a port
  losing carrier takes its link out of the graph, routes are recomputed on what is left and
  every switch whose tables change is rewritten (in parallel); carrier back restores them.
  Each repair is recorded with its detection and reprogramming time (``repairs``).
* **telemetry + policy**: every ``poll_interval_s`` one poll of all switches
  (``telemetry.py``), ``EventLinkLoad``, then the policy's ``decide`` and its writes.
* **digests**: heavy-flow reports from the data plane, for the ``elephant`` policy.

and the REST API (``rest.py``) when ``rest_port`` is set. Every write to the switches happens
under ``self.lock``, so repair, policy and REST never interleave their writes.

Importable under Ryu too (``ryu.base``); there the hub is eventlet, under which grpc blocks the
whole process, so the P4Runtime calls would have to move to eventlet.tpool. Under os-ken 4
(native threads, see runner.py) they simply run on hub threads.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    from os_ken.base import app_manager
    from os_ken.controller import event
    from os_ken.lib import hub
except ImportError:  # pragma: no cover - real Ryu
    from ryu.base import app_manager
    from ryu.controller import event
    from ryu.lib import hub

BaseApp = getattr(app_manager, "OSKenApp", None) or app_manager.RyuApp   # the same class under either name

from fabriclab.controller.fabric_rules import INGRESS, TableWrite, switch_rules
from fabriclab.controller.fabric_state import FabricState
from fabriclab.controller.policy import FabricView, FlowKey, GroupView, HeavyFlow, Pin, Policy, make_policy
from fabriclab.controller.routing import unreachable_pairs
from fabriclab.controller.settings import ControllerSettings
from fabriclab.controller.status import FAILED, READY, STARTING, write_status
from fabriclab.topologies.description import FabricDescription

log = logging.getLogger("fabriclab.controller")
WRITE_BATCH = 256              # updates per Write RPC
LINK_WAIT_S = 1.0              # one long poll of a switch's link events
HEAVY_DIGEST = "heavy_flow_t"  # fabric.p4's digest struct for heavy flows
HEAVY_REGISTER = "FabricIngress.heavy_bytes"


@dataclass
class ControllerConfig:
    description: FabricDescription
    settings: ControllerSettings
    status_path: Path
    program: Path
    bmv2: tuple[Path, Path] | None = None     # (p4c-bm2-ss JSON, P4Info text) for bmv2 switches

    @classmethod
    def load(cls, fabric: Path, settings: Path, status: Path, program: Path,
             bmv2: tuple[Path, Path] | None = None) -> "ControllerConfig":
        return cls(FabricDescription.load(fabric), ControllerSettings.load(settings), Path(status), Path(program),
                   bmv2)

    def pipeline(self) -> tuple[Any, bytes]:
        """(P4Info, p4_device_config) to push: fabriclab's compilation of the program for python
        switches (the device config is the P4 source), p4c's for bmv2 (the JSON)."""
        if self.bmv2 is not None:
            from finsy.proto import p4i
            from google.protobuf import text_format

            bmv2_json, p4info_text = self.bmv2
            return text_format.Parse(p4info_text.read_text(), p4i.P4Info()), bmv2_json.read_bytes()
        from fabriclab.compiler import driver
        from fabriclab.compiler.p4info import build_p4info
        from fabriclab.p4runtime.codec import pack_device_config

        compiled = driver.compile_file(str(self.program), [], {})
        return build_p4info(compiled.info), pack_device_config(str(self.program))


class EventFabricProgrammed(event.EventBase):
    """Every switch has its pipeline and routes."""

    def __init__(self, switches: dict[str, dict]):
        super().__init__()
        self.switches = switches


class EventLinkLoad(event.EventBase):
    """After every telemetry poll: (switch, port) -> LinkLoad of the link that port sends into."""

    def __init__(self, loads: dict, poll_ms: float):
        super().__init__()
        self.loads, self.poll_ms = loads, poll_ms


class EventPortStatus(event.EventBase):
    """A switch port lost or regained carrier (``up``); ``repair`` is the record, once done."""

    def __init__(self, switch: str, port: int, up: bool, repair: dict | None):
        super().__init__()
        self.switch, self.port, self.up, self.repair = switch, port, up, repair


class EventTableChanged(event.EventBase):
    """The controller rewrote tables of ``switches`` because of ``reason`` (repair, policy, rest)."""

    def __init__(self, reason: str, switches: dict[str, int]):
        super().__init__()
        self.reason, self.switches = reason, switches


class FabricController(BaseApp):
    _EVENTS = [EventFabricProgrammed, EventLinkLoad, EventPortStatus, EventTableChanged]

    def __init__(self, *args, config: ControllerConfig, **kwargs):
        super().__init__(*args, **kwargs)
        self.config = config
        self.settings = config.settings
        self.description = config.description
        self.clients: dict[str, Any] = {}
        self.state = FabricState(self.description, self.settings)
        self.policy: Policy = make_policy(self.settings.policy, self.settings.policy_params)
        self.telemetry = None
        self.lock = threading.RLock()
        self.repairs: list[dict] = []
        self.heavy: dict[FlowKey, tuple[HeavyFlow, float]] = {}    # key -> (report, when)
        self.pins: dict[FlowKey, dict] = {}                        # key -> {path, demand, at, bytes, moved}
        self.pinned_total = 0                                      # pins ever made
        self.rest = None
        self.finished = threading.Event()   # set when the app stops (or fails to program)
        self.failed = False
        self._pool = ThreadPoolExecutor(max_workers=min(8, max(1, len(self.description.switches))),
                                        thread_name_prefix="writer")

    def start(self) -> None:
        super().start()
        self.threads.append(hub.spawn(self._run))

    def stop(self) -> None:
        self.finished.set()
        if self.rest is not None:
            self.rest.stop()
        super().stop()
        if self.telemetry is not None:
            self.telemetry.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for client in self.clients.values():
            client.close()
        self.clients.clear()

    # -- bring-up ------------------------------------------------------------------------
    def _run(self) -> None:
        status = self.config.status_path
        write_status(status, STARTING)
        try:
            started = time.monotonic()
            summary = self.program_fabric()
            self._start_loops()
            details = {}
            if self.rest is not None:
                details["rest"] = self.rest.url
            write_status(status, READY, routes=sum(s["routes"] for s in summary.values()),
                         entries=sum(s["entries"] for s in summary.values()), switches=summary,
                         seconds=round(time.monotonic() - started, 3), **details)
            log.info("fabric programmed: %d switches", len(summary))
            self.send_event_to_observers(EventFabricProgrammed(summary))
        except Exception as exc:  # reported to whoever waits on the status file
            log.exception("programming the fabric failed")
            self.failed = True
            write_status(status, FAILED, error=f"{type(exc).__name__}: {exc}".splitlines()[0])
            self.finished.set()

    def program_fabric(self) -> dict[str, dict]:
        for switch, dest in unreachable_pairs(self.description):
            log.warning("no path from %s to %s: the fabric is partitioned", switch, dest)
        p4info, device_config = self.config.pipeline()
        route_writes = self.state.sync_routes(self.state.routes(), time.monotonic())

        def program(name: str) -> tuple[str, dict]:
            client = self._connect(name)
            client.set_pipeline_config(p4info, device_config)
            writes = switch_rules(self.description, name, self.settings) + route_writes.get(name, [])
            write_entries(client, writes)
            self._enable_heavy_reports(client)
            tables = self.state.tables[name]
            return name, {"routes": len(tables.routes), "groups": len(tables.groups), "entries": len(writes)}

        # Switches are separate processes: program them side by side.
        with ThreadPoolExecutor(max_workers=min(8, len(self.description.switches))) as pool:
            return dict(pool.map(program, [sw.name for sw in self.description.switches]))

    def _connect(self, name: str) -> Any:
        from fabriclab.p4runtime.client import P4RuntimeClient, P4RuntimeError

        sw = self.description.switch(name)
        deadline = time.monotonic() + self.settings.connect_timeout_s
        while True:
            client = P4RuntimeClient(sw.grpc_addr, device_id=sw.device_id, election_id=1)
            try:
                client.connect(fetch_p4info=False)
                break
            except P4RuntimeError as exc:
                client.close()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cannot reach switch {name} at {sw.grpc_addr}: {exc}") from None
                time.sleep(0.2)
        if not client.is_primary:
            client.close()
            raise RuntimeError(f"switch {name}: another controller is primary")
        self.clients[name] = client
        return client

    def _enable_heavy_reports(self, client: Any) -> None:
        """Heavy-flow digests stream from every switch; the threshold (0: off) is the policy's."""
        if any(d.preamble.name == HEAVY_DIGEST for d in client.names.p4info.digests):   # set with the pipeline
            client.enable_digest(HEAVY_DIGEST)
            write_entries(client, [self._heavy_threshold_write()])

    def _heavy_threshold_write(self) -> TableWrite:
        """Bytes per poll interval that make a flow heavy; 0 unless the policy wants reports."""
        threshold = 0
        fraction = getattr(self.policy, "threshold", None)
        if fraction is not None and self.policy.name == "elephant":
            rate = min((self.description.link_rate(h.name, 0) for h in self.description.hosts), default=0)
            threshold = max(1, round(fraction * rate * self.settings.poll_interval_s / 8))
        return TableWrite(f"{INGRESS}.heavy_config", {}, f"{INGRESS}.set_heavy_threshold", {"bytes": threshold},
                          default=True)

    # -- the loops ------------------------------------------------------------------------
    def _start_loops(self) -> None:
        from fabriclab.controller.telemetry import Telemetry

        self.telemetry = Telemetry(self.description, self.clients, self.settings.smoothing)
        for sw in self.description.switches:
            self.threads.append(hub.spawn(self._watch_links, sw.name))
            self.threads.append(hub.spawn(self._read_digests, sw.name))
        self.threads.append(hub.spawn(self._telemetry_loop))
        if self.settings.rest_port is not None:
            from fabriclab.controller.rest import RestServer

            self.rest = RestServer(self, self.settings.rest_host, self.settings.rest_port)
            self.rest.start()
            log.info("REST API on %s", self.rest.url)

    def _watch_links(self, name: str) -> None:
        """Long-poll one switch's carrier events; repair on each change."""
        from fabriclab.switch.runtime_api import RuntimeApiClient, default_api_addr

        sw = self.description.switch(name)
        seq = None
        api = None
        while not self.finished.is_set():
            try:
                if api is None:
                    api = RuntimeApiClient(default_api_addr(sw.grpc_addr), timeout=LINK_WAIT_S + 5)
                answer = api.call("link_events", since=seq, timeout=LINK_WAIT_S)
            except Exception as exc:
                if self.finished.is_set():
                    break
                log.debug("link events of %s: %s", name, exc)
                if api is not None:
                    api.close()
                    api = None
                self.finished.wait(0.5)
                continue
            received = time.monotonic_ns()
            if seq is None:      # first answer: the ports' state now
                for port, up in answer["up"].items():
                    if not up:
                        self.port_changed(name, int(port), False, received, received)
            for ev in answer["events"]:
                self.port_changed(name, ev["port"], ev["up"], ev["time_ns"], received)
            seq = answer["seq"]
        if api is not None:
            api.close()

    def port_changed(self, switch: str, port: int, up: bool, event_ns: int, received_ns: int) -> dict | None:
        """Repair: recompute routes with the link's new state and rewrite what changed."""
        if self.settings.repair is False:
            with self.lock:
                self._mark(switch, port, up)
            self.send_event_to_observers(EventPortStatus(switch, port, up, None))
            return None
        with self.lock:
            was_up = self.state.link_up(switch, port)
            self._mark(switch, port, up)
            if was_up == self.state.link_up(switch, port):
                record = None      # the other end of a link already reported
            else:
                writes = self.state.sync_routes(self.state.routes(), time.monotonic())
                for key in [k for k, pin in self.pins.items() if not all(self.state.link_up(s, p) for s, p in pin["path"])]:
                    self._merge(writes, self.state.unpin_writes(key))
                    del self.pins[key]
                counts = self.apply(writes)
                done = time.monotonic_ns()
                peer = self.description.switch_ports(switch).get(port, ("?", 0))
                record = {"link": [switch, peer[0]], "ports": [port, peer[1]], "state": "up" if up else "down",
                          "detected_ms": round((received_ns - event_ns) / 1e6, 3),
                          "reprogrammed_ms": round((done - received_ns) / 1e6, 3),
                          "repair_ms": round((done - event_ns) / 1e6, 3),
                          "switches": counts, "at": time.time()}
                self.repairs.append(record)
                log.info("link %s:%d - %s:%d %s: %d switches rewritten in %.1f ms", switch, port, peer[0], peer[1],
                         record["state"], len(counts), record["repair_ms"])
        self.send_event_to_observers(EventPortStatus(switch, port, up, record))
        if record is not None and record["switches"]:
            self.send_event_to_observers(EventTableChanged("repair", record["switches"]))
        return record

    def _mark(self, switch: str, port: int, up: bool) -> None:
        if up:
            self.state.down.discard((switch, port))
        else:
            self.state.down.add((switch, port))

    def _telemetry_loop(self) -> None:
        interval = self.settings.poll_interval_s
        next_poll = time.monotonic()
        failures = 0
        while not self.finished.wait(max(0.0, next_poll - time.monotonic())):
            next_poll += interval
            if next_poll < time.monotonic():
                next_poll = time.monotonic() + interval    # fell behind: do not poll back to back
            try:
                self.poll_once()
                failures = 0
            except Exception as exc:
                if self.finished.is_set():
                    return
                failures += 1     # e.g. a bmv2 switch, which has no runtime API: say so once
                (log.warning if failures == 1 else log.debug)("telemetry poll failed: %s", exc)

    def poll_once(self) -> None:
        loads = self.telemetry.poll()
        self.send_event_to_observers(EventLinkLoad(loads, self.telemetry.poll_ms))
        with self.lock:
            self._update_pins()
            view = self.view(loads)
            decision = self.policy.decide(view)
            writes: dict[str, list[TableWrite]] = {}
            now = time.monotonic()
            for (switch, gid), weights in decision.weights.items():
                group = self.state.tables[switch].group(gid)
                log.info("%s group %d: weights %s -> %s (%s)", switch, gid, group.weights, weights,
                         ", ".join(f"{m.neighbour} {view.loads[(switch, m.port)].util:.2f}" for m in group.members
                                   if (switch, m.port) in view.loads))
                writes.setdefault(switch, []).extend(self.state.weight_writes(group, weights, now))
            for key in decision.release:
                self._merge(writes, self.state.unpin_writes(key))
                self.pins.pop(key, None)
                log.info("released %s", key)
            for key, (path, demand) in decision.pin.items():
                self._merge(writes, self.state.pin_writes(key, path))
                self.pins[key] = {"path": path, "demand": demand, "at": now, "bytes": 0, "moved": now}
                self.pinned_total += 1
                self.heavy.pop(key, None)
                log.info("pinned %s to %s (%.1f Mbit/s)", key, " ".join(f"{s}:{p}" for s, p in path), demand / 1e6)
            counts = self.apply(writes) if writes else {}
            self._reset_heavy_counts()
        if counts:
            self.send_event_to_observers(EventTableChanged(f"policy {self.policy.name}", counts))

    def view(self, loads: dict) -> FabricView:
        now = time.monotonic()
        expiry = 3 * self.settings.poll_interval_s
        self.heavy = {k: v for k, v in self.heavy.items() if now - v[1] <= expiry}
        groups = [GroupView(sw, g.gid, g.members, g.weights, g.capacity, g.changed_at)
                  for sw, tables in self.state.tables.items() for g in tables.groups.values()
                  if any(hops == g.members for hops in tables.routes.values())]
        pins = {k: Pin(k, p["path"], p["demand"], p["at"], now - p["moved"]) for k, p in self.pins.items()}
        hosts = {h.ip: self.description.link_rate(h.name, 0) for h in self.description.hosts}
        return FabricView(now=now, loads=loads, groups=groups, heavy=[h for h, _ in self.heavy.values()], pins=pins,
                          paths=self.state.switch_paths, host_rate_bps=lambda ip: hosts.get(ip, 0))

    def _update_pins(self) -> None:
        """How long each pinned flow has been idle, from its flow_override entry's counter."""
        from fabriclab.controller.fabric_state import flow_match

        for key, pin in self.pins.items():
            switch = pin["path"][0][0]
            try:
                _, nbytes = self.clients[switch].read_direct_counter(f"{INGRESS}.flow_override", flow_match(key))
            except Exception:
                continue
            if nbytes != pin["bytes"]:
                pin["bytes"], pin["moved"] = nbytes, time.monotonic()

    def _read_digests(self, name: str) -> None:
        client = self.clients[name]
        while not self.finished.is_set():
            try:
                message = client.get_digest(timeout=0.5)
            except queue.Empty:
                continue
            except Exception:
                return
            for v in message.values:
                key = FlowKey(_ip(v["src_addr"]), _ip(v["dst_addr"]), v["protocol"], v["src_port"], v["dst_port"])
                dst = self._switch_of(key.dst)
                if dst is None or key in self.pins:
                    continue
                rate = v["bytes"] * 8 / self.settings.poll_interval_s
                with self.lock:
                    self.heavy[key] = (HeavyFlow(key, name, dst, rate), time.monotonic())

    def _switch_of(self, ip: str) -> str | None:
        for host in self.description.hosts:
            if host.ip == ip:
                return host.switch
        return None

    def _reset_heavy_counts(self) -> None:
        if self.policy.name != "elephant":
            return
        for client in self.clients.values():
            try:
                client.write_register(HEAVY_REGISTER, None, 0)
            except Exception as exc:
                log.debug("resetting heavy counts: %s", exc)

    # -- writing ---------------------------------------------------------------------------
    @staticmethod
    def _merge(into: dict[str, list[TableWrite]], more: dict[str, list[TableWrite]]) -> None:
        for switch, writes in more.items():
            into.setdefault(switch, []).extend(writes)

    def apply(self, writes: dict[str, list[TableWrite]]) -> dict[str, int]:
        """Write to every switch side by side; switch -> number of updates. Caller holds the lock."""
        list(self._pool.map(lambda item: write_entries(self.clients[item[0]], item[1]), writes.items()))
        return {switch: len(w) for switch, w in writes.items()}

    def set_policy(self, name: str, params: dict | None = None) -> Policy:
        policy = make_policy(name, params)
        with self.lock:
            self.policy = policy
            self.settings.policy, self.settings.policy_params = name, dict(params or {})
            threshold = self._heavy_threshold_write()
            for client in self.clients.values():
                write_entries(client, [threshold])
            for key in list(self.pins):
                if name != "elephant":
                    self.apply(self.state.unpin_writes(key))
                    del self.pins[key]
        log.info("policy now %s", name)
        return policy

    def set_lb(self, mode: str, switch: str | None = None, group: int | None = None) -> int:
        with self.lock:
            writes: dict[str, list[TableWrite]] = {}
            for name, tables in self.state.tables.items():
                if switch is not None and name != switch:
                    continue
                for g in tables.groups.values():
                    if group is None or g.gid == group:
                        g.mode = mode
                        writes.setdefault(name, []).append(self.state.group_entry(g))
            if switch is None and group is None:
                self.settings.lb = mode
            counts = self.apply(writes)
        self.send_event_to_observers(EventTableChanged("rest lb", counts))
        return sum(counts.values())


def write_entries(client: Any, writes: list[TableWrite]) -> None:
    """Defaults as MODIFY, entries with their op, in batches (one Write RPC each)."""
    from finsy.proto import p4r

    updates = []
    for w in writes:
        if w.op == "DELETE":
            entry = client.table_entry(w.table, w.match)
        else:
            entry = client.table_entry(w.table, None if w.default else w.match, w.action, w.params, default=w.default)
        kind = p4r.Update.Type.MODIFY if w.default else p4r.Update.Type.Value(w.op)
        updates.append(p4r.Update(type=kind, entity=p4r.Entity(table_entry=entry)))
    for start in range(0, len(updates), WRITE_BATCH):
        client.write(updates[start:start + WRITE_BATCH])


def _ip(value: int) -> str:
    return ".".join(str((value >> shift) & 0xFF) for shift in (24, 16, 8, 0))

