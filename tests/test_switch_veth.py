"""`fabriclab switch` as a subprocess on real veths: forwarding, PFC frames on the wire, pauses honoured.

The switch runs in a network namespace the test creates; the test's ends of the veth pairs stay
in the root namespace and speak through fabriclab's own AF_PACKET ports (which restore the
VLAN tags the kernel strips into metadata).
"""
from __future__ import annotations

import json
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from scapy.contrib.mac_control import MACControlClassBasedFlowControl
from scapy.layers.l2 import Ether

from fabriclab.switch.pfc import build_pfc_frame, parse_mac_control
from fabriclab.switch.ports import Port

pytestmark = pytest.mark.root

# ports 1 <-> 2; the VLAN PCP (if any) selects the queue
FORWARD_P4 = """
#include <core.p4>
#include <v1model.p4>

header ethernet_t { bit<48> dst; bit<48> src; bit<16> ether_type; }
header vlan_t { bit<3> pcp; bit<1> dei; bit<12> vid; bit<16> ether_type; }
struct headers_t { ethernet_t eth; vlan_t vlan; }
struct meta_t { }

parser FwdParser(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.eth);
        transition select(hdr.eth.ether_type) {
            0x8100: parse_vlan;
            default: accept;
        }
    }
    state parse_vlan { pkt.extract(hdr.vlan); transition accept; }
}
control FwdVerify(inout headers_t hdr, inout meta_t meta) { apply { } }
control FwdIngress(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        if (sm.ingress_port == 1) { sm.egress_spec = 2; } else { sm.egress_spec = 1; }
        if (hdr.vlan.isValid()) { sm.priority = hdr.vlan.pcp; }
    }
}
control FwdEgress(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control FwdCompute(inout headers_t hdr, inout meta_t meta) { apply { } }
control FwdDeparser(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.eth); pkt.emit(hdr.vlan); } }
V1Switch(FwdParser(), FwdVerify(), FwdIngress(), FwdEgress(), FwdCompute(), FwdDeparser()) main;
"""

HOST_MAC = {1: bytes.fromhex("020000000001"), 2: bytes.fromhex("020000000002")}
TEST_ETHERTYPE = b"\x88\xb5"


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def tagged(src: int, dst: int, pcp: int, seq: int, size: int = 200) -> bytes:
    head = HOST_MAC[dst] + HOST_MAC[src] + b"\x81\x00" + ((pcp << 13) | 1).to_bytes(2, "big") + TEST_ETHERTYPE
    return head + seq.to_bytes(4, "big") + bytes(size - len(head) - 4)


def untagged(src: int, dst: int, seq: int, size: int = 200) -> bytes:
    head = HOST_MAC[dst] + HOST_MAC[src] + TEST_ETHERTYPE
    return head + seq.to_bytes(4, "big") + bytes(size - len(head) - 4)


class Lab:
    """A namespace with the switch's ends of two veth pairs; the hosts' ends stay here."""

    def __init__(self, tmp_path: Path):
        self.tag = uuid.uuid4().hex[:6]
        self.netns = f"fl{self.tag}"
        self.tmp = tmp_path
        self.host_if = {i: f"fl{self.tag}h{i}" for i in (1, 2)}
        self.switch_if = {i: f"fl{self.tag}s{i}" for i in (1, 2)}
        self.hosts: dict[int, Port] = {}
        self.proc: subprocess.Popen | None = None
        self.program = tmp_path / "forward.p4"
        self.program.write_text(FORWARD_P4)
        self.stats_file = tmp_path / "stats.json"
        self.log_file = tmp_path / "switch.log"

    def up(self) -> None:
        sh("ip", "netns", "add", self.netns)
        sh("ip", "-n", self.netns, "link", "set", "lo", "up")
        for i in (1, 2):
            sh("ip", "link", "add", self.host_if[i], "type", "veth", "peer", "name", self.switch_if[i])
            sh("ip", "link", "set", self.switch_if[i], "netns", self.netns)
            sh("ip", "-n", self.netns, "link", "set", self.switch_if[i], "up")
            sh("sysctl", "-qw", f"net.ipv6.conf.{self.host_if[i]}.disable_ipv6=1")   # no MLD/RS noise
            sh("ip", "link", "set", self.host_if[i], "up")
            self.hosts[i] = Port(i, self.host_if[i])

    def start_switch(self, config: str, *extra: str) -> None:
        config_path = self.tmp / "switch.yaml"
        config_path.write_text(config)
        cmd = ["ip", "netns", "exec", self.netns, sys.executable, "-m", "fabriclab", "switch",
               "--p4", str(self.program), "-i", f"1@{self.switch_if[1]}", "-i", f"2@{self.switch_if[2]}",
               "--config", str(config_path), "--stats-file", str(self.stats_file), *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.log_file, "w"))
        deadline = time.monotonic() + 30
        while "switch ready" not in self.log_file.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"switch did not start:\n{self.log_file.read_text()}")
            time.sleep(0.05)

    def stop_switch(self) -> dict:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=10) == 0, self.log_file.read_text()
        self.proc = None
        return json.loads(self.stats_file.read_text())

    def receive(self, host: int, want, timeout: float) -> list[tuple[float, bytes]]:
        """(monotonic time, frame) of frames on ``host`` that ``want`` accepts, until ``timeout`` passes
        or ``want`` returns 'enough'."""
        port = self.hosts[host]
        got: list[tuple[float, bytes]] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            select.select([port], [], [], left)
            now = time.monotonic()
            for frame in port.receive(256):
                verdict = want(frame)
                if verdict:
                    got.append((now, frame))
                if verdict == "enough":
                    return got
        return got

    def down(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        for port in self.hosts.values():
            port.close()
        for name in self.host_if.values():
            subprocess.run(["ip", "link", "del", name], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def is_test_frame(frame: bytes) -> bool:
    return frame[12:14] == TEST_ETHERTYPE or frame[16:18] == TEST_ETHERTYPE


def test_forwards_both_ways_through_the_compiled_program(lab):
    lab.start_switch("rate: 100M\n", "--grpc-addr", "127.0.0.1:0")
    count = 200
    for seq in range(count):
        lab.hosts[1].send(untagged(1, 2, seq))
        lab.hosts[2].send(tagged(2, 1, 5, seq))
    at_2 = lab.receive(2, lambda f: is_test_frame(f) and ("enough" if f[14:18] == (count - 1).to_bytes(4, "big")
                                                          else True), 5)
    at_1 = lab.receive(1, lambda f: is_test_frame(f) and ("enough" if f[18:22] == (count - 1).to_bytes(4, "big")
                                                          else True), 5)
    assert [f for _, f in at_2] == [untagged(1, 2, s) for s in range(count)]
    assert [f for _, f in at_1] == [tagged(2, 1, 5, s) for s in range(count)]   # tag and PCP intact
    # the runtime API (switch-cli's TM views) answers from inside the switch's namespace
    api_port = re.search(r"runtime API on port\(s\) (\d+)", lab.log_file.read_text()).group(1)
    client = ("import json; from fabriclab.switch.runtime_api import RuntimeApiClient; "
              f"print(json.dumps(RuntimeApiClient('127.0.0.1:{api_port}').call('stats')))")
    live = json.loads(subprocess.run(["ip", "netns", "exec", lab.netns, sys.executable, "-c", client],
                                     capture_output=True, text=True, check=True, timeout=30).stdout)
    assert live["tm"]["ports"]["2"]["priorities"]["0"]["dequeued"] == count
    stats = lab.stop_switch()
    assert stats["ports"]["1"]["rx_frames"] >= count and stats["ports"]["2"]["tx_frames"] >= count
    assert stats["tm"]["ports"]["1"]["priorities"]["5"]["dequeued"] == count
    assert stats["tm"]["ports"]["2"]["priorities"]["0"]["dequeued"] == count
    assert "P4Runtime server on 127.0.0.1:0" in lab.log_file.read_text()


def test_pfc_frames_on_the_wire(lab):
    quanta = 4000
    lab.start_switch("rate: 100M\nlossless: [3]\nports:\n  2: {rate: 2M}\n"
                     f"pfc: {{xoff: 3000, xon: 1000, headroom: 100KB, quanta: {quanta}}}\n",
                     "--grpc-addr", "none", "--pcap", str(lab.tmp / "pcap"), "--pfc-log", str(lab.tmp / "pfc.log"))
    for seq in range(20):                    # 10 KB at line rate into a 2 Mbit/s egress
        lab.hosts[1].send(tagged(1, 2, 3, seq, size=500))
    pauses = lab.receive(1, lambda f: parse_mac_control(f) is not None, 1.0)
    stats = lab.stop_switch()

    timers = [parse_mac_control(f).quanta[3] for _, f in pauses]
    assert timers[0] == quanta and timers[-1] == 0          # XOFF first, XON once drained
    decoded = Ether(pauses[0][1])
    assert decoded.dst == "01:80:c2:00:00:01" and decoded.type == 0x8808
    pfc = decoded[MACControlClassBasedFlowControl]
    assert pfc.c3_enabled == 1 and pfc.c3_pause_time == quanta and pfc.c0_enabled == 0
    prio = stats["tm"]["ports"]["1"]["priorities"]["3"]
    assert prio["xoff_events"] >= 1 and prio["pfc_tx"] == len(pauses)
    assert stats["tm"]["ports"]["2"]["priorities"]["3"]["dequeued"] == 20     # lossless: nothing dropped
    events = [line.split()[1:] for line in (lab.tmp / "pfc.log").read_text().splitlines()]
    assert events == [["1", "3", "pause" if t else "resume", "tx"] for t in timers]

    pcap = next((lab.tmp / "pcap").glob("port1-*.pcap"))
    shark = subprocess.run(["tshark", "-r", str(pcap), "-V", "-Y", "macc"], capture_output=True, text=True,
                           timeout=60)
    assert shark.returncode == 0, shark.stderr
    # Wireshark names 802.1Qbb PFC "Class Based Flow Control [CBFC] Pause", opcode 0x0101
    assert "MAC Control" in shark.stdout and "C3: True" in shark.stdout
    assert shark.stdout.count("Opcode: Class Based Flow Control [CBFC] Pause (0x0101)") == len(pauses)


def test_received_pause_silences_one_priority_for_its_quanta(lab):
    lab.start_switch("rate: 100M\n", "--grpc-addr", "none")
    quanta = 20_000
    pause_s = quanta * 512 / 100e6                             # 102.4 ms at 100 Mbit/s
    lab.hosts[2].send(build_pfc_frame(HOST_MAC[2], {3: quanta}))
    time.sleep(0.005)                                          # let the switch take the pause first
    start = time.monotonic()
    lab.hosts[1].send(tagged(1, 2, 3, 1))
    lab.hosts[1].send(tagged(1, 2, 0, 2))
    seen = {}

    def want(frame):
        if is_test_frame(frame):
            seen[frame[14] >> 5] = True
            return "enough" if len(seen) == 2 else True
        return False

    arrivals = {f[14] >> 5: t - start for t, f in lab.receive(2, want, 2.0)}
    stats = lab.stop_switch()
    assert arrivals[0] < 0.05                                  # the other priority is not held
    assert abs(arrivals[3] - (pause_s - 0.005)) < 0.05
    prio = stats["tm"]["ports"]["2"]["priorities"]["3"]
    assert prio["pfc_rx"] == 1 and prio["paused_ns"] == 102_400_000
