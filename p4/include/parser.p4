/* fabric.p4 parser:
 *   [packet_out] ethernet [vlan] ( probe route* hop* | ipv4 [tcp | udp [bth]] )
 * L4 headers are parsed only for IPv4 without options and for first fragments, so the
 * ports used by the ACL and the hashes are real ports. */
#ifndef FABRIC_PARSER_P4
#define FABRIC_PARSER_P4

parser FabricParser(packet_in packet,
                    out headers_t hdr,
                    inout metadata_t meta,
                    inout standard_metadata_t standard_metadata) {

    state start {
        transition select(standard_metadata.ingress_port) {
            CPU_PORT: parse_packet_out;
            default: parse_ethernet;
        }
    }

    state parse_packet_out {
        packet.extract(hdr.packet_out);
        transition parse_ethernet;
    }

    state parse_ethernet {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_VLAN: parse_vlan;
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_PROBE: parse_probe;
            default: accept;
        }
    }

    state parse_vlan {
        packet.extract(hdr.vlan);
        transition select(hdr.vlan.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_PROBE: parse_probe;
            default: accept;
        }
    }

    state parse_probe {
        packet.extract(hdr.probe);
        meta.probe_route_todo = hdr.probe.route_left;
        meta.probe_hops_todo = hdr.probe.hop_count;
        transition select(hdr.probe.route_left) {
            0: parse_probe_hops;
            default: parse_probe_route;
        }
    }

    // More entries than the stack holds raise StackOutOfBounds; ingress drops on parser errors.
    state parse_probe_route {
        packet.extract(hdr.probe_route.next);
        meta.probe_route_todo = meta.probe_route_todo - 1;
        transition select(meta.probe_route_todo) {
            0: parse_probe_hops;
            default: parse_probe_route;
        }
    }

    state parse_probe_hops {
        transition select(meta.probe_hops_todo) {
            0: accept;
            default: parse_probe_hop;
        }
    }

    state parse_probe_hop {
        packet.extract(hdr.probe_hops.next);
        meta.probe_hops_todo = meta.probe_hops_todo - 1;
        transition parse_probe_hops;
    }

    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        transition select(hdr.ipv4.ihl, hdr.ipv4.frag_offset, hdr.ipv4.protocol) {
            (5, 0, IP_PROTO_TCP): parse_tcp;
            (5, 0, IP_PROTO_UDP): parse_udp;
            default: accept;
        }
    }

    state parse_tcp {
        packet.extract(hdr.tcp);
        meta.l4_src_port = hdr.tcp.src_port;
        meta.l4_dst_port = hdr.tcp.dst_port;
        transition accept;
    }

    state parse_udp {
        packet.extract(hdr.udp);
        meta.l4_src_port = hdr.udp.src_port;
        meta.l4_dst_port = hdr.udp.dst_port;
        transition select(hdr.udp.dst_port) {
            ROCE_V2_UDP_PORT: parse_bth;
            default: accept;
        }
    }

    state parse_bth {
        packet.extract(hdr.bth);
        transition accept;
    }
}

#endif
