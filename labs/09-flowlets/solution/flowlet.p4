/* Lab 09 — flowlet switching.
 * As lab 02's ECMP, but a flow may change path between bursts: a flow slot (the 5-tuple's
 * hash) remembers when the flow last sent and which member it used; a packet arriving more
 * than gap_us after the previous one starts a new flowlet on a randomly chosen member,
 * any other packet follows its flowlet. */
#include <core.p4>
#include <v1model.p4>

const bit<16> TYPE_IPV4 = 0x0800;
const bit<8>  PROTO_TCP = 6;
const bit<8>  PROTO_UDP = 17;
const bit<32> FLOWLET_SLOTS = 4096;

typedef bit<9>  port_t;
typedef bit<48> mac_t;
typedef bit<32> ip4_t;

header ethernet_t {
    mac_t   dstAddr;
    mac_t   srcAddr;
    bit<16> etherType;
}

header ipv4_t {
    bit<4>  version;
    bit<4>  ihl;
    bit<8>  diffserv;
    bit<16> totalLen;
    bit<16> identification;
    bit<3>  flags;
    bit<13> fragOffset;
    bit<8>  ttl;
    bit<8>  protocol;
    bit<16> hdrChecksum;
    ip4_t   srcAddr;
    ip4_t   dstAddr;
}

/* The first four bytes of TCP and UDP: the ports, all ECMP needs. */
header l4_ports_t {
    bit<16> srcPort;
    bit<16> dstPort;
}

struct metadata {
    bit<16> ecmp_base;     // first member of the route's group in ecmp_nhop
    bit<16> ecmp_size;     // number of members
    bit<16> ecmp_offset;   // the member this flow hashes to: 0 .. ecmp_size - 1
    bit<16> ecmp_index;    // ecmp_base + ecmp_offset: the key of ecmp_nhop
    bit<32> gap_us;        // idle time that ends a flowlet (from the route)
    bit<32> slot;          // the flow's slot in the flowlet registers
    bit<16> l4_src;
    bit<16> l4_dst;
}

struct headers {
    ethernet_t ethernet;
    ipv4_t     ipv4;
    l4_ports_t l4;
}

parser FlowletParser(packet_in packet, out headers hdr, inout metadata meta,
                  inout standard_metadata_t standard_metadata) {
    state start {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) {
            TYPE_IPV4: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        transition select(hdr.ipv4.protocol) {
            PROTO_TCP: parse_l4;
            PROTO_UDP: parse_l4;
            default: accept;
        }
    }
    state parse_l4 {
        packet.extract(hdr.l4);
        meta.l4_src = hdr.l4.srcPort;
        meta.l4_dst = hdr.l4.dstPort;
        transition accept;
    }
}

control FlowletVerifyChecksum(inout headers hdr, inout metadata meta) {
    apply { }
}

control FlowletIngress(inout headers hdr, inout metadata meta,
                    inout standard_metadata_t standard_metadata) {
    action drop() {
        mark_to_drop(standard_metadata);
    }

    register<bit<48>>(FLOWLET_SLOTS) flowlet_last_us;   // when the slot's flow last sent
    register<bit<16>>(FLOWLET_SLOTS) flowlet_offset;    // the member its flowlet uses

    action set_flowlet_group(bit<16> base, bit<16> size, bit<32> gap_us) {
        meta.ecmp_base = base;
        meta.ecmp_size = size;
        meta.gap_us = gap_us;
    }

    action set_nhop(mac_t dstAddr, port_t port) {
        standard_metadata.egress_spec = port;
        hdr.ethernet.srcAddr = hdr.ethernet.dstAddr;
        hdr.ethernet.dstAddr = dstAddr;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
    }

    table ipv4_lpm {
        key = { hdr.ipv4.dstAddr: lpm; }
        actions = { set_flowlet_group; drop; }
        size = 1024;
        default_action = drop();
    }

    table ecmp_nhop {
        key = { meta.ecmp_index: exact; }
        actions = { set_nhop; drop; }
        size = 1024;
        default_action = drop();
    }

    apply {
        if (!hdr.ipv4.isValid() || hdr.ipv4.ttl <= 1) {
            drop();
            return;
        }
        ipv4_lpm.apply();
        hash(meta.slot, HashAlgorithm.crc32, (bit<32>)0,
             { hdr.ipv4.srcAddr, hdr.ipv4.dstAddr, hdr.ipv4.protocol, meta.l4_src, meta.l4_dst },
             (bit<32>)FLOWLET_SLOTS);
        bit<48> now = standard_metadata.ingress_global_timestamp;   // µs
        bit<48> last;
        flowlet_last_us.read(last, meta.slot);
        flowlet_offset.read(meta.ecmp_offset, meta.slot);
        if (now - last > (bit<48>)meta.gap_us || meta.ecmp_offset >= meta.ecmp_size) {
            /* a new flowlet: any member will do, the previous one has drained by now */
            random(meta.ecmp_offset, (bit<16>)0, meta.ecmp_size - 1);
            flowlet_offset.write(meta.slot, meta.ecmp_offset);
        }
        flowlet_last_us.write(meta.slot, now);
        meta.ecmp_index = meta.ecmp_base + meta.ecmp_offset;
        ecmp_nhop.apply();
    }
}

control FlowletEgress(inout headers hdr, inout metadata meta,
                   inout standard_metadata_t standard_metadata) {
    apply { }
}

control FlowletComputeChecksum(inout headers hdr, inout metadata meta) {
    apply {
        update_checksum(hdr.ipv4.isValid(),
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.totalLen,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.fragOffset, hdr.ipv4.ttl,
              hdr.ipv4.protocol, hdr.ipv4.srcAddr, hdr.ipv4.dstAddr },
            hdr.ipv4.hdrChecksum, HashAlgorithm.csum16);
    }
}

control FlowletDeparser(packet_out packet, in headers hdr) {
    apply {
        packet.emit(hdr.ethernet);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.l4);
    }
}

V1Switch(FlowletParser(), FlowletVerifyChecksum(), FlowletIngress(), FlowletEgress(), FlowletComputeChecksum(),
         FlowletDeparser()) main;
