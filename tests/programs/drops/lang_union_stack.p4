/* (In drops/: frames index the stack out of range on purpose, so it is not in the
 * malformed-frames test of tests/programs/, which expects no packet to fail.) */
/* A header union in a stack and in a struct, deparsed; a header stack index out of range at
 * run time drops the packet with that reason (simple_switch would abort). */
#include <core.p4>
#include <v1model.p4>
header A { bit<8> a; }
header B { bit<16> b; }
header_union U { A a; B b; }
struct Headers { A first; U u; U[2] us; }
struct Meta { bit<8> i; }
parser p(packet_in pkt, out Headers h, inout Meta m, inout standard_metadata_t sm) {
    state start { pkt.extract(h.first); pkt.extract(h.u.a); pkt.extract(h.us[0].b); transition accept; }
}
control ingress(inout Headers h, inout Meta m, inout standard_metadata_t sm) {
    A[2] st;
    apply {
        st[h.first.a].a = 1;
        h.first.a = st[h.first.a].a;
        sm.egress_spec = 1;
    }
}
control vrfy(inout Headers h, inout Meta m) { apply {} }
control update(inout Headers h, inout Meta m) { apply {} }
control egress(inout Headers h, inout Meta m, inout standard_metadata_t sm) { apply {} }
control deparser(packet_out pkt, in Headers h) { apply { pkt.emit(h); } }
V1Switch(p(), vrfy(), ingress(), egress(), update(), deparser()) main;
