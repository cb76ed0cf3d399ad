"""The teaching labs without a network: every lab's checker passes on its solution and fails on
the untouched skeleton (the labs whose checkers need Mininet are in test_labs_mininet.py), the
layout of every lab folder, the runtime JSON loader, and the CLI's answers to bad input."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from fabriclab.cli import main
from fabriclab.errors import UserError
from fabriclab.labs import runtime_json
from fabriclab.labs.catalog import LabRun, all_labs, find_lab
from fabriclab.labs.exercise import load_exercise, topology_json
from fabriclab.labs.pipeline_bench import PipelineBench
from fabriclab.labs.start import fabric_of

MININET_LABS = {"05", "06", "12"}      # their checkers run a fabric
ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("**Goal.**", "## Background", "## Tasks", "## What to observe", "## Questions")


def check_json(*argv: str) -> tuple[int, dict]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["lab", "check", *argv, "--json"])
    return code, json.loads(out.getvalue())


def test_at_least_ten_labs_in_teaching_order():
    numbers = [lab.number for lab in all_labs()]
    assert len(numbers) >= 10 and numbers == sorted(numbers)


@pytest.mark.parametrize("lab", [lab.number for lab in all_labs() if lab.number not in MININET_LABS])
def test_checker_passes_on_the_solution_and_fails_on_the_skeleton(lab):
    code, report = check_json(lab, "--solution")
    assert code == 0 and report["passed"], [c for c in report["checks"] if not c["passed"]]
    assert report["score"] == report["total"] >= 3
    code, report = check_json(lab)
    assert code == 1 and not report["passed"] and report["score"] < report["total"]


@pytest.mark.parametrize("lab", [lab.number for lab in all_labs()])
def test_lab_folder_has_the_tutorials_layout(lab):
    lab = find_lab(lab)
    readme = (lab.path / "README.md").read_text()
    assert all(section in readme for section in SECTIONS), f"{lab.name}/README.md lacks a section"
    assert "|" in readme or "```" in readme          # one table or figure in the background
    assert (lab.path / "check.py").exists() and (lab.path / "topology.json").exists()
    for name in lab.edit:
        assert (lab.path / name).exists() and (lab.path / "solution" / name).exists(), name
        assert (lab.path / name).read_bytes() != (lab.path / "solution" / name).read_bytes(), name


@pytest.mark.parametrize("lab", [lab.number for lab in all_labs() if lab.start == "exercise"])
def test_exercise_labs_load_as_tutorials_exercises(lab):
    lab = find_lab(lab)
    for solution in (False, True):
        exercise = load_exercise(lab.path, solution)
        assert exercise.program.parent == (lab.path / "solution" if solution else lab.path)
        for switch, runtime in exercise.switches.items():
            PipelineBench(exercise.program, runtime)      # every switch's entries load


@pytest.mark.parametrize("lab", [lab.number for lab in all_labs() if lab.start != "exercise"])
def test_fabric_labs_topology_json_draws_their_fabric(lab):
    lab = find_lab(lab)
    description, _ = fabric_of(LabRun(lab))
    assert json.loads((lab.path / "topology.json").read_text()) == topology_json(description)


def test_runtime_json_errors_are_one_line(tmp_path):
    program = ROOT / "tests" / "exercises" / "replication" / "replication.p4"
    bad = tmp_path / "s1-runtime.json"
    bad.write_text('{"table_entries": [{"table": "RIngress.acl", "match": {"hdr.ipv4.dstAddr": ["10.0.0.3", '
                   '"255.255.255.255"]}, "action_name": "RIngress.drop", "action_params": {}}]}')
    with pytest.raises(UserError, match=r"table_entries\[0\].*non-zero 'priority'"):
        PipelineBench(program, bad)
    bad.write_text('{"table_entries": [{"table": "RIngress.nope", "action_name": "x", "action_params": {}}]}')
    with pytest.raises(UserError, match=r"no table 'RIngress.nope'"):
        PipelineBench(program, bad)
    bad.write_text('{"table_entries": [')
    with pytest.raises(UserError, match=r"s1-runtime.json:1: not JSON"):
        runtime_json.load(bad)


def test_ternary_priority_multicast_and_clone_offline():
    folder = ROOT / "tests" / "exercises" / "replication"
    exercise = load_exercise(folder)
    assert exercise.topology_path == folder / "pod-topo" / "topology.json"   # found through the Makefile's TOPO
    bench = PipelineBench(exercise.program, exercise.switches["s1"])
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    def ports(src: str, dst: str, port: int) -> list[int]:
        return sorted(p for p, _ in bench.send(bytes(Ether() / IP(src=src, dst=dst) / UDP() / b"x"), port))

    assert ports("10.0.0.1", "10.0.0.3", 1) == [3, 4]     # allowed at priority 20, mirrored to port 4
    assert ports("10.0.0.2", "10.0.0.3", 2) == []         # denied at priority 10
    assert ports("10.0.0.2", "10.0.0.255", 2) == [1, 3]   # multicast group 1, not back to port 2


def test_bad_input_gives_one_line_and_nonzero(capsys):
    assert main(["lab", "check", "no-such-lab"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no lab 'no-such-lab'" in err
    assert main(["lab", "check", str(ROOT / "tests"), "--pingall"]) != 0     # a folder, but not an exercise
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no topology.json" in err


def test_list_shows_every_lab(capsys):
    assert main(["lab", "list"]) == 0
    out = capsys.readouterr().out
    for lab in all_labs():
        assert lab.number in out and lab.level in out


def test_reset_restores_the_skeleton_and_keeps_the_students_version(tmp_path):
    lab = find_lab("01")
    copy = tmp_path / lab.name
    shutil.copytree(lab.path, copy)
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "lab")
    edited = copy / "l3_forwarding.p4"
    original = edited.read_text()
    edited.write_text("my attempt\n")
    assert main(["lab", "reset", str(copy)]) == 0
    assert edited.read_text() == original
    assert (copy / "l3_forwarding.p4.bak").read_text() == "my attempt\n"
