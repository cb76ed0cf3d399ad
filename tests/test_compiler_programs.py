"""Every P4 program shipped with fabriclab compiles, instantiates and survives odd frames."""
from __future__ import annotations

from pathlib import Path

import pytest

from fabriclab.compiler.driver import compile_file
from fabriclab.v1model.loader import instantiate

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = sorted((ROOT / "tests" / "programs").glob("*.p4")) + sorted((ROOT / "p4").glob("*.p4"))


@pytest.mark.parametrize("path", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_program_compiles_and_runs_on_malformed_frames(path):
    pipeline = instantiate(compile_file(str(path)))
    assert pipeline.info.name == path.stem
    # truncated and garbage frames: parser errors, never exceptions
    for frame in (b"", b"\x00", bytes(13), bytes(range(60)), b"\xff" * 100):
        for port, data in pipeline.process(frame, 1):
            assert 0 <= port < 512 and isinstance(data, bytes)
