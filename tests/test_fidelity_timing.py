"""The fidelity monitor on real timing: a switch and a host that keep time are judged ok; the
same ones starved of their CPU are judged degraded, on the figure that shows it.

Starving is done as a busy machine does it, by keeping the loop from running: the switch's loop
waits on ``switch.lock`` while the test holds it (30 ms out of every 40), the host's loop is
simply not called for 20 ms at a time."""
from __future__ import annotations

import os
import select
import sys
import threading
import time

import pytest
from test_switch_overload import MAC_H1, MAC_H2, Rig, sh
from test_traffic_transport import Pair

from fabriclab.bench.rawflow import TAG_OFFSET
from fabriclab.scenarios.fidelity import variant_fidelity
from fabriclab.switch.fidelity import Histogram
from fabriclab.traffic.netns import VethPair
from fabriclab.traffic.transport import TransportConfig

pytestmark = pytest.mark.root

FRAMES = 200           # 1000-byte frames into a 10 Mbit/s port: 0.16 s of paced departures; fewer
                       # than the 256 slots of its receive ring, which may take them in one go


def burst_through(rig: Rig, tag: bytes) -> None:
    """FRAMES frames from h1 at once; returns when h2 has them all."""
    send = ("import socket, sys; from fabriclab.bench.rawflow import udp_frame\n"
            "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((sys.argv[1], 0))\n"
            f"for i in range({FRAMES}):\n"
            f"    s.send(udp_frame({MAC_H1!r}, {MAC_H2!r}, '10.0.0.1', '10.0.0.2', 1000, {tag!r}))\n")
    sh("ip", "netns", "exec", rig.netns, sys.executable, "-c", send, rig.h1)
    count, deadline = 0, time.monotonic() + 30
    while count < FRAMES and time.monotonic() < deadline:
        select.select([rig.sink], [], [], 0.1)
        count += sum(1 for f in rig.sink.receive(1024) if f[TAG_OFFSET:TAG_OFFSET + len(tag)] == tag)
    stats = rig.switch.stats()
    assert count == FRAMES, {"ports": stats["ports"], "tm drops": stats["tm"]["ports"][2]["priorities"][0]["drops"]}


def test_switch_ok_when_idle_degraded_when_starved(tmp_path):
    rig = Rig(tmp_path, "rate: 10M\nqueue_limit: 1000000\n")
    try:
        start = rig.switch.stats()
        burst_through(rig, b"idle")
        idle = rig.switch.stats()
        verdict = variant_fidelity({"s": start}, {"s": idle}, {})
        lateness = verdict["figures"]["s frame lateness"]
        assert lateness["n"] >= FRAMES
        assert verdict["status"] == "ok", verdict["reasons"]

        done = threading.Event()

        def starve() -> None:
            while not done.is_set():
                with rig.switch.lock:
                    time.sleep(0.03)
                time.sleep(0.01)

        starver = threading.Thread(target=starve, daemon=True)
        starver.start()
        try:
            burst_through(rig, b"starved")
        finally:
            done.set()
            starver.join()
        verdict = variant_fidelity({"s": idle}, {"s": rig.switch.stats()}, {})
        assert verdict["status"] == "degraded"
        lateness = verdict["figures"]["s frame lateness"]
        assert not lateness["ok"] and lateness["p99"] >= 10_000, lateness      # stalls of 30 ms
        assert any(r.startswith("s frame lateness: p99") for r in verdict["reasons"])
    finally:
        rig.close()


def _transfer(veth, starve: bool) -> dict:
    config = TransportConfig(line_rate=10e6, rto=0.2, seed=1)
    pair = Pair(veth, config, config)
    try:
        msg = pair.a.post_send(pair.qp, 200 * 1024)
        deadline, turns = time.monotonic() + 60, 0
        while msg.completed is None:
            assert time.monotonic() < deadline, "transfer did not finish"
            pair.a.poll(0)
            pair.b.poll(0)
            turns += 1
            if starve and turns % 3 == 0:
                time.sleep(0.02)
            else:
                select.select([pair.a.sock, pair.b.sock], [], [], 0.0005)
        return pair.a.pacing_report()
    finally:
        pair.close()


def test_host_pacing_ok_when_idle_degraded_when_starved():
    with VethPair(f"f{os.getpid() % 100000}") as veth:
        idle = _transfer(veth, starve=False)
        starved = _transfer(veth, starve=True)
    assert Histogram.from_list(idle["histogram"]).summary()["n"] >= 150     # most of the 200 packets are paced
    assert variant_fidelity({}, {}, {"h": idle})["status"] == "ok"
    verdict = variant_fidelity({}, {}, {"h": starved})
    assert verdict["status"] == "degraded" and verdict["pacing_p99_us"] >= 10_000, verdict
