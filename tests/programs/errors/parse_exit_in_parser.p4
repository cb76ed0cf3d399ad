// expect: 10:9: error: 'exit' is not allowed in a parser state
#include <v1model.p4>

header h_t { bit<8> f; }
struct headers { h_t h; }
struct meta_t { }

parser P(packet_in pkt, out headers hdr, inout meta_t m, inout standard_metadata_t sm) {
    state start {
        exit;
    }
}
