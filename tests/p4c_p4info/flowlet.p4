/* The control-plane shape of p4c's testdata flowlet_switching-bmv2.p4 — its controls, tables,
 * keys, actions, parameters and registers under the same names — with bodies of our own:
 * P4Info depends on names and types only, so p4c's published P4Info for that program is this
 * program's P4Info too (tests/test_p4info_p4c.py). Ingress is declared after egress, as
 * there: P4Info lists the V1Switch's controls in package order, not in source order. */
#include <core.p4>
#include <v1model.p4>

struct ingress_metadata_t {
    bit<32> flow_ipg;
    bit<13> flowlet_map_index;
    bit<16> flowlet_id;
    bit<32> flowlet_lasttime;
    bit<14> ecmp_offset;
    bit<32> nhop_ipv4;
}

header ethernet_t {
    bit<48> dstAddr;
    bit<48> srcAddr;
    bit<16> etherType;
}

header ipv4_t {
    bit<8>  versionIhl;
    bit<8>  diffserv;
    bit<16> totalLen;
    bit<32> idFlagsFrag;
    bit<8>  ttl;
    bit<8>  protocol;
    bit<16> hdrChecksum;
    bit<32> srcAddr;
    bit<32> dstAddr;
}

struct metadata {
    ingress_metadata_t ingress_metadata;
}

struct headers {
    ethernet_t ethernet;
    ipv4_t     ipv4;
}

parser ParserImpl(packet_in packet, out headers hdr, inout metadata meta, inout standard_metadata_t standard_metadata) {
    state start {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) {
            0x800: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        transition accept;
    }
}

control egress(inout headers hdr, inout metadata meta, inout standard_metadata_t standard_metadata) {
    action rewrite_mac(bit<48> smac) {
        hdr.ethernet.srcAddr = smac;
    }
    action _drop() {
        mark_to_drop(standard_metadata);
    }
    table send_frame {
        actions = { rewrite_mac; _drop; NoAction; }
        key = { standard_metadata.egress_port: exact; }
        size = 256;
        default_action = NoAction();
    }
    apply {
        send_frame.apply();
    }
}

control ingress(inout headers hdr, inout metadata meta, inout standard_metadata_t standard_metadata) {
    register<bit<16>>(8192) flowlet_id;
    register<bit<32>>(8192) flowlet_lasttime;
    action _drop() {
        mark_to_drop(standard_metadata);
    }
    action set_ecmp_select(bit<8> ecmp_base, bit<8> ecmp_count) {
        meta.ingress_metadata.ecmp_offset = (bit<14>)ecmp_base + (bit<14>)ecmp_count;
    }
    action set_nhop(bit<32> nhop_ipv4, bit<9> port) {
        meta.ingress_metadata.nhop_ipv4 = nhop_ipv4;
        standard_metadata.egress_spec = port;
    }
    action lookup_flowlet_map() {
        meta.ingress_metadata.flowlet_map_index = hdr.ipv4.srcAddr[12:0];
        flowlet_id.read(meta.ingress_metadata.flowlet_id, (bit<32>)meta.ingress_metadata.flowlet_map_index);
        flowlet_lasttime.read(meta.ingress_metadata.flowlet_lasttime, (bit<32>)meta.ingress_metadata.flowlet_map_index);
    }
    action set_dmac(bit<48> dmac) {
        hdr.ethernet.dstAddr = dmac;
    }
    action update_flowlet_id() {
        meta.ingress_metadata.flowlet_id = meta.ingress_metadata.flowlet_id + 1;
        flowlet_id.write((bit<32>)meta.ingress_metadata.flowlet_map_index, meta.ingress_metadata.flowlet_id);
    }
    table ecmp_group {
        actions = { _drop; set_ecmp_select; NoAction; }
        key = { hdr.ipv4.dstAddr: lpm; }
        size = 1024;
        default_action = NoAction();
    }
    table ecmp_nhop {
        actions = { _drop; set_nhop; NoAction; }
        key = { meta.ingress_metadata.ecmp_offset: exact; }
        size = 16384;
        default_action = NoAction();
    }
    table flowlet {
        actions = { lookup_flowlet_map; NoAction; }
        default_action = NoAction();
    }
    table forward {
        actions = { set_dmac; _drop; NoAction; }
        key = { meta.ingress_metadata.nhop_ipv4: exact; }
        size = 512;
        default_action = NoAction();
    }
    table new_flowlet {
        actions = { update_flowlet_id; NoAction; }
        default_action = NoAction();
    }
    apply {
        flowlet.apply();
        if (meta.ingress_metadata.flow_ipg > 50000) {
            new_flowlet.apply();
        }
        ecmp_group.apply();
        ecmp_nhop.apply();
        forward.apply();
    }
}

control DeparserImpl(packet_out packet, in headers hdr) {
    apply {
        packet.emit(hdr.ethernet);
        packet.emit(hdr.ipv4);
    }
}

control verifyChecksum(inout headers hdr, inout metadata meta) {
    apply { }
}

control computeChecksum(inout headers hdr, inout metadata meta) {
    apply { }
}

V1Switch(ParserImpl(), verifyChecksum(), ingress(), egress(), computeChecksum(), DeparserImpl()) main;
