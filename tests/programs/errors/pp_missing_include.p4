// expect: 3:10: error: cannot find include file 'nonexistent_arch.p4'
#include <core.p4>
#include <nonexistent_arch.p4>

header h_t { bit<8> f; }
