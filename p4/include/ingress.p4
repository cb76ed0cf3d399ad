/* fabric.p4 ingress: controller I/O, sanity drops, probes, QoS classification, ACL,
 * IPv4 routing and next-hop selection by the group's load-balancing mode. */
#ifndef FABRIC_INGRESS_P4
#define FABRIC_INGRESS_P4

// Load-balancing modes; each lb_group action sets one (the control plane picks the action).
const bit<3> LB_MODE_ECMP              = 0;
const bit<3> LB_MODE_SPRAY_RANDOM      = 1;
const bit<3> LB_MODE_SPRAY_ROUND_ROBIN = 2;
const bit<3> LB_MODE_FLOWLET           = 3;
const bit<3> LB_MODE_LEAST_LOADED      = 4;

control FabricIngress(inout headers_t hdr,
                      inout metadata_t meta,
                      inout standard_metadata_t standard_metadata) {

    counter(NUM_PORTS, CounterType.packets_and_bytes) port_rx;
    counter(NUM_DROP_REASONS, CounterType.packets) ingress_drops;
    counter(NUM_PORTS, CounterType.packets) cnp_rx;
    direct_counter(CounterType.packets_and_bytes) acl_counter;

    register<bit<16>>(LB_GROUP_TABLE_SIZE) lb_rr_next;    // round robin: next offset per group
    register<bit<48>>(FLOWLET_SLOTS) flowlet_last_us;      // flowlet: last packet time per flow slot
    register<bit<16>>(FLOWLET_SLOTS) flowlet_offset;       // flowlet: member offset per flow slot
    register<bit<32>>(HEAVY_SLOTS) heavy_bytes;            // heavy flows: bytes per flow slot since the last reset
    direct_counter(CounterType.packets_and_bytes) flow_override_counter;

    action drop(bit<32> reason) {
        mark_to_drop(standard_metadata);
        ingress_drops.count(reason);
    }

    // ---- switch identity (keyless: the controller sets the default action) ----
    action set_switch_config(bit<32> switch_id, mac_addr_t router_mac, bit<16> hash_seed) {
        meta.switch_id = switch_id;
        meta.router_mac = router_mac;
        meta.hash_seed = hash_seed;
    }

    table switch_config {
        actions = { set_switch_config; }
        default_action = set_switch_config(0, 0, 0);
        size = 1;
    }

    // ---- QoS classification: traffic class = queue = standard_metadata.priority ----
    action set_priority(bit<3> priority) {
        standard_metadata.priority = priority;
    }

    table pcp_priority {
        key = { hdr.vlan.pcp: exact; }
        actions = { set_priority; NoAction; }
        default_action = NoAction;     // unlisted classes stay in lossy priority 0
        size = 8;
    }

    table dscp_priority {
        key = { hdr.ipv4.dscp: exact; }
        actions = { set_priority; NoAction; }
        default_action = NoAction;
        size = 64;
    }

    // ---- ACL (failure and attack scenarios) ----
    action acl_deny() {
        meta.acl_denied = true;
        mark_to_drop(standard_metadata);
        ingress_drops.count(DROP_ACL);
    }

    table acl {
        key = {
            standard_metadata.ingress_port: ternary;
            hdr.ipv4.src_addr: ternary;
            hdr.ipv4.dst_addr: ternary;
            hdr.ipv4.protocol: ternary;
            meta.l4_src_port: ternary;
            meta.l4_dst_port: ternary;
        }
        actions = { acl_deny; NoAction; }
        default_action = NoAction;
        counters = acl_counter;
        size = ACL_TABLE_SIZE;
    }

    // ---- IPv4 routing ----
    action route_to_group(bit<16> group_id) {
        meta.use_group = true;
        meta.lb_group = group_id;
    }

    // A directly attached host, or any single next hop: no group needed.
    action route_to_port(port_t port, mac_addr_t dmac) {
        standard_metadata.egress_spec = port;
        hdr.ethernet.dst_addr = dmac;
        meta.routed = true;
    }

    action route_to_cpu() {
        standard_metadata.egress_spec = CPU_PORT;
    }

    action route_miss() {
        mark_to_drop(standard_metadata);
        ingress_drops.count(DROP_NO_ROUTE);
    }

    table ipv4_route {
        key = { hdr.ipv4.dst_addr: lpm; }
        actions = { route_to_group; route_to_port; route_to_cpu; route_miss; }
        default_action = route_miss;
        size = ROUTE_TABLE_SIZE;
    }

    // ---- per-flow overrides: the controller pins a flow (an elephant) to one next hop ----
    action pin_flow(port_t port, mac_addr_t dmac) {
        standard_metadata.egress_spec = port;
        hdr.ethernet.dst_addr = dmac;
        meta.routed = true;
        meta.use_group = false;       // the group's own choice is skipped
    }

    table flow_override {
        key = {
            hdr.ipv4.src_addr: exact;
            hdr.ipv4.dst_addr: exact;
            hdr.ipv4.protocol: exact;
            meta.l4_src_port: exact;
            meta.l4_dst_port: exact;
        }
        actions = { pin_flow; NoAction; }
        default_action = NoAction;
        counters = flow_override_counter;   // the controller releases a pin whose flow went idle
        size = FLOW_OVERRIDE_TABLE_SIZE;
    }

    // ---- heavy-flow detection (keyless: the controller sets the threshold, 0 = off) ----
    action set_heavy_threshold(bit<32> bytes) {
        meta.heavy_threshold = bytes;
    }

    table heavy_config {
        actions = { set_heavy_threshold; }
        default_action = set_heavy_threshold(0);
        size = 1;
    }

    // ---- next-hop groups: members base .. base + size - 1 of lb_member ----
    // Weights are bucket counts: a member listed w times in the range gets w/size of the load.
    action lb_ecmp(bit<16> base, bit<16> size) {
        meta.lb_mode = LB_MODE_ECMP;
        meta.lb_base = base;
        meta.lb_size = size;
    }

    action lb_spray_random(bit<16> base, bit<16> size) {
        meta.lb_mode = LB_MODE_SPRAY_RANDOM;
        meta.lb_base = base;
        meta.lb_size = size;
    }

    action lb_spray_round_robin(bit<16> base, bit<16> size) {
        meta.lb_mode = LB_MODE_SPRAY_ROUND_ROBIN;
        meta.lb_base = base;
        meta.lb_size = size;
    }

    action lb_flowlet(bit<16> base, bit<16> size, bit<32> gap_us) {
        meta.lb_mode = LB_MODE_FLOWLET;
        meta.lb_base = base;
        meta.lb_size = size;
        meta.flowlet_gap_us = gap_us;
    }

    action lb_least_loaded(bit<16> base, bit<16> size) {
        meta.lb_mode = LB_MODE_LEAST_LOADED;
        meta.lb_base = base;
        meta.lb_size = size;
    }

    action lb_group_miss() {
        meta.lb_size = 0;
    }

    table lb_group {
        key = { meta.lb_group: exact; }
        actions = { lb_ecmp; lb_spray_random; lb_spray_round_robin; lb_flowlet;
                    lb_least_loaded; lb_group_miss; }
        default_action = lb_group_miss;
        size = LB_GROUP_TABLE_SIZE;
    }

    action set_member(port_t port, mac_addr_t dmac) {
        standard_metadata.egress_spec = port;
        hdr.ethernet.dst_addr = dmac;
        meta.routed = true;
    }

    action member_miss() {
        mark_to_drop(standard_metadata);
        ingress_drops.count(DROP_NO_MEMBER);
    }

    table lb_member {
        key = { meta.lb_index: exact; }
        actions = { set_member; member_miss; }
        default_action = member_miss;
        size = LB_MEMBER_TABLE_SIZE;
    }

    // The least-loaded mode's second candidate. BMv2 applies a table at most once per
    // packet, so the controller writes every member into this table too (same index).
    action set_alt_member(port_t port, mac_addr_t dmac) {
        meta.lb_alt_port = port;
        meta.lb_alt_dmac = dmac;
    }

    table lb_member_alt {
        key = { meta.lb_alt_index: exact; }
        actions = { set_alt_member; NoAction; }
        default_action = NoAction;
        size = LB_MEMBER_TABLE_SIZE;
    }

    apply {
        port_rx.count((bit<32>)standard_metadata.ingress_port);
        switch_config.apply();

        if (hdr.packet_out.isValid()) {
            // From the controller: out of the port it names, tables skipped.
            standard_metadata.egress_spec = hdr.packet_out.egress_port;
            hdr.packet_out.setInvalid();
            if (hdr.probe.isValid()) {
                standard_metadata.priority = hdr.probe.priority;
            }
        } else if (standard_metadata.parser_error != error.NoError) {
            drop(DROP_PARSER_ERROR);
        } else if (standard_metadata.checksum_error == 1) {
            drop(DROP_BAD_CHECKSUM);
        } else if (hdr.probe.isValid()) {
            standard_metadata.priority = hdr.probe.priority;
            if (hdr.probe.route_left == 0) {
                standard_metadata.egress_spec = CPU_PORT;
            } else {
                standard_metadata.egress_spec = hdr.probe_route[0].port;
                hdr.probe_route.pop_front(1);
                hdr.probe.route_left = hdr.probe.route_left - 1;
            }
        } else if (hdr.ethernet.ether_type == ETHERTYPE_LLDP) {
            standard_metadata.egress_spec = CPU_PORT;    // link discovery by LLDP
        } else if (!hdr.ipv4.isValid() || hdr.ipv4.ihl != 5) {
            // ARP is not forwarded: the controller installs static ARP entries on hosts.
            drop(DROP_NOT_ROUTABLE);
        } else {
            if (hdr.vlan.isValid()) {
                pcp_priority.apply();
            } else {
                dscp_priority.apply();
            }
            if (hdr.bth.isValid() && hdr.bth.opcode == BTH_OPCODE_CNP) {
                cnp_rx.count((bit<32>)standard_metadata.ingress_port);
            }

            acl.apply();
            if (meta.acl_denied) {
                // acl_deny dropped and counted it
            } else if (hdr.ipv4.ttl <= 1) {
                drop(DROP_TTL_EXPIRED);
            } else {
                ipv4_route.apply();
                if (meta.use_group) {
                    flow_override.apply();
                }
            }
        }

        // Heavy flows, counted where a flow's paths fork (it routes to a group): a slot that
        // crosses the threshold is reported once until the controller resets the counts.
        if (meta.use_group) {
            heavy_config.apply();
        }
        if (meta.use_group && meta.heavy_threshold != 0) {
            bit<32> heavy_slot;
            hash(heavy_slot, HashAlgorithm.crc32, (bit<32>)0,
                 { hdr.ipv4.src_addr, hdr.ipv4.dst_addr, hdr.ipv4.protocol,
                   meta.l4_src_port, meta.l4_dst_port },
                 (bit<32>)HEAVY_SLOTS);
            bit<32> seen;
            heavy_bytes.read(seen, heavy_slot);
            bit<32> total = seen + standard_metadata.packet_length;
            heavy_bytes.write(heavy_slot, total);
            if (seen < meta.heavy_threshold && total >= meta.heavy_threshold) {
                meta.heavy.src_addr = hdr.ipv4.src_addr;
                meta.heavy.dst_addr = hdr.ipv4.dst_addr;
                meta.heavy.protocol = hdr.ipv4.protocol;
                meta.heavy.src_port = meta.l4_src_port;
                meta.heavy.dst_port = meta.l4_dst_port;
                meta.heavy.bytes = total;
                digest<heavy_flow_t>(1, meta.heavy);
            }
        }

        // Next-hop group: pick an offset in 0 .. size-1 by the group's mode.
        if (meta.use_group) {
            lb_group.apply();
        }
        if (meta.use_group && meta.lb_size == 0) {
            drop(DROP_NO_MEMBER);
        } else if (meta.use_group) {
            if (meta.lb_mode == LB_MODE_ECMP) {
                // 5-tuple hash; for RoCEv2 the UDP source port carries per-QP entropy.
                // The per-switch seed keeps the tiers from hashing alike (polarisation).
                // CRC-32, not CRC-16: CRC-16/ARC's polynomial has the factor x+1, so its low
                // bits, and hence "mod size", hardly vary with consecutive source ports.
                hash(meta.lb_offset, HashAlgorithm.crc32, (bit<16>)0,
                     { meta.hash_seed, hdr.ipv4.src_addr, hdr.ipv4.dst_addr,
                       hdr.ipv4.protocol, meta.l4_src_port, meta.l4_dst_port },
                     meta.lb_size);
            } else if (meta.lb_mode == LB_MODE_SPRAY_RANDOM) {
                random(meta.lb_offset, (bit<16>)0, meta.lb_size - 1);
            } else if (meta.lb_mode == LB_MODE_SPRAY_ROUND_ROBIN) {
                bit<16> next_offset;
                lb_rr_next.read(next_offset, (bit<32>)meta.lb_group);
                if (next_offset >= meta.lb_size) {
                    next_offset = 0;     // wrapped, or the group shrank
                }
                meta.lb_offset = next_offset;
                lb_rr_next.write((bit<32>)meta.lb_group, next_offset + 1);
            } else if (meta.lb_mode == LB_MODE_FLOWLET) {
                // LetFlow-style (Vanini et al., NSDI 2017): a flowlet, a burst after an idle
                // gap longer than gap_us, takes a random member; the rest of it keeps that one.
                bit<32> slot;
                hash(slot, HashAlgorithm.crc32, (bit<32>)0,
                     { hdr.ipv4.src_addr, hdr.ipv4.dst_addr, hdr.ipv4.protocol,
                       meta.l4_src_port, meta.l4_dst_port },
                     (bit<32>)FLOWLET_SLOTS);
                bit<48> last_us;
                bit<16> offset;
                flowlet_last_us.read(last_us, slot);
                flowlet_offset.read(offset, slot);
                bit<48> now_us = standard_metadata.ingress_global_timestamp;
                if (now_us - last_us > (bit<48>)meta.flowlet_gap_us || offset >= meta.lb_size) {
                    random(offset, (bit<16>)0, meta.lb_size - 1);
                    flowlet_offset.write(slot, offset);
                }
                flowlet_last_us.write(slot, now_us);
                meta.lb_offset = offset;
            } else if (meta.lb_mode == LB_MODE_LEAST_LOADED) {
                // Power of two choices: two distinct random members, compared below.
                random(meta.lb_offset, (bit<16>)0, meta.lb_size - 1);
                meta.lb_alt_offset = meta.lb_offset;
                if (meta.lb_size > 1) {
                    bit<16> step;
                    random(step, (bit<16>)1, meta.lb_size - 1);
                    meta.lb_alt_offset = meta.lb_offset + step;
                    if (meta.lb_alt_offset >= meta.lb_size) {
                        meta.lb_alt_offset = meta.lb_alt_offset - meta.lb_size;
                    }
                }
            }
            meta.lb_index = meta.lb_base + meta.lb_offset;
            lb_member.apply();
        }

        // Least loaded: move to the second candidate if the queue it would join is shorter.
        if (meta.routed && meta.lb_mode == LB_MODE_LEAST_LOADED
                && meta.lb_alt_offset != meta.lb_offset) {
            meta.lb_alt_index = meta.lb_base + meta.lb_alt_offset;
            if (lb_member_alt.apply().hit) {
                bit<32> depth;
                bit<32> alt_depth;
                port_queue_depth.read(depth, ((bit<32>)standard_metadata.egress_spec << 3)
                                             + (bit<32>)standard_metadata.priority);
                port_queue_depth.read(alt_depth, ((bit<32>)meta.lb_alt_port << 3)
                                                 + (bit<32>)standard_metadata.priority);
                if (alt_depth < depth) {
                    standard_metadata.egress_spec = meta.lb_alt_port;
                    hdr.ethernet.dst_addr = meta.lb_alt_dmac;
                }
            }
        }

        if (meta.routed) {
            hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
            hdr.ethernet.src_addr = meta.router_mac;
        }
        meta.priority = standard_metadata.priority;

        // Byte depth of the egress queue this packet joins (see shared_registers.p4).
        if (standard_metadata.egress_spec != V1MODEL_DROP_PORT && standard_metadata.mcast_grp == 0) {
            bit<32> qslot = ((bit<32>)standard_metadata.egress_spec << 3) + (bit<32>)standard_metadata.priority;
            bit<32> queued;
            queue_bytes.read(queued, qslot);
            queue_bytes.write(qslot, queued + standard_metadata.packet_length);
        }
    }
}

#endif
