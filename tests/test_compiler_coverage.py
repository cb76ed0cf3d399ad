"""No traceback, ever: a compiler bug is one line with the P4 location and exit code 3; a packet
the program fails on (a header-stack index out of range) is dropped with its reason."""
from pathlib import Path

import pytest

from fabriclab.v1model.stf import run_stf

STF_DIR = Path(__file__).parent / "stf"


def test_compiler_bug_is_one_line_with_the_p4_location(monkeypatch, capsys, tmp_path):
    from fabriclab.cli import main
    from fabriclab.compiler import codegen

    def broken(self, e):
        raise KeyError("boom")

    monkeypatch.setattr(codegen.Generator, "x_Binary", broken)
    program = Path(__file__).parent / "programs" / "lang_loops.p4"
    assert main(["compile", str(program), "-o", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("fabriclab: internal error: KeyError: 'boom' (")
    assert f"{program}:" in err        # the P4 node the generator was working on


@pytest.mark.parametrize("engine", ["python", "native"])
def test_stf_reports_a_packet_the_program_fails_on_as_dropped(engine):
    result = run_stf(None, STF_DIR / "lang_union_stack.stf", engine=engine)
    assert result.passed
    assert any("packet dropped: header stack index out of range" in line for line in result.log)
