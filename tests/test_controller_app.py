"""The os-ken application loaded programmatically (controller/runner.py), without Mininet."""
from __future__ import annotations

import socket

from fabriclab.controller.runner import run_controller
from fabriclab.controller.settings import ControllerSettings
from fabriclab.controller.status import read_status
from fabriclab.topologies.network import DEFAULT_PROGRAM
from fabriclab.topologies.yamlfile import from_mapping


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_switch_is_reported_as_failed(tmp_path):
    port = _free_port()        # nothing listens there
    d = from_mapping({"switches": [{"name": "flx", "hosts": 1}]}, grpc_port_base=port - 1)
    d.save(tmp_path / "fabric.json")
    ControllerSettings(connect_timeout_s=0.5).save(tmp_path / "controller.json")
    rc = run_controller(tmp_path / "fabric.json", tmp_path / "controller.json", tmp_path / "status.json",
                        DEFAULT_PROGRAM, "WARNING")
    assert rc == 1
    status = read_status(tmp_path / "status.json")
    assert status["state"] == "failed"
    assert f"cannot reach switch flx at 127.0.0.1:{port}" in status["error"]


def test_eventlet_hub_is_refused(tmp_path, monkeypatch):
    import pytest

    from fabriclab.errors import UserError

    monkeypatch.setenv("OSKEN_HUB_TYPE", "eventlet")
    with pytest.raises(UserError, match="native hub"):
        run_controller(tmp_path / "f.json", tmp_path / "c.json", tmp_path / "s.json", DEFAULT_PROGRAM)
