// A table without default_action whose action list lacks NoAction: p4c makes NoAction its
// default-only default action; a miss must run it.
#include <core.p4>
#include <v1model.p4>
header eth_t { bit<48> d; bit<48> s; bit<16> t; }
struct h_t { eth_t eth; }
struct m_t {}
parser P(packet_in p, out h_t h, inout m_t m, inout standard_metadata_t sm) { state start { p.extract(h.eth); transition accept; } }
control VC(inout h_t h, inout m_t m) { apply {} }
control I(inout h_t h, inout m_t m, inout standard_metadata_t sm) {
  action fwd(bit<9> p) { sm.egress_spec = p; }
  table t { key = { h.eth.d: exact; } actions = { fwd; } }
  apply { sm.egress_spec = 2; t.apply(); }
}
control E(inout h_t h, inout m_t m, inout standard_metadata_t sm) { apply {} }
control CC(inout h_t h, inout m_t m) { apply {} }
control D(packet_out p, in h_t h) { apply { p.emit(h.eth); } }
V1Switch(P(), VC(), I(), E(), CC(), D()) main;
