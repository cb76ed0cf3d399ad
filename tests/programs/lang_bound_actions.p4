/* Table actions whose directional arguments the `actions` list binds, with entries giving the
 * others (or restating the bound ones first). */
#include <core.p4>
#include <v1model.p4>

header h_t { bit<8> op; bit<8> a; bit<8> c; }
struct headers { h_t h; }
struct meta { }

parser P(packet_in b, out headers hdr, inout meta m, inout standard_metadata_t sm) {
    state start { b.extract(hdr.h); transition accept; }
}

control Ingress(inout headers hdr, inout meta m, inout standard_metadata_t sm) {
    bit<8> base = 3;

    bit<8> plus_base(in bit<8> x) {
        if (x > 100) {
            return 100;
        }
        return x + base;
    }

    action add_to(inout bit<8> target, bit<8> value) { target = target + value; }

    table t {
        key = { hdr.h.op : exact; }
        actions = { add_to(hdr.h.c); NoAction; }
        const entries = {
            1 : add_to(5);
            2 : add_to(hdr.h.c, 9);
        }
        default_action = NoAction();
    }

    apply {
        sm.egress_spec = 1;
        hdr.h.a = plus_base(hdr.h.a);
        t.apply();
    }
}

control Egress(inout headers hdr, inout meta m, inout standard_metadata_t sm) { apply { } }
control NoCk(inout headers hdr, inout meta m) { apply { } }
control D(packet_out b, in headers hdr) { apply { b.emit(hdr.h); } }

V1Switch(P(), NoCk(), Ingress(), Egress(), NoCk(), D()) main;
