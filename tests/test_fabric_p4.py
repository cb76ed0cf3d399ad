"""fabric.p4 on the compiled pipeline: forwarding, classification, ACL, drops, controller
packets and probes. Also home of ``FabricSwitch``, the table-writing helper the other
``test_fabric_p4_*`` modules import."""
from __future__ import annotations

import functools
import struct
from pathlib import Path

from scapy.all import ARP, IP, TCP, UDP, Dot1Q, Ether, Raw, raw
from scapy.contrib.roce import BTH

from fabriclab.v1model.pipeline import QueueMeta
from fabriclab.v1model.tables import ActionCall, TableEntry
from fabriclab.v1model.loader import instantiate

FABRIC_P4 = Path(__file__).resolve().parent.parent / "p4" / "fabric.p4"
CPU_PORT = 255
DROP_REASONS = {"parser_error": 0, "bad_checksum": 1, "not_routable": 2, "acl": 3, "ttl_expired": 4,
                "no_route": 5, "no_member": 6}
ROUTER_MAC = "02:00:00:00:00:01"
HOST_MAC = "00:00:00:00:00:aa"
ECN_SCALE = 1 << 32      # slope: P(mark) per byte above kmin, in units of 2^-32
PROBE_ETHERTYPE = 0x88B5
HOP_RECORD = struct.Struct("!IHHIIHI")   # switch_id, ingress, egress, enq_qdepth, deq_timedelta, ts(48 bits)


@functools.lru_cache(maxsize=1)
def compiled_fabric():
    from fabriclab.compiler.driver import compile_file
    return compile_file(str(FABRIC_P4))


def mac_int(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


def ip_int(addr: str) -> int:
    a, b, c, d = (int(x) for x in addr.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


class FabricSwitch:
    """One fresh instance of fabric.p4 and the writes a controller would make."""

    def __init__(self, switch_id: int = 7, hash_seed: int = 0):
        self.pipeline = instantiate(compiled_fabric())
        self.state = self.pipeline.state
        self.state.tables["FabricIngress.switch_config"].set_default(
            ActionCall("FabricIngress.set_switch_config", (switch_id, mac_int(ROUTER_MAC), hash_seed)))
        self._next_member_index = 0

    def add(self, table: str, match: tuple, action: str, *args: int, priority: int = 0) -> None:
        self.state.tables[table].insert(TableEntry(match=match, priority=priority, action=ActionCall(action, args)))

    def dscp(self, dscp: int, priority: int) -> None:
        self.add("FabricIngress.dscp_priority", (dscp,), "FabricIngress.set_priority", priority)

    def pcp(self, pcp: int, priority: int) -> None:
        self.add("FabricIngress.pcp_priority", (pcp,), "FabricIngress.set_priority", priority)

    def route_to_port(self, prefix: str, plen: int, port: int, dmac: str) -> None:
        self.add("FabricIngress.ipv4_route", ((ip_int(prefix), plen),), "FabricIngress.route_to_port",
                 port, mac_int(dmac))

    def route_to_group(self, prefix: str, plen: int, group: int) -> None:
        self.add("FabricIngress.ipv4_route", ((ip_int(prefix), plen),), "FabricIngress.route_to_group", group)

    def group(self, group: int, mode: str, members: list[tuple[int, str]], gap_us: int | None = None) -> int:
        """Install a group; members (port, dmac) are buckets (repeat one to weight it). Returns base."""
        base = self._next_member_index
        self._next_member_index += len(members)
        for offset, (port, dmac) in enumerate(members):
            self.add("FabricIngress.lb_member", (base + offset,), "FabricIngress.set_member", port, mac_int(dmac))
            self.add("FabricIngress.lb_member_alt", (base + offset,), "FabricIngress.set_alt_member",
                     port, mac_int(dmac))
        args = (base, len(members)) if gap_us is None else (base, len(members), gap_us)
        self.add("FabricIngress.lb_group", (group,), f"FabricIngress.lb_{mode}", *args)
        return base

    def ecn_profile(self, port: int, priority: int, kmin: int, kmax: int, pmax: float) -> None:
        slope = min(ECN_SCALE - 1, int(pmax * ECN_SCALE / (kmax - kmin)))
        self.add("FabricEgress.ecn_profile", (port, priority), "FabricEgress.set_ecn_profile", kmin, kmax, slope)

    def send(self, frame: bytes, port: int = 1, now_us: int = 1_000_000) -> list[tuple[int, bytes]]:
        return self.pipeline.process(frame, port, now_us)

    def send_queued(self, frame: bytes, port: int = 1, now_us: int = 1_000_000, enq_qdepth: int = 0,
                    deq_qdepth: int = 0, deq_timedelta: int = 0) -> list[tuple[int, bytes]]:
        """Ingress, then egress as if the packet found ``enq_qdepth`` packets queued."""
        out = []
        for job in self.pipeline.ingress(frame, port, now_us):
            meta = QueueMeta(now_us + deq_timedelta, now_us, enq_qdepth, deq_timedelta, deq_qdepth)
            out.extend(self.pipeline.egress(job, meta).frames)
        return out

    def priority_of(self, frame: bytes, port: int = 1) -> int:
        jobs = self.pipeline.ingress(frame, port, 1_000_000)
        assert len(jobs) == 1, "expected the frame to be forwarded"
        return jobs[0].priority

    def drops(self, reason: str) -> int:
        return self.state.counters["FabricIngress.ingress_drops"].read(DROP_REASONS[reason])[0]

    def register(self, name: str, index: int) -> int:
        return self.state.registers[name].read(index)


def udp_frame(dst: str = "10.1.0.2", src: str = "10.0.0.1", sport: int = 1000, dport: int = 2000,
              ttl: int = 64, dscp: int = 0, ecn: int = 0, payload: bytes = b"payload") -> bytes:
    return raw(Ether(dst=ROUTER_MAC, src=HOST_MAC)
               / IP(src=src, dst=dst, ttl=ttl, tos=(dscp << 2) | ecn, id=1)
               / UDP(sport=sport, dport=dport) / Raw(payload))


def checksum_ok(frame: bytes) -> bool:
    ip = Ether(frame)[IP]
    fresh = IP(raw(ip))
    del fresh.chksum
    return IP(raw(fresh)).chksum == ip.chksum


def probe_frame(route: list[int], priority: int = 0, probe_id: int = 0x1234, records: bytes = b"",
                hops: int = 0) -> bytes:
    header = struct.pack("!IBBB", probe_id, hops, len(route), priority << 5)
    body = b"".join(struct.pack("!H", port) for port in route)
    return raw(Ether(dst="ff:ff:ff:ff:ff:ff", src=HOST_MAC, type=PROBE_ETHERTYPE)) + header + body + records


def parse_hop(record: bytes) -> dict:
    switch_id, ingress, egress, enq, delta, ts_hi, ts_lo = HOP_RECORD.unpack(record)
    return {"switch_id": switch_id, "ingress_port": ingress, "egress_port": egress, "enq_qdepth": enq,
            "deq_timedelta": delta, "egress_ts": (ts_hi << 32) | ts_lo}


# ---- forwarding ------------------------------------------------------------------------


def test_host_route_rewrites_macs_decrements_ttl_and_fixes_checksum():
    sw = FabricSwitch()
    sw.route_to_port("10.1.0.2", 32, 3, "00:00:00:00:01:02")
    frame = udp_frame(ttl=64, payload=b"hello fabric")
    out = sw.send(frame)
    assert len(out) == 1
    port, data = out[0]
    assert port == 3
    pkt = Ether(data)
    assert pkt.dst == "00:00:00:00:01:02" and pkt.src == ROUTER_MAC
    assert pkt[IP].ttl == 63
    assert checksum_ok(data)
    assert raw(pkt[UDP]) == raw(Ether(frame)[UDP])     # L4 untouched
    assert len(data) == len(frame)


def test_longest_prefix_wins():
    sw = FabricSwitch()
    sw.route_to_port("10.1.0.0", 16, 2, "00:00:00:00:00:02")
    sw.route_to_port("10.1.5.0", 24, 5, "00:00:00:00:00:05")
    assert sw.send(udp_frame(dst="10.1.5.9"))[0][0] == 5
    assert sw.send(udp_frame(dst="10.1.6.9"))[0][0] == 2


def test_ttl_one_or_zero_is_dropped_and_two_goes_out_with_one():
    sw = FabricSwitch()
    sw.route_to_port("10.1.0.0", 16, 2, "00:00:00:00:00:02")
    assert sw.send(udp_frame(ttl=1)) == []
    assert sw.send(udp_frame(ttl=0)) == []
    assert sw.drops("ttl_expired") == 2
    out = sw.send(udp_frame(ttl=2))
    assert Ether(out[0][1])[IP].ttl == 1


def test_unrouted_arp_and_bad_checksum_are_dropped_with_their_reason():
    sw = FabricSwitch()
    sw.route_to_port("10.1.0.0", 16, 2, "00:00:00:00:00:02")
    assert sw.send(udp_frame(dst="192.168.1.1")) == []
    assert sw.drops("no_route") == 1
    arp = raw(Ether(dst="ff:ff:ff:ff:ff:ff", src=HOST_MAC) / ARP(psrc="10.0.0.1", pdst="10.0.0.254"))
    assert sw.send(arp) == []
    assert sw.drops("not_routable") == 1
    bad = bytearray(udp_frame())
    bad[24] ^= 0xFF                      # IPv4 header checksum (bytes 24-25 of the frame)
    assert sw.send(bytes(bad)) == []
    assert sw.drops("bad_checksum") == 1


def test_rx_and_tx_port_counters():
    sw = FabricSwitch()
    sw.route_to_port("10.1.0.0", 16, 2, "00:00:00:00:00:02")
    frame = udp_frame()
    for _ in range(3):
        sw.send(frame, port=4)
    assert sw.state.counters["FabricIngress.port_rx"].read(4) == (3, 3 * len(frame))
    assert sw.state.counters["FabricEgress.port_tx"].read(2) == (3, 3 * len(frame))


# ---- classification --------------------------------------------------------------------


def test_dscp_selects_priority_and_unknown_dscp_stays_lossy():
    sw = FabricSwitch()
    sw.route_to_port("10.1.0.0", 16, 2, "00:00:00:00:00:02")
    sw.dscp(26, 3)
    sw.dscp(48, 6)
    assert sw.priority_of(udp_frame(dscp=26)) == 3
    assert sw.priority_of(udp_frame(dscp=48)) == 6
    assert sw.priority_of(udp_frame(dscp=10)) == 0


def test_vlan_pcp_decides_priority_when_tagged():
    sw = FabricSwitch()
    sw.route_to_port("10.1.0.0", 16, 2, "00:00:00:00:00:02")
    sw.dscp(26, 3)
    sw.pcp(5, 5)
    tagged = raw(Ether(dst=ROUTER_MAC, src=HOST_MAC) / Dot1Q(prio=5, vlan=10)
                 / IP(src="10.0.0.1", dst="10.1.0.2", tos=26 << 2) / UDP(sport=1, dport=2))
    assert sw.priority_of(tagged) == 5
    out = sw.send(tagged)
    assert out[0][0] == 2 and Ether(out[0][1])[Dot1Q].prio == 5


def test_roce_cnp_is_classified_and_counted():
    sw = FabricSwitch()
    sw.route_to_port("10.1.0.0", 16, 2, "00:00:00:00:00:02")
    sw.dscp(48, 6)
    cnp = raw(Ether(dst=ROUTER_MAC, src=HOST_MAC) / IP(src="10.0.0.1", dst="10.1.0.2", tos=48 << 2)
              / UDP(sport=0xC000, dport=4791, chksum=0) / BTH(opcode=0x81, dqpn=5) / Raw(bytes(16)))
    data = raw(Ether(dst=ROUTER_MAC, src=HOST_MAC) / IP(src="10.0.0.1", dst="10.1.0.2", tos=(26 << 2) | 2)
               / UDP(sport=0xC000, dport=4791, chksum=0) / BTH(opcode=0x04, dqpn=5) / Raw(bytes(64)))
    assert sw.priority_of(cnp, port=3) == 6
    sw.send(data, port=3)
    assert sw.state.counters["FabricIngress.cnp_rx"].read(3)[0] == 1
    out = sw.send(cnp, port=3)
    assert Ether(out[0][1])[BTH].opcode == 0x81
    assert sw.state.counters["FabricIngress.cnp_rx"].read(3)[0] == 2


# ---- ACL -------------------------------------------------------------------------------


def test_acl_drops_only_the_matching_flow_and_counts_hits():
    sw = FabricSwitch()
    sw.route_to_port("10.1.0.0", 16, 2, "00:00:00:00:00:02")
    any_ = (0, 0)
    # deny UDP to port 2000 from port 1 only
    match = ((1, 0x1FF), any_, any_, (17, 0xFF), any_, (2000, 0xFFFF))
    sw.add("FabricIngress.acl", match, "FabricIngress.acl_deny", priority=10)
    assert sw.send(udp_frame(dport=2000), port=1) == []
    assert sw.send(udp_frame(dport=2000), port=4) != []
    assert sw.send(udp_frame(dport=2001), port=1) != []
    tcp = raw(Ether(dst=ROUTER_MAC, src=HOST_MAC) / IP(src="10.0.0.1", dst="10.1.0.2") / TCP(dport=2000))
    assert sw.send(tcp, port=1) != []
    assert sw.drops("acl") == 1
    entry = sw.state.tables["FabricIngress.acl"].get(match, 10)
    assert entry.packets == 1


# ---- controller packets, LLDP, probes --------------------------------------------------


def test_packet_out_leaves_on_named_port_without_its_header():
    sw = FabricSwitch()
    inner = udp_frame()
    packet_out = struct.pack("!H", 6 << 7) + inner      # egress_port 6 in the top 9 bits
    out = sw.send(packet_out, port=CPU_PORT)
    assert out == [(6, inner)]                            # no table consulted, frame untouched


def test_lldp_is_punted_with_its_ingress_port():
    sw = FabricSwitch()
    lldp = raw(Ether(dst="01:80:c2:00:00:0e", src=HOST_MAC, type=0x88CC) / Raw(b"\x02\x07\x04" + bytes(6)))
    out = sw.send(lldp, port=9)
    assert len(out) == 1 and out[0][0] == CPU_PORT
    header, frame = out[0][1][:2], out[0][1][2:]
    assert struct.unpack("!H", header)[0] >> 7 == 9
    assert frame == lldp


def test_route_to_cpu_punts():
    sw = FabricSwitch()
    sw.add("FabricIngress.ipv4_route", ((ip_int("10.255.0.1"), 32),), "FabricIngress.route_to_cpu")
    out = sw.send(udp_frame(dst="10.255.0.1"), port=2)
    assert out[0][0] == CPU_PORT and struct.unpack("!H", out[0][1][:2])[0] >> 7 == 2


def test_probe_follows_its_route_and_records_each_hop():
    sw = FabricSwitch(switch_id=0xABCD)
    probe = probe_frame([3, 7], priority=3)
    out = sw.send_queued(probe, port=1, now_us=5000, enq_qdepth=12, deq_timedelta=40)
    assert len(out) == 1 and out[0][0] == 3
    data = out[0][1]
    probe_id, hops, route_left, prio_byte = struct.unpack("!IBBB", data[14:21])
    assert (probe_id, hops, route_left, prio_byte >> 5) == (0x1234, 1, 1, 3)
    assert struct.unpack("!H", data[21:23])[0] == 7          # the next hop's port is now first
    hop = parse_hop(data[23:45])
    assert hop == {"switch_id": 0xABCD, "ingress_port": 1, "egress_port": 3, "enq_qdepth": 12,
                   "deq_timedelta": 40, "egress_ts": 5040}
    assert len(data) == 45

    # the last hop: no route left, so the probe goes to the controller with a second record
    nxt = FabricSwitch(switch_id=0x77)
    out = nxt.send(data[:14] + struct.pack("!IBBB", probe_id, 1, 0, 3 << 5) + data[23:], port=2)
    assert out[0][0] == CPU_PORT
    punted = out[0][1]
    assert struct.unpack("!H", punted[:2])[0] >> 7 == 2       # packet_in.ingress_port
    frame = punted[2:]
    assert frame[18] == 2                                     # hop_count
    newest, oldest = parse_hop(frame[21:43]), parse_hop(frame[43:65])
    assert (newest["switch_id"], newest["ingress_port"], newest["egress_port"]) == (0x77, 2, CPU_PORT)
    assert oldest == hop


def test_probe_priority_selects_its_queue():
    sw = FabricSwitch()
    jobs = sw.pipeline.ingress(probe_frame([4], priority=6), 1, 0)
    assert [(j.egress_port, j.priority) for j in jobs] == [(4, 6)]
