"""Every program in tests/programs/errors/ must fail with the error its first line announces.

See tests/programs/errors/README.md for the ``// expect: LINE:COL: error: MESSAGE`` convention.
"""
from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fabriclab.compiler.diagnostics import CompileError, SourceLocation, register_source
from fabriclab.compiler.parser import parse_file

ERRORS_DIR = Path(__file__).parent / "programs" / "errors"
EXPECT_RE = re.compile(r"//\s*expect:\s*(\d+:\d+: error: .+?)\s*$")
PROGRAMS = sorted(ERRORS_DIR.glob("*.p4"))


def compile_program(path: str) -> None:
    """The whole compiler when the back-end exists, else the front-end alone."""
    try:
        compiler = importlib.import_module("fabriclab.compiler.driver")
    except ModuleNotFoundError as exc:
        if exc.name != "fabriclab.compiler.driver":
            raise
        parse_file(path)
        return
    compiler.compile_file(path, include_dirs=[], defines={})


def expected_headline(path: Path) -> str:
    first_line = path.read_text().splitlines()[0]
    match = EXPECT_RE.match(first_line)
    assert match, f"{path.name}: first line must be '// expect: LINE:COL: error: MESSAGE'"
    return f"{path}:{match.group(1)}"


def test_there_are_enough_error_programs():
    assert len(PROGRAMS) >= 14


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_error_program_reports_expected_error(program: Path):
    expected = expected_headline(program)
    with pytest.raises(CompileError) as info:
        compile_program(str(program))
    assert info.value.headline() == expected


def test_format_shows_source_line_and_caret():
    program = ERRORS_DIR / "lex_unexpected_character.p4"
    with pytest.raises(CompileError) as info:
        parse_file(str(program))
    lines = info.value.format().splitlines()
    assert lines[0] == expected_headline(program)
    assert lines[1] == "    bit<48> srcAddr;   $"
    assert lines[2] == " " * 23 + "^"
    assert lines[1][lines[2].index("^")] == "$"


def test_caret_follows_tabs():
    register_source("<tabs>", "\tx = \t$;\n")
    err = CompileError("boom", SourceLocation("<tabs>", 1, 7))
    source, caret = err.format().splitlines()[1:]
    assert caret == "\t    \t^"
    assert source[len(caret) - 1] == "$"


def test_compile_command_prints_diagnostic_and_exits_1(tmp_path):
    program = ERRORS_DIR / "parse_missing_semicolon.p4"
    result = subprocess.run([sys.executable, "-m", "fabriclab.cli", "compile", str(program), "--check"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == expected_headline(program)
    assert result.stderr.splitlines()[1] == "}"
    assert result.stderr.splitlines()[2] == "^"
    assert "Traceback" not in result.stderr
