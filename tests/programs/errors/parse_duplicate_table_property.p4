// expect: 15:9: error: duplicate table property 'size'
#include <v1model.p4>

control C(inout bit<32> dst, inout standard_metadata_t sm) {
    action fwd(bit<9> port) { sm.egress_spec = port; }
    action drop() { mark_to_drop(sm); }
    table route {
        key = { dst: lpm; }
        actions = { fwd; drop; }
        size = 1024;
        default_action = drop();
        // the first size wins in some compilers; P4 says a property
        // appears at most once
        const entries = { 0x0a000001 : fwd(1); }
        size = 2048;
    }
    apply { route.apply(); }
}
