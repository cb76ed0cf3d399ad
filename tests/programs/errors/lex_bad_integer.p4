// expect: 4:24: error: invalid integer literal '16w0x08G0'
#include <v1model.p4>

const bit<16> TYPE_X = 16w0x08G0;
