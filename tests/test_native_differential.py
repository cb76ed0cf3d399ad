"""The native engine against the Python engine: same frames in, same frames, jobs, counters,
registers and digests out.

Each program gets its STF setup (table entries, groups, sessions) in both engines, then seed
frames, mutated ones (bytes flipped, truncated at every length) and random bytes go through
``ingress`` + ``egress`` with varied queue metadata. ``RT.random_source`` and the hash unit's
random state are reseeded identically before each packet in both engines.
"""
from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from fabriclab.v1model import runtime
from fabriclab.compiler.driver import compile_file, compile_source
from fabriclab.v1model.pipeline import QueueMeta
from fabriclab.v1model.pre import CloneSession
from fabriclab.v1model.stf import StfRunner, program_of
from fabriclab.v1model.tables import ActionCall, TableEntry
from fabriclab.v1model.loader import instantiate

ROOT = Path(__file__).resolve().parent.parent
STF_DIR = ROOT / "tests" / "stf"

# fabric.p4: every load-balancing mode gets a group (bench/programs/fabric.stf has ECMP only)
FABRIC_EXTRA = """
add ipv4_route hdr.ipv4.dst_addr:0x0a040000/16 route_to_group(group_id:2)
add ipv4_route hdr.ipv4.dst_addr:0x0a050000/16 route_to_group(group_id:3)
add ipv4_route hdr.ipv4.dst_addr:0x0a060000/16 route_to_group(group_id:4)
add ipv4_route hdr.ipv4.dst_addr:0x0a070000/16 route_to_group(group_id:5)
add ipv4_route hdr.ipv4.dst_addr:0x0a080000/16 route_to_cpu()
add lb_group meta.lb_group:2 lb_spray_random(base:0, size:4)
add lb_group meta.lb_group:3 lb_spray_round_robin(base:0, size:4)
add lb_group meta.lb_group:4 lb_flowlet(base:0, size:4, gap_us:50)
add lb_group meta.lb_group:5 lb_least_loaded(base:0, size:4)
add lb_member_alt meta.lb_alt_index:0 set_alt_member(port:5, dmac:0x020000000105)
add lb_member_alt meta.lb_alt_index:1 set_alt_member(port:6, dmac:0x020000000106)
add lb_member_alt meta.lb_alt_index:2 set_alt_member(port:7, dmac:0x020000000107)
add lb_member_alt meta.lb_alt_index:3 set_alt_member(port:8, dmac:0x020000000108)
add pcp_priority hdr.vlan.pcp:3 set_priority(priority:3)
add acl 20 hdr.ipv4.protocol:6&&&0xff acl_deny()
"""


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(src: int, dst: int, proto: int, payload: bytes, dscp_ecn: int = 0, ttl: int = 64) -> bytes:
    header = struct.pack("!BBHHHBBHII", 0x45, dscp_ecn, 20 + len(payload), 1, 0, ttl, proto, 0, src, dst)
    return header[:10] + struct.pack("!H", _checksum(header)) + header[12:] + payload


def fabric_frames(rng: random.Random) -> list[tuple[int, bytes]]:
    eth = bytes.fromhex("020000000001") + bytes.fromhex("0000000000aa")
    frames = []
    for dst_net in range(1, 10):
        for ecn_dscp in (0, 26 << 2 | 1, 26 << 2 | 2, 48 << 2 | 3):
            sport = rng.randrange(65536)
            udp = struct.pack("!HHHH", sport, 4791, 8 + 12 + 16, 0)
            bth = bytes([0x81 if rng.random() < 0.3 else 0x04]) + bytes(11)
            ip = _ipv4(0x0A000001 + rng.randrange(4), 0x0A000000 | dst_net << 16 | rng.randrange(65536),
                       17, udp + bth + bytes(16), ecn_dscp, ttl=rng.choice((64, 1, 2)))
            frames.append((rng.randrange(1, 9), eth + b"\x08\x00" + ip))
        tcp = struct.pack("!HHIIBBHHH", rng.randrange(65536), 80, 1, 2, 0x50, 0x10, 1000, 0, 0)
        frames.append((1, eth + b"\x08\x00" + _ipv4(0x0A000002, 0x0A000000 | dst_net << 16 | 7, 6, tcp)))
    vlan = struct.pack("!HH", 3 << 13 | 10, 0x0800)
    frames.append((2, eth + b"\x81\x00" + vlan + _ipv4(1, 0x0A010203, 17, struct.pack("!HHHH", 1, 2, 8, 0))))
    # probes: two route entries then one hop record; a link-discovery probe; LLDP; packet-out
    probe = struct.pack("!IBBB", 7, 1, 2, 3 << 5) + bytes([0, 5, 0, 6]) + bytes(18)
    frames.append((3, eth + b"\x88\xb5" + probe))
    frames.append((3, eth + b"\x88\xb5" + struct.pack("!IBBB", 9, 0, 0, 0)))
    frames.append((4, eth + b"\x88\xcc" + bytes(30)))
    frames.append((255, b"\x02\x80" + eth + b"\x08\x00" + _ipv4(1, 2, 17, bytes(8))))
    return frames


def mutations(rng: random.Random, frames: list[tuple[int, bytes]], count: int) -> list[tuple[int, bytes]]:
    out = list(frames)
    for port, frame in frames[:4]:
        out.extend((port, frame[:n]) for n in range(len(frame)))     # truncated at every length
    for _ in range(count):
        port, frame = rng.choice(frames)
        data = bytearray(frame)
        for _ in range(rng.randint(1, 4)):
            if data:
                data[rng.randrange(min(len(data), 64))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data) + 1)]
        out.append((rng.choice((port, rng.randrange(512))), bytes(data)))
    out.extend((rng.randrange(10), rng.randbytes(rng.randrange(80))) for _ in range(count // 4))
    return out


def setup_lines(stf: Path) -> tuple[list[str], list[tuple[int, bytes]]]:
    """The STF file's control-plane statements, and its packets as seed frames."""
    lines, frames = [], []
    for raw in stf.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        verb, _, rest = line.partition(" ")
        if verb.lower() == "packet":
            port, _, data = rest.strip().partition(" ")
            frames.append((int(port, 0), bytes.fromhex("".join(data.split()))))
        elif verb.lower() not in ("expect", "wait", "no_packet") and not verb.lower().startswith("check"):
            lines.append(line)
    return lines, frames


def pipelines(program, lines: list[str], setup=None):
    """The program on both engines with the same control-plane state (``program``: a path or
    a CompiledProgram; ``setup(pipeline)`` adds what STF lines cannot say)."""
    compiled = compile_file(str(program)) if isinstance(program, Path) else program
    assert compiled.native_problem is None, compiled.native_problem
    out = []
    for engine in ("python", "native"):
        p = instantiate(compiled, cpu_port=255, engine=engine)
        assert p.engine.name == engine
        runner = StfRunner(p, compiled.info.name)
        for number, line in enumerate(lines, 1):
            runner.execute(number, line)
        if setup is not None:
            setup(p)
        p.state.hash_unit._random.seed(1)
        out.append(p)
    return out


def run_one(p, port: int, frame: bytes, now_us: int, seed: int, qmeta: QueueMeta):
    """Everything observable about one packet: jobs, then each egress result (or the exception)."""
    runtime.random_source.seed(seed)
    try:
        jobs = p.ingress(frame, port, now_us)
        seen = [("job", j.egress_port, j.priority, j.length, j.instance_type, j.egress_rid, j.ingress_port)
                for j in jobs]
        pending = list(jobs)
        trips = 0
        while pending and trips < 50:
            trips += 1
            result = p.egress(pending.pop(0), qmeta)
            seen.append(("frames", result.frames))
            seen.extend(("job", j.egress_port, j.priority, j.length, j.instance_type, j.egress_rid,
                         j.ingress_port) for j in result.jobs)
            pending.extend(result.jobs)
        return seen
    except Exception as exc:     # both engines must fail alike
        return ("raised", type(exc).__name__)


def state_snapshot(p) -> dict:
    s = p.state
    return {
        "registers": {n: list(r.values) for n, r in s.registers.items()},
        "counters": {n: (list(c.packets), list(c.bytes)) for n, c in s.counters.items()},
        "direct": {n: [(e.match, e.packets, e.bytes) for e in t.entries()] for n, t in s.tables.items()},
        "digests": list(s.digests),
    }


def differential(program, lines: list[str], frames: list[tuple[int, bytes]], seed: int, setup=None) -> int:
    py, nat = pipelines(program, lines, setup)
    rng = random.Random(seed)
    checked = 0
    for i, (port, frame) in enumerate(frames):
        now = 1_000_000 + 37 * i + rng.randrange(100)
        qmeta = QueueMeta(now + 5, now, rng.choice((0, 3, 50, 300, 1 << 20)), rng.randrange(1000),
                          rng.choice((0, 7, 1 << 20)))
        a = run_one(py, port, frame, now, i, qmeta)
        b = run_one(nat, port, frame, now, i, qmeta)
        assert a == b, f"packet {i} on port {port}: {frame.hex()}\npython: {a}\nnative: {b}"
        checked += 1
    assert state_snapshot(py) == state_snapshot(nat)
    return checked


def test_fabric_p4_fuzz_matches_python():
    lines, seeds = setup_lines(ROOT / "bench" / "programs" / "fabric.stf")
    lines += [ln for ln in FABRIC_EXTRA.strip().splitlines()]
    rng = random.Random(42)
    frames = mutations(rng, seeds + fabric_frames(rng), 400)
    assert differential(ROOT / "p4" / "fabric.p4", lines, frames, seed=1) > 600


STF_PROGRAMS = sorted(STF_DIR.glob("*.stf"))


@pytest.mark.parametrize("stf", STF_PROGRAMS, ids=[p.stem for p in STF_PROGRAMS])
def test_stf_programs_fuzz_matches_python(stf):
    program = program_of(stf)
    lines, seeds = setup_lines(stf)
    rng = random.Random(stf.stem)
    frames = mutations(rng, seeds or [(0, rng.randbytes(64))], 150)
    assert differential(program, lines, frames, seed=2) > len(seeds)


def test_table_changes_between_packets_reach_the_native_memo():
    """Entries added, modified, deleted and defaults changed between packets: the memo must
    never answer with a stale entry."""
    lines, seeds = setup_lines(ROOT / "bench" / "programs" / "fabric.stf")
    rng = random.Random(7)
    frames = fabric_frames(rng)
    py, nat = pipelines(ROOT / "p4" / "fabric.p4", lines)
    route = "FabricIngress.ipv4_route"
    for step in range(6):
        for p in (py, nat):
            table = p.state.tables[route]
            if step == 1:
                table.delete(((0x0A000002, 32),))
            elif step == 2:
                table.insert(TableEntry(match=((0x0A000000, 8),), action=ActionCall("FabricIngress.route_to_cpu")))
            elif step == 3:
                table.modify(TableEntry(match=((0x0A000001, 32),),
                                        action=ActionCall("FabricIngress.route_to_port", (9, 0xBB))))
            elif step == 4:
                p.state.tables["FabricIngress.lb_group"].set_default(
                    ActionCall("FabricIngress.lb_ecmp", (1, 2)))
            elif step == 5:
                p.state.reset()
        for i, (port, frame) in enumerate(frames):
            qmeta = QueueMeta(10 + i, 10 + i, 0, 0, 0)
            assert run_one(py, port, frame, 10 + i, i, qmeta) == run_one(nat, port, frame, 10 + i, i, qmeta), \
                f"step {step}, packet {i}"
    assert state_snapshot(py) == state_snapshot(nat)


# Every construct the native engine mirrors, in one program: select masks/ranges/tuples/value sets,
# stacks (next/last/lastIndex/push/pop), verify, advance, lookahead, each hash algorithm,
# random, signed/saturating/shift/division arithmetic, slices, concatenation, casts, functions
# with out parameters, a sub-control with exit, all three match kinds with a direct counter,
# switch on action_run and on values, registers (in and out of range, signed), counters, a
# meter, a header union, clones (I2E, E2E, to a multicast group), resubmit, recirculate, multicast,
# truncate, digest, log_msg, exit and both checksum externs.
SINK_P4 = r"""
#include <core.p4>
#include <v1model.p4>

header eth_t { bit<48> dst; bit<48> src; bit<16> type; }
header a_t { bit<8> op; int<8> s; bit<4> n; bit<4> k; bit<16> x; bit<32> y; bit<16> ck; }
header rec_t { bit<8> v; }
header u1_t { bit<8> p; }
header u2_t { bit<16> q; }
header_union uu_t { u1_t one; u2_t two; }
struct headers_t { eth_t eth; a_t a; uu_t uu; rec_t[4] recs; }
struct pair_t { bit<8> p; bit<8> q; }
struct meta_t {
    @field_list(1) bit<8> keep;
    bit<8> scratch;
    @field_list(1, 2) bit<16> both;
    bit<32> h;
    bool b;
    pair_t pr;
}

void mix(in bit<8> a, inout bit<8> b, out bit<8> c) {
    c = a ^ b;
    b = b + 1;
    if (a > 100) { c = a - b; return; }
    c = c + a;
}

bit<8> twice(in bit<8> v) { return v + v; }

parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    value_set<bit<16>>(4) more_recs;
    state start {
        pkt.extract(hdr.eth);
        transition select(hdr.eth.type) {
            more_recs: parse_recs;
            0x0800 &&& 0xff00: parse_a;
            0x0900 .. 0x09ff: parse_recs;
            0x0a00: skip;
            default: accept;
        }
    }
    state parse_a {
        pkt.extract(hdr.a);
        verify(hdr.a.op != 0xff, error.NoMatch);
        transition select(hdr.a.n, hdr.a.k) {
            (0, _): accept;
            (1 .. 3, 0x4 &&& 0xc): parse_recs;
            (4, _): parse_u1;
            (5, _): parse_u2;
            default: parse_recs;
        }
    }
    state parse_u1 { pkt.extract(hdr.uu.one); transition accept; }
    state parse_u2 { pkt.extract(hdr.uu.two); transition accept; }
    state parse_recs {
        pkt.extract(hdr.recs.next);
        transition select(hdr.recs.last.v) { 0: accept; default: parse_recs; }
    }
    state skip {
        pkt.advance(16);
        transition select(pkt.lookahead<bit<8>>()) { 1: parse_recs; 2: reject; default: accept; }
    }
}

control VC(inout headers_t hdr, inout meta_t meta) {
    apply {
        verify_checksum(hdr.a.isValid() && hdr.a.op == 0x20,
            { hdr.a.op, hdr.a.s, hdr.a.n, hdr.a.k, hdr.a.x, hdr.a.y }, hdr.a.ck, HashAlgorithm.csum16);
    }
}

control Sub(inout a_t a, in bit<8> amount, out bit<8> result) {
    apply {
        a.x = a.x |+| (bit<16>)amount;
        result = a.k ++ a.n;
        if (amount == 77) { exit; }
    }
}

control Ing(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    register<bit<32>>(16) regs;
    register<int<16>>(4) sregs;
    counter(16, CounterType.packets_and_bytes) ctr;
    meter(4, MeterType.packets) mtr;
    direct_counter(CounterType.packets_and_bytes) dctr;
    Sub() sub;
    bit<32> local32;

    action fwd(bit<9> port) { sm.egress_spec = port; }
    action drop() { mark_to_drop(sm); }
    action set_both(bit<16> v, bool flag) { meta.both = v; meta.b = flag; }
    table t_exact {
        key = { hdr.a.op: exact; }
        actions = { fwd; drop; set_both; NoAction; }
        default_action = NoAction();
        counters = dctr;
    }
    table t_tern {
        key = { hdr.a.x: ternary; hdr.a.k: range; meta.b: exact; }
        actions = { fwd; set_both; }
        default_action = fwd(7);
    }
    table t_lpm {
        key = { hdr.a.y: lpm; }
        actions = { fwd; drop; }
        default_action = drop();
    }

    apply {
        sm.egress_spec = 1;
        if (!hdr.a.isValid()) {
            if (hdr.recs[0].isValid()) {
                sm.egress_spec = (bit<9>)hdr.recs[0].v;
                hdr.recs.pop_front(1);
                hdr.recs.push_front(2);
                hdr.recs[1].setValid();
                hdr.recs[1].v = (bit<8>)hdr.recs.lastIndex;
            }
            return;
        }
        ctr.count((bit<32>)hdr.a.op & 31);
        hash(meta.h, HashAlgorithm.crc16, (bit<32>)3, { hdr.a.op, hdr.a.x, hdr.eth.src }, (bit<32>)1000);
        hdr.eth.dst[31:0] = meta.h;
        hash(local32, HashAlgorithm.crc32, (bit<32>)0, { hdr.a.y, hdr.a.s, meta.b }, (bit<32>)0);
        hdr.eth.src[47:16] = local32;
        hash(hdr.a.ck, HashAlgorithm.csum16, (bit<16>)0, { hdr.eth.dst, hdr.a.n }, (bit<32>)0);
        bit<16> x16;
        hash(x16, HashAlgorithm.xor16, (bit<16>)0, { hdr.eth.src, hdr.a.k }, (bit<32>)65535);
        hash(meta.pr.p, HashAlgorithm.identity, (bit<8>)1, { hdr.a.y, hdr.a.x }, (bit<16>)200);
        hash(meta.pr.q, HashAlgorithm.crc32_custom, (bit<8>)0, { hdr.a.op }, (bit<16>)0);
        hash(meta.scratch, HashAlgorithm.random, (bit<8>)0, { hdr.a.op }, (bit<16>)50);
        random(meta.keep, (bit<8>)0, hdr.a.op | 1);
        hdr.a.y = hdr.a.y + (bit<32>)x16 + (bit<32>)meta.pr.p + (bit<32>)meta.pr.q;

        bit<32> old;
        regs.read(old, (bit<32>)hdr.a.k + 10);      // out of range above 15: reads 0
        regs.write((bit<32>)hdr.a.k + 10, old + hdr.a.y);
        int<16> sold;
        sregs.read(sold, (bit<32>)hdr.a.n);
        sregs.write((bit<32>)hdr.a.n, sold - (int<16>)hdr.a.s * 300);
        bit<2> color;
        mtr.execute_meter((bit<32>)hdr.a.n, color);
        hdr.a.ck = hdr.a.ck + (bit<16>)color;

        // arithmetic in every flavour
        int<8> t = hdr.a.s - 3;
        hdr.a.s = t >> 2;
        bit<8> shifted = hdr.a.op << hdr.a.n;
        hdr.a.x = hdr.a.x - (bit<16>)(shifted >> hdr.a.k) + (hdr.a.x / (bit<16>)hdr.a.k) + (hdr.a.x % 7);
        hdr.a.y[7:0] = hdr.a.op |-| 200;
        hdr.a.y[31:28] = ~hdr.a.n;
        int<16> wide = (int<16>)hdr.a.s * -5;
        hdr.a.x = hdr.a.x ^ (bit<16>)wide;
        meta.b = (bool)hdr.a.k[0:0] || hdr.a.s < 0;
        int<8> sat = hdr.a.s |+| 100;
        hdr.a.s = sat |-| (int<8>)hdr.a.k;
        bit<8> c8;
        bit<8> b8 = hdr.a.op;
        mix(hdr.a.k ++ hdr.a.n, b8, c8);
        hdr.a.op = b8 + twice(c8);
        meta.pr.q = meta.pr.q + c8 + b8;
        bit<8> res;
        sub.apply(hdr.a, meta.pr.q, res);
        hdr.eth.type = hdr.eth.type + (bit<16>)res;

        switch (t_exact.apply().action_run) {
            fwd: { hdr.a.k = hdr.a.k + 1; }
            drop: { }
            default: { hdr.a.n = hdr.a.n - 1; }
        }
        if (t_tern.apply().hit) { meta.both = meta.both + 1; }
        if (hdr.a.op[7:6] == 3) { t_lpm.apply(); }
        switch (hdr.a.n) {
            1: { sm.priority = 1; }
            2:
            3: { sm.priority = 3; }
            default: { sm.priority = 7; }
        }
        bit<8> kind = hdr.eth.dst[7:0] & 15;
        if (kind == 2) { clone_preserving_field_list(CloneType.I2E, 5, 1); }
        if (kind == 3 && sm.instance_type == 0) { resubmit_preserving_field_list(2); }
        if (kind == 5) { sm.mcast_grp = 1; }
        if (kind == 6) { truncate(20); }
        if (kind == 7) { digest<pair_t>(1, meta.pr); }
        if (kind == 8) { log_msg("op={} s={}", {hdr.a.op, hdr.a.s}); }
        if (kind == 9) { exit; }
        if (kind == 10) { clone(CloneType.I2E, 6); }
        if (kind == 12) { sm.mcast_grp = 2; clone(CloneType.I2E, 5); }
        if (kind == 15) { random(meta.keep, (bit<8>)200, hdr.a.op); }    // ValueError below 200
        if (kind == 1) { hdr.recs[hdr.a.n].v = 1; }                       // IndexError from 4
        if (hdr.uu.isValid() && hdr.a.y[0:0] == 1) {
            hdr.uu.two.setValid();
            hdr.uu.two.q = hdr.uu.two.q + 1;
        } else if (hdr.uu.two.isValid()) {
            hdr.uu.two.setInvalid();
        }
        hdr.eth.src[7:0] = (bit<4>)sm.instance_type ++ (bit<4>)meta.keep;
    }
}

control Eg(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    register<bit<48>>(4) last_seen;
    apply {
        if (hdr.a.isValid()) {
            hdr.a.y = hdr.a.y + (bit<32>)sm.enq_qdepth + sm.deq_timedelta + (bit<32>)sm.egress_rid;
            last_seen.write((bit<32>)sm.egress_port & 3, sm.egress_global_timestamp);
            bit<8> kind = (hdr.eth.src[15:8] ^ hdr.a.op) & 15;
            if (kind == 4 && sm.instance_type != 4) { recirculate_preserving_field_list(1); }
            if (kind == 11) { clone_preserving_field_list(CloneType.E2E, 5, 2); }
            if (kind == 13) { mark_to_drop(sm); }
            if (kind == 14 && sm.instance_type == 0) { clone(CloneType.E2E, 6); mark_to_drop(sm); }
            hdr.a.ck = hdr.a.ck + (bit<16>)sm.packet_length + meta.both;
            if (sm.instance_type == 2) { hdr.rec_extra_check(); }
        }
    }
}

control CC(inout headers_t hdr, inout meta_t meta) {
    apply {
        update_checksum(hdr.a.isValid() && hdr.a.op[0:0] == 1,
            { hdr.a.op, hdr.a.s, hdr.a.n, hdr.a.k, hdr.a.x, hdr.a.y }, hdr.a.ck, HashAlgorithm.csum16);
        update_checksum_with_payload(hdr.a.isValid() && hdr.a.op[1:1] == 1,
            { hdr.a.op, hdr.a.y }, hdr.a.x, HashAlgorithm.crc16);
    }
}

control Dep(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr); } }

V1Switch(P(), VC(), Ing(), Eg(), CC(), Dep()) main;
""".replace("            if (sm.instance_type == 2) { hdr.rec_extra_check(); }\n", "")


def sink_setup(p) -> None:
    s = p.state
    runtime.value_set(s, "P.more_recs").entries.append((0x0B00, 0xFF00))
    s.pre.insert_multicast_group(1, [(2, 1), (3, 2)])
    s.pre.insert_multicast_group(2, [(5, 7)])
    s.pre.insert_clone_session(CloneSession(5, egress_port=9))
    s.pre.insert_clone_session(CloneSession(6, egress_port=4, mgid=1, truncate_length=30))
    s.hash_unit.set_crc32_parameters(0x1EDC6F41, 0, 0xFFFFFFFF, True, True)
    for i in range(4):
        s.meters["Ing.mtr"].set_rates(i, (0.001 * (i + 1), 2), (0.002 * (i + 1), 3))
    t = s.tables
    for op in range(0, 256, 3):
        action = [ActionCall("Ing.fwd", (op % 8,)), ActionCall("Ing.drop"),
                  ActionCall("Ing.set_both", (op * 7, op & 1))][op % 3]
        t["Ing.t_exact"].insert(TableEntry(match=(op,), action=action))
    t["Ing.t_tern"].insert(TableEntry(match=((0x10, 0xF0), (2, 9), 1), priority=5,
                                      action=ActionCall("Ing.set_both", (5, 1))))
    t["Ing.t_tern"].insert(TableEntry(match=((0, 0), (0, 15), 0), priority=1, action=ActionCall("Ing.fwd", (3,))))
    t["Ing.t_lpm"].insert(TableEntry(match=((0x80000000, 1),), action=ActionCall("Ing.fwd", (6,))))
    t["Ing.t_lpm"].insert(TableEntry(match=((0xC0A80000, 16),), action=ActionCall("Ing.fwd", (8,))))


def sink_frames(rng: random.Random) -> list[tuple[int, bytes]]:
    frames = []
    for i in range(500):
        eth_type = rng.choice((0x0800 | rng.randrange(256), 0x0900 | rng.randrange(256), 0x0A00,
                               0x0B00 | rng.randrange(256), rng.randrange(65536)))
        body = bytearray(rng.randbytes(rng.randrange(40)))
        if body and rng.random() < 0.5:
            body[0] = 0x20                       # op 0x20: the verify_checksum path
        if rng.random() < 0.3:
            body = bytearray(b"\x01\x02\x03\x00") + body          # records that end
        frames.append((rng.randrange(16), rng.randbytes(12) + eth_type.to_bytes(2, "big") + bytes(body)))
    return frames


def test_every_construct_matches_python():
    compiled = compile_source(SINK_P4, "sink")
    frames = sink_frames(random.Random(3))
    assert differential(compiled, [], frames, seed=4, setup=sink_setup) == len(frames)


# Values of 65..128 bits (unsigned and signed __int128 in C): an IPv6-like header routed by
# an LPM table on its 128-bit destination, wide arithmetic, slices, casts, hashes and digests.
WIDE_P4 = r"""
#include <core.p4>
#include <v1model.p4>
header eth_t { bit<48> dst; bit<48> src; bit<16> type; }
header v6_t { bit<8> op; bit<128> src; bit<128> dst; int<72> s; bit<96> x; }
struct headers_t { eth_t eth; v6_t v6; }
struct wide_t { bit<128> a; int<72> b; }
struct meta_t { bit<128> acc; }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.eth);
        transition select(hdr.eth.type) { 0x86dd: v6; default: accept; }
    }
    state v6 {
        transition select(pkt.lookahead<bit<72>>()[7:0]) { 0xff: reject; default: take; }
    }
    state take {
        pkt.extract(hdr.v6);
        transition select(hdr.v6.dst) {
            0xfe800000000000000000000000000000 &&& 0xffff0000000000000000000000000000: accept;
            default: accept;
        }
    }
}
control VC(inout headers_t hdr, inout meta_t meta) { apply { } }
control Ing(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    action to(bit<9> port) { sm.egress_spec = port; }
    action fold(bit<32> k) { hdr.v6.x = hdr.v6.x ^ (bit<96>)k; }
    table route {
        key = { hdr.v6.dst: lpm; }
        actions = { to; fold; NoAction; }
        default_action = to(1);
    }
    table exact2 {
        key = { hdr.v6.src: exact; hdr.v6.op: exact; }
        actions = { fold; NoAction; }
        default_action = NoAction();
    }
    apply {
        if (!hdr.v6.isValid()) { sm.egress_spec = 9; return; }
        route.apply();
        exact2.apply();
        bit<128> d = hdr.v6.dst;
        meta.acc = d + hdr.v6.src * 3 - (d >> hdr.v6.op) + (d << (bit<8>)(hdr.v6.op & 127));
        hdr.v6.s = hdr.v6.s * -7 + (int<72>)hdr.v6.op;
        hdr.v6.s = hdr.v6.s |+| (int<72>)hdr.v6.x[71:0];
        int<72> q = hdr.v6.s >> 3;
        hdr.v6.x = hdr.v6.x |-| (bit<96>)meta.acc;
        hdr.v6.x[95:64] = d[127:96] ^ hdr.v6.src[31:0];
        if (hdr.v6.s < 0 && meta.acc > 0x80000000000000000000000000000000) { hdr.v6.op = hdr.v6.op + 1; }
        hdr.v6.src = hdr.v6.src / (bit<128>)hdr.v6.op + hdr.v6.src % 1000000007;
        hdr.v6.dst = (bit<128>)(hdr.v6.x ++ hdr.v6.op ++ (bit<24>)0) | ~d;
        bit<32> h;
        hash(h, HashAlgorithm.crc32, (bit<32>)0, { hdr.v6.src, hdr.v6.s, meta.acc }, (bit<32>)0);
        hdr.eth.src = (bit<48>)h ++ (bit<48>)0 == 0 ? 48w1 : (bit<48>)(meta.acc[47:0]);
        wide_t w = { meta.acc, q };
        if (hdr.v6.op[1:0] == 2) { digest<wide_t>(1, w); }
        if (hdr.v6.op[1:0] == 3) { log_msg("acc={} q={}", {meta.acc, q}); }
    }
}
control Eg(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control CC(inout headers_t hdr, inout meta_t meta) { apply { } }
control Dep(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr); } }
V1Switch(P(), VC(), Ing(), Eg(), CC(), Dep()) main;
"""


def wide_setup(p) -> None:
    t = p.state.tables
    t["Ing.route"].insert(TableEntry(match=((0xFE80 << 112, 16),), action=ActionCall("Ing.to", (2,))))
    t["Ing.route"].insert(TableEntry(match=((0x20010DB8 << 96, 32),), action=ActionCall("Ing.fold", (0xDEAD,))))
    t["Ing.route"].insert(TableEntry(match=((0x20010DB8 << 96 | 5, 128),), action=ActionCall("Ing.to", (3,))))
    t["Ing.exact2"].insert(TableEntry(match=((1 << 127) | 1, 4), action=ActionCall("Ing.fold", (7,))))


def test_wide_values_match_python():
    rng = random.Random(11)
    prefixes = (0xFE80 << 112, 0x20010DB8 << 96, 0x20010DB8 << 96 | 5, 0, (1 << 128) - 1)
    frames = []
    for _ in range(400):
        src = rng.choice(((1 << 127) | 1, rng.getrandbits(128)))
        dst = rng.choice(prefixes) | rng.getrandbits(rng.choice((0, 8, 96)))
        body = (bytes([rng.choice((4, 255, rng.randrange(256)))]) + src.to_bytes(16, "big")
                + dst.to_bytes(16, "big") + rng.randbytes(9 + 12))
        frame = rng.randbytes(12) + rng.choice((b"\x86\xdd", b"\x08\x00")) + body
        frames.append((1, frame[: rng.choice((len(frame), rng.randrange(len(frame) + 1)))]))
    compiled = compile_source(WIDE_P4, "wide")
    assert differential(compiled, [], frames, seed=12, setup=wide_setup) == len(frames)
