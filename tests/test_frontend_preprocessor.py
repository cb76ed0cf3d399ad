"""Preprocessor and lexer: includes, macros, conditionals, and locations of every token."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fabriclab.compiler.diagnostics import CompileError
from fabriclab.compiler.lexer import EOF, IDENT, INT, parse_integer, tokenize
from fabriclab.compiler.preprocessor import P4INCLUDE_DIR, preprocess, preprocess_text


def texts(tokens) -> list[str]:
    return [t.text for t in tokens if t.kind != EOF]


def where(token) -> tuple[str, int, int]:
    return Path(token.loc.file).name, token.loc.line, token.loc.col


# ---------------------------------------------------------------------------- lexer

@pytest.mark.parametrize("text, expected", [
    ("42", (42, None, False)),
    ("0x0800", (0x800, None, False)),
    ("0XfF", (255, None, False)),
    ("0b1010_0101", (0xA5, None, False)),
    ("0o17", (15, None, False)),
    ("0d19", (19, None, False)),
    ("8w5", (5, 8, False)),
    ("16w0x8100", (0x8100, 16, False)),
    ("4s3", (3, 4, True)),
    ("4s-1", (-1, 4, True)),
    ("1_000", (1000, None, False)),
])
def test_integer_literals(text, expected):
    assert parse_integer(text) == expected


@pytest.mark.parametrize("text", ["0x", "12ab", "8w", "0b102", "8w-1", "0xG"])
def test_malformed_integer_literals(text):
    assert parse_integer(text) is None


def test_tokens_kinds_and_locations():
    tokens = list(tokenize("bit<8> x = 8w1;\n  apply /* c\n c */ y>>=z &&& _ |+| ..", "t.p4"))
    assert [(t.kind, t.text) for t in tokens[:4]] == [("bit", "bit"), ("<", "<"), (INT, "8"), (">", ">")]
    assert tokens[4].kind == IDENT and where(tokens[4]) == ("t.p4", 1, 8)
    apply = tokens[8]
    assert (apply.kind, apply.text, where(apply)) == (IDENT, "apply", ("t.p4", 2, 3))
    rest = tokens[9:]
    assert [t.text for t in rest] == ["y", ">", ">=", "z", "&&&", "_", "|+|", "..", ""]
    assert where(rest[0]) == ("t.p4", 3, 7)
    assert not rest[1].space_before and not rest[2].space_before and rest[3].space_before is False
    assert rest[-1].kind == EOF


# ---------------------------------------------------------------------------- includes

@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "lib").mkdir()
    (tmp_path / "extra").mkdir()
    (tmp_path / "lib" / "common.p4").write_text('#include "sub/inner.p4"\nconst bit<8> COMMON = 1;\n')
    (tmp_path / "lib" / "sub").mkdir()
    (tmp_path / "lib" / "sub" / "inner.p4").write_text("const bit<8> INNER = 2;\n")
    (tmp_path / "extra" / "settings.p4").write_text("const bit<8> SETTINGS = 3;\n")
    # A decoy: <core.p4> must come from fabriclab's p4include, not from -I dirs.
    (tmp_path / "extra" / "core.p4").write_text("decoy\n")
    return tmp_path


def test_quote_includes_are_relative_to_the_including_file_then_search_dirs(tree: Path):
    main = tree / "main.p4"
    main.write_text('#include "lib/common.p4"\n#include "settings.p4"\n#include <core.p4>\nx\n')
    tokens = preprocess(str(main), include_dirs=[str(tree / "extra")])
    names = [t.text for t in tokens if t.kind == IDENT and t.text.isupper()]
    assert names[:3] == ["INNER", "COMMON", "SETTINGS"]
    inner = next(t for t in tokens if t.text == "INNER")
    assert inner.loc.file.endswith("lib/sub/inner.p4") and (inner.loc.line, inner.loc.col) == (1, 14)
    assert "decoy" not in texts(tokens)
    assert any(t.loc.file == str(Path(P4INCLUDE_DIR) / "core.p4") for t in tokens)
    last = [t for t in tokens if t.kind != EOF][-1]
    assert (last.text, where(last)) == ("x", ("main.p4", 4, 1))


def test_angle_includes_fall_back_to_search_dirs(tree: Path):
    tokens = preprocess_text("#include <settings.p4>\n", "m.p4", include_dirs=[str(tree / "extra")])
    assert "SETTINGS" in texts(tokens)


def test_missing_include_names_the_file(tree: Path):
    with pytest.raises(CompileError) as info:
        preprocess_text('\n  #include "nope.p4"\n', "m.p4", include_dirs=[str(tree)])
    assert info.value.headline() == "m.p4:2:12: error: cannot find include file 'nope.p4'"


def test_recursive_include_is_an_error(tmp_path: Path):
    (tmp_path / "loop.p4").write_text('#include "loop.p4"\n')
    with pytest.raises(CompileError) as info:
        preprocess(str(tmp_path / "loop.p4"))
    assert "nested too deeply" in info.value.message


def test_pragma_once(tmp_path: Path):
    (tmp_path / "once.p4").write_text("#pragma once\nconst bit<8> ONCE = 1;\n")
    (tmp_path / "main.p4").write_text('#include "once.p4"\n#include "once.p4"\n')
    assert texts(preprocess(str(tmp_path / "main.p4"))).count("ONCE") == 1


# ---------------------------------------------------------------------------- macros

def test_object_like_macros_substitute_tokens_at_the_use_site():
    tokens = preprocess_text("#define ETH_TYPE 16w0x0800\n#define PAIR a, \\\n   b\n"
                             "x = ETH_TYPE; f(PAIR);\n", "m.p4")
    assert texts(tokens) == ["x", "=", "16w0x0800", ";", "f", "(", "a", ",", "b", ")", ";"]
    literal = tokens[2]
    assert literal.kind == INT and literal.value == (0x800, 16, False) and where(literal) == ("m.p4", 4, 5)
    assert where(tokens[6]) == ("m.p4", 4, 17)


def test_macros_expand_recursively_but_not_into_themselves():
    tokens = preprocess_text("#define A B + 1\n#define B A * 2\nA\n#undef B\nA\n", "m.p4")
    assert texts(tokens) == ["A", "*", "2", "+", "1", "B", "+", "1"]


def test_command_line_defines():
    text = "#ifdef FAST\nfast\n#endif\n#if LEVEL >= 2\nhigh\n#else\nlow\n#endif\nLEVEL\n"
    assert texts(preprocess_text(text, "m.p4", defines={"FAST": None, "LEVEL": "3"})) == ["fast", "high", "3"]
    assert texts(preprocess_text(text, "m.p4", defines={"LEVEL": "1"})) == ["low", "1"]
    assert texts(preprocess_text(text, "m.p4")) == ["low", "LEVEL"]


# ---------------------------------------------------------------------------- conditionals

@pytest.mark.parametrize("condition, taken", [
    ("defined(A)", True),
    ("defined A && !defined(B)", True),
    ("defined(B) || A == 5", True),
    ("A > 5", False),
    ("(A + 3) * 2 == 16 && (A >> 1) == 2 && (1 << 3) == 8", True),
    ("A % 2 == 1 ? 1 : 0", None),      # the ternary is not supported in #if
    ("0", False),
    ("UNDEFINED_NAME", False),
    ("-1 < 0 && ~0 == -1", True),
])
def test_if_conditions(condition, taken):
    text = f"#define A 5\n#if {condition}\nyes\n#else\nno\n#endif\n"
    if taken is None:
        with pytest.raises(CompileError):
            preprocess_text(text, "m.p4")
        return
    assert texts(preprocess_text(text, "m.p4")) == (["yes"] if taken else ["no"])


def test_elif_chains_and_nesting():
    text = """#define V 2
#if V == 1
one
#elif V == 2
  #ifdef MISSING
  nested_wrong
  #elif 1
  two
  #endif
#elif V == 2
late
#else
other
#endif
"""
    assert texts(preprocess_text(text, "m.p4")) == ["two"]


def test_skipped_groups_may_hold_anything():
    text = "#if 0\n$ ' @@ 0xZZ \"open\n#if garbage ((\n#endif\n#error not reached\n#endif\nok\n"
    assert texts(preprocess_text(text, "m.p4")) == ["ok"]


@pytest.mark.parametrize("text, headline", [
    ("#if 1\n#else\n#elif 1\n#endif\n", "m.p4:3:1: error: #elif after #else"),
    ("#if\n#endif\n", "m.p4:1:1: error: #if with no expression"),
    ("#ifdef\n#endif\n", "m.p4:1:1: error: #ifdef expects a macro name"),
    ("#define 3 x\n", "m.p4:1:9: error: #define expects a macro name"),
    ("#if 1 +\n#endif\n", "m.p4:1:1: error: incomplete #if condition"),
    ("#if (1\n#endif\n", "m.p4:1:1: error: expected ')' in #if condition"),
    ("x\n#ifndef A\n#if 1\n#endif\n", "m.p4:2:1: error: unterminated #ifndef"),
    ("#include nope.p4\n", 'm.p4:1:10: error: #include expects "FILE" or <FILE>'),
])
def test_directive_errors(text, headline):
    with pytest.raises(CompileError) as info:
        preprocess_text(text, "m.p4")
    assert info.value.headline() == headline


def test_lexer_errors_in_active_code_are_reported():
    with pytest.raises(CompileError) as info:
        preprocess_text("#define X 1\nconst bit<8> a = X;\n  `\n", "m.p4")
    assert info.value.headline() == "m.p4:3:3: error: unexpected character '`'"


# ---------------------------------------------------------------------------- the command

MINIMAL_PROGRAM = """
struct headers_t { }
struct meta_t { }
parser P(packet_in p, out headers_t h, inout meta_t m, inout standard_metadata_t sm) {
    state start { transition accept; }
}
control V(inout headers_t h, inout meta_t m) { apply { } }
control I(inout headers_t h, inout meta_t m, inout standard_metadata_t sm) {
    apply { sm.egress_spec = CPU_PORT; }
}
control E(inout headers_t h, inout meta_t m, inout standard_metadata_t sm) { apply { } }
control C(inout headers_t h, inout meta_t m) { apply { } }
control D(packet_out p, in headers_t h) { apply { } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""


def run_compile(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fabriclab.cli", "compile", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=60)


def test_compile_check_honours_include_dirs_and_defines(tmp_path: Path):
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "ports.p4").write_text("const bit<9> CPU_PORT = CPU;\n")
    program = tmp_path / "prog.p4"
    program.write_text('#include <v1model.p4>\n#include "ports.p4"\n'
                       "#ifndef CPU\n#error CPU not set\n#endif\n" + MINIMAL_PROGRAM)
    ok = run_compile(str(program), "--check", "-I", str(tmp_path / "inc"), "-D", "CPU=255", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    missing = run_compile(str(program), "--check", "-I", str(tmp_path / "inc"), cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.splitlines()[0] == f"{program}:4:1: error: #error CPU not set"
    bad_define = run_compile(str(program), "--check", "-D", "9X=1", cwd=tmp_path)
    assert bad_define.returncode == 2 and "not a valid macro name" in bad_define.stderr
    absent = run_compile(str(tmp_path / "absent.p4"), "--check", cwd=tmp_path)
    assert absent.returncode == 2 and "no such file" in absent.stderr
    assert not list(tmp_path.glob("build"))      # --check writes nothing
    written = run_compile(str(program), "-o", str(tmp_path / "out"), "-I", str(tmp_path / "inc"),
                          "-D", "CPU=255", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "out" / "prog.py").is_file()
