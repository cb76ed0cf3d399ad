"""A scenario whose switches are starved of CPU while it runs -- stopped 30 ms out of every
60 ms, as a busy machine would -- reports its variant ``fidelity: degraded``, its expectation
not valid, and ``fabriclab run`` exits 4. (That an idle run is ok, every built-in scenario's
test checks: their verdict must be ``held``.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fabriclab.scenarios.fidelity import NOT_VALID_EXIT

SCENARIO = Path(__file__).parent / "scenarios" / "fidelity-tiny.yaml"


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _switches(root: int) -> list[int]:
    pids = []
    for pid in _descendants(root):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"fabriclab switch" in cmd:       # a switch process or a switch worker
            pids.append(pid)
    return pids


def _starve(root: int, done: threading.Event) -> None:
    """Stop the switches under ``root`` 30 ms out of every 60 ms until ``done``."""
    while not done.is_set():
        pids = _switches(root)
        try:
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            time.sleep(0.03)
        finally:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        time.sleep(0.03)


@pytest.mark.mininet
def test_starved_switches_make_the_run_not_valid(tmp_path):
    run = subprocess.Popen([sys.executable, "-m", "fabriclab", "run", str(SCENARIO), "--out", str(tmp_path / "run"),
                            "--json", str(tmp_path / "results.json")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = threading.Event()
    starver = threading.Thread(target=_starve, args=(run.pid, done), daemon=True)
    starver.start()
    try:
        out, _ = run.communicate(timeout=600)
    finally:
        done.set()
        starver.join()
    assert run.returncode == NOT_VALID_EXIT, out[-3000:]
    assert "NOT VALID" in out
    results = json.loads((tmp_path / "results.json").read_text())
    fidelity = results["variants"]["default"]["fidelity"]
    assert fidelity["status"] == "degraded" and fidelity["lateness_p99_us"] >= 10_000, fidelity["reasons"]
    assert any(" frame lateness: p99 " in reason for reason in fidelity["reasons"])
    [expectation] = results["expectations"]
    assert expectation["held"] is None and expectation["valid"] is False
    assert results["verdict"] == "not valid"
    assert "not valid" in (tmp_path / "run" / "report.html").read_text()
