/* for loops (P4_16 1.2.4): the three-clause form with several clauses, break and continue, and
 * for ... in over a range, in actions and in apply blocks. */
#include <core.p4>
#include <v1model.p4>

header h_t { bit<8> op; bit<8> n; bit<16> sum; bit<8> count; }
struct headers { h_t h; }
struct meta { }

parser P(packet_in b, out headers hdr, inout meta m, inout standard_metadata_t sm) {
    state start { b.extract(hdr.h); transition accept; }
}

control Ingress(inout headers hdr, inout meta m, inout standard_metadata_t sm) {
    /* sum of 1..n, skipping multiples of 3, stopping after 10 */
    action sum_to_n() {
        hdr.h.sum = 0;
        hdr.h.count = 0;
        for (bit<8> i = 1, bit<8> j = 0; i <= hdr.h.n; i = i + 1, j = j + 1) {
            if (i > 10) {
                break;
            }
            if (i % 3 == 0) {
                continue;
            }
            hdr.h.sum = hdr.h.sum + (bit<16>)i;
            hdr.h.count = j + 1;
        }
    }

    apply {
        sm.egress_spec = 1;
        if (hdr.h.op == 0) {
            sum_to_n();
        } else {
            // nested range loops: count pairs (x, y) in 0..n with x < y
            hdr.h.count = 0;
            for (bit<8> x in 0 .. hdr.h.n) {
                for (bit<8> y in x .. hdr.h.n) {
                    if (x == y) {
                        continue;
                    }
                    hdr.h.count = hdr.h.count + 1;
                }
            }
        }
    }
}

control Egress(inout headers hdr, inout meta m, inout standard_metadata_t sm) { apply { } }
control NoCk(inout headers hdr, inout meta m) { apply { } }
control D(packet_out b, in headers hdr) { apply { b.emit(hdr.h); } }

V1Switch(P(), NoCk(), Ingress(), Egress(), NoCk(), D()) main;
