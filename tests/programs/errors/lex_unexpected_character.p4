// expect: 6:24: error: unexpected character '$'
#include <v1model.p4>

header ethernet_t {
    bit<48> dstAddr;
    bit<48> srcAddr;   $
    bit<16> etherType;
}
