"""``fabriclab bench pipeline``: setup files, the forwarded-path check and the figures' shape
(tiny packet counts; nothing here asserts a speed)."""
from __future__ import annotations

import json

import pytest

from fabriclab.bench import pipeline as bench
from fabriclab.cli import main
from fabriclab.errors import UserError
from fabriclab.v1model.loader import instantiate

FABRIC = bench.PROGRAMS_DIR / "fabric.p4"
TRIVIAL = bench.SETUP_DIR / "trivial.p4"


def _pipeline(program):
    from fabriclab.compiler.driver import compile_file
    return instantiate(compile_file(str(program)))


def test_every_benchmarked_program_has_a_setup_file():
    programs = bench.benchmark_programs()
    assert programs[0] == TRIVIAL and FABRIC in programs
    for program in programs:
        assert bench.setup_path(program).exists(), program


def test_fabric_setup_installs_entries_and_its_frames_take_the_group_and_ecn_paths():
    pipeline = _pipeline(FABRIC)
    frames = bench.load_setup(pipeline, bench.setup_path(FABRIC))
    assert len(frames) >= 2
    assert pipeline.state.tables["FabricIngress.ipv4_route"].entries()
    assert pipeline.state.tables["FabricEgress.ecn_profile"].entries()
    bench.check_forwarded(pipeline, frames, bench.setup_path(FABRIC))
    jobs = [job for f in frames for job in pipeline.ingress(f.frame, f.port, 1)]
    uplinks = {5, 6, 7, 8}                                   # the ECMP group's members
    assert any(job.egress_port in uplinks and job.priority == 3 for job in jobs)   # RoCE, lossless class


def test_frames_a_program_drops_are_refused(tmp_path):
    setup = tmp_path / "fabric.stf"                          # fabric.p4's frames, but no routes
    text = bench.setup_path(FABRIC).read_text()
    setup.write_text("\n".join(line for line in text.splitlines() if line.startswith("packet")))
    pipeline = _pipeline(FABRIC)
    frames = bench.load_setup(pipeline, setup)
    with pytest.raises(UserError, match="not forwarded"):
        bench.check_forwarded(pipeline, frames, setup)


def test_a_bad_setup_line_names_file_and_line(tmp_path):
    setup = tmp_path / "bad.stf"
    setup.write_text("# comment\nadd no_such_table x:1 a()\n")
    with pytest.raises(UserError, match=r"bad.stf:2: .*no_such_table"):
        bench.load_setup(_pipeline(TRIVIAL), setup)


def test_batches_cover_the_packets_asked_for():
    assert bench.batch_plan(20_000) == (1000, 20)
    assert bench.batch_plan(50) == (5, 10)
    batch, batches = bench.batch_plan(1)
    assert batches >= bench.MIN_BATCHES and batch >= 1


def test_measure_program_reports_consistent_positive_figures():
    figures = bench.measure_program(TRIVIAL, packets=200)
    assert figures["us_per_packet"] > 0 and figures["pps"] > 0
    assert figures["pps"] == pytest.approx(1e6 / figures["us_per_packet"], rel=0.01)
    assert figures["packets"] == 200 and figures["batches"] == 10


def test_cli_writes_json_for_every_program(tmp_path):
    out = tmp_path / "pipeline.json"
    assert main(["bench", "pipeline", "--packets", "100", "--json", str(out)]) == 0
    programs = json.loads(out.read_text())["programs"]
    assert set(programs) == {p.stem for p in bench.benchmark_programs()}
    for figures in programs.values():
        assert figures["us_per_packet"] > 0 and figures["pps"] > 0
    # a realistic fabric.p4 path cannot be cheaper than parsing one header and setting a port
    assert programs["fabric"]["us_per_packet"] > programs["trivial"]["us_per_packet"]


def test_cli_rejects_a_nonpositive_packet_count(capsys):
    assert main(["bench", "pipeline", "--packets", "0"]) == 2
    assert "--packets" in capsys.readouterr().err
