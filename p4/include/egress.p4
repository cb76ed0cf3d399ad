/* fabric.p4 egress: queue telemetry, RED-style ECN marking, probe hop records and
 * the packet_in header for frames to the controller. */
#ifndef FABRIC_EGRESS_P4
#define FABRIC_EGRESS_P4

control FabricEgress(inout headers_t hdr,
                     inout metadata_t meta,
                     inout standard_metadata_t standard_metadata) {

    counter(NUM_PORTS, CounterType.packets_and_bytes) port_tx;
    counter(NUM_PORTS, CounterType.packets) ecn_marks;

    // Indexed by port * 8 + priority, in packets (simple_switch's enq_qdepth unit).
    register<bit<32>>(QUEUE_SLOTS) queue_depth_max;    // peak since the controller last wrote 0
    register<bit<32>>(QUEUE_SLOTS) queue_depth_ewma;   // average * 2^QDEPTH_EWMA_SHIFT

    // RED-style marking profile of one (port, priority), as DCQCN deployments configure it
    // (Zhu et al., SIGCOMM 2015), on the queue's byte depth: P(mark) = 0 at depth <= kmin,
    // rising linearly to Pmax at kmax, 1 above kmax. slope = Pmax * 2^32 / (kmax - kmin),
    // precomputed by the controller, so the data plane needs no division.
    action set_ecn_profile(bit<32> kmin, bit<32> kmax, bit<32> slope) {
        meta.ecn_kmin = kmin;
        meta.ecn_kmax = kmax;
        meta.ecn_slope = slope;
    }

    table ecn_profile {
        key = {
            standard_metadata.egress_port: exact;
            meta.priority: exact;
        }
        actions = { set_ecn_profile; NoAction; }
        default_action = NoAction;     // priorities without a profile are never marked
        size = QUEUE_SLOTS;
    }

    apply {
        bit<32> slot = ((bit<32>)standard_metadata.egress_port << 3) + (bit<32>)meta.priority;
        bit<32> depth = (bit<32>)standard_metadata.enq_qdepth;

        // The bytes still queued behind this packet once it leaves: what switches (and the HPCC
        // simulator, at dequeue) mark on. Clones and replicas were never counted in.
        bit<32> qbytes = 0;
        if (standard_metadata.instance_type == 0) {
            bit<32> queued;
            queue_bytes.read(queued, slot);
            if (standard_metadata.deq_qdepth != 0 && queued > standard_metadata.packet_length) {
                qbytes = queued - standard_metadata.packet_length;
            }
            queue_bytes.write(slot, qbytes);
        }

        port_queue_depth.write(slot, (bit<32>)standard_metadata.deq_qdepth);
        bit<32> peak;
        queue_depth_max.read(peak, slot);
        if (depth > peak) {
            queue_depth_max.write(slot, depth);
        }
        bit<32> average;
        queue_depth_ewma.read(average, slot);
        queue_depth_ewma.write(slot, average - (average >> QDEPTH_EWMA_SHIFT) + depth);
        port_tx.count((bit<32>)standard_metadata.egress_port);

        // Only ECN-capable transport is marked: never not-ECT (RFC 3168), nor CE again.
        if (hdr.ipv4.isValid() && hdr.ipv4.ecn != ECN_NOT_ECT && hdr.ipv4.ecn != ECN_CE) {
            if (ecn_profile.apply().hit) {
                bool mark = false;
                if (qbytes > meta.ecn_kmax) {
                    mark = true;
                } else if (qbytes > meta.ecn_kmin) {
                    bit<32> draw;
                    random(draw, (bit<32>)0, ECN_RANDOM_MAX);
                    mark = ((bit<64>)draw << 8) < (bit<64>)(qbytes - meta.ecn_kmin) * (bit<64>)meta.ecn_slope;
                }
                if (mark) {
                    hdr.ipv4.ecn = ECN_CE;
                    ecn_marks.count((bit<32>)standard_metadata.egress_port);
                }
            }
        }

        // Probes: a hop record in front; a full stack keeps its records and stops growing.
        if (hdr.probe.isValid() && hdr.probe.hop_count < PROBE_MAX_HOPS) {
            hdr.probe_hops.push_front(1);
            hdr.probe_hops[0].setValid();
            hdr.probe_hops[0].switch_id = meta.switch_id;
            hdr.probe_hops[0]._pad0 = 0;
            hdr.probe_hops[0].ingress_port = standard_metadata.ingress_port;
            hdr.probe_hops[0]._pad1 = 0;
            hdr.probe_hops[0].egress_port = standard_metadata.egress_port;
            hdr.probe_hops[0].enq_qdepth = depth;
            hdr.probe_hops[0].deq_timedelta = standard_metadata.deq_timedelta;
            hdr.probe_hops[0].egress_ts = standard_metadata.egress_global_timestamp;
            hdr.probe.hop_count = hdr.probe.hop_count + 1;
        }

        if (standard_metadata.egress_port == CPU_PORT) {
            hdr.packet_in.setValid();
            hdr.packet_in.ingress_port = standard_metadata.ingress_port;
            hdr.packet_in._pad = 0;
        }
    }
}

#endif
