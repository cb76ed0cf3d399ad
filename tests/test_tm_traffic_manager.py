"""TrafficManager in virtual time: line rate, scheduling, buffer thresholds, PFC pausing."""
from __future__ import annotations

import heapq

import pytest

from fabriclab.switch.pfc import build_pause_frame, build_pfc_frame, parse_mac_control, quanta_to_ns
from fabriclab.v1model.pipeline import EgressJob, QueueMeta
from fabriclab.switch.switch_config import config_from_dict
from fabriclab.switch.traffic_manager import TrafficManager, native_problem, native_traffic_manager_class

PEER_MAC = bytes.fromhex("020000000099")


class EchoPipeline:
    """The egress half of a program that sends each packet out unchanged; records QueueMeta."""

    cpu_port = None

    def __init__(self):
        self.metas = []

    def egress_frame(self, job, now_us, enq_timestamp, enq_qdepth, deq_timedelta, deq_qdepth):
        self.metas.append(QueueMeta(now_us, enq_timestamp, enq_qdepth, deq_timedelta, deq_qdepth))
        return job.ctx


class Wire:
    """Collects what the TM transmits, stamped with the TM's (virtual) time."""

    def __init__(self):
        self.tm: TrafficManager | None = None
        self.sent: list[tuple[int, int, bytes]] = []

    def __call__(self, port: int, frame: bytes) -> None:
        self.sent.append((self.tm.now, port, frame))

    def data(self, port: int) -> list[tuple[int, bytes]]:
        return [(t, f) for t, p, f in self.sent if p == port and parse_mac_control(f) is None]

    def pfc(self, port: int):
        return [(t, parse_mac_control(f)) for t, p, f in self.sent if p == port and parse_mac_control(f)]


IMPLEMENTATION = {"class": TrafficManager}


@pytest.fixture(autouse=True, params=["python", "native"])
def implementation(request):
    """Every test runs on the Python reference TM and on the C one (native_tm.c)."""
    if request.param == "native":
        native = native_traffic_manager_class()
        assert native is not None, native_problem()
        IMPLEMENTATION["class"] = native
    else:
        IMPLEMENTATION["class"] = TrafficManager
    yield request.param
    IMPLEMENTATION["class"] = TrafficManager


def make_tm(config: dict, ports: list[int]) -> tuple[TrafficManager, Wire, EchoPipeline]:
    wire, pipeline = Wire(), EchoPipeline()
    tm = IMPLEMENTATION["class"](config_from_dict(config).resolve(ports), wire, pipeline)
    wire.tm = tm
    return tm, wire, pipeline


def frame(size: int, tag: int = 0) -> bytes:
    return tag.to_bytes(4, "big") * (size // 4) + bytes(size % 4)


def job(egress: int, priority: int, data: bytes, ingress: int = 1) -> EgressJob:
    return EgressJob(egress, priority, len(data), 0, 0, ingress, data)


def hold(tm: TrafficManager, port: int, now: int) -> None:
    """Pause every priority of ``port`` (so arrivals pile up) ..."""
    tm.receive_control(port, build_pfc_frame(PEER_MAC, {q: 0xFFFF for q in range(8)}), now)


def release(tm: TrafficManager, port: int, now: int) -> None:
    """... and resume them."""
    tm.receive_control(port, build_pfc_frame(PEER_MAC, {q: 0 for q in range(8)}), now)


def run_until_idle(tm: TrafficManager, limit_ns: int = 10**12) -> None:
    while (t := tm.next_event_time()) is not None and t <= limit_ns:
        tm.advance(t)


@pytest.mark.parametrize("rate, size", [("100M", 1000), ("1G", 60), ("2.5G", 1500), ("40M", 333)])
def test_line_rate_is_accurate(rate, size):
    tm, wire, _ = make_tm({"rate": rate, "buffer": "10MB", "queue_limit": "10MB"}, [1, 2])
    count = 500
    for i in range(count):
        assert tm.enqueue(job(2, 0, frame(size, i)), 0)
    run_until_idle(tm)
    sent = wire.data(2)
    assert len(sent) == count
    wire_bytes = max(size + 4, 64) + 20          # + FCS, padded to 64, + preamble and IFG
    elapsed = sent[-1][0] - sent[0][0]
    measured = (count - 1) * wire_bytes * 8 / (elapsed / 1e9)
    expected = config_from_dict({"rate": rate}).rate_bps
    assert abs(measured - expected) / expected < 0.02


def test_strict_priority_serves_higher_priorities_first():
    tm, wire, _ = make_tm({"rate": "100M"}, [1, 2])
    for prio in (0, 5, 2):
        for i in range(5):
            tm.enqueue(job(2, prio, frame(100, prio)), 0)
    run_until_idle(tm)
    order = [int.from_bytes(f[0:4], "big") for _, f in wire.data(2)]
    assert order == [5] * 5 + [2] * 5 + [0] * 5


def test_dwrr_shares_follow_weights_and_weight_zero_is_strict():
    weights = [1, 3, 0, 1, 1, 1, 1, 1]
    tm, wire, _ = make_tm({"rate": "100M", "scheduler": "dwrr", "weights": weights, "lossless": [],
                           "buffer": "20MB", "queue_limit": "20MB"}, [1, 2])
    hold(tm, 2, 0)
    for i in range(400):
        tm.enqueue(job(2, 0, frame(500, 0)), 0)
        tm.enqueue(job(2, 1, frame(500, 1)), 0)
    for i in range(20):
        tm.enqueue(job(2, 2, frame(500, 2)), 0)
    release(tm, 2, 0)
    run_until_idle(tm)
    tags = [int.from_bytes(f[0:4], "big") for _, f in wire.data(2)]
    assert tags[:20] == [2] * 20                  # weight 0: strict, ahead of the weighted queues
    window = tags[20:420]                         # both weighted queues backlogged throughout
    share = window.count(1) / len(window)
    assert abs(share - 0.75) < 0.03


def test_queue_meta_reports_depths_and_times():
    tm, _, pipeline = make_tm({"rate": "100M"}, [1, 2])
    hold(tm, 2, 0)
    for i in range(3):
        tm.enqueue(job(2, 0, frame(1000)), 5_000_000 + i * 1000)
    release(tm, 2, 6_000_000)
    run_until_idle(tm)
    wire_ns = (1000 + 24) * 80
    assert [m.enq_qdepth for m in pipeline.metas] == [0, 1, 2]
    assert [m.deq_qdepth for m in pipeline.metas] == [2, 1, 0]
    assert [m.enq_timestamp for m in pipeline.metas] == [5000, 5001, 5002]
    assert [m.now_us for m in pipeline.metas] == [6000 + i * wire_ns // 1000 for i in range(3)]
    assert [m.deq_timedelta for m in pipeline.metas] == [(1_000_000 + i * (wire_ns - 1000)) // 1000
                                                         for i in range(3)]


def test_propagation_delay_postpones_delivery():
    tm, wire, _ = make_tm({"rate": "100M", "ports": {2: {"delay": "50us"}}}, [1, 2])
    tm.enqueue(job(2, 0, frame(1000)), 1_000)
    tm.enqueue(job(2, 0, frame(1000)), 1_000)
    run_until_idle(tm)
    times = [t for t, _ in wire.data(2)]
    assert times == [1_000 + 50_000, 1_000 + 50_000 + 1024 * 80]


def test_received_pfc_pauses_one_priority_for_its_quanta():
    tm, wire, _ = make_tm({"rate": "100M"}, [1, 2])
    tm.receive_control(2, build_pfc_frame(PEER_MAC, {3: 100}), 10_000)
    tm.enqueue(job(2, 3, frame(200, 3)), 10_000)
    tm.enqueue(job(2, 0, frame(200, 0)), 10_000)
    run_until_idle(tm)
    sent = wire.data(2)
    pause_ns = 100 * 512 * 10                     # 100 quanta x 512 bit times at 10 ns per bit
    assert quanta_to_ns(100, 100_000_000) == pause_ns
    assert sent[0] == (10_000, frame(200, 0))     # the unpaused priority goes at once
    assert sent[1] == (10_000 + pause_ns, frame(200, 3))
    stats = tm.stats()["ports"][2]["priorities"]
    assert stats[3]["pfc_rx"] == 1 and stats[3]["paused_ns"] == pause_ns
    assert stats[0]["pfc_rx"] == 0 and stats[0]["paused_ns"] == 0


def test_zero_quanta_resumes_early_and_legacy_pause_stops_every_priority():
    tm, wire, _ = make_tm({"rate": "1G"}, [1, 2])
    tm.receive_control(2, build_pfc_frame(PEER_MAC, {1: 0xFFFF}), 0)
    tm.enqueue(job(2, 1, frame(100, 1)), 0)
    tm.advance(1_000_000)
    assert wire.data(2) == []
    tm.receive_control(2, build_pfc_frame(PEER_MAC, {1: 0}), 1_000_000)
    run_until_idle(tm)
    assert [t for t, _ in wire.data(2)] == [1_000_000]
    assert tm.stats()["ports"][2]["priorities"][1]["paused_ns"] == 1_000_000

    tm.receive_control(2, build_pause_frame(PEER_MAC, 1000), 2_000_000)
    for prio in range(8):
        tm.enqueue(job(2, prio, frame(100, prio)), 2_000_000)
    run_until_idle(tm)
    after = [t for t, _ in wire.data(2)][1:]
    assert len(after) == 8 and min(after) == 2_000_000 + 1000 * 512
    assert tm.stats()["ports"][2]["pause_rx"] == 1
    assert tm.stats()["drops"] == {}


def test_xoff_xon_hysteresis():
    config = {"rate": "100M", "lossless": [3], "pfc": {"xoff": 10_000, "xon": 7_000, "headroom": 50_000}}
    tm, wire, _ = make_tm(config, [1, 2])
    tm.receive_control(2, build_pfc_frame(PEER_MAC, {3: 0xFFFF}), 0)   # the egress is stuck
    for i in range(10):
        tm.enqueue(job(2, 3, frame(1000), ingress=1), 0)
    tm.advance(1)
    assert wire.pfc(1) == []                       # at XOFF, not above it
    tm.enqueue(job(2, 3, frame(1000), ingress=1), 2)
    tm.enqueue(job(2, 3, frame(1000), ingress=1), 3)
    tm.advance(4)
    pauses = wire.pfc(1)
    assert len(pauses) == 1
    assert pauses[0][1].class_enable == 1 << 3 and pauses[0][1].quanta[3] == 0xFFFF
    assert tm.stats()["ports"][1]["priorities"][3]["xoff_events"] == 1

    # drain: 12 frames held (10 000 shared + 2 000 headroom); XON once shared <= 7 000
    tm.receive_control(2, build_pfc_frame(PEER_MAC, {3: 0}), 10)
    run_until_idle(tm)
    sent = wire.data(2)
    resumes = [(t, c) for t, c in wire.pfc(1) if c.quanta[3] == 0]
    assert len(sent) == 12 and len(resumes) == 1
    assert resumes[0][0] == sent[4][0]            # the 5th dequeue brings it to 7 000 bytes
    stats = tm.stats()["ports"][1]["priorities"][3]
    assert stats["pfc_tx"] == 2 and stats["pausing_peer"] is False and stats["headroom_overflow"] == 0


def test_pause_is_refreshed_while_congestion_lasts():
    config = {"rate": "100M", "lossless": [3],
              "pfc": {"xoff": 5_000, "xon": 2_000, "headroom": 50_000, "quanta": 1000}}
    tm, wire, _ = make_tm(config, [1, 2])
    tm.receive_control(2, build_pfc_frame(PEER_MAC, {3: 0xFFFF}), 0)
    for _ in range(8):
        tm.enqueue(job(2, 3, frame(1000), ingress=1), 0)
    tm.advance(20_000_000)
    pause_ns = quanta_to_ns(1000, 100_000_000)
    times = [t for t, c in wire.pfc(1)]
    assert len(times) == 20_000_000 // (pause_ns // 2) + 1
    assert all(b - a == pause_ns // 2 for a, b in zip(times, times[1:]))
    assert tm.stats()["ports"][1]["priorities"][3]["xoff_events"] == 1


def _incast(priority: int, frames_per_sender: int, config: dict) -> tuple[TrafficManager, list, int]:
    """8 senders at line rate into one egress port; senders honour PFC frames from the switch."""
    senders = list(range(1, 9))
    egress = 9
    tm, wire, _ = make_tm(config, senders + [egress])
    port_stats = tm.stats()["ports"]
    rate = port_stats[egress]["rate_bps"]
    delay = port_stats[1]["delay_ns"]
    size = 1000
    ser = (size + 24) * 8 * 10**9 // rate
    pfc_wire = 84 * 8 * 10**9 // rate
    next_start = {s: 0 for s in senders}
    paused_until = {s: 0 for s in senders}
    left = {s: frames_per_sender for s in senders}
    arrivals: list[tuple[int, int]] = []
    seen = 0
    while True:
        # pauses the switch sent since we last looked take effect once fully received
        for t, port, f in wire.sent[seen:]:
            control = parse_mac_control(f)
            if control is not None and port in paused_until:
                quanta = control.quanta[priority]
                until = t + pfc_wire + quanta_to_ns(quanta, rate)
                paused_until[port] = until if quanta else t + pfc_wire
        seen = len(wire.sent)
        starts = [(max(next_start[s], paused_until[s]), s) for s in senders if left[s]]
        t_start = min(starts)[0] if starts else None
        t_arrival = arrivals[0][0] if arrivals else None
        t_tm = tm.next_event_time()
        candidates = [t for t in (t_start, t_arrival, t_tm) if t is not None]
        if not candidates:
            break
        t = min(candidates)
        if t == t_tm:
            tm.advance(t)
        elif t == t_arrival:
            _, sender = heapq.heappop(arrivals)
            tm.enqueue(job(egress, priority, frame(size, sender), ingress=sender), t)
        else:
            sender = min(starts)[1]
            next_start[sender] = t + ser
            left[sender] -= 1
            heapq.heappush(arrivals, (t + ser + delay, sender))
    return tm, wire.data(egress), egress


def test_lossless_incast_loses_nothing_with_pfc():
    config = {"rate": "100M", "delay": "20us", "buffer": "200KB", "lossless": [3], "pfc": {"response_time": "1ms"}}
    tm, delivered, egress = _incast(3, 150, config)
    stats = tm.stats()
    assert len(delivered) == 8 * 150
    assert all(not p["drops"] for port in stats["ports"].values() for p in port["priorities"].values())
    assert sum(stats["ports"][s]["priorities"][3]["xoff_events"] for s in range(1, 9)) >= 8
    assert all(stats["ports"][s]["priorities"][3]["headroom_overflow"] == 0 for s in range(1, 9))
    assert stats["buffer"]["shared_used"] == 0 and stats["buffer"]["headroom_used"] == 0
    # PFC must not starve the bottleneck: it stays busy about all the time
    times = [t for t, _ in delivered]
    busy = len(times) * (1000 + 24) * 80 / (times[-1] - times[0])
    assert busy > 0.95


def test_lossy_incast_tail_drops():
    config = {"rate": "100M", "delay": "20us", "buffer": "200KB", "lossless": [3], "pfc": {"response_time": "1ms"}}
    tm, delivered, egress = _incast(0, 150, config)
    stats = tm.stats()
    drops = stats["ports"][egress]["priorities"][0]["drops"]
    assert sum(drops.values()) == 8 * 150 - len(delivered) > 0
    assert set(drops) <= {"queue_limit", "buffer_full"}
    assert all(port["priorities"][0]["pfc_tx"] == 0 for port in stats["ports"].values())


@pytest.mark.parametrize("alpha, congested", [(1.0, 1), (0.25, 1), (1.0, 2), (0.5, 3)])
def test_dynamic_threshold_caps_lossy_queues(alpha, congested):
    tm, _, _ = make_tm({"rate": "100M", "buffer": "300KB", "alpha": alpha, "lossless": []}, [1, 2])
    shared = tm.shared_bytes
    tm.receive_control(2, build_pfc_frame(PEER_MAC, {q: 0xFFFF for q in range(8)}), 0)   # freeze the port
    for _ in range(1000):
        for q in range(congested):
            tm.enqueue(job(2, q, frame(500)), 0)
    expected = alpha * shared / (1 + congested * alpha)   # T = alpha (S - n T)
    for q in range(congested):
        held = tm.stats()["ports"][2]["priorities"][q]["qbytes"]
        assert abs(held - expected) <= 500 * congested
        assert tm.stats()["ports"][2]["priorities"][q]["drops"]["queue_limit"] > 0


def test_static_queue_limit():
    tm, _, _ = make_tm({"rate": "100M", "queue_limit": "10KB", "lossless": []}, [1, 2])
    tm.receive_control(2, build_pfc_frame(PEER_MAC, {0: 0xFFFF}), 0)
    accepted = sum(tm.enqueue(job(2, 0, frame(1000)), 0) for _ in range(50))
    assert accepted == 10 and tm.stats()["ports"][2]["priorities"][0]["qbytes"] == 10_000


def test_headroom_overflow_is_a_lossless_drop(caplog):
    """A packet that finds the headroom full is dropped, as on a real switch, and counted as a
    drop of its (lossless) queue: a misconfiguration shows as loss, never hidden."""
    config = {"rate": "100M", "lossless": [3], "pfc": {"xoff": 2_000, "xon": 1_000, "headroom": 3_000}}
    tm, wire, _ = make_tm(config, [1, 2])
    tm.receive_control(2, build_pfc_frame(PEER_MAC, {3: 0xFFFF}), 0)
    accepted = [tm.enqueue(job(2, 3, frame(1000), ingress=1), 0) for _ in range(10)]
    assert accepted == [True] * 5 + [False] * 5             # 2 000 shared + 3 000 headroom
    ingress = tm.stats()["ports"][1]["priorities"][3]
    assert ingress["headroom_overflow"] == 5 and ingress["max_headroom_bytes"] == 3_000
    assert tm.stats()["ports"][2]["priorities"][3]["drops"] == {"headroom_overflow": 5}
    assert "headroom overflow" in caplog.text and "dropped" in caplog.text


def test_set_pipeline_flushes_queues_and_releases_buffer():
    config = {"rate": "100M", "lossless": [3], "pfc": {"xoff": 2_000, "xon": 1_000}}
    tm, wire, _ = make_tm(config, [1, 2])
    tm.receive_control(2, build_pfc_frame(PEER_MAC, {3: 0xFFFF, 0: 0xFFFF}), 0)
    for _ in range(5):
        tm.enqueue(job(2, 3, frame(1000), ingress=1), 0)
        tm.enqueue(job(2, 0, frame(1000), ingress=1), 0)
    tm.set_pipeline(EchoPipeline())
    run_until_idle(tm, 10**9)
    stats = tm.stats()
    assert stats["buffer"]["shared_used"] == 0 and stats["buffer"]["headroom_used"] == 0
    assert stats["ports"][2]["priorities"][3]["drops"] == {"pipeline_swap": 5}
    assert [c.quanta[3] for _, c in wire.pfc(1)] == [0xFFFF, 0]   # the peer is released too


def test_egress_failure_costs_one_packet():
    class Flaky(EchoPipeline):
        def egress_frame(self, job, *meta):
            if job.ctx == frame(100, 1):
                raise ZeroDivisionError("bug in the program")
            return super().egress_frame(job, *meta)

    tm, wire, _ = make_tm({"rate": "100M"}, [1, 2])
    tm.set_pipeline(Flaky())
    for tag in (0, 1, 2):
        tm.enqueue(job(2, 0, frame(100, tag)), 0)
    run_until_idle(tm)
    assert [f for _, f in wire.data(2)] == [frame(100, 0), frame(100, 2)]
    assert tm.stats()["ports"][2]["priorities"][0]["drops"] == {"pipeline_error": 1}
