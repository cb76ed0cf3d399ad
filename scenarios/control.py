"""The parts of a scenario run that involve the control plane: the timed link events
(``events: [{at: 2s, link: [l1, s1], state: down}]``), the controller's own figures read from
its REST API before the fabric goes down (repairs, policy, pinned flows, poll time), and the
adaptive-routing figures computed from the flows: aggregate elephant throughput against the
ideal, and mice completion times.

Naming convention, as with ``victim``: traffic entries whose name starts with ``elephant`` are
the elephants, those starting with ``mice`` the mice.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Any

from fabriclab.errors import UserError


def check_events(events: list[dict], description: Any) -> None:
    """Each event names two linked switches of the topology (before anything starts)."""
    for i, ev in enumerate(events):
        a, b = ev["link"]
        for node in (a, b):
            if not description.is_switch(node):
                raise UserError(f"events[{i}]: {node!r} is not a switch of this topology "
                                f"(switches: {', '.join(s.name for s in description.switches)})")
        if not any({link.node1, link.node2} == {a, b} for link in description.links):
            raise UserError(f"events[{i}]: {a} and {b} are not linked")


class LinkEvents(threading.Thread):
    """Takes links down and up at their times (seconds after ``start()``), as Mininet's
    ``link X Y down|up`` does: both interfaces of every link between the two nodes."""

    def __init__(self, network: Any, events: list[dict]):
        super().__init__(daemon=True, name="link-events")
        self.network, self.events = network, sorted(events, key=lambda e: e["at"])
        self.done: list[dict] = []
        self.error: str | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        for ev in self.events:
            if self._stop_event.wait(max(0.0, t0 + ev["at"] - time.monotonic())):
                return
            try:
                self.network.net.configLinkStatus(ev["link"][0], ev["link"][1], ev["state"])
            except Exception as exc:  # reported with the variant's results
                self.error = f"link {' '.join(ev['link'])} {ev['state']}: {exc}"
                return
            self.done.append({**ev, "done_s": round(time.monotonic() - t0, 3)})

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def controller_figures(network: Any) -> dict:
    """What the controller reports about the run (while the fabric is still up)."""
    from fabriclab.controller.rest import rest_call

    url = network.rest_url
    if not url:
        return {"repairs": [], "repair_ms": None}
    try:
        _, fabric = rest_call(url, "GET", "/fabric")
        _, flows = rest_call(url, "GET", "/flows")
    except OSError:
        return {"repairs": [], "repair_ms": None}
    repairs = fabric.get("repairs", [])
    down = [r["repair_ms"] for r in repairs if r["state"] == "down" and r["switches"]]
    figures = {"repairs": repairs, "repair_ms": max(down) if down else None, "policy": fabric.get("policy"),
               "poll_ms": fabric.get("poll_ms")}
    if fabric.get("policy") == "elephant":
        figures["pinned_flows"] = flows.get("pinned_total", 0)
    return figures


def link_down_drops(samples: list) -> int | None:
    """Frames the switches did not send because the port had no carrier (last sample)."""
    if not samples:
        return None
    return sum(stats.get("drops", {}).get("port_down", 0) for stats in samples[-1][1].values())


def adaptive_figures(plan: Any, flows: list, rate_bps: float, mtu: int) -> dict:
    """``elephants_mbps``: all elephant bytes over the time from the first elephant's start to
    the last one's end; ``ideal_mbps``: the same if each ran alone at line rate (its ideal FCT:
    frames serialised with every header); ``mice_fct_p99_ms`` over every mice flow."""
    from fabriclab.traffic.metrics import ideal_fct

    by_id: dict[int, list] = {}
    for record in flows:
        by_id.setdefault(record.flow, []).append(record)
    out: dict[str, Any] = {}
    elephants = [(name, e) for name, e in plan.entries.items() if name.startswith("elephant")]
    records = [r for _, e in elephants for fid in e["flows"] for r in by_id.get(fid, [])]
    if records:
        span = max(r.end for r in records) - min(r.start for r in records)
        total = sum(r.bytes for r in records)
        ideal_span = max(ideal_fct(e["size"], rate_bps, mtu) for _, e in elephants)
        out["elephants_mbps"] = total * 8 / span / 1e6 if span > 0 else None
        out["ideal_mbps"] = sum(e["size"] for _, e in elephants) * 8 / ideal_span / 1e6
        out["elephants_of_ideal"] = out["elephants_mbps"] / out["ideal_mbps"] if out["elephants_mbps"] else None
    mice = sorted(r.fct for name, e in plan.entries.items() if name.startswith("mice")
                  for fid in e["flows"] for r in by_id.get(fid, []))
    if mice:
        out["mice_fct_p99_ms"] = mice[min(len(mice) - 1, math.ceil(0.99 * len(mice)) - 1)] * 1e3
        out["mice_fct_p50_ms"] = mice[(len(mice) - 1) // 2] * 1e3
    return out
