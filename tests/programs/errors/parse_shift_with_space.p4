// expect: 6:17: error: expected an expression, found '>'
#include <v1model.p4>

control C(inout bit<32> a) {
    apply {
        a = a > > 2;
    }
}
