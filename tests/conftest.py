"""Shared fixtures. Every test is checked for leftovers: network namespaces, veths and
fabriclab processes that exist after the test but did not before it fail the test.

Each test holds a machine-wide lock while it runs, so test runs of several checkouts on one
machine take turns instead of seeing each other's namespaces and fabrics as leftovers."""
from __future__ import annotations

import fcntl
import os
import subprocess
import time

import pytest


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _veths() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line.strip()}


def _fabriclab_processes() -> set[int]:
    me = os.getpid()
    found = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(tag in cmd for tag in ("fabriclab switch", "fabriclab.switch.switch", "fabriclab controller",
                                       "fabriclab.controller", "fabriclab host-agent", "fabriclab.traffic.agent",
                                       "simple_switch_grpc")):
            found.add(int(pid))
    return found


def leftovers() -> dict[str, set]:
    return {"netns": _netns(), "veth": _veths(), "processes": _fabriclab_processes()}


TEST_LOCK = "/run/fabriclab-tests.lock"


@pytest.fixture(autouse=True)
def machine_lock():
    with open(TEST_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def no_leftovers(machine_lock):
    """Fail the test if it leaves a namespace, veth or fabriclab process behind."""
    before = leftovers()
    yield
    deadline = time.monotonic() + 5.0  # processes may take a moment to exit after teardown
    while True:
        after = leftovers()
        new = {kind: after[kind] - before[kind] for kind in after}
        if not any(new.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not any(new.values()), f"test left behind: { {k: sorted(v) for k, v in new.items() if v} }"



@pytest.fixture
def veth_pair():
    """Two ends of a veth pair in the root namespace (names ``fl…a``/``fl…b``), up, jumbo MTU,
    no IPv6 chatter; removed afterwards."""
    import uuid

    a = f"fl{uuid.uuid4().hex[:6]}a"
    b = a[:-1] + "b"
    subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True)
    try:
        for name in (a, b):
            subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1"], check=True)
            subprocess.run(["ip", "link", "set", name, "mtu", "9000", "up"], check=True)
        yield a, b
    finally:
        subprocess.run(["ip", "link", "del", a], capture_output=True)
