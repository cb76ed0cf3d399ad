/* for ... in over a header stack (each element in turn). */
#include <core.p4>
#include <v1model.p4>
header e_t { bit<8> v; }
struct headers { e_t[3] s; e_t res; }
struct meta { }
parser P(packet_in pkt, out headers hdr, inout meta m, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.s.next); pkt.extract(hdr.s.next); pkt.extract(hdr.s.next); transition accept; }
}
control I(inout headers hdr, inout meta m, inout standard_metadata_t sm) {
    apply {
        bit<8> total = 0;
        for (e_t e in hdr.s) {
            if (!e.isValid()) { continue; }
            total = total + e.v;
        }
        hdr.res.setValid();
        hdr.res.v = total;
        sm.egress_spec = 1;
    }
}
control E(inout headers hdr, inout meta m, inout standard_metadata_t sm) { apply { } }
control C(inout headers hdr, inout meta m) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr); } }
V1Switch(P(), C(), I(), E(), C(), D()) main;
