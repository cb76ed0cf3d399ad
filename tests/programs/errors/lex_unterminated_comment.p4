// expect: 6:5: error: unterminated comment
#include <v1model.p4>

header h_t {
    bit<8> a;
    /* the second field
    bit<8> b;
}
