"""``fabriclab bench dataplane``: the raw-socket frames, the two-host topology, both forwarders
and the figures' shape, with tiny durations (nothing here asserts a speed)."""
from __future__ import annotations

import os
import subprocess

import pytest
from scapy.all import IP, UDP, Ether

from fabriclab.bench import dataplane
from fabriclab.bench.rawflow import TAG_OFFSET, udp_frame
from fabriclab.errors import UserError

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")]


def _tag() -> str:
    return f"t{os.getpid() % 10000}"      # fl<tag>h1: unique per test run


def test_udp_frame_is_a_valid_ipv4_udp_frame_with_the_tag_first():
    tag = bytes.fromhex("0102030405060708")
    frame = udp_frame(b"\x02" * 6, b"\x04" * 6, "10.0.0.1", "10.0.0.3", 1400, tag)
    assert len(frame) == 1400
    pkt = Ether(frame)
    assert pkt[IP].dst == "10.0.0.3" and pkt[IP].len == 1400 - 14 and pkt[UDP].dport == 9
    recomputed = IP(bytes(pkt[IP]))
    del recomputed.chksum
    assert IP(bytes(recomputed)).chksum == pkt[IP].chksum
    assert frame[TAG_OFFSET:TAG_OFFSET + 8] == tag


def test_topology_is_removed_on_exit_even_after_an_error():
    tag = _tag()
    with pytest.raises(RuntimeError):
        with dataplane.TwoHostTopology(tag) as topo:
            names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
            assert all(h.netns in names for h in topo.hosts)
            raise RuntimeError("boom")
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"fl{tag}h1" not in names and not os.path.exists(f"/sys/class/net/fl{tag}-p1")


def test_bare_forwarder_carries_the_tagged_frames(tmp_path):
    with dataplane.TwoHostTopology(_tag()) as topo:
        fwd = dataplane.start_bare_forwarder(topo, tmp_path)
        try:
            step = dataplane.udp_step(topo, topo.hosts[1].mac, rate=2000, seconds=0.3)
            rtt = dataplane.rtt_ms(topo, count=3)
        finally:
            fwd.stop()
    assert 300 <= step["sent"] <= 700                      # paced near 2000/s for 0.3 s
    assert step["received"] == step["sent"] and step["loss"] == 0
    assert 0 < rtt < 1000


def test_kernel_bridge_carries_the_tagged_frames_and_frees_its_ports(tmp_path):
    with dataplane.TwoHostTopology(_tag()) as topo:
        bridge = dataplane.start_bridge(topo, tmp_path)
        try:
            step = dataplane.udp_step(topo, topo.hosts[1].mac, rate=2000, seconds=0.3)
        finally:
            bridge.stop()
        assert not os.path.exists(f"/sys/class/net/{bridge.ifname}")
        assert not os.path.exists(f"/sys/class/net/{topo.hosts[0].port_ifname}/master")
    assert 300 <= step["sent"] <= 700 and step["received"] == step["sent"]


def test_flat_out_run_through_the_bridge_is_counted(tmp_path):
    """Rate 0: the C sender sends as fast as the kernel takes frames; the C receiver counts no
    more than were sent (nothing is timed)."""
    with dataplane.TwoHostTopology(_tag()) as topo:
        bridge = dataplane.start_bridge(topo, tmp_path)
        try:
            step = dataplane.udp_step(topo, topo.hosts[1].mac, rate=0, seconds=0.3)
        finally:
            bridge.stop()
    assert step["sent"] > 0 and 0 < step["received"] <= step["sent"]


def test_compare_forwarders_reports_every_figure(tmp_path):
    figures = dataplane.compare_forwarders(tag=_tag(), seconds=0.3, bisections=2, tcp_seconds=1, status=print)
    assert figures["forwarders"] == ["bridge", "bare", "fabriclab"]
    for name in figures["forwarders"]:
        for key in ("pps", "tcp_mbps", "rtt_ms"):
            assert figures[f"{name}_{key}"] > 0, f"{name}_{key}"
        assert isinstance(figures[f"{name}_sender_limited"], bool)
    assert figures["program"] == "fabric.p4"
    assert figures["engine"] == "native"        # gcc and python3-dev come with `make install`
    # read back from the switch's own counters as it exited: reasons and positive counts
    assert all(":" in reason and count > 0 for reason, count in figures["fabriclab_switch_drops"].items())
    assert figures["fabriclab_to_bare"] == pytest.approx(figures["fabriclab_pps"] / figures["bare_pps"], rel=0.01)
    assert figures["fabriclab_to_bridge"] == pytest.approx(figures["fabriclab_pps"] / figures["bridge_pps"], rel=0.01)


def _fake_forwarder(monkeypatch, capacity: float, sender_max: float) -> list[float]:
    """udp_step replaced by a forwarder that loses what exceeds ``capacity`` behind a sender
    that cannot offer more than ``sender_max``; returns the rates asked for."""
    asked = []

    def udp_step(topo, dst_mac, rate, seconds):
        asked.append(rate)
        offered = min(rate, sender_max) * seconds
        received = min(offered, capacity * seconds)
        return {"offered_pps": offered / seconds, "sent": offered, "received": received,
                "loss": 1 - received / offered, "delivered_pps": received / seconds}

    monkeypatch.setattr(dataplane, "udp_step", udp_step)
    return asked


def test_rate_search_converges_on_the_forwarders_capacity(monkeypatch):
    asked = _fake_forwarder(monkeypatch, capacity=30_000, sender_max=1e9)
    result = dataplane.max_udp_pps(None, "", seconds=1, bisections=5)
    assert not result["sender_limited"]
    assert 30_000 * 0.95 <= result["pps"] <= 30_000          # 5 bisections of 16k..32k: within 2 %
    assert asked[:5] == [2000, 4000, 8000, 16000, 32000]     # doubled until the first loss
    assert len(asked) == 5 + 5


def test_rate_search_reports_a_sender_that_cannot_keep_up(monkeypatch):
    _fake_forwarder(monkeypatch, capacity=1e9, sender_max=50_000)
    result = dataplane.max_udp_pps(None, "", seconds=1, bisections=5)
    assert result["sender_limited"] and result["pps"] == 50_000


def test_rate_search_fails_clearly_when_nothing_is_forwarded(monkeypatch):
    _fake_forwarder(monkeypatch, capacity=0, sender_max=1e9)
    with pytest.raises(UserError, match="does not forward"):
        dataplane.max_udp_pps(None, "", seconds=1, bisections=5)
