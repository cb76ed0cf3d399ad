/* Lab 02 — ECMP hashing.
 * A leaf with several equal-cost uplinks: a route names an ECMP group (a range of next hops
 * in ecmp_nhop); the 5-tuple's hash picks one member, so every packet of a flow takes the
 * same path while different flows spread over the group. */
#include <core.p4>
#include <v1model.p4>

const bit<16> TYPE_IPV4 = 0x0800;
const bit<8>  PROTO_TCP = 6;
const bit<8>  PROTO_UDP = 17;

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
    bit<16> l4_src;
    bit<16> l4_dst;
}

struct headers {
    ethernet_t ethernet;
    ipv4_t     ipv4;
    l4_ports_t l4;
}

parser EcmpParser(packet_in packet, out headers hdr, inout metadata meta,
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

control EcmpVerifyChecksum(inout headers hdr, inout metadata meta) {
    apply { }
}

control EcmpIngress(inout headers hdr, inout metadata meta,
                    inout standard_metadata_t standard_metadata) {
    action drop() {
        mark_to_drop(standard_metadata);
    }

    action set_ecmp_group(bit<16> base, bit<16> size) {
        meta.ecmp_base = base;
        meta.ecmp_size = size;
    }

    action set_nhop(mac_t dstAddr, port_t port) {
        standard_metadata.egress_spec = port;
        hdr.ethernet.srcAddr = hdr.ethernet.dstAddr;
        hdr.ethernet.dstAddr = dstAddr;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
    }

    table ipv4_lpm {
        key = { hdr.ipv4.dstAddr: lpm; }
        actions = { set_ecmp_group; drop; }
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
        /* TODO (task 2): pick the member for this packet's flow: hash the 5-tuple (source and
         * destination address, protocol, the L4 ports in meta) into 0 .. meta.ecmp_size - 1
         * with v1model's hash() extern and HashAlgorithm.crc32. Until then every packet takes
         * the group's first member. */
        meta.ecmp_index = meta.ecmp_base + meta.ecmp_offset;
        ecmp_nhop.apply();
    }
}

control EcmpEgress(inout headers hdr, inout metadata meta,
                   inout standard_metadata_t standard_metadata) {
    apply { }
}

control EcmpComputeChecksum(inout headers hdr, inout metadata meta) {
    apply {
        update_checksum(hdr.ipv4.isValid(),
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.totalLen,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.fragOffset, hdr.ipv4.ttl,
              hdr.ipv4.protocol, hdr.ipv4.srcAddr, hdr.ipv4.dstAddr },
            hdr.ipv4.hdrChecksum, HashAlgorithm.csum16);
    }
}

control EcmpDeparser(packet_out packet, in headers hdr) {
    apply {
        packet.emit(hdr.ethernet);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.l4);
    }
}

V1Switch(EcmpParser(), EcmpVerifyChecksum(), EcmpIngress(), EcmpEgress(), EcmpComputeChecksum(),
         EcmpDeparser()) main;
