"""The Switch handle: packet-out injection, packet-in delivery, pipeline swap and stop, in-process;
and `fabriclab switch` started without a program, given one by a controller over P4Runtime."""
from __future__ import annotations

import re
import select
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from fabriclab.p4runtime.client import P4RuntimeClient
from fabriclab.compiler.driver import compile_source
from fabriclab.switch.ports import Port
from fabriclab.switch.switch import Switch
from fabriclab.switch.switch_config import config_from_dict
from support import numbered_frame, wait_for

pytestmark = pytest.mark.root

CPU_PORT = 64

# frames from the CPU port go out of port 1; everything else goes to the CPU
PUNT_P4 = """
#include <core.p4>
#include <v1model.p4>
header ethernet_t { bit<48> dst; bit<48> src; bit<16> ether_type; }
struct headers_t { ethernet_t eth; }
struct meta_t { }
parser PuntParser(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.eth); transition accept; }
}
control PuntVerify(inout headers_t hdr, inout meta_t meta) { apply { } }
control PuntIngress(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        if (sm.ingress_port == %d) { sm.egress_spec = 1; } else { sm.egress_spec = %d; }
    }
}
control PuntEgress(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control PuntCompute(inout headers_t hdr, inout meta_t meta) { apply { } }
control PuntDeparser(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.eth); } }
V1Switch(PuntParser(), PuntVerify(), PuntIngress(), PuntEgress(), PuntCompute(), PuntDeparser()) main;
""" % (CPU_PORT, CPU_PORT)

# a program that drops everything: egress_spec = 511
DROP_P4 = PUNT_P4.replace("sm.egress_spec = 1; } else { sm.egress_spec = %d; }" % CPU_PORT,
                          "sm.egress_spec = 511; } else { sm.egress_spec = 511; }")


@pytest.fixture
def veth():
    host, switch_side = f"fl{uuid.uuid4().hex[:6]}h", None
    switch_side = host[:-1] + "s"
    subprocess.run(["ip", "link", "add", host, "type", "veth", "peer", "name", switch_side], check=True)
    try:
        for name in (host, switch_side):
            subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1"], check=True)
            subprocess.run(["ip", "link", "set", name, "up"], check=True)
        yield host, switch_side
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True)




def test_packet_out_in_and_pipeline_swap(veth):
    host_if, switch_if = veth
    switch = Switch(config_from_dict({"rate": "100M"}), [(1, switch_if)], cpu_port=CPU_PORT)
    host = Port(1, host_if)
    packet_ins: list[bytes] = []
    switch.packet_in_sink = packet_ins.append
    switch.set_pipeline(compile_source(PUNT_P4, "punt"))
    loop = threading.Thread(target=switch.serve)
    loop.start()
    try:
        switch.inject_packet_out(numbered_frame(1))                # from a gRPC thread, say
        select.select([host], [], [], 3)
        assert wait_for(lambda: numbered_frame(1) in host.receive(16))

        host.send(numbered_frame(2))
        assert wait_for(lambda: numbered_frame(2) in packet_ins)

        with switch.lock:                                   # as the P4Runtime server does
            switch.set_pipeline(compile_source(DROP_P4, "drop"))
        host.send(numbered_frame(3))
        time.sleep(0.2)
        assert numbered_frame(3) not in packet_ins
        assert switch.stats()["tm"]["ports"][CPU_PORT]["priorities"][0]["dequeued"] == 1
    finally:
        switch.stop()
        loop.join(timeout=5)
        switch.close()
        host.close()
    assert not loop.is_alive()


def test_frames_without_a_pipeline_are_counted_not_forwarded(veth):
    host_if, switch_if = veth
    switch = Switch(config_from_dict({}), [(1, switch_if)])
    host = Port(1, host_if)
    loop = threading.Thread(target=switch.serve)
    loop.start()
    try:
        host.send(numbered_frame(1))
        assert wait_for(lambda: switch.stats()["drops"].get("no_pipeline", 0) >= 1, timeout=10)
    finally:
        switch.stop()
        loop.join(timeout=5)
        switch.close()
        host.close()


def test_pipeline_installed_over_p4runtime_then_packet_io(veth, tmp_path):
    host_if, switch_if = veth
    program = tmp_path / "punt.p4"
    program.write_text(PUNT_P4)
    log = tmp_path / "switch.log"
    proc = subprocess.Popen([sys.executable, "-m", "fabriclab", "switch", "-i", f"1@{switch_if}",
                             "--cpu-port", str(CPU_PORT), "--device-id", "1", "--grpc-addr", "127.0.0.1:0",
                             "--api-addr", "none"], stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    host = Port(1, host_if)
    client = None
    try:
        deadline = time.monotonic() + 30
        while not (match := re.search(r"P4Runtime server on \S+ \(port (\d+)\)", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        client = P4RuntimeClient(f"127.0.0.1:{match.group(1)}", device_id=1).connect()
        client.set_pipeline(str(program))

        host.send(numbered_frame(7))
        assert client.get_packet_in(timeout=10).payload == numbered_frame(7)

        client.send_packet_out(numbered_frame(8))
        deadline = time.monotonic() + 10
        received: list[bytes] = []
        while numbered_frame(8) not in received and time.monotonic() < deadline:
            select.select([host], [], [], 0.5)
            received += host.receive(16)
        assert numbered_frame(8) in received
    finally:
        if client is not None:
            client.close()
        host.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, log.read_text()
