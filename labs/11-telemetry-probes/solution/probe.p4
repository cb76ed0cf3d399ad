/* Lab 11 — in-band telemetry probes (MRI-like).
 * Forwarding as in lab 01. A probe is an IPv4 packet with protocol PROTO_PROBE whose payload
 * starts with a probe header (the number of hop records that follow) and the hop records,
 * newest first. Each switch's egress pushes its own record in front — switch id, ports, the
 * depth of the queue the probe joined and the time it waited there — and grows the IPv4
 * length to match, so the receiver reads the path and the queues along it. */
#include <core.p4>
#include <v1model.p4>

const bit<16> TYPE_IPV4 = 0x0800;
const bit<8>  PROTO_PROBE = 0xFD;    // RFC 3692: for experimentation
#define MAX_HOPS 8
const bit<16> HOP_BYTES = 16;

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

header probe_t {
    bit<8> hop_count;       // hop records that follow
}

header hop_t {
    bit<32> switch_id;
    bit<16> ingress_port;
    bit<16> egress_port;
    bit<32> enq_qdepth;      // packets queued ahead of the probe
    bit<32> deq_timedelta;   // µs the probe waited in the queue
}

struct metadata {
    bit<8> hops_left;        // parser: records still to extract
}

struct headers {
    ethernet_t      ethernet;
    ipv4_t          ipv4;
    probe_t         probe;
    hop_t[MAX_HOPS] hops;
}

parser ProbeParser(packet_in packet, out headers hdr, inout metadata meta,
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
            PROTO_PROBE: parse_probe;
            default: accept;
        }
    }
    state parse_probe {
        packet.extract(hdr.probe);
        meta.hops_left = hdr.probe.hop_count;
        transition select(meta.hops_left) {
            0: accept;
            default: parse_hop;
        }
    }
    state parse_hop {
        packet.extract(hdr.hops.next);
        meta.hops_left = meta.hops_left - 1;
        transition select(meta.hops_left) {
            0: accept;
            default: parse_hop;
        }
    }
}

control ProbeVerifyChecksum(inout headers hdr, inout metadata meta) {
    apply { }
}

control ProbeIngress(inout headers hdr, inout metadata meta,
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

control ProbeEgress(inout headers hdr, inout metadata meta,
                    inout standard_metadata_t standard_metadata) {
    action add_hop_record(bit<32> switch_id) {
        hdr.hops.push_front(1);
        hdr.hops[0].setValid();
        hdr.hops[0].switch_id = switch_id;
        hdr.hops[0].ingress_port = (bit<16>)standard_metadata.ingress_port;
        hdr.hops[0].egress_port = (bit<16>)standard_metadata.egress_port;
        hdr.hops[0].enq_qdepth = (bit<32>)standard_metadata.enq_qdepth;
        hdr.hops[0].deq_timedelta = standard_metadata.deq_timedelta;
        hdr.probe.hop_count = hdr.probe.hop_count + 1;
        hdr.ipv4.totalLen = hdr.ipv4.totalLen + HOP_BYTES;
    }

    /* One default entry per switch: its id. */
    table telemetry {
        actions = { add_hop_record; NoAction; }
        default_action = NoAction();
    }

    apply {
        if (hdr.probe.isValid() && hdr.probe.hop_count < MAX_HOPS) {
            telemetry.apply();
        }
    }
}

control ProbeComputeChecksum(inout headers hdr, inout metadata meta) {
    apply {
        update_checksum(hdr.ipv4.isValid(),
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.totalLen,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.fragOffset, hdr.ipv4.ttl,
              hdr.ipv4.protocol, hdr.ipv4.srcAddr, hdr.ipv4.dstAddr },
            hdr.ipv4.hdrChecksum, HashAlgorithm.csum16);
    }
}

control ProbeDeparser(packet_out packet, in headers hdr) {
    apply {
        packet.emit(hdr.ethernet);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.probe);
        packet.emit(hdr.hops);
    }
}

V1Switch(ProbeParser(), ProbeVerifyChecksum(), ProbeIngress(), ProbeEgress(), ProbeComputeChecksum(),
         ProbeDeparser()) main;
