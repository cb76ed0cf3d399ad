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

/* Counts its call; the low bit of x. */
bit<1> pick(in bit<8> x, inout bit<8> calls) {
    calls = calls + 1;
    return (bit<1>)x;
}

/* Returns a whole header (valid, from an initialiser). */
h_t rebuilt(in bit<8> op, in bit<8> a) {
    if (a == 0) {
        return { op, 0xaa, 0xbb, 0xcc };
    }
    return { op, a, a + 1, a + 2 };
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
        } else if (hdr.h.op == 6) {
            // a call in the index of an assignment's target runs before the value
            h_t[2] st;
            st[0].setValid();
            st[1].setValid();
            st[pick(hdr.h.a, m.calls)].a = m.calls + 6;
            hdr.h.b = st[0].a;
            hdr.h.c = st[1].a;
        } else if (hdr.h.op == 5) {
            hdr.h = rebuilt(hdr.h.op, hdr.h.a);
        } else if (twice(hdr.h.a, m.calls) == 8) {
            hdr.h.c = m.calls + 10;
        }
    }
}

control Egress(inout headers hdr, inout meta m, inout standard_metadata_t sm) { apply { } }
control NoCk(inout headers hdr, inout meta m) { apply { } }
control D(packet_out b, in headers hdr) { apply { b.emit(hdr.h); } }

V1Switch(P(), NoCk(), Ingress(), Egress(), NoCk(), D()) main;
