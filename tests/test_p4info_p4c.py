"""P4Info as p4c writes it, checked against P4Info texts p4c publishes (tests/p4c_p4info/): every
action the program uses — in tables or called straight from an apply block — with p4c's ids,
annotations and order, and p4c's P4Info accepted by the switch for the same program.

Each ``tests/p4c_p4info/NAME.p4`` has the control-plane shape (names, types, tables, calls) of
the p4c test program its ``NAME.p4info.txtpb`` was generated from; P4Info depends on nothing
else, so that published text is what p4c writes for it.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from finsy.proto import p4i
from google.protobuf import text_format

from fabriclab.compiler.driver import compile_file
from fabriclab.compiler.p4info import build_p4info
from fabriclab.p4runtime.server import P4InfoIndex

DATA = Path(__file__).parent / "p4c_p4info"
REPO = Path(__file__).parent.parent


def p4c_p4info(name: str):
    msg = text_format.Parse((DATA / f"{name}.p4info.txtpb").read_text(), p4i.P4Info())
    for action in msg.actions:
        # p4c releases since 2024 mark core.p4's declarations @corelib; our core.p4 is our own
        annotations = [a for a in action.preamble.annotations if a != "@corelib"]
        del action.preamble.annotations[:]
        action.preamble.annotations.extend(annotations)
    return msg


@pytest.mark.parametrize("name", ["flowlet", "direct_call"])
def test_p4info_equals_p4cs(name):
    expected = p4c_p4info(name)
    ours = build_p4info(compile_file(str(DATA / f"{name}.p4")).info)
    if not any(t.HasField("initial_default_action") for t in expected.tables):
        for table in ours.tables:    # written by p4c only since 2023
            assert table.initial_default_action.action_id == ours.actions[0].preamble.id   # NoAction
            table.ClearField("initial_default_action")
    assert [a.preamble.name for a in ours.actions] == [a.preamble.name for a in expected.actions]
    assert [t.preamble.name for t in ours.tables] == [t.preamble.name for t in expected.tables]
    assert ours == expected


def test_the_switch_accepts_p4cs_p4info_for_the_same_program():
    info = compile_file(str(DATA / "direct_call.p4")).info
    index = P4InfoIndex.build(p4c_p4info("direct_call"), info)
    assert index.action_ids["ingress.do_action"] == 21566949


@pytest.mark.parametrize("program, called, order", [
    # the ECN tutorial's mark_ecn and fabric.p4's drop are called from apply blocks only or also
    ("tests/programs/ecn.p4", "MyEgress.mark_ecn",
     ["NoAction", "MyIngress.drop", "MyIngress.ipv4_forward", "MyEgress.set_ecn_threshold", "MyEgress.mark_ecn"]),
    ("p4/fabric.p4", "FabricIngress.drop", None),
])
def test_directly_called_actions_are_listed_in_declaration_order(program, called, order):
    info = compile_file(str(REPO / program)).info
    msg = build_p4info(info)
    names = [a.preamble.name for a in msg.actions]
    assert called in names
    if order is not None:
        assert names == order
    else:   # fabric.p4: NoAction (a top-level action) first, then ingress's own, then egress's
        assert names[:2] == ["NoAction", "FabricIngress.drop"] and names[-1] == "FabricEgress.set_ecn_profile"
    # a controller holding a P4Info that lists them is not refused
    P4InfoIndex.build(msg, info)


def test_sub_controls_are_listed_where_they_are_instantiated():
    """p4c inlines sub-controls in place and localizes top-level actions first (as its
    published fabric_20190420 P4Info shows with `nop`); NoAction is the default of t0."""
    info = compile_file(str(REPO / "tests" / "programs" / "p4info_nested.p4")).info
    msg = build_p4info(info)
    assert [a.preamble.name for a in msg.actions] == [
        "nop", "NoAction", "Ingress.own_before", "Ingress.second.b1", "Ingress.first.a1", "Ingress.own_after"]
    assert [t.preamble.name for t in msg.tables] == ["Ingress.second.t2", "Ingress.first.t1", "Ingress.t0"]
