"""The P4Runtime server over a real gRPC port with a real compiled pipeline, driven by our
client and by raw protobuf requests (for the malformed ones).

The other P4Runtime/switch-cli test modules import ``P4_PROGRAM``, ``FakeSwitch`` and
``serve`` from here."""
from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

import grpc
import pytest
from finsy.proto import p4r, rpc_status

from fabriclab.p4runtime.client import P4RuntimeClient, P4RuntimeError
from fabriclab.compiler import driver
from fabriclab.compiler import p4info
from fabriclab.p4runtime.codec import encode_int, pack_device_config
from fabriclab.p4runtime.server import CLONE_GROUP_BASE, P4RuntimeServer, decode_int
from fabriclab.v1model.loader import instantiate
from support import wait_for

CPU_PORT = 255

P4_PROGRAM = r"""
#include <core.p4>
#include <v1model.p4>

const bit<9> CPU_PORT = 255;

@controller_header("packet_in")
header packet_in_t { bit<9> ingress_port; bit<7> _pad; }
@controller_header("packet_out")
header packet_out_t { bit<9> egress_port; bit<7> _pad; }
header ethernet_t { bit<48> dstAddr; bit<48> srcAddr; bit<16> etherType; }
header ipv4_t {
    bit<4> version; bit<4> ihl; bit<8> diffserv; bit<16> totalLen; bit<16> identification;
    bit<3> flags; bit<13> fragOffset; bit<8> ttl; bit<8> protocol; bit<16> hdrChecksum;
    bit<32> srcAddr; bit<32> dstAddr;
}
struct learn_t { bit<48> srcAddr; bit<9> ingress_port; }
struct metadata { bit<16> l4_port; }
struct headers { packet_out_t packet_out; packet_in_t packet_in; ethernet_t ethernet; ipv4_t ipv4; }

parser MyParser(packet_in packet, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    state start {
        transition select(sm.ingress_port) { CPU_PORT: parse_packet_out; default: parse_ethernet; }
    }
    state parse_packet_out { packet.extract(hdr.packet_out); transition parse_ethernet; }
    state parse_ethernet {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) { 0x0800: parse_ipv4; default: accept; }
    }
    state parse_ipv4 { packet.extract(hdr.ipv4); transition accept; }
}
control MyVerifyChecksum(inout headers hdr, inout metadata meta) { apply { } }
control MyIngress(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    direct_counter(CounterType.packets_and_bytes) mac_counter;
    direct_meter<bit<2>>(MeterType.packets) acl_meter;
    counter(8, CounterType.packets_and_bytes) port_counter;
    meter(4, MeterType.bytes) port_meter;
    register<bit<32>>(8) last_seen;
    action_selector(HashAlgorithm.crc16, 32w64, 32w14) ecmp_selector;
    bit<2> color;

    action drop() { mark_to_drop(sm); }
    action forward(bit<9> port) { sm.egress_spec = port; }
    action forward_mac(bit<9> port, bit<48> dmac) {
        sm.egress_spec = port; hdr.ethernet.dstAddr = dmac; mac_counter.count();
    }
    action to_cpu() { sm.egress_spec = CPU_PORT; }
    action flood(bit<16> group) { sm.mcast_grp = group; }
    action acl_drop() { acl_meter.read(color); mark_to_drop(sm); }
    action acl_allow() { acl_meter.read(color); }

    table mac_table {
        key = { hdr.ethernet.dstAddr: exact; }
        actions = { forward_mac; to_cpu; flood; drop; NoAction; }
        counters = mac_counter;
        default_action = NoAction();
        size = 64;
    }
    table ipv4_lpm {
        key = { hdr.ipv4.dstAddr: lpm; }
        actions = { forward; drop; }
        default_action = drop();
    }
    table acl {
        key = { hdr.ipv4.protocol: ternary; meta.l4_port: range; hdr.ethernet.srcAddr: optional; }
        actions = { acl_drop; acl_allow; }
        meters = acl_meter;
        default_action = acl_allow();
    }
    table ecmp {
        key = { hdr.ipv4.dstAddr: exact; hdr.ipv4.srcAddr: selector; }
        actions = { forward; NoAction; }
        default_action = NoAction();
        implementation = ecmp_selector;
    }
    apply {
        if (hdr.packet_out.isValid()) {
            sm.egress_spec = hdr.packet_out.egress_port;
            hdr.packet_out.setInvalid();
            return;
        }
        port_counter.count((bit<32>) sm.ingress_port);
        last_seen.write((bit<32>) sm.ingress_port, 32w1);
        if (hdr.ethernet.etherType == 0x1234) {
            digest<learn_t>(1, { hdr.ethernet.srcAddr, sm.ingress_port });
        }
        mac_table.apply();
        if (hdr.ipv4.isValid()) { ipv4_lpm.apply(); acl.apply(); ecmp.apply(); }
    }
}
control MyEgress(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    apply {
        if (sm.egress_port == CPU_PORT) {
            hdr.packet_in.setValid();
            hdr.packet_in.ingress_port = sm.ingress_port;
        }
    }
}
control MyComputeChecksum(inout headers hdr, inout metadata meta) { apply { } }
control MyDeparser(packet_out packet, in headers hdr) {
    apply { packet.emit(hdr.packet_in); packet.emit(hdr.ethernet); packet.emit(hdr.ipv4); }
}
V1Switch(MyParser(), MyVerifyChecksum(), MyIngress(), MyEgress(), MyComputeChecksum(), MyDeparser()) main;
"""


def ethernet(dst: str, src: str, ethertype: int, payload: bytes = b"\x00" * 46) -> bytes:
    return bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", "")) + \
        ethertype.to_bytes(2, "big") + payload


def ipv4_frame(dst_ip: str, src_ip: str = "10.9.9.9", protocol: int = 17) -> bytes:
    header = bytes([0x45, 0, 0, 40, 0, 1, 0, 0, 64, protocol, 0, 0]) + \
        bytes(int(x) for x in src_ip.split(".")) + bytes(int(x) for x in dst_ip.split("."))
    return ethernet("00:00:00:00:00:01", "00:00:00:00:00:02", 0x0800, header + b"\x00" * 26)


class FakeSwitch:
    """The handle ``switch.Switch`` gives the server, minus sockets: a real pipeline runs
    packet-outs at once and hands CPU-port frames to ``packet_in_sink``, as the switch does."""

    def __init__(self, tm=None, ports: dict | None = None):
        self.lock = threading.RLock()
        self.pipeline = None
        self.cpu_port = CPU_PORT
        self.packet_in_sink = None
        self.sent: list[tuple[int, bytes]] = []     # frames the pipeline sent to data ports
        self.tm = tm
        self.ports = ports or {}

    def set_pipeline(self, compiled) -> None:
        pipeline = instantiate(compiled, self.cpu_port)
        with self.lock:
            self.pipeline = pipeline

    def inject_packet_out(self, frame: bytes) -> None:
        self.receive(frame, self.cpu_port)

    def receive(self, frame: bytes, port: int) -> list[tuple[int, bytes]]:
        with self.lock:
            out = self.pipeline.process(frame, port)
        for egress_port, data in out:
            if egress_port == self.cpu_port and self.packet_in_sink is not None:
                self.packet_in_sink(data)
            else:
                self.sent.append((egress_port, data))
        return out

    def stats(self) -> dict:
        with self.lock:
            return {"ports": {n: p for n, p in sorted(self.ports.items())}, "drops": {}, "tm": self.tm.stats()}


@pytest.fixture(scope="session")
def program_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("p4rt") / "p4rt_test.p4"
    path.write_text(P4_PROGRAM)
    return path


@contextlib.contextmanager
def serve(device_id: int = 0, switch: FakeSwitch | None = None):
    """A started server on a free 127.0.0.1 port: yields (switch, "127.0.0.1:PORT", server)."""
    switch = switch or FakeSwitch()
    server = P4RuntimeServer(switch, "127.0.0.1:0", device_id)
    server.start()
    switch.packet_in_sink = server.packet_in
    try:
        yield switch, f"127.0.0.1:{server.port}", server
    finally:
        server.stop(grace=0.1)


@pytest.fixture
def server():
    with serve() as served:
        yield served


@pytest.fixture
def client(server, program_path):
    """The primary controller, with the test program installed."""
    with P4RuntimeClient(server[1], device_id=0, election_id=10).connect() as c:
        c.set_pipeline(str(program_path), cookie=0xC0FFEE)
        yield c


def switch_of(server) -> FakeSwitch:
    return server[0]


def rpc_code(excinfo) -> str:
    return excinfo.value.code


def update_codes(excinfo) -> list[str]:
    return [code for _, code, _ in excinfo.value.errors]


# --- pipeline config ---------------------------------------------------------------------

def test_capabilities_and_no_pipeline_yet(server):
    with P4RuntimeClient(server[1], device_id=0, election_id=1).connect() as c:
        assert c.capabilities().startswith("1.3")
        assert c.names is None
        with pytest.raises(P4RuntimeError) as err:
            c.get_pipeline_config()
        assert rpc_code(err) == "FAILED_PRECONDITION"
        # finsy recognises a missing pipeline by this wording
        assert "no forwarding pipeline config" in err.value.message.lower()
        with pytest.raises(P4RuntimeError) as err:
            c.write([])
        assert rpc_code(err) == "FAILED_PRECONDITION"


def test_get_pipeline_config_response_types(client, program_path):
    everything = client.get_pipeline_config("ALL")
    assert everything.cookie.cookie == 0xC0FFEE
    assert {t.preamble.name for t in everything.p4info.tables} == {
        "MyIngress.mac_table", "MyIngress.ipv4_lpm", "MyIngress.acl", "MyIngress.ecmp"}
    assert everything.p4_device_config == pack_device_config(str(program_path))

    cookie = client.get_pipeline_config("COOKIE_ONLY")
    assert cookie.cookie.cookie == 0xC0FFEE and not cookie.HasField("p4info") and not cookie.p4_device_config

    info = client.get_pipeline_config("P4INFO_AND_COOKIE")
    assert info.HasField("p4info") and not info.p4_device_config and info.cookie.cookie == 0xC0FFEE

    blob = client.get_pipeline_config("DEVICE_CONFIG_AND_COOKIE")
    assert blob.p4_device_config and not blob.HasField("p4info")


def test_verify_checks_without_committing_and_save_then_commit(server, program_path):
    switch = switch_of(server)
    with P4RuntimeClient(server[1], device_id=0, election_id=1).connect() as c:
        info = p4info.build_p4info(driver.compile_file(str(program_path)).info)
        blob = program_path.read_bytes()      # raw P4 source is a valid device config too
        c.set_pipeline_config(info, blob, action="VERIFY")
        assert switch.pipeline is None
        c.set_pipeline_config(info, blob, cookie=7, action="VERIFY_AND_SAVE")
        assert switch.pipeline is None
        c.set_pipeline_config(p4r.ForwardingPipelineConfig().p4info, b"", action="COMMIT")
        assert switch.pipeline is not None and switch.pipeline.info.name == "program"
        assert c.get_pipeline_config("COOKIE_ONLY").cookie.cookie == 7
        with pytest.raises(P4RuntimeError) as err:
            c.set_pipeline_config(info, blob, action="COMMIT")   # nothing saved any more
        assert rpc_code(err) == "FAILED_PRECONDITION"
        with pytest.raises(P4RuntimeError) as err:
            c.set_pipeline_config(info, blob, action="RECONCILE_AND_COMMIT")
        assert rpc_code(err) == "UNIMPLEMENTED"


def test_bad_pipeline_configs_are_invalid_argument(server, program_path):
    with P4RuntimeClient(server[1], device_id=0, election_id=1).connect() as c:
        info = p4info.build_p4info(driver.compile_file(str(program_path)).info)
        with pytest.raises(P4RuntimeError) as err:
            c.set_pipeline_config(info, b"control broken(")
        assert rpc_code(err) == "INVALID_ARGUMENT" and "does not compile" in err.value.message
        renamed = type(info)()
        renamed.CopyFrom(info)
        renamed.tables[0].preamble.name = "MyIngress.no_such_table"
        with pytest.raises(P4RuntimeError) as err:
            c.set_pipeline_config(renamed, program_path.read_bytes())
        assert rpc_code(err) == "INVALID_ARGUMENT" and "no_such_table" in err.value.message
        with pytest.raises(P4RuntimeError) as err:
            c.set_pipeline_config(info, b"")
        assert rpc_code(err) == "INVALID_ARGUMENT"
    assert switch_of(server).pipeline is None


def test_ids_come_from_the_controllers_p4info(server, program_path):
    """A P4Info whose ids differ from ours (another compiler's) is honoured, matched by name."""
    info = p4info.build_p4info(driver.compile_file(str(program_path)).info)
    table = next(t for t in info.tables if t.preamble.name == "MyIngress.ipv4_lpm")
    action = next(a for a in info.actions if a.preamble.name == "MyIngress.forward")
    old_action_id = action.preamble.id
    table.preamble.id, action.preamble.id = 0x02000077, 0x01000077
    for t in info.tables:
        for ref in t.action_refs:
            if ref.id == old_action_id:
                ref.id = 0x01000077
    with P4RuntimeClient(server[1], device_id=0, election_id=1).connect() as c:
        c.set_pipeline_config(info, program_path.read_bytes())
        c.insert_table_entry("ipv4_lpm", {"hdr.ipv4.dstAddr": "10.0.0.0/8"}, "forward", {"port": 9})
        assert c.table_entry("ipv4_lpm").table_id == 0x02000077
        assert c.read_table_entries("ipv4_lpm")[0].params == {"port": 9}
    (entry,) = switch_of(server).pipeline.state.tables["MyIngress.ipv4_lpm"].entries()
    assert entry.action.name == "MyIngress.forward" and entry.action.args == (9,)


def test_device_config_carries_local_includes(server, tmp_path):
    for folder in ("app", "shared", "shared/more"):
        (tmp_path / folder).mkdir()
    main, rest = P4_PROGRAM.split("const bit<9> CPU_PORT = 255;")
    body, tail = rest.split("control MyVerifyChecksum")
    (tmp_path / "shared" / "body.p4").write_text("const bit<9> CPU_PORT = 255;" + body + '#include "more/tail.p4"\n')
    (tmp_path / "shared" / "more" / "tail.p4").write_text("control MyVerifyChecksum" + tail)
    (tmp_path / "app" / "main.p4").write_text(main + '#include "../shared/body.p4"\n')
    packed = json.loads(pack_device_config(str(tmp_path / "app" / "main.p4")))
    assert packed["main"] == "app/main.p4"
    assert sorted(packed["files"]) == ["app/main.p4", "shared/body.p4", "shared/more/tail.p4"]
    with P4RuntimeClient(server[1], device_id=0, election_id=1).connect() as c:
        c.set_pipeline(str(tmp_path / "app" / "main.p4"))
        assert switch_of(server).pipeline.info.name == "main"
        assert "MyIngress.ipv4_lpm" in c.names.names("tables")


def test_pipeline_set_by_the_switch_itself_is_served(server, program_path):
    switch = switch_of(server)
    switch.set_pipeline(driver.compile_file(str(program_path)))   # as `fabriclab switch --p4`
    with P4RuntimeClient(server[1], device_id=0, election_id=1).connect() as c:
        assert c.names is not None
        assert not c.get_pipeline_config("COOKIE_ONLY").HasField("cookie")
        c.insert_table_entry("ipv4_lpm", {"hdr.ipv4.dstAddr": "10.0.0.0/8"}, "forward", {"port": 1})
        assert len(switch.pipeline.state.tables["MyIngress.ipv4_lpm"].entries()) == 1


def test_wrong_device_id_is_not_found(server, client):
    with pytest.raises(P4RuntimeError) as err:
        P4RuntimeClient(server[1], device_id=5, election_id=3).connect()
    assert rpc_code(err) == "NOT_FOUND"
    request = p4r.ReadRequest(device_id=9, entities=[p4r.Entity(table_entry=p4r.TableEntry())])
    with pytest.raises(grpc.RpcError) as raw:
        list(client.stub.Read(request))
    assert raw.value.code() == grpc.StatusCode.NOT_FOUND


# --- tables --------------------------------------------------------------------------------

def test_table_entries_insert_read_and_forward(server, client):
    client.insert_table_entry("mac_table", {"hdr.ethernet.dstAddr": "00:00:00:00:00:01"}, "forward_mac",
                              {"port": 4, "dmac": "aa:bb:cc:dd:ee:ff"})
    client.insert_table_entry("ipv4_lpm", {"hdr.ipv4.dstAddr": ("10.1.0.0", 16)}, "forward", {"port": 2})
    client.insert_table_entry("acl", {"hdr.ipv4.protocol": (6, 0xFF), "meta.l4_port": (80, 443)},
                              "acl_drop", priority=20)
    client.insert_table_entry("acl", {"hdr.ethernet.srcAddr": "00:00:00:00:00:02"}, "acl_allow", priority=5)

    everything = client.read_table_entries()              # table_id 0: every table
    assert sorted(e.table for e in everything) == ["MyIngress.acl", "MyIngress.acl", "MyIngress.ipv4_lpm",
                                                   "MyIngress.mac_table"]
    (mac,) = client.read_table_entries("mac_table")
    assert mac.match == {"hdr.ethernet.dstAddr": 1}
    assert (mac.action, mac.params) == ("MyIngress.forward_mac", {"port": 4, "dmac": 0xAABBCCDDEEFF})
    assert (mac.packets, mac.bytes) == (0, 0)               # the table has a direct counter
    acl = {e.priority: e for e in client.read_table_entries("acl")}
    assert acl[20].match == {"hdr.ipv4.protocol": (6, 0xFF), "meta.l4_port": (80, 443)}   # wildcards omitted
    assert acl[5].match == {"hdr.ethernet.srcAddr": 2}
    (one,) = client.read_table_entries("acl", {"hdr.ethernet.srcAddr": 2}, priority=5)
    assert one.action == "MyIngress.acl_allow"

    # the entries are in the running pipeline: the packet is forwarded and counted
    out = switch_of(server).receive(ipv4_frame("10.1.2.3"), 1)
    assert [port for port, _ in out] == [2]
    assert out[0][1][:6] == bytes.fromhex("aabbccddeeff")   # forward_mac ran first (mac_table)
    (mac,) = client.read_table_entries("mac_table")
    assert mac.packets == 1 and mac.bytes == len(ipv4_frame("10.1.2.3"))


def test_modify_delete_and_default_entries(server, client):
    match = {"hdr.ipv4.dstAddr": "10.0.0.0/8"}
    client.insert_table_entry("ipv4_lpm", match, "forward", {"port": 1})
    client.modify_table_entry("ipv4_lpm", match, "forward", {"port": 3})
    assert client.read_table_entries("ipv4_lpm")[0].params == {"port": 3}
    assert [p for p, _ in switch_of(server).receive(ipv4_frame("10.2.3.4"), 1)] == [3]
    client.delete_table_entry("ipv4_lpm", match)
    assert client.read_table_entries("ipv4_lpm") == []

    default = client.read_default_action("ipv4_lpm")
    assert default.is_default and default.action == "MyIngress.drop"
    client.set_default_action("ipv4_lpm", "forward", {"port": 6})
    assert client.read_default_action("ipv4_lpm").params == {"port": 6}
    assert [p for p, _ in switch_of(server).receive(ipv4_frame("192.168.0.1"), 1)] == [6]
    client.reset_default_action("ipv4_lpm")
    assert client.read_default_action("ipv4_lpm").action == "MyIngress.drop"
    assert client.read_table_entries("ipv4_lpm") == []     # default entries are not in wildcard reads


def test_per_update_errors_follow_the_spec(client):
    lpm = client.table_entry("ipv4_lpm", {"hdr.ipv4.dstAddr": "10.0.0.0/8"}, "forward", {"port": 1})
    other = client.table_entry("ipv4_lpm", {"hdr.ipv4.dstAddr": "11.0.0.0/8"}, "forward", {"port": 1})
    client.write_one("INSERT", p4r.Entity(table_entry=lpm))
    updates = [p4r.Update(type=p4r.Update.INSERT, entity=p4r.Entity(table_entry=other)),
               p4r.Update(type=p4r.Update.INSERT, entity=p4r.Entity(table_entry=lpm)),
               p4r.Update(type=p4r.Update.DELETE, entity=p4r.Entity(table_entry=client.table_entry(
                   "ipv4_lpm", {"hdr.ipv4.dstAddr": "12.0.0.0/8"})))]
    request = p4r.WriteRequest(device_id=0, updates=updates)
    request.election_id.low = 10
    with pytest.raises(grpc.RpcError) as raw:
        client.stub.Write(request)
    assert raw.value.code() == grpc.StatusCode.UNKNOWN
    details = dict(raw.value.trailing_metadata())["grpc-status-details-bin"]
    status = rpc_status.Status.FromString(details)
    codes = []
    for any_error in status.details:
        error = p4r.Error()
        assert any_error.Unpack(error)
        codes.append(error.canonical_code)
    # CONTINUE_ON_ERROR: one p4.v1.Error per update, OK for the one that was applied
    assert codes == [grpc.StatusCode.OK.value[0], grpc.StatusCode.ALREADY_EXISTS.value[0],
                     grpc.StatusCode.NOT_FOUND.value[0]]
    assert len(client.read_table_entries("ipv4_lpm")) == 2


def _raw_update(client, op: str, entry) -> None:
    client.write_one(op, p4r.Entity(table_entry=entry))


def test_bytestrings_canonical_out_padded_in_and_width_checked(client):
    assert encode_int(0) == b"\x00" and encode_int(0x1FF) == b"\x01\xff"
    entry = client.table_entry("ipv4_lpm", {"hdr.ipv4.dstAddr": "10.0.0.0/8"}, "forward", {"port": 1})
    entry.action.action.params[0].value = b"\x00\x00\x01"        # non-canonical: accepted
    _raw_update(client, "INSERT", entry)
    read = client.read([p4r.Entity(table_entry=p4r.TableEntry(table_id=entry.table_id))])[0].table_entry
    assert read.action.action.params[0].value == b"\x01"           # read back canonical
    assert read.match[0].lpm.value == b"\x0a\x00\x00\x00"

    entry.action.action.params[0].value = b"\x02\x00"               # 512 does not fit bit<9>
    with pytest.raises(P4RuntimeError) as err:
        _raw_update(client, "MODIFY", entry)
    assert update_codes(err) == ["OUT_OF_RANGE"]
    entry.action.action.params[0].value = b""
    with pytest.raises(P4RuntimeError) as err:
        _raw_update(client, "MODIFY", entry)
    assert update_codes(err) == ["INVALID_ARGUMENT"]
    with pytest.raises(Exception):
        decode_int(b"\x01\x00", 8, "x")


@pytest.mark.parametrize("mutate, code", [
    (lambda e: setattr(e, "table_id", 12345), "NOT_FOUND"),
    (lambda e: e.match[0].ternary.__setattr__("mask", b"\x00"), "INVALID_ARGUMENT"),      # zero mask: omit
    (lambda e: e.match[0].ternary.__setattr__("value", b"\x07"), "INVALID_ARGUMENT"),     # bits outside mask
    (lambda e: setattr(e, "priority", 0), "INVALID_ARGUMENT"),                           # ternary needs one
    (lambda e: e.match[1].range.__setattr__("low", b"\x02\x00"), "INVALID_ARGUMENT"),    # low > high
    (lambda e: e.match[1].__setattr__("field_id", 1), "INVALID_ARGUMENT"),               # field given twice
    (lambda e: e.action.action.__setattr__("action_id", 1), "NOT_FOUND"),
])
def test_bad_table_entries_get_the_right_code(client, mutate, code):
    entry = client.table_entry("acl", {"hdr.ipv4.protocol": (6, 0xFE), "meta.l4_port": (1, 2)},
                               "acl_drop", priority=1)
    entry.match[0].ternary.value = b"\x06"
    mutate(entry)
    with pytest.raises(P4RuntimeError) as err:
        _raw_update(client, "INSERT", entry)
    assert update_codes(err) == [code]


def test_lpm_and_action_checks(client):
    entry = client.table_entry("ipv4_lpm", {"hdr.ipv4.dstAddr": ("10.0.0.1", 8)}, "forward", {"port": 1})
    with pytest.raises(P4RuntimeError) as err:                       # host bits past the prefix
        _raw_update(client, "INSERT", entry)
    assert update_codes(err) == ["INVALID_ARGUMENT"]
    entry = client.table_entry("ipv4_lpm", {"hdr.ipv4.dstAddr": ("10.0.0.0", 8)}, "forward", {"port": 1})
    del entry.action.action.params[:]                                 # missing parameter
    with pytest.raises(P4RuntimeError) as err:
        _raw_update(client, "INSERT", entry)
    assert update_codes(err) == ["INVALID_ARGUMENT"]
    entry = client.table_entry("ipv4_lpm", {"hdr.ipv4.dstAddr": ("10.0.0.0", 8)}, "to_cpu")  # not its action
    with pytest.raises(P4RuntimeError) as err:
        _raw_update(client, "INSERT", entry)
    assert update_codes(err) == ["INVALID_ARGUMENT"]
    with pytest.raises(P4RuntimeError) as err:
        client.delete_table_entry("ipv4_lpm", {"hdr.ipv4.dstAddr": "10.0.0.0/8"})
    assert update_codes(err) == ["NOT_FOUND"]


# --- action profiles -------------------------------------------------------------------------

def test_action_selector_members_groups_and_entries(server, client):
    for member, port in ((1, 11), (2, 12), (3, 13)):
        client.insert_member("ecmp_selector", member, "forward", {"port": port})
    client.insert_group("ecmp_selector", 100, [1, (2, 3)], max_size=8)
    client.insert_table_entry("ecmp", {"hdr.ipv4.dstAddr": "10.0.0.1"}, group_id=100)
    client.insert_table_entry("ecmp", {"hdr.ipv4.dstAddr": "10.0.0.2"}, member_id=3)

    assert client.read_members("ecmp_selector") == {1: ("MyIngress.forward", {"port": 11}),
                                                    2: ("MyIngress.forward", {"port": 12}),
                                                    3: ("MyIngress.forward", {"port": 13})}
    assert client.read_groups("ecmp_selector") == {100: [(1, 1), (2, 3)]}
    group = client.read([p4r.Entity(action_profile_group=p4r.ActionProfileGroup())])[0].action_profile_group
    assert group.max_size == 8
    entries = {e.match["hdr.ipv4.dstAddr"]: e for e in client.read_table_entries("ecmp")}
    assert entries[0x0A000001].group_id == 100 and entries[0x0A000002].member_id == 3

    sources = [f"10.{i}.{i * 7 % 256}.{i * 13 % 256}" for i in range(40)]
    ports = {p for src in sources for p, _ in switch_of(server).receive(ipv4_frame("10.0.0.1", src), 1)}
    assert ports == {11, 12}                                          # spread over the group's members
    assert [p for p, _ in switch_of(server).receive(ipv4_frame("10.0.0.2"), 1)] == [13]

    with pytest.raises(P4RuntimeError) as err:
        client.modify_group("ecmp_selector", 100, [(1, 5), (2, 5)])   # total weight 10 > max_size 8
    assert update_codes(err) == ["RESOURCE_EXHAUSTED"]
    with pytest.raises(P4RuntimeError) as err:
        client.delete_member("ecmp_selector", 1)                      # still in group 100
    assert update_codes(err) == ["FAILED_PRECONDITION"]
    with pytest.raises(P4RuntimeError) as err:
        client.insert_table_entry("ecmp", {"hdr.ipv4.dstAddr": "10.0.0.3"}, group_id=999)
    assert update_codes(err) == ["NOT_FOUND"]
    client.modify_group("ecmp_selector", 100, [3])
    assert client.read_groups("ecmp_selector") == {100: [(3, 1)]}


# --- counters, meters, registers ----------------------------------------------------------------

def test_counters_indirect_and_direct(server, client):
    switch_of(server).receive(ipv4_frame("10.0.0.1"), 3)
    switch_of(server).receive(ipv4_frame("10.0.0.1"), 3)
    cells = client.read_counter("port_counter")
    assert len(cells) == 8 and cells[3] == (2, 2 * len(ipv4_frame("10.0.0.1")))
    client.write_counter("port_counter", 3)
    assert client.read_counter("port_counter", 3) == {3: (0, 0)}
    client.write_counter("port_counter", None, packets=5, nbytes=50)  # every index
    assert set(client.read_counter("port_counter").values()) == {(5, 50)}
    with pytest.raises(P4RuntimeError) as err:
        client.read_counter("port_counter", 8)
    assert rpc_code(err) == "OUT_OF_RANGE"

    match = {"hdr.ethernet.dstAddr": "00:00:00:00:00:01"}
    client.insert_table_entry("mac_table", match, "forward_mac", {"port": 1, "dmac": 1})
    switch_of(server).receive(ipv4_frame("10.0.0.1"), 2)
    assert client.read_direct_counter("mac_table", match) == (1, len(ipv4_frame("10.0.0.1")))
    client.write_direct_counter("mac_table", match, packets=100, nbytes=1000)
    assert client.read_direct_counter("mac_table", match) == (100, 1000)
    wildcard = client.read([p4r.Entity(direct_counter_entry=p4r.DirectCounterEntry())])
    assert [e.direct_counter_entry.data.packet_count for e in wildcard] == [100]
    with pytest.raises(P4RuntimeError) as err:      # direct counters only support MODIFY
        client.write_one("INSERT", p4r.Entity(direct_counter_entry=p4r.DirectCounterEntry(
            table_entry=client.table_entry("mac_table", match))))
    assert update_codes(err) == ["INVALID_ARGUMENT"]


def test_meters_indirect_and_direct(client):
    assert client.read_meter("port_meter") == {0: None, 1: None, 2: None, 3: None}
    client.set_meter("port_meter", 2, (1000, 100, 2000, 200))
    assert client.read_meter("port_meter", 2) == {2: (1000, 100, 2000, 200)}
    client.set_meter("port_meter", 2, None)
    assert client.read_meter("port_meter", 2) == {2: None}
    with pytest.raises(P4RuntimeError) as err:
        client.set_meter("port_meter", 0, (3000, 1, 2000, 1))           # cir above pir
    assert update_codes(err) == ["INVALID_ARGUMENT"]

    match = {"hdr.ipv4.protocol": (17, 0xFF)}
    client.insert_table_entry("acl", match, "acl_allow", priority=3)
    client.set_direct_meter("acl", match, (10, 2, 20, 4), priority=3)
    (entry,) = client.read_table_entries("acl")
    assert entry.meter == (10, 2, 20, 4)
    direct = client.read([p4r.Entity(direct_meter_entry=p4r.DirectMeterEntry())])[0].direct_meter_entry
    assert (direct.config.cir, direct.config.pburst) == (10, 4)


def test_registers(server, client):
    switch_of(server).receive(ipv4_frame("10.0.0.1"), 5)              # the program writes last_seen[5] = 1
    assert client.read_register("last_seen") == {i: int(i == 5) for i in range(8)}
    client.write_register("last_seen", 2, 0xDEADBEEF)
    assert client.read_register("last_seen", 2) == {2: 0xDEADBEEF}
    client.write_register("last_seen", None, 7)
    assert set(client.read_register("last_seen").values()) == {7}
    entry = p4r.RegisterEntry(register_id=client.names.get("registers", "last_seen").preamble.id)
    entry.index.index = 0
    entry.data.bitstring = b"\x01\x00\x00\x00\x00"                    # 33 bits into bit<32>
    with pytest.raises(P4RuntimeError) as err:
        client.write_one("MODIFY", p4r.Entity(register_entry=entry))
    assert update_codes(err) == ["OUT_OF_RANGE"]


# --- packet replication ---------------------------------------------------------------------

def test_multicast_groups(server, client):
    client.insert_multicast_group(1, [1, 2, (3, 7)])
    client.insert_table_entry("mac_table", {"hdr.ethernet.dstAddr": "ff:ff:ff:ff:ff:ff"}, "flood", {"group": 1})
    out = switch_of(server).receive(ethernet("ff:ff:ff:ff:ff:ff", "00:00:00:00:00:02", 0x0801), 9)
    assert sorted(p for p, _ in out) == [1, 2, 3]
    assert client.read_multicast_groups() == {1: [(1, 0), (2, 0), (3, 7)]}
    client.modify_multicast_group(1, [4])
    assert client.read_multicast_groups(1) == {1: [(4, 0)]}
    with pytest.raises(P4RuntimeError) as err:
        client.insert_multicast_group(1, [5])
    assert update_codes(err) == ["ALREADY_EXISTS"]
    entity = p4r.Entity()                                                # P4Runtime 1.4 `port` bytes
    group = entity.packet_replication_engine_entry.multicast_group_entry
    group.multicast_group_id = 2
    group.replicas.add(port=b"\x00\x06", instance=1)
    client.write_one("INSERT", entity)
    assert client.read_multicast_groups(2) == {2: [(6, 1)]}
    client.delete_multicast_group(1)
    with pytest.raises(P4RuntimeError) as err:
        client.delete_multicast_group(1)
    assert update_codes(err) == ["NOT_FOUND"]


def test_clone_sessions(server, client):
    client.insert_clone_session(5, [4], packet_length=64)
    client.insert_clone_session(6, [(1, 0), (2, 1)])
    assert client.read_clone_sessions() == {5: [(4, 0)], 6: [(1, 0), (2, 1)]}
    pre = switch_of(server).pipeline.state.pre
    assert pre.clone_sessions[5].egress_port == 4 and pre.clone_sessions[5].truncate_length == 64
    assert pre.clone_sessions[6].mgid == CLONE_GROUP_BASE + 6             # the hidden group
    assert client.read_multicast_groups() == {}                           # ... is not a user group
    client.delete_clone_session(6)
    assert CLONE_GROUP_BASE + 6 not in pre.multicast_groups
    assert client.read_clone_sessions() == {5: [(4, 0)]}


# --- stream: arbitration, packet I/O, digests ------------------------------------------------------


def test_arbitration_between_two_controllers(server, client):
    with P4RuntimeClient(server[1], device_id=0, election_id=5).connect() as backup:
        assert client.is_primary and not backup.is_primary
        with pytest.raises(P4RuntimeError) as err:
            backup.write_register("last_seen", 0, 1)
        assert rpc_code(err) == "PERMISSION_DENIED"
        with pytest.raises(P4RuntimeError) as err:
            backup.set_pipeline_config(client.names.p4info, b"x")
        assert rpc_code(err) == "PERMISSION_DENIED"
        assert backup.read_register("last_seen", 0) == {0: 0}           # reads need no arbitration

        with pytest.raises(P4RuntimeError) as err:                        # election ids are unique
            P4RuntimeClient(server[1], device_id=0, election_id=5).connect()
        assert rpc_code(err) == "INVALID_ARGUMENT" and "election id" in err.value.message.lower()

        assert backup.arbitrate(20)                                       # a higher id takes over
        assert wait_for(lambda: not client.is_primary)
        backup.write_register("last_seen", 0, 3)
        with pytest.raises(P4RuntimeError) as err:
            client.write_register("last_seen", 0, 4)
        assert rpc_code(err) == "PERMISSION_DENIED"
    assert wait_for(lambda: client.is_primary)                              # the primary left
    client.write_register("last_seen", 0, 4)


def test_packet_out_and_packet_in_round_trip(server, client):
    payload = ethernet("00:00:00:00:00:09", "00:00:00:00:00:08", 0x0801)
    client.send_packet_out(payload, egress_port=7)
    assert wait_for(lambda: switch_of(server).sent)
    assert switch_of(server).sent == [(7, payload)]                      # the header was consumed

    client.insert_table_entry("mac_table", {"hdr.ethernet.dstAddr": "00:00:00:00:00:0c"}, "to_cpu")
    frame = ethernet("00:00:00:00:00:0c", "00:00:00:00:00:0b", 0x0801)
    switch_of(server).receive(frame, 3)
    packet = client.get_packet_in(timeout=3)
    assert packet.payload == frame and packet.metadata == {"ingress_port": 3, "_pad": 0}

    client.send_packet_out(frame, egress_port=CPU_PORT)                   # out and straight back in
    assert client.get_packet_in(timeout=3).metadata["ingress_port"] == CPU_PORT


def test_packet_out_from_a_backup_is_refused(server, client):
    with P4RuntimeClient(server[1], device_id=0, election_id=2).connect() as backup:
        backup.send_packet_out(b"\x00" * 60, egress_port=1)
        error = backup.stream_errors.get(timeout=3)
        assert error.canonical_code == grpc.StatusCode.PERMISSION_DENIED.value[0]
        assert error.packet_out.packet_out.payload == b"\x00" * 60
    assert switch_of(server).sent == []


def test_digests_need_a_digest_entry_and_are_batched(server, client):
    learn = ethernet("00:00:00:00:00:01", "00:00:00:00:00:aa", 0x1234)
    switch_of(server).receive(learn, 2)
    time.sleep(0.1)
    assert client.digests.empty()                                         # not configured: nothing sent

    client.enable_digest("learn_t", max_list_size=2)
    entry = client.read([p4r.Entity(digest_entry=p4r.DigestEntry())])[0].digest_entry
    assert entry.config.max_list_size == 2
    with switch_of(server).lock:                                          # two in one flush
        switch_of(server).pipeline.process(learn, 2)
        switch_of(server).pipeline.process(ethernet("00:00:00:00:00:01", "00:00:00:00:00:bb", 0x1234), 4)
    digest = client.get_digest(timeout=3)
    assert digest.name == "learn_t"
    assert digest.values == [{"srcAddr": 0xAA, "ingress_port": 2}, {"srcAddr": 0xBB, "ingress_port": 4}]
    with pytest.raises(P4RuntimeError) as err:
        client.enable_digest("learn_t")
    assert update_codes(err) == ["ALREADY_EXISTS"]


def test_digest_lists_wait_for_max_timeout_and_repeats_wait_for_the_ack(server, client):
    switch = switch_of(server)
    client.enable_digest("learn_t", max_list_size=10, max_timeout_ns=300_000_000, ack_timeout_ns=10**12)
    learn = ethernet("00:00:00:00:00:01", "00:00:00:00:00:aa", 0x1234)
    sent_at = time.monotonic()
    switch.receive(learn, 2)
    switch.receive(learn, 2)                            # the same data before any ack: held back
    digest = client.get_digest(timeout=5)
    assert time.monotonic() - sent_at >= 0.3            # a partial list waits for max_timeout_ns
    assert digest.values == [{"srcAddr": 0xAA, "ingress_port": 2}]
    time.sleep(0.5)
    assert client.digests.empty()
    switch.receive(learn, 2)                            # acked by our client: may be sent again
    assert client.get_digest(timeout=5).values == [{"srcAddr": 0xAA, "ingress_port": 2}]


def test_server_survives_a_bad_stream_and_keeps_serving(server, client):
    channel = grpc.insecure_channel(server[1])
    stub = type(client.stub)(channel)
    responses = stub.StreamChannel(iter([p4r.StreamMessageRequest(packet=p4r.PacketOut(payload=b"x"))]))
    with pytest.raises(grpc.RpcError) as raw:
        list(responses)
    assert raw.value.code() == grpc.StatusCode.FAILED_PRECONDITION       # arbitration must come first
    channel.close()
    client.insert_table_entry("ipv4_lpm", {"hdr.ipv4.dstAddr": "10.0.0.0/8"}, "forward", {"port": 1})
    assert len(client.read_table_entries("ipv4_lpm")) == 1
