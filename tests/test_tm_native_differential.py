"""The C traffic manager (native_tm.c) against the Python reference, on random workloads.

Both run the same operations in virtual time; every transmission (time, port, bytes), every
QueueMeta the pipeline sees, every PFC event, every return value and the final stats() must be
identical.
"""
from __future__ import annotations

import random

import pytest

from fabriclab.errors import UserError
from fabriclab.switch.pfc import build_pause_frame, build_pfc_frame
from fabriclab.v1model.pipeline import EgressJob, EgressResult
from fabriclab.switch.switch_config import config_from_dict
from fabriclab.switch.traffic_manager import TrafficManager, native_problem, native_traffic_manager_class

CPU_PORT = 64
PEER_MAC = bytes.fromhex("020000000099")


class ScriptedPipeline:
    """An egress half whose answer is written in the job's ctx: ('frame', data), ('none',),
    ('fail',) or ('result', frames, extra job specs). Records the QueueMeta of every call."""

    cpu_port = None

    def __init__(self, name: str):
        self.name = name
        self.calls = []

    def egress_frame(self, job, now_us, enq_timestamp, enq_qdepth, deq_timedelta, deq_qdepth):
        self.calls.append((self.name, job.egress_port, job.priority, now_us, enq_timestamp, enq_qdepth,
                           deq_timedelta, deq_qdepth))
        kind = job.ctx[0]
        if kind == "frame":
            return job.ctx[1]
        if kind == "none":
            return None
        if kind == "fail":
            raise ValueError("a program bug")
        _, frames, extra = job.ctx
        return EgressResult(list(frames), [make_job(*spec) for spec in extra])


def make_job(egress: int, priority: int, size: int, ingress: int, tag: int, ctx=None) -> EgressJob:
    data = tag.to_bytes(4, "big") * (size // 4) + bytes(size % 4)
    return EgressJob(egress, priority, size, 0, 0, ingress, ctx if ctx is not None else ("frame", data))


def random_config(rng: random.Random) -> tuple[dict, list[int]]:
    ports = [1, 2, 3, 4][: rng.randint(2, 4)]
    config = {"rate": rng.choice(["10M", "100M", "1G"]), "buffer": rng.choice(["40KB", "100KB", "400KB"]),
              "alpha": rng.choice([0.125, 0.5, 1.0, 3.0]),
              "lossless": rng.sample(range(8), rng.randint(0, 3)),
              "pfc": {"quanta": rng.choice([50, 500, 65535]), "response_time": "10us"}}
    if rng.random() < 0.5:
        config["delay"] = rng.choice(["1us", "10us", "100us"])
    if rng.random() < 0.4:
        config["queue_limit"] = rng.choice(["5KB", "30KB"])
    if rng.random() < 0.5:
        config["scheduler"] = "dwrr"
        weights = [rng.choice([0, 1, 1, 2, 5]) for _ in range(8)]
        weights[rng.randrange(8)] = rng.randint(1, 4)
        config["weights"] = weights
    if rng.random() < 0.3:
        config["pfc"]["xoff"] = "dynamic"
    elif rng.random() < 0.3:
        config["pfc"]["xoff"], config["pfc"]["xon"] = "6KB", "2KB"
    if rng.random() < 0.3:
        config["pfc"]["headroom"] = "1KB"          # small: overflows happen (and are logged)
    if rng.random() < 0.5:
        config["ports"] = {ports[0]: {"rate": "1G", "delay": "2us"}}
    if rng.random() < 0.5:
        poll = rng.choice([20, 50, 100])
        config["pfcwd"] = {"enabled": True, "action": rng.choice(["drop", "forward"]),
                           "poll_interval": f"{poll}us", "detection_time": f"{poll * rng.randint(1, 4)}us",
                           "restoration_time": f"{poll * rng.randint(1, 6)}us"}
        if rng.random() < 0.3:
            config["pfcwd"]["ports"] = rng.sample(ports, 1)
    try:
        config_from_dict(config).resolve(ports)
    except UserError:       # the buffer cannot hold this much headroom: let the switch size it
        del config["buffer"]
    return config, ports


def random_ctx(rng: random.Random, ports: list[int], size: int, tag: int):
    roll = rng.random()
    data = tag.to_bytes(4, "big") * (size // 4) + bytes(size % 4)
    if roll < 0.8:
        return ("frame", data)
    if roll < 0.85:
        return ("none",)
    if roll < 0.88:
        return ("fail",)
    other = rng.choice(ports + [CPU_PORT, 99])
    frames = [(other, data[:rng.randint(14, size)]), (rng.choice(ports), data)]
    extra = [(rng.choice(ports), rng.randrange(8), rng.randint(60, 1500), rng.choice(ports + [0]), tag + 1)
             for _ in range(rng.randint(0, 2))]
    return ("result", frames, extra)


def random_ops(rng: random.Random, ports: list[int], count: int) -> list[tuple]:
    ops = []
    now = 0
    for i in range(count):
        now += rng.choice([0, 0, 0, 100, 1000, 5000, 20000, 200000])
        roll = rng.random()
        if roll < 0.04:       # a burst from one ingress at one priority: XOFF, headroom, drops
            egress, priority, ingress = rng.choice(ports), rng.randrange(8), rng.choice(ports)
            for k in range(40):
                ops.append(("enqueue", now, egress, priority, 1500, ingress, i * 100 + k,
                            ("frame", bytes([k]) * 1500)))
        elif roll < 0.72:
            size = rng.choice([40, 60, 64, 200, 1000, 1500])
            egress = rng.choice(ports + [CPU_PORT] + ([77] if rng.random() < 0.05 else []))
            ingress = rng.choice(ports + [CPU_PORT, 0])
            ops.append(("enqueue", now, egress, rng.randrange(8), size, ingress, i,
                        random_ctx(rng, ports, size, i)))
        elif roll < 0.80:
            timers = {q: rng.choice([0, 0, 20, 300, 0xFFFF]) for q in rng.sample(range(8), rng.randint(1, 8))}
            ops.append(("control", now, rng.choice(ports + [CPU_PORT, 55]), build_pfc_frame(PEER_MAC, timers)))
        elif roll < 0.82:
            ops.append(("control", now, rng.choice(ports), build_pause_frame(PEER_MAC, rng.choice([0, 100, 2000]))))
        elif roll < 0.83:
            bad = bytearray(build_pfc_frame(PEER_MAC, {0: 1}))
            bad[15] = 0x77                                         # an unknown opcode
            ops.append(("control", now, rng.choice(ports), bytes(bad[: rng.choice([16, 60])])))
        elif roll < 0.84:
            ops.append(("control", now, rng.choice(ports), bytes(60)))   # not MAC Control: refused
        elif roll < 0.92:
            ops.append(("advance", now))
        elif roll < 0.93:
            ops.append(("swap", now))
        elif roll < 0.97:
            name = rng.choice(["alpha", "queue_limit", "xoff_bytes", "xon_bytes"])
            value = rng.choice([0.25, 1.0, 2.0]) if name == "alpha" else rng.choice([None, 3000, 20000])
            ops.append(("set", name, value))
        else:
            ops.append(("stats",))
    ops.append(("drain",))
    return ops


def run(tm_class, config: dict, ports: list[int], ops: list[tuple]) -> list:
    """Everything observable of one TM running ``ops``."""
    log: list = []
    tm_box = []

    def transmit(port: int, frame: bytes) -> None:
        log.append(("tx", tm_box[0].now, port, frame))

    pipeline = ScriptedPipeline("first")
    tm = tm_class(config_from_dict(config).resolve(ports), transmit, pipeline)
    tm_box.append(tm)
    tm.add_unshaped_port(CPU_PORT)
    tm.pfc_event = lambda *event: log.append(("pfc",) + event)
    pipelines = [pipeline]
    for op in ops:
        kind = op[0]
        if kind == "enqueue":
            _, now, egress, priority, size, ingress, tag, ctx = op
            log.append(("enqueue", tm.enqueue(make_job(egress, priority, size, ingress, tag, ctx), now)))
        elif kind == "control":
            log.append(("control", tm.receive_control(op[2], op[3], op[1])))
        elif kind == "advance":
            tm.advance(op[1])
            log.append(("next", tm.next_event_time(), tm.now))
        elif kind == "swap":
            pipelines.append(ScriptedPipeline(f"swap{len(pipelines)}"))
            tm.set_pipeline(pipelines[-1])
            log.append(("next", tm.next_event_time()))
        elif kind == "set":
            setattr(tm, op[1], op[2])
            log.append(("config", tm.alpha, tm.queue_limit, tm.xoff_bytes, tm.xon_bytes))
        elif kind == "stats":
            log.append(("stats", tm.stats()))
            log.append(("depths", [tm.queue_depth(p, q) for p in ports for q in range(8)]))
        else:
            steps = 0
            while (t := tm.next_event_time()) is not None and steps < 100_000:
                tm.advance(t)
                steps += 1
            log.append(("stats", tm.stats()))
    log.append(("calls", [call for p in pipelines for call in p.calls]))
    return log


@pytest.fixture(scope="module")
def native_class():
    native = native_traffic_manager_class()
    assert native is not None, native_problem()
    return native


@pytest.mark.parametrize("seed", range(60))
def test_native_matches_python_on_random_workloads(seed, native_class):
    rng = random.Random(seed)
    config, ports = random_config(rng)
    ops = random_ops(rng, ports, 400)
    expected = run(TrafficManager, config, ports, ops)
    got = run(native_class, config, ports, ops)
    # the workload must exercise something: frames went out
    assert any(entry[0] == "tx" for entry in expected)
    for i, (want, have) in enumerate(zip(expected, got)):
        assert have == want, f"seed {seed}: first difference at event {i} of {len(expected)}: {config}"
    assert len(got) == len(expected)


def test_workloads_cover_pfc_drops_and_errors(native_class):
    """The random workloads reach the paths they are meant to compare."""
    seen = set()
    for seed in range(60):
        rng = random.Random(seed)
        config, ports = random_config(rng)
        for entry in run(native_class, config, ports, random_ops(rng, ports, 400)):
            if entry[0] == "pfc":
                seen.add(f"pfc_{entry[5]}_{'pause' if entry[4] else 'resume'}")
            elif entry[0] == "stats":
                stats = entry[1]
                seen.update(stats["drops"])
                for port in stats["ports"].values():
                    for prio in port["priorities"].values():
                        seen.update(prio["drops"])
                        if prio.get("headroom_overflow"):
                            seen.add("headroom_overflow")
                        if prio.get("pfcwd_storms"):
                            seen.add("pfcwd_storm")
                        if prio.get("pfcwd_restorations"):
                            seen.add("pfcwd_restoration")
                    if port["control_tx"]:
                        seen.add("control_tx")
    assert {"pfc_tx_pause", "pfc_tx_resume", "pfc_rx_pause", "pfc_rx_resume", "buffer_full", "queue_limit",
            "pipeline_swap", "pipeline_error", "no_such_port", "mac_control_ignored", "control_tx",
            "headroom_overflow", "pfcwd", "pfcwd_storm", "pfcwd_restoration", "pfc_wd_resume"} <= seen


def test_a_tm_in_a_reference_cycle_is_collected(native_class):
    """The switch holds its TM and the TM holds the switch's transmit: the GC must see through C."""
    import gc
    import weakref

    class Sink:
        def __call__(self, port: int, frame: bytes) -> None:
            pass

    sink = Sink()
    tm = native_class(config_from_dict({"rate": "1G"}).resolve([1, 2]), sink, ScriptedPipeline("p"))
    sink.tm = tm
    hold = build_pfc_frame(PEER_MAC, {0: 0xFFFF})
    tm.receive_control(2, hold, 0)
    assert tm.enqueue(make_job(2, 0, 100, 1, 0, ("frame", sink)), 0)   # a queued job refers to it too
    gone = weakref.ref(sink)
    del sink, tm
    gc.collect()
    assert gone() is None


def test_factory_chooses_the_implementation(monkeypatch, native_class):
    from fabriclab.switch.traffic_manager import make_traffic_manager

    resolved = config_from_dict({}).resolve([1, 2])
    monkeypatch.delenv("FABRICLAB_ENGINE", raising=False)
    assert type(make_traffic_manager(resolved, print)) is native_class
    assert type(make_traffic_manager(resolved, print, engine="native")) is native_class
    monkeypatch.setenv("FABRICLAB_ENGINE", "python")
    assert type(make_traffic_manager(resolved, print)) is TrafficManager
    assert type(make_traffic_manager(resolved, print, engine="native")) is native_class
    with pytest.raises(UserError, match="unknown engine"):
        make_traffic_manager(resolved, print, engine="fast")


def test_factory_falls_back_to_python_when_c_cannot_be_built(monkeypatch, caplog):
    from fabriclab.switch import traffic_manager

    monkeypatch.setattr(traffic_manager._NativeLoader, "cls", None)
    monkeypatch.setattr(traffic_manager._NativeLoader, "problem", "no C compiler (gcc) found")
    monkeypatch.delenv("FABRICLAB_ENGINE", raising=False)
    resolved = config_from_dict({}).resolve([1, 2])
    with caplog.at_level("INFO", logger="fabriclab.switch.traffic_manager"):
        assert type(traffic_manager.make_traffic_manager(resolved, print)) is TrafficManager
    assert "no C compiler" in caplog.text
    with pytest.raises(UserError, match="not available: no C compiler"):
        traffic_manager.make_traffic_manager(resolved, print, engine="native")
