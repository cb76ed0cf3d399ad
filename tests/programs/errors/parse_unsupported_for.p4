// expect: 6:9: error: unsupported: 'for' statements
#include <v1model.p4>

control C(inout bit<32> acc) {
    apply {
        for (bit<8> i = 0; i < 4; i = i + 1) {
            acc = acc + 1;
        }
    }
}
