"""The PFC watchdog's state machine (SONiC's pfcwd) in the traffic manager, in virtual time, on
the Python reference TM and on the C one: detection, drop and forward actions, restoration."""
from __future__ import annotations

import logging

import pytest

from fabriclab.errors import UserError
from fabriclab.switch.pfc import build_pfc_frame, parse_mac_control
from fabriclab.switch.switch_config import config_from_dict
from fabriclab.switch.traffic_manager import TrafficManager, native_problem, native_traffic_manager_class
from fabriclab.v1model.pipeline import EgressJob

PEER_MAC = bytes.fromhex("020000000099")
US = 1000
WATCHDOG = {"enabled": True, "detection_time": "200us", "restoration_time": "300us", "poll_interval": "50us"}


class Echo:
    cpu_port = None

    def egress_frame(self, job, now_us, enq_timestamp, enq_qdepth, deq_timedelta, deq_qdepth):
        return job.ctx


@pytest.fixture(params=["python", "native"])
def tm_class(request):
    if request.param == "python":
        return TrafficManager
    native = native_traffic_manager_class()
    assert native is not None, native_problem()
    return native


def make(tm_class, **pfcwd):
    sent = []
    config = {"rate": "100M", "lossless": [3], "pfcwd": {**WATCHDOG, **pfcwd}}
    tm = tm_class(config_from_dict(config).resolve([1, 2, 3]), lambda port, frame: sent.append((tm.now, port, frame)),
                  Echo())
    return tm, sent


def send(tm, count: int, now: int, egress: int = 2, ingress: int = 1, size: int = 1000) -> list[bool]:
    return [tm.enqueue(EgressJob(egress, 3, size, 0, 0, ingress, bytes(size)), now) for _ in range(count)]


def pause(tm, port: int, now: int, quanta: int = 0xFFFF) -> None:
    tm.receive_control(port, build_pfc_frame(PEER_MAC, {3: quanta}), now)


def run_to(tm, until: int, pause_port: int | None = None, every: int = 100 * US, start: int = 0) -> None:
    """Advance to ``until``; with ``pause_port``, a storm: a pause for priority 3 every ``every``."""
    t = start
    while pause_port is not None and t < until:
        pause(tm, pause_port, t)
        t += every
    tm.advance(until)


def state(tm, port: int = 2) -> dict:
    return tm.stats()["ports"][port]["priorities"][3]


def data(sent, port: int) -> list[int]:
    return [t for t, p, f in sent if p == port and parse_mac_control(f) is None]


def test_a_stalled_queue_is_stormed_after_detection_time_and_flushed(tm_class, caplog):
    tm, sent = make(tm_class)
    pause(tm, 2, 0)
    assert all(send(tm, 60, 0, size=1500))            # 90 KB: ingress port 1 pauses its peer (XOFF)
    assert state(tm, 1)["pausing_peer"]
    with caplog.at_level(logging.INFO, logger="fabriclab.switch.traffic_manager"):
        run_to(tm, 199 * US, pause_port=2)
        assert state(tm)["pfcwd"] == "operational" and state(tm)["qdepth"] == 60
        run_to(tm, 200 * US, pause_port=2, start=200 * US)   # four looks, 50 µs apart, all stalled
    q = state(tm)
    assert q["pfcwd"] == "stormed" and q["pfcwd_storms"] == 1
    assert q["qdepth"] == 0 and q["drops"] == {"pfcwd": 60}
    assert not state(tm, 1)["pausing_peer"]              # the flush freed port 1's buffer: XON upstream
    assert send(tm, 3, 250 * US) == [False] * 3          # arrivals for the stormed queue are dropped
    assert state(tm)["drops"] == {"pfcwd": 63}
    assert send(tm, 1, 250 * US, egress=3) == [True]     # other ports are not affected
    storm_lines = [r for r in caplog.records if "storm detected" in r.getMessage()]
    assert len(storm_lines) == 1 and "port 2 priority 3" in storm_lines[0].getMessage()
    assert data(sent, 2) == []


def test_restored_after_restoration_time_without_pause_frames(tm_class, caplog):
    tm, sent = make(tm_class)
    events = []
    tm.pfc_event = lambda now, port, q, pause, direction: events.append((now // US, port, pause, direction))
    with caplog.at_level(logging.INFO, logger="fabriclab.switch.traffic_manager"):
        pause(tm, 2, 0)
        send(tm, 5, 0)
        run_to(tm, 1000 * US, pause_port=2)                # stormed at 200 µs, pauses go on until 900 µs
        assert state(tm)["pfcwd"] == "stormed" and state(tm)["pfc_rx"] == 11   # counted, not obeyed
        run_to(tm, 1150 * US)
        assert state(tm)["pfcwd"] == "stormed"             # the last pause was 250 µs ago
        run_to(tm, 1300 * US)
    q = state(tm)
    assert q["pfcwd"] == "operational" and q["pfcwd_restorations"] == 1
    assert any("restored" in r.getMessage() for r in caplog.records)
    # the PFC log: pauses obeyed until the storm, the watchdog lifting the pause, nothing while ignored
    assert events == [(0, 2, True, "rx")] * 2 + [(100, 2, True, "rx"), (200, 2, False, "wd")]
    assert send(tm, 2, 1300 * US) == [True, True]        # the queue takes packets again ...
    pause(tm, 2, 1300 * US)
    tm.advance(1400 * US)
    assert state(tm)["qdepth"] == 2 and state(tm)["paused"]   # ... and obeys pauses again
    assert events[-1] == (1300, 2, True, "rx")
    assert data(sent, 2) == []


def test_forward_action_ignores_pauses_and_drops_nothing(tm_class):
    tm, sent = make(tm_class, action="forward")
    pause(tm, 2, 0)
    send(tm, 20, 0)
    run_to(tm, 199 * US, pause_port=2)
    assert data(sent, 2) == []
    run_to(tm, 2000 * US, pause_port=2, start=200 * US)
    q = state(tm)
    assert q["pfcwd"] == "stormed" and q["drops"] == {} and q["qdepth"] == 0
    assert len(data(sent, 2)) == 20 and min(data(sent, 2)) >= 200 * US
    assert send(tm, 1, 2000 * US) == [True]


def test_no_storm_while_the_queue_drains_or_holds_nothing(tm_class):
    tm, sent = make(tm_class)
    # paused with nothing queued, for a long time: nothing is stalled
    run_to(tm, 2000 * US, pause_port=2)
    # short pauses: the queue is paused at every look yet dequeues in between
    send(tm, 100, 2000 * US, size=500)                  # within XOFF + headroom: no overflow drop
    t = 2000 * US
    while t < 6000 * US:
        pause(tm, 2, t, quanta=400)                       # 2 ms at 100 Mbit/s ... cut short:
        pause(tm, 2, t + 40 * US, quanta=0)               # resumed after 40 µs
        t += 50 * US
        tm.advance(t)
    q = state(tm)
    assert q["pfcwd_storms"] == 0 and q["drops"] == {} and q["dequeued"] > 0
    # quiet again: the watchdog stops looking and the TM goes idle
    tm.advance(20_000 * US)
    while (t := tm.next_event_time()) is not None:
        tm.advance(t)
    assert tm.next_event_time() is None and state(tm)["pfcwd"] == "operational"


def test_only_the_configured_ports_are_watched(tm_class):
    tm, _ = make(tm_class, ports=[3])
    pause(tm, 2, 0)
    send(tm, 5, 0)
    run_to(tm, 1000 * US, pause_port=2)
    assert state(tm)["pfcwd"] == "off" and state(tm)["qdepth"] == 5
    assert state(tm, 3)["pfcwd"] == "operational"
    assert tm.stats()["config"]["pfcwd"]["ports"] == [3]


def test_a_tm_without_watchdog_reports_it_off(tm_class):
    tm = tm_class(config_from_dict({"rate": "100M"}).resolve([1, 2]), lambda port, frame: None, Echo())
    pause(tm, 2, 0)
    send(tm, 3, 0)
    run_to(tm, 2000 * US, pause_port=2)
    assert state(tm)["pfcwd"] == "off" and state(tm)["qdepth"] == 3
    assert tm.stats()["config"]["pfcwd"] is None


@pytest.mark.parametrize("doc, message", [
    ({"enabled": "yes"}, "pfcwd.enabled"),
    ({"enabled": True, "action": "alert"}, "pfcwd.action"),
    ({"enabled": True, "detection_time": "0ms"}, "pfcwd.detection_time"),
    ({"enabled": True, "poll_interval": "1s"}, "poll_interval"),
    ({"enabled": True, "ports": "some"}, "pfcwd.ports"),
    ({"enabled": True, "timer": 1}, "unknown key 'timer' in pfcwd"),
])
def test_bad_pfcwd_settings_are_one_clear_error(doc, message):
    with pytest.raises(UserError, match=message):
        config_from_dict({"pfcwd": doc})
