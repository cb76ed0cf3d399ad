"""A P4 program in-process, for checkers that need packets but no network: compile it, load a
switch's ``sN-runtime.json`` into its state, send frames through ingress and egress.

``send`` is the pipeline with empty queues (as STF tests run); ``send_queued`` lets egress see
a chosen queue (``enq_qdepth`` packets ahead, ``deq_timedelta`` µs waited), what ECN marking and
telemetry act on. Compile errors become a ``UserError`` with the compiler's first line.
"""
from __future__ import annotations

import functools
from pathlib import Path

from fabriclab.errors import UserError


def compile_program(path: Path):
    """The compiled program; a compile error becomes a UserError with the compiler's first line
    (what `lab start` shows before bringing anything up)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such program")
    return _compiled(str(path), path.stat().st_mtime)


@functools.lru_cache(maxsize=16)
def _compiled(path: str, mtime: float):
    from fabriclab.compiler.diagnostics import CompileError
    from fabriclab.compiler.driver import compile_file

    try:
        return compile_file(path)
    except CompileError as exc:
        raise UserError(str(exc).splitlines()[0]) from None


class PipelineBench:
    def __init__(self, program: Path, runtime: Path | None = None):
        from fabriclab.labs import runtime_json
        from fabriclab.v1model.loader import instantiate

        self.program = Path(program)
        # the Python engine: the reference semantics, and no C build for a one-off check
        self.pipeline = instantiate(compile_program(self.program), engine="python")
        if runtime is not None:
            runtime_json.apply_state(self.pipeline.state, runtime_json.load(runtime))

    @property
    def state(self):
        return self.pipeline.state

    def send(self, frame: bytes, port: int, now_us: int = 0) -> list[tuple[int, bytes]]:
        return [(p, bytes(f)) for p, f in self.pipeline.process(frame, port, now_us)]

    def send_queued(self, frame: bytes, port: int, enq_qdepth: int, deq_timedelta: int = 0,
                    now_us: int = 0) -> list[tuple[int, bytes]]:
        from fabriclab.v1model.pipeline import QueueMeta

        out = []
        for job in self.pipeline.ingress(frame, port, now_us):
            meta = QueueMeta(now_us + deq_timedelta, now_us, enq_qdepth, deq_timedelta, enq_qdepth)
            out += [(p, bytes(f)) for p, f in self.pipeline.egress(job, meta).frames]
        return out


def bench_for(run, program: str, runtime: str | None = None):
    """A checker's first check: the run's program compiles and its runtime JSON loads. Yields
    that check and returns the bench, or None if it failed (use with ``yield from``)."""
    from fabriclab.labs.checks import Check

    name = f"{program} compiles" + (f" and {runtime} loads into it" if runtime else "")
    try:
        bench = PipelineBench(run.file(program), run.file(runtime) if runtime else None)
    except UserError as exc:
        yield Check(name, False, str(exc))
        return None
    yield Check(name, True, f"{len(bench.state.tables)} tables")
    return bench
