/* Lab 03 — ECN marking in egress.
 * Forwarding as in lab 01. In egress, an ECN-capable packet (ECT(0) or ECT(1)) is marked CE
 * with the RED probability DCQCN deployments use, on the depth of the queue it joined
 * (enq_qdepth, packets): never up to kmin, Pmax·(q - kmin)/(kmax - kmin) up to kmax, always
 * above kmax. The controller writes kmin, kmax and slope = Pmax·2^24/(kmax - kmin) per port. */
#include <core.p4>
#include <v1model.p4>

const bit<16> TYPE_IPV4 = 0x0800;
const bit<2>  NOT_ECT = 0;
const bit<2>  CE = 3;

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
    bit<6>  dscp;
    bit<2>  ecn;
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

struct metadata {
    bit<32> kmin;    // packets: never mark at or below
    bit<32> kmax;    // packets: always mark above
    bit<32> slope;   // Pmax * 2^24 / (kmax - kmin)
}

struct headers {
    ethernet_t ethernet;
    ipv4_t     ipv4;
}

parser EcnParser(packet_in packet, out headers hdr, inout metadata meta,
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
        transition accept;
    }
}

control EcnVerifyChecksum(inout headers hdr, inout metadata meta) {
    apply { }
}

control EcnIngress(inout headers hdr, inout metadata meta,
                    inout standard_metadata_t standard_metadata) {
    action drop() {
        mark_to_drop(standard_metadata);
    }

    /* Send the packet to `port`, towards the next hop whose MAC is `dstAddr`. */
    action ipv4_forward(mac_t dstAddr, port_t port) {
        standard_metadata.egress_spec = port;
        hdr.ethernet.srcAddr = hdr.ethernet.dstAddr;   // the leaf's own MAC, which the host sent to
        hdr.ethernet.dstAddr = dstAddr;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
    }

    table ipv4_lpm {
        key = { hdr.ipv4.dstAddr: lpm; }
        actions = { ipv4_forward; drop; }
        size = 1024;
        default_action = drop();
    }

    apply {
        if (hdr.ipv4.isValid() && hdr.ipv4.ttl > 1) {
            ipv4_lpm.apply();
        } else {
            drop();
        }
    }
}

control EcnEgress(inout headers hdr, inout metadata meta,
                  inout standard_metadata_t standard_metadata) {
    counter(512, CounterType.packets) ecn_marks;   // per egress port

    action mark_ce() {
        hdr.ipv4.ecn = CE;
        ecn_marks.count((bit<32>)standard_metadata.egress_port);
    }

    action set_red(bit<32> kmin, bit<32> kmax, bit<32> slope) {
        meta.kmin = kmin;
        meta.kmax = kmax;
        meta.slope = slope;
    }

    table ecn_profile {
        key = { standard_metadata.egress_port: exact; }
        actions = { set_red; NoAction; }
        size = 512;
        default_action = NoAction();
    }

    apply {
        if (hdr.ipv4.isValid() && hdr.ipv4.ecn != NOT_ECT && ecn_profile.apply().hit) {
            /* RED on the depth of the queue this packet joined */
            bit<32> q = (bit<32>)standard_metadata.enq_qdepth;
            if (q > meta.kmax) {
                mark_ce();
            } else if (q > meta.kmin) {
                bit<32> draw;
                random(draw, 0, 0xFFFFFF);
                if (draw < (q - meta.kmin) * meta.slope) {
                    mark_ce();
                }
            }
        }
    }
}

control EcnComputeChecksum(inout headers hdr, inout metadata meta) {
    apply {
        update_checksum(hdr.ipv4.isValid(),
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.dscp, hdr.ipv4.ecn, hdr.ipv4.totalLen,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.fragOffset, hdr.ipv4.ttl,
              hdr.ipv4.protocol, hdr.ipv4.srcAddr, hdr.ipv4.dstAddr },
            hdr.ipv4.hdrChecksum, HashAlgorithm.csum16);
    }
}

control EcnDeparser(packet_out packet, in headers hdr) {
    apply {
        packet.emit(hdr.ethernet);
        packet.emit(hdr.ipv4);
    }
}

V1Switch(EcnParser(), EcnVerifyChecksum(), EcnIngress(), EcnEgress(), EcnComputeChecksum(),
         EcnDeparser()) main;
