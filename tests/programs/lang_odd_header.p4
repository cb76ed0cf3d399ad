/* Headers that are not whole bytes take whole bytes in the packet, as in simple_switch: the pad
 * bits at the end read as nothing and are emitted as 0 (extract, emit, setValid, a stack). */
#include <core.p4>
#include <v1model.p4>

header odd_t { bit<8> v; bit<1> last; bit<2> kind; }
header tail_t { bit<12> x; }
struct headers { odd_t first; odd_t[2] more; tail_t tail; }
struct meta { }

parser P(packet_in pkt, out headers hdr, inout meta m, inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.first);
        transition select(hdr.first.last) {
            1: more;
            default: accept;
        }
    }
    state more {
        pkt.extract(hdr.more.next);
        transition select(hdr.more.last.last) {
            1: more;
            default: accept;
        }
    }
}

control I(inout headers hdr, inout meta m, inout standard_metadata_t sm) {
    apply {
        sm.egress_spec = (bit<9>)hdr.first.kind;
        hdr.first.v = hdr.first.v + 1;
        if (hdr.first.kind == 3) {
            hdr.tail.setValid();
            hdr.tail.x = 0xabc;
        }
    }
}

control E(inout headers hdr, inout meta m, inout standard_metadata_t sm) { apply { } }
control C(inout headers hdr, inout meta m) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr); } }

V1Switch(P(), C(), I(), E(), C(), D()) main;
