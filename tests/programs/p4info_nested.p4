/* Sub-controls and a top-level action used only inside them: the P4Info order p4c gives such a
 * program (tests/test_p4info_p4c.py). p4c's published P4Info of fabric_20190420/fabric.p4
 * shows the pattern this checks on a small scale: `nop`, top-level and used only by
 * sub-controls, comes first; then each sub-control's actions where it is instantiated. */
#include <core.p4>
#include <v1model.p4>

header ethernet_t {
    bit<48> dst;
    bit<48> src;
    bit<16> type;
}

struct headers_t { ethernet_t eth; }
struct meta_t { }

action nop() { }

parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.eth);
        transition accept;
    }
}

control First(inout headers_t hdr, inout standard_metadata_t sm) {
    action a1() { sm.egress_spec = 1; }
    table t1 {
        key = { hdr.eth.dst: exact; }
        actions = { a1; nop; }
        default_action = nop;
    }
    apply { t1.apply(); }
}

control Second(inout headers_t hdr, inout standard_metadata_t sm) {
    action b1(bit<9> port) { sm.egress_spec = port; }
    table t2 {
        key = { hdr.eth.src: exact; }
        actions = { b1; }
        default_action = b1(2);
    }
    apply { t2.apply(); }
}

control Ingress(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    action own_before() { hdr.eth.type = 1; }
    Second() second;        // instantiated before First: its actions and table come first
    First() first;
    action own_after() { hdr.eth.type = 2; }
    table t0 {
        key = { hdr.eth.type: exact; }
        actions = { own_before; own_after; }
    }
    apply {
        second.apply(hdr, sm);
        first.apply(hdr, sm);
        t0.apply();
    }
}

control Egress(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control Verify(inout headers_t hdr, inout meta_t meta) { apply { } }
control Compute(inout headers_t hdr, inout meta_t meta) { apply { } }
control Deparser(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.eth); } }

V1Switch(P(), Verify(), Ingress(), Egress(), Compute(), Deparser()) main;
