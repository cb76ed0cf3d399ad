/* multicast.p4 — L2 forwarding with multicast groups (after the P4 tutorials'
 * "multicast"). mac_lookup sends a known destination MAC out of one port and floods the
 * rest through a multicast group of the packet replication engine (the controller fills
 * the group with mc_mgrp_create / mc_node_create / mc_node_associate). Egress prunes
 * the copy that would go back out of the ingress port and writes each copy's replication
 * id (egress_rid) into the low byte of its source MAC, so a test sees which node made it. */
#include <core.p4>
#include <v1model.p4>

header ethernet_t {
    bit<48> dstAddr;
    bit<48> srcAddr;
    bit<16> etherType;
}

struct metadata { }

struct headers {
    ethernet_t ethernet;
}

parser MyParser(packet_in packet, out headers hdr, inout metadata meta,
                inout standard_metadata_t standard_metadata) {
    state start {
        packet.extract(hdr.ethernet);
        transition accept;
    }
}

control MyVerifyChecksum(inout headers hdr, inout metadata meta) {
    apply { }
}

control MyIngress(inout headers hdr, inout metadata meta,
                  inout standard_metadata_t standard_metadata) {
    action drop() {
        mark_to_drop(standard_metadata);
    }

    action mac_forward(bit<9> port) {
        standard_metadata.egress_spec = port;
    }

    action multicast(bit<16> mcast_grp) {
        standard_metadata.mcast_grp = mcast_grp;
    }

    table mac_lookup {
        key = { hdr.ethernet.dstAddr: exact; }
        actions = { mac_forward; multicast; drop; }
        size = 1024;
        default_action = multicast(1);
    }

    apply {
        mac_lookup.apply();
    }
}

control MyEgress(inout headers hdr, inout metadata meta,
                 inout standard_metadata_t standard_metadata) {
    apply {
        if (standard_metadata.instance_type == 5) {   // PKT_INSTANCE_TYPE_REPLICATION
            if (standard_metadata.egress_port == standard_metadata.ingress_port) {
                mark_to_drop(standard_metadata);
            } else {
                hdr.ethernet.srcAddr[7:0] = standard_metadata.egress_rid[7:0];
            }
        }
    }
}

control MyComputeChecksum(inout headers hdr, inout metadata meta) {
    apply { }
}

control MyDeparser(packet_out packet, in headers hdr) {
    apply {
        packet.emit(hdr.ethernet);
    }
}

V1Switch(MyParser(), MyVerifyChecksum(), MyIngress(), MyEgress(), MyComputeChecksum(),
         MyDeparser()) main;
