/* Functions (top level and declared in a control) with return and out/inout parameters called
 * inside expressions and conditions, in P4's left-to-right side-effect order (both engines). */
#include <core.p4>
#include <v1model.p4>

header h_t { bit<8> op; bit<8> a; bit<8> b; bit<8> c; }
struct headers { h_t h; }
struct meta { bit<8> calls; }

/* Counts its calls through an inout argument and returns twice its input. */
bit<8> twice(in bit<8> x, inout bit<8> calls) {
    calls = calls + 1;
    return x + x;
}

/* Bumps v and returns the old value. */
bit<8> bump(inout bit<8> v) {
    bit<8> old = v;
    v = v + 1;
    return old;
}

parser P(packet_in b, out headers hdr, inout meta m, inout standard_metadata_t sm) {
    state start { b.extract(hdr.h); transition accept; }
}

control Ingress(inout headers hdr, inout meta m, inout standard_metadata_t sm) {
    bit<8> base = 3;

    /* Declared in the control: it sees the control's variables. */
    bit<8> plus_base(in bit<8> x) {
        if (x > 100) {
            return 100;
        }
        return x + base;
    }


    apply {
        m.calls = 0;
        sm.egress_spec = 1;
        if (hdr.h.op == 1) {
            // a is read before bump changes it: a + bump(a) = a + a, then a = a + 1
            hdr.h.b = hdr.h.a + bump(hdr.h.a);
        } else if (hdr.h.op == 2) {
            hdr.h.b = twice(hdr.h.a, m.calls) + twice(plus_base(hdr.h.a), m.calls);
            hdr.h.c = m.calls;
        } else if (hdr.h.op == 4) {
            // calls on the right of || and in a branch of ?: run only when P4 evaluates them
            bool ok = hdr.h.a == 0 || twice(hdr.h.a, m.calls) > 4;
            hdr.h.b = ok ? bump(hdr.h.a) : 0xff;
            hdr.h.c = m.calls;
        } else if (twice(hdr.h.a, m.calls) == 8) {
            hdr.h.c = m.calls + 10;
        }
    }
}

control Egress(inout headers hdr, inout meta m, inout standard_metadata_t sm) { apply { } }
control NoCk(inout headers hdr, inout meta m) { apply { } }
control D(packet_out b, in headers hdr) { apply { b.emit(hdr.h); } }

V1Switch(P(), NoCk(), Ingress(), Egress(), NoCk(), D()) main;
