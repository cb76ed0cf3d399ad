"""Registers, counters, meters (indirect and direct), the PRE and RuntimeState.reset."""
import pytest

from fabriclab.v1model.externs import GREEN, RED, YELLOW, Counter, Meter, Register, execute_direct_meter
from fabriclab.v1model.pre import CloneSession, PacketReplicationEngine
from fabriclab.compiler.program import (ActionInfo, ActionRef, CounterInfo, MatchField, MeterInfo, ProgramInfo,
                                      RegisterInfo, TableInfo)
from fabriclab.v1model.state import RuntimeState
from fabriclab.v1model.tables import ActionCall, StateError, TableEntry


def code_of(call):
    with pytest.raises(StateError) as err:
        call()
    return err.value.code


def test_register_masks_values_and_checks_bounds():
    reg = Register(RegisterInfo("r", bitwidth=8, size=4))
    reg.write(1, 0x1FF)
    assert reg.read(1) == 0xFF
    assert code_of(lambda: reg.read(4)) == "OUT_OF_RANGE"
    assert code_of(lambda: reg.write(-1, 0)) == "OUT_OF_RANGE"
    # the data plane does what simple_switch does out of range: read 0, ignore the write
    reg.dp_write(4, 7)
    assert reg.dp_read(4) == 0
    reg.dp_write(3, 0x1234)
    assert reg.dp_read(3) == 0x34
    reg.reset()
    assert reg.read(3) == 0


def test_signed_register_wraps_in_twos_complement():
    reg = Register(RegisterInfo("r", bitwidth=8, size=1, signed=True))
    reg.dp_write(0, -3)
    assert reg.dp_read(0) == -3
    reg.write(0, 0x80)
    assert reg.read(0) == -128


def test_counter_counts_packets_and_bytes():
    ctr = Counter(CounterInfo("c", "packets_and_bytes", size=2))
    ctr.count(0, 100)
    ctr.count(0, 60)
    ctr.count(5, 60)     # out of range: ignored
    assert ctr.read(0) == (2, 160)
    ctr.write(1, 10, 1000)
    assert ctr.read(1) == (10, 1000)
    assert code_of(lambda: ctr.read(2)) == "OUT_OF_RANGE"
    ctr.reset()
    assert ctr.read(0) == (0, 0)


def test_packet_meter_marks_green_yellow_red_and_refills():
    meter = Meter(MeterInfo("m", "packets", size=1))
    assert meter.execute(0, 100, 0) == GREEN                    # unconfigured: always GREEN
    meter.set_config(0, cir=1000, cburst=2, pir=2000, pburst=4)   # per second, as P4Runtime
    assert [meter.execute(0, 1500, 10) for _ in range(5)] == [GREEN, GREEN, YELLOW, YELLOW, RED]
    # 1 ms later: +2 peak tokens, +1 committed token
    assert [meter.execute(0, 1500, 1010) for _ in range(3)] == [GREEN, YELLOW, RED]
    assert meter.get_config(0) == (1000, 2, 2000, 4)
    assert code_of(lambda: meter.set_config(1, 1, 1, 1, 1)) == "OUT_OF_RANGE"


def test_byte_meter_charges_the_packet_length():
    meter = Meter(MeterInfo("m", "bytes", size=1))
    meter.set_rates(0, (0.0, 1000), (0.0, 3000))   # rates per µs, as simple_switch_CLI; no refill
    assert [meter.execute(0, 600, 0) for _ in range(6)] == [GREEN, YELLOW, YELLOW, YELLOW, YELLOW, RED]
    assert code_of(lambda: meter.set_rates(0, (2.0, 1), (1.0, 1))) == "INVALID_ARGUMENT"   # cir > pir


def test_direct_meter_state_lives_on_the_entry():
    entry = TableEntry((1,), action=ActionCall("a"))
    assert execute_direct_meter(entry, "packets", 64, 0) == GREEN
    entry.meter = (0, 1, 0, 2)
    assert [execute_direct_meter(entry, "packets", 64, 0) for _ in range(3)] == [GREEN, YELLOW, RED]


def test_pre_multicast_groups_and_clone_sessions():
    pre = PacketReplicationEngine()
    pre.insert_multicast_group(1, [(1, 0), (2, 0), (3, 5)])
    assert pre.replicate(1) == [(1, 0), (2, 0), (3, 5)]
    assert pre.replicate(9) == []
    assert code_of(lambda: pre.insert_multicast_group(1, [])) == "ALREADY_EXISTS"
    assert code_of(lambda: pre.insert_multicast_group(0, [])) == "INVALID_ARGUMENT"
    assert code_of(lambda: pre.modify_multicast_group(2, [])) == "NOT_FOUND"
    assert code_of(lambda: pre.modify_multicast_group(1, [(1, 0), (1, 0)])) == "INVALID_ARGUMENT"
    assert code_of(lambda: pre.modify_multicast_group(1, [(512, 0)])) == "INVALID_ARGUMENT"
    pre.modify_multicast_group(1, [(4, 1)])
    assert pre.replicate(1) == [(4, 1)]
    pre.insert_clone_session(CloneSession(5, replicas=[(7, 0)], class_of_service=3, truncate_length=64))
    session = pre.clone_session(5)
    assert (session.egress_port, session.class_of_service, session.truncate_length) == (7, 3, 64)
    pre.insert_clone_session(CloneSession(6, mgid=1))
    assert pre.clone_session(6).egress_port is None and pre.clone_session(6).mgid == 1
    assert code_of(lambda: pre.insert_clone_session(CloneSession(5, egress_port=1))) == "ALREADY_EXISTS"
    pre.delete_clone_session(5)
    assert pre.clone_session(5) is None
    assert code_of(lambda: pre.delete_multicast_group(3)) == "NOT_FOUND"


def test_runtime_state_is_built_from_program_info_and_reset_clears_it():
    info = ProgramInfo("p", actions={"a": ActionInfo("a"), "NoAction": ActionInfo("NoAction")})
    info.tables["c.t"] = TableInfo("c.t", [MatchField("k", "exact", 8)], [ActionRef("a"), ActionRef("NoAction")],
                                   direct_counter="c.t_counter")
    info.counters["c.ports"] = CounterInfo("c.ports", "packets", size=4)
    info.counters["c.t_counter"] = CounterInfo("c.t_counter", "packets_and_bytes", direct_table="c.t")
    info.meters["c.m"] = MeterInfo("c.m", "bytes", size=2)
    info.registers["c.r"] = RegisterInfo("c.r", 16, 8)
    state = RuntimeState(info)
    assert set(state.counters) == {"c.ports"}           # direct counters live on entries
    state.tables["c.t"].insert(TableEntry((1,), action=ActionCall("a")))
    state.tables["c.t"].set_default(ActionCall("a"))
    state.registers["c.r"].write(2, 9)
    state.counters["c.ports"].count(1, 10)
    state.meters["c.m"].set_config(0, 1, 1, 1, 1)
    state.pre.insert_multicast_group(1, [(1, 0)])
    state.digests.append(("d", (1, 2)))
    state.hash_unit.set_crc16_parameters(0x1021, 0xFFFF, 0, False, False)
    state.reset()
    assert state.tables["c.t"].entries() == [] and state.tables["c.t"].default == ActionCall("NoAction")
    assert state.registers["c.r"].read(2) == 0
    assert state.counters["c.ports"].read(1) == (0, 0)
    assert state.meters["c.m"].get_config(0) is None
    assert state.pre.replicate(1) == [] and not state.digests
    assert state.hash_unit.compute("crc16_custom", b"123456789") == 0xBB3D
