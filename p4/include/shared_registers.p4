/* Registers shared by ingress and egress, so they are declared at top level.
 *
 * port_queue_depth[port * 8 + priority]: the egress queue depth (packets) left behind by
 * the last packet dequeued from that queue (deq_qdepth). Egress writes it; the
 * least-loaded load-balancing mode in ingress reads it to compare candidate ports, as
 * DRILL (Ghorbani et al., SIGCOMM 2017) compares local queue occupancies. Using the depth
 * at dequeue means a queue that drains is seen as empty by its last packet.
 * (p4c emits top-level registers for BMv2 since p4c issues #696/#1097 were fixed.) */
#ifndef FABRIC_SHARED_REGISTERS_P4
#define FABRIC_SHARED_REGISTERS_P4

register<bit<32>>(QUEUE_SLOTS) port_queue_depth;

/* queue_bytes[port * 8 + priority]: bytes queued for that egress queue, what switches mark ECN
 * on (v1model gives queue depths in packets only). Ingress adds each unicast packet's length as
 * it goes to the traffic manager, egress takes it off as it leaves; a packet seen leaving an
 * empty queue (deq_qdepth 0) resets it, so a packet the traffic manager dropped after ingress
 * counted it is forgotten once the queue drains. */
register<bit<32>>(QUEUE_SLOTS) queue_bytes;

#endif
