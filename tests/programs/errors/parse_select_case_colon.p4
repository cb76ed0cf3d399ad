// expect: 15:20: error: expected ':', found 'parse_ipv4'
#include <v1model.p4>

header ethernet_t { bit<48> dst; bit<48> src; bit<16> etherType; }
header ipv4_t { bit<8> ttl; }
struct headers { ethernet_t ethernet; ipv4_t ipv4; }
struct meta_t { }

parser P(packet_in pkt, out headers hdr, inout meta_t meta,
         inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) {
            0x86dd: accept;
            0x0800 parse_ipv4;
            default: reject;
        }
    }
    state parse_ipv4 { pkt.extract(hdr.ipv4); transition accept; }
}
