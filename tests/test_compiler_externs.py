"""v1model externs and control-plane metadata of compiled programs."""
from __future__ import annotations

import logging

import pytest
from fabriclab.v1model.runtime import P4AssertionError, value_set
from fabriclab.compiler.driver import compile_source
from fabriclab.v1model.tables import ActionCall, TableEntry
from fabriclab.v1model.loader import instantiate

SKELETON = """
#include <core.p4>
#include <v1model.p4>
header h_t {{ bit<8> a; bit<8> b; }}
@controller_header("packet_in")
header packet_in_t {{ bit<9> ingress_port; bit<7> pad; }}
struct headers_t {{ h_t h; packet_in_t cpu; }}
struct meta_t {{ bit<8> m; }}
{decls}
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {{
{parser}
}}
control VC(inout headers_t hdr, inout meta_t meta) {{ apply {{ }} }}
control Ing(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {{
{ingress}
}}
control Eg(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {{ apply {{ }} }}
control CC(inout headers_t hdr, inout meta_t meta) {{ apply {{ }} }}
control Dep(packet_out pkt, in headers_t hdr) {{ apply {{ pkt.emit(hdr.cpu); pkt.emit(hdr.h); }} }}
V1Switch(P(), VC(), Ing(), Eg(), CC(), Dep()) main;
"""
PARSER = "    state start { pkt.extract(hdr.h); transition accept; }"


def compiled(ingress: str, decls: str = "", parser: str = PARSER):
    return compile_source(SKELETON.format(ingress=ingress, decls=decls, parser=parser), "x")


def test_control_locals_are_shared_with_actions_and_reset_per_packet(caplog):
    p = instantiate(compiled("""
    struct_t p;
    bit<8> step = 3;
    action bump() { p.x = p.x + step; step = step + 1; }
    apply {
        p.x = p.x + hdr.h.a;          // p starts at zero for every packet
        bump();
        bump();
        hdr.h.b = p.x & ~0;
        log_msg("a={} b={}", {hdr.h.a, hdr.h.b});
        sm.egress_spec = 1;
    }""", decls="struct struct_t { bit<8> x; }"))
    with caplog.at_level(logging.INFO, logger="fabriclab.p4"):
        assert p.process(b"\x05\x00rest", 0) == [(1, b"\x05\x0crest")]
        assert p.process(b"\x05\x00rest", 0) == [(1, b"\x05\x0crest")]
    assert "a=5 b=12" in caplog.text


def test_direct_meter_colors_follow_the_entry_config():
    p = instantiate(compiled("""
    direct_meter<bit<8>>(MeterType.packets) dm;
    action color() { dm.read(hdr.h.b); sm.egress_spec = 1; }
    table t {
        key = { hdr.h.a: exact; }
        actions = { color; NoAction; }
        meters = dm;
    }
    apply { t.apply(); }"""))
    assert p.info.meters["Ing.dm"].direct_table == "Ing.t"
    table = p.state.tables["Ing.t"]
    # 1 packet/s committed with burst 1, 2 packets/s peak with burst 2; the clock stands still
    table.insert(TableEntry(match=(7,), action=ActionCall("Ing.color"), meter=(1, 1, 2, 2)))
    colors = [p.process(b"\x07\x00", 0, now_us=0)[0][1][1] for _ in range(3)]
    assert colors == [0, 1, 2]                            # GREEN, YELLOW, RED


def test_random_truncate_and_assert():
    p = instantiate(compiled("""
    apply {
        random(hdr.h.b, 8w10, 8w12);
        if (hdr.h.a == 1) { truncate(1); }
        assert(hdr.h.a != 9);
        sm.egress_spec = 1;
    }"""))
    seen = {p.process(b"\x00\x00tail", 0)[0][1][1] for _ in range(60)}
    assert seen == {10, 11, 12}
    assert p.process(b"\x01\x00tail", 0) == [(1, b"\x01")]
    with pytest.raises(P4AssertionError):
        p.process(b"\x09\x00", 0)


def test_value_set_in_select():
    parser = """
    value_set<bit<8>>(4) special;
    state start {
        pkt.extract(hdr.h);
        transition select(hdr.h.a) { special: mark; default: accept; }
    }
    state mark { meta.m = 1; transition accept; }
"""
    c = compiled("apply { hdr.h.b = meta.m; sm.egress_spec = 1; }", parser=parser)
    assert c.info.value_sets["P.special"].size == 4
    p = instantiate(c)
    assert p.process(b"\x42\x00", 0) == [(1, b"\x42\x00")]
    value_set(p.state, "P.special").entries.append((0x42, 0xFF))
    assert p.process(b"\x42\x00", 0) == [(1, b"\x42\x01")]


def test_program_info_annotations_ids_and_controller_headers():
    c = compiled("""
    @id(0x01000077) @name("renamed") action a(bit<8> v) { hdr.h.b = v; }
    @name(".global_table") table t {
        key = { hdr.h.a: exact @name("first_byte"); }
        actions = { a; @defaultonly NoAction; }
        size = 64;
    }
    @name("regs") register<bit<16>>(32) r;
    counter(8, CounterType.bytes) c;
    apply { t.apply(); r.write(0, 1); c.count(0); }""")
    info = c.info
    table = info.tables["global_table"]
    assert table.size == 64 and table.keys[0].name == "first_byte"
    assert [(a.name, a.scope) for a in table.actions] == [("Ing.renamed", "TABLE_AND_DEFAULT"),
                                                          ("NoAction", "DEFAULT_ONLY")]
    assert table.default_action == "NoAction"
    assert info.explicit_ids["Ing.renamed"] == 0x01000077
    assert info.registers["Ing.regs"].bitwidth == 16 and info.registers["Ing.regs"].size == 32
    assert info.counters["Ing.c"].unit == "bytes"
    assert info.controller_headers["packet_in"].fields == [("ingress_port", 9), ("pad", 7)]
    assert info.controller_headers["packet_in"].type_name == "packet_in_t"
    p = instantiate(c)
    p.state.tables["global_table"].insert(TableEntry(match=(3,), action=ActionCall("Ing.renamed", (0x99,))))
    assert p.process(b"\x03\x00", 0) == [(0, b"\x03\x99")]
    assert p.state.registers["Ing.regs"].read(0) == 1
    assert p.state.counters["Ing.c"].read(0) == (1, 2)


def test_packet_in_header_emitted_first_when_valid():
    p = instantiate(compiled("""
    apply {
        if (hdr.h.a == 0xcc) {
            hdr.cpu.setValid();
            hdr.cpu.ingress_port = sm.ingress_port;
            sm.egress_spec = 255;
        }
    }"""))
    assert p.process(b"\xcc\x01", 5) == [(255, b"\x02\x80\xcc\x01")]   # port 5 in 9 bits, then 7 pad bits
    assert p.process(b"\x01\x01", 5) == [(0, b"\x01\x01")]
