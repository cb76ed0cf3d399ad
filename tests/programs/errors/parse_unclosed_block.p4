// expect: 6:11: error: '{' is never closed
#include <v1model.p4>

control C(inout bit<8> a) {
    action inc(bit<8> d) { a = a + d; }
    apply {
        inc(1);
