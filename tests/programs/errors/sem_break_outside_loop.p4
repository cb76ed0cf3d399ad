// expect: 8:25: error: 'break' outside a loop
#include <v1model.p4>
struct H { }
struct M { }
parser P(packet_in b, out H h, inout M m, inout standard_metadata_t sm) { state start { transition accept; } }
control C(inout H h, inout M m) { apply { } }
control I(inout H h, inout M m, inout standard_metadata_t sm) {
    apply { if (true) { break; } }
}
control D(packet_out b, in H h) { apply { } }
V1Switch(P(), C(), I(), I(), C(), D()) main;
