"""The repository foundation: one import name, the CLI, the install and CI entry points."""
from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fabriclab.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("package", ["compiler", "v1model", "p4runtime", "switch", "topologies", "controller", "traffic", "scenarios", "bench"])
def test_top_level_folders_import_under_fabriclab(package):
    module = importlib.import_module(f"fabriclab.{package}")
    assert Path(module.__file__).resolve().parent == ROOT / package


def test_every_subcommand_has_help():
    out = subprocess.run([sys.executable, "-m", "fabriclab", "--help"], capture_output=True, text=True, check=True)
    for name in COMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\b", out.stdout, re.M), name


@pytest.mark.parametrize("argv, message", [
    (["up", "--spines", "0", "--check"], "fabriclab up: error: leafspine needs at least 1 spine, got 0"),
    (["up", "--topo", "torus"], "fabriclab up: error: unknown topology 'torus'"),
    (["run", "nope"], "fabriclab run: error: no built-in scenario named 'nope'"),
    (["compile", "/nonexistent/x.p4"], "fabriclab compile: error: /nonexistent/x.p4: no such file"),
    (["bench", "nope"], "invalid choice: 'nope'"),
])
def test_bad_input_is_one_line_and_nonzero(argv, message):
    proc = subprocess.run([sys.executable, "-m", "fabriclab", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if "error" in line]) == 1


def test_ci_runs_exactly_make_test():
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[-1] == "exec make test"


def test_make_test_treats_no_tests_collected_as_failure():
    makefile = (ROOT / "Makefile").read_text()
    assert "-eq 5" in makefile and "venv --system-site-packages" in makefile
    assert "DEBIAN_FRONTEND=noninteractive" in makefile


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text()[:600]
    assert "make demo" in head and "make test" in head
