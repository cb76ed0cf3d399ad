// expect: 7:1: error: control 'MyEgress' has no apply block
#include <v1model.p4>

control MyEgress(inout bit<8> h) {
    action nop() { }
    table t { actions = { nop; } }
}
