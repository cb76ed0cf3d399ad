"""``fabriclab clean``: remove what fabrics left behind after a crash or a kill -9.

Without ``--run-dir`` (like ``mn -c``, machine-wide): every fabriclab switch and controller
process and bmv2 switch (found by command line), then Mininet's own cleanup (its node shells,
every ``*-ethN`` veth, and the programs it knows; note that it also kills every ``ping``).
With ``--run-dir DIR``: only that run's processes (recorded in DIR/processes.json, or naming
DIR on their command line) and the veths listed in DIR/fabric.json; other fabrics are left alone.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path

# command-line fragments of the processes a fabric runs
PROCESS_TAGS = ("fabriclab switch", "fabriclab.switch.switch", "fabriclab controller", "fabriclab.controller",
                "simple_switch_grpc")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", help="clean only the fabric whose run directory this is")


def run(args: argparse.Namespace) -> int:
    from fabriclab.errors import UserError

    if os.geteuid() != 0:
        raise UserError("fabriclab clean needs root")
    if args.run_dir:
        killed, removed = clean_run(Path(args.run_dir))
    else:
        killed, removed = clean_all()
    print(f"fabriclab clean: stopped {len(killed)} process(es), removed {len(removed)} interface(s)")
    return 0


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _ancestors() -> set[int]:
    """Our own process and its parents: ``fabriclab clean`` must not kill its caller."""
    found, pid = set(), os.getpid()
    while pid > 1:
        found.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


def find_processes(fragments: tuple[str, ...]) -> list[int]:
    mine = _ancestors()
    return sorted(int(p) for p in os.listdir("/proc")
                  if p.isdigit() and int(p) not in mine and any(f in cmdline(int(p)) for f in fragments))


def stop_processes(pids: list[int], grace_s: float = 3.0) -> list[int]:
    """SIGTERM, then SIGKILL what is still there after ``grace_s``."""
    stopped = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() and not _zombie(pid) for pid in stopped):
        time.sleep(0.1)
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return stopped


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def clean_run(run_dir: Path) -> tuple[list[int], list[str]]:
    from fabriclab.topologies.description import FabricDescription
    from fabriclab.topologies.network import remove_interfaces

    run_dir = run_dir.resolve()
    pids = set(find_processes((str(run_dir),)))
    try:
        recorded = json.loads((run_dir / "processes.json").read_text())
    except (OSError, ValueError):
        recorded = {}
    for entry in recorded.values():
        # The pid may have been reused since: only kill it if it still runs what we started.
        if entry["marker"] in cmdline(entry["pid"]):
            pids.add(entry["pid"])
    killed = stop_processes(sorted(pids - _ancestors()))
    removed = []
    if (run_dir / "fabric.json").exists():
        removed = remove_interfaces(FabricDescription.load(run_dir / "fabric.json"))
    return killed, removed


def clean_all() -> tuple[list[int], list[str]]:
    from mininet.clean import cleanup
    from mininet.log import setLogLevel

    killed = stop_processes(find_processes(PROCESS_TAGS))
    before = set(os.listdir("/sys/class/net"))
    setLogLevel("warning")
    cleanup()
    return killed, sorted(before - set(os.listdir("/sys/class/net")))
