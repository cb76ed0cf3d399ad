"""A compiled program becomes a running ``Pipeline``: the engine is chosen and bound here.

``instantiate`` gives each caller (a switch, STF, a test) its own pipeline with empty runtime
state, on the native engine (the program's C extension, built and cached by
``compiler/native_build.py``) or on the Python engine (the generated ``build(S, RT)``).
"""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from fabriclab.compiler.native_build import NativeUnavailable, load as load_native
from fabriclab.errors import UserError
from fabriclab.v1model import runtime
from fabriclab.v1model.pipeline import NativeEngine, Pipeline
from fabriclab.v1model.state import RuntimeState

if TYPE_CHECKING:   # the front-end is heavy: a switch loading a compiled directory needs none of it
    from fabriclab.compiler.driver import CompiledProgram

ENGINES = ("auto", "native", "python")
log = logging.getLogger(__name__)


def instantiate(compiled: "CompiledProgram", cpu_port: int | None = None, engine: str | None = None) -> Pipeline:
    """A new pipeline with its own, empty runtime state.

    ``engine``: ``python``, ``native`` (UserError if it cannot be built) or ``auto`` (native
    when it can be built, else Python with one INFO line saying why); None means
    ``$FABRICLAB_ENGINE``, else ``auto``.
    """
    engine = engine or os.environ.get("FABRICLAB_ENGINE") or "auto"
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    info = compiled.info
    state = RuntimeState(info)
    if engine != "python":
        problem = compiled.native_problem
        if problem is None:
            try:
                module = load_native(compiled.native_source)
                log.info("%s runs on the native engine", info.name)
                return Pipeline(info, None, state, cpu_port, NativeEngine(module, state))
            except NativeUnavailable as exc:
                problem = str(exc)
        if engine == "native":
            raise UserError(f"{info.name}: the native engine is not available: {problem}")
        log.info("%s runs on the Python engine: %s", info.name, problem)
    return Pipeline(info, compiled.build(state, runtime), state, cpu_port)
