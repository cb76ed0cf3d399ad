/* Sub-parsers: a parser instance applied from parser states (twice, with different arguments),
 * in/inout/out parameters (an out header starts invalid), a sub-parser's select, reject and
 * parser errors ending the whole parse where the sub-parser stopped. */
#include <core.p4>
#include <v1model.p4>

header tag_t { bit<8> kind; }
header val_t { bit<8> v; }

struct headers { tag_t tag; val_t first; val_t second; val_t extra; }
struct meta { bit<8> seen; }

parser Value(packet_in pkt, out val_t v, inout bit<8> seen, in bit<8> limit) {
    state start {
        pkt.extract(v);
        seen = seen + 1;
        verify(v.v <= limit, error.ParserInvalidArgument);
        transition select(v.v) {
            0xff: reject;
            default: accept;
        }
    }
}

parser P(packet_in pkt, out headers hdr, inout meta m, inout standard_metadata_t sm) {
    Value() value;
    state start {
        m.seen = 0;
        pkt.extract(hdr.tag);
        value.apply(pkt, hdr.first, m.seen, 0xf0);
        transition select(hdr.tag.kind) {
            2: two;
            default: accept;
        }
    }
    state two {
        value.apply(pkt, hdr.second, m.seen, 0xff);
        transition accept;
    }
}

control Ingress(inout headers hdr, inout meta m, inout standard_metadata_t sm) {
    apply {
        sm.egress_spec = (bit<9>)m.seen;
        if (sm.parser_error == error.ParserInvalidArgument) {
            sm.egress_spec = 7;
        }
        hdr.extra.setValid();
        if (sm.parser_error == error.PacketTooShort) {
            hdr.extra.v = 1;
        } else if (sm.parser_error == error.ParserInvalidArgument) {
            hdr.extra.v = 6;
        }
    }
}

control Egress(inout headers hdr, inout meta m, inout standard_metadata_t sm) { apply { } }
control NoCk(inout headers hdr, inout meta m) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr); } }

V1Switch(P(), NoCk(), Ingress(), Egress(), NoCk(), D()) main;
