// expect: 4:1: error: unknown preprocessor directive '#incldue'
#include <core.p4>

#incldue <v1model.p4>
