// expect: 5:11: error: unterminated string literal
#include <v1model.p4>

control C(inout bit<8> x) {
    @name("C.set) action set() { x = 1; }
    apply { set(); }
}
