/* fabric.p4 deparser: emit() skips invalid headers, so one fixed order covers every
 * packet kind. packet_out is never emitted (ingress removes it); packet_in only on
 * frames to the CPU port. */
#ifndef FABRIC_DEPARSER_P4
#define FABRIC_DEPARSER_P4

control FabricDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.packet_in);
        packet.emit(hdr.ethernet);
        packet.emit(hdr.vlan);
        packet.emit(hdr.probe);
        packet.emit(hdr.probe_route);
        packet.emit(hdr.probe_hops);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.tcp);
        packet.emit(hdr.udp);
        packet.emit(hdr.bth);
    }
}

#endif
