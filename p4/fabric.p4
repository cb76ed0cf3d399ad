/* fabric.p4: fabriclab's lossless-fabric switch program (P4_16, v1model).
 *
 * Routes IPv4 over next-hop groups with a per-group load-balancing mode (ECMP, random or
 * round-robin spraying, flowlets, least loaded; weights by bucket replication), classifies
 * traffic into the priority queues PFC pauses, marks ECN with a RED-style profile per
 * (port, priority), keeps queue telemetry for the controller, and carries probes and
 * controller packets. p4/README.md documents every table, register and counter.
 */
#include <core.p4>
#include <v1model.p4>

#include "include/defines.p4"
#include "include/headers.p4"
#include "include/shared_registers.p4"
#include "include/parser.p4"
#include "include/checksums.p4"
#include "include/ingress.p4"
#include "include/egress.p4"
#include "include/deparser.p4"

V1Switch(FabricParser(),
         FabricVerifyChecksum(),
         FabricIngress(),
         FabricEgress(),
         FabricComputeChecksum(),
         FabricDeparser()) main;
