"""build_p4info/to_text: the P4Info message p4c would write for a program."""
from finsy.proto import p4i
from google.protobuf import text_format

from fabriclab.compiler.p4info import build_p4info, to_text
from fabriclab.compiler.program import (ActionInfo, ActionParam, ActionProfileInfo, ActionRef, ConstEntry,
                                      ControllerHeaderInfo, CounterInfo, DigestInfo, MatchField, MeterInfo,
                                      ProgramInfo, RegisterInfo, TableInfo, ValueSetInfo)

# p4lang/p4c testdata/p4_16_samples_outputs/flowlet_switching-bmv2.p4.p4info.txtpb (abridged to
# three of its six tables; p4c of that vintage did not yet write initial_default_action)
FLOWLET_P4INFO = """
pkg_info { arch: "v1model" }
tables {
  preamble { id: 38446407 name: "ingress.ecmp_group" alias: "ecmp_group" }
  match_fields { id: 1 name: "hdr.ipv4.dstAddr" bitwidth: 32 match_type: LPM }
  action_refs { id: 19344232 } action_refs { id: 20375000 } action_refs { id: 21257015 }
  size: 1024
}
tables {
  preamble { id: 42150575 name: "ingress.flowlet" alias: "flowlet" }
  action_refs { id: 27889477 } action_refs { id: 21257015 }
  size: 1024
}
tables {
  preamble { id: 49367184 name: "egress.send_frame" alias: "send_frame" }
  match_fields { id: 1 name: "standard_metadata.egress_port" bitwidth: 9 match_type: EXACT }
  action_refs { id: 23531945 } action_refs { id: 25850727 } action_refs { id: 21257015 }
  size: 256
}
actions { preamble { id: 21257015 name: "NoAction" alias: "NoAction" annotations: "@noWarn(\\"unused\\")" } }
actions { preamble { id: 19344232 name: "ingress._drop" alias: "ingress._drop" } }
actions {
  preamble { id: 20375000 name: "ingress.set_ecmp_select" alias: "set_ecmp_select" }
  params { id: 1 name: "ecmp_base" bitwidth: 8 }
  params { id: 2 name: "ecmp_count" bitwidth: 8 }
}
actions { preamble { id: 27889477 name: "ingress.lookup_flowlet_map" alias: "lookup_flowlet_map" } }
actions {
  preamble { id: 23531945 name: "egress.rewrite_mac" alias: "rewrite_mac" }
  params { id: 1 name: "smac" bitwidth: 48 }
}
actions { preamble { id: 25850727 name: "egress._drop" alias: "egress._drop" } }
registers {
  preamble { id: 384519412 name: "ingress.flowlet_id" alias: "flowlet_id" }
  type_spec { bitstring { bit { bitwidth: 16 } } }
  size: 8192
}
registers {
  preamble { id: 375147533 name: "ingress.flowlet_lasttime" alias: "flowlet_lasttime" }
  type_spec { bitstring { bit { bitwidth: 32 } } }
  size: 8192
}
type_info { }
"""


def flowlet_info() -> ProgramInfo:
    info = ProgramInfo("flowlet_switching")
    for action in (ActionInfo("NoAction", annotations=['@noWarn("unused")']), ActionInfo("ingress._drop"),
                   ActionInfo("ingress.set_ecmp_select", [ActionParam("ecmp_base", 8), ActionParam("ecmp_count", 8)]),
                   ActionInfo("ingress.lookup_flowlet_map"),
                   ActionInfo("egress.rewrite_mac", [ActionParam("smac", 48)]), ActionInfo("egress._drop")):
        info.actions[action.name] = action
    refs = lambda *names: [ActionRef(n) for n in names]   # noqa: E731
    for table in (TableInfo("ingress.ecmp_group", [MatchField("hdr.ipv4.dstAddr", "lpm", 32)],
                            refs("ingress._drop", "ingress.set_ecmp_select", "NoAction")),
                  TableInfo("ingress.flowlet", [], refs("ingress.lookup_flowlet_map", "NoAction")),
                  TableInfo("egress.send_frame", [MatchField("standard_metadata.egress_port", "exact", 9)],
                            refs("egress.rewrite_mac", "egress._drop", "NoAction"), size=256)):
        info.tables[table.name] = table
    info.registers["ingress.flowlet_id"] = RegisterInfo("ingress.flowlet_id", 16, 8192)
    info.registers["ingress.flowlet_lasttime"] = RegisterInfo("ingress.flowlet_lasttime", 32, 8192)
    return info


def test_flowlet_p4info_equals_p4c_output():
    ours = build_p4info(flowlet_info())
    for table in ours.tables:
        assert table.initial_default_action.action_id == 21257015   # NoAction, as current p4c writes
        table.ClearField("initial_default_action")
    assert ours == text_format.Parse(FLOWLET_P4INFO, p4i.P4Info())


def rich_info() -> ProgramInfo:
    info = ProgramInfo("fabric")
    info.actions["nop"] = ActionInfo("nop")
    info.actions["c.set_fwd"] = ActionInfo("c.set_fwd", [ActionParam("fwd_type", 3), ActionParam("mac", 48)])
    info.actions["c.out"] = ActionInfo("c.out", [ActionParam("port", 9)])
    info.tables["c.classifier"] = TableInfo(
        "c.classifier", [MatchField("ig_port", "exact", 9), MatchField("eth_dst", "ternary", 48)],
        [ActionRef("c.set_fwd"), ActionRef("nop", "DEFAULT_ONLY")], default_action="c.set_fwd",
        default_args=(0, 0x0A0B0C0D0E0F), const_default_action=True, direct_counter="c.classifier_counter",
        direct_meter="c.classifier_meter", idle_timeout=True)
    info.tables["c.hashed"] = TableInfo(
        "c.hashed", [MatchField("next_id", "exact", 32), MatchField("hdr.ipv4.srcAddr", "selector", 32),
                     MatchField("vlan", "exact", 12)],
        [ActionRef("c.out", "TABLE_ONLY"), ActionRef("nop")], default_action="nop", implementation="c.selector")
    info.tables["c.consts"] = TableInfo(
        "c.consts", [MatchField("k", "exact", 8)], [ActionRef("nop")], default_action="nop", is_const_table=True,
        const_entries=[ConstEntry((1,), 0, "nop", ())])
    info.action_profiles["c.selector"] = ActionProfileInfo("c.selector", 1024, with_selector=True,
                                                           selector_algorithm="crc16", selector_bitwidth=16,
                                                           max_group_size=16)
    info.counters["c.classifier_counter"] = CounterInfo("c.classifier_counter", "packets_and_bytes",
                                                        direct_table="c.classifier")
    info.counters["c.ports"] = CounterInfo("c.ports", "bytes", size=511)
    info.meters["c.classifier_meter"] = MeterInfo("c.classifier_meter", "bytes", direct_table="c.classifier")
    info.meters["c.rate"] = MeterInfo("c.rate", "packets", size=64)
    info.registers["c.signed_reg"] = RegisterInfo("c.signed_reg", 16, 4, signed=True)
    info.digests["learn_t"] = DigestInfo("learn_t", [("src_mac", 48), ("port", 9)])
    info.controller_headers["packet_in"] = ControllerHeaderInfo("packet_in", [("ingress_port", 9), ("_pad", 7)])
    info.value_sets["c.pvs"] = ValueSetInfo("c.pvs", 4, [MatchField("ether_type", "exact", 16)])
    info.explicit_ids["c.rate"] = 0x42
    return info


def test_tables_carry_defaults_implementation_and_direct_resources():
    msg = build_p4info(rich_info())
    ids = {x.preamble.name: x.preamble.id for kind in ("tables", "actions", "action_profiles", "counters",
                                                       "direct_counters", "meters", "direct_meters")
           for x in getattr(msg, kind)}
    classifier, hashed, consts = msg.tables
    assert [f.name for f in classifier.match_fields] == ["ig_port", "eth_dst"]
    assert classifier.match_fields[1].match_type == p4i.MatchField.TERNARY
    assert classifier.const_default_action_id == ids["c.set_fwd"]
    args = classifier.initial_default_action.arguments
    assert [(a.param_id, a.value) for a in args] == [(1, b"\x00"), (2, bytes.fromhex("0a0b0c0d0e0f"))]
    assert list(classifier.direct_resource_ids) == [ids["c.classifier_counter"], ids["c.classifier_meter"]]
    assert classifier.idle_timeout_behavior == p4i.Table.NOTIFY_CONTROL
    nop_ref = classifier.action_refs[1]
    assert nop_ref.scope == p4i.ActionRef.DEFAULT_ONLY and list(nop_ref.annotations) == ["@defaultonly"]
    # the selector key is left out but keeps its number, as in p4c
    assert [(f.id, f.name) for f in hashed.match_fields] == [(1, "next_id"), (3, "vlan")]
    assert hashed.implementation_id == ids["c.selector"]
    assert hashed.const_default_action_id == 0 and hashed.action_refs[0].scope == p4i.ActionRef.TABLE_ONLY
    assert list(hashed.action_refs[0].annotations) == ["@tableonly"]
    assert consts.is_const_table and consts.has_initial_entries
    profile = msg.action_profiles[0]
    assert (list(profile.table_ids), profile.with_selector, profile.size, profile.max_group_size) == \
        ([hashed.preamble.id], True, 1024, 16)


def test_externs_digests_and_packet_io():
    msg = build_p4info(rich_info())
    (direct_counter,), (counter,) = msg.direct_counters, msg.counters
    assert direct_counter.spec.unit == p4i.CounterSpec.BOTH and direct_counter.direct_table_id == msg.tables[0].preamble.id
    assert counter.spec.unit == p4i.CounterSpec.BYTES and counter.size == 511 and counter.preamble.id >> 24 == 0x12
    (meter,), (direct_meter,) = msg.meters, msg.direct_meters
    assert meter.preamble.id == (0x14 << 24) | 0x42 and meter.spec.unit == p4i.MeterSpec.PACKETS and meter.size == 64
    assert direct_meter.spec.unit == p4i.MeterSpec.BYTES and direct_meter.preamble.id >> 24 == 0x15
    (register,) = msg.registers
    assert register.type_spec.bitstring.int.bitwidth == 16 and register.size == 4
    (digest,) = msg.digests
    assert digest.preamble.id >> 24 == 0x17 and digest.type_spec.struct.name == "learn_t"
    members = msg.type_info.structs["learn_t"].members
    assert [(m.name, m.type_spec.bitstring.bit.bitwidth) for m in members] == [("src_mac", 48), ("port", 9)]
    (packet_in,) = msg.controller_packet_metadata
    assert packet_in.preamble.name == packet_in.preamble.alias == "packet_in"
    assert list(packet_in.preamble.annotations) == ['@controller_header("packet_in")']
    assert [(m.id, m.name, m.bitwidth) for m in packet_in.metadata] == [(1, "ingress_port", 9), (2, "_pad", 7)]
    (value_set,) = msg.value_sets
    assert value_set.size == 4 and value_set.match[0].match_type == p4i.MatchField.EXACT


def test_text_format_round_trips_and_ids_are_filled_in_place():
    info = rich_info()
    text = to_text(info)
    assert text.startswith("# proto-file: p4/config/v1/p4info.proto\n# proto-message: p4.config.v1.P4Info\n")
    assert text_format.Parse(text, p4i.P4Info()) == build_p4info(rich_info())
    assert info.tables["c.hashed"].id >> 24 == 0x02 and info.actions["nop"].id >> 24 == 0x01
    assert info.tables["c.hashed"].keys[2].id == 3 and info.actions["c.set_fwd"].params[1].id == 2
