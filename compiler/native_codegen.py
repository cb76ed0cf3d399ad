"""Typed program -> C source of a CPython extension module: the native engine.

``codegen.py`` (the Python engine) is the reference: every construct below mirrors the Python
it generates, value for value (bit<W> wrap-around, int<W> two's complement, setValid zeroing,
stack shifts, parser errors, table dispatch, extern calls). Representation:

* each struct-like type is a C struct; header fields are stored in the narrowest unsigned (or
  signed, for int<W>) C integer that holds them plus a ``_valid`` byte; a header stack is
  ``{elements[size]; nxt}``; a header union is a struct of its headers;
* the packet is one Python object (``Ctx``): the v1model side (``FlHead``) then hdr, meta and
  standard_metadata by value, so copying a packet is a struct copy; the standard metadata
  fields are Python attributes of the object, and ``ctx.sm`` is the object itself, so the
  shared v1model glue in pipeline.py reads both engines' contexts alike;
* expressions are C expressions of type uint64_t / int64_t / int, or unsigned/signed
  __int128 for 65..128 bits (wider is not supported); reads of narrow fields are cast back;
* a control instance is a frame struct (its parameters, pointers for aggregates, and locals),
  one C function for its apply block, one per action and one per table;
* tables look up through the memo in native_runtime.h, which asks the Python ``Table`` on a
  miss; registers and counters are read and written in their Python lists; meters, random,
  digests, log_msg and assertions call the Python objects;
* a Python exception raised in a call-out unwinds to the entry point with longjmp, and so
  does P4 ``exit`` (to its top-level control).

Whatever is not mirrored raises ``NativeUnsupported``; the pipeline then runs on Python.
"""
from __future__ import annotations

from fabriclab.compiler import ast
from fabriclab.compiler.codegen import (
    ControlInstance, Emitter, annotation_ints, control_instances, instance_name, key_width, ones,
    qualified_name,
)
from fabriclab.compiler.typecheck import (
    ActionEntity, ActionRunT, ApplyResultT, BitT, BoolT, Const, EnumT, ErrorT, InstanceEntity, IntegerT,
    StackT, StructLikeT, TupleT, TypedProgram, ValueSetEntity, Var, VarbitT, flat_width, is_aggregate,
)

MODULE_NAME_PLACEHOLDER = "@FL_MODULE@"
C_HASHES = {"crc16": "FL_CRC16", "crc32": "FL_CRC32", "csum16": "FL_CSUM16", "xor16": "FL_XOR16",
            "identity": "FL_IDENTITY"}
# standard_metadata_t fields the v1model glue and the C entry points write
STANDARD_METADATA_NEEDED = ("ingress_port", "egress_spec", "egress_port", "instance_type", "packet_length",
                            "enq_timestamp", "enq_qdepth", "deq_timedelta", "deq_qdepth",
                            "ingress_global_timestamp", "egress_global_timestamp", "mcast_grp",
                            "egress_rid", "parser_error", "priority")


class NativeUnsupported(Exception):
    """A construct the native engine does not mirror; the message says what and where."""


def _unsupported(what: str, node=None) -> NativeUnsupported:
    loc = getattr(node, "loc", None)
    where = f" at {loc.file}:{loc.line}" if loc is not None else ""
    return NativeUnsupported(f"{what}{where}")


def _u64(v: int) -> str:
    return f"UINT64_C({v})"


MAX_WIDTH = 128     # values up to 64 bits are uint64_t/int64_t, up to 128 unsigned/signed __int128


def width_of(t) -> int:
    """The bits of a scalar value (error and plain enums are held in 32)."""
    if isinstance(t, BitT):
        return t.width
    if isinstance(t, BoolT):
        return 1
    if isinstance(t, EnumT) and t.underlying is not None:
        return t.underlying.width
    return 32


def utype(width: int) -> str:
    return "uint64_t" if width <= 64 else "fl_u128"


def stype(width: int) -> str:
    return "int64_t" if width <= 64 else "fl_s128"


def sfx(width: int) -> str:
    """The suffix of the runtime helper for values of this width (fl_shl_u, fl_shl_u128...)."""
    return "" if width <= 64 else "128"


def cmask(width: int) -> str:
    return cconst(ones(width))


def cconst(value: int) -> str:
    """An unsigned constant below 2**128."""
    if value < 1 << 64:
        return _u64(value)
    return f"FL_U128({_u64(value >> 64)}, {_u64(value & ones(64))})"


def ctype(t, node=None) -> str:
    """The C type of a scalar value in expressions."""
    if isinstance(t, BitT):
        if t.width > MAX_WIDTH:
            raise _unsupported(f"{t} (wider than {MAX_WIDTH} bits)", node)
        return stype(t.width) if t.signed else utype(t.width)
    if isinstance(t, BoolT):
        return "int"
    if isinstance(t, EnumT):
        if t.underlying is not None:
            return ctype(t.underlying, node)
        return "uint64_t"
    if isinstance(t, ErrorT):
        return "uint64_t"
    if isinstance(t, VarbitT) and t.max_width <= 64:
        return "FlVarbit"
    raise _unsupported(f"values of type {t}", node)


def zero(t) -> str:
    """A scalar's initial value in C."""
    return "(FlVarbit){0, 0}" if isinstance(t, VarbitT) else "0"


def storage_type(t, node=None) -> str:
    """The C type of a stored scalar (struct fields): the narrowest that holds the width."""
    if isinstance(t, BoolT):
        return "uint8_t"
    if isinstance(t, VarbitT):
        return ctype(t, node)
    if isinstance(t, EnumT):
        t = t.underlying or BitT(32)
    if isinstance(t, ErrorT):
        t = BitT(32)
    if not isinstance(t, BitT):
        raise _unsupported(f"fields of type {t}", node)
    if t.width > 64:
        return ctype(t, node)
    for bits in (8, 16, 32, 64):
        if t.width <= bits:
            return f"{'int' if t.signed else 'uint'}{bits}_t"
    raise AssertionError


def is_signed(t) -> bool:
    if isinstance(t, EnumT):
        t = t.underlying
    return isinstance(t, BitT) and t.signed


def c_field(name: str) -> str:
    return f"f_{name}"


def c_ident(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def c_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode())
    return '"' + "".join(out) + '"'


def literal(value, t, node=None) -> str:
    if isinstance(t, BoolT) or isinstance(value, bool):
        return "1" if value else "0"
    if not isinstance(value, int):
        raise _unsupported(f"constant {value!r}", node)
    if is_signed(t) or value < 0:
        if -(1 << 63) <= value < (1 << 63):
            if value == -(1 << 63):
                return "(-INT64_C(9223372036854775807) - 1)"
            return f"INT64_C({value})"
        if not -(1 << 127) <= value < (1 << 127):
            raise _unsupported(f"constant {value} beyond {MAX_WIDTH} bits", node)
        return f"((fl_s128){cconst(value & ones(128))})"
    if value >= 1 << 128:
        raise _unsupported(f"constant {value} beyond {MAX_WIDTH} bits", node)
    return cconst(value)


class NativeGenerator:
    def __init__(self, typed: TypedProgram, name: str):
        self.typed = typed
        self.name = name
        self.types: list[str] = []               # C type definitions, dependency order
        self.type_names: dict[str, str] = {}     # struct-like type name -> C struct name
        self.stack_types: dict[tuple, str] = {}
        self.protos: list[str] = []
        self.out = Emitter()
        self.tmp = 0
        self.instances = control_instances(typed)
        self.tables: list[tuple] = []            # (qualified name, nkeys, signed flags, memoize, actions)
        self.registers: dict[str, tuple[int, str]] = {}   # qualified name -> (index, spec)
        self.counters: dict[str, int] = {}
        self.objects: dict[tuple[str, str], int] = {}     # (collection, name) -> index
        self.top_action_fns: dict[int, str] = {}
        self.function_fns: dict[int, str] = {}
        self.loops: list[str] = []                  # labels of the enclosing for statements
        self.state_prefix, self.accept_label = "S", "accept"   # the parser being inlined
        self.ret_zero = "0"                         # what a value-returning function ends with
        self.uses_exit = False
        self.var_names: dict[Var, str] = {}
        # per function being generated
        self.vars: dict[Var, str] = {}           # Var -> C lvalue expression
        self.ctx = "ctx"                         # C expression of the Ctx pointer
        self.frame_type: str | None = None
        self.path: str | None = None
        self.action_fns: dict[int, str] = {}
        self.table_fns: dict[int, tuple[str, list[str]]] = {}
        self.child_instances: dict[int, ControlInstance] = {}
        self.outs: list[Var] = []
        self.returns_value = False
        self.sm_code: str | None = None
        self.in_parser = False

    def vn(self, v: Var) -> str:
        """The C name of a variable: numbered in order of appearance, so the same program
        always gives the same source (Var.pyname counts across every compilation)."""
        name = self.var_names.get(v)
        if name is None:
            name = self.var_names[v] = f"v{len(self.var_names)}_{c_ident(v.name)}"
        return name

    def fresh(self, base: str = "t") -> str:
        self.tmp += 1
        return f"_{base}{self.tmp}"

    # -- module ---------------------------------------------------------------------------

    def generate(self) -> str:
        for t in self.typed.types.values():
            self.struct_type(t) if isinstance(t, StructLikeT) else None
        parser, verify, ingress, egress, compute, deparser = self.typed.blocks
        hdr_t, meta_t, sm_t = (p.entity.type for p in ingress.params)
        for t in (hdr_t, meta_t, sm_t):
            if not isinstance(t, StructLikeT) or t.kind != "struct":
                raise _unsupported("ingress parameters that are not structs", ingress)
        if sm_t.name != "standard_metadata_t" or any(sm_t.field(f) is None for f in STANDARD_METADATA_NEEDED):
            raise _unsupported("a standard_metadata_t without the v1model fields", ingress)
        self.hdr_t, self.meta_t, self.sm_t = hdr_t, meta_t, sm_t
        for t in (hdr_t, meta_t, sm_t):
            self.struct_type(t)
        body = self.out
        for decl in self.typed.top_actions.values():
            self.top_action_fns[id(decl)] = f"a_{c_ident(decl.name)}"
        for decl in self.typed.functions.values():
            self.function_fns[id(decl)] = f"fn_{c_ident(decl.name)}"
        self.frames = {inst.index: self.frame_struct(inst) for inst in self.instances}
        for decl in self.typed.top_actions.values():
            self.emit_action(decl, None)
        for decl in self.typed.functions.values():
            self.emit_function(decl)
        self.emit_parser(parser)
        for inst in self.instances:
            self.emit_control_instance(inst)
        self.emit_deparser(deparser)
        self.emit_preserve(meta_t)
        roles = {}
        for role, block in (("verify_checksum", verify), ("ingress", ingress), ("egress", egress),
                            ("compute_checksum", compute)):
            inst = next(i for i in self.instances if i.decl is block and i.top)
            roles[role] = inst
        self.emit_block_runners(roles)
        return self.assemble(body)

    def assemble(self, body: Emitter) -> str:
        parts = [f"/* Generated by fabriclab from {self.name}.p4: the native engine. Do not edit. */",
                 '#include "native_runtime.h"', ""]
        parts += self.types
        parts.append("typedef struct Ctx {\n    PyObject_HEAD\n    FlHead h;\n"
                     f"    {self.type_names[self.hdr_t.name]} hdr;\n"
                     f"    {self.type_names[self.meta_t.name]} meta;\n"
                     f"    {self.type_names[self.sm_t.name]} sm;\n}} Ctx;\n")
        parts.append("typedef struct { int hit; int action; } FlApply;\n")
        parts.extend(self.frames.values())
        parts.append(self.runtime_specs())
        parts.extend(p + ";" for p in self.protos)
        parts.append("")
        parts.extend(body.lines)
        parts.append(self.ctx_type_code())
        return "\n".join(parts) + "\n"

    # -- types ----------------------------------------------------------------------------

    def struct_type(self, t) -> str:
        if isinstance(t, StackT):
            key = (t.element.name, t.size)
            if key not in self.stack_types:
                elem = self.struct_type(t.element)
                cname = f"K_{c_ident(t.element.name)}_{t.size}"
                self.types.append(f"typedef struct {{ {elem} hs[{t.size}]; uint64_t nxt; }} {cname};\n")
                self.stack_types[key] = cname
            return self.stack_types[key]
        if t.name in self.type_names:
            return self.type_names[t.name]
        lines = []
        for f in t.fields:
            if isinstance(f.type, (StructLikeT, StackT)):
                lines.append(f"    {self.struct_type(f.type)} {c_field(f.name)};")
            else:
                lines.append(f"    {storage_type(f.type)} {c_field(f.name)};")
        if t.kind == "header":
            lines.insert(0, "    uint8_t _valid;")
        if not lines:
            lines.append("    uint8_t _empty;")
        cname = f"T_{c_ident(t.name)}"
        self.types.append(f"typedef struct {cname} {{\n" + "\n".join(lines) + f"\n}} {cname};\n")
        self.type_names[t.name] = cname
        if t.kind == "header":
            self.types.append(self.header_codecs(t, cname))
        return cname

    def varbit_codecs(self, t: StructLikeT, cname: str) -> str:
        """A header with a varbit field: ``unpack(h, p, n)`` with the field n bits long, and
        ``pack(h, p)`` returning the bytes it wrote (the field at its current length)."""
        un, pk = [], []
        for f in t.fields:
            fld = f"h->{c_field(f.name)}"
            if isinstance(f.type, VarbitT):
                un.append(f"    {fld}.n = vlen; {fld}.v = vlen ? fl_get_bits(p, off, vlen) : 0; off += vlen;")
                pk.append(f"    if ({fld}.n) fl_put_bits(p, off, {fld}.n, {fld}.v); off += {fld}.n;")
                continue
            w = flat_width(f.type)
            raw = f"fl_get_bits{sfx(w)}(p, off, {w})"
            if isinstance(f.type, BoolT):
                raw = f"({raw} == 1)"
            elif is_signed(f.type):
                raw = f"fl_sext{sfx(w)}({raw}, {w})"
            un.append(f"    {fld} = {raw}; off += {w};")
            pk.append(f"    fl_put_bits{sfx(w)}(p, off, {w}, ({utype(w)}){fld}); off += {w};")
        top = (t.width + max(f.type.max_width for f in t.fields if isinstance(f.type, VarbitT))) // 8
        return (f"static inline void unpack_{cname}({cname} *h, const uint8_t *p, unsigned vlen)\n{{\n"
                "    unsigned off = 0;\n" + "\n".join(un) + "\n    h->_valid = 1;\n}\n"
                f"static inline size_t pack_{cname}(const {cname} *h, uint8_t *p)\n{{\n"
                f"    unsigned off = 0;\n    memset(p, 0, {top + 1});\n" + "\n".join(pk)
                + "\n    return off / 8;\n}\n")

    def header_codecs(self, t: StructLikeT, cname: str) -> str:
        """unpack (as the Python header's _unpack) and pack (its _pack) over big-endian bytes."""
        if any(isinstance(f.type, VarbitT) for f in t.fields):
            return self.varbit_codecs(t, cname)
        un, pk = [], []
        off = 0
        for f in t.fields:
            w = flat_width(f.type)
            raw = f"fl_get_bits{sfx(w)}(p, {off}, {w})"
            if isinstance(f.type, BoolT):
                raw = f"({raw} == 1)"
            elif is_signed(f.type):
                raw = f"fl_sext{sfx(w)}({raw}, {w})"
            un.append(f"    h->{c_field(f.name)} = {raw};")
            pk.append(f"    fl_put_bits{sfx(w)}(p, {off}, {w}, ({utype(w)})h->{c_field(f.name)});")
            off += w
        n = (t.width + 7) // 8   # not whole bytes: the last byte's low bits are zero
        return (f"static inline void unpack_{cname}({cname} *h, const uint8_t *p)\n{{\n" + "\n".join(un)
                + "\n    h->_valid = 1;\n}\n"
                f"static inline void pack_{cname}(const {cname} *h, uint8_t *p)\n{{\n    memset(p, 0, {n});\n"
                + "\n".join(pk) + "\n}\n")

    def ctype_of_var(self, v: Var) -> str:
        if is_aggregate(v.type):
            return self.struct_type(v.type)
        return ctype(v.type)

    # -- runtime object specs ------------------------------------------------------------------

    def register_ref(self, qname: str, inst: InstanceEntity) -> int:
        if qname not in self.registers:
            t = inst.type.type_args[0] if inst.type.type_args else None
            if not isinstance(t, (BitT, BoolT)) and not (isinstance(t, EnumT) and t.underlying):
                raise _unsupported(f"register of {t}", inst.decl)
            width = flat_width(t)
            if width > 64:
                raise _unsupported("register wider than 64 bits", inst.decl)
            spec = f'{{{c_string(qname)}, {width}, {int(is_signed(t))}}}'
            self.registers[qname] = (len(self.registers), spec)
        return self.registers[qname][0]

    def counter_ref(self, qname: str) -> int:
        return self.counters.setdefault(qname, len(self.counters))

    def object_ref(self, collection: str, name: str) -> int:
        return self.objects.setdefault((collection, name), len(self.objects))

    def runtime_specs(self) -> str:
        lines = []
        for i, (qname, nkeys, signed, memoize, actions) in enumerate(self.tables):
            lines.append(f"static const int TK{i}[] = {{{', '.join(str(int(s)) for s in signed) or '0'}}};")
            lines.append(f"static const char *const TA{i}[] = {{{', '.join(c_string(a) for a in actions)}}};")
        lines.append("static const FlTableSpec TABLES[] = {" + ", ".join(
            f"{{{c_string(q)}, {n}, TK{i}, {int(m)}, TA{i}, {len(a)}}}"
            for i, (q, n, s, m, a) in enumerate(self.tables)) + (" {0}" if not self.tables else "") + "};")
        regs = sorted(self.registers.values())
        lines.append("static const FlRegisterSpec REGISTERS[] = {" + ", ".join(s for _, s in regs)
                     + (" {0}" if not regs else "") + "};")
        ctrs = sorted(self.counters.items(), key=lambda kv: kv[1])
        lines.append("static const char *const COUNTERS[] = {" + ", ".join(c_string(q) for q, _ in ctrs)
                     + (" 0" if not ctrs else "") + "};")
        objs = sorted(self.objects.items(), key=lambda kv: kv[1])
        lines.append("static const FlObjectSpec OBJECTS[] = {" + ", ".join(
            f"{{{c_string(c)}, {c_string(n)}}}" for (c, n), _ in objs) + (" {0}" if not objs else "") + "};")
        lines.append(f"#define N_TABLES {len(self.tables)}\n#define N_REGISTERS {len(regs)}\n"
                     f"#define N_COUNTERS {len(ctrs)}\n#define N_OBJECTS {len(objs)}\n")
        return "\n".join(lines)

    # -- frames -----------------------------------------------------------------------------

    def frame_struct(self, inst: ControlInstance) -> str:
        decl = inst.decl
        fields = ["    Ctx *ctx;"]
        for p in decl.params:
            v = getattr(p, "entity", None)
            if v is None:
                continue
            if is_aggregate(v.type):
                fields.append(f"    {self.struct_type(v.type)} *{self.vn(v)};")
            else:
                fields.append(f"    {ctype(v.type, p)} {self.vn(v)};")
        for local in decl.locals:
            if isinstance(local, ast.VariableDecl):
                v = local.entity
                fields.append(f"    {self.ctype_of_var(v)} {self.vn(v)};")
        return f"typedef struct F{inst.index} {{\n" + "\n".join(fields) + f"\n}} F{inst.index};\n"

    def bind_frame_vars(self, decl) -> None:
        for p in decl.params:
            v = getattr(p, "entity", None)
            if v is None:
                continue
            self.vars[v] = f"(*F->{self.vn(v)})" if is_aggregate(v.type) else f"F->{self.vn(v)}"
        for local in decl.locals:
            if isinstance(local, ast.VariableDecl):
                self.vars[local.entity] = f"F->{self.vn(local.entity)}"

    # -- parser -----------------------------------------------------------------------------

    def emit_parser(self, decl: ast.ParserDecl) -> None:
        o = self.out
        self.vars = {}
        self.ctx = "ctx"
        self.path = decl.name
        self.in_parser = True
        self.frame_type = None
        packet, hdr, meta, sm = decl.params
        o.line("static void parser(Ctx *ctx, const uint8_t *data, Py_ssize_t n)")
        o.line("{")
        o.indent()
        for p, member in ((hdr, "hdr"), (meta, "meta"), (sm, "sm")):
            self.vars[p.entity] = f"ctx->{member}"
        self.sm_code = "ctx->sm"
        o.line("Py_ssize_t off = 0;")
        o.line("int64_t err = -1;")
        self.state_prefix, self.accept_label = "S", "accept"
        self.parser_states(decl)
        o.line("fail:")
        o.line(f"if (err >= 0) {self.sm_code}.{c_field('parser_error')} = (uint64_t)err;")
        o.line("accept:")
        o.line("ctx->h.payload_off = off;")
        o.dedent()
        o.line("}")
        o.line("")
        self.in_parser = False

    def parser_states(self, decl: ast.ParserDecl) -> None:
        """The locals and states of a parser, as labels ``<state_prefix><i>``; ``accept`` goes
        to ``accept_label``, errors and ``reject`` to ``fail``."""
        o = self.out
        for local in decl.locals:
            self.emit_local_decl(local)
        states = {s.name: i for i, s in enumerate(decl.states)}
        if "start" not in states:
            raise _unsupported("a parser without a start state", decl)
        o.line(f"goto {self.state_prefix}{states['start']};")
        for i, state in enumerate(decl.states):
            o.line(f"{self.state_prefix}{i}: {{  /* {state.name} */")
            o.indent()
            for s in state.statements:
                self.stmt(s)
            self.transition(state.transition, states)
            o.dedent()
            o.line("}")

    def apply_sub_parser(self, call: ast.MethodCall) -> None:
        """``p.apply(packet, ...)``: the sub-parser's states inlined here (as p4c does), arguments
        copied in; out/inout ones copied back only when it accepts."""
        o = self.out
        sub: ast.ParserDecl = call.target.type.decl
        n = self.fresh("P")
        o.line(f"{{  /* {sub.name}.apply */")
        o.indent()
        copy_back = []
        for arg, p in call.matched_args:
            v = getattr(p, "entity", None)
            if v is None:
                continue                    # the packet: the sub-parser goes on from off
            if is_aggregate(v.type) and p.direction != "out":
                self.vars[v] = self.ref(arg.value)
                continue
            local = f"{n}_{self.vn(v)}"
            if is_aggregate(v.type):
                cname = self.struct_type(v.type)
                o.line(f"{cname} {local}; memset(&{local}, 0, sizeof {local});")
            else:
                o.line(f"{ctype(v.type, p)} {local} = {self.ex(arg.value) if p.direction in ('', 'in', 'inout') else '0'};")
            self.vars[v] = local
            if p.direction in ("out", "inout"):
                copy_back.append((arg.value, local))
        for local in sub.locals:         # declared anew in this block, each time it is inlined
            if isinstance(local, ast.VariableDecl):
                self.vars.pop(local.entity, None)
        saved = self.state_prefix, self.accept_label, self.path
        self.state_prefix, self.accept_label, self.path = f"{n}_S", f"{n}_accept", sub.name
        self.parser_states(sub)
        self.state_prefix, self.accept_label, self.path = saved
        o.line(f"{n}_accept: ;")
        for target, local in copy_back:
            self.assign(target, local)
        o.dedent()
        o.line("}")

    def parser_error(self, code) -> str:
        return f"{{ err = {code}; goto fail; }}"

    def goto(self, target: str, states: dict[str, int]) -> None:
        if target == "accept":
            self.out.line(f"goto {self.accept_label};")
        elif target == "reject":
            self.out.line(self.parser_error(-1))
        else:
            self.out.line(f"goto {self.state_prefix}{states[target]};")

    def transition(self, t: ast.Transition | None, states: dict[str, int]) -> None:
        o = self.out
        if t is None:
            self.goto("reject", states)
            return
        if t.select is None:
            self.goto(t.state, states)
            return
        keys = []
        for e in t.select.exprs:
            k = self.fresh("k")
            o.line(f"{ctype(e.checked_type, e)} {k} = {self.ex(e)};")
            keys.append((k, e.checked_type))
        for case in t.select.cases:
            if len(case.keysets) == 1 and isinstance(case.keysets[0], (ast.DefaultKeyset, ast.DontCare)):
                self.goto(case.state, states)
                return
            if len(case.keysets) == 1 and isinstance(getattr(case.keysets[0], "ref", None), ValueSetEntity):
                vs = case.keysets[0].ref
                if len(keys) != 1:
                    raise _unsupported("value_set on a select with several expressions", case)
                qname = qualified_name(vs.decl.name, vs.decl.annotations, self.path)
                idx = self.object_ref("value_sets", qname)
                k, kt = keys[0]
                hit = self.fresh("vs")
                o.line(f"PyObject *{hit}_key = {self.pyobj(k, kt)};")
                o.line(f"if (!{hit}_key) fl_abort(&ctx->h);")
                o.line(f"PyObject *{hit}_r = PyObject_CallMethodObjArgs(ctx->h.eng->objects[{idx}], "
                       f"fl_str_matches, {hit}_key, NULL);")
                o.line(f"Py_DECREF({hit}_key);")
                o.line(f"if (fl_call_u64(&ctx->h, {hit}_r)) {{")
            else:
                conds = [self.keyset_cond(k, kt, ks) for (k, kt), ks in zip(keys, case.keysets)]
                conds = [c for c in conds if c != "1"] or ["1"]
                o.line(f"if ({' && '.join(conds)}) {{")
            o.indent()
            self.goto(case.state, states)
            o.dedent()
            o.line("}")
        o.line(self.parser_error(self.typed.errors["NoMatch"]))

    def pyobj(self, code: str, t) -> str:
        """A new Python object for a scalar value, as the Python engine holds it."""
        if isinstance(t, BoolT):
            return f"PyBool_FromLong({code})"
        if width_of(t) > 64:
            return f"fl_s128_to_py({code})" if is_signed(t) else f"fl_u128_to_py({code})"
        if is_signed(t):
            return f"PyLong_FromLongLong({code})"
        return f"PyLong_FromUnsignedLongLong({code})"

    def keyset_cond(self, key: str, kt, ks: ast.Expression) -> str:
        if isinstance(ks, (ast.DefaultKeyset, ast.DontCare)):
            return "1"
        if isinstance(ks, ast.Mask):
            mask = ks.mask.const_value
            value = ks.value.const_value & mask
            w = max(width_of(kt), 64)
            return f"((({utype(w)}){key} & {cconst(mask & ones(w))}) == {cconst(value & ones(w))})"
        if isinstance(ks, ast.Range):
            lo, hi = ks.lo.const_value, ks.hi.const_value
            return f"({literal(lo, kt)} <= {key} && {key} <= {literal(hi, kt)})"
        return f"({key} == {literal(ks.const_value, kt, ks)})"

    # -- controls ---------------------------------------------------------------------------

    def emit_control_instance(self, inst: ControlInstance) -> None:
        o = self.out
        decl = inst.decl
        self.path = inst.path
        self.child_instances = inst.children
        self.frame_type = f"F{inst.index}"
        self.sm_code = None
        for p in decl.params:
            v = getattr(p, "entity", None)
            if v is not None and isinstance(v.type, StructLikeT) and v.type.name == "standard_metadata_t":
                self.sm_code = f"(*F->{self.vn(v)})"
        self.action_fns = {}
        self.table_fns = {}
        for local in decl.locals:
            if isinstance(local, ast.FunctionDecl):
                self.function_fns[id(local)] = f"fn{inst.index}_{c_ident(local.name)}"
            if isinstance(local, ast.ActionDecl):
                self.action_fns[id(local)] = f"a{inst.index}_{c_ident(local.name)}"
        for local in decl.locals:
            if isinstance(local, ast.FunctionDecl):
                self.emit_function(local, inst)
        for local in decl.locals:
            if isinstance(local, ast.ActionDecl):
                self.emit_action(local, inst)
        for local in decl.locals:
            if isinstance(local, ast.TableDecl):
                self.emit_table(local, inst)
        self.vars = {}
        self.bind_frame_vars(decl)
        self.ctx = "F->ctx"
        self.outs = []
        self.returns_value = False
        proto = f"static void c{inst.index}(F{inst.index} *F)"
        self.protos.append(proto)
        o.line(f"{proto}  /* {inst.path} */")
        o.line("{")
        o.indent()
        o.line("Ctx *ctx = F->ctx; (void)ctx;")
        for local in decl.locals:
            if isinstance(local, ast.VariableDecl):
                self.emit_local_decl(local)
        if decl.apply is not None:
            self.block(decl.apply)
        o.dedent()
        o.line("}")
        o.line("")

    def emit_deparser(self, decl: ast.ControlDecl) -> None:
        o = self.out
        hdr = decl.params[1]
        self.vars = {hdr.entity: "ctx->hdr"}
        self.ctx = "ctx"
        self.frame_type = None
        self.sm_code = None
        self.outs = []
        self.returns_value = False
        self.emit_bound = 0
        for local in decl.locals:
            if isinstance(local, (ast.ActionDecl, ast.TableDecl, ast.Instantiation)):
                raise _unsupported("actions, tables or instances in the deparser", local)
        start = len(o.lines)
        o.line("static PyObject *deparse(Ctx *ctx)")
        o.line("{")
        o.indent()
        o.line("uint8_t *out = buf;")
        for local in decl.locals:
            self.emit_local_decl(local)
        if decl.apply is not None:
            self.block(decl.apply)
        o.line("Py_ssize_t plen, hlen = out - buf;")
        o.line("const uint8_t *payload = fl_payload(&ctx->h, &plen);")
        o.line("Py_ssize_t total = hlen + plen;")
        o.line("if (ctx->h.truncate_to >= 0 && ctx->h.truncate_to < total) total = ctx->h.truncate_to;")
        o.line("PyObject *data = PyBytes_FromStringAndSize(NULL, total);")
        o.line("if (!data) fl_abort(&ctx->h);")
        o.line("char *d = PyBytes_AS_STRING(data);")
        o.line("if (hlen > total) hlen = total;")
        o.line("memcpy(d, buf, hlen);")
        o.line("if (total > hlen) memcpy(d + hlen, payload, total - hlen);")
        o.line("return data;")
        o.dedent()
        o.line("}")
        o.line("")
        # headers are packed into a buffer on the stack, bounded by every emit() the block has
        o.lines.insert(start + 2, f"    uint8_t buf[{max(self.emit_bound, 1)}];")

    # -- actions, functions, tables ----------------------------------------------------------

    def param_decl(self, p: ast.Parameter) -> str:
        v = p.entity
        if is_aggregate(v.type):
            return f"{self.struct_type(v.type)} *{self.vn(v)}"
        if p.direction in ("out", "inout"):
            return f"{ctype(v.type, p)} *{self.vn(v)}_out"
        return f"{ctype(v.type, p)} {self.vn(v)}"

    def bind_params(self, params: list[ast.Parameter]) -> None:
        o = self.out
        for p in params:
            v = p.entity
            if is_aggregate(v.type):
                self.vars[v] = f"(*{self.vn(v)})"
                continue
            self.vars[v] = self.vn(v)
            if p.direction == "inout":
                o.line(f"{ctype(v.type)} {self.vn(v)} = *{self.vn(v)}_out;")
            elif p.direction == "out":
                o.line(f"{ctype(v.type)} {self.vn(v)} = 0;")

    def emit_action(self, decl: ast.ActionDecl, inst: ControlInstance | None) -> None:
        o = self.out
        if inst is None:
            fn = self.top_action_fns[id(decl)]
            first = "Ctx *ctx"
            self.vars = {}
            self.ctx = "ctx"
            self.frame_type = None
        else:
            fn = self.action_fns[id(decl)]
            first = f"F{inst.index} *F"
            self.vars = {}
            self.bind_frame_vars(inst.decl)
            self.ctx = "F->ctx"
        proto = f"static void {fn}({', '.join([first] + [self.param_decl(p) for p in decl.params])})"
        self.protos.append(proto)
        o.line(f"{proto}  /* action {decl.name} */")
        o.line("{")
        o.indent()
        if inst is not None:
            o.line("Ctx *ctx = F->ctx; (void)ctx;")
        self.outs = [p.entity for p in decl.params if p.direction in ("out", "inout") and not is_aggregate(p.entity.type)]
        self.returns_value = False
        self.bind_params(decl.params)
        self.block(decl.body)
        self.emit_return(None)
        o.dedent()
        o.line("}")
        o.line("")

    def emit_function(self, decl: ast.FunctionDecl, inst: ControlInstance | None = None) -> None:
        """A top-level function, or (``inst``) one declared in a control: it gets the frame."""
        o = self.out
        fn = self.function_fns[id(decl)]
        if decl.type_params:
            raise _unsupported(f"generic function {decl.name}", decl)
        ret_c = "void"
        if not isinstance(decl.return_type, ast.VoidType):
            ret_t = _return_type(decl.body)
            if ret_t is None:
                raise _unsupported(f"the return type of function {decl.name}", decl)
            ret_c = self.struct_type(ret_t) if is_aggregate(ret_t) else ctype(ret_t, decl)
            self.ret_zero = f"({ret_c}){{0}}" if is_aggregate(ret_t) else zero(ret_t)
        self.vars = {}
        if inst is None:
            first = "Ctx *ctx"
            self.ctx = "ctx"
            self.frame_type = None
        else:
            first = f"F{inst.index} *F"
            self.bind_frame_vars(inst.decl)
            self.ctx = "F->ctx"
        proto = f"static {ret_c} {fn}({', '.join([first] + [self.param_decl(p) for p in decl.params])})"
        self.protos.append(proto)
        o.line(f"{proto}  /* function {decl.name} */")
        o.line("{")
        o.indent()
        if inst is not None:
            o.line("Ctx *ctx = F->ctx; (void)ctx;")
        self.outs = [p.entity for p in decl.params if p.direction in ("out", "inout") and not is_aggregate(p.entity.type)]
        self.returns_value = ret_c != "void"
        self.bind_params(decl.params)
        self.block(decl.body)
        self.emit_return(None)
        o.dedent()
        o.line("}")
        o.line("")
        self.returns_value = False

    def emit_return(self, value: str | None) -> None:
        o = self.out
        writes = " ".join(f"*{self.vn(v)}_out = {self.vn(v)};" for v in self.outs)
        if self.returns_value:
            o.line(f"{{ {writes} return {value if value is not None else self.ret_zero}; }}")
        else:
            o.line(f"{{ {writes} return; }}")

    def emit_table(self, decl: ast.TableDecl, inst: ControlInstance) -> None:
        o = self.out
        qname = qualified_name(decl.name, decl.annotations, inst.path)
        actions: list[tuple[str, str, bool, ast.ActionDecl]] = []   # (qualified name, fn, top-level, decl)
        bound: dict[int, list] = {}      # action index -> the arguments `actions` binds
        for entity, ref in zip(decl.action_entities, decl.actions):
            adecl = entity.decl
            aq = qualified_name(adecl.name, adecl.annotations, inst.path if entity.control else None)
            fn = self.action_fns[id(adecl)] if entity.control else self.top_action_fns[id(adecl)]
            if ref.args:
                bound[len(actions)] = ref.args
            actions.append((aq, fn, not entity.control, adecl))
        if decl.default_action is None and not any(a[0] == "NoAction" for a in actions):
            noaction = self.typed.top_actions["NoAction"]
            actions.append(("NoAction", self.top_action_fns[id(noaction)], True, noaction))
        for i, (_, _, _, adecl) in enumerate(actions):
            for p in adecl.params:
                if p.direction and i in bound:
                    continue
                if p.direction or is_signed(p.entity.type) or is_aggregate(p.entity.type) \
                        or width_of(p.entity.type) > 64:
                    raise _unsupported(f"action parameter {p.name} of {adecl.name} in a table", p)
                ctype(p.entity.type, p)
            if len(adecl.params) > 8:
                raise _unsupported(f"more than 8 parameters in table action {adecl.name}", adecl)
        match_keys = [k for k in decl.keys if k.match_kind != "selector"]
        selector_keys = [k for k in decl.keys if k.match_kind == "selector"]
        kinds = []
        for k in match_keys:
            wide = width_of(k.expr.checked_type) > 64
            if wide and is_signed(k.expr.checked_type):
                raise _unsupported("a signed key wider than 64 bits", k)
            kinds.append(2 if wide else int(is_signed(k.expr.checked_type)))
        if sum(2 if kind == 2 else 1 for kind in kinds) > 8:
            raise _unsupported("tables with more than 8 keys (a key above 64 bits counts twice)", decl)
        signed = kinds
        index = len(self.tables)
        self.tables.append((qname, len(match_keys), signed, decl.implementation is None,
                            [a[0] for a in actions]))
        fn = f"t{inst.index}_{c_ident(decl.name)}"
        self.table_fns[id(decl)] = (fn, [a[0] for a in actions])
        self.vars = {}
        self.bind_frame_vars(inst.decl)
        self.ctx = "F->ctx"
        self.outs = []
        proto = f"static FlApply {fn}(F{inst.index} *F)"
        self.protos.append(proto)
        o.line(f"{proto}  /* table {qname} */")
        o.line("{")
        o.indent()
        o.line("Ctx *ctx = F->ctx;")
        o.line(f"FlTable *t = &ctx->h.eng->tables[{index}];")
        slots = []
        for k in match_keys:
            code = self.key_value(k)
            if width_of(k.expr.checked_type) > 64:    # two slots: high and low 64 bits
                slots += [f"(uint64_t)(({code}) >> 64)", f"(uint64_t)({code})"]
            else:
                slots.append(f"(uint64_t)({code})")
        o.line(f"uint64_t key[{max(len(slots), 1)}] = {{{', '.join(slots) or '0'}}};")
        if decl.implementation is not None:
            if any(width_of(k.expr.checked_type) > 64 for k in selector_keys):
                raise _unsupported("selector keys wider than 64 bits", decl)
            items = "".join("(" + ("L" if is_signed(k.expr.checked_type) else "K") + "I)" for k in selector_keys)
            vals = "".join(f", ({'long long' if is_signed(k.expr.checked_type) else 'unsigned long long'})({self.key_value(k)}), "
                           f"{key_width(k)}" for k in selector_keys)
            o.line(f'PyObject *sel = Py_BuildValue("({items})"{vals});')
            o.line("if (!sel) fl_abort(&ctx->h);")
            o.line("FlMemo *m = fl_table_lookup(&ctx->h, t, key, sel);")
            o.line("Py_DECREF(sel);")
        else:
            o.line("FlMemo *m = fl_table_lookup(&ctx->h, t, key, NULL);")
        o.line("FlApply r = {m->hit, m->action};")
        o.line("uint64_t args[8];")
        o.line("memcpy(args, m->args, sizeof args);")
        if decl.counters is not None or decl.meters is not None:
            o.line("PyObject *e = m->entry;")
        if decl.meters is not None:
            o.line("if (!m->hit) ctx->h.meter_color = 0;   /* GREEN */")
        if decl.counters is not None or decl.meters is not None:
            o.line("if (m->hit) {")
            o.indent()
            o.line("Py_INCREF(e);")
            if decl.counters is not None:
                o.line(f"fl_count_entry(&ctx->h, e, (uint64_t)ctx->sm.{c_field('packet_length')});")
            if decl.meters is not None:
                unit = self.meter_unit(decl.meters.ref)
                o.line(f'ctx->h.meter_color = fl_direct_meter(&ctx->h, e, "{unit}", '
                       f"(uint64_t)ctx->sm.{c_field('packet_length')});")
            o.line("Py_DECREF(e);")
            o.dedent()
            o.line("}")
        o.line("switch (r.action) {")
        for i, (aq, afn, top, adecl) in enumerate(actions):
            first = "ctx" if top else "F"
            if i in bound:
                self.bound_action_case(i, afn, first, adecl, bound[i])
                continue
            args = []
            for j, p in enumerate(adecl.params):
                args.append(f"(args[{j}] != 0)" if isinstance(p.entity.type, BoolT) else f"args[{j}]")
            o.line(f"case {i}: {afn}({', '.join([first] + args)}); break;")
        o.line("}")
        o.line("return r;")
        o.dedent()
        o.line("}")
        o.line("")

    def bound_action_case(self, i: int, afn: str, first: str, adecl: ast.ActionDecl, bound: list) -> None:
        """``actions = { a(x); }``: the table passes the bound directional arguments (copy-in,
        copy-out) before the control-plane ones."""
        o = self.out
        o.line(f"case {i}: {{")
        o.indent()
        args, outs = [], []
        directional = [p for p in adecl.params if p.direction]
        for arg, p in zip(bound, directional):
            pt = p.entity.type
            if is_aggregate(pt):
                args.append(f"&{self.ref(arg.value)}")
            elif p.direction in ("out", "inout"):
                tmp = self.fresh("o")
                o.line(f"{ctype(pt, arg)} {tmp} = {self.ex(arg.value) if p.direction == 'inout' else '0'};")
                args.append(f"&{tmp}")
                outs.append((arg.value, tmp))
            else:
                args.append(self.ex(arg.value))
        for j, p in enumerate([p for p in adecl.params if not p.direction]):
            args.append(f"(args[{j}] != 0)" if isinstance(p.entity.type, BoolT) else f"args[{j}]")
        o.line(f"{afn}({', '.join([first] + args)});")
        for target, tmp in outs:
            self.assign(target, tmp)
        o.line("break;")
        o.dedent()
        o.line("}")

    def meter_unit(self, inst: InstanceEntity) -> str:
        arg = inst.args[0].value if inst.args else None
        return "packets" if getattr(arg, "member", "") == "packets" else "bytes"

    def key_value(self, k: ast.KeyElement) -> str:
        return self.ex(k.expr)


    # -- statements -------------------------------------------------------------------------

    def block(self, block: ast.BlockStatement) -> None:
        self.out.line("{")
        self.out.indent()
        for s in block.statements:
            self.stmt(s)
        self.out.dedent()
        self.out.line("}")

    def emit_local_decl(self, local) -> None:
        if isinstance(local, (ast.ConstDecl, ast.ValueSetDecl, ast.Instantiation)):
            return
        if not isinstance(local, ast.VariableDecl):
            raise _unsupported(f"local {type(local).__name__}", local)
        var: Var = local.entity
        o = self.out
        if var in self.vars:          # a frame variable: (re)initialised on every apply
            target = self.vars[var]
            if is_aggregate(var.type):
                o.line(f"memset(&{target}, 0, sizeof {target});")
                if local.init is not None:
                    o.line(f"{target} = {self.ex(local.init)};")
            else:
                init = self.ex(local.init) if local.init is not None else zero(var.type)
                o.line(f"{target} = {init};")
            return
        if is_aggregate(var.type):
            cname = self.struct_type(var.type)
            o.line(f"{cname} {self.vn(var)};")
            o.line(f"memset(&{self.vn(var)}, 0, sizeof {self.vn(var)});")
            self.vars[var] = self.vn(var)
            if local.init is not None:
                o.line(f"{self.vn(var)} = {self.ex(local.init)};")
        else:
            init = self.ex(local.init) if local.init is not None else zero(var.type)
            o.line(f"{ctype(var.type, local)} {self.vn(var)} = {init};")
            self.vars[var] = self.vn(var)

    def stmt(self, s: ast.Node) -> None:
        o = self.out
        if isinstance(s, ast.AssignmentStatement):
            self.assign(s.target, self.ex(s.value))
        elif isinstance(s, ast.MethodCallStatement):
            self.call_stmt(s.call, s.result)
        elif isinstance(s, ast.BlockStatement):
            self.block(s)
        elif isinstance(s, ast.IfStatement):
            o.line(f"if ({self.ex(s.cond)}) {{")
            o.indent()
            self.stmt(s.then)
            o.dedent()
            if s.otherwise is not None:
                o.line("} else {")
                o.indent()
                self.stmt(s.otherwise)
                o.dedent()
            o.line("}")
        elif isinstance(s, ast.SwitchStatement):
            self.switch(s)
        elif isinstance(s, ast.ReturnStatement):
            if self.in_parser:
                raise _unsupported("return in a parser", s)
            self.emit_return(self.ex(s.value) if s.value is not None else None)
        elif isinstance(s, ast.ForStatement):
            # break/continue are gotos: a C switch or inner block must not capture them
            loop = self.fresh("loop")
            self.loops.append(loop)
            o.line("{")
            o.indent()
            for clause in s.init:
                self.stmt(clause)
            o.line("for (;;) {")
            o.indent()
            if s.cond is not None:
                o.line(f"if (!({self.ex(s.cond)})) break;")
            self.stmt(s.body)
            o.line(f"{loop}_continue: ;")
            for clause in s.update:
                self.stmt(clause)
            o.dedent()
            o.line("}")
            o.line(f"{loop}_break: ;")
            o.dedent()
            o.line("}")
            self.loops.pop()
        elif isinstance(s, ast.ForInStatement):
            c = s.collection
            var = s.var.entity
            if not isinstance(c, ast.Range):      # each element of a header stack in turn
                loop = self.fresh("loop")
                self.loops.append(loop)
                st: StackT = c.checked_type
                o.line("{")
                o.indent()
                if s.var.type is not None:
                    cname = self.struct_type(var.type)
                    o.line(f"{cname} {self.vn(var)};")
                    self.vars[var] = self.vn(var)
                o.line(f"for (int {loop}_i = 0; {loop}_i < {st.size}; {loop}_i++) {{")
                o.indent()
                o.line(f"{self.vars[var]} = {self.ref(c)}.hs[{loop}_i];")
                self.stmt(s.body)
                o.line(f"{loop}_continue: ;")
                o.dedent()
                o.line("}")
                o.line(f"{loop}_break: ;")
                o.dedent()
                o.line("}")
                self.loops.pop()
                return
            t = var.type
            loop = self.fresh("loop")
            self.loops.append(loop)
            o.line("{")
            o.indent()
            ct = ctype(t, s)
            if s.var.type is not None:
                o.line(f"{ct} {self.vn(var)};")
                self.vars[var] = self.vn(var)
            o.line(f"{ct} {loop}_i = {self.ex(c.lo)}, {loop}_hi = {self.ex(c.hi)};")
            o.line(f"if ({loop}_i <= {loop}_hi) for (;;) {{")
            o.indent()
            target = ast.Name(loc=s.loc, name=var.name)
            target.ref, target.checked_type = var, t
            self.assign(target, f"{loop}_i")
            self.stmt(s.body)
            o.line(f"{loop}_continue: ;")
            o.line(f"if ({loop}_i == {loop}_hi) break;")
            o.line(f"{loop}_i++;")
            o.dedent()
            o.line("}")
            o.line(f"{loop}_break: ;")
            o.dedent()
            o.line("}")
            self.loops.pop()
        elif isinstance(s, ast.BreakStatement):
            o.line(f"goto {self.loops[-1]}_break;")
        elif isinstance(s, ast.ContinueStatement):
            o.line(f"goto {self.loops[-1]}_continue;")
        elif isinstance(s, ast.ExitStatement):
            if self.in_parser:
                raise _unsupported("exit in a parser", s)
            self.uses_exit = True
            o.line(f"longjmp(*{self.ctx}->h.exit_jb, 1);")
        elif isinstance(s, ast.EmptyStatement):
            pass
        elif isinstance(s, (ast.VariableDecl, ast.ConstDecl)):
            self.emit_local_decl(s)
        else:
            raise _unsupported(f"statement {type(s).__name__}", s)

    def switch(self, s: ast.SwitchStatement) -> None:
        o = self.out
        value = self.fresh("sw")
        t = s.expr.checked_type
        if isinstance(t, ActionRunT):
            call = s.expr.expr
            fn, names = self.table_fns[id(call.target.decl)]
            o.line(f"int {value} = {self.ex(call)}.action;")
            path = self.path

            def label_code(label):
                entity: ActionEntity = label.ref
                qn = qualified_name(entity.decl.name, entity.decl.annotations, path if entity.control else None)
                return str(names.index(qn)) if qn in names else "-1"
        else:
            o.line(f"{ctype(t, s)} {value} = {self.ex(s.expr)};")

            def label_code(label):
                return literal(label.const_value, t, label)
        pending: list[str] = []
        first = True
        for case in s.cases:
            if isinstance(case.label, ast.DefaultKeyset):
                cond = None
            else:
                pending.append(label_code(case.label))
                if case.body is None:
                    continue
                cond = " || ".join(f"{value} == {p}" for p in pending)
            pending = []
            if cond is None:
                o.line("{" if first else "else {")
            else:
                o.line(f"{'if' if first else 'else if'} ({cond}) {{")
            first = False
            o.indent()
            if case.body is not None:
                self.block(case.body)
            o.dedent()
            o.line("}")
            if cond is None:
                break

    # -- assignment --------------------------------------------------------------------------

    def assign(self, target: ast.Expression, value: str) -> None:
        o = self.out
        t = target.checked_type
        if isinstance(target, ast.DontCare):
            o.line(f"(void)({value});")
            return
        if isinstance(t, (StructLikeT, StackT)):
            o.line(f"{self.ref(target)} = {value};")
            return
        if isinstance(target, ast.Slice):
            base_t = target.expr.checked_type
            lo, hi = target.lo.const_value, target.hi.const_value
            m = ones(hi - lo + 1) << lo
            keep = ones(base_t.width) & ~m
            u = utype(base_t.width)
            new = f"((({u}){self.ex(target.expr)} & {cconst(keep)}) | ((({u})({value}) << {lo}) & {cconst(m)}))"
            if base_t.signed:
                new = f"fl_sext{sfx(base_t.width)}({new}, {base_t.width})"
            self.assign(target.expr, new)
            return
        o.line(f"{self.ref(target)} = {value};")

    def ref(self, e: ast.Expression) -> str:
        """A C lvalue for ``e`` (struct-valued for aggregates)."""
        if isinstance(e, ast.Name):
            if e.ref not in self.vars:
                raise _unsupported(f"variable '{e.name}' here", e)
            return self.vars[e.ref]
        if isinstance(e, ast.Member):
            bt = e.expr.checked_type
            if isinstance(bt, StackT):
                base = self.ref(e.expr)
                if e.member == "next":
                    return f"{base}.hs[fl_index(&{self.ctx}->h, {base}.nxt, {bt.size})]"
                if e.member == "last":
                    if not self.in_parser:
                        raise _unsupported("stack.last outside a parser", e)
                    stack_out = self.typed.errors.get("StackOutOfBounds", 3)
                    return (f"(*({{ if ({base}.nxt == 0) {{ err = {stack_out}; goto fail; }} "
                            f"&{base}.hs[{base}.nxt - 1]; }}))")
                raise _unsupported(f"stack member {e.member}", e)
            if isinstance(bt, StructLikeT):
                return f"{self.ref(e.expr)}.{c_field(e.member)}"
            raise _unsupported(f"member {e.member} of {bt}", e)
        if isinstance(e, ast.ArrayIndex):
            st = e.expr.checked_type
            base = self.ref(e.expr)
            return f"{base}.hs[fl_index(&{self.ctx}->h, {self.narrow(e.index)}, {st.size})]"
        if is_aggregate(e.checked_type):
            tmp = self.fresh("agg")
            self.out.line(f"{self.struct_type(e.checked_type)} {tmp} = {self.ex(e)};")
            return tmp
        raise _unsupported(f"assigning to {type(e).__name__}", e)

    # -- calls as statements -----------------------------------------------------------------

    def call_stmt(self, call: ast.MethodCall, result: ast.Expression | None = None) -> None:
        kind = call.kind
        o = self.out
        if kind in ("action", "function", "control_apply"):
            code, outs = self.call_with_outs(call)
            if result is not None:
                self.assign(result, code)
            else:
                o.line(f"(void)({code});" if code else "")
            for target, tmp in outs:
                self.assign(target, tmp)
            return
        if kind == "table_apply":
            o.line(f"(void){self.ex(call)};")
            return
        if kind == "parser_apply":
            self.apply_sub_parser(call)
            return
        if kind in ("setValid", "setInvalid"):
            base = call.callee.expr
            h = self.ref(base)
            union = self.union_of(base)
            if union is not None:
                # a union member: setValid invalidates the others (no zeroing, as codegen's _only)
                if kind == "setValid":
                    self.only(union, base.member)
                else:
                    o.line(f"{h}._valid = 0;")
                return
            width = (base.checked_type.width + 7) // 8
            if kind == "setValid":
                # simple_switch's add_header: an invalid header becomes valid with zeroed fields
                o.line(f"if (!{h}._valid) {{ memset(&{h}, 0, sizeof {h}); {h}._valid = 1; "
                       f"{self.ctx}->h.length += {width}; }}")
            else:
                o.line(f"if ({h}._valid) {{ {h}._valid = 0; {self.ctx}->h.length -= {width}; }}")
            return
        if kind in ("push_front", "pop_front"):
            st: StackT = call.callee.expr.checked_type
            s = self.ref(call.callee.expr)
            count = min(call.count, st.size)
            if count <= 0:
                return
            keep = st.size - count
            if kind == "push_front":
                o.line(f"memmove(&{s}.hs[{count}], &{s}.hs[0], {keep} * sizeof {s}.hs[0]);")
                o.line(f"memset(&{s}.hs[0], 0, {count} * sizeof {s}.hs[0]);")
                o.line(f"{s}.nxt = {s}.nxt + {count} < {st.size} ? {s}.nxt + {count} : {st.size};")
            else:
                o.line(f"memmove(&{s}.hs[0], &{s}.hs[{count}], {keep} * sizeof {s}.hs[0]);")
                o.line(f"memset(&{s}.hs[{keep}], 0, {count} * sizeof {s}.hs[0]);")
                o.line(f"{s}.nxt = {s}.nxt > {count} ? {s}.nxt - {count} : 0;")
            return
        if kind == "extract":
            self.extract(call.args[0].value, call)
            return
        if kind == "advance":
            if not self.in_parser:
                raise _unsupported("advance outside the parser", call)
            amount = call.args[0].value
            if hasattr(amount, "const_value") and amount.const_value % 8:
                raise _unsupported("advancing by a number of bits that is not a multiple of 8", amount)
            o.line(f"off += (Py_ssize_t)({self.narrow(amount)} >> 3);")
            o.line(f"if (off > n) {self.parser_error(self.typed.errors['PacketTooShort'])}")
            return
        if kind == "emit":
            self.emit(call.args[0].value)
            return
        if kind == "extern_function":
            self.extern_function(call)
            return
        if kind == "extern_method":
            self.extern_method(call)
            return
        o.line(f"(void)({self.ex(call)});")

    def union_of(self, e: ast.Expression):
        """(C lvalue, type) of the header union ``e`` is a member of, else None."""
        if isinstance(e, ast.Member) and isinstance(e.expr.checked_type, StructLikeT) \
                and e.expr.checked_type.kind == "header_union":
            return self.ref(e.expr), e.expr.checked_type
        return None

    def only(self, union, keep: str) -> None:
        """codegen's header-union ``_only``: ``keep`` valid, every other member invalid."""
        code, t = union
        for f in t.fields:
            if f.name != keep:
                self.out.line(f"{code}.{c_field(f.name)}._valid = 0;")
        self.out.line(f"{code}.{c_field(keep)}._valid = 1;")

    def call_with_outs(self, call: ast.MethodCall) -> tuple[str, list]:
        """The call expression and (l-value, temporary) pairs for scalar out/inout results."""
        o = self.out
        matched = getattr(call, "matched_args", [])
        outs = []
        if call.kind == "control_apply":
            child = self.child_instances[id(call.target.decl)]
            frame = self.fresh("f")
            o.line(f"F{child.index} {frame};")
            o.line(f"memset(&{frame}, 0, sizeof {frame});")
            o.line(f"{frame}.ctx = {self.ctx};")
            for arg, p in matched:
                v = p.entity
                if is_aggregate(v.type):
                    o.line(f"{frame}.{self.vn(v)} = &{self.ref(arg.value)};")
                elif p.direction == "out":
                    outs.append((arg.value, f"{frame}.{self.vn(v)}"))
                else:
                    o.line(f"{frame}.{self.vn(v)} = {self.ex(arg.value)};")
                    if p.direction == "inout":
                        outs.append((arg.value, f"{frame}.{self.vn(v)}"))
            return f"c{child.index}(&{frame})", outs
        args = []
        for arg, p in matched:
            pt = p.entity.type if hasattr(p, "entity") else arg.value.checked_type
            if is_aggregate(pt):
                args.append(f"&{self.ref(arg.value)}")
            elif p.direction in ("out", "inout"):
                tmp = self.fresh("o")
                init = self.ex(arg.value) if p.direction == "inout" else "0"
                o.line(f"{ctype(pt, arg)} {tmp} = {init};")
                args.append(f"&{tmp}")
                outs.append((arg.value, tmp))
            else:
                args.append(self.ex(arg.value))
        if call.kind == "action":
            entity: ActionEntity = call.target
            if entity.control:
                fn = self.action_fns.get(id(entity.decl))
                if fn is None or self.frame_type is None:
                    raise _unsupported("calling a control's action from outside it", call)
                return f"{fn}({', '.join(['F'] + args)})", outs
            return f"{self.top_action_fns[id(entity.decl)]}({', '.join([self.ctx] + args)})", outs
        if getattr(call.target.decl, "control", None) is not None:    # declared in this control
            if self.frame_type is None:
                raise _unsupported("calling a control's function from outside it", call)
            return f"{self.function_fns[id(call.target.decl)]}({', '.join(['F'] + args)})", outs
        return f"{self.function_fns[id(call.target.decl)]}({', '.join([self.ctx] + args)})", outs

    # -- parser and deparser primitives -------------------------------------------------------

    def varbit_bytes(self, t: StructLikeT, length: ast.Expression) -> str:
        """The checks before extracting a varbit header (as the Python engine's); returns the
        C variable holding the field's length."""
        o = self.out
        vt = next(f.type for f in t.fields if isinstance(f.type, VarbitT))
        vlen = self.fresh("vlen")
        o.line(f"uint64_t {vlen} = {self.ex(length)};")
        o.line(f"if ({vlen} > {vt.max_width}) {self.parser_error(self.typed.errors['HeaderTooShort'])}")
        o.line(f"if (({t.width} + {vlen}) % 8) {self.parser_error(self.typed.errors['ParserInvalidArgument'])}")
        return vlen

    def extract(self, target: ast.Expression, call) -> None:
        if not self.in_parser:
            raise _unsupported("extract outside the parser", call)
        o = self.out
        t: StructLikeT = target.checked_type
        if not isinstance(t, StructLikeT) or t.kind != "header":
            raise _unsupported("extracting something other than a header", call)
        nbytes = (t.width + 7) // 8
        cname = self.struct_type(t)
        h = self.fresh("h")
        o.line("{")
        o.indent()
        if isinstance(target, ast.Member) and isinstance(target.expr.checked_type, StackT) and target.member == "next":
            st = target.expr.checked_type
            s = self.ref(target.expr)
            o.line(f"if ({s}.nxt >= {st.size}) {self.parser_error(self.typed.errors['StackOutOfBounds'])}")
            o.line(f"{cname} *{h} = &{s}.hs[{s}.nxt];")
            o.line(f"{s}.nxt += 1;")
        else:
            o.line(f"{cname} *{h} = &{self.ref(target)};")
        if len(call.args) == 2:         # a varbit header: extract(hdr, length in bits)
            vlen = self.varbit_bytes(t, call.args[1].value)
            o.line(f"if (off + ({t.width} + {vlen}) / 8 > n) {self.parser_error(self.typed.errors['PacketTooShort'])}")
            o.line(f"unpack_{cname}({h}, data + off, (unsigned){vlen});")
            o.line(f"off += ({t.width} + {vlen}) / 8;")
        else:
            o.line(f"if (off + {nbytes} > n) {self.parser_error(self.typed.errors['PacketTooShort'])}")
            o.line(f"unpack_{cname}({h}, data + off);")
            o.line(f"off += {nbytes};")
        union = self.union_of(target)
        if union is not None:
            self.only(union, target.member)
        o.dedent()
        o.line("}")

    def emit(self, e: ast.Expression) -> None:
        o = self.out
        t = e.checked_type
        if isinstance(t, StackT) and t.element.kind == "header_union":
            s = self.ref(e)
            o.line(f"for (int i = 0; i < {t.size}; i++) {{")
            o.indent()
            for f in t.element.fields:
                cname = self.struct_type(f.type)
                n = (f.type.width + 7) // 8
                self.emit_bound += n * t.size
                m = f"{s}.hs[i].{c_field(f.name)}"
                o.line(f"if ({m}._valid) {{ pack_{cname}(&{m}, out); out += {n}; }}")
            o.dedent()
            o.line("}")
        elif isinstance(t, StackT):
            cname = self.struct_type(t.element)
            s = self.ref(e)
            n = (t.element.width + 7) // 8
            self.emit_bound += n * t.size
            o.line(f"for (int i = 0; i < {t.size}; i++) if ({s}.hs[i]._valid) {{ pack_{cname}(&{s}.hs[i], out); out += {n}; }}")
        elif t.kind == "header" and any(isinstance(f.type, VarbitT) for f in t.fields):
            cname = self.struct_type(t)
            self.emit_bound += (t.width + max(f.type.max_width for f in t.fields if isinstance(f.type, VarbitT))) // 8 + 1
            h = self.ref(e)
            o.line(f"if ({h}._valid) out += pack_{cname}(&{h}, out);")
        elif t.kind == "header":
            cname = self.struct_type(t)
            n = (t.width + 7) // 8
            self.emit_bound += n
            h = self.ref(e)
            o.line(f"if ({h}._valid) {{ pack_{cname}(&{h}, out); out += {n}; }}")
        else:   # a struct, or a union: its valid members in order
            for f in t.fields:
                member = ast.Member(loc=e.loc, expr=e, member=f.name)
                member.checked_type = f.type
                self.emit(member)

    # -- externs ------------------------------------------------------------------------------

    def positional(self, call) -> list[ast.Expression]:
        return [a.value for a, _ in call.matched_args]

    def fields_of(self, e: ast.Expression) -> list[tuple[str, int]]:
        """(uint64 value code, width) pairs of a field list (codegen.fields_of)."""
        t = e.checked_type
        if isinstance(e, ast.ListExpression):
            return [pair for el in e.elements for pair in self.fields_of(el)]
        if isinstance(t, StructLikeT):
            base = self.ref(e)
            out = []
            for f in t.fields:
                member = ast.Member(loc=e.loc, expr=e, member=f.name)
                member.checked_type = f.type
                if isinstance(f.type, StructLikeT):
                    out.extend(self.fields_of(member))
                elif isinstance(f.type, StackT):
                    raise _unsupported("header stacks in field lists", e)
                else:
                    w = flat_width(f.type)
                    out.append((f"(({utype(w)}){base}.{c_field(f.name)} & {cmask(w)})", w))
            return out
        if isinstance(t, IntegerT):
            raise _unsupported("field list values without a width", e)
        w = flat_width(t)
        return [(f"(({utype(w)})({self.ex(e)}) & {cmask(w)})", w)]

    def packed(self, e: ast.Expression) -> tuple[str, int]:
        """A stack buffer holding the packed field list (hashing.pack_fields); its name and bytes."""
        pairs = self.fields_of(e)
        nbits = sum(w for _, w in pairs)
        nbytes = (nbits + 7) // 8
        buf = self.fresh("buf")
        o = self.out
        o.line(f"uint8_t {buf}[{max(nbytes, 1)}];")
        o.line(f"memset({buf}, 0, sizeof {buf});")
        off = 0
        for code, w in pairs:
            o.line(f"fl_put_bits{sfx(w)}({buf}, {off}, {w}, {code});")
            off += w
        return buf, nbytes

    def algorithm(self, e: ast.Expression) -> str:
        t = e.checked_type
        if not isinstance(t, EnumT) or not hasattr(e, "const_value"):
            raise _unsupported("a hash algorithm that is not a constant", e)
        return next(name for name, value in t.members.items() if value == e.const_value)

    def hash_code(self, algo_name: str, buf: str, nbytes: int, payload: bool) -> str:
        algo = C_HASHES.get(algo_name, "FL_PY_HASH")
        if payload:
            return (f"({{ Py_ssize_t _pl; const uint8_t *_p = fl_payload(&{self.ctx}->h, &_pl); "
                    f"fl_hash(&{self.ctx}->h, {algo}, {c_string(algo_name)}, {buf}, {nbytes}, _p, _pl); }})")
        return f"fl_hash(&{self.ctx}->h, {algo}, {c_string(algo_name)}, {buf}, {nbytes}, NULL, 0)"

    def extern_function(self, call: ast.MethodCall) -> None:
        o = self.out
        name = call.target.name
        ctx = self.ctx
        args = self.positional(call)
        if name == "mark_to_drop":
            if args:
                sm = self.ref(args[0])
            elif self.sm_code is not None:
                sm = self.sm_code
            else:
                raise _unsupported("mark_to_drop() without standard_metadata here", call)
            o.line(f"{sm}.{c_field('egress_spec')} = 511;")
            o.line(f"{sm}.{c_field('mcast_grp')} = 0;")
        elif name == "verify":
            if not self.in_parser:
                raise _unsupported("verify() outside the parser", call)
            o.line(f"if (!({self.ex(args[0])})) {{ err = (int64_t)({self.ex(args[1])}); goto fail; }}")
        elif name == "hash":
            result, algo, base, data, maxv = args
            width = flat_width(result.checked_type)
            o.line("{")
            o.indent()
            buf, nbytes = self.packed(data)
            u = utype(max(width, width_of(base.checked_type), width_of(maxv.checked_type)))
            o.line(f"{u} _h = {self.hash_code(self.algorithm(algo), buf, nbytes, False)};")
            o.line(f"{u} _max = ({u})({self.ex(maxv)});")
            o.line(f"{u} _v = _max ? ({u})({self.ex(base)}) + _h % _max : _h;")
            self.assign(result, self.from_u64(f"(_v & {cmask(width)})", result.checked_type))
            o.dedent()
            o.line("}")
        elif name == "random":
            result, lo, hi = args
            value = (f"fl_random(&{ctx}->h, {self.pyobj(self.ex(lo), lo.checked_type)}, "
                     f"{self.pyobj(self.ex(hi), hi.checked_type)})")
            self.assign(result, self.from_u64(f"(uint64_t){value}", result.checked_type))
        elif name == "digest":
            data = args[1]
            t = call.tvars.get("T") if getattr(call, "tvars", None) else None
            t = t or data.checked_type
            if not isinstance(t, StructLikeT):
                raise _unsupported("digest of something other than a struct", call)
            # as codegen: the field list's values, masked to their widths (bools as 0/1)
            values = [self.pyobj(code, BitT(w)) for code, w in self.fields_of(data)]
            tup = self.fresh("dg")
            o.line(f"PyObject *{tup} = Py_BuildValue(\"(s({'N' * len(values)}))\", {c_string(t.name)}"
                   + "".join(", " + v for v in values) + ");")
            o.line(f"if (!{tup}) fl_abort(&{ctx}->h);")
            o.line(f"{{ PyObject *_r = PyObject_CallMethodObjArgs({ctx}->h.eng->digests, fl_str_append, {tup}, NULL); "
                   f"Py_DECREF({tup}); if (!_r) fl_abort(&{ctx}->h); Py_DECREF(_r); }}")
        elif name in ("clone", "clone_preserving_field_list"):
            o.line(f"{ctx}->h.clone_session = (int64_t){self.narrow(args[1])};")
            o.line(f"{ctx}->h.clone_field_list = {self.ex(args[2]) if len(args) > 2 else 'FL_NONE'};")
        elif name == "resubmit_preserving_field_list":
            o.line(f"{ctx}->h.resubmit_field_list = {self.ex(args[0])};")
        elif name == "recirculate_preserving_field_list":
            o.line(f"{ctx}->h.recirculate_field_list = {self.ex(args[0])};")
        elif name == "truncate":
            o.line(f"{ctx}->h.truncate_to = (int64_t){self.narrow(args[0])};")
        elif name in ("verify_checksum", "verify_checksum_with_payload"):
            cond, data, checksum, algo = args
            o.line(f"if ({self.ex(cond)}) {{")
            o.indent()
            computed = self.checksum_value(algo, data, flat_width(checksum.checked_type), name.endswith("payload"))
            o.line(f"if ({computed} != ({utype(width_of(checksum.checked_type))})({self.ex(checksum)})) "
                   f"{ctx}->sm.{c_field('checksum_error')} = 1;")
            o.dedent()
            o.line("}")
        elif name in ("update_checksum", "update_checksum_with_payload"):
            cond, data, checksum, algo = args
            o.line(f"if ({self.ex(cond)}) {{")
            o.indent()
            computed = self.checksum_value(algo, data, flat_width(checksum.checked_type), name.endswith("payload"))
            self.assign(checksum, self.from_u64(computed, checksum.checked_type))
            o.dedent()
            o.line("}")
        elif name == "log_msg":
            values = self.value_objects(args[1]) if len(args) > 1 else []
            tup = self.fresh("lg")
            o.line(f"PyObject *{tup} = Py_BuildValue(\"({'N' * len(values)})\"" + "".join(", " + v for v in values) + ");")
            o.line(f"if (!{tup}) fl_abort(&{ctx}->h);")
            fmt = args[0]
            if not isinstance(fmt, ast.StringLiteral):
                raise _unsupported("log_msg with a format that is not a string literal", call)
            o.line(f"{{ PyObject *_r = PyObject_CallMethod({ctx}->h.eng->rt, \"log_msg\", \"sO\", "
                   f"{c_string(fmt.value)}, {tup}); Py_DECREF({tup}); if (!_r) fl_abort(&{ctx}->h); Py_DECREF(_r); }}")
        elif name in ("assert", "assume"):
            o.line(f"if (!({self.ex(args[0])})) {{ PyObject *_r = PyObject_CallMethod({ctx}->h.eng->rt, "
                   f"\"failed_assertion\", \"s\", {c_string(str(call.loc))}); Py_XDECREF(_r); fl_abort(&{ctx}->h); }}")
        else:
            raise _unsupported(f"extern function '{name}'", call)

    def value_objects(self, e: ast.Expression) -> list[str]:
        """New Python objects for log_msg's values, as codegen.field_codes holds them."""
        elements = e.elements if isinstance(e, ast.ListExpression) else [e]
        out = []
        for el in elements:
            t = el.checked_type
            if is_aggregate(t) or isinstance(t, TupleT):
                raise _unsupported("log_msg of a struct or tuple value", el)
            if isinstance(t, IntegerT):
                out.append(f"PyLong_FromLongLong({literal(el.const_value, BitT(64, True), el)})")
            else:
                out.append(self.pyobj(self.ex(el), t))
        return out

    def checksum_value(self, algo: ast.Expression, data: ast.Expression, width: int, payload: bool) -> str:
        name = self.algorithm(algo)
        buf, nbytes = self.packed(data)
        code = self.hash_code(name, buf, nbytes, payload)
        return f"({code} & {cmask(width)})"

    def from_u64(self, code: str, t) -> str:
        """An unsigned result of a hash/checksum/extern as the target's C value."""
        if isinstance(t, BoolT):
            return f"(int)({code})"
        return f"(({ctype(t)})({code}))"

    def narrow(self, e: ast.Expression) -> str:
        """``e`` as uint64_t where the Python engine uses it as an index, port or count (a
        value beyond 64 bits would index differently once truncated)."""
        if width_of(e.checked_type) > 64:
            raise _unsupported("an index or count wider than 64 bits", e)
        return f"((uint64_t)({self.ex(e)}))"

    def extern_method(self, call: ast.MethodCall) -> None:
        inst: InstanceEntity = call.target
        kind, method = inst.type.name, call.method_name
        args = self.positional(call)
        ctx = self.ctx
        path = self.path if inst.control is not None else None
        qname = instance_name(inst, path)
        o = self.out
        if kind == "register" and method == "read":
            r = self.register_ref(qname, inst)
            value = f"fl_register_read(&{ctx}->h, &{ctx}->h.eng->registers[{r}], {self.narrow(args[1])})"
            self.assign(args[0], self.from_u64(value, args[0].checked_type))
        elif kind == "register" and method == "write":
            r = self.register_ref(qname, inst)
            o.line(f"fl_register_write(&{ctx}->h, &{ctx}->h.eng->registers[{r}], {self.narrow(args[0])}, "
                   f"{self.narrow(args[1])});")
        elif kind == "counter" and method == "count":
            c = self.counter_ref(qname)
            o.line(f"fl_counter_count(&{ctx}->h, &{ctx}->h.eng->counters[{c}], {self.narrow(args[0])}, "
                   f"(uint64_t){ctx}->sm.{c_field('packet_length')});")
        elif kind == "direct_counter" and method == "count":
            pass   # the table counts its entry on every hit
        elif kind == "meter" and method == "execute_meter":
            m = self.object_ref("meters", qname)
            value = (f"fl_call_u64(&{ctx}->h, PyObject_CallMethod({ctx}->h.eng->objects[{m}], \"execute\", \"KKL\", "
                     f"(unsigned long long){self.narrow(args[0])}, (unsigned long long){ctx}->sm.{c_field('packet_length')}, "
                     f"(long long){ctx}->h.now_us))")
            self.assign(args[1], self.from_u64(value, args[1].checked_type))
        elif kind == "direct_meter" and method == "read":
            self.assign(args[0], self.from_u64(f"{ctx}->h.meter_color", args[0].checked_type))
        else:
            raise _unsupported(f"{kind}.{method}", call)

    # -- expressions -------------------------------------------------------------------------

    def ex(self, e: ast.Expression) -> str:
        t = e.checked_type
        if hasattr(e, "const_value") and not isinstance(t, (StructLikeT, StackT, TupleT)):
            return literal(e.const_value, t, e)
        method = getattr(self, "x_" + type(e).__name__, None)
        if method is None:
            raise _unsupported(f"expression {type(e).__name__}", e)
        return method(e)

    def read(self, lvalue: str, t) -> str:
        if is_aggregate(t):
            return lvalue
        return f"(({ctype(t)}){lvalue})"

    def x_Name(self, e: ast.Name) -> str:
        ref = e.ref
        if isinstance(ref, Var):
            return self.read(self.ref(e), ref.type)
        if isinstance(ref, Const):
            return literal(ref.value, ref.type, e)
        raise _unsupported(f"'{e.name}' as a value", e)

    def x_Member(self, e: ast.Member) -> str:
        bt = e.expr.checked_type
        if isinstance(bt, StackT):
            if e.member == "lastIndex":
                return f"((uint64_t)({self.ref(e.expr)}.nxt - 1) & UINT64_C(0xffffffff))"
            return self.ref(e)
        if isinstance(bt, ApplyResultT):
            base = self.ex(e.expr)
            if e.member == "hit":
                return f"({base}.hit)"
            if e.member == "miss":
                return f"(!{base}.hit)"
            raise _unsupported(f"table result member {e.member}", e)
        return self.read(self.ref(e), e.checked_type)

    def x_ArrayIndex(self, e: ast.ArrayIndex) -> str:
        return self.ref(e)

    def x_Slice(self, e: ast.Slice) -> str:
        lo, hi = e.lo.const_value, e.hi.const_value
        base = self.ex(e.expr)
        w = hi - lo + 1
        u = utype(width_of(e.expr.checked_type))
        return f"(({utype(w)})((({u}){base} >> {lo}) & {cmask(w)}))"

    def x_Unary(self, e: ast.Unary) -> str:
        x = self.ex(e.operand)
        t = e.checked_type
        if e.op == "!":
            return f"(!{x})"
        if e.op == "+":
            return x
        if not isinstance(t, BitT):
            raise _unsupported(f"operator {e.op} on {t}", e)
        if e.op == "~":
            return f"(~{x})" if t.signed else f"({x} ^ {cmask(t.width)})"
        u = utype(t.width)
        return self.wrap(f"({u})0 - ({u}){x}", t)

    def wrap(self, code: str, t) -> str:
        """An unsigned computation reduced to ``t`` (codegen.wrap)."""
        if not isinstance(t, BitT):
            raise _unsupported(f"arithmetic on {t}")
        u = utype(t.width)
        if t.signed:
            return f"fl_sext{sfx(t.width)}(({u})({code}), {t.width})"
        return f"(({u})({code}) & {cmask(t.width)})"

    def x_Binary(self, e: ast.Binary) -> str:
        op = e.op
        lt, rt_ = e.left.checked_type, e.right.checked_type
        l, r = self.ex(e.left), self.ex(e.right)
        if op == "&&":
            return f"({l} && {r})"
        if op == "||":
            return f"({l} || {r})"
        if op in ("==", "!=") and isinstance(lt, VarbitT):
            return f"({'' if op == '==' else '!'}fl_varbit_eq({l}, {r}))"
        if op in ("==", "!=", "<", "<=", ">", ">="):
            if isinstance(lt, BoolT) or isinstance(rt_, BoolT):
                return f"({l} {op} {r})"
            w = max(width_of(lt), width_of(rt_))
            cast = stype(w) if is_signed(lt) or is_signed(rt_) else utype(w)
            return f"(({cast})({l}) {op} ({cast})({r}))"
        t = e.checked_type
        if not isinstance(t, BitT):
            raise _unsupported(f"operator {op} on {t}", e)
        ctype(t, e)
        u, sx = utype(t.width), sfx(t.width)
        if op == "++":
            lu = f"(({u})({l}) & {cmask(lt.width)})"
            ru = f"(({u})({r}) & {cmask(rt_.width)})"
            code = f"(({lu} << {rt_.width}) | {ru})"
            return f"fl_sext{sx}({code}, {t.width})" if t.signed else code
        if op in ("&", "|", "^"):
            c = ctype(t, e)
            return f"(({c})({l}) {op} ({c})({r}))"
        if op in ("+", "-", "*"):
            return self.wrap(f"({u})({l}) {op} ({u})({r})", t)
        if op in ("/", "%"):
            fn = {"/": "div", "%": "mod"}[op] + ("_s" if t.signed else "_u")
            return f"fl_{fn}{sx}({l}, {r})"
        if op in ("|+|", "|-|"):
            if t.signed:
                if t.width > 64:
                    return f"fl_sat_s128({l}, {r}, {int(op == '|-|')}, {t.width})"
                sym = "+" if op == "|+|" else "-"
                return f"fl_sat_s((__int128)({l}) {sym} (__int128)({r}), {t.width})"
            return f"fl_sat_add_u{sx}({l}, {r}, {t.width})" if op == "|+|" else f"fl_sat_sub_u{sx}({l}, {r})"
        if op == "<<":
            if hasattr(e.right, "const_value"):
                amount = e.right.const_value
                if amount >= t.width:
                    return "0"
                return self.wrap(f"({u})({l}) << {amount}", t)
            kind = "s" if t.signed else "u"
            return f"fl_shl_{kind}{sx}({l}, ({u})({r}), {t.width})"
        if op == ">>":
            kind = "s" if t.signed else "u"
            return f"fl_shr_{kind}{sx}({l}, ({u})({r}))"
        raise _unsupported(f"operator {op}", e)

    def x_Ternary(self, e: ast.Ternary) -> str:
        if is_aggregate(e.checked_type):
            raise _unsupported("conditional expressions of aggregates", e)
        c = ctype(e.checked_type, e)
        return f"({self.ex(e.cond)} ? ({c})({self.ex(e.then)}) : ({c})({self.ex(e.otherwise)}))"

    def x_Cast(self, e: ast.Cast) -> str:
        t, st = e.checked_type, e.expr.checked_type
        x = self.ex(e.expr)
        if isinstance(t, StructLikeT):
            return x
        if isinstance(t, BoolT):
            return f"(({utype(width_of(st))})({x}) == 1)" if isinstance(st, BitT) else x
        if isinstance(st, BoolT):
            return f"(({ctype(t, e)})({x}))"
        if isinstance(t, EnumT):
            t = t.underlying
        if isinstance(st, EnumT):
            st = st.underlying
        if isinstance(t, BitT) and isinstance(st, BitT):
            c = ctype(t, e)
            u = utype(max(t.width, st.width))
            if t.signed:
                if not st.signed and st.width <= t.width - 1:
                    return f"(({c})({x}))"
                return f"fl_sext{sfx(t.width)}(({u})({x}) & {cmask(t.width)}, {t.width})"
            if not st.signed and st.width <= t.width:
                return f"(({c})({x}))"
            return f"(({c})(({u})({x}) & {cmask(t.width)}))"
        if t is None or isinstance(t, (ErrorT, BitT)):
            return f"(({ctype(t or st, e)})({x}))"
        raise _unsupported(f"cast from {st} to {t}", e)

    def x_ListExpression(self, e: ast.ListExpression) -> str:
        t = e.checked_type
        if isinstance(t, StructLikeT):
            return self.construct(t, [(f.name, el) for f, el in zip(t.fields, e.elements)], e)
        raise _unsupported("tuples as values", e)

    def x_StructInitializer(self, e: ast.StructInitializer) -> str:
        return self.construct(e.checked_type, [(nf.name, nf.value) for nf in e.fields], e)

    def construct(self, t: StructLikeT, values, node) -> str:
        """A fresh value of ``t`` (a header initialiser makes it valid), as a compound literal."""
        cname = self.struct_type(t)
        by_name = dict(values)
        inits = [f".{c_field(f.name)} = {self.ex(by_name[f.name])}" for f in t.fields if f.name in by_name]
        if t.kind == "header":
            inits.append("._valid = 1")
        return f"(({cname}){{{', '.join(inits)}}})"

    def x_MethodCall(self, e: ast.MethodCall) -> str:
        kind = e.kind
        if kind == "isValid":
            base = e.callee.expr
            t = base.checked_type
            if isinstance(t, StructLikeT) and t.kind == "header_union":
                u = self.ref(base)
                return "(" + " || ".join(f"{u}.{c_field(f.name)}._valid" for f in t.fields) + ")" if t.fields else "0"
            return f"((int){self.ref(base)}._valid)"
        if kind == "table_apply":
            fn, _ = self.table_fns[id(e.target.decl)]
            if self.frame_type is None:
                raise _unsupported("applying a table outside its control", e)
            return f"{fn}(F)"
        if kind == "function":
            code, outs = self.call_with_outs(e)
            if outs:
                raise _unsupported("functions with out parameters inside expressions", e)
            return code
        if kind == "lookahead":
            if not self.in_parser:
                raise _unsupported("lookahead outside the parser", e)
            t = e.checked_type
            too_short = self.typed.errors["PacketTooShort"]
            if isinstance(t, StructLikeT) and t.kind == "header":
                cname = self.struct_type(t)
                nbytes = (t.width + 7) // 8
                return (f"({{ if (off + {nbytes} > n) {self.parser_error(too_short)} "
                        f"{cname} _la; unpack_{cname}(&_la, data + off); _la; }})")
            if isinstance(t, StructLikeT) and t.kind == "struct":
                # a struct of scalar fields, laid out as a header (the Python engine's lookahead_struct)
                cname = self.struct_type(t)
                sets, off = [], 0
                for f in t.fields:
                    if is_aggregate(f.type) or isinstance(f.type, VarbitT) or flat_width(f.type) > 64:
                        raise _unsupported(f"lookahead of struct {t.name} (field {f.name})", e)
                    w = flat_width(f.type)
                    raw = f"fl_get_bits(data + off, {off}, {w})"
                    if isinstance(f.type, BoolT):
                        raw = f"({raw} == 1)"
                    elif is_signed(f.type):
                        raw = f"fl_sext({raw}, {w})"
                    sets.append(f"_la.{c_field(f.name)} = {raw};")
                    off += w
                nbytes = (off + 7) // 8
                return (f"({{ if (off + {nbytes} > n) {self.parser_error(too_short)} "
                        f"{cname} _la; memset(&_la, 0, sizeof _la); {' '.join(sets)} _la; }})")
            if not isinstance(t, BitT) or t.width > MAX_WIDTH:
                raise _unsupported(f"lookahead of something other than a header, struct or bit<W <= {MAX_WIDTH}>", e)
            nbytes = (t.width + 7) // 8
            return (f"({{ if (off + {nbytes} > n) {self.parser_error(too_short)} "
                    f"fl_get_bits{sfx(t.width)}(data + off, 0, {t.width}); }})")
        if kind == "length":
            return "((uint64_t)n)"
        raise _unsupported(f"calling {kind} inside an expression", e)

    # -- preserved field lists and the block runners -------------------------------------------

    def emit_preserve(self, meta_t: StructLikeT) -> None:
        lists: dict[int, list[str]] = {}

        def collect(t: StructLikeT, prefix: str) -> None:
            for f in t.fields:
                path = f"{prefix}.{c_field(f.name)}"
                for index in annotation_ints(f.annotations, "field_list"):
                    lists.setdefault(index, []).append(path)
                if isinstance(f.type, StructLikeT) and f.type.kind == "struct":
                    collect(f.type, path)

        collect(meta_t, "")
        o = self.out
        o.line("static void preserve_field_list(int64_t index, const Ctx *src, Ctx *dst)")
        o.line("{")
        o.indent()
        o.line("(void)src; (void)dst;")
        for index, paths in sorted(lists.items()):
            o.line(f"if (index == {index}) {{")
            for path in paths:
                o.line(f"    dst->meta{path} = src->meta{path};")
            o.line("}")
        o.dedent()
        o.line("}")
        o.line("")

    def emit_block_runners(self, roles: dict[str, ControlInstance]) -> None:
        o = self.out
        for role, inst in roles.items():
            o.line(f"static void run_{role}(Ctx *ctx)")
            o.line("{")
            o.indent()
            o.line(f"F{inst.index} f;")
            o.line("memset(&f, 0, sizeof f);")
            o.line("f.ctx = ctx;")
            members = ("hdr", "meta", "sm")
            for p, member in zip(inst.decl.params, members):
                o.line(f"f.{self.vn(p.entity)} = &ctx->{member};")
            if self.uses_exit:
                o.line("jmp_buf exit_jb;")
                o.line("jmp_buf *saved = ctx->h.exit_jb;")
                o.line("ctx->h.exit_jb = &exit_jb;")
                o.line(f"if (!setjmp(exit_jb)) c{inst.index}(&f);")
                o.line("ctx->h.exit_jb = saved;")
            else:
                o.line(f"c{inst.index}(&f);")
            o.dedent()
            o.line("}")
            o.line("")

    def ctx_type_code(self) -> str:
        members = []
        sizes = {"uint8_t": "T_UBYTE", "uint16_t": "T_USHORT", "uint32_t": "T_UINT", "uint64_t": "T_ULONGLONG",
                 "int8_t": "T_BYTE", "int16_t": "T_SHORT", "int32_t": "T_INT", "int64_t": "T_LONGLONG"}
        for f in self.sm_t.fields:
            if is_aggregate(f.type):
                continue
            st = storage_type(f.type)
            members.append(f'    {{"{f.name}", {sizes[st]}, offsetof(Ctx, sm.{c_field(f.name)}), 0, NULL}},')
        template = _CTX_TEMPLATE.replace("@SM_MEMBERS@", "\n".join(members))
        return template.replace("@MODULE@", MODULE_NAME_PLACEHOLDER)


def _return_type(s):
    """The checked type of the first ``return value;`` in a function body."""
    if isinstance(s, ast.ReturnStatement):
        return s.value.checked_type if s.value is not None else None
    children = []
    if isinstance(s, ast.BlockStatement):
        children = s.statements
    elif isinstance(s, ast.IfStatement):
        children = [s.then, s.otherwise]
    elif isinstance(s, ast.SwitchStatement):
        children = [c.body for c in s.cases]
    elif isinstance(s, (ast.ForStatement, ast.ForInStatement)):
        children = [s.body]
    for c in children:
        t = _return_type(c) if c is not None else None
        if t is not None:
            return t
    return None


def generate(typed: TypedProgram, name: str) -> str:
    """The C source of the program's extension module; its name is MODULE_NAME_PLACEHOLDER."""
    return NativeGenerator(typed, name).generate()


# The Ctx type, the entry points and the module definition: the same for every program.
_CTX_TEMPLATE = r"""
/* ---------------------------------------------------------------- the Ctx type */

static PyTypeObject CtxType;

static void ctx_dealloc(Ctx *ctx)
{
    Py_XDECREF(ctx->h.eng);
    Py_XDECREF(ctx->h.frame);
    PyObject_Free(ctx);
}

static Ctx *ctx_alloc(FlEngine *eng, PyObject *frame)
{
    Ctx *ctx = PyObject_Malloc(sizeof(Ctx));
    if (!ctx) return (Ctx *)PyErr_NoMemory();
    memset((char *)ctx + sizeof(PyObject), 0, sizeof(Ctx) - sizeof(PyObject));
    PyObject_Init((PyObject *)ctx, &CtxType);
    Py_INCREF(eng);
    ctx->h.eng = eng;
    Py_INCREF(frame);
    ctx->h.frame = frame;
    ctx->h.clone_session = ctx->h.clone_field_list = ctx->h.resubmit_field_list = FL_NONE;
    ctx->h.recirculate_field_list = ctx->h.truncate_to = FL_NONE;
    return ctx;
}

static PyObject *ctx_get_optional(Ctx *ctx, void *offset)
{
    int64_t v = *(int64_t *)((char *)&ctx->h + (size_t)offset);
    if (v == FL_NONE) Py_RETURN_NONE;
    return PyLong_FromLongLong(v);
}

static int ctx_set_optional(Ctx *ctx, PyObject *value, void *offset)
{
    int64_t v = FL_NONE;
    if (value && value != Py_None) {
        v = PyLong_AsLongLong(value);
        if (v == -1 && PyErr_Occurred()) return -1;
        if (v < 0) { PyErr_SetString(PyExc_ValueError, "must be >= 0 or None"); return -1; }
    }
    *(int64_t *)((char *)&ctx->h + (size_t)offset) = v;
    return 0;
}

static PyObject *ctx_get_sm(Ctx *ctx, void *unused) { (void)unused; Py_INCREF(ctx); return (PyObject *)ctx; }

static PyObject *ctx_get_payload(Ctx *ctx, void *unused)
{
    (void)unused;
    Py_ssize_t n;
    const uint8_t *p = fl_payload(&ctx->h, &n);
    return PyBytes_FromStringAndSize((const char *)p, n);
}

#define OPT(name) {#name, (getter)ctx_get_optional, (setter)ctx_set_optional, NULL, (void *)offsetof(FlHead, name)}
static PyGetSetDef ctx_getset[] = {
    OPT(clone_session), OPT(clone_field_list), OPT(resubmit_field_list), OPT(recirculate_field_list),
    OPT(truncate_to),
    {"sm", (getter)ctx_get_sm, NULL, "the standard metadata: this object", NULL},
    {"payload", (getter)ctx_get_payload, NULL, "the bytes after the last extracted header", NULL},
    {NULL}
};
#undef OPT

static PyMemberDef ctx_members[] = {
@SM_MEMBERS@
    {"reentries", T_LONGLONG, offsetof(Ctx, h.reentries), 0, NULL},
    {"length", T_LONGLONG, offsetof(Ctx, h.length), 0, NULL},
    {"now_us", T_LONGLONG, offsetof(Ctx, h.now_us), 0, NULL},
    {NULL}
};

static PyTypeObject CtxType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fabriclab_native.PacketContext",
    .tp_basicsize = sizeof(Ctx),
    .tp_dealloc = (destructor)ctx_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "one packet between the blocks (native engine)",
    .tp_members = ctx_members,
    .tp_getset = ctx_getset,
};

/* ---------------------------------------------------------------- entry points */

#define MASK48 ((UINT64_C(1) << 48) - 1)
#define MASK32 UINT64_C(0xffffffff)
#define MAX_QDEPTH ((1 << 19) - 1)

static int check_engine(PyObject *o)
{
    if (!PyObject_TypeCheck(o, &FlEngineType)) { PyErr_SetString(PyExc_TypeError, "expected an Engine"); return 0; }
    return 1;
}

static int check_ctx(PyObject *o)
{
    if (!PyObject_TypeCheck(o, &CtxType)) { PyErr_SetString(PyExc_TypeError, "expected a PacketContext of this program"); return 0; }
    return 1;
}

/* pipeline._fresh_context */
static Ctx *fresh(FlEngine *eng, PyObject *frame, uint64_t port, int64_t now_us, uint64_t instance_type,
                  Ctx *preserved_from, int64_t field_list)
{
    Ctx *ctx = ctx_alloc(eng, frame);
    if (!ctx) return NULL;
    if (preserved_from) {
        preserve_field_list(field_list, preserved_from, ctx);
        ctx->h.reentries = preserved_from->h.reentries + 1;
    }
    ctx->sm.f_ingress_port = port;
    ctx->sm.f_packet_length = (uint64_t)PyBytes_GET_SIZE(frame);
    ctx->h.length = PyBytes_GET_SIZE(frame);
    ctx->sm.f_instance_type = instance_type;
    ctx->sm.f_ingress_global_timestamp = (uint64_t)now_us & MASK48;
    ctx->h.now_us = now_us;
    return ctx;
}

/* A new reference to the frame as bytes (the Python engine takes any bytes-like object). */
static PyObject *frame_bytes(PyObject *o)
{
    if (PyBytes_CheckExact(o)) { Py_INCREF(o); return o; }
    return PyBytes_FromObject(o);
}

static int64_t optional_arg(PyObject *o)
{
    if (o == Py_None) return FL_NONE;
    return PyLong_AsLongLong(o);
}

/* A fresh context for the frame, parsed; with through_ingress also verifyChecksum and ingress.
 * An extern that raised a Python exception longjmps back here. */
static PyObject *front_half(PyObject *engine, PyObject *frame_obj, uint64_t port, int64_t now,
                            uint64_t itype, Ctx *from, int64_t field_list, int through_ingress)
{
    PyObject *frame = frame_bytes(frame_obj);
    if (!frame) return NULL;
    Ctx *ctx = fresh((FlEngine *)engine, frame, port, now, itype, from, field_list);
    Py_DECREF(frame);
    if (!ctx) return NULL;
    jmp_buf abort_jb;
    ctx->h.abort_jb = &abort_jb;
    if (setjmp(abort_jb)) { Py_DECREF(ctx); return NULL; }
    parser(ctx, (const uint8_t *)PyBytes_AS_STRING(ctx->h.frame), PyBytes_GET_SIZE(ctx->h.frame));
    if (through_ingress) {
        run_verify_checksum(ctx);
        run_ingress(ctx);
    }
    return (PyObject *)ctx;
}

/* ingress(engine, frame, port, now_us, instance_type, preserved_from, field_list) -> ctx:
 * a fresh context, then parser, verifyChecksum and ingress in one call. */
static PyObject *py_ingress(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 7) { PyErr_SetString(PyExc_TypeError, "ingress() takes 7 arguments"); return NULL; }
    if (!check_engine(args[0])) return NULL;
    uint64_t port = PyLong_AsUnsignedLongLong(args[2]);
    int64_t now = PyLong_AsLongLong(args[3]);
    uint64_t itype = PyLong_AsUnsignedLongLong(args[4]);
    Ctx *from = NULL;
    if (args[5] != Py_None) { if (!check_ctx(args[5])) return NULL; from = (Ctx *)args[5]; }
    int64_t field_list = optional_arg(args[6]);
    if (PyErr_Occurred()) return NULL;
    return front_half(args[0], args[1], port, now, itype, from, field_list, 1);
}

/* parse(engine, frame, port, now_us, instance_type) -> ctx: a fresh context, parsed only. */
static PyObject *py_parse(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 5) { PyErr_SetString(PyExc_TypeError, "parse() takes 5 arguments"); return NULL; }
    if (!check_engine(args[0])) return NULL;
    uint64_t port = PyLong_AsUnsignedLongLong(args[2]);
    int64_t now = PyLong_AsLongLong(args[3]);
    uint64_t itype = PyLong_AsUnsignedLongLong(args[4]);
    if (PyErr_Occurred()) return NULL;
    return front_half(args[0], args[1], port, now, itype, NULL, FL_NONE, 0);
}

/* preserve(field_list, src, dst) */
static PyObject *py_preserve(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3 || !check_ctx(args[1]) || !check_ctx(args[2])) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "preserve() takes 3 arguments");
        return NULL;
    }
    int64_t index = optional_arg(args[0]);
    if (PyErr_Occurred()) return NULL;
    preserve_field_list(index, (Ctx *)args[1], (Ctx *)args[2]);
    Py_RETURN_NONE;
}

/* copy(ctx) -> ctx: pipeline._copy_context */
static PyObject *py_copy(PyObject *self, PyObject *arg)
{
    (void)self;
    if (!check_ctx(arg)) return NULL;
    Ctx *src = (Ctx *)arg;
    Ctx *c = ctx_alloc(src->h.eng, src->h.frame);
    if (!c) return NULL;
    c->hdr = src->hdr;
    c->meta = src->meta;
    c->sm = src->sm;
    c->h.payload_off = src->h.payload_off;
    c->h.truncate_to = src->h.truncate_to;
    c->h.reentries = src->h.reentries;
    c->h.length = src->h.length;
    return (PyObject *)c;
}

/* egress_clone(ctx, length) -> ctx: headers as egress left them, metadata reset except the
 * preserved field list (pipeline._clone_at_egress). */
static PyObject *py_egress_clone(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2 || !check_ctx(args[0])) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "egress_clone() takes 2 arguments");
        return NULL;
    }
    Ctx *src = (Ctx *)args[0];
    int64_t length = PyLong_AsLongLong(args[1]);
    if (PyErr_Occurred()) return NULL;
    Ctx *c = ctx_alloc(src->h.eng, src->h.frame);
    if (!c) return NULL;
    c->hdr = src->hdr;
    c->h.payload_off = src->h.payload_off;
    c->h.length = length;
    preserve_field_list(src->h.clone_field_list, src, c);
    c->sm.f_instance_type = 2;   /* EGRESS_CLONE */
    c->h.reentries = src->h.reentries;
    return (PyObject *)c;
}

static PyObject *finish(Ctx *ctx)
{
    jmp_buf abort_jb;
    ctx->h.abort_jb = &abort_jb;
    if (setjmp(abort_jb)) return NULL;
    run_compute_checksum(ctx);
    return deparse(ctx);
}

/* egress(ctx, port, length, now_us, enq_timestamp, enq_qdepth, deq_timedelta, deq_qdepth)
 * -> bytes, or None when the glue must look (E2E clone, drop, recirculation). */
static PyObject *py_egress(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 8) { PyErr_SetString(PyExc_TypeError, "egress() takes 8 arguments"); return NULL; }
    if (!check_ctx(args[0])) return NULL;
    Ctx *ctx = (Ctx *)args[0];
    uint64_t port = PyLong_AsUnsignedLongLong(args[1]);
    int64_t length = PyLong_AsLongLong(args[2]);
    int64_t now = PyLong_AsLongLong(args[3]);
    int64_t enq_ts = PyLong_AsLongLong(args[4]);
    int64_t enq_qdepth = PyLong_AsLongLong(args[5]);
    int64_t deq_td = PyLong_AsLongLong(args[6]);
    int64_t deq_qdepth = PyLong_AsLongLong(args[7]);
    if (PyErr_Occurred()) return NULL;
    ctx->sm.f_egress_port = port;
    ctx->sm.f_egress_spec = 0;     /* simple_switch: anything but the drop port */
    ctx->sm.f_packet_length = (uint64_t)length;
    ctx->h.length = length;
    ctx->sm.f_enq_timestamp = (uint64_t)enq_ts & MASK32;
    ctx->sm.f_enq_qdepth = enq_qdepth < MAX_QDEPTH ? enq_qdepth : MAX_QDEPTH;
    ctx->sm.f_deq_timedelta = (uint64_t)deq_td & MASK32;
    ctx->sm.f_deq_qdepth = deq_qdepth < MAX_QDEPTH ? deq_qdepth : MAX_QDEPTH;
    ctx->sm.f_egress_global_timestamp = (uint64_t)now & MASK48;
    ctx->h.now_us = now;
    ctx->h.clone_session = FL_NONE;
    jmp_buf abort_jb;
    ctx->h.abort_jb = &abort_jb;
    if (setjmp(abort_jb)) return NULL;
    run_egress(ctx);
    if (ctx->h.clone_session != FL_NONE || ctx->sm.f_egress_spec == 511 || ctx->h.recirculate_field_list != FL_NONE)
        Py_RETURN_NONE;
    return finish(ctx);
}

/* deparse(ctx) -> bytes: computeChecksum, deparser, truncation. */
static PyObject *py_deparse(PyObject *self, PyObject *arg)
{
    (void)self;
    if (!check_ctx(arg)) return NULL;
    return finish((Ctx *)arg);
}

/* engine(state, rt) -> Engine: the runtime objects of one pipeline instance. */
static PyObject *py_engine(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "engine() takes 2 arguments"); return NULL; }
    return (PyObject *)fl_engine_new(args[0], args[1], TABLES, N_TABLES, REGISTERS, N_REGISTERS,
                                     COUNTERS, N_COUNTERS, OBJECTS, N_OBJECTS);
}

static PyMethodDef module_methods[] = {
    {"engine", (PyCFunction)(void (*)(void))py_engine, METH_FASTCALL, NULL},
    {"ingress", (PyCFunction)(void (*)(void))py_ingress, METH_FASTCALL, NULL},
    {"parse", (PyCFunction)(void (*)(void))py_parse, METH_FASTCALL, NULL},
    {"preserve", (PyCFunction)(void (*)(void))py_preserve, METH_FASTCALL, NULL},
    {"copy", (PyCFunction)py_copy, METH_O, NULL},
    {"egress_clone", (PyCFunction)(void (*)(void))py_egress_clone, METH_FASTCALL, NULL},
    {"egress", (PyCFunction)(void (*)(void))py_egress, METH_FASTCALL, NULL},
    {"deparse", (PyCFunction)py_deparse, METH_O, NULL},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "@MODULE@", NULL, -1, module_methods};

PyMODINIT_FUNC PyInit_@MODULE@(void)
{
    if (fl_init_strings() < 0) return NULL;
    if (PyType_Ready(&FlEngineType) < 0 || PyType_Ready(&CtxType) < 0) return NULL;
    return PyModule_Create(&module_def);
}
"""
