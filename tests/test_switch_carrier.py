"""The switch notices carrier loss on a port, reports it on the runtime API's link_events long
poll, never transmits into the down port (counted as port_down), and resumes when carrier is back."""
from __future__ import annotations

import subprocess
import threading
import time

import pytest

from fabriclab.compiler.driver import compile_source
from fabriclab.switch.ports import Port
from fabriclab.switch.runtime_api import RuntimeApiClient, RuntimeApiError, RuntimeApiServer
from fabriclab.switch.switch import Switch
from fabriclab.switch.switch_config import config_from_dict
from support import numbered_frame, wait_for

pytestmark = pytest.mark.root

# everything from port 2 goes out of port 1
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
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { sm.egress_spec = 1; } }
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control C(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.eth); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""




def set_link(ifname: str, state: str) -> None:
    subprocess.run(["ip", "link", "set", ifname, state], check=True)


def test_carrier_loss_is_reported_and_the_port_is_not_transmitted_into(veth_pair, tmp_path):
    import uuid

    out_switch, out_peer = veth_pair
    in_host = f"fl{uuid.uuid4().hex[:6]}h"
    in_switch = in_host[:-1] + "s"
    subprocess.run(["ip", "link", "add", in_host, "type", "veth", "peer", "name", in_switch], check=True)
    switch = api = server = loop = None
    try:
        for name in (in_host, in_switch):
            subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1"], check=True)
            set_link(name, "up")
        switch = Switch(config_from_dict({"rate": "100M"}), [(1, out_switch), (2, in_switch)])
        switch.set_pipeline(compile_source(FORWARD_P4, "forward"))
        server = RuntimeApiServer(switch, "127.0.0.1:0")
        server.start()
        loop = threading.Thread(target=switch.serve)
        loop.start()
        api = RuntimeApiClient(f"127.0.0.1:{server.port}")
        host, peer = Port(2, in_host), Port(1, out_peer)
        try:
            first = api.call("link_events", since=None)
            assert first["up"] == {"1": True, "2": True} and first["events"] == []

            host.send(numbered_frame(1))
            assert wait_for(lambda: numbered_frame(1) in peer.receive(16))

            before = time.monotonic_ns()
            set_link(out_peer, "down")         # the far end goes away: port 1 loses carrier
            answer = api.call("link_events", since=first["seq"], timeout=10)
            assert [(e["port"], e["up"]) for e in answer["events"]] == [(1, False)]
            assert answer["events"][0]["time_ns"] >= before and answer["up"]["1"] is False
            assert switch.stats()["ports"][1]["up"] is False

            sent = switch.stats()["ports"][1]["tx_frames"]
            for seq in range(2, 12):
                host.send(numbered_frame(seq))
            assert wait_for(lambda: switch.stats()["drops"].get("port_down", 0) == 10)
            assert switch.stats()["ports"][1]["tx_frames"] == sent

            set_link(out_peer, "up")
            again = api.call("link_events", since=answer["seq"], timeout=10)
            assert [(e["port"], e["up"]) for e in again["events"]] == [(1, True)]
            peer.receive(256)
            host.send(numbered_frame(99))
            assert wait_for(lambda: numbered_frame(99) in peer.receive(16))

            with pytest.raises(RuntimeApiError, match="timeout"):
                api.call("link_events", since=0, timeout=99)
        finally:
            host.close()
            peer.close()
    finally:
        if api is not None:
            api.close()
        if switch is not None:
            switch.stop()
        if loop is not None:
            loop.join(timeout=5)
        if server is not None:
            server.stop()
        if switch is not None:
            switch.close()
        subprocess.run(["ip", "link", "del", in_host], capture_output=True)
