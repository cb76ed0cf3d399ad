// expect: 5:18: error: macro 'MASK' takes 1 argument, got 2
#include <v1model.p4>
#define MASK(w) ((1 << (w)) - 1)

const bit<8> M = MASK(3, 4);
