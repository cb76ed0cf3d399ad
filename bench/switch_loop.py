"""The switch's own per-packet cost, outside the P4 pipeline: ports, event loop, traffic manager.

    python -m fabriclab.bench.switch_loop [--frames 3000] [--rounds 5] [--size 1400]
                                          [--program PROGRAM.p4] [--profile]

One ``Switch`` runs in this process on two veth pairs in the root namespace
(fl<tag>a1 -> port 1 ... port 2 -> fl<tag>a2, where nobody listens: the kernel drops the frames
as it would a host's). Each round, a sender fills port 1's receive ring with ``--frames``
frames *before* the loop runs, then ``serve()`` runs until the last one has been transmitted:
the figure is the loop's wall and CPU time per frame, with arrivals never the limit. The default
pipeline is a stub (port 1 -> 2, frame unchanged, two object creations), so the P4 pipeline's
share is left out; ``--program`` runs a compiled program instead. ``--profile`` adds a cProfile
breakdown of one more round. Needs root (veths, raw sockets); removes what it creates.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import signal
import socket
import subprocess
import sys
import threading
import time
import types
import uuid

from fabriclab.v1model.pipeline import EgressJob
from fabriclab.v1model.loader import instantiate

SWITCH_YAML = {"rate": "10G", "queue_limit": "1MB"}   # as `bench dataplane`: the CPU is the limit
ROUND_TIMEOUT_S = 30.0     # a program that drops or misroutes the frames would never end a round


class ForwardStub:
    """The cheapest pipeline with the real interface: every frame from port 1 leaves port 2.
    Stops the switch once ``expected`` frames have been through egress."""

    cpu_port = None
    info = engine = types.SimpleNamespace(name="stub")     # what Switch.stats() names

    def __init__(self):
        self.switch = None
        self.expected = 0
        self.done = 0

    def ingress(self, frame: bytes, port: int, now_us: int) -> list:
        return [EgressJob(2, 0, len(frame), 0, 0, port, frame)]

    def egress_frame(self, job, *queue_meta) -> bytes:
        self.done += 1
        if self.done == self.expected:
            self.switch.stop()
        return job.ctx


class CountingPipeline:
    """A compiled program's pipeline, counted the same way as ``ForwardStub``."""

    def __init__(self, pipeline):
        self.inner = pipeline
        self.info, self.engine = pipeline.info, pipeline.engine
        self.cpu_port = None
        self.switch = None
        self.expected = 0
        self.done = 0

    def ingress(self, frame: bytes, port: int, now_us: int) -> list:
        return self.inner.ingress(frame, port, now_us)

    def egress_frame(self, job, *queue_meta):
        self.done += 1
        if self.done == self.expected:
            self.switch.stop()
        return self.inner.egress_frame(job, *queue_meta)


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def _frame(size: int) -> bytes:
    head = bytes.fromhex("020000000002" "020000000001" "0800")
    return head + bytes(size - len(head))


def _fill_ring(ifname: str, frame: bytes, count: int) -> None:
    """Send ``count`` frames into ``ifname`` and give the kernel a moment to put them in the peer's ring."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.bind((ifname, 0))
    try:
        for _ in range(count):
            sock.send(frame)
    finally:
        sock.close()
    time.sleep(0.05)


def run_rounds(frames: int, rounds: int, size: int, program: str | None, profile: bool) -> dict:
    from fabriclab.switch.switch import Switch
    from fabriclab.switch.switch_config import config_from_dict

    tag = uuid.uuid4().hex[:5]
    pairs = [(f"fl{tag}a{i}", f"fl{tag}b{i}") for i in (1, 2)]
    try:
        for a, b in pairs:
            _sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            for name in (a, b):
                _sh("sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1")
                _sh("ip", "link", "set", name, "up")
        switch = Switch(config_from_dict(SWITCH_YAML), [(1, pairs[0][1]), (2, pairs[1][1])])
        try:
            if program:
                from fabriclab.compiler import driver

                pipeline = CountingPipeline(instantiate(driver.load(program)))
            else:
                pipeline = ForwardStub()
            pipeline.switch = switch
            switch.pipeline = pipeline
            switch.tm.set_pipeline(pipeline)
            frame = _frame(size)
            results = []
            profiler = cProfile.Profile() if profile else None
            for round_ in range(rounds + (1 if profile else 0)):
                pipeline.expected = pipeline.done + frames
                switch._stop.clear()             # serve() returned on the last round's stop()
                _fill_ring(pairs[0][0], frame, frames)
                profiling = profiler is not None and round_ == rounds
                start_wall, start_cpu = time.perf_counter(), time.thread_time()
                if profiling:
                    profiler.enable()
                watchdog = threading.Timer(ROUND_TIMEOUT_S, switch.stop)
                watchdog.start()
                try:
                    switch.serve()
                finally:
                    watchdog.cancel()
                if profiling:
                    profiler.disable()
                if pipeline.done < pipeline.expected:
                    raise SystemExit(f"switch_loop: {pipeline.expected - pipeline.done} of {frames} frames did not "
                                     f"leave port 2 within {ROUND_TIMEOUT_S:.0f} s: the pipeline must forward "
                                     "port 1 -> port 2 (e.g. bench/programs/trivial.p4)")
                if profiling:
                    continue
                wall, cpu = time.perf_counter() - start_wall, time.thread_time() - start_cpu
                results.append({"wall_us_per_frame": wall / frames * 1e6, "cpu_us_per_frame": cpu / frames * 1e6})
            stats = switch.stats()
        finally:
            switch.close()
    finally:
        for a, _ in pairs:
            subprocess.run(["ip", "link", "del", a], capture_output=True)
    best = min(results, key=lambda r: r["wall_us_per_frame"])
    out = {"frames": frames, "rounds": rounds, "size": size, "pipeline": program or "stub",
           "best_wall_us_per_frame": round(best["wall_us_per_frame"], 3),
           "best_cpu_us_per_frame": round(best["cpu_us_per_frame"], 3),
           "median_wall_us_per_frame": round(sorted(r["wall_us_per_frame"] for r in results)[len(results) // 2], 3),
           "port1_rx": stats["ports"][1]["rx_frames"], "port2_tx": stats["ports"][2]["tx_frames"],
           # frames that had to wait for the wire: arrivals closer than 10G serialization
           "max_qdepth": stats["tm"]["ports"][2]["priorities"][0]["max_qdepth"],
           "drops": {n: p["drops"] for n, p in stats["ports"].items() if p["drops"]}}
    if profiler is not None:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
        out["profile"] = text.getvalue()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="switch_loop", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000, help="frames per round (the ring holds 4096)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=1400)
    parser.add_argument("--program", help="a .p4 program or compiled directory instead of the stub")
    parser.add_argument("--profile", action="store_true", help="cProfile one extra round")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the veths are removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = run_rounds(args.frames, args.rounds, args.size, args.program, args.profile)
    profile = result.pop("profile", None)
    print(json.dumps(result))
    if profile:
        print(profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
