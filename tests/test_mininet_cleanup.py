"""A ``fabriclab up`` stopped by SIGTERM, or killed outright and followed by ``fabriclab clean``,
leaves no process, veth or namespace behind (the autouse leftovers fixture checks)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.mininet, pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for Mininet"),
]


def _start_up(run_dir: Path, prefix: str, port_base: int) -> subprocess.Popen:
    """``fabriclab up`` waiting in its CLI (stdin stays open), once the controller is ready."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fabriclab", "up", "--spines", "1", "--leaves", "2", "--hosts-per-leaf", "1",
         "--prefix", prefix, "--grpc-port-base", str(port_base), "--run-dir", str(run_dir), "--rest-port", "0"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    status = run_dir / "controller-status.json"
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads(status.read_text())["state"] == "ready":
                return proc
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"fabric did not come up: {proc.communicate(timeout=30)[1].decode()[-2000:]}")


def _fabric_veths(prefix: str) -> list[str]:
    return [name for name in os.listdir("/sys/class/net") if name.startswith(prefix)]


def test_sigterm_tears_the_fabric_down(tmp_path):
    proc = _start_up(tmp_path / "run", "tg", 21700)
    assert _fabric_veths("tg")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err.decode()[-2000:]
    assert _fabric_veths("tg") == []


def test_killed_up_is_cleaned_by_fabriclab_clean(tmp_path):
    run_dir = tmp_path / "run"
    proc = _start_up(run_dir, "th", 21800)
    proc.kill()
    proc.communicate(timeout=30)
    assert _fabric_veths("th"), "a kill -9 should have left the switch veths for clean to remove"
    out = subprocess.run([sys.executable, "-m", "fabriclab", "clean", "--run-dir", str(run_dir)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "removed" in out.stdout
    assert _fabric_veths("th") == []


def test_refuses_to_build_over_another_fabrics_interfaces(tmp_path):
    from fabriclab.errors import UserError
    from fabriclab.topologies.leafspine import leafspine
    from fabriclab.topologies.network import FabricNetwork

    subprocess.run(["ip", "link", "add", "tyl1-eth3", "type", "veth", "peer", "name", "fltypeer"], check=True)
    try:
        network = FabricNetwork(leafspine(spines=1, leaves=2, hosts_per_leaf=2, prefix="ty"), tmp_path / "run")
        with pytest.raises(UserError, match="interface tyl1-eth3 already exists"):
            network.start()
        assert Path("/sys/class/net/tyl1-eth3").exists()     # the other fabric's veth is untouched
    finally:
        subprocess.run(["ip", "link", "del", "tyl1-eth3"], check=False)


def test_refuses_a_p4runtime_port_in_use(tmp_path):
    import socket

    from fabriclab.errors import UserError
    from fabriclab.topologies.leafspine import leafspine
    from fabriclab.topologies.network import FabricNetwork

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        d = leafspine(spines=1, leaves=1, hosts_per_leaf=1, prefix="tw", grpc_port_base=port - 2)   # spine: id 2
        with pytest.raises(UserError, match=f"port {port} \\(P4Runtime of switch tws1\\) is in use"):
            FabricNetwork(d, tmp_path / "run").start()
