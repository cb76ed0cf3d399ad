"""Malformed frames are handled as the P4 program's parser says and never crash anything:
≥10k random, truncated and mutated frames through fabric.p4's pipeline (with a leaf's entries
installed), and through a running ``fabriclab switch``; afterwards both still forward."""
from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from fabriclab.bench.pipeline import load_setup, setup_path
from fabriclab.compiler.driver import compile_file
from fabriclab.v1model.loader import instantiate

ROOT = Path(__file__).resolve().parent.parent
FRAMES = 12_000


def fuzz_frames(valid: list[bytes], count: int, seed: int = 7) -> list[bytes]:
    """A mix of garbage, truncations of valid frames (cut inside every header) and valid frames
    with random bytes flipped (bad checksums, versions, lengths, stack counts...)."""
    rng = random.Random(seed)
    frames = []
    for i in range(count):
        base = valid[i % len(valid)]
        kind = i % 3
        if kind == 0:
            frames.append(rng.randbytes(rng.randrange(0, 200)))
        elif kind == 1:
            frames.append(base[:rng.randrange(0, len(base))])
        else:
            mutated = bytearray(base)
            for _ in range(rng.randrange(1, 6)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            frames.append(bytes(mutated))
    return frames


def test_fabric_pipeline_survives_fuzzed_frames_and_still_forwards():
    program = ROOT / "p4" / "fabric.p4"
    pipeline = instantiate(compile_file(str(program)))
    valid = load_setup(pipeline, setup_path(program))
    ports = set()
    for n, frame in enumerate(fuzz_frames([v.frame for v in valid], FRAMES)):
        for port, data in pipeline.process(frame, 1 + n % 8, n):
            assert 0 <= port < 512 and isinstance(data, bytes)
            ports.add(port)
    assert ports, "some mutated frames are still valid enough to be routed"
    for item in valid:  # the state is not corrupted: every valid frame still leaves on one port
        assert len(pipeline.process(item.frame, item.port, FRAMES + 1)) == 1


FORWARD_P4 = """
#include <core.p4>
#include <v1model.p4>
header ethernet_t { bit<48> dst; bit<48> src; bit<16> ether_type; }
header ipv4_t { bit<4> version; bit<4> ihl; bit<8> tos; bit<16> len; bit<16> id; bit<3> flags;
                bit<13> frag; bit<8> ttl; bit<8> proto; bit<16> csum; bit<32> src; bit<32> dst; }
struct headers_t { ethernet_t eth; ipv4_t ipv4; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.eth); transition select(hdr.eth.ether_type) { 0x0800: ipv4; default: accept; } }
    state ipv4 { pkt.extract(hdr.ipv4); verify(hdr.ipv4.version == 4, error.ParserInvalidArgument); transition accept; }
}
control V(inout headers_t hdr, inout meta_t meta) {
    apply { verify_checksum(hdr.ipv4.isValid(), { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.tos, hdr.ipv4.len,
        hdr.ipv4.id, hdr.ipv4.flags, hdr.ipv4.frag, hdr.ipv4.ttl, hdr.ipv4.proto, hdr.ipv4.src, hdr.ipv4.dst },
        hdr.ipv4.csum, HashAlgorithm.csum16); }
}
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        if (sm.parser_error != error.NoError || sm.checksum_error == 1) { mark_to_drop(sm); }
        else if (sm.ingress_port == 1) { sm.egress_spec = 2; } else { sm.egress_spec = 1; }
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control C(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.eth); pkt.emit(hdr.ipv4); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""
MARKER = b"\x88\xb5fabriclab-probe"


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.mark.root
def test_running_switch_survives_fuzzed_frames_and_still_forwards(tmp_path):
    tag = uuid.uuid4().hex[:6]
    netns, host_if, switch_if = f"fl{tag}", {i: f"fl{tag}h{i}" for i in (1, 2)}, {i: f"fl{tag}s{i}" for i in (1, 2)}
    program = tmp_path / "forward.p4"
    program.write_text(FORWARD_P4)
    log = tmp_path / "switch.log"
    proc = None
    socks = {}
    try:
        sh("ip", "netns", "add", netns)
        for i in (1, 2):
            sh("ip", "link", "add", host_if[i], "type", "veth", "peer", "name", switch_if[i])
            sh("ip", "link", "set", switch_if[i], "netns", netns)
            sh("ip", "-n", netns, "link", "set", switch_if[i], "up")
            sh("ip", "link", "set", host_if[i], "up")
            socks[i] = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
            socks[i].bind((host_if[i], 0))
        proc = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-m", "fabriclab", "switch",
                                 "--p4", str(program), "-i", f"1@{switch_if[1]}", "-i", f"2@{switch_if[2]}",
                                 "--grpc-addr", "none", "--api-addr", "none"],
                                stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        deadline = time.monotonic() + 60
        while "switch ready" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        valid = [b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
                 b"\x45\x00\x00\x1c\x00\x01\x00\x00\x40\x11\xf9\x7d\x0a\x00\x00\x01\x0a\x00\x00\x02" + bytes(8)]
        for n, frame in enumerate(fuzz_frames(valid, FRAMES)):
            if len(frame) >= 14:  # the kernel refuses shorter frames on a veth
                socks[1].send(frame)
            if n % 500 == 0:
                time.sleep(0.01)  # let the switch keep up: this tests robustness, not overload
        time.sleep(1.0)
        assert proc.poll() is None, f"switch died:\n{log.read_text()[-2000:]}"
        socks[2].settimeout(0.2)
        forwarded = 0
        while True:  # drain what the fuzz run forwarded: frames whose mutations spared the headers
            try:
                forwarded += len(socks[2].recv(2048)) > 0
            except TimeoutError:
                break
        assert 0 < forwarded < FRAMES // 3, forwarded
        probe = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01" + MARKER + bytes(40)
        socks[1].send(probe)
        socks[2].settimeout(2.0)
        received = socks[2].recv(2048)
        while MARKER not in received:
            received = socks[2].recv(2048)
        assert received == probe
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        proc = None
        assert "Traceback" not in log.read_text()
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        for s in socks.values():
            s.close()
        for name in host_if.values():
            subprocess.run(["ip", "link", "del", name], capture_output=True)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)
