// expect: 3:9: error: unsupported: function-like macro
#include <v1model.p4>
#define MASK(w) ((1 << (w)) - 1)

const bit<8> M = MASK(3);
