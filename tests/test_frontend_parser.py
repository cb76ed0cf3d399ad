"""The parser on realistic v1model programs, P4's ambiguities, and the declaration files."""
from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fabriclab.compiler import ast
from fabriclab.compiler.diagnostics import CompileError
from fabriclab.compiler.parser import _BINARY_LEVELS, _PRECEDENCE, parse_text
from fabriclab.compiler.preprocessor import P4INCLUDE_DIR

BASIC = r"""
#include <core.p4>
#include <v1model.p4>

const bit<16> TYPE_IPV4 = 0x800;
typedef bit<9>  egressSpec_t;
typedef bit<48> macAddr_t;

header ethernet_t { macAddr_t dstAddr; macAddr_t srcAddr; bit<16> etherType; }
header ipv4_t {
    bit<4> version; bit<4> ihl; bit<8> diffserv; bit<16> totalLen; bit<16> identification;
    bit<3> flags; bit<13> fragOffset; bit<8> ttl; bit<8> protocol; bit<16> hdrChecksum;
    bit<32> srcAddr; bit<32> dstAddr;
}
struct metadata { }
struct headers { ethernet_t ethernet; ipv4_t ipv4; }

parser MyParser(packet_in packet, out headers hdr, inout metadata meta,
                inout standard_metadata_t standard_metadata) {
    state start { transition parse_ethernet; }
    state parse_ethernet {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) {
            TYPE_IPV4: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 { packet.extract(hdr.ipv4); transition accept; }
}

control MyVerifyChecksum(inout headers hdr, inout metadata meta) { apply { } }

control MyIngress(inout headers hdr, inout metadata meta, inout standard_metadata_t standard_metadata) {
    action drop() { mark_to_drop(standard_metadata); }
    action ipv4_forward(macAddr_t dstAddr, egressSpec_t port) {
        standard_metadata.egress_spec = port;
        hdr.ethernet.srcAddr = hdr.ethernet.dstAddr;
        hdr.ethernet.dstAddr = dstAddr;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
    }
    table ipv4_lpm {
        key = { hdr.ipv4.dstAddr: lpm; }
        actions = { ipv4_forward; drop; NoAction; }
        size = 1024;
        default_action = drop();
    }
    apply {
        if (hdr.ipv4.isValid()) {
            ipv4_lpm.apply();
        }
    }
}

control MyEgress(inout headers hdr, inout metadata meta, inout standard_metadata_t standard_metadata) {
    apply { }
}

control MyComputeChecksum(inout headers hdr, inout metadata meta) {
    apply {
        update_checksum(hdr.ipv4.isValid(),
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.totalLen,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.fragOffset, hdr.ipv4.ttl,
              hdr.ipv4.protocol, hdr.ipv4.srcAddr, hdr.ipv4.dstAddr },
            hdr.ipv4.hdrChecksum, HashAlgorithm.csum16);
    }
}

control MyDeparser(packet_out packet, in headers hdr) {
    apply { packet.emit(hdr.ethernet); packet.emit(hdr.ipv4); }
}

V1Switch(MyParser(), MyVerifyChecksum(), MyIngress(), MyEgress(), MyComputeChecksum(), MyDeparser()) main;
"""

# Header stacks, lookahead, header unions, serializable enums, value sets, generic externs,
# functions, struct initialisers and casts to named types.
STACKS_AND_UNIONS = r"""
#include <v1model.p4>
#define MAX_LABELS 4

enum bit<16> EtherType { IPV4 = 0x0800, IPV6 = 0x86DD, MPLS = 0x8847 }
enum Color { RED, GREEN, }
error { BadVersion, UnknownOption }
header ipv4_h { bit<4> version; bit<4> ihl; bit<8> ttl; varbit<320> options; }
header ipv6_h { bit<4> version; bit<8> tc; bit<128> dst; }
header_union ip_u { ipv4_h v4; ipv6_h v6; }
header eth_h { bit<48> dst; bit<48> src; EtherType type; }
header mpls_h { bit<20> label; bit<3> tc; bit<1> bos; bit<8> ttl; }
struct headers { eth_h eth; mpls_h[MAX_LABELS] mpls; ip_u ip; }
struct meta_t { tuple<bit<8>, bool> pair; Color c; bit<4> ver; }

extern Checker<T> {
    Checker(bit<32> size);
    Checker();
    bool check<K>(in T value, in K key);
    abstract void on_fail(in T value);
}
extern void bump<T>(inout T x, in bit<8> by = 8w1);

bit<16> ones_complement_sum(in bit<16> a, in bit<16> b) {
    bit<17> s = (bit<17>)a + (bit<17>)b;
    return s[15:0] + (bit<16>)s[16:16];
}

parser P(packet_in pkt, out headers hdr, inout meta_t meta, inout standard_metadata_t sm) {
    value_set<bit<16>>(4) custom_types;
    bit<4> ver;
    state start {
        pkt.extract(hdr.eth);
        transition select(hdr.eth.type) {
            EtherType.IPV4 &&& 0xFFFF: parse_ip;
            custom_types: parse_ip;
            EtherType.MPLS: parse_mpls;
            default: accept;
        }
    }
    state parse_mpls {
        pkt.extract(hdr.mpls.next);
        transition select(hdr.mpls.last.bos) { 0: parse_mpls; 1: parse_ip; }
    }
    state parse_ip {
        ver = pkt.lookahead<bit<4>>();
        transition select(ver, pkt.lookahead<ipv4_h>().ihl) {
            (4, 5): parse_v4;
            (4, 6..15): parse_v4_opts;
            (6, _): parse_v6;
            default: reject;
        }
    }
    state parse_v4 { pkt.extract(hdr.ip.v4, 0); transition accept; }
    state parse_v4_opts {
        verify(hdr.ip.v4.ihl >= 5, error.BadVersion);
        pkt.extract(hdr.ip.v4, (bit<32>)(((bit<16>)pkt.lookahead<ipv4_h>().ihl - 5) * 32));
        transition accept;
    }
    state parse_v6 {
        pkt.extract(hdr.ip.v6);
        meta.pair = { 8w1, true };
        meta.c = Color.RED;
        transition accept;
    }
}

control C(inout headers hdr, inout meta_t meta) {
    apply {
        if (hdr.ip.isValid() && hdr.ip.v4.isValid()) {
            hdr.mpls.push_front(1);
            hdr.mpls[0].setValid();
            hdr.mpls[0] = { label = 20w16, tc = 0, bos = 1, ttl = 64 };
            hdr.eth.type = (EtherType)16w0x8847;
        }
        meta.c = meta.c == Color.RED ? Color.GREEN : Color.RED;
        bump(meta.ver, by = 2);
        bump<bit<4>>(meta.ver);
        if (meta.ver < MAX_LABELS) { meta.ver = 4s-1 == -1 ? 4w0 : 4w1; }
    }
}
"""


# Action selectors, direct counters/meters, registers, const entries with masks, ranges and
# priorities, switch on action_run with fall-through, compound assignments, casts and '>>'.
LOAD_BALANCER = r"""
#include <core.p4>
#include <v1model.p4>

typedef bit<48> mac_t;
type bit<32> ip_t;

header ethernet_t { mac_t dst; mac_t src; bit<16> etherType; }
header ipv4_t {
    bit<4> version; bit<4> ihl; bit<6> dscp; bit<2> ecn; bit<16> totalLen;
    bit<16> id; bit<3> flags; bit<13> frag; bit<8> ttl; bit<8> protocol;
    bit<16> csum; bit<32> src; bit<32> dst;
}
header tcp_t { bit<16> srcPort; bit<16> dstPort; bit<32> seq; }

struct metadata_t {
    bit<14> ecmp_select;
    @field_list(1) bit<9> orig_port;
    bool    marked;
}
struct headers_t { ethernet_t ethernet; ipv4_t ipv4; tcp_t tcp; }

@controller_header("packet_in")
header packet_in_t { bit<9> ingress_port; bit<7> _pad; }

control MyIngress(inout headers_t hdr, inout metadata_t meta,
                  inout standard_metadata_t standard_metadata) {
    register<bit<32>>(64) flow_bytes;
    counter(1024, CounterType.packets_and_bytes) port_counter;
    direct_counter(CounterType.packets) ecmp_hits;
    direct_meter<bit<2>>(MeterType.bytes) rate;
    action_selector(HashAlgorithm.crc16, 32w1024, 32w14) ecmp_sel;
    const bit<8> LIMIT = 8w0xF0;
    bit<32> tmp;

    @name(".drop") action drop() { mark_to_drop(standard_metadata); }
    action set_nhop(mac_t dmac, bit<9> port) {
        hdr.ethernet.dst = dmac;
        standard_metadata.egress_spec = port;
        hdr.ipv4.ttl = hdr.ipv4.ttl |-| 1;
        ecmp_hits.count();
    }
    action set_ecmp(bit<16> base, bit<32> count) {
        hash(meta.ecmp_select, HashAlgorithm.crc16, base,
             { hdr.ipv4.src, hdr.ipv4.dst, hdr.ipv4.protocol, hdr.tcp.srcPort, hdr.tcp.dstPort },
             count);
    }
    table ecmp_group {
        key = {
            hdr.ipv4.dst : lpm @name("dst_addr");
            hdr.ipv4.src : selector;
            hdr.tcp.srcPort : selector;
        }
        actions = { set_nhop; @defaultonly drop; }
        implementation = ecmp_sel;
        counters = ecmp_hits;
        size = 256;
        const default_action = drop();
    }
    table acl {
        key = { hdr.ipv4.protocol : ternary; hdr.tcp.dstPort : range; meta.marked : exact; }
        actions = { drop; NoAction; @tableonly set_ecmp; }
        const entries = {
            (6, 22 .. 23, true) : drop();
            priority = 10: (8w17 &&& 8w0xFF, _, false) : set_ecmp(16w0, 32w4);
            (_, default, _) : NoAction();
        }
        largest_priority_wins = false;
        meters = rate;
    }
    table classify {
        key = { hdr.ipv4.dscp : exact; }
        actions = { NoAction; drop; }
        const entries = { 46 : NoAction(); 0x0 : drop(); }
    }
    apply {
        bit<32> idx = (bit<32>)standard_metadata.ingress_port;
        flow_bytes.read(tmp, idx);
        tmp = tmp + standard_metadata.packet_length;
        flow_bytes.write(idx, tmp);
        port_counter.count((bit<32>) standard_metadata.ingress_port);
        tmp += 1;
        tmp >>= 2;
        tmp <<= 1;
        tmp = tmp >> 3 + 1;
        tmp[7:0] = hdr.ipv4.ttl ++ 8w0 == 16w0 ? 8w1 : (bit<8>)(hdr.ipv4.ttl >> 1);
        meta.marked = hdr.ipv4.ecn == 3 || hdr.ipv4.ttl < LIMIT && !meta.marked;
        switch (ecmp_group.apply().action_run) {
            set_nhop: { classify.apply(); }
            drop:
            default: { exit; }
        }
        if (!acl.apply().hit) {
            return;
        } else if (classify.apply().miss) {
            tmp = -tmp;
        }
        switch (hdr.ipv4.protocol) {
            6: { meta.ecmp_select = 1; }
            17: 
            default: { }
        }
        hdr.ipv4.ttl = hdr.ipv4.ttl |+| 8w255 & ~LIMIT ^ 8w1;
        log_msg("ttl={}", {hdr.ipv4.ttl});
        clone_preserving_field_list(CloneType.I2E, 32w5, 1);
        random<bit<32>>(tmp, 0, 0xFFFF);
        .NoAction();
    }
}
"""


def decl(program: ast.Program, name: str) -> ast.Declaration:
    matches = [d for d in program.declarations if d.name == name]
    assert len(matches) == 1, f"{name}: {len(matches)} declarations"
    return matches[0]


def local(container, name: str):
    return next(d for d in container.locals if d.name == name)


def expr_of(statement_text: str, prelude: str = "") -> ast.Node:
    """The first statement of an action body holding ``statement_text``."""
    program = parse_text(f"{prelude}\naction a() {{ {statement_text} }}\n")
    return program.declarations[-1].body.statements[0]


# ---------------------------------------------------------------------------- whole programs

def test_basic_forwarding_program():
    program = parse_text(BASIC, "basic.p4")
    user = [d for d in program.declarations if d.loc.file == "basic.p4"]
    assert [type(d).__name__ for d in user] == [
        "ConstDecl", "TypedefDecl", "TypedefDecl", "HeaderDecl", "HeaderDecl", "StructDecl", "StructDecl",
        "ParserDecl", "ControlDecl", "ControlDecl", "ControlDecl", "ControlDecl", "ControlDecl", "Instantiation"]
    parser = decl(program, "MyParser")
    assert [p.direction for p in parser.params] == ["", "out", "inout", "inout"]
    state = parser.states[1]
    assert state.name == "parse_ethernet"
    assert (state.loc.line, state.loc.col) == (BASIC.splitlines().index("    state parse_ethernet {") + 1, 5)
    select = state.transition.select
    assert ast.dump(select.exprs) == (
        "[Member(expr=Member(expr=Name(name='hdr'), member='ethernet'), member='etherType')]")
    assert [c.state for c in select.cases] == ["parse_ipv4", "accept"]
    assert isinstance(select.cases[1].keysets[0], ast.DefaultKeyset)

    ingress = decl(program, "MyIngress")
    table = local(ingress, "ipv4_lpm")
    assert isinstance(table, ast.TableDecl)
    assert [(k.match_kind, ast.dump(k.expr)) for k in table.keys] == [
        ("lpm", "Member(expr=Member(expr=Name(name='hdr'), member='ipv4'), member='dstAddr')")]
    assert [a.name for a in table.actions] == ["ipv4_forward", "drop", "NoAction"]
    assert table.default_action.action.name == "drop" and not table.default_action.const
    assert table.size.value == 1024
    forward = local(ingress, "ipv4_forward")
    assert [(p.name, p.direction) for p in forward.params] == [("dstAddr", ""), ("port", "")]
    assert ast.dump(forward.body.statements[3].value) == (
        "Binary(op='-', left=Member(expr=Member(expr=Name(name='hdr'), member='ipv4'), member='ttl'), "
        "right=IntLiteral(value=1))")
    main = program.declarations[-1]
    assert main.name == "main" and main.type.name == "V1Switch"
    assert [a.value.callee.name for a in main.args] == [
        "MyParser", "MyVerifyChecksum", "MyIngress", "MyEgress", "MyComputeChecksum", "MyDeparser"]


def test_stacks_lookahead_unions_and_serializable_enums():
    program = parse_text(STACKS_AND_UNIONS, "stacks.p4")
    ether = decl(program, "EtherType")
    assert ether.is_serializable and ether.underlying_type.width.value == 16
    assert [(m.name, m.value.value) for m in ether.members] == [("IPV4", 0x800), ("IPV6", 0x86DD), ("MPLS", 0x8847)]
    color = decl(program, "Color")
    assert not color.is_serializable and [m.name for m in color.members] == ["RED", "GREEN"]
    union = decl(program, "ip_u")
    assert isinstance(union, ast.HeaderUnionDecl) and [f.name for f in union.fields] == ["v4", "v6"]
    assert isinstance(decl(program, "ipv4_h").fields[3].type, ast.VarbitType)
    stack = decl(program, "headers").fields[1].type
    assert isinstance(stack, ast.HeaderStackType) and stack.element.name == "mpls_h"
    assert stack.size.value == 4            # MAX_LABELS, substituted by the preprocessor
    pair = decl(program, "meta_t").fields[0].type
    assert isinstance(pair, ast.TupleType) and isinstance(pair.elements[1], ast.BoolType)
    errors = [d for d in program.declarations if isinstance(d, ast.ErrorDecl)]
    assert [m.name for m in errors[-1].members] == ["BadVersion", "UnknownOption"]

    checker = decl(program, "Checker")
    assert checker.type_params == ["T"] and len(checker.constructors) == 2
    check, on_fail = checker.methods
    assert check.type_params == ["K"] and isinstance(check.return_type, ast.BoolType) and not check.abstract
    assert on_fail.abstract
    bump = decl(program, "bump")
    assert isinstance(bump, ast.ExternFunctionDecl) and bump.params[1].default.width == 8

    function = decl(program, "ones_complement_sum")
    assert isinstance(function, ast.FunctionDecl)
    ret = function.body.statements[1]
    assert ast.dump(ret.value) == (
        "Binary(op='+', left=Slice(expr=Name(name='s'), hi=IntLiteral(value=15), lo=IntLiteral(value=0)), "
        "right=Cast(target_type=BitType(width=IntLiteral(value=16)), expr=Slice(expr=Name(name='s'), "
        "hi=IntLiteral(value=16), lo=IntLiteral(value=16))))")

    parser = decl(program, "P")
    value_set = local(parser, "custom_types")
    assert isinstance(value_set, ast.ValueSetDecl) and value_set.size.value == 4
    states = {s.name: s for s in parser.states}
    start_cases = states["start"].transition.select.cases
    assert ast.dump(start_cases[0].keysets) == (
        "[Mask(value=Member(expr=Name(name='EtherType'), member='IPV4'), mask=IntLiteral(value=65535))]")
    assert ast.dump(start_cases[1].keysets) == "[Name(name='custom_types')]"
    lookahead = states["parse_ip"].statements[0].value
    assert isinstance(lookahead, ast.MethodCall) and lookahead.callee.member == "lookahead"
    assert ast.dump(lookahead.type_args) == "[BitType(width=IntLiteral(value=4))]"
    select = states["parse_ip"].transition.select
    assert ast.dump(select.exprs[1]) == (
        "Member(expr=MethodCall(callee=Member(expr=Name(name='pkt'), member='lookahead'), "
        "type_args=[NamedType(name='ipv4_h')]), member='ihl')")
    assert [ast.dump(c.keysets) for c in select.cases] == [
        "[IntLiteral(value=4), IntLiteral(value=5)]",
        "[IntLiteral(value=4), Range(lo=IntLiteral(value=6), hi=IntLiteral(value=15))]",
        "[IntLiteral(value=6), DontCare()]",
        "[DefaultKeyset()]"]
    assert ast.dump(states["parse_mpls"].statements[0].call.args[0].value) == (
        "Member(expr=Member(expr=Name(name='hdr'), member='mpls'), member='next')")
    assert isinstance(states["parse_v6"].statements[1].value, ast.ListExpression)

    body = decl(program, "C").apply.statements
    inner = body[0].then.statements
    assert ast.dump(inner[2].target) == (
        "ArrayIndex(expr=Member(expr=Name(name='hdr'), member='mpls'), index=IntLiteral(value=0))")
    init = inner[2].value
    assert isinstance(init, ast.StructInitializer) and [f.name for f in init.fields] == ["label", "tc", "bos", "ttl"]
    assert ast.dump(inner[3].value) == (
        "Cast(target_type=NamedType(name='EtherType'), expr=IntLiteral(value=34887, width=16))")
    assert isinstance(body[1].value, ast.Ternary)
    assert body[2].call.args[1].name == "by"
    assert ast.dump(body[3].call.type_args) == "[BitType(width=IntLiteral(value=4))]"
    comparison = body[4].cond
    assert comparison.op == "<" and comparison.right.value == 4
    negative = body[4].then.statements[0].value.cond.left
    assert (negative.value, negative.width, negative.signed) == (-1, 4, True)


def test_selectors_const_entries_and_switch_on_action_run():
    program = parse_text(LOAD_BALANCER, "lb.p4")
    ingress = decl(program, "MyIngress")
    instances = {d.name: d for d in ingress.locals if isinstance(d, ast.Instantiation)}
    assert ast.dump(instances["flow_bytes"].type) == (
        "NamedType(name='register', type_args=[BitType(width=IntLiteral(value=32))])")
    selector = instances["ecmp_sel"]
    assert ast.dump(selector.args[0].value) == "Member(expr=Name(name='HashAlgorithm'), member='crc16')"
    assert [(a.value.value, a.value.width) for a in selector.args[1:]] == [(1024, 32), (14, 32)]
    assert local(ingress, "drop").annotations[0].args[0].value == ".drop"

    ecmp = local(ingress, "ecmp_group")
    assert [k.match_kind for k in ecmp.keys] == ["lpm", "selector", "selector"]
    assert ecmp.keys[0].annotations[0].name == "name"
    assert ecmp.actions[1].annotations[0].name == "defaultonly"
    assert ecmp.implementation.name == "ecmp_sel" and ecmp.counters.name == "ecmp_hits"
    assert ecmp.default_action.const

    acl = local(ingress, "acl")
    assert acl.entries.const and acl.meters.name == "rate"
    assert acl.actions[2].annotations[0].name == "tableonly"
    first, second, third = acl.entries.entries
    assert ast.dump(first.keysets) == (
        "[IntLiteral(value=6), Range(lo=IntLiteral(value=22), hi=IntLiteral(value=23)), BoolLiteral(value=True)]")
    assert second.priority.value == 10
    assert ast.dump(second.keysets[0]) == "Mask(value=IntLiteral(value=17, width=8), mask=IntLiteral(value=255, width=8))"
    assert second.action.name == "set_ecmp" and [a.value.value for a in second.action.args] == [0, 4]
    assert ast.dump(third.keysets) == "[DontCare(), DefaultKeyset(), DontCare()]"
    assert [(p.name, p.value.value) for p in acl.other_properties] == [("largest_priority_wins", False)]

    statements = ingress.apply.statements
    switch = next(s for s in statements if isinstance(s, ast.SwitchStatement))
    assert ast.dump(switch.expr) == (
        "Member(expr=MethodCall(callee=Member(expr=Name(name='ecmp_group'), member='apply')), member='action_run')")
    assert [ast.dump(c.label) for c in switch.cases] == ["Name(name='set_nhop')", "Name(name='drop')", "DefaultKeyset()"]
    assert switch.cases[1].body is None                       # falls through to default
    assert isinstance(switch.cases[2].body.statements[0], ast.ExitStatement)
    compound = [s for s in statements if isinstance(s, ast.AssignmentStatement)
                and isinstance(s.value, ast.Binary) and ast.dump(s.target) == "Name(name='tmp')"]
    assert [s.value.op for s in compound][:3] == ["+", "+", ">>"]
    assert compound[2].value.right.value == 2 and compound[2].value.left is not compound[2].target


# ---------------------------------------------------------------------------- expressions

@pytest.mark.parametrize("text, expected", [
    ("x = a | b == c;", "Binary(op='==', left=Binary(op='|', left=Name(name='a'), right=Name(name='b')), right=Name(name='c'))"),
    ("x = a + b << 1;", "Binary(op='<<', left=Binary(op='+', left=Name(name='a'), right=Name(name='b')), right=IntLiteral(value=1))"),
    ("x = a >> 1;", "Binary(op='>>', left=Name(name='a'), right=IntLiteral(value=1))"),
    ("x = a < b && c > d;", "Binary(op='&&', left=Binary(op='<', left=Name(name='a'), right=Name(name='b')), right=Binary(op='>', left=Name(name='c'), right=Name(name='d')))"),
    ("x = a - b - c;", "Binary(op='-', left=Binary(op='-', left=Name(name='a'), right=Name(name='b')), right=Name(name='c'))"),
    ("x = a & b ^ c | d;", "Binary(op='|', left=Binary(op='^', left=Binary(op='&', left=Name(name='a'), right=Name(name='b')), right=Name(name='c')), right=Name(name='d'))"),
    ("x = -a[3:0];", "Unary(op='-', operand=Slice(expr=Name(name='a'), hi=IntLiteral(value=3), lo=IntLiteral(value=0)))"),
    ("x = (bit<8>)a + b;", "Binary(op='+', left=Cast(target_type=BitType(width=IntLiteral(value=8)), expr=Name(name='a')), right=Name(name='b'))"),
    ("x = c ? a : b ? d : e;", "Ternary(cond=Name(name='c'), then=Name(name='a'), otherwise=Ternary(cond=Name(name='b'), then=Name(name='d'), otherwise=Name(name='e')))"),
    ("x = (a);", "Name(name='a')"),
    ("x = {};", "ListExpression()"),
    ("x = 0b1010_1010 * 0o17 % 0d99;", "Binary(op='%', left=Binary(op='*', left=IntLiteral(value=170), right=IntLiteral(value=15)), right=IntLiteral(value=99))"),
    ("x = .y;", "Name(name='y', top_level=True)"),
    ("x = \"a\\\"b\";", "StringLiteral(value='a\"b')"),
    ("x = a.b[2].c;", "Member(expr=ArrayIndex(expr=Member(expr=Name(name='a'), member='b'), index=IntLiteral(value=2)), member='c')"),
])
def test_expression_precedence_and_forms(text, expected):
    assert ast.dump(expr_of(text).value) == expected


# Random expression trees printed with the fewest parentheses P4's precedence allows must parse
# back into the same tree.
_LEAVES = st.sampled_from(["a", "b", "c", "d", "7"])
_OPERATORS = st.sampled_from([op for level in _BINARY_LEVELS for op in level])
_TREES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.tuples(_OPERATORS, inner, inner),
        st.tuples(st.sampled_from(["-", "!", "~"]), inner)),
    max_leaves=12)


def _render(tree, parent_level: int = -1, right_operand: bool = False) -> str:
    if isinstance(tree, str):
        return tree
    if len(tree) == 2:
        op, operand = tree
        inner = _render(operand, 99)
        return f"{op}{inner}"
    op, left, right = tree
    level = _PRECEDENCE[op]
    text = f"{_render(left, level)} {op} {_render(right, level, True)}"
    needs_parens = level < parent_level or (level == parent_level and right_operand)
    return f"({text})" if needs_parens else text


def _expected_dump(tree) -> str:
    if isinstance(tree, str):
        return "IntLiteral(value=7)" if tree == "7" else f"Name(name='{tree}')"
    if len(tree) == 2:
        return f"Unary(op='{tree[0]}', operand={_expected_dump(tree[1])})"
    op, left, right = tree
    return f"Binary(op='{op}', left={_expected_dump(left)}, right={_expected_dump(right)})"


@settings(max_examples=150, deadline=None)
@given(_TREES)
def test_precedence_round_trip(tree):
    text = _render(tree)
    assert ast.dump(expr_of(f"x = {text};").value) == _expected_dump(tree), text


def test_generic_call_versus_less_than():
    prelude = "header h_t { bit<8> f; }\nconst bit<8> b = 1;"
    comparison = expr_of("x = a < b;", prelude).value
    assert isinstance(comparison, ast.Binary) and comparison.op == "<"
    # 'a < b > (c)' with b a value is two comparisons, not a call
    chained = expr_of("x = a < b > (c);", prelude).value
    assert chained.op == ">" and chained.left.op == "<"
    call = expr_of("x = p.lookahead<h_t>();", prelude).value
    assert isinstance(call, ast.MethodCall) and call.type_args[0].name == "h_t"
    nested = expr_of("f<bit<8>, tuple<bit<4>, bool>>(x);", prelude).call
    assert ast.dump(nested.type_args) == (
        "[BitType(width=IntLiteral(value=8)), TupleType(elements=[BitType(width=IntLiteral(value=4)), BoolType()])]")


def test_cast_versus_parenthesised_expression():
    prelude = "enum bit<8> E { A = 1 }\ntypedef bit<8> byte_t;"
    assert isinstance(expr_of("x = (E.A);", prelude).value, ast.Member)
    assert isinstance(expr_of("x = (byte_t)y;", prelude).value, ast.Cast)
    assert isinstance(expr_of("x = (y) - 1;", prelude).value, ast.Binary)
    assert isinstance(expr_of("x = (byte_t) - 1;", prelude).value, ast.Cast)


def test_cast_of_struct_initializer_names_its_type():
    prelude = "struct pair_t { bit<8> a; bit<8> b; }"
    typed = expr_of("x = (pair_t){ a = 1, b = 2 };", prelude).value
    assert isinstance(typed, ast.StructInitializer) and typed.type_name.name == "pair_t"
    assert [f.name for f in typed.fields] == ["a", "b"]
    assert expr_of("x = { a = 1, b = 2 };", prelude).value.type_name is None


def test_statement_kinds_are_told_apart():
    prelude = "typedef bit<8> byte_t;\nheader h_t { bit<8> f; }"
    assert isinstance(expr_of("byte_t v = 1;", prelude), ast.VariableDecl)
    assert isinstance(expr_of("h_t[2] stack;", prelude), ast.VariableDecl)
    assert isinstance(expr_of("unknown_t v;", prelude), ast.VariableDecl)
    assert isinstance(expr_of("error e = error.NoError;", prelude), ast.VariableDecl)
    assert isinstance(expr_of("v = error.NoError;", prelude), ast.AssignmentStatement)
    assert isinstance(expr_of("v[3:0] = 1;", prelude), ast.AssignmentStatement)
    assert isinstance(expr_of("const bit<8> K = 3;", prelude), ast.ConstDecl)
    assert isinstance(expr_of("@atomic { x = 1; }", prelude), ast.BlockStatement)
    assert isinstance(expr_of(";", prelude), ast.EmptyStatement)
    shifted = expr_of("v >>= 3;", prelude)
    assert shifted.value.op == ">>" and shifted.value.right.value == 3
    saturating = expr_of("v |-|= 3;", prelude)
    assert saturating.value.op == "|-|"


def test_annotations_keep_raw_tokens_and_structured_bodies():
    program = parse_text('@pragma stage 3\n@id(0x100) @foo[a = 1, b = "x"] @bar[1, 2]\n'
                         "@custom(anything goes: [here) action a() { }")
    pragma, id_, foo, bar, custom = program.declarations[0].annotations
    assert pragma.name == "pragma" and pragma.tokens == ["stage", "3"] and not pragma.has_body
    assert id_.args[0].value == 0x100 and id_.tokens == ["0x100"]
    assert [(kv.name, ast.dump(kv.value)) for kv in foo.named_args] == [
        ("a", "IntLiteral(value=1)"), ("b", "StringLiteral(value='x')")]
    assert [e.value for e in bar.args] == [1, 2]
    assert custom.args == [] and custom.tokens == ["anything", "goes", ":", "[", "here"]
    assert ast.find_annotation([id_, foo], "foo") is foo


def test_locations_point_at_first_token():
    program = parse_text("header h_t {\n    bit<8> f;\n}\n\n  const bit<8> C = 8w1 + 2;\n", "loc.p4")
    header, const = program.declarations
    assert (header.loc.line, header.loc.col) == (1, 1)
    assert (header.fields[0].loc.line, header.fields[0].loc.col) == (2, 5)
    assert (const.loc.line, const.loc.col) == (5, 3)
    assert (const.value.right.loc.line, const.value.right.loc.col) == (5, 26)


def test_walk_visits_every_node_in_source_order():
    statement = expr_of("x = a + f(b, c);")
    names = [n.name for n in ast.walk(statement) if isinstance(n, ast.Name)]
    assert names == ["x", "a", "f", "b", "c"]


@pytest.mark.parametrize("text, message", [
    ("action a() { x = ; }", "expected an expression, found ';'"),
    ("table t { }", "a table must be declared inside a control"),
    ("control C() { table t { key = { x : exact } } apply {} }", "expected ';', found '}'"),
    ("parser P() { }", "parser 'P' has no states"),
    ("parser P() { state s { transition accept; x = 1; } }", "expected '}' after the transition, found 'x'"),
    ("action a() { x = {#}; }", "unsupported: invalid header expression '{#}'"),
    ("parser P() { state s { break; transition accept; } }", "'break' is not allowed in a parser state"),
    ("list<bit<8>> x;", "unsupported: list<T> types"),
    ("extern E { E(); } E() e = { };", "unsupported: instantiation with an object initializer"),
    # When every reading fails, the error comes from the one that got furthest.
    ("action a() { x = (bit<8> y; }", "expected ')', found 'y'"),
    ("action a() { x = f<bit<8>(y); }", "expected ',' or '>', found '('"),
    ("parser P() { state s { transition select(a, b) { (1, 2 3): s; } } }", "expected ')', found '3'"),
])
def test_syntax_errors(text, message):
    with pytest.raises(CompileError) as info:
        parse_text(text, "e.p4")
    assert info.value.message == message


# ---------------------------------------------------------------------------- declaration files

def test_v1model_declares_the_architecture():
    program = parse_text("#include <v1model.p4>\n")
    by_name: dict[str, list[ast.Declaration]] = {}
    for d in program.declarations:
        by_name.setdefault(d.name, []).append(d)
    errors = by_name["error"][0]
    assert [m.name for m in errors.members] == ["NoError", "PacketTooShort", "NoMatch", "StackOutOfBounds",
                                                "HeaderTooShort", "ParserTimeout", "ParserInvalidArgument"]
    kinds = [m.name for d in by_name["match_kind"] for m in d.members]
    assert kinds == ["exact", "ternary", "lpm", "range", "optional", "selector"]
    fields = [f.name for f in by_name["standard_metadata_t"][0].fields]
    for field_name in ("ingress_port", "egress_spec", "egress_port", "instance_type", "packet_length",
                       "enq_timestamp", "enq_qdepth", "deq_timedelta", "deq_qdepth", "ingress_global_timestamp",
                       "egress_global_timestamp", "mcast_grp", "egress_rid", "checksum_error", "parser_error",
                       "priority"):
        assert field_name in fields
    hash_algorithms = [m.name for m in by_name["HashAlgorithm"][0].members]
    assert hash_algorithms == ["crc32", "crc32_custom", "crc16", "crc16_custom", "random", "identity",
                               "csum16", "xor16"]
    assert [len(d.params) for d in by_name["mark_to_drop"]] == [0, 1]
    for extern_object in ("counter", "direct_counter", "meter", "direct_meter", "register", "action_profile",
                          "action_selector", "packet_in", "packet_out"):
        assert isinstance(by_name[extern_object][0], ast.ExternDecl), extern_object
    for function in ("random", "digest", "hash", "verify_checksum", "update_checksum",
                     "verify_checksum_with_payload", "update_checksum_with_payload",
                     "resubmit_preserving_field_list", "recirculate_preserving_field_list", "clone",
                     "clone_preserving_field_list", "truncate", "assert", "assume", "log_msg", "verify"):
        assert isinstance(by_name[function][0], ast.ExternFunctionDecl), function
    assert [m.name for m in by_name["packet_in"][0].methods] == ["extract", "extract", "lookahead", "advance", "length"]
    package = by_name["V1Switch"][0]
    assert [p.type.name for p in package.params] == [
        "Parser", "VerifyChecksum", "Ingress", "Egress", "ComputeChecksum", "Deparser"]
    assert isinstance(by_name["NoAction"][0], ast.ActionDecl)
    assert by_name["Parser"][0].type_params == ["H", "M"]


def test_include_guards_make_double_include_harmless():
    program = parse_text("#include <core.p4>\n#include <v1model.p4>\n#include <v1model.p4>\n")
    assert sum(1 for d in program.declarations if d.name == "V1Switch") == 1
    assert all(d.loc.file.startswith(P4INCLUDE_DIR) for d in program.declarations)


def test_parsing_v1model_and_a_500_line_program_is_fast():
    lines = [BASIC]
    index = 0
    while sum(chunk.count("\n") for chunk in lines) < 520:
        lines.append(f"""
control Extra{index}(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {{
    register<bit<32>>(64) r{index};
    action set{index}(bit<9> port, bit<48> mac) {{
        sm.egress_spec = port; hdr.ethernet.dstAddr = mac;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
    }}
    table t{index} {{
        key = {{ hdr.ipv4.dstAddr : lpm; hdr.ipv4.protocol : ternary; }}
        actions = {{ set{index}; NoAction; }}
        const entries = {{ (0x0a000000 &&& 0xff000000, 6) : set{index}(1, 0x1); }}
    }}
    apply {{
        bit<32> v;
        r{index}.read(v, (bit<32>)sm.ingress_port);
        if (t{index}.apply().hit && v > 10) {{ v = v |+| 1; }} else {{ v = v >> 1; }}
        r{index}.write((bit<32>)sm.ingress_port, v);
    }}
}}
""")
        index += 1
    text = "".join(lines)
    assert text.count("\n") >= 500
    start = time.perf_counter()
    program = parse_text(text, "big.p4")
    elapsed = time.perf_counter() - start
    assert sum(1 for d in program.declarations if d.name.startswith("Extra")) == index
    assert elapsed < 0.5, f"parsing took {elapsed:.3f} s"
