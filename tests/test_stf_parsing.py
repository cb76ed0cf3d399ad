"""The STF runner's statements, name resolution and packet comparison, against a small
hand-written pipeline (so they are tested independently of the compiler)."""
import pytest

from fabriclab.errors import UserError
from fabriclab.compiler.program import (ActionInfo, ActionParam, ActionRef, CounterInfo, MatchField, ProgramInfo,
                                      RegisterInfo, TableInfo)
from fabriclab.v1model.state import RuntimeState
from fabriclab.v1model.stf import (StfRunner, match_packet, parse_lpm, parse_ternary, resolve_name, run_stf,
                                  run_stf_on)


class RouterPipeline:
    """ACL (ternary on the IPv4 protocol) then LPM on the IPv4 destination, in plain Python."""

    def __init__(self):
        info = ProgramInfo("router")
        for action in (ActionInfo("NoAction"), ActionInfo("MyIngress.drop"),
                       ActionInfo("MyIngress.ipv4_forward", [ActionParam("dstAddr", 48), ActionParam("port", 9)]),
                       ActionInfo("MyIngress.flood", [ActionParam("grp", 16)])):
            info.actions[action.name] = action
        info.tables["MyIngress.acl"] = TableInfo(
            "MyIngress.acl", [MatchField("hdr.ipv4.protocol", "ternary", 8)],
            [ActionRef("MyIngress.drop"), ActionRef("NoAction")])
        info.tables["MyIngress.ipv4_lpm"] = TableInfo(
            "MyIngress.ipv4_lpm", [MatchField("hdr.ipv4.dstAddr", "lpm", 32)],
            [ActionRef("MyIngress.ipv4_forward"), ActionRef("MyIngress.flood"), ActionRef("MyIngress.drop"),
             ActionRef("NoAction")], default_action="MyIngress.drop")
        info.registers["MyIngress.seen"] = RegisterInfo("MyIngress.seen", 32, 4)
        info.counters["MyIngress.rx"] = CounterInfo("MyIngress.rx", "packets_and_bytes", size=4)
        self.info = info
        self.state = RuntimeState(info)

    def process(self, frame: bytes, port: int, now_us: int = 0):
        seen = self.state.registers["MyIngress.seen"]
        seen.dp_write(0, seen.dp_read(0) + 1)
        self.state.counters["MyIngress.rx"].count(port, len(frame))
        acl, lpm = self.state.tables["MyIngress.acl"], self.state.tables["MyIngress.ipv4_lpm"]
        if acl.resolve(acl.lookup((frame[23],))).name == "MyIngress.drop":
            return []
        call = lpm.resolve(lpm.lookup((int.from_bytes(frame[30:34], "big"),)))
        if call.name == "MyIngress.ipv4_forward":
            mac, out_port = call.args
            return [(out_port, mac.to_bytes(6, "big") + frame[6:])]
        if call.name == "MyIngress.flood":
            return [(p, frame) for p, _ in self.state.pre.replicate(call.args[0])]
        return []


def ipv4(dst: str, proto: int = 6) -> str:
    dst_hex = "".join(f"{int(b):02x}" for b in dst.split("."))
    return f"ffffffffffff 000000000001 0800 45000014 0000 0000 40{proto:02x} 0000 0a000001 {dst_hex}"


def run(text: str, tmp_path):
    path = tmp_path / "t.stf"
    path.write_text(text)
    pipeline = RouterPipeline()
    return run_stf_on(pipeline, path), pipeline


def test_a_passing_test(tmp_path):
    result, pipeline = run(f"""
# short names, as p4c's STF files use them
add ipv4_lpm ipv4.dstAddr:0x0a000200/24 ipv4_forward(dstAddr:0x000000000202, port:2)
add MyIngress.ipv4_lpm hdr.ipv4.dstAddr:0x0a0003** ipv4_forward(dstAddr:0x000000000303, port:3)
packet 1 {ipv4("10.0.2.7")}
expect 2 000000000202 000000000001 0800 45 ****************************** 0a000207 $
packet 1 {ipv4("10.0.3.1")}
expect 3 000000000303
wait
packet 1 {ipv4("10.0.9.9")}
""", tmp_path)
    assert result.passed, result.report()
    assert len(result.received[2]) == len(result.received[3]) == 1
    assert pipeline.state.registers["MyIngress.seen"].read(0) == 3
    assert "PASS" in result.report()


def test_wrong_bytes_give_a_per_port_diff(tmp_path):
    result, _ = run(f"""
add ipv4_lpm ipv4.dstAddr:0x0a000200/24 ipv4_forward(dstAddr:0x000000000202, port:2)
packet 1 {ipv4("10.0.2.7")}
expect 2 000000000203
""", tmp_path)
    assert not result.passed
    report = result.report()
    assert "port 2:" in report and "expect on line 4" in report and "byte 5" in report
    assert "expected: 000000000203" in report and "got:      000000000202" in report


def test_missing_extra_and_unexpected_packets_fail(tmp_path):
    result, _ = run(f"""
add ipv4_lpm ipv4.dstAddr:0x0a000200/24 ipv4_forward(dstAddr:0x000000000202, port:2)
expect 2 000000000202
expect 2 000000000202
packet 1 {ipv4("10.0.2.7")}
""", tmp_path)
    assert not result.passed and "expected 2 packet(s), got 1" in result.report()
    result, _ = run(f"""
add ipv4_lpm ipv4.dstAddr:0x0a000200/24 ipv4_forward(dstAddr:0x000000000202, port:2)
packet 1 {ipv4("10.0.2.7")}
""", tmp_path)
    assert not result.passed and "unexpected" in result.report()
    result, _ = run(f"""
add ipv4_lpm ipv4.dstAddr:0x0a000200/24 ipv4_forward(dstAddr:0x000000000202, port:2)
packet 1 {ipv4("10.0.2.7")}
expect 2
""", tmp_path)
    assert result.passed     # 'expect <port>' alone accepts whatever arrives there


def test_exact_length_marker():
    assert match_packet("AABB", False, bytes.fromhex("aabbcc")) is None
    assert "too long" in match_packet("AABB", True, bytes.fromhex("aabbcc"))[0]
    assert "too short" in match_packet("AABBCC", False, bytes.fromhex("aabb"))[0]
    assert match_packet("AAB*CD", False, bytes.fromhex("aab0ce")) == ("first difference at byte 2", 5)
    assert match_packet("A*B*", True, bytes.fromhex("a1b2")) is None


def test_ternary_priorities_setdefault_and_multicast(tmp_path):
    result, pipeline = run(f"""
add acl 10 protocol:0x1* drop()
add acl 20 protocol:0x11 NoAction()
setdefault ipv4_lpm flood(grp:5)
mc_mgrp_create 5
mc_node_create 0 1 2
mc_node_create 7 4
mc_node_associate 5 0
mc_node_associate 5 1
packet 0 {ipv4("10.9.9.9", proto=0x11)}
expect 1 ffffffffffff
expect 2 ffffffffffff
expect 4 ffffffffffff
packet 0 {ipv4("10.9.9.9", proto=0x12)}
register_write seen 1 42
register_read seen 1
""", tmp_path)
    assert result.passed, result.report()
    assert pipeline.state.pre.replicate(5) == [(1, 0), (2, 0), (4, 7)]
    assert "MyIngress.seen[1] = 42" in result.report()
    acl = pipeline.state.tables["MyIngress.acl"]
    assert sorted(e.priority for e in acl.entries()) == [11, 21]   # STF prio + 1, larger wins


@pytest.mark.parametrize("line, message", [
    ("add nosuch k:1 drop()", "no table 'nosuch'"),
    ("add ipv4_lpm ipv4.dstAddr:0x0a000000/8 nosuch()", "no action 'nosuch'"),
    ("add ipv4_lpm ipv4.dstAddr:0x0a000000/8 ipv4_forward(port:1)", "missing ['dstAddr']"),
    ("add ipv4_lpm ipv4.srcAddr:1 drop()", "no key 'ipv4.srcAddr'"),
    ("add ipv4_lpm ipv4.dstAddr:0x0a000000/8 ipv4_forward(dstAddr:1, port:600)", "INVALID_ARGUMENT"),
    ("frobnicate 1", "unknown STF command"),
    ("packet 0 abc", "bad packet data"),
])
def test_bad_statements_name_the_line(tmp_path, line, message):
    with pytest.raises(UserError) as err:
        run(f"# a comment\n{line}\n", tmp_path)
    assert "t.stf:2:" in str(err.value) and message in str(err.value)


def test_value_syntaxes():
    assert parse_ternary("0x****0101", 32) == (0x0101, 0x0000FFFF)
    assert parse_ternary("0x0a&&&0xf0", 8) == (0x00, 0xF0)
    assert parse_ternary("0b1*", 2) == (0b10, 0b10)
    assert parse_ternary("17", 8) == (17, 0xFF)
    assert parse_lpm("0x0a0b****", 32) == (0x0A0B0000, 16)
    assert parse_lpm("0x0a0b0c0d/16", 32) == (0x0A0B0000, 16)   # bits past the prefix dropped, as the CLI
    with pytest.raises(UserError):
        parse_lpm("0x0a/40", 32)


def test_name_resolution_by_suffix():
    names = ["ingress.t", "egress.t", "ingress.only"]
    assert resolve_name("table", "only", names) == "ingress.only"
    assert resolve_name("table", "egress.t", names) == "egress.t"
    with pytest.raises(UserError, match="ambiguous"):
        resolve_name("table", "t", names)


def test_runner_drives_any_pipeline_object_directly():
    runner = StfRunner(RouterPipeline())
    runner.run_text("add ipv4_lpm ipv4.dstAddr:0/0 ipv4_forward(dstAddr:1, port:7)\n"
                    f"packet 3 {ipv4('1.2.3.4')}\nexpect 7 000000000001\n")
    assert runner.result().passed and runner.now_us > 0


def test_run_stf_wants_an_existing_program(tmp_path):
    stf = tmp_path / "x.stf"
    stf.write_text("# program: missing.p4\npacket 0 00\n")
    with pytest.raises(UserError, match="no such program"):
        run_stf(None, stf)
    stf.write_text("packet 0 00\n")
    with pytest.raises(UserError, match="program: PATH"):
        run_stf(None, stf)


def test_check_counter(tmp_path):
    text = f"packet 1 {ipv4('10.0.0.1')}\npacket 1 {ipv4('10.0.0.2')}\n"
    result, _ = run(text + "check_counter rx(1) packets == 2\ncheck_counter rx(1) bytes > 60\n"
                           "check_counter MyIngress.rx(0) packets == 0\n", tmp_path)
    assert result.passed, result.report()
    result, _ = run(text + "check_counter rx(1) packets == 3\n", tmp_path)
    assert not result.passed
    assert "check_counter on line 3: MyIngress.rx[1] packets is 2, expected == 3" in result.report()
