"""AI collective communication patterns as flow schedules: flows between ranks with dependencies.

A ``Schedule`` is one iteration of a collective. A flow starts once every flow in its ``deps``
has been delivered; the runner repeats the schedule for each iteration with a gap between them.

Algorithms (S = message size in bytes, N = ranks; chunk c of S has S//N bytes, plus one for
the first S % N chunks, so every step moves exactly S bytes in total):

* ``allreduce`` — ring: reduce-scatter then all-gather, 2(N−1) steps; in step k rank r sends
  chunk (r − k) mod N to rank r+1. A step's send waits for the previous step's input from r−1
  and for r's own previous send (one QP per neighbour, NCCL-style without pipelining).
* ``allreduce-hd`` — halving-doubling (Rabenseifner; Thakur et al., IJHPCA 2005): recursive
  halving reduce-scatter (log2 N steps, partner r XOR N/2^(k+1), S/2^(k+1) bytes) then recursive
  doubling all-gather in reverse; N must be a power of two.
* ``allgather``, ``reducescatter`` — ring, N−1 steps of one chunk per rank.
* ``alltoall`` — every rank sends its chunk to every other rank, all at once.
* ``incast`` — ranks 1..N−1 each send S to rank 0 at once (N→1).
* ``background`` — each rank sends S to one other rank (a seeded derangement): long flows.

``load_trace`` replays a JSON trace (schema in its docstring).
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from fabriclab.errors import UserError
from fabriclab.units import parse_size


@dataclass(frozen=True)
class Flow:
    id: int
    src: int          # rank
    dst: int          # rank
    size: int         # bytes
    step: int         # step of the collective (for reports)
    deps: tuple[int, ...] = ()
    start_s: float = 0.0  # a flow without deps starts this long after its iteration begins


@dataclass
class Schedule:
    pattern: str
    ranks: int
    size: int                     # S: the collective's message size, the base of algbw
    flows: list[Flow] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return 1 + max((f.step for f in self.flows), default=-1)

    def bytes_per_step(self) -> list[int]:
        totals = [0] * self.steps
        for f in self.flows:
            totals[f.step] += f.size
        return totals


def chunk_sizes(size: int, ranks: int) -> list[int]:
    """Split S into N chunks that differ by at most one byte."""
    base, extra = divmod(size, ranks)
    return [base + (1 if c < extra else 0) for c in range(ranks)]


def _check(ranks: int, size: int) -> None:
    if ranks < 2:
        raise UserError(f"a collective needs at least 2 participants, got {ranks}")
    if size <= 0:
        raise UserError(f"message size must be positive, got {size}")


def ring(ranks: int, size: int, steps: int, pattern: str) -> Schedule:
    """``steps`` ring steps: rank r sends chunk (r − k) mod N to r+1, after its input arrived."""
    _check(ranks, size)
    chunks = chunk_sizes(size, ranks)
    sched = Schedule(pattern, ranks, size)
    previous: dict[int, int] = {}  # receiving rank -> id of the flow that fed it last step
    sent: dict[int, int] = {}      # sending rank -> id of its last flow
    for k in range(steps):
        current: dict[int, int] = {}
        for r in range(ranks):
            deps = tuple(d for d in (previous.get(r), sent.get(r)) if d is not None)
            flow = Flow(len(sched.flows), r, (r + 1) % ranks, chunks[(r - k) % ranks], k, deps)
            sched.flows.append(flow)
            current[flow.dst] = flow.id
            sent[r] = flow.id
        previous = current
    return sched


def ring_allreduce(ranks: int, size: int) -> Schedule:
    return ring(ranks, size, 2 * (ranks - 1), "allreduce")


def ring_allgather(ranks: int, size: int) -> Schedule:
    return ring(ranks, size, ranks - 1, "allgather")


def ring_reducescatter(ranks: int, size: int) -> Schedule:
    return ring(ranks, size, ranks - 1, "reducescatter")


def halving_doubling_allreduce(ranks: int, size: int) -> Schedule:
    _check(ranks, size)
    if ranks & (ranks - 1):
        raise UserError(f"halving-doubling all-reduce needs a power-of-two number of ranks, got {ranks}")
    rounds = ranks.bit_length() - 1
    sched = Schedule("allreduce-hd", ranks, size)
    # reduce-scatter halves the data each round; all-gather doubles it back in reverse order
    plan = [(ranks >> (k + 1), size >> (k + 1)) for k in range(rounds)]
    plan += [(distance, nbytes) for distance, nbytes in reversed(plan)]
    last_in: dict[int, int] = {}
    last_out: dict[int, int] = {}
    for step, (distance, nbytes) in enumerate(plan):
        current: dict[int, int] = {}
        for r in range(ranks):
            deps = tuple(d for d in (last_in.get(r), last_out.get(r)) if d is not None)
            flow = Flow(len(sched.flows), r, r ^ distance, max(1, nbytes), step, deps)
            sched.flows.append(flow)
            current[flow.dst] = flow.id
            last_out[r] = flow.id
        last_in = current
    return sched


def alltoall(ranks: int, size: int) -> Schedule:
    _check(ranks, size)
    chunks = chunk_sizes(size, ranks)
    sched = Schedule("alltoall", ranks, size)
    for r in range(ranks):
        for peer in range(ranks):
            if peer != r:
                sched.flows.append(Flow(len(sched.flows), r, peer, chunks[peer], 0))
    return sched


def incast(ranks: int, size: int) -> Schedule:
    _check(ranks, size)
    sched = Schedule("incast", ranks, size)
    for r in range(1, ranks):
        sched.flows.append(Flow(len(sched.flows), r, 0, size, 0))
    return sched


def background(ranks: int, size: int, seed: int = 1) -> Schedule:
    _check(ranks, size)
    rng = random.Random(seed)
    order = list(range(ranks))
    while True:  # a derangement: nobody sends to itself
        rng.shuffle(order)
        if all(order[r] != r for r in range(ranks)):
            break
    sched = Schedule("background", ranks, size)
    for r in range(ranks):
        sched.flows.append(Flow(len(sched.flows), r, order[r], size, 0))
    return sched


PATTERNS = {
    "allreduce": ring_allreduce,
    "allreduce-hd": halving_doubling_allreduce,
    "allgather": ring_allgather,
    "reducescatter": ring_reducescatter,
    "alltoall": alltoall,
    "incast": incast,
    "background": background,
}


def build(pattern: str, ranks: int, size: int) -> Schedule:
    try:
        factory = PATTERNS[pattern]
    except KeyError:
        raise UserError(f"unknown pattern {pattern!r}; choose one of {', '.join(PATTERNS)} or a .json trace") from None
    return factory(ranks, size)


def load_trace(path: str | Path) -> Schedule:
    """Read a JSON trace. Schema::

        {"name": "my-job",                      # optional, reported as the pattern
         "ranks": 4,                            # optional; default 1 + the highest rank used
         "size": "8MB",                         # optional: the base of algbw; default: all bytes / ranks
         "phases": [                            # run in order ...
           {"flows": [{"id": "a0",              # optional, unique; needed only to be named in "after"
                       "src": 0, "dst": 1,      # ranks (indexes into --hosts)
                       "size": "1MB",           # int bytes or a size string
                       "after": ["x"]}],        # optional: extra flow ids this flow waits for
            "barrier": true}]}                  # optional (default true): wait for the whole previous phase

    A flow in a phase with ``barrier`` waits for every flow of the previous phase.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read trace {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"trace {path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("phases"), list) or not doc["phases"]:
        raise UserError(f"trace {path}: expected an object with a non-empty 'phases' list")
    flows: list[Flow] = []
    ids: dict[str, int] = {}
    pending_after: list[tuple[int, list]] = []
    previous_phase: list[int] = []
    for p, phase in enumerate(doc["phases"]):
        where = f"trace {path}: phase {p}"
        if not isinstance(phase, dict) or not isinstance(phase.get("flows"), list) or not phase["flows"]:
            raise UserError(f"{where}: expected an object with a non-empty 'flows' list")
        barrier = phase.get("barrier", True)
        if not isinstance(barrier, bool):
            raise UserError(f"{where}: 'barrier' must be true or false")
        this_phase: list[int] = []
        for i, spec in enumerate(phase["flows"]):
            at = f"{where} flow {i}"
            if not isinstance(spec, dict):
                raise UserError(f"{at}: expected an object")
            for key in ("src", "dst", "size"):
                if key not in spec:
                    raise UserError(f"{at}: missing '{key}'")
            src, dst = spec["src"], spec["dst"]
            if not (isinstance(src, int) and isinstance(dst, int)) or src < 0 or dst < 0:
                raise UserError(f"{at}: 'src' and 'dst' must be non-negative rank numbers")
            if src == dst:
                raise UserError(f"{at}: 'src' and 'dst' are the same rank {src}")
            size = parse_size(spec["size"], f"{at} size")
            if size <= 0:
                raise UserError(f"{at}: size must be positive")
            fid = len(flows)
            if "id" in spec:
                name = str(spec["id"])
                if name in ids:
                    raise UserError(f"{at}: duplicate flow id {name!r}")
                ids[name] = fid
            after = spec.get("after", [])
            if not isinstance(after, list):
                raise UserError(f"{at}: 'after' must be a list of flow ids")
            pending_after.append((fid, after))
            deps = tuple(previous_phase) if barrier else ()
            flows.append(Flow(fid, src, dst, size, p, deps))
            this_phase.append(fid)
        previous_phase = this_phase
    for fid, after in pending_after:
        extra = []
        for name in after:
            if str(name) not in ids:
                raise UserError(f"trace {path}: flow {fid} waits for unknown flow id {name!r}")
            extra.append(ids[str(name)])
        if extra:
            f = flows[fid]
            flows[fid] = Flow(f.id, f.src, f.dst, f.size, f.step, tuple(dict.fromkeys(f.deps + tuple(extra))))
    _check_acyclic(flows, path)
    ranks = doc.get("ranks", 1 + max(max(f.src, f.dst) for f in flows))
    if not isinstance(ranks, int) or ranks < 2 or any(max(f.src, f.dst) >= ranks for f in flows):
        raise UserError(f"trace {path}: 'ranks' must be an integer >= 2 covering every src/dst")
    total = sum(f.size for f in flows)
    size = parse_size(doc["size"], f"trace {path} size") if "size" in doc else total // ranks
    return Schedule(str(doc.get("name", path.stem)), ranks, size, flows)


def _check_acyclic(flows: list[Flow], path: Path) -> None:
    state = [0] * len(flows)  # 0 unvisited, 1 on the stack, 2 done
    for start in range(len(flows)):
        stack = [(start, iter(flows[start].deps))]
        if state[start]:
            continue
        state[start] = 1
        while stack:
            node, deps = stack[-1]
            for d in deps:
                if state[d] == 1:
                    raise UserError(f"trace {path}: dependency cycle through flow {d}")
                if state[d] == 0:
                    state[d] = 1
                    stack.append((d, iter(flows[d].deps)))
                    break
            else:
                state[node] = 2
                stack.pop()
