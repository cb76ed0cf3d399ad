"""The switch's runtime API: live traffic-manager stats and config, port counters, PFC state
and register/counter dumps, for humans (``switch-cli``) and scenario samplers.

Protocol: newline-delimited JSON over TCP on localhost (default: the gRPC port + 1000, see
:func:`default_api_addr`). Each request is one line ``{"cmd": NAME, ...args}``; each answer
is one line ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "one line"}``. A
connection may carry any number of requests. JSON object keys are strings, so port and
priority numbers come back as ``"1"``, ``"3"``.

Commands:
  info                     program name, ports, CPU port
  stats                    ``handle.stats()``: per-port rx/tx, switch drops, full TM stats
                           (per port and priority: queue depth, drops, PFC counters and state)
  tm_config                the traffic manager's live thresholds and its resolved config
  set_tm  {alpha, queue_limit, xoff_bytes, xon_bytes}
                           change thresholds live (``queue_limit``/``xoff_bytes``: "dynamic" = None)
  registers [name]         every register's cells (or one register's)
  counters [name]          every indirect counter's (packets, bytes) cells
  link_events {since, timeout}
                           carrier changes after event number ``since`` (a long poll: waits up to
                           ``timeout`` s, at most 30, for one): ``{"seq", "events": [{"seq",
                           "port", "up", "time_ns" (CLOCK_MONOTONIC)}], "up": {port: bool}}``;
                           ``since`` null answers at once with the state and the last number
"""
from __future__ import annotations

import json
import os
import selectors
import socket
import socketserver
import threading
from typing import Any

from fabriclab.errors import UserError

MAX_LINE = 1 << 20


def default_api_addr(grpc_addr: str) -> str:
    """The runtime API address that goes with a P4Runtime address: same host, port + 1000."""
    host, _, port = grpc_addr.rpartition(":")
    try:
        return f"{host or '127.0.0.1'}:{int(port) + 1000}"
    except ValueError:
        raise UserError(f"bad address {grpc_addr!r} (expected HOST:PORT)") from None


def split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    try:
        return host.strip("[]") or "127.0.0.1", int(port)
    except ValueError:
        raise UserError(f"bad address {addr!r} (expected HOST:PORT)") from None


class RuntimeApiError(Exception):
    """The switch refused a runtime API request (``str`` is its one-line reason)."""


class _Commands:
    """The command table over a switch handle (``lock``, ``pipeline``, ``tm``, ``ports``,
    ``cpu_port``, ``stats()``)."""

    def __init__(self, handle: Any):
        self.handle = handle

    def info(self) -> dict:
        pipeline = self.handle.pipeline
        return {"program": pipeline.info.name if pipeline is not None else None,
                "ports": sorted(self.handle.ports), "cpu_port": self.handle.cpu_port}

    def stats(self) -> dict:
        return self.handle.stats()

    def tm_config(self) -> dict:
        tm = self.handle.tm
        with self.handle.lock:
            return {"alpha": tm.alpha, "queue_limit": tm.queue_limit, "xoff_bytes": tm.xoff_bytes,
                    "xon_bytes": tm.xon_bytes, "shared_bytes": tm.shared_bytes,
                    "lossless": sorted(tm.lossless), "resolved": tm.resolved.as_dict()}

    def set_tm(self, alpha: float | None = None, queue_limit: Any = None, xoff_bytes: Any = None,
               xon_bytes: Any = None) -> dict:
        """Thresholds the TM reads on every admission; anything else needs a restart."""
        tm = self.handle.tm
        with self.handle.lock:
            if alpha is not None:
                if not isinstance(alpha, (int, float)) or alpha <= 0:
                    raise RuntimeApiError(f"alpha must be a positive number, got {alpha!r}")
                tm.alpha = float(alpha)
            if queue_limit is not None:
                tm.queue_limit = _bytes_or_dynamic("queue_limit", queue_limit)
            if xoff_bytes is not None:
                tm.xoff_bytes = _bytes_or_dynamic("xoff_bytes", xoff_bytes)
            if xon_bytes is not None:
                tm.xon_bytes = _bytes_or_dynamic("xon_bytes", xon_bytes)
        return self.tm_config()

    def registers(self, name: str | None = None) -> dict:
        with self.handle.lock:
            state = self._state()
            chosen = self._pick(state.registers, name, "register")
            return {n: [r.read(i) for i in range(r.info.size)] for n, r in chosen.items()}

    def counters(self, name: str | None = None) -> dict:
        with self.handle.lock:
            state = self._state()
            chosen = self._pick(state.counters, name, "counter")
            return {n: [list(c.read(i)) for i in range(c.info.size)] for n, c in chosen.items()}

    def link_events(self, since: int | None = None, timeout: float = 1.0) -> dict:
        if since is not None and (not isinstance(since, int) or isinstance(since, bool)):
            raise RuntimeApiError(f"since must be an event number, got {since!r}")
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 <= timeout <= 30:
            raise RuntimeApiError(f"timeout must be 0..30 seconds, got {timeout!r}")
        return self.handle.wait_link_events(since, float(timeout))

    def _state(self):
        if self.handle.pipeline is None:
            raise RuntimeApiError("no P4 program is loaded")
        return self.handle.pipeline.state

    @staticmethod
    def _pick(table: dict, name: str | None, kind: str) -> dict:
        if name is None:
            return table
        matches = [n for n in table if n == name or n.endswith("." + name)]
        if len(matches) != 1:
            raise RuntimeApiError(f"no single {kind} named {name!r} (known: {', '.join(table) or 'none'})")
        return {matches[0]: table[matches[0]]}

    def run(self, request: dict) -> Any:
        cmd = request.pop("cmd", None)
        if cmd not in ("info", "stats", "tm_config", "set_tm", "registers", "counters", "link_events"):
            raise RuntimeApiError(f"unknown command {cmd!r}")
        try:
            return getattr(self, cmd)(**request)
        except TypeError as exc:
            raise RuntimeApiError(f"{cmd}: bad arguments ({exc})") from None


def _bytes_or_dynamic(name: str, value: Any) -> int | None:
    if value == "dynamic":
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise RuntimeApiError(f"{name} must be a positive number of bytes or \"dynamic\", got {value!r}")
    return value


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        commands: _Commands = self.server.commands  # type: ignore[attr-defined]
        for line in self.rfile:
            if len(line) > MAX_LINE:
                return
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise RuntimeApiError("a request is a JSON object")
                answer = {"ok": True, "result": commands.run(request)}
            except (ValueError, RuntimeApiError) as exc:
                answer = {"ok": False, "error": str(exc)}
            except Exception as exc:  # the switch must survive any request
                answer = {"ok": False, "error": f"internal error: {exc!r}"}
            self.wfile.write(json.dumps(answer, default=str).encode() + b"\n")


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    timeout = 0                  # handle_request: the selector below has seen the listener readable


class RuntimeApiServer:
    """Serves the runtime API of one switch handle, or of several (``add``, one address each:
    a worker process's switches share one accepting thread); ``start()``/``stop()`` like the
    P4Runtime server. ``port`` is the bound port of a one-switch server (useful with port 0)."""

    def __init__(self, handle: Any = None, addr: str | None = None):
        self._listeners: list[_TcpServer] = []
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        if handle is not None:
            self.add(handle, addr)

    def add(self, handle: Any, addr: str) -> None:
        """Serve ``handle`` on ``addr`` too (before ``start``)."""
        server = _TcpServer(split_addr(addr), _Handler, bind_and_activate=False)
        server.commands = _Commands(handle)  # type: ignore[attr-defined]
        self._listeners.append(server)

    @property
    def ports(self) -> list[int]:
        return [server.server_address[1] for server in self._listeners]

    @property
    def port(self) -> int:
        (port,) = self.ports
        return port

    def start(self) -> None:
        try:
            for server in self._listeners:
                server.server_bind()
                server.server_activate()
        except OSError:
            for server in self._listeners:
                server.server_close()
            raise
        self._thread = threading.Thread(target=self._accept, name="runtime-api", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with selectors.DefaultSelector() as selector:
            for server in self._listeners:
                selector.register(server, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj == self._wake_r:
                        return
                    key.fileobj.handle_request()     # accepts; the connection gets its own thread

    def stop(self) -> None:
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join()
            self._thread = None
        for server in self._listeners:
            server.server_close()
        if self._wake_r >= 0:
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1


class RuntimeApiClient:
    """A blocking client: ``call("stats")``, ``call("set_tm", alpha=0.5)``."""

    def __init__(self, addr: str, timeout: float = 5.0):
        self.addr = addr
        try:
            self._sock = socket.create_connection(split_addr(addr), timeout=timeout)
        except OSError as exc:
            raise UserError(f"cannot reach the switch runtime API at {addr}: {exc.strerror or exc}") from None
        self._file = self._sock.makefile("rwb")

    def call(self, cmd: str, **args: Any) -> Any:
        self._file.write(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
        self._file.flush()
        line = self._file.readline()
        if not line:
            raise RuntimeApiError("the switch closed the runtime API connection")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise RuntimeApiError(answer.get("error", "unknown error"))
        return answer["result"]

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> "RuntimeApiClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
