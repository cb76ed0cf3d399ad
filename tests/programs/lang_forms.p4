/* p4c's v1model forms: include guards, function-like macros, register<T, I> and counter<I>,
 * serializable-enum keys in const entries, @priority on entries (the smallest wins, as p4c's
 * BMv2 back-end ranks them; unannotated entries rank by position). */
#include <core.p4>
#include <v1model.p4>

#if !defined(_CORE_P4_) || !defined(_V1_MODEL_P4_) || V1MODEL_VERSION < 20200408
#error "p4c's guard macros are missing"
#endif

#define LOW_BITS(x, n) ((x) & ((1 << (n)) - 1))
#define PORT_OF(v) ((bit<9>)LOW_BITS(v, 4))

enum bit<8> Kind { SMALL = 1, BIG = 0xf0 }

header h_t {
    Kind    kind;
    bit<16> t;
    bit<8>  v;
    bit<8>  prev;
}

struct headers { h_t h; }
struct meta { }

parser P(packet_in b, out headers hdr, inout meta m, inout standard_metadata_t sm) {
    state start { b.extract(hdr.h); transition accept; }
}

control Ingress(inout headers hdr, inout meta m, inout standard_metadata_t sm) {
    register<bit<8>, bit<2>>(4) last_v;
    counter<bit<1>>(2, CounterType.packets) seen;

    action to(bit<9> p) { sm.egress_spec = p; }
    action by_value() { sm.egress_spec = PORT_OF(hdr.h.v); }

    table prio {
        key = { hdr.h.kind : exact; hdr.h.t : ternary; }
        actions = { to; by_value; }
        default_action = by_value();
        const entries = {
            (Kind.SMALL, 0x1111 &&& 0x000f) : to(1) @priority(3);
            (Kind.SMALL, 0x1181)            : to(2);
            (Kind.SMALL, 0x1181 &&& 0xf00f) : to(3) @priority(1);
            (Kind.BIG, (bit<16>)0xab00 &&& 0xff00) : to(4);
        }
    }

    apply {
        last_v.read(hdr.h.prev, (bit<2>)hdr.h.kind);
        last_v.write((bit<2>)hdr.h.kind, hdr.h.v);
        seen.count((bit<1>)hdr.h.kind);
        prio.apply();
    }
}

control Egress(inout headers hdr, inout meta m, inout standard_metadata_t sm) { apply { } }
control NoCk(inout headers hdr, inout meta m) { apply { } }
control D(packet_out b, in headers hdr) { apply { b.emit(hdr.h); } }

V1Switch(P(), NoCk(), Ingress(), Egress(), NoCk(), D()) main;
