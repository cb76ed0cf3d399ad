/* fabric.p4 constants: protocol numbers, table and register sizes, drop reasons.
 *
 * Values a deployment may want to change are #define'd behind #ifndef so that
 * `fabriclab compile -D NAME=VALUE` (or p4c -D) can override them.
 */
#ifndef FABRIC_DEFINES_P4
#define FABRIC_DEFINES_P4

#ifndef CPU_PORT_NUMBER
#define CPU_PORT_NUMBER 255
#endif

typedef bit<9>  port_t;
typedef bit<48> mac_addr_t;
typedef bit<32> ipv4_addr_t;

const port_t CPU_PORT = CPU_PORT_NUMBER;

// EtherTypes (IEEE registry). 0x88B5 is "IEEE 802 local experimental EtherType 1".
const bit<16> ETHERTYPE_IPV4  = 0x0800;
const bit<16> ETHERTYPE_VLAN  = 0x8100;
const bit<16> ETHERTYPE_LLDP  = 0x88CC;
const bit<16> ETHERTYPE_PROBE = 0x88B5;

const bit<8> IP_PROTO_TCP = 6;
const bit<8> IP_PROTO_UDP = 17;

// RoCEv2: UDP destination port 4791 (IBTA Annex A17); CNP is BTH opcode 0x81.
const bit<16> ROCE_V2_UDP_PORT = 4791;
const bit<8>  BTH_OPCODE_CNP   = 0x81;

// ECN codepoints (RFC 3168 section 5).
const bit<2> ECN_NOT_ECT = 0;
const bit<2> ECN_CE      = 3;

// Registers indexed by (port, priority) use index port * 8 + priority.
#define NUM_PORTS 512
#define NUM_PRIORITIES 8
#define QUEUE_SLOTS 4096

#define LB_GROUP_TABLE_SIZE 1024
#define LB_MEMBER_TABLE_SIZE 8192
#define ROUTE_TABLE_SIZE 4096
#define ACL_TABLE_SIZE 256
#ifndef FLOWLET_SLOTS
#define FLOWLET_SLOTS 4096
#endif
// Heavy-flow detection (the controller's elephant policy): byte counts per flow slot, and
// the controller's per-flow path overrides.
#ifndef HEAVY_SLOTS
#define HEAVY_SLOTS 4096
#endif
#define FLOW_OVERRIDE_TABLE_SIZE 1024

// ECN marking draws random() in [0, ECN_RANDOM_MAX]: probabilities are scaled by 2^24.
const bit<32> ECN_RANDOM_MAX = 0x00FFFFFF;

// v1model's drop port (mark_to_drop sets egress_spec to it).
const bit<9> V1MODEL_DROP_PORT = 511;

// Queue-depth EWMA gain 1/2^QDEPTH_EWMA_SHIFT; the register holds average * 2^shift.
#define QDEPTH_EWMA_SHIFT 3

// Probe header stacks.
#define PROBE_MAX_ROUTE 8
#define PROBE_MAX_HOPS 8

// Index of the ingress_drops counter for each reason a packet is dropped in ingress.
const bit<32> DROP_PARSER_ERROR  = 0;
const bit<32> DROP_BAD_CHECKSUM  = 1;
const bit<32> DROP_NOT_ROUTABLE  = 2;   // not IPv4 (e.g. ARP: hosts have static ARP), or IPv4 options
const bit<32> DROP_ACL           = 3;
const bit<32> DROP_TTL_EXPIRED   = 4;
const bit<32> DROP_NO_ROUTE      = 5;
const bit<32> DROP_NO_MEMBER     = 6;   // group or member missing, or an empty group
#define NUM_DROP_REASONS 8

#endif
