// expect: 4:17: error: expected '(' (variables cannot be declared at top level), found ';'
#include <v1model.p4>

bit<32> counter_;
