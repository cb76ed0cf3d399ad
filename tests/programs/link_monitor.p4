/* link_monitor.p4 — link utilisation measured by probes (after the P4 tutorials'
 * "link_monitor"). Egress keeps, per port, the bytes sent since the last probe and that
 * probe's time. A probe (EtherType 0x0812) is source routed by its probe_fwd entries (one
 * popped per hop) and collects one probe_data record per hop, newest first:
 *   ethernet / probe / probe_fwd x fwd_cnt / probe_data x hop_cnt
 * The receiver divides byte_cnt by (cur_time - last_time) for the link's rate.
 * Plain IPv4 is forwarded by LPM as in ipv4_lpm.p4. */
#include <core.p4>
#include <v1model.p4>

const bit<16> TYPE_IPV4  = 0x0800;
const bit<16> TYPE_PROBE = 0x0812;

#define MAX_HOPS 10
#define MAX_PORTS 8

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

header probe_t {
    bit<8> hop_cnt;     // probe_data records present
    bit<8> fwd_cnt;     // probe_fwd entries present
}

header probe_fwd_t {
    bit<8> egress_spec;
}

header probe_data_t {
    bit<1>  bos;        // the record of the first hop
    bit<7>  swid;
    bit<8>  port;
    bit<32> byte_cnt;   // bytes sent on the port since the previous probe, this one included
    bit<48> last_time;  // egress time of the previous probe on this port (0: none yet)
    bit<48> cur_time;   // egress time of this probe
}

struct metadata {
    bit<8> fwd_remaining;
    bit<8> data_remaining;
}

struct headers {
    ethernet_t              ethernet;
    ipv4_t                  ipv4;
    probe_t                 probe;
    probe_fwd_t[MAX_HOPS]   probe_fwd;
    probe_data_t[MAX_HOPS]  probe_data;
}

parser MyParser(packet_in packet, out headers hdr, inout metadata meta,
                inout standard_metadata_t standard_metadata) {
    state start {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) {
            TYPE_IPV4: parse_ipv4;
            TYPE_PROBE: parse_probe;
            default: accept;
        }
    }
    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        transition accept;
    }
    state parse_probe {
        packet.extract(hdr.probe);
        meta.fwd_remaining = hdr.probe.fwd_cnt;
        meta.data_remaining = hdr.probe.hop_cnt;
        transition parse_probe_fwd_list;
    }
    state parse_probe_fwd_list {
        transition select(meta.fwd_remaining) {
            0: parse_probe_data_list;
            default: parse_probe_fwd;
        }
    }
    state parse_probe_fwd {
        packet.extract(hdr.probe_fwd.next);
        meta.fwd_remaining = meta.fwd_remaining - 1;
        transition parse_probe_fwd_list;
    }
    state parse_probe_data_list {
        transition select(meta.data_remaining) {
            0: accept;
            default: parse_probe_data;
        }
    }
    state parse_probe_data {
        packet.extract(hdr.probe_data.next);
        meta.data_remaining = meta.data_remaining - 1;
        transition parse_probe_data_list;
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

    action ipv4_forward(bit<48> dstAddr, bit<9> port) {
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
        } else if (hdr.probe.isValid() && hdr.probe_fwd[0].isValid()) {
            standard_metadata.egress_spec = (bit<9>)hdr.probe_fwd[0].egress_spec;
            hdr.probe_fwd.pop_front(1);
            hdr.probe.fwd_cnt = hdr.probe.fwd_cnt - 1;
        } else {
            drop();
        }
    }
}

control MyEgress(inout headers hdr, inout metadata meta,
                 inout standard_metadata_t standard_metadata) {
    register<bit<32>>(MAX_PORTS) byte_cnt_reg;
    register<bit<48>>(MAX_PORTS) last_time_reg;

    action set_swid(bit<7> swid) {
        hdr.probe_data[0].swid = swid;
    }

    table swid {
        actions = { set_swid; NoAction; }
        default_action = NoAction();
    }

    apply {
        bit<32> port = (bit<32>)standard_metadata.egress_port;
        bit<32> byte_cnt;
        byte_cnt_reg.read(byte_cnt, port);
        byte_cnt = byte_cnt + standard_metadata.packet_length;

        if (hdr.probe.isValid()) {
            bit<48> last_time;
            bit<48> cur_time = standard_metadata.egress_global_timestamp;
            last_time_reg.read(last_time, port);
            hdr.probe_data.push_front(1);
            hdr.probe_data[0].setValid();
            hdr.probe_data[0].bos = 0;
            if (hdr.probe.hop_cnt == 0) {
                hdr.probe_data[0].bos = 1;
            }
            hdr.probe_data[0].swid = 0;
            swid.apply();
            hdr.probe_data[0].port = (bit<8>)standard_metadata.egress_port;
            hdr.probe_data[0].byte_cnt = byte_cnt;
            hdr.probe_data[0].last_time = last_time;
            hdr.probe_data[0].cur_time = cur_time;
            hdr.probe.hop_cnt = hdr.probe.hop_cnt + 1;
            // the next probe reports what was sent after this one
            byte_cnt = 0;
            last_time_reg.write(port, cur_time);
        }
        byte_cnt_reg.write(port, byte_cnt);
    }
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
    apply {
        packet.emit(hdr.ethernet);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.probe);
        packet.emit(hdr.probe_fwd);
        packet.emit(hdr.probe_data);
    }
}

V1Switch(MyParser(), MyVerifyChecksum(), MyIngress(), MyEgress(), MyComputeChecksum(),
         MyDeparser()) main;
