"""Every STF test in tests/stf/: compile the program its '# program:' line names, run, compare."""
from pathlib import Path

import pytest

from fabriclab.v1model.stf import program_of, run_stf

STF_DIR = Path(__file__).parent / "stf"
STF_FILES = sorted(STF_DIR.glob("*.stf"))


def test_every_stf_file_names_an_existing_program():
    for stf in STF_FILES:
        program = program_of(stf)
        assert program is not None, f"{stf.name}: no '# program: PATH' line"
        assert program.is_file(), f"{stf.name}: {program} does not exist"


@pytest.mark.parametrize("stf", STF_FILES, ids=[p.stem for p in STF_FILES])
def test_stf(stf):
    result = run_stf(None, stf)
    if not result.passed:
        pytest.fail(result.report(), pytrace=False)
