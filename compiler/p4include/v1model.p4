/* fabriclab's declaration of the v1model architecture (the P4_16 model of simple_switch).
 *
 * Written from the v1model architecture description (p4lang/behavioral-model
 * docs/simple_switch.md, "standard metadata" and "Pseudocode for what happens at the end of
 * ingress and egress processing") and the P4_16 spec. Names, parameter orders and directions
 * match p4c's v1model.p4 at V1MODEL_VERSION 20200408 so existing programs compile unchanged;
 * counters, meters and registers take their index type I as p4c's do; written without it
 * (`register<bit<32>>(N)`, `counter(N, ...)`) the index is bit<32>.
 */
/* The guard is p4c's name: programs test it with #ifdef _V1_MODEL_P4_. */
#ifndef _V1_MODEL_P4_
#define _V1_MODEL_P4_

#include <core.p4>

#ifndef V1MODEL_VERSION
#define V1MODEL_VERSION 20200408
#endif

typedef bit<9>  PortId_t;           /* simple_switch port numbers; 511 drops */
typedef bit<16> MulticastGroup_t;
typedef bit<32> CloneSessionId_t;
typedef bit<8>  ClassOfService_t;
typedef bit<16> PktInstId_t;
typedef bit<16> EgressInstance_t;
typedef bit<32> InstanceType_t;

match_kind {
    range,      /* lo <= key <= hi */
    optional,   /* exact value or wildcard */
    selector    /* inputs of an action_selector's hash */
}

/* Every field simple_switch documents. */
@metadata @name("standard_metadata")
struct standard_metadata_t {
    PortId_t ingress_port;              /* port the packet arrived on */
    PortId_t egress_spec;               /* set in ingress: output port (511 = drop) */
    PortId_t egress_port;               /* in egress: the port the packet leaves on */
    InstanceType_t instance_type;       /* normal, clone, resubmit, recirculate... */
    bit<32> packet_length;              /* bytes, excluding the FCS */
    @alias("queueing_metadata.enq_timestamp") bit<32> enq_timestamp;   /* µs, enqueue time */
    @alias("queueing_metadata.enq_qdepth")    bit<19> enq_qdepth;      /* packets queued at enqueue */
    @alias("queueing_metadata.deq_timedelta") bit<32> deq_timedelta;   /* µs spent queued */
    @alias("queueing_metadata.deq_qdepth")    bit<19> deq_qdepth;      /* packets queued at dequeue */
    @alias("intrinsic_metadata.ingress_global_timestamp") bit<48> ingress_global_timestamp;  /* µs */
    @alias("intrinsic_metadata.egress_global_timestamp")  bit<48> egress_global_timestamp;   /* µs */
    @alias("intrinsic_metadata.mcast_grp")  MulticastGroup_t mcast_grp;    /* set in ingress: multicast group */
    @alias("intrinsic_metadata.egress_rid") EgressInstance_t egress_rid;  /* replication id of a multicast copy */
    bit<1>  checksum_error;             /* 1 if verify_checksum failed */
    error   parser_error;               /* error the parser ended with */
    @alias("intrinsic_metadata.priority") bit<3> priority;   /* egress queue (0..7) */
}

enum CounterType {
    packets,
    bytes,
    packets_and_bytes
}

enum MeterType {
    packets,
    bytes
}

/* An array of counters indexed by the program. */
extern counter<I> {
    counter(bit<32> size, CounterType type);
    /* Count this packet at index (no effect when index >= size). */
    void count(in I index);
}

/* One counter per entry of the table whose `counters` property names it. */
extern direct_counter {
    direct_counter(CounterType type);
    /* Optional: the matched entry is counted whether or not this is called. */
    void count();
}

#define V1MODEL_METER_COLOR_GREEN  0
#define V1MODEL_METER_COLOR_YELLOW 1
#define V1MODEL_METER_COLOR_RED    2

/* An array of two-rate three-colour meters (RFC 2698). */
extern meter<I> {
    meter(bit<32> size, MeterType type);
    /* result: 0 green, 1 yellow, 2 red. */
    void execute_meter<T>(in I index, out T result);
}

/* One meter per entry of the table whose `meters` property names it. */
extern direct_meter<T> {
    direct_meter(MeterType type);
    /* The colour the matched entry's meter gave this packet. */
    void read(out T result);
}

/* An array of size values of type T that survive between packets. */
extern register<T, I> {
    register(bit<32> size);
    @noSideEffects
    void read(out T result, in I index);
    void write(in I index, in T value);
}

/* A table implementation whose entries point at shared action members. */
extern action_profile {
    action_profile(bit<32> size);
}

/* Uniform random value in lo..hi inclusive. */
extern void random<T>(out T result, in T lo, in T hi);

/* Send data (a struct, named in P4Info by its type name) to the control plane. */
extern void digest<T>(in bit<32> receiver, in T data);

enum HashAlgorithm {
    crc32,
    crc32_custom,
    crc16,
    crc16_custom,
    random,
    identity,
    csum16,
    xor16
}

/* Deprecated form: sets egress_spec to the drop port of the implicit standard_metadata. */
@deprecated("Please use mark_to_drop(standard_metadata) instead.")
extern void mark_to_drop();

/* Sets standard_metadata.egress_spec to the drop port (511) and mcast_grp to 0. */
extern void mark_to_drop(inout standard_metadata_t standard_metadata);

/* result = base + (hash(data) % max), or base when max is 0. */
@pure
extern void hash<O, T, D, M>(out O result, in HashAlgorithm algo, in T base, in D data, in M max);

/* An action profile whose group members are chosen by hashing the `selector` keys. */
extern action_selector {
    action_selector(HashAlgorithm algorithm, bit<32> size, bit<32> outputWidth);
}

enum CloneType {
    I2E,    /* ingress to egress */
    E2E     /* egress to egress */
}

/* If condition holds and checksum != algo(data), set standard_metadata.checksum_error. */
extern void verify_checksum<T, O>(in bool condition, in T data, in O checksum, HashAlgorithm algo);

/* If condition holds, checksum = algo(data). */
@pure
extern void update_checksum<T, O>(in bool condition, in T data, inout O checksum, HashAlgorithm algo);

/* As verify_checksum, over data followed by the unparsed payload. */
extern void verify_checksum_with_payload<T, O>(in bool condition, in T data, in O checksum, HashAlgorithm algo);

/* As update_checksum, over data followed by the unparsed payload. */
@noSideEffects
extern void update_checksum_with_payload<T, O>(in bool condition, in T data, inout O checksum, HashAlgorithm algo);

/* Send the packet back to the start of ingress, keeping the user metadata fields
 * annotated @field_list(index). */
extern void resubmit_preserving_field_list(bit<8> index);

/* After the deparser, send the packet back to ingress, keeping the @field_list(index) fields. */
extern void recirculate_preserving_field_list(bit<8> index);

/* Clone the packet to the clone session's port(s) at the end of this pipeline half. */
extern void clone(in CloneType type, in bit<32> session);

/* As clone, keeping the @field_list(index) user metadata fields in the clone. */
extern void clone_preserving_field_list(in CloneType type, in bit<32> session, bit<8> index);

/* Keep at most length bytes of the outgoing packet. */
extern void truncate(in bit<32> length);

/* Abort processing with a log message if check is false. */
extern void assert(in bool check);

/* Tell verification tools to assume check holds; simple_switch treats it like assert. */
extern void assume(in bool check);

/* Log a message; "{}" in msg is replaced by the fields of data in order. */
extern void log_msg(string msg);
extern void log_msg<T>(string msg, in T data);

/* The architecture: six programmable blocks. */
parser Parser<H, M>(packet_in b,
                    out H parsedHdr,
                    inout M meta,
                    inout standard_metadata_t standard_metadata);

control VerifyChecksum<H, M>(inout H hdr,
                             inout M meta);

@pipeline
control Ingress<H, M>(inout H hdr,
                      inout M meta,
                      inout standard_metadata_t standard_metadata);

@pipeline
control Egress<H, M>(inout H hdr,
                     inout M meta,
                     inout standard_metadata_t standard_metadata);

control ComputeChecksum<H, M>(inout H hdr,
                              inout M meta);

@deparser
control Deparser<H>(packet_out b, in H hdr);

package V1Switch<H, M>(Parser<H, M> p,
                       VerifyChecksum<H, M> vr,
                       Ingress<H, M> ig,
                       Egress<H, M> eg,
                       ComputeChecksum<H, M> ck,
                       Deparser<H> dep);

#endif /* _V1_MODEL_P4_ */
