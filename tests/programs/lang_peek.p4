/* lookahead<T>() of a struct, and a header that is not whole bytes: as in simple_switch it takes
 * whole bytes in the packet (9 bits -> 2 bytes), its pad bits read as nothing and emitted as 0. */
#include <core.p4>
#include <v1model.p4>

struct peek_t { bit<4> version; bit<4> len; bool flag; bit<7> rest; }
header a_t { bit<8> x; bit<8> y; }
header odd_t { bit<8> v; bit<1> last; }
struct headers { a_t a; odd_t odd; }
struct meta { peek_t p; }

parser P(packet_in pkt, out headers hdr, inout meta m, inout standard_metadata_t sm) {
    state start {
        m.p = pkt.lookahead<peek_t>();
        transition select(m.p.version, m.p.flag) {
            (4, true): take;
            default: accept;
        }
    }
    state take {
        pkt.extract(hdr.a);
        pkt.extract(hdr.odd);
        transition accept;
    }
}

control I(inout headers hdr, inout meta m, inout standard_metadata_t sm) {
    apply {
        sm.egress_spec = (bit<9>)m.p.len;
        if (hdr.a.isValid()) {
            hdr.a.y = (bit<8>)m.p.rest;
            hdr.odd.v = hdr.odd.v + (bit<8>)hdr.odd.last;
        }
    }
}

control E(inout headers hdr, inout meta m, inout standard_metadata_t sm) { apply { } }
control C(inout headers hdr, inout meta m) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr); } }

V1Switch(P(), C(), I(), E(), C(), D()) main;
