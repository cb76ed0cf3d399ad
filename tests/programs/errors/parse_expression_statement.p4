// expect: 6:9: error: expression is not a statement (expected an assignment or a call)
#include <v1model.p4>

control C(inout bit<8> a, inout bit<8> b) {
    apply {
        a + b;
    }
}
