// expect: 5:1: error: #else without #if
#include <v1model.p4>

const bit<8> A = 1;
#else
const bit<8> B = 2;
#endif
