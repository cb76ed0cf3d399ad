/* fabric.p4 headers and metadata. */
#ifndef FABRIC_HEADERS_P4
#define FABRIC_HEADERS_P4

// Controller headers (P4Runtime PacketIn/PacketOut metadata), padded to whole bytes.
@controller_header("packet_in")
header packet_in_t {
    port_t  ingress_port;   // where the punted frame entered the switch
    bit<7>  _pad;
}

@controller_header("packet_out")
header packet_out_t {
    port_t  egress_port;    // the frame leaves on this port, bypassing the pipeline's tables
    bit<7>  _pad;
}

header ethernet_t {
    mac_addr_t dst_addr;
    mac_addr_t src_addr;
    bit<16>    ether_type;
}

// IEEE 802.1Q tag: PCP is the 802.1p priority PFC pauses by.
header vlan_t {
    bit<3>  pcp;
    bit<1>  dei;
    bit<12> vid;
    bit<16> ether_type;
}

// RFC 791, with the ToS byte split into DSCP and ECN (RFC 2474, RFC 3168).
header ipv4_t {
    bit<4>      version;
    bit<4>      ihl;
    bit<6>      dscp;
    bit<2>      ecn;
    bit<16>     total_len;
    bit<16>     identification;
    bit<3>      flags;
    bit<13>     frag_offset;
    bit<8>      ttl;
    bit<8>      protocol;
    bit<16>     hdr_checksum;
    ipv4_addr_t src_addr;
    ipv4_addr_t dst_addr;
}

header udp_t {
    bit<16> src_port;
    bit<16> dst_port;
    bit<16> length;
    bit<16> checksum;
}

header tcp_t {
    bit<16> src_port;
    bit<16> dst_port;
    bit<32> seq_no;
    bit<32> ack_no;
    bit<4>  data_offset;
    bit<4>  res;
    bit<8>  flags;
    bit<16> window;
    bit<16> checksum;
    bit<16> urgent_ptr;
}

// InfiniBand Base Transport Header (IBTA Vol. 1 section 9.2), carried by RoCEv2 after UDP 4791.
header bth_t {
    bit<8>  opcode;            // 0x81 = CNP (RoCEv2 congestion notification)
    bit<1>  solicited_event;
    bit<1>  mig_req;
    bit<2>  pad_count;
    bit<4>  transport_version;
    bit<16> pkey;
    bit<8>  resv8a;            // FECN/BECN in InfiniBand; reserved in RoCEv2
    bit<24> dest_qp;
    bit<1>  ack_req;
    bit<7>  resv7;
    bit<24> psn;
}

/* fabriclab path probe (EtherType 0x88B5), source routed:
 *   ethernet / probe_t / probe_route_t x route_left / probe_hop_t x hop_count / payload
 * Each switch takes the first route entry as its egress port and pops it; with no route
 * left it punts the probe to the controller. Every egress pushes a hop record in front,
 * so records are newest first. A probe with route_left 0 sent by PacketOut is a
 * one-hop link-discovery probe: the neighbour punts it with its ingress port. */
header probe_t {
    bit<32> probe_id;     // chosen by the sender, carried unchanged
    bit<8>  hop_count;    // hop records that follow the route entries
    bit<8>  route_left;   // route entries that follow this header
    bit<3>  priority;     // queue the probe travels in, so it samples that traffic class
    bit<5>  _pad;
}

header probe_route_t {
    bit<7>  _pad;
    port_t  port;
}

header probe_hop_t {
    bit<32> switch_id;
    bit<7>  _pad0;
    port_t  ingress_port;
    bit<7>  _pad1;
    port_t  egress_port;
    bit<32> enq_qdepth;     // packets in the egress queue when the probe was enqueued
    bit<32> deq_timedelta;  // µs the probe waited in that queue
    bit<48> egress_ts;      // µs, egress_global_timestamp
}

struct headers_t {
    packet_out_t  packet_out;
    packet_in_t   packet_in;
    ethernet_t    ethernet;
    vlan_t        vlan;
    probe_t       probe;
    probe_route_t[PROBE_MAX_ROUTE] probe_route;
    probe_hop_t[PROBE_MAX_HOPS]    probe_hops;
    ipv4_t        ipv4;
    tcp_t         tcp;
    udp_t         udp;
    bth_t         bth;
}

// Digest to the controller: a flow crossed the heavy-flow threshold (bytes since the last reset).
struct heavy_flow_t {
    ipv4_addr_t src_addr;
    ipv4_addr_t dst_addr;
    bit<8>      protocol;
    bit<16>     src_port;
    bit<16>     dst_port;
    bit<32>     bytes;
}

struct metadata_t {
    // parser scratch: entries of the probe stacks still to extract
    bit<8>      probe_route_todo;
    bit<8>      probe_hops_todo;
    // L4 ports of TCP or UDP (0 otherwise): ACL keys and hash inputs
    bit<16>     l4_src_port;
    bit<16>     l4_dst_port;
    // switch_config
    bit<32>     switch_id;
    mac_addr_t  router_mac;
    bit<16>     hash_seed;
    bool        acl_denied;
    // load balancing
    bool        use_group;    // the route names a next-hop group
    bit<16>     lb_group;
    bit<3>      lb_mode;
    bit<16>     lb_base;
    bit<16>     lb_size;
    bit<32>     flowlet_gap_us;
    bit<16>     lb_offset;
    bit<16>     lb_index;
    bit<16>     lb_alt_offset;
    bit<16>     lb_alt_index;
    port_t      lb_alt_port;
    mac_addr_t  lb_alt_dmac;
    bool        routed;       // a next hop was chosen: decrement TTL, rewrite source MAC
    // heavy-flow detection (heavy_config; 0 = off)
    bit<32>     heavy_threshold;
    heavy_flow_t heavy;
    // the traffic class chosen in ingress, for the egress tables and registers
    bit<3>      priority;
    // egress: ECN profile of (egress port, priority)
    bit<32>     ecn_kmin;
    bit<32>     ecn_kmax;
    bit<32>     ecn_slope;
}

#endif
