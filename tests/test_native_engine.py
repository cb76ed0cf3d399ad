"""The native engine: every STF test passes on it, the build cache and its lock, the fallback
to Python for what it does not mirror, and the one-line error when native is demanded."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fabriclab.errors import UserError
from fabriclab.compiler import native_build
from fabriclab.compiler.driver import compile_source
from fabriclab.v1model.stf import run_stf
from fabriclab.v1model.loader import instantiate

ROOT = Path(__file__).resolve().parent.parent
STF_FILES = sorted((ROOT / "tests" / "stf").glob("*.stf"))

SMALL = """
#include <core.p4>
#include <v1model.p4>
header eth_t { bit<48> dst; bit<48> src; bit<16> type; }
struct h_t { eth_t eth; }
struct m_t { }
parser P(packet_in p, out h_t h, inout m_t m, inout standard_metadata_t sm) {
    state start { p.extract(h.eth); transition accept; }
}
control V(inout h_t h, inout m_t m) { apply { } }
control I(inout h_t h, inout m_t m, inout standard_metadata_t sm) {
    apply { sm.egress_spec = (bit<9>)h.eth.type[3:0]; h.eth.src = h.eth.src + %d; }
}
control E(inout h_t h, inout m_t m, inout standard_metadata_t sm) { apply { } }
control C(inout h_t h, inout m_t m) { apply { } }
control D(packet_out p, in h_t h) { apply { p.emit(h.eth); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""

# a table action with a signed parameter: the native engine does not mirror those
SIGNED = SMALL.replace(
    "    apply { sm.egress_spec",
    "    action shift(int<8> by) { h.eth.dst = h.eth.dst + (bit<48>)by; }\n"
    "    table t { key = { h.eth.type: exact; } actions = { shift; NoAction; } }\n"
    "    apply { t.apply(); sm.egress_spec")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FABRICLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "native"


@pytest.mark.parametrize("stf", STF_FILES, ids=[p.stem for p in STF_FILES])
def test_every_stf_test_passes_natively(stf):
    result = run_stf(None, stf, engine="native")
    assert result.passed, result.report()


def test_small_program_forwards_natively(cache):
    p = instantiate(compile_source(SMALL % 1, "small"), engine="native")
    assert p.engine.name == "native"
    frame = bytes(6) + bytes.fromhex("0000000000ff") + b"\x08\x03" + b"payload"
    assert p.process(frame, 1) == [(3, bytes(6) + bytes(4) + b"\x01\x00" + b"\x08\x03" + b"payload")]
    assert p.process(bytearray(frame), 1) == p.process(memoryview(frame), 1) == p.process(frame, 1)
    assert sorted(path.suffix for path in cache.iterdir()) == [".c", ".lock", ".so"]


def test_build_is_cached_by_source(cache, monkeypatch):
    source = compile_source(SMALL % 2, "cached").native_source
    first = native_build.build(source)
    calls = []

    def no_compiler(cmd, **kwargs):
        calls.append(cmd)
        raise OSError("no compiler in this test")

    monkeypatch.setattr(native_build.subprocess, "run", no_compiler)
    assert native_build.build(source) == first and calls == []          # warm: no compiler run
    other = compile_source(SMALL % 3, "cached").native_source
    assert native_build.module_key(other) != native_build.module_key(source)
    with pytest.raises(native_build.NativeUnavailable, match="no compiler in this test"):
        native_build.build(other)                                       # cold: the compiler runs
    assert len(calls) == 1


def test_concurrent_builds_compile_once(cache, tmp_path):
    """Six processes build the same module at once: one compiler run, one module for all."""
    log = tmp_path / "cc.log"
    cc = tmp_path / "cc"
    cc.write_text(f"#!/bin/sh\necho run >> {log}\nsleep 0.5\nexec gcc \"$@\"\n")
    cc.chmod(0o755)
    source_file = tmp_path / "source.c"
    source_file.write_text(compile_source(SMALL % 4, "locked").native_source)
    script = ("import sys; from fabriclab.compiler import native_build; "
              f"print(native_build.build(open({str(source_file)!r}).read()))")
    env = dict(os.environ, CC=str(cc), FABRICLAB_CACHE=str(cache.parent))
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(6)]
    paths = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(paths) == 1 and Path(paths.pop()).exists()
    assert log.read_text().split() == ["run"]
    assert not list(cache.glob("*.tmp*"))                              # renamed into place


def test_cache_keeps_the_most_recently_used_modules(cache, monkeypatch):
    monkeypatch.setattr(native_build, "CACHE_LIMIT", 2)
    sources = [compile_source(SMALL % n, f"lru{n}").native_source for n in (5, 6, 7)]
    first, second = native_build.build(sources[0]), native_build.build(sources[1])
    os.utime(first, (1, 1)); os.utime(second, (2, 2))
    assert native_build.build(sources[0]) == first        # a hit makes it the most recent
    third = native_build.build(sources[2])                 # over the limit: the oldest goes
    assert first.exists() and third.exists() and not second.exists()
    assert not list(cache.glob(second.name.split(".")[0] + ".*"))   # with its .c and .lock


def test_compile_failure_and_missing_compiler_are_one_line(cache, monkeypatch):
    with pytest.raises(native_build.NativeUnavailable) as failed:
        native_build.build("this is not C;\n")
    assert "\n" not in str(failed.value) and "failed" in str(failed.value)
    monkeypatch.setenv("CC", "/nonexistent/gcc")
    with pytest.raises(native_build.NativeUnavailable):
        native_build.build("int x;\n")


def test_unsupported_program_falls_back_to_python_with_a_log_line(cache, caplog):
    compiled = compile_source(SIGNED % 1, "signed")
    assert "action parameter by of shift in a table" in compiled.native_problem
    with caplog.at_level(logging.INFO, logger="fabriclab.v1model.loader"):
        p = instantiate(compiled, engine="auto")
    assert p.engine.name == "python"
    lines = [r.getMessage() for r in caplog.records if "Python engine" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("signed runs on the Python engine: unsupported: action parameter by")
    frame = bytes(12) + b"\x08\x02"
    assert p.process(frame, 1) == [(2, bytes(11) + b"\x01" + b"\x08\x02")]
    with pytest.raises(UserError, match="native engine is not available.*action parameter by"):
        instantiate(compiled, engine="native")


def test_engine_native_on_the_command_line_is_one_line_exit_2(tmp_path):
    program = tmp_path / "signed.p4"
    program.write_text(SIGNED % 1)
    stf = tmp_path / "signed.stf"
    stf.write_text("packet 1 000000000000 000000000000 0802\nexpect 2 000000000000 000000000001 0802\n")
    env = dict(os.environ, FABRICLAB_CACHE=str(tmp_path / "cache"))
    for engine, code in (("native", 2), ("auto", 0), ("python", 0)):
        proc = subprocess.run([sys.executable, "-m", "fabriclab", "stf", "--engine", engine, str(program), str(stf)],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == code, proc.stderr
        if code == 2:
            assert len(proc.stderr.strip().splitlines()) == 1
            assert "native engine is not available" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_engine_is_a_user_error():
    with pytest.raises(UserError, match="unknown engine"):
        instantiate(compile_source(SMALL % 1, "small"), engine="turbo")


def test_compiled_output_directory_keeps_the_native_source(cache, tmp_path):
    from fabriclab.compiler import driver

    compiled = compile_source(SMALL % 5, "saved")
    driver.write_output(compiled, str(tmp_path / "out"))
    loaded = driver.load(str(tmp_path / "out"))
    assert loaded.native_source == compiled.native_source
    p = instantiate(loaded, engine="native")
    assert p.process(bytes(12) + b"\x08\x01", 0) == [(1, bytes(11) + b"\x05\x08\x01")]


def test_generated_source_is_self_contained_c():
    source = compile_source(SMALL % 1, "small").native_source
    assert source.count(native_build.MODULE_NAME_PLACEHOLDER) >= 2     # module name and init function
    assert '#include "native_runtime.h"' in textwrap.dedent(source)
