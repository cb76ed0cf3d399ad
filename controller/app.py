"""``FabricController``: the os-ken application that programs a fabriclab fabric over P4Runtime.

It reads ``fabric.json`` and ``controller.json``, connects to every switch (as primary, and
stays connected for the fabric's life), pushes the data-plane program, computes equal-cost
routes and writes them with each group's LB mode, the DSCP classes and the ECN profiles. Then
it reports ``ready`` in the status file and raises ``EventFabricProgrammed`` for other os-ken
apps. PFC and traffic-manager settings travel in each switch's ``switch.yaml`` at start.

Importable under Ryu too (``ryu.base``); there the hub is eventlet, under which grpc blocks the
whole process, so the P4Runtime calls would have to move to eventlet.tpool. Under os-ken 4
(native threads, see runner.py) they simply run on hub threads.
"""
from __future__ import annotations

import logging
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

from fabriclab.controller.fabric_rules import SwitchRules, TableWrite, switch_rules
from fabriclab.controller.routing import compute_routes, unreachable_pairs
from fabriclab.controller.settings import ControllerSettings
from fabriclab.controller.status import FAILED, READY, STARTING, write_status
from fabriclab.topologies.description import FabricDescription

log = logging.getLogger("fabriclab.controller")
WRITE_BATCH = 256              # updates per Write RPC


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


class FabricController(app_manager.OSKenApp):
    _EVENTS = [EventFabricProgrammed]

    def __init__(self, *args, config: ControllerConfig, **kwargs):
        super().__init__(*args, **kwargs)
        self.config = config
        self.clients: dict[str, Any] = {}
        self.rules: dict[str, SwitchRules] = {}
        self.finished = threading.Event()   # set when the app stops (or fails to program)
        self.failed = False

    def start(self) -> None:
        super().start()
        self.threads.append(hub.spawn(self._program_fabric))

    def stop(self) -> None:
        self.finished.set()
        super().stop()
        for client in self.clients.values():
            client.close()
        self.clients.clear()

    # -- programming -----------------------------------------------------------------------
    def _program_fabric(self) -> None:
        status = self.config.status_path
        write_status(status, STARTING)
        try:
            started = time.monotonic()
            summary = self.program_fabric()
            write_status(status, READY, routes=sum(s["routes"] for s in summary.values()),
                         entries=sum(s["entries"] for s in summary.values()), switches=summary,
                         seconds=round(time.monotonic() - started, 3))
            log.info("fabric programmed: %d switches", len(summary))
            self.send_event_to_observers(EventFabricProgrammed(summary))
        except Exception as exc:  # reported to whoever waits on the status file
            log.exception("programming the fabric failed")
            self.failed = True
            write_status(status, FAILED, error=f"{type(exc).__name__}: {exc}".splitlines()[0])
            self.finished.set()

    def program_fabric(self) -> dict[str, dict]:
        description = self.config.description
        for switch, dest in unreachable_pairs(description):
            log.warning("no path from %s to %s: the fabric is partitioned", switch, dest)
        p4info, device_config = self.config.pipeline()
        routes = compute_routes(description)
        self.rules = {sw.name: switch_rules(description, sw.name, routes[sw.name], self.config.settings)
                      for sw in description.switches}

        def program(name: str) -> tuple[str, dict]:
            client = self._connect(name)
            client.set_pipeline_config(p4info, device_config)
            rules = self.rules[name]
            write_entries(client, rules.writes)
            return name, {"routes": rules.routes, "groups": len(rules.groups), "entries": len(rules.writes)}

        # Switches are separate processes: program them side by side.
        with ThreadPoolExecutor(max_workers=min(8, len(description.switches))) as pool:
            return dict(pool.map(program, [sw.name for sw in description.switches]))

    def _connect(self, name: str) -> Any:
        from fabriclab.p4runtime.client import P4RuntimeClient, P4RuntimeError

        sw = self.config.description.switch(name)
        deadline = time.monotonic() + self.config.settings.connect_timeout_s
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


def write_entries(client: Any, writes: list[TableWrite]) -> None:
    """Defaults as MODIFY, entries as INSERT, in batches (one Write RPC each)."""
    from finsy.proto import p4r

    updates = []
    for w in writes:
        entry = client.table_entry(w.table, None if w.default else w.match, w.action, w.params, default=w.default)
        kind = p4r.Update.Type.MODIFY if w.default else p4r.Update.Type.INSERT
        updates.append(p4r.Update(type=kind, entity=p4r.Entity(table_entry=entry)))
    for start in range(0, len(updates), WRITE_BATCH):
        client.write(updates[start:start + WRITE_BATCH])
