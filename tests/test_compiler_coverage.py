"""P4 constructs the native engine does not mirror: their STF tests (tests/stf/python/) pass on
the Python engine, and `auto` falls back to it with the reason the native generator gives."""
from pathlib import Path

import pytest

from fabriclab.compiler.driver import compile_file
from fabriclab.v1model.loader import instantiate
from fabriclab.v1model.stf import program_of, run_stf

STF_DIR = Path(__file__).parent / "stf" / "python"
STF_FILES = sorted(STF_DIR.glob("*.stf"))


@pytest.mark.parametrize("stf", STF_FILES, ids=[p.stem for p in STF_FILES])
def test_python_only_stf(stf):
    compiled = compile_file(str(program_of(stf)))
    assert compiled.native_problem is not None, "the native engine mirrors it now: move it to tests/stf/"
    assert instantiate(compiled, engine="auto").engine.name == "python"
    result = run_stf(None, stf, engine="python")
    if not result.passed:
        pytest.fail(result.report(), pytrace=False)


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


def test_stf_reports_a_packet_the_program_fails_on_as_dropped():
    stf = STF_DIR / "lang_union_stack.stf"
    result = run_stf(None, stf, engine="python")
    assert result.passed
    assert any("packet dropped: header stack index out of range" in line for line in result.log)
