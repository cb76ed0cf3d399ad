"""Small P4 programs through parse -> typecheck -> codegen -> Pipeline.process, byte for byte."""
from __future__ import annotations

import pytest
from scapy.all import IP, UDP, Ether, raw

from fabriclab.compiler.driver import compile_source
from fabriclab.compiler.diagnostics import CompileError
from fabriclab.v1model.hashing import v1model_hash
from fabriclab.v1model.tables import ActionCall, TableEntry
from fabriclab.v1model.loader import instantiate

HEADERS = """
header ethernet_t { bit<48> dst; bit<48> src; bit<16> etherType; }
header ipv4_t {
    bit<4> version; bit<4> ihl; bit<8> diffserv; bit<16> totalLen; bit<16> identification;
    bit<3> flags; bit<13> fragOffset; bit<8> ttl; bit<8> protocol; bit<16> hdrChecksum;
    bit<32> srcAddr; bit<32> dstAddr;
}
header ports_t { bit<16> src; bit<16> dst; }
header out_t { bit<32> a; bit<32> b; }
"""


def program(ingress: str, *, decls: str = "", headers: str = "ethernet_t eth; ipv4_t ipv4; ports_t l4; out_t res;",
            meta: str = "bit<32> m;", parser: str | None = None, egress: str = "apply { }",
            deparser: str = "pkt.emit(hdr.eth); pkt.emit(hdr.ipv4); pkt.emit(hdr.l4); pkt.emit(hdr.res);") -> str:
    parser = parser or """
    state start {
        pkt.extract(hdr.eth);
        transition select(hdr.eth.etherType) { 0x0800: parse_ipv4; default: accept; }
    }
    state parse_ipv4 {
        pkt.extract(hdr.ipv4);
        transition select(hdr.ipv4.protocol) { 6: parse_l4; 17: parse_l4; default: accept; }
    }
    state parse_l4 { pkt.extract(hdr.l4); transition accept; }
"""
    return f"""
#include <core.p4>
#include <v1model.p4>
{HEADERS}
{decls}
struct headers_t {{ {headers} }}
struct meta_t {{ {meta} }}
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {{
{parser}
}}
control VC(inout headers_t hdr, inout meta_t meta) {{ apply {{ }} }}
control Ing(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {{
{ingress}
}}
control Eg(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {{
{egress}
}}
control CC(inout headers_t hdr, inout meta_t meta) {{ apply {{ }} }}
control Dep(packet_out pkt, in headers_t hdr) {{ apply {{ {deparser} }} }}
V1Switch(P(), VC(), Ing(), Eg(), CC(), Dep()) main;
"""


def pipe(ingress: str, **kw):
    return instantiate(compile_source(program(ingress, **kw), "t"))


def udp(dst: str = "10.0.1.2", **ip) -> bytes:
    return raw(Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01") / IP(src="10.0.0.1", dst=dst, **ip)
               / UDP(sport=1000, dport=2000) / b"payload")


def out_fields(frame: bytes, offset: int) -> tuple[int, int]:
    return int.from_bytes(frame[offset:offset + 4], "big"), int.from_bytes(frame[offset + 4:offset + 8], "big")


UDP_OUT = 14 + 20 + 4   # where out_t lands after eth/ipv4/l4


# ---------------------------------------------------------------------------- basics

def test_forward_and_rewrite_is_byte_exact():
    p = pipe("apply { sm.egress_spec = 7; hdr.eth.src = hdr.eth.dst; hdr.ipv4.ttl = hdr.ipv4.ttl - 1; }")
    frame = udp(ttl=1)
    (port, data), = p.process(frame, 3)
    expected = bytearray(frame)
    expected[6:12] = frame[0:6]
    expected[14 + 8] = 0
    assert port == 7 and data == bytes(expected)


def test_unparsed_bytes_are_payload_and_uninitialised_values_are_zero():
    p = pipe("apply { bit<32> x; hdr.res.setValid(); hdr.res.a = x; hdr.res.b = meta.m; sm.egress_spec = 1; }")
    frame = raw(Ether(type=0x1234) / b"abcdef")
    (_, data), = p.process(frame, 0)
    assert data == frame[:14] + bytes(8) + b"abcdef"


def test_mark_to_drop_and_exit():
    p = pipe("""
    apply {
        sm.egress_spec = 2;
        if (hdr.ipv4.ttl == 0) { mark_to_drop(sm); exit; }
        if (hdr.ipv4.ttl == 1) { sm.egress_spec = 3; exit; }
        sm.egress_spec = 4;
    }""")
    assert p.process(udp(ttl=0), 0) == []
    assert p.process(udp(ttl=1), 0)[0][0] == 3
    assert p.process(udp(ttl=9), 0)[0][0] == 4


def test_expressions_ternary_slices_concat_bool_casts():
    p = pipe("""
    apply {
        hdr.res.setValid();
        bit<16> hi = hdr.ipv4.srcAddr[31:16];
        hdr.res.a = hi ++ hdr.ipv4.dstAddr[7:0] ++ 8w0xAB;
        hdr.res.b = (hdr.ipv4.ttl > 10 ? 32w1 : 32w2) + (bit<32>)(bit<1>)(hdr.l4.isValid());
        hdr.res.b[31:28] = 4w0xF;
        sm.egress_spec = 1;
    }""")
    (_, data), = p.process(udp(ttl=64), 0)
    a, b = out_fields(data, UDP_OUT)
    assert a == (0x0A00 << 16) | (0x02 << 8) | 0xAB
    assert b == 0xF0000002


def test_int_literal_inference_and_signed_arithmetic():
    p = pipe("""
    apply {
        hdr.res.setValid();
        int<8> s = -3;
        int<8> t = s * 50;                 // -150 wraps to 106
        hdr.res.a = (bit<32>)(bit<8>)t;
        hdr.res.b = (bit<32>)((int<32>)s |-| 0x7fffffff);   // saturates at -2^31
        sm.egress_spec = 1;
    }""")
    (_, data), = p.process(udp(), 0)
    assert out_fields(data, UDP_OUT) == (106, 0x80000000)


def test_struct_initialiser_header_assignment_and_functions():
    p = pipe("""
    action swap(inout bit<32> x, inout bit<32> y) { bit<32> t = x; x = y; y = t; }
    apply {
        hdr.res = { twice(32w5), 32w7 };
        swap(hdr.res.a, hdr.res.b);
        ethernet_t copy = hdr.eth;
        copy.dst = 48w1;
        hdr.eth = copy;
        sm.egress_spec = 1;
    }""", decls="bit<32> twice(in bit<32> v) { return v + v; }")
    (_, data), = p.process(udp(), 0)
    assert out_fields(data, UDP_OUT) == (7, 10)
    assert data[:6] == bytes(5) + b"\x01"


def test_enums_errors_and_switch_on_value():
    p = pipe("""
    apply {
        hdr.res.setValid();
        Kind k = hdr.ipv4.ttl == 1 ? Kind.ONE : Kind.OTHER;
        switch (hdr.ipv4.ttl) {
            1: { hdr.res.a = 10; }
            2:
            3: { hdr.res.a = 23; }
            default: { hdr.res.a = 99; }
        }
        hdr.res.b = (bit<32>)(Code)(k == Kind.ONE ? Code.A : Code.B);
        if (sm.parser_error == error.NoError) { sm.egress_spec = 1; }
    }""", decls="enum Kind { ONE, OTHER } enum bit<8> Code { A = 0x41, B = 0x42 }")
    assert [out_fields(p.process(udp(ttl=t), 0)[0][1], UDP_OUT) for t in (1, 2, 3, 4)] == \
        [(10, 0x41), (23, 0x42), (23, 0x42), (99, 0x42)]


def test_sub_control_with_scalar_inout_parameter():
    p = pipe("""
    Inc() inc;
    apply {
        hdr.res.setValid();
        hdr.res.a = 40;
        inc.apply(hdr.res.a, 2);
        sm.egress_spec = 1;
    }""", decls="control Inc(inout bit<32> v, in bit<32> by) { apply { v = v + by; } }")
    (_, data), = p.process(udp(), 0)
    assert out_fields(data, UDP_OUT)[0] == 42


# ---------------------------------------------------------------------------- parser

def test_select_masks_ranges_and_parser_errors():
    parser = """
    state start {
        pkt.extract(hdr.eth);
        transition select(hdr.eth.etherType) {
            0x8800 &&& 0xff00: is_masked;
            0x0100 .. 0x01ff: is_range;
            0x0800: parse_ipv4;
            0x0bad: bad;
            default: accept;
        }
    }
    state is_masked { meta.m = 1; transition accept; }
    state is_range { meta.m = 2; transition accept; }
    state parse_ipv4 { pkt.extract(hdr.ipv4); transition accept; }
    state bad { verify(false, error.Custom); transition accept; }
"""
    p = pipe("""apply {
        hdr.res.setValid();
        hdr.res.a = meta.m;
        hdr.res.b = (bit<32>)(bit<16>)(sm.parser_error == error.PacketTooShort ? 16w1 :
                                      sm.parser_error == error.Custom ? 16w2 : 16w0);
        sm.egress_spec = 1;
    }""", parser=parser, decls="error { Custom }",
             deparser="pkt.emit(hdr.eth); pkt.emit(hdr.ipv4); pkt.emit(hdr.res);")

    def run(ether_type: int, body: bytes = b"xyz") -> tuple[int, int]:
        (_, data), = p.process(raw(Ether(type=ether_type)) + body, 0)
        return out_fields(data, 14)

    assert run(0x88AB) == (1, 0)
    assert run(0x0142) == (2, 0)
    assert run(0x0BAD) == (0, 2)
    assert run(0x0800, b"short") == (0, 1)     # IPv4 needs 20 bytes: PacketTooShort, ingress still runs
    # the failed extract leaves the bytes as payload
    (_, data), = p.process(raw(Ether(type=0x0800)) + b"short", 0)
    assert data.endswith(b"short")


def test_header_stack_extract_next_push_pop_and_emit():
    parser = """
    state start { pkt.extract(hdr.eth); transition parse_tag; }
    state parse_tag {
        pkt.extract(hdr.tags.next);
        transition select(hdr.tags.last.bos) { 1: accept; default: parse_tag; }
    }
"""
    p = pipe("""apply {
        hdr.res.setValid();
        hdr.res.a = hdr.tags.lastIndex;
        hdr.res.b = (bit<32>)hdr.tags[0].value;
        hdr.tags.pop_front(1);
        hdr.tags.push_front(2);
        hdr.tags[0].setValid();
        hdr.tags[0].value = 0x77;
        sm.egress_spec = 1;
    }""", parser=parser, decls="header tag_t { bit<7> value; bit<1> bos; }",
             headers="ethernet_t eth; tag_t[4] tags; out_t res;",
             deparser="pkt.emit(hdr.eth); pkt.emit(hdr.tags); pkt.emit(hdr.res);")
    eth = raw(Ether(type=0x9999))
    tags = bytes([0x11 << 1, 0x22 << 1, (0x33 << 1) | 1])
    (_, data), = p.process(eth + tags + b"rest", 0)
    # pop the first, push two (the first set valid, the second left invalid): 0x77, 0x22, 0x33
    assert data == eth + bytes([0x77 << 1, 0x22 << 1, (0x33 << 1) | 1]) + (2).to_bytes(4, "big") \
        + (0x11).to_bytes(4, "big") + b"rest"
    # five tags overflow the stack: StackOutOfBounds
    p2_out = p.process(eth + bytes([2, 2, 2, 2, 3]), 0)
    assert p2_out and p2_out[0][1][:14] == eth


def test_lookahead_and_advance():
    parser = """
    state start {
        pkt.extract(hdr.eth);
        meta.m = (bit<32>)pkt.lookahead<bit<16>>();
        pkt.advance(16);
        transition accept;
    }
"""
    p = pipe("apply { hdr.res.setValid(); hdr.res.a = meta.m; sm.egress_spec = 1; }", parser=parser,
             deparser="pkt.emit(hdr.eth); pkt.emit(hdr.res);")
    eth = raw(Ether(type=0x1111))
    (_, data), = p.process(eth + b"\xbe\xefTAIL", 0)
    assert data == eth + (0xBEEF).to_bytes(4, "big") + bytes(4) + b"TAIL"


def test_header_union():
    parser = """
    state start {
        pkt.extract(hdr.eth);
        transition select(hdr.eth.etherType) { 1: one; 2: two; default: accept; }
    }
    state one { pkt.extract(hdr.u.a); transition accept; }
    state two { pkt.extract(hdr.u.b); transition accept; }
"""
    p = pipe("""apply {
        if (hdr.u.isValid()) { sm.egress_spec = hdr.u.a.isValid() ? 9w1 : 9w2; }
        if (hdr.u.b.isValid()) { hdr.u.a.setValid(); hdr.u.a.x = 0x5; }
    }""", parser=parser, decls="header a_t { bit<8> x; } header b_t { bit<16> y; } header_union u_t { a_t a; b_t b; }",
             headers="ethernet_t eth; u_t u;", deparser="pkt.emit(hdr.eth); pkt.emit(hdr.u);")
    assert p.process(raw(Ether(type=1)) + b"\x09", 0) == [(1, raw(Ether(type=1)) + b"\x09")]
    # b was valid: setting a valid invalidates b, so only a is emitted
    assert p.process(raw(Ether(type=2)) + b"\x01\x02", 0) == [(2, raw(Ether(type=2)) + b"\x05")]
    # neither member valid: egress_spec keeps its initial 0
    assert p.process(raw(Ether(type=3)), 0) == [(0, raw(Ether(type=3)))]


# ---------------------------------------------------------------------------- tables

TABLES = """
    action set_port(bit<9> port) { sm.egress_spec = port; }
    action set_out(bit<32> v) { hdr.res.setValid(); hdr.res.a = v; }
    action drop() { mark_to_drop(sm); }
    table fwd {
        key = { hdr.ipv4.dstAddr: lpm @name("dst"); hdr.ipv4.isValid(): exact; }
        actions = { set_port; drop; }
        default_action = drop();
    }
    table classify {
        key = { hdr.l4.dst: ternary; hdr.ipv4.ttl: range; }
        actions = { set_out; NoAction; }
        const entries = {
            (2000, 1 .. 10): set_out(1);
            (2000 &&& 0xff00, _): set_out(2);
            (_, _): set_out(3);
        }
    }
    apply {
        switch (fwd.apply().action_run) {
            drop: { exit; }
            default: { }
        }
        if (classify.apply().hit) { hdr.res.b = 0xAA; }
    }
"""


def test_tables_lpm_ternary_range_const_entries_action_run():
    p = pipe(TABLES)
    fwd = p.state.tables["Ing.fwd"]
    fwd.insert(TableEntry(match=((0x0A000100, 24), 1), action=ActionCall("Ing.set_port", (5,))))
    fwd.insert(TableEntry(match=((0x0A000000, 16), 1), action=ActionCall("Ing.set_port", (6,))))
    assert p.process(udp(dst="11.0.0.1"), 0) == []                      # default drop, then exit
    (port, data), = p.process(udp(dst="10.0.1.9", ttl=5), 0)
    assert port == 5 and out_fields(data, UDP_OUT) == (1, 0xAA)
    (port, data), = p.process(udp(dst="10.0.9.9", ttl=50), 0)
    assert port == 6 and out_fields(data, UDP_OUT) == (2, 0xAA)
    frame = raw(Ether() / IP(dst="10.0.1.1") / UDP(dport=53))
    (port, data), = p.process(frame, 0)
    assert out_fields(data, UDP_OUT) == (3, 0xAA)


def test_program_info_names_keys_and_defaults():
    info = compile_source(program(TABLES), "t").info
    fwd = info.tables["Ing.fwd"]
    assert [(k.name, k.match_kind, k.bitwidth) for k in fwd.keys] == \
        [("dst", "lpm", 32), ("hdr.ipv4.isValid()", "exact", 1)]
    assert [a.name for a in fwd.actions] == ["Ing.set_port", "Ing.drop"]
    assert fwd.default_action == "Ing.drop"
    assert info.actions["Ing.set_port"].params[0].name == "port"
    assert info.actions["Ing.set_port"].params[0].bitwidth == 9
    classify = info.tables["Ing.classify"]
    assert classify.is_const_table and "NoAction" in info.actions
    assert [(c.action, c.args) for c in classify.const_entries] == [("Ing.set_out", (1,)), ("Ing.set_out", (2,)), ("Ing.set_out", (3,))]
    assert classify.const_entries[0].match == ((2000, 0xFFFF), (1, 10))
    assert classify.const_entries[1].match == ((2000 & 0xFF00, 0xFF00), (0, 255))
    assert [c.priority for c in classify.const_entries] == [3, 2, 1]


def test_action_selector_and_direct_counter():
    p = pipe("""
    action_selector(HashAlgorithm.crc16, 32w64, 32w16) sel;
    direct_counter(CounterType.packets_and_bytes) hits;
    action set_port(bit<9> port) { sm.egress_spec = port; }
    table ecmp {
        key = { hdr.ipv4.dstAddr: exact; hdr.l4.src: selector; }
        actions = { set_port; }
        implementation = sel;
        counters = hits;
    }
    apply { ecmp.apply(); }
    """)
    info = p.info
    assert info.action_profiles["Ing.sel"].with_selector
    assert info.counters["Ing.hits"].direct_table == "Ing.ecmp"
    profile = p.state.action_profiles["Ing.sel"]
    profile.insert_member(1, ActionCall("Ing.set_port", (1,)))
    profile.insert_member(2, ActionCall("Ing.set_port", (2,)))
    profile.insert_group(10, [(1, 1), (2, 1)])
    table = p.state.tables["Ing.ecmp"]
    table.insert(TableEntry(match=(0x0A000102,), group_id=10))
    ports = set()
    for sport in range(1000, 1040):
        frame = raw(Ether() / IP(src="10.0.0.1", dst="10.0.1.2") / UDP(sport=sport, dport=1) / b"x")
        (port, _), = p.process(frame, 0)
        expected = profile.select(10, ((sport, 16),))
        assert port == expected.args[0]
        ports.add(port)
    assert ports == {1, 2}
    entry = table.get((0x0A000102,))
    assert entry.packets == 40 and entry.bytes == 40 * len(frame)


def test_registers_counters_meters_hash_and_digest():
    p = pipe("""
    register<bit<32>>(8) seen;
    counter(4, CounterType.packets) pkts;
    meter(4, MeterType.packets) rate;
    apply {
        bit<32> n;
        seen.read(n, 3);
        seen.write(3, n + 1);
        pkts.count(1);
        bit<2> color;
        rate.execute_meter(2, color);
        hdr.res.setValid();
        hdr.res.a = n;
        hash(hdr.res.b, HashAlgorithm.crc16, 32w100, { hdr.ipv4.srcAddr, hdr.l4.dst }, 32w1000);
        digest<learn_t>(1, { hdr.eth.src, (bit<32>)color });
        sm.egress_spec = 1;
    }""", decls="struct learn_t { bit<48> mac; bit<32> color; }")
    for i in range(3):
        (_, data), = p.process(udp(), 0)
        assert out_fields(data, UDP_OUT)[0] == i
    assert out_fields(data, UDP_OUT)[1] == v1model_hash("crc16", [(0x0A000001, 32), (2000, 16)], 100, 1000, 32)
    assert p.state.registers["Ing.seen"].read(3) == 3
    assert p.state.counters["Ing.pkts"].read(1) == (3, 3 * len(udp()))
    assert list(p.state.digests)[-1] == ("learn_t", (0x020000000001, 0))
    assert p.info.digests["learn_t"].fields == [("mac", 48), ("color", 32)]


# ---------------------------------------------------------------------------- v1model architecture

def test_multicast_replicas_get_rid_and_instance_type():
    p = pipe("apply { sm.mcast_grp = 5; }",
             egress="apply { hdr.res.setValid(); hdr.res.a = (bit<32>)sm.egress_rid; hdr.res.b = sm.instance_type; }")
    p.state.pre.insert_multicast_group(5, [(1, 10), (2, 20)])
    out = p.process(udp(), 0)
    assert [(port, out_fields(data, UDP_OUT)) for port, data in out] == [(1, (10, 5)), (2, (20, 5))]


def test_clone_i2e_and_e2e_with_preserved_fields():
    from fabriclab.v1model.pre import CloneSession
    p = pipe("""apply {
        meta.m = 0x1234;
        sm.egress_spec = 1;
        clone_preserving_field_list(CloneType.I2E, 7, 1);
    }""", meta="@field_list(1) bit<32> m;",
             egress="""apply {
        if (sm.instance_type == 0) {
            hdr.ipv4.ttl = 1;
            clone(CloneType.E2E, 8);
        } else {
            hdr.res.setValid();
            hdr.res.a = sm.instance_type;
            hdr.res.b = meta.m;
        }
    }""")
    p.state.pre.insert_clone_session(CloneSession(7, egress_port=2))
    p.state.pre.insert_clone_session(CloneSession(8, egress_port=3, truncate_length=40))
    frame = udp(ttl=9)
    out = dict(p.process(frame, 0))
    assert out[1][14 + 8] == 1                                      # the original, ttl rewritten
    # the I2E clone is the original packet parsed again, meta.m preserved
    assert out[2][:UDP_OUT] == frame[:UDP_OUT] and out_fields(out[2], UDP_OUT) == (1, 0x1234)
    # the E2E clone has egress's headers (ttl 1), metadata reset, truncated by its session
    assert len(out[3]) == 40 and out[3][14 + 8] == 1 and out[3][UDP_OUT:] == (2).to_bytes(4, "big")[:2]


def test_resubmit_and_recirculate_preserve_field_lists():
    p = pipe("""apply {
        if (sm.instance_type == 0) {
            meta.m = 41;
            resubmit_preserving_field_list(1);
        } else if (sm.instance_type == 6) {
            meta.m = meta.m + 1;
            sm.egress_spec = 2;
        } else {
            hdr.res.setValid();
            hdr.res.b = sm.instance_type;
            sm.egress_spec = 3;
        }
    }""", meta="@field_list(1) bit<32> m;",
             egress="""apply {
        // simple_switch shows unicast packets to egress as NORMAL, recirculated or not
        if (meta.m < 1000) {
            meta.m = meta.m + 1000;
            recirculate_preserving_field_list(1);
        } else {
            hdr.res.a = meta.m;
        }
    }""")
    out = p.process(udp(), 0)
    assert [(port, out_fields(data, UDP_OUT)) for port, data in out] == [(3, (1042, 4))]


def test_egress_sees_queue_metadata_and_packet_length():
    from fabriclab.v1model.pipeline import QueueMeta
    p = pipe("apply { sm.egress_spec = 4; sm.priority = 5; hdr.res.setValid(); }",
             egress="apply { hdr.res.a = (bit<32>)sm.enq_qdepth; hdr.res.b = sm.packet_length; }")
    frame = udp()
    job, = p.ingress(frame, 1, now_us=10)
    assert (job.egress_port, job.priority, job.length) == (4, 5, len(frame) + 8)   # setValid adds 8 bytes
    result = p.egress(job, QueueMeta(now_us=20, enq_timestamp=10, enq_qdepth=3, deq_timedelta=10, deq_qdepth=1))
    (port, data), = result.frames
    assert out_fields(data, UDP_OUT) == (3, len(frame) + 8)


def test_update_and_verify_checksum():
    src = program("apply { sm.egress_spec = 1; hdr.ipv4.ttl = hdr.ipv4.ttl - 1; }")
    fields = ("{ hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.totalLen, hdr.ipv4.identification,"
              " hdr.ipv4.flags, hdr.ipv4.fragOffset, hdr.ipv4.ttl, hdr.ipv4.protocol, hdr.ipv4.srcAddr,"
              " hdr.ipv4.dstAddr }")
    src = src.replace("control CC(inout headers_t hdr, inout meta_t meta) { apply { } }",
                      "control CC(inout headers_t hdr, inout meta_t meta) { apply { update_checksum(hdr.ipv4.isValid(), "
                      f"{fields}, hdr.ipv4.hdrChecksum, HashAlgorithm.csum16); }} }}")
    src = src.replace("control VC(inout headers_t hdr, inout meta_t meta) { apply { } }",
                      "control VC(inout headers_t hdr, inout meta_t meta) { apply { verify_checksum(hdr.ipv4.isValid(), "
                      f"{fields}, hdr.ipv4.hdrChecksum, HashAlgorithm.csum16); }} }}")
    p = instantiate(compile_source(src, "ck"))
    (_, data), = p.process(udp(ttl=64), 0)
    assert data == udp(ttl=63)          # scapy computes the IPv4 checksum itself


def test_write_output_and_load_round_trip(tmp_path):
    from fabriclab.compiler import driver
    compiled = compile_source(program(TABLES), "tables")
    driver.write_output(compiled, str(tmp_path))
    assert {p.name for p in tmp_path.iterdir()} == {"tables.py", "tables.json", "tables.p4info.txtpb"}
    loaded = driver.load(str(tmp_path))
    assert loaded.info == compiled.info
    p = instantiate(loaded)
    p.state.tables["Ing.fwd"].insert(TableEntry(match=((0x0A000100, 24), 1), action=ActionCall("Ing.set_port", (5,))))
    assert p.process(udp(dst="10.0.1.9", ttl=5), 0)[0][0] == 5


def test_unsupported_construct_is_reported():
    with pytest.raises(CompileError, match="unsupported: generic parsers and controls"):
        compile_source(program("apply { }", decls="control G<T>(inout T x) { apply { } }"), "g")


def test_functions_in_parser_and_control_and_return_in_apply():
    parser = """
    state start { pkt.extract(hdr.eth); meta.m = inc(32w5); transition accept; }
"""
    p = pipe("""apply {
        hdr.res.setValid();
        hdr.res.a = inc(meta.m);
        sm.egress_spec = 1;
        if (hdr.eth.etherType == 0x0001) { return; }
        hdr.res.b = 0xBB;
    }""", parser=parser, decls="bit<32> inc(in bit<32> v) { return v + 1; }",
             deparser="pkt.emit(hdr.eth); pkt.emit(hdr.res);")
    assert p.process(raw(Ether(type=1)), 0) == [(1, raw(Ether(type=1)) + (7).to_bytes(4, "big") + bytes(4))]
    assert p.process(raw(Ether(type=2)), 0) == [(1, raw(Ether(type=2)) + (7).to_bytes(4, "big") + b"\0\0\0\xbb")]


def test_sub_control_tables_are_named_by_instance_path_and_exit_leaves_everything():
    sub = """
control Acl(inout headers_t hdr, inout standard_metadata_t sm) {
    action deny() { mark_to_drop(sm); exit; }
    table rules { key = { hdr.ipv4.srcAddr: exact; } actions = { deny; NoAction; } default_action = NoAction(); }
    apply { rules.apply(); }
}"""
    c = compile_source(program("""
    Acl() acl;
    apply {
        sm.egress_spec = 4;
        acl.apply(hdr, sm);
        sm.egress_spec = 5;
    }""").replace(
        "control Ing(", sub + "\ncontrol Ing("), "sub")
    assert "Ing.acl.rules" in c.info.tables and "Ing.acl.deny" in c.info.actions
    p = instantiate(c)
    p.state.tables["Ing.acl.rules"].insert(TableEntry(match=(0x0A000001,), action=ActionCall("Ing.acl.deny")))
    assert p.process(udp(), 0) == []
    assert p.process(raw(Ether() / IP(src="10.0.0.9") / UDP()), 0)[0][0] == 5


MIXED = r"""
#include <core.p4>
#include <v1model.p4>
enum bit<4> Color { RED = 1, BLUE = 2 }
header h_t { int<8> s; bool flag; bit<3> c; Color color; bit<8> v; }
struct inner_t { @field_list(1) bit<8> keep; bit<8> drop_me; }
struct headers_t { h_t h; h_t[2] st; }
struct meta_t { inner_t in1; bit<8> m; }
void twice(inout bit<8> x, out bit<8> y) { y = x; x = x + x; }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); transition accept; }
}
control VC(inout headers_t hdr, inout meta_t meta) { apply { } }
control Ing(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    action getv(out bit<8> r, bit<8> base) { r = base + 1; }
    action paint(Color c) { hdr.h.color = c; }
    table t {
        key = { hdr.h.color: exact; hdr.h.flag: exact; }
        actions = { paint; NoAction; }
        const entries = { (Color.RED, true): paint(Color.BLUE); }
    }
    apply {
        getv(meta.m, 4);
        bit<8> y;
        twice(meta.m, y);
        hdr.h.v = meta.m + y;
        hdr.h.s = hdr.h.s - 1;
        t.apply();
        hdr.st[1] = hdr.h;
        hdr.st[1].v = 0x99;
        switch (hdr.h.c) { default: { sm.egress_spec = 3; } }
        if (hdr.h.s < 0) { exit; }
        sm.egress_spec = 4;
    }
}
control Eg(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control CC(inout headers_t hdr, inout meta_t meta) { apply { } }
control Dep(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr); } }
V1Switch(P(), VC(), Ing(), Eg(), CC(), Dep()) main;
"""


def test_out_parameters_signed_fields_bool_and_enum_keys_stack_assignment():
    p = instantiate(compile_source(MIXED, "mixed"))
    # s = -2, flag 1, c 5, color RED: the const entry (RED, true) paints it BLUE; s - 1 < 0 exits
    # after the switch's default set port 3; v = m + y where getv gives m = 5, twice makes 10 and 5
    assert p.process(bytes([0xFE, 0xD1, 0x00]), 0) == [(3, bytes.fromhex("fdd20ffdd299"))]
    assert p.process(bytes([0x05, 0x51, 0x00]), 0) == [(4, bytes.fromhex("04510f045199"))]
    assert p.info.tables["Ing.t"].const_entries[0].match == (1, 1)


def test_serializable_enum_converts_to_its_underlying_type():
    p = pipe("""apply {
        if (hdr.ipv4.protocol == Proto.UDP) { hdr.ipv4.diffserv = Proto.TCP; }
        sm.egress_spec = 1;
    }""", decls="enum bit<8> Proto { TCP = 6, UDP = 17 }")
    (_, data), = p.process(udp(), 0)
    assert data[14 + 1] == 6


def test_clock_values_wrap_to_the_standard_metadata_widths():
    from fabriclab.v1model.pipeline import QueueMeta
    p = pipe("apply { sm.egress_spec = 1; hdr.res.setValid(); }",
             egress="apply { hdr.res.a = sm.enq_timestamp; hdr.res.b = (bit<32>)sm.egress_global_timestamp; }")
    now = 1_700_000_000_000_000                      # µs since the epoch: more than 48 bits
    job, = p.ingress(udp(), 0, now)
    (_, data), = p.egress(job, QueueMeta(now, now, 0, 0, 0)).frames
    assert out_fields(data, UDP_OUT) == (now & 0xFFFFFFFF, (now & (2**48 - 1)) & 0xFFFFFFFF)
