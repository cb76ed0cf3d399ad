"""The labs that need a fabric, and the p4lang/tutorials-layout runner, on Mininet: a scenario
lab's checker passes on its solution and fails on the skeleton; exercise folders run on
fabriclab's switch with their runtime JSON written over P4Runtime (forwarding with pingall; a
multicast group, a clone session and ternary entries with priorities, seen on the hosts)."""
from __future__ import annotations

import io
import json
import os
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from fabriclab.cli import main

pytestmark = [pytest.mark.root, pytest.mark.mininet,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for Mininet")]
ROOT = Path(__file__).resolve().parent.parent


def lab_check(tmp_path: Path, *argv: str) -> tuple[int, dict]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["lab", "check", *argv, "--json", "--run-dir", str(tmp_path / "run")])
    return code, json.loads(out.getvalue())


@pytest.mark.parametrize("lab", ["05", "06", "12"])
def test_scenario_lab_checker_passes_on_solution_fails_on_skeleton(lab, tmp_path):
    code, report = lab_check(tmp_path / "solution", lab, "--solution")
    assert code == 0, [c for c in report["checks"] if not c["passed"]]
    code, report = lab_check(tmp_path / "skeleton", lab)
    assert code == 1 and report["score"] < report["total"]


def test_pingall_on_a_forwarding_exercise_solution_and_skeleton(tmp_path):
    folder = str(ROOT / "labs" / "01-l3-forwarding")
    code, report = lab_check(tmp_path / "solution", folder, "--solution", "--pingall")
    assert code == 0 and report["total"] == 12          # 4 hosts: every ordered pair
    code, report = lab_check(tmp_path / "skeleton", folder, "--pingall")
    assert code == 1 and report["score"] == 0


def _capture(host, filt: str, where: Path) -> str:
    """Start tcpdump (for 8 s) on the host's eth0; returns the file its output goes to."""
    out = where / f"{host.name}-{time.monotonic_ns()}.txt"
    host.cmd(f"timeout 8 tcpdump -l -n -i eth0 '{filt}' > {out} 2>/dev/null &")
    return str(out)


def _captured(path: str, text: str, timeout: float = 8.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in Path(path).read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


def test_multicast_clone_and_ternary_priority_on_the_runner(tmp_path):
    from fabriclab.labs.exercise import load_exercise
    from fabriclab.labs.exercise_network import ExerciseNetwork

    exercise = load_exercise(ROOT / "tests" / "exercises" / "replication")
    with ExerciseNetwork(exercise, tmp_path / "run") as network:
        assert network.entries == 10                       # 8 table entries, 1 group, 1 clone session
        h1, h2, h3, h4 = (network.net.get(f"h{i}") for i in (1, 2, 3, 4))
        time.sleep(0.5)
        assert "1 received" in h1.cmd("ping -c 1 -W 2 10.0.0.2")
        # ternary entries with priorities: h1 -> h3 allowed (20) above "nobody to h3" (10)
        assert "1 received" in h1.cmd("ping -c 1 -W 2 10.0.0.3")
        assert "0 received" in h2.cmd("ping -c 1 -W 2 10.0.0.3")
        # clone session 5: everything h1 sends is mirrored to h4
        mirrored = _capture(h4, "icmp and src 10.0.0.1", tmp_path)
        time.sleep(1.0)
        h1.cmd("ping -c 2 -W 2 10.0.0.2")
        assert _captured(mirrored, "10.0.0.1 > 10.0.0.2: ICMP echo request")
        # multicast group 1: h2's broadcast reaches h1 and h3
        caught = [_capture(h, "udp port 9999", tmp_path) for h in (h1, h3)]
        time.sleep(1.0)
        h2.cmd("python3 -c \"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
               "s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1); s.sendto(b'hi', ('10.0.0.255', 9999))\"")
        assert all(_captured(path, "10.0.0.2.") for path in caught)
