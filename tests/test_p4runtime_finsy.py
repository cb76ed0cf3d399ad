"""Interop: finsy, a P4Runtime client library we did not write, drives our server: pipeline
push (its cookie check, P4Info + P4 source blob), table writes and reads, a per-update error,
multicast groups, and a packet-in it decodes with its own P4Info."""
from __future__ import annotations

import asyncio
from pathlib import Path

import finsy as fy
import pytest

from fabriclab.compiler import driver
from fabriclab.compiler import p4info
from test_p4runtime_server import ethernet, program_path, serve  # noqa: F401 (program_path is a fixture)


@pytest.fixture
def finsy_options(tmp_path, program_path) -> fy.SwitchOptions:
    info_path = tmp_path / "program.p4info.txtpb"
    info_path.write_text(p4info.to_text(driver.compile_file(str(program_path)).info))
    return fy.SwitchOptions(p4info=info_path, p4blob=Path(program_path), device_id=3)


def test_finsy_pushes_pipeline_writes_and_reads(finsy_options):
    with serve(device_id=3) as (switch, addr, _):
        async def controller():
            async with fy.Switch("sw", addr, finsy_options) as sw:
                assert sw.is_primary
                await sw.insert([
                    fy.P4TableEntry("ipv4_lpm", match=fy.P4TableMatch({"hdr.ipv4.dstAddr": "10.0.0.0/8"}),
                                    action=fy.P4TableAction("forward", port=1)),
                    fy.P4TableEntry("acl", match=fy.P4TableMatch({"hdr.ipv4.protocol": (6, 0xFF)}),
                                    action=fy.P4TableAction("acl_drop"), priority=9),
                    fy.P4MulticastGroupEntry(4, replicas=[(1, 0), (2, 0)]),
                ])
                lpm = [e async for e in sw.read(fy.P4TableEntry("ipv4_lpm"))]
                acl = [e async for e in sw.read(fy.P4TableEntry("acl"))]
                groups = [e async for e in sw.read(fy.P4MulticastGroupEntry())]
                with pytest.raises(fy.P4ClientError) as err:     # duplicate: per-update ALREADY_EXISTS
                    await sw.insert([fy.P4TableEntry("ipv4_lpm",
                                                     match=fy.P4TableMatch({"hdr.ipv4.dstAddr": "10.0.0.0/8"}),
                                                     action=fy.P4TableAction("forward", port=2))])
                return lpm, acl, groups, err.value

        lpm, acl, groups, error = asyncio.run(controller())
        assert switch.pipeline is not None and switch.pipeline.info.name == "program"   # raw-source blob
        assert [(e.match["dstAddr"], e.action.args) for e in lpm] == [((0x0A000000, 8), {"port": 1})]
        assert acl[0].priority == 9 and acl[0].action.name == "acl_drop"
        assert [g.replicas for g in groups] == [(1, 2)]
        assert [e.canonical_code for e in error.details.values()] == [fy.GRPCStatusCode.ALREADY_EXISTS]
        # what finsy wrote is what the data plane runs
        entries = switch.pipeline.state.tables["MyIngress.ipv4_lpm"].entries()
        assert [(e.match, e.action.args) for e in entries] == [(((0x0A000000, 8),), (1,))]


def test_finsy_keeps_a_matching_pipeline_and_receives_packet_ins(finsy_options):
    with serve(device_id=3) as (switch, addr, _):
        async def push():
            async with fy.Switch("sw", addr, finsy_options):
                pass

        asyncio.run(push())
        first = switch.pipeline

        async def controller():
            async with fy.Switch("sw", addr, finsy_options) as sw:
                await sw.insert([fy.P4TableEntry("mac_table",
                                                 match=fy.P4TableMatch({"hdr.ethernet.dstAddr": "00:00:00:00:00:0c"}),
                                                 action=fy.P4TableAction("to_cpu"))])
                switch.receive(ethernet("00:00:00:00:00:0c", "00:00:00:00:00:0b", 0x0801), 6)
                async for packet in sw.read_packets():
                    return packet

        packet = asyncio.run(asyncio.wait_for(controller(), 10))
        assert switch.pipeline is first              # same cookie: finsy did not push it again
        assert packet.metadata["ingress_port"] == 6
        assert packet.payload[:6] == bytes.fromhex("00000000000c")
