"""``fabriclab compile PROGRAM.p4 [-o DIR] [-I DIR] [-D NAME[=VAL]] [--check]``.

Compiles a P4_16 v1model program to the Python pipeline fabriclab's switch runs (and its
P4Info). ``--check`` stops after checking the program and writes nothing. Errors in the
program are printed as ``file:line:col: error: message`` with the source line and a caret
(exit code 1).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from fabriclab.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("program", help="the P4_16 program (.p4)")
    parser.add_argument("-o", "--output", metavar="DIR", default=None,
                        help="output directory (default: build/<program name>)")
    parser.add_argument("-I", dest="include_dirs", metavar="DIR", action="append", default=[],
                        help="also search DIR for #include files (repeatable)")
    parser.add_argument("-D", dest="defines", metavar="NAME[=VAL]", action="append", default=[],
                        help="define a preprocessor macro (VAL defaults to 1; repeatable)")
    parser.add_argument("--check", action="store_true", help="only check the program; write nothing")


def parse_defines(items: list[str]) -> dict[str, str]:
    """``["A", "B=2"]`` -> ``{"A": "1", "B": "2"}``."""
    defines = {}
    for item in items:
        name, _, value = item.partition("=")
        if not name.isidentifier():
            raise UserError(f"-D {item}: '{name}' is not a valid macro name")
        defines[name] = value if "=" in item else "1"
    return defines


def run(args: argparse.Namespace) -> int:
    from fabriclab.compiler.diagnostics import CompileError

    if not os.path.isfile(args.program):
        raise UserError(f"{args.program}: no such file")
    for folder in args.include_dirs:
        if not os.path.isdir(folder):
            raise UserError(f"-I {folder}: no such directory")
    defines = parse_defines(args.defines)
    try:
        compiler = importlib.import_module("fabriclab.compiler.driver")
    except ModuleNotFoundError as exc:
        if exc.name != "fabriclab.compiler.driver":
            raise
        compiler = None
    try:
        if compiler is None:
            # Without the back-end only the front-end can run: preprocess and parse.
            if not args.check:
                raise UserError("the compiler back-end (fabriclab.compiler.driver) is not installed; "
                                "only --check (syntax) is available")
            from fabriclab.compiler.parser import parse_file
            parse_file(args.program, include_dirs=args.include_dirs, defines=defines)
            print(f"{args.program}: syntax OK (type checking needs the compiler back-end)")
            return 0
        compiled = compiler.compile_file(args.program, include_dirs=args.include_dirs, defines=defines)
        if args.check:
            print(f"{args.program}: OK")
            return 0
        name = os.path.splitext(os.path.basename(args.program))[0]
        out_dir = args.output or os.path.join("build", name)
        compiler.write_output(compiled, out_dir)
        print(f"{args.program}: compiled to {out_dir}")
        return 0
    except CompileError as exc:
        print(exc.format(), file=sys.stderr)
        return exc.exit_code
