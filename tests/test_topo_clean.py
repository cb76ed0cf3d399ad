"""``fabriclab clean``'s process finding and stopping (the machine-wide mode also runs
Mininet's cleanup, which would disturb other fabrics on this machine: not run here)."""
from __future__ import annotations

import os
import subprocess
import sys

from fabriclab.clean import _ancestors, cmdline, find_processes, stop_processes


def test_finds_and_stops_processes_by_command_line(tmp_path):
    marker = f"fl-clean-test-{os.getpid()}"
    # ignores SIGTERM, so stopping it needs the SIGKILL that follows the grace period
    child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                              "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)", marker],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        assert marker in cmdline(child.pid)
        assert find_processes((marker,)) == [child.pid]
        assert stop_processes([child.pid], grace_s=0.5) == [child.pid]
        assert child.wait(timeout=5) == -9
        assert find_processes((marker,)) == []
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()


def test_never_targets_itself_or_its_callers():
    mine = _ancestors()
    assert os.getpid() in mine and os.getppid() in mine
    assert not set(find_processes(("pytest",))) & mine
