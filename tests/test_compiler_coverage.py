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
