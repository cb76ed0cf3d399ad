// expect: 4:1: error: unterminated #ifdef
#include <v1model.p4>

#ifdef USE_INT
header int_t { bit<8> hop_count; }
#else
header int_t { bit<16> hop_count; }

struct headers { int_t int_md; }
