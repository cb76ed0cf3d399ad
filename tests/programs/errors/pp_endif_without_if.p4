// expect: 7:1: error: #endif without #if
#include <v1model.p4>

#ifndef A
const bit<8> A = 1;
#endif
#endif
