/* varbit: extract with a length, emit at the extracted length, compare and assign (swap two
 * fields through a local). Where simple_switch decides: a length above the field's maximum is
 * error.HeaderTooShort, a header that does not end on a byte error.ParserInvalidArgument, and a
 * packet shorter than the header error.PacketTooShort; the packet goes on to ingress with
 * standard_metadata.parser_error set, as v1model says. */
#include <core.p4>
#include <v1model.p4>

header len_t { bit<8> bits; }
header opt_t { bit<8> kind; varbit<32> data; }
header tail_t { bit<8> v; }

struct headers { len_t len; opt_t a; opt_t b; tail_t tail; }
struct meta { }

parser P(packet_in pkt, out headers hdr, inout meta m, inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.len);
        pkt.extract(hdr.a, (bit<32>)hdr.len.bits);
        pkt.extract(hdr.b, (bit<32>)hdr.len.bits);
        pkt.extract(hdr.tail);
        transition accept;
    }
}

control Ingress(inout headers hdr, inout meta m, inout standard_metadata_t sm) {
    varbit<32> tmp;
    apply {
        sm.egress_spec = 1;
        if (sm.parser_error == error.HeaderTooShort) {
            sm.egress_spec = 2;
        } else if (sm.parser_error == error.ParserInvalidArgument) {
            sm.egress_spec = 3;
        } else if (sm.parser_error == error.PacketTooShort) {
            sm.egress_spec = 4;
        } else if (hdr.a.data == hdr.b.data) {
            hdr.tail.v = 0xee;
        } else {
            tmp = hdr.a.data;
            hdr.a.data = hdr.b.data;
            hdr.b.data = tmp;
        }
    }
}

control Egress(inout headers hdr, inout meta m, inout standard_metadata_t sm) { apply { } }
control NoCk(inout headers hdr, inout meta m) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr); } }

V1Switch(P(), NoCk(), Ingress(), Egress(), NoCk(), D()) main;
