// expect: 6:27: error: unsupported: indexed slices '[e +: w]'
#include <v1model.p4>

control C(inout bit<32> word, in bit<5> lsb, out bit<8> result) {
    apply {
        result = word[lsb +: 8];
    }
}
