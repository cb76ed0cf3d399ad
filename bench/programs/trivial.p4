/* trivial.p4: the cheapest useful v1model program, the baseline of `fabriclab bench pipeline`.
 * Parses Ethernet and sends every frame out of port 2 (port 1 when it came in on 2),
 * with no tables: what remains is the architecture's own per-packet cost. */
#include <core.p4>
#include <v1model.p4>

header ethernet_t {
    bit<48> dst_addr;
    bit<48> src_addr;
    bit<16> ether_type;
}

struct headers_t {
    ethernet_t ethernet;
}

struct metadata_t { }

parser TrivialParser(packet_in packet, out headers_t hdr, inout metadata_t meta,
                     inout standard_metadata_t standard_metadata) {
    state start {
        packet.extract(hdr.ethernet);
        transition accept;
    }
}

control TrivialVerifyChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply { }
}

control TrivialIngress(inout headers_t hdr, inout metadata_t meta,
                       inout standard_metadata_t standard_metadata) {
    apply {
        if (standard_metadata.ingress_port == 2) {
            standard_metadata.egress_spec = 1;
        } else {
            standard_metadata.egress_spec = 2;
        }
    }
}

control TrivialEgress(inout headers_t hdr, inout metadata_t meta,
                      inout standard_metadata_t standard_metadata) {
    apply { }
}

control TrivialComputeChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply { }
}

control TrivialDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.ethernet);
    }
}

V1Switch(TrivialParser(), TrivialVerifyChecksum(), TrivialIngress(), TrivialEgress(),
         TrivialComputeChecksum(), TrivialDeparser()) main;
