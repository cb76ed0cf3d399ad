/* replication.p4 — a test exercise for the tutorials-layout runner: IPv4 forwarding, a
 * ternary ACL whose entries overlap (priority decides), a multicast group for the subnet's
 * broadcast address, and a clone session mirroring everything h1 sends to a monitor port. */
#include <core.p4>
#include <v1model.p4>

const bit<32> MIRROR_SESSION = 5;

header ethernet_t {
    bit<48> dstAddr;
    bit<48> srcAddr;
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
    bit<32> srcAddr;
    bit<32> dstAddr;
}

struct metadata { }

struct headers {
    ethernet_t ethernet;
    ipv4_t     ipv4;
}

parser RParser(packet_in packet, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    state start {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) {
            0x0800: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        transition accept;
    }
}

control RVerify(inout headers hdr, inout metadata meta) { apply { } }

control RIngress(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    action drop() { mark_to_drop(sm); }
    action allow() { }
    action forward(bit<48> dstAddr, bit<9> port) {
        sm.egress_spec = port;
        hdr.ethernet.dstAddr = dstAddr;
    }
    action flood(bit<16> group) { sm.mcast_grp = group; }
    action mirror() { clone(CloneType.I2E, MIRROR_SESSION); }

    table acl {
        key = { hdr.ipv4.srcAddr: ternary; hdr.ipv4.dstAddr: ternary; }
        actions = { allow; drop; }
        default_action = allow();
    }
    table ipv4_lpm {
        key = { hdr.ipv4.dstAddr: lpm; }
        actions = { forward; flood; drop; }
        default_action = drop();
    }
    table monitor {
        key = { sm.ingress_port: exact; }
        actions = { mirror; NoAction; }
        default_action = NoAction();
    }

    apply {
        if (!hdr.ipv4.isValid()) {
            drop();
            return;
        }
        monitor.apply();
        ipv4_lpm.apply();
        acl.apply();
    }
}

control REgress(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    apply {
        // a replica never goes back out of the port it came in on
        if (sm.mcast_grp != 0 && sm.egress_port == sm.ingress_port) {
            mark_to_drop(sm);
        }
    }
}

control RCompute(inout headers hdr, inout metadata meta) { apply { } }

control RDeparser(packet_out packet, in headers hdr) {
    apply {
        packet.emit(hdr.ethernet);
        packet.emit(hdr.ipv4);
    }
}

V1Switch(RParser(), RVerify(), RIngress(), REgress(), RCompute(), RDeparser()) main;
