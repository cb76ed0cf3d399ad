"""STF packet tests (``fabriclab stf PROGRAM.p4 TEST.stf``), as p4c's BMv2 test runner reads them.

Statements (one per line, ``#`` starts a comment), following p4c's ``backends/bmv2/bmv2stf.py``:

* ``add <table> [prio] <key:value ...> <action>(<param:value, ...>)`` -- key values are
  decimal/hex/binary; ternary ``0x0a**`` (``*`` digits are wildcards) or ``value&&&mask``; lpm
  ``value/len`` or ``0x0a**`` (prefix = the non-wildcard digits); range ``lo->hi``; optional
  ``*`` = wildcard. A larger STF priority wins (P4Runtime convention; stored as prio + 1, so 0
  is valid). Names may be short: the table ``ipv4_lpm`` for ``MyIngress.ipv4_lpm``, the key
  ``ipv4.dstAddr`` for ``hdr.ipv4.dstAddr``, ``h$0.f`` for ``h[0].f``, ``h.valid`` for
  ``h.isValid()``.
* ``setdefault <table> <action>(...)``
* ``packet <port> <hex>`` and ``expect <port> [<hex with * wildcards>[$]]``: per port, the
  packets received must match the expectations in order; a received packet may be longer than
  the expectation unless it ends with ``$``; ``expect <port>`` alone accepts any packets there.
  Packets on ports without expectations fail the test.
* ``wait`` and ``no_packet`` (synchronisation for asynchronous runners) do nothing here.
* simple_switch_CLI commands: ``mirroring_add``, ``mirroring_add_mc``, ``mirroring_delete``,
  ``mc_mgrp_create``, ``mc_mgrp_destroy``, ``mc_node_create``, ``mc_node_destroy``,
  ``mc_node_associate``, ``mc_node_dissociate``, ``register_read/write/reset``,
  ``counter_read/write/reset``, ``meter_set_rates``.
* ``check_counter <counter>(<index>) packets|bytes <op> <number>`` (op: == != < <= > >=)
  checks an indirect counter at that point of the test; a false check fails the test.

Packets are processed one at a time with ``Pipeline.process`` on a virtual clock that
advances ``PACKET_SPACING_US`` per packet.
"""
from __future__ import annotations

import argparse
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path

from fabriclab.errors import UserError
from fabriclab.v1model.loader import instantiate

PACKET_SPACING_US = 1000
_COMPARISONS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
                ">=": operator.ge}
_PROGRAM_LINE = re.compile(r"^#\s*program:\s*(\S+)")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("program", help="the P4_16 v1model program (.p4, or a directory written by 'compile')")
    parser.add_argument("stf", help="the STF test file")
    parser.add_argument("-I", dest="include_dirs", action="append", default=[], metavar="DIR",
                        help="add a directory to the #include search path")
    parser.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME[=VALUE]",
                        help="define a preprocessor macro")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every packet sent and received")
    parser.add_argument("--engine", choices=("auto", "native", "python"), default="auto",
                        help="pipeline engine: compiled C, generated Python, or native when it builds (default)")


def run(args) -> int:
    defines = dict(d.split("=", 1) if "=" in d else (d, "1") for d in args.defines)
    result = run_stf(args.program, args.stf, include_dirs=args.include_dirs, defines=defines,
                     verbose=args.verbose, engine=args.engine)
    print(result.report())
    return 0 if result.passed else 1


# -- results ------------------------------------------------------------------------------


@dataclass
class Expectation:
    line: int
    pattern: str | None          # upper-case hex digits and '*'; None: any packets on the port
    exact_length: bool = False


@dataclass
class StfResult:
    passed: bool
    failures: list[str]                                   # one block of text per failing port
    received: dict[int, list[bytes]]
    log: list[str] = field(default_factory=list)          # output of *_read commands, verbose trace
    name: str = "stf"

    def report(self) -> str:
        lines = list(self.log)
        npackets = sum(len(v) for v in self.received.values())
        if self.passed:
            lines.append(f"PASS {self.name}: {npackets} packet(s) out, all as expected")
        else:
            lines.append(f"FAIL {self.name}:")
            lines.extend(self.failures)
        return "\n".join(lines)


def match_packet(pattern: str, exact_length: bool, data: bytes) -> tuple[str, int | None] | None:
    """None if ``data`` matches the expectation, else (what differs, hex digit where it starts)."""
    got = data.hex().upper()
    if len(got) < len(pattern):
        return f"packet too short: {len(data)} bytes, expected {len(pattern) // 2}", len(got)
    for i, (want, have) in enumerate(zip(pattern, got)):
        if want != "*" and want != have:
            return f"first difference at byte {i // 2}", i
    if exact_length and len(got) != len(pattern):
        return f"packet too long: {len(data)} bytes, expected exactly {len(pattern) // 2}", len(pattern)
    return None


def compare(expected: dict[int, list[Expectation]], received: dict[int, list[bytes]]) -> list[str]:
    """Per port, the differences between expectations and received packets (empty: pass)."""
    failures = []
    for port in sorted(set(expected) | set(received)):
        wanted = expected.get(port, [])
        got = received.get(port, [])
        if any(e.pattern is None for e in wanted):
            continue
        problems = []
        if len(wanted) != len(got):
            problems.append(f"  expected {len(wanted)} packet(s), got {len(got)}")
        for i in range(max(len(wanted), len(got))):
            exp = wanted[i] if i < len(wanted) else None
            data = got[i] if i < len(got) else None
            if exp is not None and data is not None:
                mismatch = match_packet(exp.pattern, exp.exact_length, data)
                if mismatch is None:
                    continue
                why, column = mismatch
                problems.append(f"  packet {i} (expect on line {exp.line}): {why}")
                problems.append(f"    expected: {exp.pattern}{'$' if exp.exact_length else ''}")
                problems.append(f"    got:      {data.hex().upper()}")
                problems.append("              " + " " * column + "^")
            elif exp is not None:
                problems.append(f"  packet {i} (expect on line {exp.line}): missing")
                problems.append(f"    expected: {exp.pattern}")
            else:
                problems.append(f"  packet {i}: unexpected")
                problems.append(f"    got:      {data.hex().upper()}")
        if problems:
            failures.append(f"port {port}:\n" + "\n".join(problems))
    return failures


# -- value parsing ------------------------------------------------------------------------

_BASES = {"0x": (16, 4), "0b": (2, 1), "0o": (8, 3)}


def parse_int(text: str) -> int:
    try:
        return int(text.replace("_", ""), 0)
    except ValueError:
        raise UserError(f"not a number: {text!r}") from None


def _split_base(text: str) -> tuple[str, int, int] | None:
    """(digits, base, bits per digit) for a prefixed literal, None for decimal."""
    prefix = text[:2].lower()
    if prefix in _BASES:
        base, bits = _BASES[prefix]
        return text[2:], base, bits
    return None


def parse_ternary(text: str, width: int) -> tuple[int, int]:
    full = (1 << width) - 1
    if "&&&" in text:
        value, mask = (parse_int(part) for part in text.split("&&&", 1))
        return value & mask & full, mask & full
    split = _split_base(text)
    if split is None:
        return parse_int(text) & full, full
    digits, base, bits = split
    value = int(digits.replace("*", "0"), base)
    top_digit = format(base - 1, "x")   # f, 7 or 1
    mask = int("".join("0" if d == "*" else top_digit for d in digits), base)
    return value & mask & full, mask & full


def parse_lpm(text: str, width: int) -> tuple[int, int]:
    if "/" in text:
        value_text, plen_text = text.split("/", 1)
        value, plen = parse_int(value_text), parse_int(plen_text)
    else:
        split = _split_base(text)
        if split is None:
            value, plen = parse_int(text), width
        else:
            digits, base, bits = split
            value = int(digits.replace("*", "0"), base)
            plen = (len(digits) - digits.count("*")) * bits
    if not 0 <= plen <= width:
        raise UserError(f"prefix length {plen} outside 0..{width}")
    # simple_switch_CLI ignores the bits beyond the prefix; so does STF
    mask = ((1 << width) - 1) ^ ((1 << (width - plen)) - 1)
    return value & mask, plen


def parse_key_value(kind: str, width: int, text: str):
    if kind == "exact":
        return parse_int(text)
    if kind == "ternary":
        return parse_ternary(text, width)
    if kind == "lpm":
        return parse_lpm(text, width)
    if kind == "range":
        if "->" in text:
            lo, hi = text.split("->", 1)
            return parse_int(lo), parse_int(hi)
        value = parse_int(text)
        return value, value
    if kind == "optional":
        return None if text == "*" else parse_int(text)
    raise UserError(f"unsupported match kind {kind}")


def wildcard(kind: str, width: int):
    """The value of a key an ``add`` leaves out (bmv2stf's defaults: 0 for exact)."""
    return {"exact": 0, "ternary": (0, 0), "lpm": (0, 0), "range": (0, (1 << width) - 1),
            "optional": None}[kind]


def resolve_name(what: str, name: str, candidates) -> str:
    """A fully qualified name from a possibly shorter one, as bmv2stf resolves by suffix."""
    candidates = list(candidates)
    if name in candidates:
        return name
    found = [c for c in candidates if c.endswith("." + name)]
    if len(found) == 1:
        return found[0]
    if found:
        raise UserError(f"{what} {name!r} is ambiguous: {', '.join(sorted(found))}")
    raise UserError(f"no {what} {name!r}")


def canonical_key_name(name: str) -> str:
    name = re.sub(r"\$(\d+)", r"[\1]", name)                   # h$0.f -> h[0].f (bmv2stf)
    for suffix in (".$valid$", ".valid"):
        if name.endswith(suffix):
            return name[: -len(suffix)] + ".isValid()"
    return name


# -- the runner -----------------------------------------------------------------------------


class StfRunner:
    """Runs STF statements against a pipeline (anything with ``info``, ``state``, ``process``)."""

    def __init__(self, pipeline, name: str = "stf", verbose: bool = False):
        self.pipeline = pipeline
        self.state = pipeline.state
        self.info = pipeline.info
        self.name = name
        self.verbose = verbose
        self.expected: dict[int, list[Expectation]] = {}
        self.received: dict[int, list[bytes]] = {}
        self.log: list[str] = []
        self.now_us = 0
        self.line_number = 0
        self.check_failures: list[str] = []
        self._mc_nodes: dict[int, tuple[int, list[int]]] = {}   # node handle -> (rid, ports)
        self._mc_members: dict[int, list[int]] = {}            # group -> node handles
        self._next_node = 0

    def run_text(self, text: str) -> StfResult:
        from fabriclab.v1model.tables import StateError

        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            try:
                self.execute(number, line)
            except StateError as exc:
                raise UserError(f"{self.name}:{number}: {exc}") from None
            except UserError as exc:
                raise UserError(f"{self.name}:{number}: {exc}") from None
        return self.result()

    def result(self) -> StfResult:
        failures = self.check_failures + compare(self.expected, self.received)
        return StfResult(not failures, failures, self.received, self.log, self.name)

    def execute(self, number: int, line: str) -> None:
        verb, _, rest = line.partition(" ")
        rest = rest.strip()
        handler = getattr(self, "_do_" + verb.lower(), None)
        if handler is None:
            raise UserError(f"unknown STF command {verb!r}")
        self.line_number = number
        handler(rest)

    # -- packets
    def _do_packet(self, rest: str) -> None:
        port_text, _, data = rest.partition(" ")
        port = parse_int(port_text)
        hex_text = "".join(data.split())
        try:
            frame = bytes.fromhex(hex_text)
        except ValueError:
            raise UserError(f"bad packet data {hex_text!r}") from None
        self.now_us += PACKET_SPACING_US
        if self.verbose:
            self.log.append(f"packet in  port {port}: {frame.hex().upper()}")
        try:
            outputs = self.pipeline.process(frame, port, self.now_us)
        except Exception as exc:     # as a running switch does: the packet is dropped, with why
            from fabriclab.v1model.runtime import packet_failure
            self.log.append(f"{self.name}:{self.line_number}: packet dropped: {packet_failure(exc)}")
            return
        for out_port, out in outputs:
            self.received.setdefault(out_port, []).append(bytes(out))
            if self.verbose:
                self.log.append(f"packet out port {out_port}: {bytes(out).hex().upper()}")

    def _do_expect(self, rest: str) -> None:
        port_text, _, data = rest.partition(" ")
        port = parse_int(port_text)
        pattern = "".join(data.split()).upper()
        exact = pattern.endswith("$")
        pattern = pattern.rstrip("$")
        if pattern and not re.fullmatch(r"[0-9A-F*]+", pattern):
            raise UserError(f"bad expected packet {pattern!r}")
        self.expected.setdefault(port, []).append(Expectation(self.line_number, pattern or None, exact))

    def _do_wait(self, rest: str) -> None:
        pass

    def _do_no_packet(self, rest: str) -> None:
        pass

    # -- tables
    def _table(self, name: str):
        return self.state.tables[resolve_name("table", name, self.state.tables)]

    def _action_call(self, table, text: str):
        from fabriclab.v1model.tables import ActionCall

        m = re.fullmatch(r"\s*([\w.$]+)\s*\((.*)\)\s*(=.*)?", text)
        if not m:
            raise UserError(f"expected <action>(<param:value, ...>), got {text!r}")
        name = resolve_name("action", m.group(1), [ref.name for ref in table.info.actions])
        action = self.info.actions.get(name)
        given = {}
        for item in filter(None, (part.strip() for part in m.group(2).split(","))):
            key, sep, value = item.partition(":")
            if not sep:
                raise UserError(f"expected param:value, got {item!r}")
            given[key.strip()] = parse_int(value.strip())
        params = [p.name for p in action.params] if action is not None else list(given)
        unknown = set(given) - set(params)
        missing = [p for p in params if p not in given]
        if unknown or missing:
            raise UserError(f"action {name}: unknown {sorted(unknown)} / missing {missing} parameters")
        return ActionCall(name, tuple(given[p] for p in params))

    def _do_add(self, rest: str) -> None:
        from fabriclab.v1model.tables import TableEntry

        head, paren, tail = rest.partition("(")
        words = head.split()
        if not paren or len(words) < 2:
            raise UserError("expected: add <table> [priority] <key:value ...> <action>(<args>)")
        table = self._table(words[0])
        if table.profile is not None:
            raise UserError(f"table {table.info.name} uses action profile {table.profile.info.name}; "
                            f"STF 'add' writes direct actions only")
        words = words[1:]
        priority = None
        if words and re.fullmatch(r"\d+", words[0]):
            priority = int(words.pop(0))
        action_text = words.pop() + paren + tail
        keys = table.match_keys
        by_name = {k.name: i for i, k in enumerate(keys)}
        match = [wildcard(k.match_kind, k.bitwidth) for k in keys]
        for word in words:
            key_name, sep, value = word.partition(":")
            if not sep:
                raise UserError(f"expected key:value, got {word!r}")
            index = by_name[resolve_name("key", canonical_key_name(key_name), by_name)]
            key = keys[index]
            match[index] = parse_key_value(key.match_kind, key.bitwidth, value)
        entry_priority = (priority or 0) + 1 if table.needs_priority else 0
        table.insert(TableEntry(tuple(match), entry_priority, action=self._action_call(table, action_text)))

    def _do_setdefault(self, rest: str) -> None:
        name, _, action_text = rest.partition(" ")
        table = self._table(name)
        table.set_default(self._action_call(table, action_text))

    # -- simple_switch_CLI: replication
    def _do_mirroring_add(self, rest: str) -> None:
        from fabriclab.v1model.pre import CloneSession

        session, port = (parse_int(w) for w in rest.split())
        self.state.pre.clone_sessions.pop(session, None)    # simple_switch overwrites
        self.state.pre.insert_clone_session(CloneSession(session, egress_port=port))

    def _do_mirroring_add_mc(self, rest: str) -> None:
        from fabriclab.v1model.pre import CloneSession

        session, group = (parse_int(w) for w in rest.split())
        self.state.pre.clone_sessions.pop(session, None)
        self.state.pre.insert_clone_session(CloneSession(session, mgid=group))

    def _do_mirroring_delete(self, rest: str) -> None:
        self.state.pre.delete_clone_session(parse_int(rest))

    def _do_mc_mgrp_create(self, rest: str) -> None:
        group = parse_int(rest)
        self.state.pre.insert_multicast_group(group, [])
        self._mc_members[group] = []

    def _do_mc_mgrp_destroy(self, rest: str) -> None:
        group = parse_int(rest)
        self.state.pre.delete_multicast_group(group)
        self._mc_members.pop(group, None)

    def _do_mc_node_create(self, rest: str) -> None:
        words = [parse_int(w) for w in rest.split()]
        if not words:
            raise UserError("expected: mc_node_create <rid> <port ...>")
        handle = self._next_node
        self._next_node += 1
        self._mc_nodes[handle] = (words[0], words[1:])
        self.log.append(f"mc_node_create: node handle {handle}")

    def _do_mc_node_destroy(self, rest: str) -> None:
        handle = parse_int(rest)
        if self._mc_nodes.pop(handle, None) is None:
            raise UserError(f"no multicast node {handle}")
        for group, handles in self._mc_members.items():
            if handle in handles:
                handles.remove(handle)
                self._sync_group(group)

    def _do_mc_node_associate(self, rest: str) -> None:
        group, handle = (parse_int(w) for w in rest.split())
        if handle not in self._mc_nodes or group not in self._mc_members:
            raise UserError(f"no multicast group {group} or node {handle}")
        self._mc_members[group].append(handle)
        self._sync_group(group)

    def _do_mc_node_dissociate(self, rest: str) -> None:
        group, handle = (parse_int(w) for w in rest.split())
        if handle not in self._mc_members.get(group, []):
            raise UserError(f"node {handle} is not in multicast group {group}")
        self._mc_members[group].remove(handle)
        self._sync_group(group)

    def _sync_group(self, group: int) -> None:
        replicas = []
        for handle in self._mc_members[group]:
            rid, ports = self._mc_nodes[handle]
            replicas.extend((port, rid) for port in ports if (port, rid) not in replicas)
        self.state.pre.modify_multicast_group(group, replicas)

    # -- simple_switch_CLI: externs
    def _extern(self, kind: str, pool: dict, name: str):
        return pool[resolve_name(kind, name, pool)]

    def _do_register_read(self, rest: str) -> None:
        name, index = rest.split()
        register = self._extern("register", self.state.registers, name)
        self.log.append(f"{register.info.name}[{index}] = {register.read(parse_int(index))}")

    def _do_register_write(self, rest: str) -> None:
        name, index, value = rest.split()
        self._extern("register", self.state.registers, name).write(parse_int(index), parse_int(value))

    def _do_register_reset(self, rest: str) -> None:
        self._extern("register", self.state.registers, rest.strip()).reset()

    def _do_counter_read(self, rest: str) -> None:
        name, index = rest.split()
        counter = self._extern("counter", self.state.counters, name)
        packets, nbytes = counter.read(parse_int(index))
        self.log.append(f"{counter.info.name}[{index}] = (packets={packets}, bytes={nbytes})")

    def _do_counter_write(self, rest: str) -> None:
        name, index, packets, nbytes = rest.split()
        self._extern("counter", self.state.counters, name).write(parse_int(index), parse_int(packets),
                                                                 parse_int(nbytes))

    def _do_counter_reset(self, rest: str) -> None:
        self._extern("counter", self.state.counters, rest.strip()).reset()

    def _do_check_counter(self, rest: str) -> None:
        m = re.fullmatch(r"([\w.$]+)\s*\(\s*(\w+)\s*\)\s+(packets|bytes)\s*(==|!=|<=|>=|<|>)\s*(\w+)", rest)
        if not m:
            raise UserError("expected: check_counter <counter>(<index>) packets|bytes <op> <number>")
        name, index, unit, op, number = m.groups()
        counter = self._extern("counter", self.state.counters, name)
        packets, nbytes = counter.read(parse_int(index))
        value = packets if unit == "packets" else nbytes
        if not _COMPARISONS[op](value, parse_int(number)):
            self.check_failures.append(f"check_counter on line {self.line_number}: {counter.info.name}[{index}] "
                                       f"{unit} is {value}, expected {op} {number}")

    def _do_meter_set_rates(self, rest: str) -> None:
        words = rest.split()
        if len(words) != 4:
            raise UserError("expected: meter_set_rates <meter> <index> <cir>:<cburst> <pir>:<pburst>")
        meter = self._extern("meter", self.state.meters, words[0])
        (cir, cburst), (pir, pburst) = (w.split(":", 1) for w in words[2:])
        meter.set_rates(parse_int(words[1]), (float(cir), parse_int(cburst)), (float(pir), parse_int(pburst)))


def program_of(stf_path: str | Path) -> Path | None:
    """The program an STF file names in a ``# program: PATH`` line (relative to the STF file)."""
    path = Path(stf_path)
    for line in path.read_text().splitlines():
        m = _PROGRAM_LINE.match(line.strip())
        if m:
            return (path.parent / m.group(1)).resolve()
        if line.strip() and not line.strip().startswith("#"):
            break
    return None


def run_stf_on(pipeline, stf_path: str | Path, verbose: bool = False) -> StfResult:
    """Run an STF file against an instantiated pipeline."""
    path = Path(stf_path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    return StfRunner(pipeline, path.name, verbose).run_text(text)


def run_stf(program_path: str | Path | None, stf_path: str | Path, include_dirs=(), defines=None,
            verbose: bool = False, engine: str | None = None) -> StfResult:
    """Compile the program (or the one the STF file names, if None) and run the STF test.

    ``program_path`` may also be a directory written by ``fabriclab compile``; ``engine`` is
    ``CompiledProgram.instantiate``'s.
    """
    if program_path is None:
        program_path = program_of(stf_path)
        if program_path is None:
            raise UserError(f"{stf_path}: no '# program: PATH' line names the program to test")
    if not Path(program_path).exists():
        raise UserError(f"no such program: {program_path}")
    from fabriclab.compiler import driver   # the whole front-end: import only when compiling
    from fabriclab.compiler.diagnostics import CompileError

    try:
        if Path(program_path).is_dir():     # a directory written by `fabriclab compile`
            compiled = driver.load(str(program_path))
        else:
            compiled = driver.compile_file(str(program_path), list(include_dirs), dict(defines or {}))
    except CompileError as exc:
        raise UserError(f"{program_path} does not compile: {exc}") from None
    return run_stf_on(instantiate(compiled, engine=engine), stf_path, verbose)
