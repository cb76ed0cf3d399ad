"""``fabriclab bench pipeline``: per-packet cost of the compiled pipeline, per program.

For every ``p4/*.p4`` program and ``bench/programs/trivial.p4`` (the baseline: parse Ethernet,
set egress_spec) the benchmark compiles and instantiates the program, runs its setup file
``bench/programs/<name>.stf`` (STF statements that install representative table entries, plus
``packet`` lines: the frames to time), checks that every frame is forwarded out of exactly one
port (so the timed path is the realistic one, not an early drop), then calls
``Pipeline.process`` on the frames in turn, in batches. The figure is the median over batches
of the mean time per packet: the median keeps out batches another process on the machine
interrupted. Every program is measured on both engines (the generated Python and the native C
extension, ``compiler/native_codegen.py``): a column pair and a JSON object per engine.
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from fabriclab import P4_DIR
from fabriclab.errors import UserError
from fabriclab.v1model.loader import instantiate

PROGRAMS_DIR = P4_DIR
SETUP_DIR = Path(__file__).resolve().parent / "programs"
MIN_BATCHES = 10
MAX_BATCH = 1000


@dataclass
class TimedFrame:
    port: int
    frame: bytes
    line: int


def benchmark_programs() -> list[Path]:
    """The programs to measure: the trivial baseline first, then every p4/*.p4."""
    return [SETUP_DIR / "trivial.p4", *sorted(PROGRAMS_DIR.glob("*.p4"))]


def setup_path(program: Path) -> Path:
    return SETUP_DIR / f"{program.stem}.stf"


def load_setup(pipeline, setup: Path) -> list[TimedFrame]:
    """Run the setup file's statements against ``pipeline``; return its ``packet`` frames."""
    from fabriclab.v1model.stf import StfRunner, parse_int
    from fabriclab.v1model.tables import StateError

    try:
        text = setup.read_text()
    except OSError as exc:
        raise UserError(f"cannot read {setup}: {exc.strerror}") from None
    runner = StfRunner(pipeline, setup.name)
    frames = []
    for number, raw_line in enumerate(text.splitlines(), 1):
        line = raw_line.split("#", 1)[0].strip()
        if not line:
            continue
        verb, _, rest = line.partition(" ")
        if verb.lower() == "packet":
            port_text, _, data = rest.strip().partition(" ")
            try:
                frame = bytes.fromhex("".join(data.split()))
            except ValueError:
                raise UserError(f"{setup.name}:{number}: bad packet data") from None
            frames.append(TimedFrame(parse_int(port_text), frame, number))
        else:
            try:
                runner.execute(number, line)
            except (StateError, UserError) as exc:
                raise UserError(f"{setup.name}:{number}: {exc}") from None
    if not frames:
        raise UserError(f"{setup.name}: no 'packet' lines: nothing to time")
    return frames


def check_forwarded(pipeline, frames: list[TimedFrame], setup: Path) -> None:
    """Every timed frame must leave on exactly one data port: a drop would time the short path."""
    for i, item in enumerate(frames):
        out = pipeline.process(item.frame, item.port, i + 1)
        ports = [port for port, _ in out]
        if len(out) != 1 or ports[0] == pipeline.cpu_port:
            raise UserError(f"{setup.name}:{item.line}: the frame is not forwarded to one port "
                            f"(out: {ports or 'dropped'}); fix the setup entries")


def batch_plan(packets: int) -> tuple[int, int]:
    """(packets per batch, batches): about ``packets`` in total, at least MIN_BATCHES batches."""
    batch = max(1, min(MAX_BATCH, packets // MIN_BATCHES))
    return batch, max(MIN_BATCHES, -(-packets // batch))


def time_batches(pipeline, frames: list[TimedFrame], packets: int, on_batch=None) -> list[float]:
    """Mean µs per packet of each batch (see ``batch_plan``)."""
    batch, batches = batch_plan(packets)
    work = [(f.frame, f.port) for f in frames]
    work = (work * (batch // len(work) + 1))[:batch]
    process = pipeline.process
    clock = time.perf_counter_ns
    now_us = 1_000_000
    means = []
    for _ in range(batches):
        start = clock()
        for frame, port in work:
            now_us += 1
            process(frame, port, now_us)
        means.append((clock() - start) / 1000 / batch)
        if on_batch is not None:
            on_batch()
    return means


def measure_program(program: Path, packets: int, on_batch=None, engine: str = "auto") -> dict:
    """{"us_per_packet", "pps", "packets", "batches"} of one program with its setup file, on
    ``engine`` (``CompiledProgram.instantiate``'s; UserError if native cannot be built)."""
    from fabriclab.compiler.driver import compile_file
    from fabriclab.compiler.diagnostics import CompileError

    setup = setup_path(program)
    if not setup.exists():
        raise UserError(f"{program.name}: no setup file {setup} (table entries and frames to time)")
    try:
        pipeline = instantiate(compile_file(str(program)), engine=engine)
    except CompileError as exc:
        raise UserError(f"{program} does not compile: {exc}") from None
    frames = load_setup(pipeline, setup)
    check_forwarded(pipeline, frames, setup)
    means = time_batches(pipeline, frames, packets, on_batch)
    us = statistics.median(means)
    batch, _ = batch_plan(packets)
    return {"us_per_packet": round(us, 3), "pps": round(1e6 / us), "packets": batch * len(means),
            "batches": len(means), "engine": pipeline.engine.name}


def measure_engines(program: Path, packets: int, on_batch=None) -> dict:
    """Both engines' figures under "python" and "native" (an "unavailable" reason when native
    cannot run the program); the top-level figures are the engine ``auto`` picks."""
    results = {"python": measure_program(program, packets, on_batch, "python")}
    try:
        results["native"] = measure_program(program, packets, on_batch, "native")
    except UserError as exc:
        results["native"] = {"unavailable": str(exc)}
    chosen = results["native"] if "us_per_packet" in results["native"] else results["python"]
    return {**chosen, **results}


def run(args: argparse.Namespace) -> dict:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    packets = args.packets
    if packets < 1:
        raise UserError("--packets must be at least 1")
    console = Console(stderr=True)
    programs = benchmark_programs()
    results = {}
    _, batches = batch_plan(packets)
    with Progress(console=console, transient=True) as progress:
        for program in programs:
            task = progress.add_task(f"pipeline {program.stem}", total=2 * batches)
            results[program.stem] = measure_engines(program, packets,
                                                    on_batch=lambda t=task: progress.advance(t))
    table = Table(title=f"compiled pipeline, Pipeline.process (median of {batches} batch means)")
    table.add_column("program")
    for engine in ("python", "native"):
        table.add_column(f"{engine} µs/packet", justify="right")
        table.add_column(f"{engine} packets/s", justify="right")
    for name, figures in results.items():
        cells = []
        for engine in ("python", "native"):
            f = figures[engine]
            cells += [f"{f['us_per_packet']:.2f}", f"{f['pps']:,}"] if "us_per_packet" in f else ["n/a", "n/a"]
        table.add_row(name, *cells)
    console.print(table)
    return {"programs": results}
