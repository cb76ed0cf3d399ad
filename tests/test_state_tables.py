"""Tables, entries, action profiles and selectors: P4Runtime semantics and error codes."""
from collections import Counter as Tally

import pytest
from hypothesis import given, settings, strategies as st

from fabriclab.compiler.program import (ActionInfo, ActionParam, ActionProfileInfo, ActionRef, ConstEntry,
                                      MatchField, ProgramInfo, TableInfo)
from fabriclab.v1model.state import RuntimeState
from fabriclab.v1model.tables import ActionCall, StateError, TableEntry


def actions():
    return {
        "NoAction": ActionInfo("NoAction"),
        "fwd": ActionInfo("fwd", [ActionParam("port", 9)]),
        "drop": ActionInfo("drop"),
        "punt": ActionInfo("punt"),
    }


def make_table(keys, size=1024, refs=None, **kwargs):
    info = ProgramInfo("t", actions=actions())
    refs = refs or [ActionRef("fwd"), ActionRef("drop"), ActionRef("NoAction")]
    info.tables["t"] = TableInfo("t", keys, refs, size=size, **kwargs)
    return RuntimeState(info).tables["t"]


def fwd(port):
    return ActionCall("fwd", (port,))


def code_of(call):
    with pytest.raises(StateError) as err:
        call()
    return err.value.code


def test_exact_table_hits_and_misses():
    t = make_table([MatchField("dst", "exact", 48), MatchField("vid", "exact", 12)])
    t.insert(TableEntry((0xAABBCCDDEEFF, 10), action=fwd(1)))
    assert t.lookup((0xAABBCCDDEEFF, 10)).action == fwd(1)
    assert t.lookup((0xAABBCCDDEEFF, 11)) is None
    assert t.resolve(t.lookup((0, 0))) == ActionCall("NoAction")


def test_lpm_prefers_the_longest_prefix():
    t = make_table([MatchField("hdr.ipv4.dstAddr", "lpm", 32)])
    t.insert(TableEntry(((0, 0),), action=fwd(9)))
    t.insert(TableEntry(((0x0A000000, 8),), action=fwd(1)))
    t.insert(TableEntry(((0x0A010000, 16),), action=fwd(2)))
    t.insert(TableEntry(((0x0A010203, 32),), action=fwd(3)))
    assert t.lookup((0x0A010203,)).action == fwd(3)
    assert t.lookup((0x0A010204,)).action == fwd(2)
    assert t.lookup((0x0A020000,)).action == fwd(1)
    assert t.lookup((0x0B000000,)).action == fwd(9)
    t.delete(((0x0A010000, 16),))
    assert t.lookup((0x0A010204,)).action == fwd(1)


def test_lpm_with_an_exact_key():
    t = make_table([MatchField("vrf", "exact", 8), MatchField("dst", "lpm", 32)])
    t.insert(TableEntry((1, (0x0A000000, 8)), action=fwd(1)))
    t.insert(TableEntry((2, (0x0A000000, 24)), action=fwd(2)))
    assert t.lookup((1, 0x0A000005)).action == fwd(1)
    assert t.lookup((2, 0x0A000005)).action == fwd(2)
    assert t.lookup((2, 0x0A000105)) is None


def test_ternary_higher_priority_wins():
    t = make_table([MatchField("t", "ternary", 16)])
    t.insert(TableEntry(((0x1100, 0xFF00),), priority=10, action=fwd(1)))
    t.insert(TableEntry(((0x1111, 0xFFFF),), priority=20, action=fwd(2)))
    t.insert(TableEntry(((0, 0),), priority=1, action=fwd(3)))
    assert t.lookup((0x1111,)).action == fwd(2)
    assert t.lookup((0x1122,)).action == fwd(1)
    assert t.lookup((0x2222,)).action == fwd(3)
    # same match, other priority: a different entry (P4Runtime keys entries by match+priority)
    t.insert(TableEntry(((0x1100, 0xFF00),), priority=30, action=fwd(4)))
    assert t.lookup((0x1111,)).action == fwd(4)


def test_range_and_optional_keys():
    t = make_table([MatchField("port", "range", 16), MatchField("proto", "optional", 8)])
    t.insert(TableEntry(((1000, 2000), 6), priority=5, action=fwd(1)))
    t.insert(TableEntry(((0, 0xFFFF), None), priority=1, action=fwd(2)))
    assert t.lookup((1500, 6)).action == fwd(1)
    assert t.lookup((1500, 17)).action == fwd(2)
    assert t.lookup((2001, 6)).action == fwd(2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(1, 50)), max_size=12),
       st.integers(0, 255))
def test_ternary_lookup_equals_a_brute_force_scan(rules, key):
    t = make_table([MatchField("k", "ternary", 8)])
    installed = []
    for value, mask, prio in rules:
        entry = TableEntry(((value & mask, mask),), priority=prio, action=fwd(len(installed)))
        try:
            t.insert(entry)
        except StateError:
            continue   # duplicate match+priority
        installed.append(entry)
    matching = [e for e in installed if key & e.match[0][1] == e.match[0][0]]
    best = max((e.priority for e in matching), default=None)
    hit = t.lookup((key,))
    if best is None:
        assert hit is None
    else:
        assert hit.priority == best and hit in matching


def test_error_codes():
    t = make_table([MatchField("k", "exact", 8)], size=2)
    t.insert(TableEntry((1,), action=fwd(1)))
    assert code_of(lambda: t.insert(TableEntry((1,), action=fwd(2)))) == "ALREADY_EXISTS"
    assert code_of(lambda: t.modify(TableEntry((7,), action=fwd(2)))) == "NOT_FOUND"
    assert code_of(lambda: t.delete((7,))) == "NOT_FOUND"
    assert code_of(lambda: t.insert(TableEntry((256,), action=fwd(1)))) == "INVALID_ARGUMENT"   # > bit<8>
    assert code_of(lambda: t.insert(TableEntry((2,), action=fwd(512)))) == "INVALID_ARGUMENT"  # > bit<9>
    assert code_of(lambda: t.insert(TableEntry((2,), action=ActionCall("punt")))) == "INVALID_ARGUMENT"
    assert code_of(lambda: t.insert(TableEntry((2,), priority=3, action=fwd(1)))) == "INVALID_ARGUMENT"
    t.insert(TableEntry((2,), action=fwd(1)))
    assert code_of(lambda: t.insert(TableEntry((3,), action=fwd(1)))) == "RESOURCE_EXHAUSTED"
    assert t.get((7,)) is None


def test_match_values_outside_mask_or_prefix_are_rejected():
    tern = make_table([MatchField("k", "ternary", 8)])
    assert code_of(lambda: tern.insert(TableEntry(((0x11, 0xF0),), priority=1, action=fwd(1)))) == \
        "INVALID_ARGUMENT"
    assert code_of(lambda: tern.insert(TableEntry(((0x10, 0xF0),), priority=0, action=fwd(1)))) == \
        "INVALID_ARGUMENT"   # ternary entries need a priority
    lpm = make_table([MatchField("k", "lpm", 32)])
    assert code_of(lambda: lpm.insert(TableEntry(((0x0A000001, 24),), action=fwd(1)))) == "INVALID_ARGUMENT"
    assert code_of(lambda: lpm.insert(TableEntry(((0, 33),), action=fwd(1)))) == "INVALID_ARGUMENT"
    rng = make_table([MatchField("k", "range", 8)])
    assert code_of(lambda: rng.insert(TableEntry(((9, 3),), priority=1, action=fwd(1)))) == "INVALID_ARGUMENT"


def test_modify_changes_the_action_and_keeps_counters():
    t = make_table([MatchField("k", "exact", 8)])
    t.insert(TableEntry((5,), action=fwd(1)))
    hit = t.lookup((5,))
    hit.packets, hit.bytes = 3, 300
    t.modify(TableEntry((5,), action=ActionCall("drop")))
    assert t.lookup((5,)).action == ActionCall("drop")
    assert (t.get((5,)).packets, t.get((5,)).bytes) == (3, 300)


def test_default_actions_scopes_and_const_defaults():
    t = make_table([MatchField("k", "exact", 8)],
                   refs=[ActionRef("fwd", "TABLE_ONLY"), ActionRef("drop", "DEFAULT_ONLY"), ActionRef("NoAction")])
    assert code_of(lambda: t.insert(TableEntry((1,), action=ActionCall("drop")))) == "INVALID_ARGUMENT"
    assert code_of(lambda: t.set_default(fwd(1))) == "INVALID_ARGUMENT"
    t.set_default(ActionCall("drop"))
    assert t.resolve(None) == ActionCall("drop")
    t.reset_default()
    assert t.default == ActionCall("NoAction")
    const = make_table([MatchField("k", "exact", 8)], default_action="drop", const_default_action=True)
    assert code_of(lambda: const.set_default(ActionCall("NoAction"))) == "PERMISSION_DENIED"
    assert const.default == ActionCall("drop")


def test_const_entries_are_installed_read_only_and_survive_reset():
    state_info = ProgramInfo("p", actions=actions())
    state_info.tables["t"] = TableInfo(
        "t", [MatchField("k", "ternary", 8)], [ActionRef("fwd"), ActionRef("NoAction")],
        const_entries=[ConstEntry(((0x10, 0xF0),), 2, "fwd", (1,)), ConstEntry(((0, 0),), 1, "fwd", (2,))],
        is_const_table=True)
    state = RuntimeState(state_info)
    t = state.tables["t"]
    assert t.lookup((0x15,)).action == fwd(1)
    assert t.lookup((0x25,)).action == fwd(2)
    assert code_of(lambda: t.insert(TableEntry(((1, 0xFF),), priority=3, action=fwd(3)))) == "PERMISSION_DENIED"
    assert code_of(lambda: t.delete(((0, 0),), 1)) == "PERMISSION_DENIED"
    state.reset()
    assert len(t.entries()) == 2


def selector_state(max_group_size=0):
    info = ProgramInfo("p", actions=actions())
    info.action_profiles["sel"] = ActionProfileInfo("sel", size=8, with_selector=True, selector_algorithm="crc16",
                                                    selector_bitwidth=16, max_group_size=max_group_size)
    info.tables["ecmp"] = TableInfo("ecmp", [MatchField("nh", "exact", 16), MatchField("hdr.ipv4.srcAddr", "selector", 32)],
                                    [ActionRef("fwd"), ActionRef("NoAction")], implementation="sel")
    return RuntimeState(info)


def test_action_profile_members_and_weighted_groups():
    state = selector_state()
    sel, t = state.action_profiles["sel"], state.tables["ecmp"]
    assert t.match_keys[0].name == "nh" and len(t.match_keys) == 1   # the selector key is not matched
    for member, port in ((1, 1), (2, 2)):
        sel.insert_member(member, fwd(port))
    sel.insert_group(100, [(1, 3), (2, 1)])
    t.insert(TableEntry((7,), group_id=100))
    t.insert(TableEntry((8,), member_id=2))
    assert t.resolve(t.lookup((8,)), b"") == fwd(2)
    picks = Tally(t.resolve(t.lookup((7,)), ((src, 32),)).args[0] for src in range(0x0A000000, 0x0A000000 + 4000))
    assert set(picks) == {1, 2}
    assert 2.4 < picks[1] / picks[2] < 3.8           # weights 3:1 through crc16 % 4
    same = {t.resolve(t.lookup((7,)), ((0x0A000001, 32),)) for _ in range(5)}
    assert len(same) == 1                             # a flow always takes the same member


def test_action_profile_errors():
    state = selector_state(max_group_size=4)
    sel, t = state.action_profiles["sel"], state.tables["ecmp"]
    sel.insert_member(1, fwd(1))
    assert code_of(lambda: sel.insert_member(1, fwd(1))) == "ALREADY_EXISTS"
    assert code_of(lambda: sel.insert_member(2, ActionCall("punt"))) == "INVALID_ARGUMENT"
    assert code_of(lambda: sel.insert_group(1, [(9, 1)])) == "NOT_FOUND"
    assert code_of(lambda: sel.insert_group(1, [(1, 5)])) == "RESOURCE_EXHAUSTED"
    sel.insert_group(1, [(1, 2)])
    assert code_of(lambda: t.insert(TableEntry((1,), action=fwd(1)))) == "INVALID_ARGUMENT"
    assert code_of(lambda: t.insert(TableEntry((1,), member_id=5))) == "NOT_FOUND"
    t.insert(TableEntry((1,), group_id=1))
    assert code_of(lambda: sel.delete_member(1)) == "FAILED_PRECONDITION"
    assert code_of(lambda: sel.delete_group(1)) == "FAILED_PRECONDITION"
    t.delete((1,))
    sel.delete_group(1)
    sel.delete_member(1)
    for member in range(8):
        sel.insert_member(member, fwd(member))
    assert code_of(lambda: sel.insert_member(99, fwd(0))) == "RESOURCE_EXHAUSTED"


@pytest.mark.parametrize("key, match, priority", [
    (MatchField("k", "exact", 8), (5,), 0),
    (MatchField("k", "lpm", 8), ((5, 8),), 0),
    (MatchField("k", "ternary", 8), ((5, 0xFF),), 1),
])
def test_a_lookup_bound_before_reset_sees_later_entries(key, match, priority):
    # generated code binds table.lookup once at load time
    t = make_table([key])
    lookup = t.lookup
    t.insert(TableEntry(match, priority, action=fwd(1)))
    t.reset()
    assert lookup((5,)) is None
    t.insert(TableEntry(match, priority, action=fwd(2)))
    assert lookup((5,)).action == fwd(2)


def test_const_entries_without_priorities_match_in_program_order():
    info = ProgramInfo("p", actions=actions())
    info.tables["t"] = TableInfo(
        "t", [MatchField("k", "ternary", 8)], [ActionRef("fwd")], is_const_table=True,
        const_entries=[ConstEntry(((0x11, 0xFF),), 0, "fwd", (1,)), ConstEntry(((0x10, 0xF0),), 0, "fwd", (2,))])
    info.tables["e"] = TableInfo("e", [MatchField("k", "exact", 8)], [ActionRef("fwd")],
                                 const_entries=[ConstEntry((3,), 7, "fwd", (3,))])
    state = RuntimeState(info)
    assert state.tables["t"].lookup((0x11,)).action == fwd(1)
    assert state.tables["t"].lookup((0x12,)).action == fwd(2)
    assert state.tables["e"].lookup((3,)).priority == 0
