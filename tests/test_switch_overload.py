"""The switch under overload: a flood does not leave a port deaf, and a burst read in one
batch enters the traffic manager at the frames' own arrival times (not all at once).

The switch runs in this process (its loop in a thread) on veth pairs; the flooding host's end
lives in a namespace the test creates, and its sender is a separate process
(fabriclab.bench.rawflow), so the flood really outruns the switch.
"""
from __future__ import annotations

import select
import subprocess
import sys
import threading
import time
import uuid

import pytest

from fabriclab.bench.rawflow import TAG_OFFSET
from fabriclab.compiler import driver
from fabriclab.switch.ports import Port
from fabriclab.switch.switch import Switch
from fabriclab.switch.switch_config import load_config

pytestmark = pytest.mark.root

# every frame from port 1 goes to port 2 and back
FORWARD_P4 = """
#include <core.p4>
#include <v1model.p4>
header ethernet_t { bit<48> dst; bit<48> src; bit<16> ether_type; }
struct headers_t { ethernet_t eth; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.eth); transition accept; }
}
control V(inout headers_t hdr, inout meta_t meta) { apply { } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply { if (sm.ingress_port == 1) { sm.egress_spec = 2; } else { sm.egress_spec = 1; } }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control C(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.eth); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""
MAC_H1, MAC_H2 = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


class Rig:
    """ns fl<tag> [fl<tag>h1] --veth-- fl<tag>s1 =(switch)= fl<tag>s2 --veth-- fl<tag>h2 (a Port here)."""

    def __init__(self, tmp_path, config: str):
        tag = uuid.uuid4().hex[:6]
        self.netns, self.h1, self.s1, self.s2, self.h2 = (f"fl{tag}", f"fl{tag}h1", f"fl{tag}s1",
                                                           f"fl{tag}s2", f"fl{tag}h2")
        self.switch = self.sink = self.thread = None
        sh("ip", "netns", "add", self.netns)
        try:
            sh("ip", "link", "add", self.s1, "type", "veth", "peer", "name", self.h1, "netns", self.netns)
            sh("ip", "link", "add", self.s2, "type", "veth", "peer", "name", self.h2)
            for name in (self.s1, self.s2, self.h2):
                sh("sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1")   # no MLD/RS noise
                sh("ip", "link", "set", name, "up")
            sh("ip", "netns", "exec", self.netns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            sh("ip", "-n", self.netns, "link", "set", self.h1, "up")
            program = tmp_path / "forward.p4"
            program.write_text(FORWARD_P4)
            config_path = tmp_path / "switch.yaml"
            config_path.write_text(config)
            self.sink = Port(9, self.h2)
            self.switch = Switch(load_config(str(config_path)), [(1, self.s1), (2, self.s2)])
            self.switch.set_pipeline(driver.load(str(program)))
            self.thread = threading.Thread(target=self.switch.serve, daemon=True)
            self.thread.start()
        except BaseException:
            self.close()
            raise

    def flow(self, tag: bytes, rate: int, seconds: float) -> subprocess.Popen:
        """rawflow's UDP sender on h1 (inside the namespace), frames to h2's MAC carrying ``tag``."""
        return subprocess.Popen(
            ["ip", "netns", "exec", self.netns, sys.executable, "-m", "fabriclab.bench.rawflow", "send", self.h1,
             "--dst-mac", MAC_H2.hex(":"), "--src-ip", "10.0.0.1", "--dst-ip", "10.0.0.2", "--tag", tag.hex(),
             "--size", "1400", "--rate", str(rate), "--seconds", str(seconds)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def count_tagged(self, tag: bytes, seconds: float) -> tuple[int, float | None]:
        """Frames carrying ``tag`` that reach h2 within ``seconds``, and when the first came."""
        count, first, start = 0, None, time.monotonic()
        while (left := start + seconds - time.monotonic()) > 0:
            select.select([self.sink], [], [], left)
            for frame in self.sink.receive(1024):
                if frame[TAG_OFFSET:TAG_OFFSET + len(tag)] == tag:
                    count += 1
                    if first is None:
                        first = time.monotonic() - start
        return count, first

    def close(self) -> None:
        if self.thread is not None:
            self.switch.stop()
            self.thread.join(10)
        if self.switch is not None:
            self.switch.close()
        if self.sink is not None:
            self.sink.close()
        subprocess.run(["ip", "link", "del", self.s2], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)   # takes h1 and s1 along


@pytest.fixture
def rig_factory(tmp_path):
    rigs = []

    def make(config: str) -> Rig:
        rigs.append(Rig(tmp_path, config))
        return rigs[-1]

    yield make
    for rig in rigs:
        rig.close()


def test_still_forwards_within_a_second_after_a_flood(rig_factory):
    rig = rig_factory("rate: 10G\n")
    flood = rig.flow(b"floodflo", 0, 1.5)           # flat out: far more than the switch can take
    flood.communicate(timeout=60)
    assert flood.returncode == 0
    ports = rig.switch.stats()["ports"]
    assert ports[1]["drops"].get("rx_socket_full", 0) > 0, "the flood did not overflow the ring"

    probe = rig.flow(b"probe123", 100, 1.0)        # 100 frames/s, as a ping would be
    try:
        count, first = rig.count_tagged(b"probe123", 1.0)
    finally:
        probe.communicate(timeout=30)
    assert first is not None, "the switch forwarded nothing in the second after the flood"
    assert count >= 50


def test_a_batch_enters_the_traffic_manager_at_its_frames_arrival_times(rig_factory):
    # a 40G egress drains a 1400-byte frame in 0.3 µs, faster than a Python sender sends: a
    # real port never holds more than a frame or two. The switch is kept from reading while the
    # burst arrives, so it reads it as a few large batches; stamped with one time each, a batch
    # would overflow the default dynamic queue limit (~34 such frames) and be tail-dropped.
    rig = rig_factory("rate: 40G\n")
    burst = 300
    send_burst = ("import socket, sys; from fabriclab.bench.rawflow import udp_frame\n"
                  "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((sys.argv[1], 0))\n"
                  f"for i in range({burst}):\n"
                  f"    s.send(udp_frame({MAC_H1!r}, {MAC_H2!r}, '10.0.0.1', '10.0.0.2', 1400,"
                  " b'burst' + i.to_bytes(3, 'big')))\n")
    with rig.switch.lock:                            # the loop blocks on this before reading
        sh("ip", "netns", "exec", rig.netns, sys.executable, "-c", send_burst, rig.h1)
        time.sleep(0.05)
    count = 0
    deadline = time.monotonic() + 3
    while count < burst and time.monotonic() < deadline:
        select.select([rig.sink], [], [], 0.1)
        count += sum(1 for f in rig.sink.receive(1024) if f[TAG_OFFSET:TAG_OFFSET + 5] == b"burst")
    tm = rig.switch.stats()["tm"]["ports"][2]["priorities"][0]
    assert tm["drops"] == {}
    assert count == burst
    assert tm["max_qdepth"] < 34
