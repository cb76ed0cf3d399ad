"""The controller's REST API, in the manner of Ryu's ofctl_rest / rest_router: a WSGI
application (WebOb requests, a Routes mapper — the two libraries Ryu's ``app.wsgi`` is built
on; os-ken 4 no longer ships that module) served by a threaded WSGI server on a hub thread.

    GET  /fabric                      switches, links (state, load per direction), policy, repairs
    GET  /switches/{name}/ports       per port: peer, carrier, load, queues per priority, PFC
    GET  /groups                      per switch: next-hop groups, members, weights, LB mode
    GET  /paths?src=h1_1&dst=h2_1     the paths traffic between two hosts takes now, with shares
    GET  /flows                       pinned elephants (and how many were ever pinned)
    PUT  /policy   {"policy": "wcmp", "params": {...}}
    PUT  /lb       {"mode": "spray", "switch": "l1", "group": 1}   (switch and group optional)

JSON in and out. A bad request gets a 4xx with ``{"error": "..."}``; nothing answers with a
traceback (an unexpected failure is a 500 with a one-line error, logged in controller.log).
"""
from __future__ import annotations

import json
import logging
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from routes import Mapper
from webob import Request, Response

from fabriclab.controller.settings import LB_MODES
from fabriclab.errors import UserError

log = logging.getLogger("fabriclab.controller.rest")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class FabricRestApi:
    """The WSGI application over a running ``FabricController``."""

    def __init__(self, controller: Any):
        self.controller = controller
        self.mapper = Mapper()
        for name, path, method in (("fabric", "/fabric", "GET"), ("ports", "/switches/{name}/ports", "GET"),
                                   ("groups", "/groups", "GET"), ("paths", "/paths", "GET"),
                                   ("flows", "/flows", "GET"), ("put_policy", "/policy", "PUT"),
                                   ("put_lb", "/lb", "PUT")):
            self.mapper.connect(name, path, action=name, conditions={"method": [method]})
        self.known_paths = Mapper()
        for path in ("/fabric", "/switches/{name}/ports", "/groups", "/paths", "/flows", "/policy", "/lb"):
            self.known_paths.connect(path, path)

    def __call__(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        try:
            match = self.mapper.match(environ=environ)
            if match is None:
                if self.known_paths.match(request.path_info) is not None:
                    raise ApiError(405, f"{request.method} not allowed on {request.path_info}")
                raise ApiError(404, f"no such resource {request.path_info}")
            action = match.pop("action")
            body = getattr(self, action)(request, **{k: v for k, v in match.items() if k != "controller"})
            response = Response(json_body=body, status=200)
        except ApiError as exc:
            response = Response(json_body={"error": str(exc)}, status=exc.status)
        except UserError as exc:
            response = Response(json_body={"error": str(exc)}, status=400)
        except Exception as exc:
            log.exception("REST %s %s failed", request.method, request.path_info)
            response = Response(json_body={"error": f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]},
                                status=500)
        return response(environ, start_response)

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _json(request: Request) -> dict:
        try:
            data = json.loads(request.body or b"{}")
        except ValueError as exc:
            raise ApiError(400, f"body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "body must be a JSON object")
        return data

    def _link_json(self, link) -> dict:
        c = self.controller
        loads = c.telemetry.loads if c.telemetry is not None else {}
        out = {"ends": [{"node": link.node1, "port": link.port1}, {"node": link.node2, "port": link.port2}],
               "rate_bps": link.rate_bps}
        switch_end = (link.node1, link.port1) if c.description.is_switch(link.node1) else (link.node2, link.port2)
        out["state"] = "up" if c.state.link_up(*switch_end) else "down"
        load = {}
        for node, port, peer in ((link.node1, link.port1, link.node2), (link.node2, link.port2, link.node1)):
            if (node, port) in loads:
                load[f"{node}->{peer}"] = round(loads[(node, port)].util, 4)
        out["load"] = load
        return out

    # -- resources ---------------------------------------------------------------------------
    def fabric(self, request: Request) -> dict:
        c = self.controller
        d = c.description
        return {"policy": c.policy.name, "lb": c.settings.lb, "poll_interval_s": c.settings.poll_interval_s,
                "poll_ms": None if c.telemetry is None or c.telemetry.poll_ms is None else round(c.telemetry.poll_ms, 2),
                "repair": c.settings.repair,
                "switches": [{"name": sw.name, "role": sw.role, "device_id": sw.device_id,
                              "connected": sw.name in c.clients} for sw in d.switches],
                "hosts": [{"name": h.name, "ip": h.ip, "switch": h.switch, "port": h.switch_port} for h in d.hosts],
                "links": [self._link_json(link) for link in d.links],
                "repairs": list(c.repairs)}

    def ports(self, request: Request, name: str) -> dict:
        c = self.controller
        if not c.description.is_switch(name):
            raise ApiError(404, f"no switch named {name!r}")
        sample = c.telemetry.samples.get(name) if c.telemetry is not None else None
        loads = c.telemetry.loads if c.telemetry is not None else {}
        out = {}
        for port, (peer, peer_port) in c.description.switch_ports(name).items():
            entry: dict[str, Any] = {"peer": peer, "peer_port": peer_port, "up": c.state.link_up(name, port),
                                     "rate_bps": c.description.link_rate(name, port)}
            load = loads.get((name, port))
            if load is not None:
                entry.update(util=round(load.util, 4), tx_bps=round(load.tx_bps))
            if sample is not None and port in sample.ports:
                s = sample.ports[port]
                entry.update(carrier=s.up, tx_bytes=s.tx_bytes, rx_bytes=s.rx_bytes,
                             queues={str(p): {"bytes": b, "packets": s.queue_pkts.get(p, 0)}
                                     for p, b in sorted(s.queue_bytes.items()) if b or s.queue_pkts.get(p)},
                             pfc_paused=s.paused)
            out[str(port)] = entry
        return {"switch": name, "ports": out}

    def groups(self, request: Request) -> dict:
        c = self.controller
        with c.lock:
            out = {}
            for name, tables in c.state.tables.items():
                prefixes: dict[tuple, list[str]] = {}
                for prefix, hops in tables.routes.items():
                    prefixes.setdefault(hops, []).append(prefix)
                out[name] = [{"group": g.gid, "mode": g.mode, "prefixes": sorted(prefixes.get(g.members, [])),
                              "members": [{"port": m.port, "neighbour": m.neighbour, "weight": w,
                                           "up": c.state.link_up(name, m.port)}
                                          for m, w in zip(g.members, g.weights)]}
                             for g in sorted(tables.groups.values(), key=lambda g: g.gid)]
            return {"switches": out}

    def paths(self, request: Request) -> dict:
        c = self.controller
        src, dst = request.GET.get("src"), request.GET.get("dst")
        if not src or not dst:
            raise ApiError(400, "give both hosts: /paths?src=HOST&dst=HOST")
        known = {h.name for h in c.description.hosts}
        for host in (src, dst):
            if host not in known:
                raise ApiError(404, f"no host named {host!r}")
        with c.lock:
            paths = c.state.paths(src, dst)
            src_ip, dst_ip = c.description.host(src).ip, c.description.host(dst).ip
            pinned = [{"flow": str(k), "path": [s for s, _ in p["path"]]} for k, p in c.pins.items()
                      if k.src == src_ip and k.dst == dst_ip]
        return {"src": src, "dst": dst, "paths": paths, "pinned": pinned}

    def flows(self, request: Request) -> dict:
        c = self.controller
        import time

        now = time.monotonic()
        with c.lock:
            return {"policy": c.policy.name, "pinned_total": c.pinned_total,
                    "flows": [{"src": k.src, "dst": k.dst, "protocol": k.proto, "src_port": k.sport, "dst_port": k.dport,
                               "path": [[s, port] for s, port in p["path"]], "demand_bps": round(p["demand"]),
                               "pinned_s": round(now - p["at"], 3), "idle_s": round(now - p["moved"], 3),
                               "bytes": p["bytes"]} for k, p in c.pins.items()]}

    def put_policy(self, request: Request) -> dict:
        data = self._json(request)
        name = data.get("policy")
        if not isinstance(name, str):
            raise ApiError(400, 'give {"policy": NAME} (and optionally "params": {...})')
        params = data.get("params", {})
        if not isinstance(params, dict):
            raise ApiError(400, "params must be a JSON object")
        policy = self.controller.set_policy(name, params)
        return {"policy": policy.name, "params": params}

    def put_lb(self, request: Request) -> dict:
        data = self._json(request)
        mode, switch, group = data.get("mode"), data.get("switch"), data.get("group")
        if mode not in LB_MODES:
            raise ApiError(400, f"mode must be one of {', '.join(LB_MODES)}")
        if switch is not None and not self.controller.description.is_switch(switch):
            raise ApiError(404, f"no switch named {switch!r}")
        if group is not None and (not isinstance(group, int) or isinstance(group, bool)):
            raise ApiError(400, "group must be a group number (see GET /groups)")
        changed = self.controller.set_lb(mode, switch, group)
        if not changed:
            raise ApiError(404, "no such group")
        return {"mode": mode, "switch": switch, "group": group, "groups_changed": changed}


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:   # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)


class RestServer:
    def __init__(self, controller: Any, host: str, port: int):
        try:
            self.server = make_server(host, port, FabricRestApi(controller), server_class=_ThreadingServer,
                                      handler_class=_QuietHandler)
        except OSError as exc:
            raise UserError(f"REST API on {host}:{port}: {exc.strerror or exc}") from None
        self.host, self.port = host, self.server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="rest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
            self._thread = None
        self.server.server_close()


def rest_call(base_url: str, method: str, path: str, body: dict | None = None,
              timeout: float = 10.0) -> tuple[int, dict]:
    """(HTTP status, JSON answer) of one request to the API (for the CLI, scenarios, bench)."""
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {"error": exc.reason}
