// expect: 6:1: error: expected ';', found '}'
#include <v1model.p4>

header vlan_t {
    bit<12> vid
}
