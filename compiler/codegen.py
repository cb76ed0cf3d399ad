"""Typed program -> Python source, exec'd once; the per-packet path never walks the AST.

The generated module defines ``build(S, RT)`` (``S``: the ``RuntimeState``; ``RT``: the
v1model runtime support, ``fabriclab.v1model.runtime``) which returns the six v1model blocks as plain functions plus
constructors for the header/metadata objects. Representation choices, all for speed:

* headers and structs are generated classes with ``__slots__`` (one slot per field, plus
  ``_valid`` for headers); values are Python ints kept in range at every assignment
  (``& mask`` for bit<W>, two's complement wrap for int<W>), so reads need no masking;
* a parser is one function: a ``while`` loop over numbered states, locals as Python locals,
  extraction by ``int.from_bytes`` over the header's bytes then shifts and masks;
* a control instance is one function for its apply block, one per action and one per table,
  all taking the control's frame ``F`` (its parameters and locals as attributes); for the
  V1Switch blocks the frame is the ``PacketContext`` itself, sub-controls get a small frame
  object per apply; aggregates are read through local aliases, scalars through ``F``;
* tables dispatch through a dict from the action's fully qualified name to its function.
"""
from __future__ import annotations

import keyword
import re

from fabriclab.compiler import ast
from fabriclab.compiler.diagnostics import CompileError, unsupported
from fabriclab.compiler.typecheck import (
    ActionEntity, ActionRunT, ApplyResultT, BitT, BoolT, Const, EnumT, ErrorT, InstanceEntity, IntegerT,
    StackT, StructLikeT, TupleT, TypedProgram, ValueSetEntity, Var, VarbitT, flat_width, is_aggregate,
)


# ---------------------------------------------------------------------------- names


def qualified_name(local: str, annotations: list, prefix: str | None) -> str:
    """The P4Info name of a declaration: ``@name`` wins (a leading '.' makes it global)."""
    name_ann = ast.find_annotation(annotations, "name")
    if name_ann is not None and name_ann.args and isinstance(name_ann.args[0], ast.StringLiteral):
        local = name_ann.args[0].value
        if local.startswith("."):
            return local[1:]
    return f"{prefix}.{local}" if prefix else local


def py_field(name: str) -> str:
    """The Python attribute for a P4 field (keywords and our own slot names get a suffix)."""
    if keyword.iskeyword(name) or name.startswith("_"):
        return name + "_f"
    return name


def annotation_ints(annotations: list, name: str) -> list[int]:
    ann = ast.find_annotation(annotations, name)
    if ann is None:
        return []
    return [a.value for a in ann.args if isinstance(a, ast.IntLiteral)]


class ControlInstance:
    """One instance of a control: the top-level block (path = type name) or a sub-control."""

    def __init__(self, index: int, path: str, decl: ast.ControlDecl, top: bool):
        self.index = index
        self.path = path
        self.decl = decl
        self.top = top          # a V1Switch block: its frame is the PacketContext itself
        self.children: dict[int, ControlInstance] = {}   # id(Instantiation) -> instance


def control_instances(typed: TypedProgram) -> list[ControlInstance]:
    """Every control instance reachable from the package, depth first."""
    out: list[ControlInstance] = []

    def visit(path: str, decl: ast.ControlDecl, top: bool) -> ControlInstance:
        inst = ControlInstance(len(out), path, decl, top)
        out.append(inst)
        for local in decl.locals:
            if isinstance(local, ast.Instantiation) and isinstance(local.entity.type.decl, ast.ControlDecl):
                child_path = qualified_name(local.name, local.annotations, path)
                inst.children[id(local)] = visit(child_path, local.entity.type.decl, False)
        return inst

    for block in typed.blocks[1:5]:   # the deparser is generated on its own
        visit(block.name, block, True)
    return out


def instance_name(inst: InstanceEntity, path: str | None) -> str:
    return qualified_name(inst.decl.name, inst.decl.annotations, path)


# ---------------------------------------------------------------------------- generator


class Emitter:
    """Indented lines of generated source (Python here, C in native_codegen)."""

    def __init__(self):
        self.lines: list[str] = []
        self.depth = 0

    def line(self, text: str) -> None:
        self.lines.append("    " * self.depth + text)

    def indent(self) -> None:
        self.depth += 1

    def dedent(self) -> None:
        self.depth -= 1


def field_value(raw: str, ft, w: int) -> str:
    """The Python value of a header field from ``raw``, its ``w`` bits as an unsigned int."""
    if isinstance(ft, BitT) and ft.signed:
        return f"(({raw} ^ {1 << (w - 1)}) - {1 << (w - 1)})"
    if isinstance(ft, BoolT):
        return f"({raw} == 1)"
    if isinstance(ft, EnumT) and ft.underlying is not None and ft.underlying.signed:
        return f"RT.to_signed({raw}, {w})"
    return raw


def ones(width: int) -> int:
    """The all-ones value of ``width`` bits."""
    return (1 << width) - 1


def key_width(k: ast.KeyElement) -> int:
    """Bits of a table or selector key element as the runtime packs it."""
    t = k.expr.checked_type
    return 1 if isinstance(t, BoolT) else flat_width(t) if not isinstance(t, ErrorT) else 16


def _default_value(t) -> str:
    if isinstance(t, BoolT):
        return "False"
    if isinstance(t, VarbitT):
        return "(0, 0)"         # a varbit value is (length in bits, value)
    return "0"


class Generator:
    def __init__(self, typed: TypedProgram, name: str):
        self.typed = typed
        self.name = name
        self.out = Emitter()
        self.classes: dict[str, str] = {}           # struct-like type name -> Python class
        self.tmp = 0
        self.bound: list[str] = []                  # lines binding runtime state, at build() top
        self.bound_names: set[str] = set()
        self.instances = control_instances(typed)
        self.top_action_fns: dict[int, str] = {}
        # per function being generated
        self.ctx_expr = "F._ctx"
        self.frame_vars: list = []
        self.frame_attr: dict = {}                  # frame Var -> attribute of F holding it
        self.path: str | None = None
        self.action_fns: dict[int, str] = {}        # id(ActionDecl) -> function, current instance
        self.function_fns: dict[int, str] = {}      # id(FunctionDecl) -> function (current instance's)
        self.table_fns: dict[int, str] = {}
        self.child_instances: dict[int, ControlInstance] = {}
        self.outs: list[Var] = []                   # scalar out/inout params returned by the function
        self.returns_value = False
        self.sm_code: str | None = None             # standard_metadata in the current block

    def fresh(self, base: str = "t") -> str:
        self.tmp += 1
        return f"_{base}{self.tmp}"

    # -- module ---------------------------------------------------------------------------

    def generate(self) -> str:
        o = self.out
        o.line(f'"""Generated by fabriclab from {self.name}.p4 — do not edit."""')
        o.line("")
        o.line("")
        o.line("def build(S, RT):")
        o.indent()
        o.line("ParserError = RT.ParserError")
        o.line("Exit = RT.Exit")
        for t in self.struct_types():
            self.emit_class(t)
        body_start = len(o.lines)
        for decl in self.typed.top_actions.values():
            self.top_action_fns[id(decl)] = self.emit_action(decl, None, None)
        for decl in self.typed.functions.values():
            self.emit_function(decl)
        parser, verify, ingress, egress, compute, deparser = self.typed.blocks
        for sub in self.sub_parsers(parser, {}).values():
            self.emit_parser(sub, sub=True)
        self.emit_parser(parser)
        for inst in self.instances:
            self.emit_control_instance(inst)
        entry_points = {}
        for role, block in (("verify_checksum", verify), ("ingress", ingress), ("egress", egress),
                            ("compute_checksum", compute)):
            entry_points[role] = self.emit_entry(role, block)
        self.emit_deparser(deparser)
        self.emit_constructors(ingress)
        o.lines[body_start:body_start] = ["    " + b for b in self.bound]
        o.line("return {")
        o.indent()
        for role, fn in entry_points.items():
            o.line(f"{role!r}: {fn},")
        for key in ("parser", "deparser", "new_headers", "new_metadata", "new_standard_metadata",
                    "preserve_field_list"):
            o.line(f"{key!r}: {key},")
        o.dedent()
        o.line("}")
        return "\n".join(o.lines) + "\n"

    def bind(self, pyname: str, code: str) -> str:
        if pyname not in self.bound_names:
            self.bound_names.add(pyname)
            self.bound.append(f"{pyname} = {code}")
        return pyname

    # -- types ----------------------------------------------------------------------------

    def struct_types(self) -> list[StructLikeT]:
        """Struct-like types in dependency order (fields before the types that contain them)."""
        ordered: list[StructLikeT] = []
        seen = set()

        def visit(t):
            if isinstance(t, StackT):
                t = t.element
            if not isinstance(t, StructLikeT) or t.name in seen:
                return
            seen.add(t.name)
            for f in t.fields:
                visit(f.type)
            ordered.append(t)

        for t in self.typed.types.values():
            visit(t)
        return ordered

    def cls(self, t: StructLikeT) -> str:
        return self.classes[t.name]

    def new_value(self, t) -> str:
        if isinstance(t, StructLikeT):
            return f"{self.cls(t)}()"
        if isinstance(t, StackT):
            return f"RT.Stack({self.cls(t.element)}, {t.size})"
        return _default_value(t)

    def emit_class(self, t: StructLikeT) -> None:
        o = self.out
        name = f"T_{t.name}"
        self.classes[t.name] = name
        fields = [(py_field(f.name), f.type) for f in t.fields]
        if t.kind == "header":
            self.emit_header_class(t, name, fields)
            return
        slots = [p for p, _ in fields]
        o.line(f"class {name}:")
        o.indent()
        o.line(f"__slots__ = {tuple(slots)!r}")
        o.line("")
        o.line("def __init__(self):")
        o.indent()
        for p, ft in fields:
            o.line(f"self.{p} = {self.new_value(ft)}")
        if not slots:
            o.line("pass")
        o.dedent()
        o.line("")
        o.line("def _copy(self):")
        o.indent()
        o.line(f"c = {name}.__new__({name})")
        for s in slots:
            ft = dict(fields).get(s)
            o.line(f"c.{s} = self.{s}._copy()" if ft is not None and is_aggregate(ft) else f"c.{s} = self.{s}")
        o.line("return c")
        o.dedent()
        o.line("")
        o.line("def _assign(self, o):")
        o.indent()
        for s in slots:
            ft = dict(fields).get(s)
            o.line(f"self.{s}._assign(o.{s})" if ft is not None and is_aggregate(ft) else f"self.{s} = o.{s}")
        if not slots:
            o.line("pass")
        o.dedent()
        if t.kind == "header_union":
            o.line("")
            o.line("def _isvalid(self):")
            o.indent()
            o.line("return " + (" or ".join(f"self.{p}._valid" for p, _ in fields) or "False"))
            o.dedent()
            o.line("")
            o.line("def _only(self, keep):")
            o.indent()
            for p, _ in fields:
                o.line(f"if self.{p} is not keep: self.{p}._valid = False")
            o.line("keep._valid = True")
            o.dedent()
        o.dedent()
        o.line("")

    def emit_varbit_codec(self, fields) -> None:
        """A header with a varbit field: ``_unpack(x, n)`` with the field n bits long, and
        ``_pack()`` at the length the field has now."""
        o = self.out
        o.line("def _unpack(self, x, n):")
        o.indent()
        widths = [("n" if isinstance(ft, VarbitT) else str(flat_width(ft))) for _, ft in fields]
        o.line(f"total = {' + '.join(widths)}")
        for (p, ft), w in zip(fields, widths):
            o.line(f"total -= {w}")
            raw = f"((x >> total) & ((1 << {w}) - 1))"
            raw = f"(n, {raw})" if isinstance(ft, VarbitT) else field_value(raw, ft, int(w))
            o.line(f"self.{p} = {raw}")
        o.line("self._valid = True")
        o.dedent()
        o.line("")
        o.line("def _pack(self):")
        o.indent()
        o.line("x = nbits = 0")
        for p, ft in fields:
            if isinstance(ft, VarbitT):
                o.line(f"n, v = self.{p}")
                o.line("x = (x << n) | v")
                o.line("nbits += n")
            else:
                w = flat_width(ft)
                o.line(f"x = (x << {w}) | (int(self.{p}) & {ones(w)})")
                o.line(f"nbits += {w}")
        o.line("return x.to_bytes(nbits // 8, 'big')")
        o.dedent()

    def emit_header_class(self, t: StructLikeT, name: str, fields) -> None:
        """Headers are created for every packet, most never valid: an instance starts empty
        and reads the class's zero defaults until a field is written (no per-field __init__)."""
        o = self.out
        width = t.width
        o.line(f"class {name}:")
        o.indent()
        o.line("_valid = False")
        for p, ft in fields:
            o.line(f"{p} = {_default_value(ft)}")
        o.line("")
        o.line("def _copy(self):")
        o.indent()
        o.line(f"c = {name}.__new__({name})")
        o.line("c.__dict__.update(self.__dict__)")
        o.line("return c")
        o.dedent()
        o.line("")
        o.line("def _assign(self, o):")
        o.indent()
        o.line("d = self.__dict__")
        o.line("d.clear()")
        o.line("d.update(o.__dict__)")
        o.dedent()
        o.line("")
        o.line("def _add(self, ctx):")
        o.indent()
        o.line("if not self._valid:")
        o.indent()
        o.line("self.__dict__.clear()   # back to all-zero fields")
        o.line("self._valid = True")
        o.line(f"ctx.length += {(width + 7) // 8}")
        o.dedent()
        o.dedent()
        o.line("")
        o.line("def _remove(self, ctx):")
        o.indent()
        o.line("if self._valid:")
        o.line("    self._valid = False")
        o.line(f"    ctx.length -= {(width + 7) // 8}")
        o.dedent()
        o.line("")
        if any(isinstance(ft, VarbitT) for _, ft in fields):
            self.emit_varbit_codec(fields)
            o.dedent()
            o.line("")
            return
        # a header that is not whole bytes takes whole bytes in the packet, the last one padded
        # with zero bits (simple_switch's header size is rounded up to bytes)
        pad = -width % 8
        o.line("def _unpack(self, x):")
        o.indent()
        if pad:
            o.line(f"x >>= {pad}")
        shift = width
        for p, ft in fields:
            w = flat_width(ft)
            shift -= w
            raw = f"(x >> {shift})" if shift else "x"
            if shift + w < width:
                raw = f"({raw} & {ones(w)})"
            o.line(f"self.{p} = {field_value(raw, ft, w)}")
        o.line("self._valid = True")
        o.dedent()
        o.line("")
        o.line("def _pack(self):")
        o.indent()
        parts = []
        shift = width
        for p, ft in fields:
            w = flat_width(ft)
            shift -= w
            v = f"self.{p}"
            if isinstance(ft, BoolT):
                v = f"int({v})"
            elif (isinstance(ft, BitT) and ft.signed) or (isinstance(ft, EnumT) and ft.underlying.signed):
                v = f"({v} & {ones(w)})"
            parts.append(f"({v} << {shift})" if shift else v)
        packed = f"({' | '.join(parts) or '0'})"
        o.line(f"return ({packed} << {pad}).to_bytes({(width + 7) // 8}, 'big')" if pad else
               f"return {packed}.to_bytes({width // 8}, 'big')")
        o.dedent()
        o.dedent()
        o.line("")

    # -- constructors and field lists ------------------------------------------------------

    def emit_constructors(self, ingress: ast.ControlDecl) -> None:
        o = self.out
        hdr_t, meta_t, sm_t = (p.entity.type for p in ingress.params)
        for fn, t in (("new_headers", hdr_t), ("new_metadata", meta_t), ("new_standard_metadata", sm_t)):
            if not isinstance(t, StructLikeT) or t.kind != "struct":
                raise CompileError(f"ingress parameter types must be structs, got {t}", ingress.loc)
            self.bind(fn, self.cls(t))
        if sm_t.name != "standard_metadata_t":
            raise CompileError("the third ingress parameter must be standard_metadata_t", ingress.loc)
        # @field_list(i, ...) on metadata fields: what resubmit/recirculate/clone preserve
        lists: dict[int, list[str]] = {}

        def collect(t: StructLikeT, prefix: str) -> None:
            for f in t.fields:
                path = f"{prefix}.{py_field(f.name)}"
                for index in annotation_ints(f.annotations, "field_list"):
                    lists.setdefault(index, []).append(path)
                if isinstance(f.type, StructLikeT) and f.type.kind == "struct":
                    collect(f.type, path)

        collect(meta_t, "")
        o.line("def preserve_field_list(index, src, dst):")
        o.indent()
        if not lists:
            o.line("return")
        for index, paths in sorted(lists.items()):
            o.line(f"if index == {index}:")
            o.indent()
            for path in paths:
                o.line(f"dst{path} = src{path}")
            o.dedent()
        o.dedent()
        o.line("")

    # -- parser -----------------------------------------------------------------------------

    def sub_parsers(self, decl: ast.ParserDecl, found: dict) -> dict:
        """The parsers ``decl`` instantiates, directly or not (id -> decl)."""
        for local in decl.locals:
            if isinstance(local, ast.Instantiation) and isinstance(getattr(local.entity.type, "decl", None), ast.ParserDecl):
                sub = local.entity.type.decl
                if id(sub) not in found:
                    found[id(sub)] = sub
                    self.sub_parsers(sub, found)
        return found

    def emit_parser(self, decl: ast.ParserDecl, sub: bool = False) -> None:
        """The top-level parser ``parser(ctx, data)``, or (``sub``) a parser another one applies:
        ``sp_NAME(F, data, n, off, params...)`` returns the new offset and its scalar outs; a
        parser error or reject inside it carries its offset up to the top-level parser."""
        o = self.out
        self.ctx_expr = "F" if sub else "ctx"
        self.frame_vars = []
        self.path = decl.name
        params = [p for p in decl.params if getattr(p, "entity", None) is not None]
        outs = [p.entity.pyname for p in params if p.direction in ("out", "inout") and not is_aggregate(p.entity.type)]
        if sub:
            o.line(f"def sp_{decl.name}({', '.join(['F', 'data', 'n', 'off'] + [p.entity.pyname for p in params])}):")
            o.indent()
            self.sm_code = None
        else:
            packet, hdr, meta, sm = decl.params
            o.line("def parser(ctx, data):")
            o.indent()
            for p, attr in ((hdr, "hdr"), (meta, "meta"), (sm, "sm")):
                o.line(f"{p.entity.pyname} = ctx.{attr}")
            self.sm_code = sm.entity.pyname
            o.line("F = ctx   # what function calls pass as their frame")
            o.line("off = 0")
            o.line("n = len(data)")
        for local in decl.locals:
            self.emit_local_decl(local)
        states = {s.name: i for i, s in enumerate(decl.states)}
        start = states["start"]
        o.line(f"st = {start}")
        o.line("try:")
        o.indent()
        o.line("while True:")
        o.indent()
        for i, state in enumerate(decl.states):
            o.line(f"{'if' if i == 0 else 'elif'} st == {i}:  # {state.name}")
            o.indent()
            for s in state.statements:
                self.stmt(s)
            self.transition(state.transition, states)
            o.dedent()
        o.dedent()
        o.dedent()
        o.line("except ParserError as e:")
        o.indent()
        if sub:
            o.line("if e.off is None:")
            o.line("    e.off = off")
            o.line("raise")
            o.dedent()
            o.line(f"return ({', '.join(['off'] + outs)},)")
        else:
            o.line("if e.off is not None:")
            o.line("    off = e.off   # where a sub-parser stopped")
            o.line("if e.code is not None:")
            o.line(f"    {self.sm_code}.parser_error = e.code")
            o.dedent()
            o.line("ctx.payload = data[off:]")
        o.dedent()
        o.line("")

    def goto(self, target: str, states: dict[str, int]) -> None:
        if target == "accept":
            self.out.line("break")
        elif target == "reject":
            self.out.line("raise ParserError(None)")
        else:
            self.out.line(f"st = {states[target]}")
            self.out.line("continue")

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
            o.line(f"{k} = {self.ex(e)}")
            keys.append(k)
        first = True
        has_default = False
        for case in t.select.cases:
            if len(case.keysets) == 1 and isinstance(case.keysets[0], (ast.DefaultKeyset, ast.DontCare)):
                cond = "True"
            elif len(case.keysets) == 1 and isinstance(getattr(case.keysets[0], "ref", None), ValueSetEntity):
                vs = case.keysets[0].ref
                vs_name = self.bind(f"VS_{vs.decl.name}", f"RT.value_set(S, {qualified_name(vs.decl.name, vs.decl.annotations, self.path)!r})")
                if len(keys) != 1:
                    raise unsupported("value_set on a select with several expressions", case.loc)
                cond = f"{vs_name}.matches({keys[0]})"
            else:
                conds = [self.keyset_cond(k, ks) for k, ks in zip(keys, case.keysets)]
                conds = [c for c in conds if c != "True"] or ["True"]
                cond = " and ".join(conds)
            if cond == "True":
                if first:
                    self.goto(case.state, states)
                else:
                    o.line("else:")
                    o.indent()
                    self.goto(case.state, states)
                    o.dedent()
                has_default = True
                break
            o.line(f"{'if' if first else 'elif'} {cond}:")
            o.indent()
            self.goto(case.state, states)
            o.dedent()
            first = False
        if not has_default:
            o.line(f"raise ParserError({self.typed.errors['NoMatch']})")

    def keyset_cond(self, key: str, ks: ast.Expression) -> str:
        if isinstance(ks, (ast.DefaultKeyset, ast.DontCare)):
            return "True"
        if isinstance(ks, ast.Mask):
            mask = ks.mask.const_value
            return f"({key} & {mask}) == {ks.value.const_value & mask}"
        if isinstance(ks, ast.Range):
            return f"{ks.lo.const_value} <= {key} <= {ks.hi.const_value}"
        return f"{key} == {ks.const_value!r}"

    # -- controls ---------------------------------------------------------------------------

    def frame_class(self, inst: ControlInstance) -> str:
        return f"F{inst.index}"

    def emit_control_instance(self, inst: ControlInstance) -> None:
        o = self.out
        decl = inst.decl
        self.path = inst.path
        self.child_instances = inst.children
        frame_vars = [p.entity for p in decl.params if hasattr(p, "entity")]
        for local in decl.locals:
            if isinstance(local, ast.VariableDecl):
                frame_vars.append(local.entity)
        self.frame_vars = frame_vars
        self.frame_attr = {v: v.pyname for v in frame_vars}
        if inst.top:
            # no frame object per packet: the control works on the PacketContext directly
            self.ctx_expr = "F"
            for p, attr in zip(decl.params, ("hdr", "meta", "sm")):
                self.frame_attr[p.entity] = attr
        else:
            self.ctx_expr = "F._ctx"
            o.line(f"class {self.frame_class(inst)}:")
            o.indent()
            o.line(f"__slots__ = {tuple(['_ctx'] + [v.pyname for v in frame_vars])!r}")
            o.dedent()
            o.line("")
        self.sm_code = None
        for p in decl.params:
            if getattr(p, "entity", None) is not None and isinstance(p.entity.type, StructLikeT) \
                    and p.entity.type.name == "standard_metadata_t":
                self.sm_code = p.entity.pyname
        self.action_fns = {}
        self.table_fns = {}
        for local in decl.locals:
            if isinstance(local, ast.FunctionDecl):
                self.emit_function(local, inst)
        for local in decl.locals:
            if isinstance(local, ast.ActionDecl):
                self.action_fns[id(local)] = self.emit_action(local, inst, decl)
        for local in decl.locals:
            if isinstance(local, ast.TableDecl):
                self.table_fns[id(local)] = self.emit_table(local, inst)
        # the apply block
        o.line(f"def c{inst.index}(F):  # {inst.path}")
        o.indent()
        self.outs = []
        self.returns_value = False
        # the control's own variables are created here, on every apply
        own = frozenset(local.entity for local in decl.locals if isinstance(local, ast.VariableDecl))
        mark = self.alias_mark(skip=own)
        for local in decl.locals:
            if isinstance(local, ast.VariableDecl):
                self.emit_local_decl(local)
        if decl.apply is not None:
            self.block(decl.apply)
        o.line("return")
        self.insert_aliases(mark)
        o.dedent()
        o.line("")
        inst.apply_fn = f"c{inst.index}"

    def alias_mark(self, skip: frozenset = frozenset()) -> tuple:
        """Where a function body starts; ``insert_aliases`` fills in the aliases it needs."""
        return len(self.out.lines), self.out.depth, skip

    def insert_aliases(self, mark: tuple) -> None:
        """Aggregate frame variables the body uses are read once into locals (they are never
        rebound, only mutated)."""
        start, depth, skip = mark
        body = "\n".join(self.out.lines[start:])
        aliases = ["    " * depth + f"{v.pyname} = F.{self.frame_attr[v]}" for v in self.frame_vars
                   if is_aggregate(v.type) and v not in skip and re.search(rf"\b{v.pyname}\b", body)]
        self.out.lines[start:start] = aliases

    def emit_entry(self, role: str, decl: ast.ControlDecl) -> str:
        """The function the pipeline calls for a top-level control (``exit`` ends up here)."""
        o = self.out
        inst = next(i for i in self.instances if i.decl is decl and i.top)
        fn = f"run_{role}"
        o.line(f"def {fn}(ctx):")
        o.indent()
        o.line("try:")
        o.line(f"    {inst.apply_fn}(ctx)")
        o.line("except Exit:")
        o.line("    pass")
        o.dedent()
        o.line("")
        return fn

    def emit_deparser(self, decl: ast.ControlDecl) -> None:
        o = self.out
        hdr = decl.params[1]
        self.ctx_expr = "ctx"
        self.frame_vars = []
        self.sm_code = None
        o.line("def deparser(ctx):")
        o.indent()
        o.line(f"{hdr.entity.pyname} = ctx.hdr")
        o.line("F = ctx   # what function calls pass as their frame")
        o.line("out = []")
        o.line("emit = out.append")
        for local in decl.locals:
            if isinstance(local, (ast.ActionDecl, ast.TableDecl, ast.Instantiation)):
                raise unsupported("actions, tables or instances in the deparser", local.loc)
            self.emit_local_decl(local)
        if decl.apply is not None:
            self.block(decl.apply)
        o.line("out.append(ctx.payload)")
        o.line("return b''.join(out)")
        o.dedent()
        o.line("")

    # -- actions, functions, tables ----------------------------------------------------------

    def emit_action(self, decl: ast.ActionDecl, inst: ControlInstance | None, control) -> str:
        o = self.out
        fn = f"a{inst.index}_{decl.name}" if inst else f"a_{decl.name}"
        params = [p.entity.pyname for p in decl.params]
        o.line(f"def {fn}({', '.join(['F'] + params)}):  # action {decl.name}")
        o.indent()
        saved = self.frame_vars
        if inst is None:
            self.frame_vars = []
        self.outs = [p.entity for p in decl.params if p.direction in ("out", "inout") and not is_aggregate(p.entity.type)]
        self.returns_value = False
        for p in decl.params:
            if p.direction == "out" and not is_aggregate(p.entity.type):
                o.line(f"{p.entity.pyname} = {_default_value(p.entity.type)}")
        mark = self.alias_mark()
        self.block(decl.body)
        self.emit_return(None)
        self.insert_aliases(mark)
        o.dedent()
        o.line("")
        self.frame_vars = saved
        return fn

    def emit_function(self, decl: ast.FunctionDecl, inst: ControlInstance | None = None) -> None:
        """A top-level function, or (``inst``) one declared in a control, which sees its frame."""
        o = self.out
        fn = f"fn{inst.index}_{decl.name}" if inst else f"fn_{decl.name}"
        self.function_fns[id(decl)] = fn
        params = [p.entity.pyname for p in decl.params]
        o.line(f"def {fn}({', '.join(['F'] + params)}):  # function {decl.name}")
        o.indent()
        saved = self.frame_vars
        if inst is None:
            self.frame_vars = []
            self.ctx_expr = "F._ctx"
        self.outs = [p.entity for p in decl.params if p.direction in ("out", "inout") and not is_aggregate(p.entity.type)]
        self.returns_value = True
        mark = self.alias_mark()
        self.block(decl.body)
        self.emit_return(None)
        self.insert_aliases(mark)
        o.dedent()
        o.line("")
        self.frame_vars = saved

    def emit_return(self, value: str | None) -> None:
        """Functions return (value, outs...) when they have outs; actions return their outs."""
        outs = [v.pyname for v in self.outs]
        if self.returns_value:
            items = [value or "None"] + outs
            self.out.line(f"return ({', '.join(items)},)" if outs else f"return {value or 'None'}")
        elif outs:
            self.out.line(f"return ({', '.join(outs)},)")
        else:
            self.out.line("return")

    def emit_table(self, decl: ast.TableDecl, inst: ControlInstance) -> str:
        o = self.out
        qname = qualified_name(decl.name, decl.annotations, inst.path)
        tvar = self.bind(f"T{inst.index}_{decl.name}", f"S.tables[{qname!r}]")
        lookup = self.bind(f"L{inst.index}_{decl.name}", f"{tvar}.lookup")
        acts = f"A{inst.index}_{decl.name}"
        entries = []
        for entity, ref in zip(decl.action_entities, decl.actions):
            adecl = entity.decl
            aq = qualified_name(adecl.name, adecl.annotations, inst.path if entity.control else None)
            fnname = self.action_fns[id(adecl)] if entity.control else self.top_action_fns[id(adecl)]
            if ref.args:
                fnname = self.bound_action(fnname, adecl, ref)
            entries.append(f"{aq!r}: {fnname}")
        if decl.default_action is None and not any(e.startswith("'NoAction'") for e in entries):
            # p4c's implicit default: NoAction, added to the table as a default-only action
            entries.append(f"'NoAction': {self.top_action_fns[id(self.typed.top_actions['NoAction'])]}")
        fn = f"t{inst.index}_{decl.name}"
        o.line(f"def {fn}(F):  # table {qname}")
        o.indent()
        self.outs = []
        mark = self.alias_mark()
        match_keys = [k for k in decl.keys if k.match_kind != "selector"]
        selector_keys = [k for k in decl.keys if k.match_kind == "selector"]
        key_code = ", ".join(self.key_value(k) for k in match_keys)
        o.line(f"e = {lookup}(({key_code}{',' if match_keys else ''}))")
        o.line("if e is None:")
        o.indent()
        o.line(f"a = {tvar}.default")
        o.line("hit = False")
        if decl.meters is not None:
            o.line(f"{self.ctx_expr}.meter_color = RT.GREEN")
        o.dedent()
        o.line("else:")
        o.indent()
        o.line("hit = True")
        if decl.implementation is not None:
            sel = ", ".join(f"({self.key_value(k)}, {key_width(k)})" for k in selector_keys)
            o.line(f"a = {tvar}.resolve(e, ({sel}{',' if selector_keys else ''}))")
        else:
            o.line("a = e.action")
        if decl.counters is not None:
            o.line("e.packets += 1")
            o.line(f"e.bytes += {self.ctx_expr}.sm.packet_length")
        if decl.meters is not None:
            unit = self.meter_unit(decl.meters.ref)
            o.line(f"{self.ctx_expr}.meter_color = RT.execute_direct_meter(e, {unit!r}, "
                   f"{self.ctx_expr}.sm.packet_length, {self.ctx_expr}.now_us)")
        o.dedent()
        o.line(f"{acts}[a.name](F, *a.args)")
        o.line("return hit, a.name")
        self.insert_aliases(mark)
        o.dedent()
        o.line(f"{acts} = {{{', '.join(entries)}}}")
        o.line("")
        return fn

    def bound_action(self, fnname: str, adecl: ast.ActionDecl, ref: ast.ActionRef) -> str:
        """``actions = { a(x); }``: a function the table calls with the control-plane arguments
        that passes the bound directional arguments too (copy-in, copy-out)."""
        o = self.out
        wrapper = self.fresh("bound")
        o.line(f"def {wrapper}(F, *cp):  # {ref.name} with bound arguments")
        o.indent()
        mark = self.alias_mark()
        args, outs = [], []
        for arg, p in zip(ref.args, [p for p in adecl.params if p.direction]):
            scalar = not is_aggregate(p.entity.type)
            args.append(_default_value(p.entity.type) if p.direction == "out" and scalar else self.ex(arg.value))
            if p.direction in ("out", "inout") and scalar:
                outs.append(arg.value)
        o.line(f"r = {fnname}(F, {''.join(a + ', ' for a in args)}*cp)")
        for i, target in enumerate(outs):
            self.assign(target, f"r[{i}]")
        self.insert_aliases(mark)
        o.dedent()
        o.line("")
        return wrapper

    def meter_unit(self, inst: InstanceEntity) -> str:
        arg = inst.args[0].value if inst.args else None
        member = getattr(arg, "member", "")
        return "packets" if member == "packets" else "bytes"

    def key_value(self, k: ast.KeyElement) -> str:
        code = self.ex(k.expr)
        if isinstance(k.expr.checked_type, BoolT):
            return f"int({code})"
        return code


    # -- statements -------------------------------------------------------------------------

    def block(self, block: ast.BlockStatement) -> None:
        before = len(self.out.lines)
        for s in block.statements:
            self.stmt(s)
        if len(self.out.lines) == before:
            self.out.line("pass")

    def emit_local_decl(self, local) -> None:
        if isinstance(local, ast.ConstDecl):
            return
        if isinstance(local, ast.ValueSetDecl):
            return
        if isinstance(local, (ast.Instantiation, ast.FunctionDecl)):
            return   # externs are bound from the runtime state, sub-controls are frames
        if not isinstance(local, ast.VariableDecl):
            raise unsupported(f"local {type(local).__name__}", local.loc)
        var: Var = local.entity
        target = self.var_code(var)
        if is_aggregate(var.type):
            self.out.line(f"{target} = {self.new_value(var.type)}")
            if var.storage == "frame":
                self.out.line(f"F.{self.frame_attr[var]} = {var.pyname}")
            if local.init is not None:
                self.out.line(f"{var.pyname}._assign({self.ex(local.init)})")
        else:
            init = self.ex(local.init) if local.init is not None else _default_value(var.type)
            self.out.line(f"{target} = {init}")

    def stmt(self, s: ast.Node) -> None:
        o = self.out
        if isinstance(s, ast.AssignmentStatement):
            self.assign(s.target, self.ex(s.value), s.value)
        elif isinstance(s, ast.MethodCallStatement):
            self.call_stmt(s.call, s.result)
        elif isinstance(s, ast.BlockStatement):
            self.block(s)
        elif isinstance(s, ast.IfStatement):
            o.line(f"if {self.ex(s.cond)}:")
            o.indent()
            self.stmt_or_pass(s.then)
            o.dedent()
            if s.otherwise is not None:
                o.line("else:")
                o.indent()
                self.stmt_or_pass(s.otherwise)
                o.dedent()
        elif isinstance(s, ast.SwitchStatement):
            self.switch(s)
        elif isinstance(s, ast.ReturnStatement):
            self.emit_return(self.ex(s.value) if s.value is not None else None)
        elif isinstance(s, ast.ForStatement):
            for clause in s.init:
                self.stmt(clause)
            first = self.fresh("first")
            o.line(f"{first} = True")
            o.line("while True:")
            o.indent()
            if s.update:       # the update runs before every test but the first, so continue runs it
                o.line(f"if {first}:")
                o.line(f"    {first} = False")
                o.line("else:")
                o.indent()
                for clause in s.update:
                    self.stmt(clause)
                o.dedent()
            if s.cond is not None:
                o.line(f"if not {self.ex(s.cond)}:")
                o.line("    break")
            self.stmt_or_pass(s.body)
            o.dedent()
        elif isinstance(s, ast.ForInStatement):
            var = s.var.entity
            item = self.fresh("i")
            c = s.collection
            if isinstance(c, ast.Range):
                o.line(f"for {item} in range({self.ex(c.lo)}, {self.ex(c.hi)} + 1):")
                o.indent()
                o.line(f"{self.var_code(var)} = {item}")
            else:
                if s.var.type is not None:
                    o.line(f"{var.pyname} = {self.new_value(var.type)}")
                o.line(f"for {item} in {self.ex(c)}.hs:")
                o.indent()
                o.line(f"{var.pyname}._assign({item})")
            self.stmt_or_pass(s.body)
            o.dedent()
        elif isinstance(s, ast.BreakStatement):
            o.line("break")
        elif isinstance(s, ast.ContinueStatement):
            o.line("continue")
        elif isinstance(s, ast.ExitStatement):
            o.line("raise Exit()")
        elif isinstance(s, ast.EmptyStatement):
            pass
        elif isinstance(s, (ast.VariableDecl, ast.ConstDecl)):
            self.emit_local_decl(s)
        elif isinstance(s, ast.Instantiation):
            raise unsupported("instances declared inside a block", s.loc)
        else:
            raise unsupported(f"statement {type(s).__name__}", s.loc)

    def stmt_or_pass(self, s: ast.Node) -> None:
        before = len(self.out.lines)
        self.stmt(s)
        if len(self.out.lines) == before:
            self.out.line("pass")

    def switch(self, s: ast.SwitchStatement) -> None:
        o = self.out
        value = self.fresh("sw")
        t = s.expr.checked_type
        if isinstance(t, ActionRunT):
            call = s.expr.expr        # Member(MethodCall(t.apply), 'action_run')
            o.line(f"{value} = {self.ex(call)}[1]")
            path = self.path

            def label_code(label):
                entity: ActionEntity = label.ref
                return repr(qualified_name(entity.decl.name, entity.decl.annotations,
                                           path if entity.control else None))
        else:
            o.line(f"{value} = {self.ex(s.expr)}")

            def label_code(label):
                return repr(label.const_value)
        pending: list[str] = []
        first = True
        for case in s.cases:
            if isinstance(case.label, ast.DefaultKeyset):
                cond = None
            else:
                pending.append(label_code(case.label))
                if case.body is None:
                    continue
                cond = " or ".join(f"{value} == {p}" for p in pending)
            pending = []
            if cond is None:
                if first:
                    o.line("if True:")
                else:
                    o.line("else:")
            else:
                o.line(f"{'if' if first else 'elif'} {cond}:")
            first = False
            o.indent()
            if case.body is not None:
                self.block(case.body)
            else:
                o.line("pass")
            o.dedent()
            if cond is None:
                break

    # -- assignment --------------------------------------------------------------------------

    def var_code(self, var: Var) -> str:
        if var.storage == "frame" and not is_aggregate(var.type):
            return f"F.{self.frame_attr[var]}"
        return var.pyname

    def assign(self, target: ast.Expression, value: str, value_node=None) -> None:
        o = self.out
        t = target.checked_type
        if isinstance(target, ast.DontCare):
            o.line(value)
            return
        if isinstance(t, (StructLikeT, StackT)):
            o.line(f"{self.ex(target)}._assign({value})")
            return
        if isinstance(target, ast.Slice):
            base_t = target.expr.checked_type
            lo, hi = target.lo.const_value, target.hi.const_value
            m = ones(hi - lo + 1) << lo
            keep = ones(base_t.width) & ~m
            new = f"(({self.ex(target.expr)} & {keep}) | (({value}) << {lo}))"
            if base_t.signed:
                new = f"RT.to_signed({new}, {base_t.width})"
            self.assign(target.expr, new)
            return
        o.line(f"{self.lvalue(target)} = {value}")

    def lvalue(self, e: ast.Expression) -> str:
        if isinstance(e, ast.Name):
            return self.var_code(e.ref)
        return self.ex(e)

    # -- calls as statements -----------------------------------------------------------------

    def call_stmt(self, call: ast.MethodCall, result: ast.Expression | None = None) -> None:
        kind = call.kind
        o = self.out
        if kind in ("action", "function", "control_apply"):
            code, outs = self.call_with_outs(call)
            if kind == "function" and outs:
                outs = [result] + outs
            elif result is not None:
                self.assign(result, code)
                return
            if outs:
                tmp = self.fresh("r")
                o.line(f"{tmp} = {code}")
                for i, target in enumerate(outs):
                    if target is not None:
                        self.assign(target, f"{tmp}[{i}]")
            else:
                o.line(code)
            return
        if kind == "table_apply":
            o.line(self.ex(call))
            return
        if kind == "parser_apply":
            self.apply_sub_parser(call)
            return
        if kind in ("setValid", "setInvalid"):
            base = call.callee.expr
            if isinstance(base, ast.Member) and isinstance(base.expr.checked_type, StructLikeT) \
                    and base.expr.checked_type.kind == "header_union":
                if kind == "setValid":
                    o.line(f"{self.ex(base.expr)}._only({self.ex(base)})")
                else:
                    o.line(f"{self.ex(base)}._valid = False")
                return
            # simple_switch's add_header/remove_header: setValid zeroes an invalid header, and
            # both adjust the packet-length register (standard_metadata.packet_length in egress)
            o.line(f"{self.ex(base)}.{'_add' if kind == 'setValid' else '_remove'}({self.ctx_expr})")
            return
        if kind in ("push_front", "pop_front"):
            o.line(f"{self.ex(call.callee.expr)}.{kind}({call.count})")
            return
        if kind == "extract":
            self.extract(call.args[0].value, call.args[1].value if len(call.args) == 2 else None)
            return
        if kind == "advance":
            amount = call.args[0].value
            if hasattr(amount, "const_value") and amount.const_value % 8:
                raise unsupported("advancing by a number of bits that is not a multiple of 8", amount.loc)
            o.line(f"off += {self.ex(amount)} >> 3")
            o.line(f"if off > n: raise ParserError({self.typed.errors['PacketTooShort']})")
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
        o.line(self.ex(call))

    def call_with_outs(self, call: ast.MethodCall) -> tuple[str, list]:
        """The call expression and the l-values that receive its scalar out/inout results."""
        args = ["F"] if call.kind != "control_apply" else []
        outs = []
        matched = getattr(call, "matched_args", [])
        for arg, p in matched:
            pt = p.entity.type if hasattr(p, "entity") else arg.value.checked_type
            if p.direction == "out" and not is_aggregate(pt):
                args.append(_default_value(pt))
                outs.append(arg.value)
            elif p.direction == "inout" and not is_aggregate(pt):
                args.append(self.ex(arg.value))
                outs.append(arg.value)
            else:
                args.append(self.ex(arg.value))
        if call.kind == "action":
            entity: ActionEntity = call.target
            fn = self.action_fns.get(id(entity.decl)) if entity.control else self.top_action_fns[id(entity.decl)]
            return f"{fn}({', '.join(args)})", outs
        if call.kind == "function":
            return f"{self.function_fns[id(call.target.decl)]}({', '.join(args)})", outs
        # sub-control apply: a fresh frame, parameters in, scalar outs read back from the frame
        child = self.child_instances[id(call.target.decl)]
        frame = self.fresh("f")
        self.out.line(f"{frame} = {self.frame_class(child)}()")
        self.out.line(f"{frame}._ctx = {self.ctx_expr}")
        for (arg, p), code in zip(matched, args):
            self.out.line(f"{frame}.{p.entity.pyname} = {code}")
        self.out.line(f"c{child.index}({frame})")
        items = [f"{frame}.{p.entity.pyname}" for arg, p in matched
                 if p.direction in ("out", "inout") and not is_aggregate(p.entity.type)]
        return f"({', '.join(items)},)" if items else "None", outs

    def lookahead_struct(self, t: StructLikeT, e: ast.Expression) -> str:
        """``lookahead<S>()`` of a struct of bit<W>/int<W>/bool/enum fields, laid out as a header."""
        fn = f"RT_look_{t.name}"
        if fn not in self.bound_names:
            lines = [f"def {fn}(x):", f"    o = {self.cls(t)}()"]
            shift = sum(flat_width(f.type) if not is_aggregate(f.type) else 0 for f in t.fields)
            for f in t.fields:
                if is_aggregate(f.type) or isinstance(f.type, VarbitT):
                    raise unsupported(f"lookahead of struct {t.name}: field '{f.name}' is not a scalar", e.loc)
                w = flat_width(f.type)
                shift -= w
                raw = f"((x >> {shift}) & {ones(w)})"
                if isinstance(f.type, BoolT):
                    raw = f"({raw} == 1)"
                elif (isinstance(f.type, BitT) and f.type.signed) or (isinstance(f.type, EnumT) and f.type.underlying.signed):
                    raw = f"RT.to_signed({raw}, {w})"
                lines.append(f"    o.{py_field(f.name)} = {raw}")
            lines.append("    return o")
            self.bound_names.add(fn)
            self.bound.extend(lines)
        width = flat_width(t)
        nbytes = (width + 7) // 8
        too_short = self.typed.errors['PacketTooShort']
        return (f"({fn}(int.from_bytes(data[off:off + {nbytes}], 'big') >> {nbytes * 8 - width}) "
                f"if off + {nbytes} <= n else RT.too_short({too_short}))")

    def apply_sub_parser(self, call: ast.MethodCall) -> None:
        """``p.apply(packet, ...)`` in a parser state: copy-in, run, copy-out (an out struct or
        header starts invalid and replaces the argument)."""
        o = self.out
        args, outs, replaced = [], [], []
        for arg, p in call.matched_args:
            if getattr(p, "entity", None) is None:
                continue                     # the packet: the sub-parser reads data from off
            t = p.entity.type
            if is_aggregate(t):
                if p.direction == "out":
                    fresh = self.fresh("o")
                    o.line(f"{fresh} = {self.new_value(t)}")
                    args.append(fresh)
                    replaced.append((arg.value, fresh))
                else:
                    args.append(self.ex(arg.value))
            elif p.direction == "out":
                args.append(_default_value(t))
                outs.append(arg.value)
            else:
                args.append(self.ex(arg.value))
                if p.direction == "inout":
                    outs.append(arg.value)
        r = self.fresh("r")
        o.line(f"{r} = sp_{call.target.type.decl.name}({', '.join(['F', 'data', 'n', 'off'] + args)})")
        o.line(f"off = {r}[0]")
        for i, target in enumerate(outs, 1):
            self.assign(target, f"{r}[{i}]")
        for target, fresh in replaced:
            o.line(f"{self.ex(target)}._assign({fresh})")

    # -- parser and deparser primitives -------------------------------------------------------

    def extract(self, target: ast.Expression, length: ast.Expression | None = None) -> None:
        o = self.out
        t: StructLikeT = target.checked_type
        nbytes = (t.width + 7) // 8
        too_short = self.typed.errors["PacketTooShort"]
        h = self.fresh("h")
        if isinstance(target, ast.Member) and isinstance(target.expr.checked_type, StackT) and target.member == "next":
            stack = self.fresh("s")
            o.line(f"{stack} = {self.ex(target.expr)}")
            o.line(f"if {stack}.nxt >= {target.expr.checked_type.size}: raise ParserError({self.typed.errors['StackOutOfBounds']})")
            o.line(f"{h} = {stack}.hs[{stack}.nxt]")
            o.line(f"{stack}.nxt += 1")
        else:
            o.line(f"{h} = {self.ex(target)}")
        if length is None:
            o.line(f"if off + {nbytes} > n: raise ParserError({too_short})")
            o.line(f"{h}._unpack(int.from_bytes(data[off:off + {nbytes}], 'big'))")
            o.line(f"off += {nbytes}")
        else:
            # simple_switch: a length above the field's maximum is HeaderTooShort, a header that
            # does not end on a byte ParserInvalidArgument, then the packet must hold it
            vt = next(f.type for f in t.fields if isinstance(f.type, VarbitT))
            vlen = self.fresh("len")
            o.line(f"{vlen} = {self.ex(length)}")
            o.line(f"if {vlen} > {vt.max_width}: raise ParserError({self.typed.errors['HeaderTooShort']})")
            o.line(f"if ({t.width} + {vlen}) % 8: raise ParserError({self.typed.errors['ParserInvalidArgument']})")
            o.line(f"{vlen}_bytes = ({t.width} + {vlen}) >> 3")
            o.line(f"if off + {vlen}_bytes > n: raise ParserError({too_short})")
            o.line(f"{h}._unpack(int.from_bytes(data[off:off + {vlen}_bytes], 'big'), {vlen})")
            o.line(f"off += {vlen}_bytes")
        if isinstance(target, ast.Member) and isinstance(target.expr.checked_type, StructLikeT) \
                and target.expr.checked_type.kind == "header_union":
            o.line(f"{self.ex(target.expr)}._only({h})")

    def emit(self, e: ast.Expression) -> None:
        o = self.out
        t = e.checked_type
        code = self.ex(e)
        if isinstance(t, StackT) and t.element.kind == "header_union":
            o.line(f"for _u in {code}.hs:")
            for f in t.element.fields:
                o.line(f"    if _u.{py_field(f.name)}._valid: emit(_u.{py_field(f.name)}._pack())")
        elif isinstance(t, StackT):
            o.line(f"for _h in {code}.hs:")
            o.line("    if _h._valid: emit(_h._pack())")
        elif t.kind == "header":
            h = self.fresh("h")
            o.line(f"{h} = {code}")
            o.line(f"if {h}._valid: emit({h}._pack())")
        elif t.kind == "header_union":
            for f in t.fields:
                o.line(f"if {code}.{py_field(f.name)}._valid: emit({code}.{py_field(f.name)}._pack())")
        else:
            for f in t.fields:
                member = ast.Member(loc=e.loc, expr=e, member=f.name)
                member.checked_type = f.type
                self.emit(member)

    # -- externs ------------------------------------------------------------------------------

    def arg(self, call: ast.MethodCall, name: str):
        for a, p in call.matched_args:
            if p.name == name:
                return a.value
        return None

    def arg_code(self, call, name: str, default: str | None = None) -> str:
        value = self.arg(call, name)
        if value is None:
            if default is None:
                raise CompileError(f"missing argument '{name}'", call.loc)
            return default
        return self.ex(value)

    def positional(self, call) -> list[ast.Expression]:
        return [a.value for a, _ in call.matched_args]

    def fields_of(self, e: ast.Expression) -> list[tuple[str, int]]:
        """(value code, width) pairs of a field list: tuple, struct, header or scalar."""
        t = e.checked_type
        if isinstance(e, ast.ListExpression):
            return [pair for el in e.elements for pair in self.fields_of(el)]
        if isinstance(t, StructLikeT):
            base = self.ex(e)
            out = []
            for f in t.fields:
                member = ast.Member(loc=e.loc, expr=e, member=f.name)
                member.checked_type = f.type
                if isinstance(f.type, StructLikeT):
                    out.extend(self.fields_of(member))
                else:
                    out.append((self.scalar_bits(f"{base}.{py_field(f.name)}", f.type), flat_width(f.type)))
            return out
        if isinstance(t, IntegerT):
            raise CompileError("field list values need a width (cast the constant)", e.loc)
        return [(self.scalar_bits(self.ex(e), t), flat_width(t))]

    def scalar_bits(self, code: str, t) -> str:
        if isinstance(t, BoolT):
            return f"int({code})"
        if isinstance(t, BitT) and t.signed:
            return f"({code} & {ones(t.width)})"
        return code

    def algorithm(self, e: ast.Expression) -> str:
        t = e.checked_type
        if not isinstance(t, EnumT) or not hasattr(e, "const_value"):
            raise CompileError("the hash algorithm must be a HashAlgorithm constant", e.loc)
        return next(name for name, value in t.members.items() if value == e.const_value)

    def packed_fields(self, e: ast.Expression) -> tuple[str, int]:
        """The field list concatenated MSB first as one integer expression, and its width
        (what hashing.pack_fields does at run time, with the shifts computed here)."""
        pairs = self.fields_of(e)
        total = sum(w for _, w in pairs)
        parts, shift = [], total
        for code, w in pairs:
            shift -= w
            parts.append(f"({code} << {shift})" if shift else code)
        return f"({' | '.join(parts) or '0'})", total

    def packed_bytes(self, e: ast.Expression, payload: str) -> str:
        """The byte buffer BMv2 hashes: the fields zero-padded to a byte boundary (+ payload)."""
        code, nbits = self.packed_fields(e)
        pad = -nbits % 8
        data = f"({code} << {pad}).to_bytes({(nbits + pad) // 8}, 'big')" if pad else f"{code}.to_bytes({nbits // 8}, 'big')"
        return data + payload

    def checksum_code(self, algo: ast.Expression, data: ast.Expression, width: int, payload: str) -> str:
        name = self.algorithm(algo)
        if name == "csum16":
            code, nbits = self.packed_fields(data)
            return f"RT.csum16_of({code}, {nbits}{', ' + payload if payload else ''})"
        return f"S.hash_unit.compute({name!r}, {self.packed_bytes(data, ' + ' + payload if payload else '')}) & {ones(width)}"

    def extern_function(self, call: ast.MethodCall) -> None:
        o = self.out
        name = call.target.name
        ctx = self.ctx_expr
        args = self.positional(call)
        if name == "mark_to_drop":
            sm = self.ex(args[0]) if args else self.require_sm(call)
            o.line(f"{sm}.egress_spec = 511")
            o.line(f"{sm}.mcast_grp = 0")
        elif name == "verify":
            o.line(f"if not {self.ex(args[0])}: raise ParserError({self.ex(args[1])})")
        elif name == "hash":
            result, algo, base, data, maxv = args
            width = flat_width(result.checked_type)
            h = f"S.hash_unit.compute({self.algorithm(algo)!r}, {self.packed_bytes(data, '')})"
            # as hashing.v1model_hash: base + h % max, h itself when max is 0, cut to the width
            if hasattr(maxv, "const_value"):
                reduced = f"{self.ex(base)} + {h} % {maxv.const_value}" if maxv.const_value else h
            else:
                m = self.fresh("max")
                o.line(f"{m} = {self.ex(maxv)}")
                reduced = f"({self.ex(base)} + {h} % {m} if {m} else {h})"
            self.assign(result, f"(({reduced}) & {ones(width)})")
        elif name == "random":
            result, lo, hi = args
            self.assign(result, f"RT.random_source.randint({self.ex(lo)}, {self.ex(hi)})")
        elif name == "digest":
            data = args[1]
            t = call.tvars.get("T") if getattr(call, "tvars", None) else None
            t = t or data.checked_type
            if not isinstance(t, StructLikeT):
                raise unsupported("digest of something other than a struct", call.loc)
            values = ", ".join(c for c, _ in self.fields_of(data))
            o.line(f"S.digests.append(({t.name!r}, ({values},)))")
        elif name in ("clone", "clone_preserving_field_list"):
            o.line(f"{ctx}.clone_session = {self.ex(args[1])}")
            o.line(f"{ctx}.clone_field_list = {self.ex(args[2]) if len(args) > 2 else 'None'}")
        elif name == "resubmit_preserving_field_list":
            o.line(f"{ctx}.resubmit_field_list = {self.ex(args[0])}")
        elif name == "recirculate_preserving_field_list":
            o.line(f"{ctx}.recirculate_field_list = {self.ex(args[0])}")
        elif name == "truncate":
            o.line(f"{ctx}.truncate_to = {self.ex(args[0])}")
        elif name in ("verify_checksum", "verify_checksum_with_payload"):
            cond, data, checksum, algo = args
            payload = f"{ctx}.payload" if name.endswith("payload") else ""
            computed = self.checksum_code(algo, data, flat_width(checksum.checked_type), payload)
            o.line(f"if {self.ex(cond)} and {computed} != {self.ex(checksum)}:")
            o.line(f"    {ctx}.sm.checksum_error = 1")
        elif name in ("update_checksum", "update_checksum_with_payload"):
            cond, data, checksum, algo = args
            payload = f"{ctx}.payload" if name.endswith("payload") else ""
            o.line(f"if {self.ex(cond)}:")
            o.indent()
            self.assign(checksum, self.checksum_code(algo, data, flat_width(checksum.checked_type), payload))
            o.dedent()
        elif name == "log_msg":
            values = self.field_codes(args[1]) if len(args) > 1 else "()"
            o.line(f"RT.log_msg({self.ex(args[0])}, {values})")
        elif name in ("assert", "assume"):
            o.line(f"if not {self.ex(args[0])}: RT.failed_assertion({str(call.loc)!r})")
        else:
            raise unsupported(f"extern function '{name}'", call.loc)

    def field_codes(self, e: ast.Expression) -> str:
        if isinstance(e, ast.ListExpression):
            return "(" + "".join(self.ex(el) + ", " for el in e.elements) + ")"
        return f"({self.ex(e)},)"

    def require_sm(self, call) -> str:
        if self.sm_code is None:
            raise CompileError("mark_to_drop() needs standard_metadata here", call.loc)
        return self.sm_code

    def extern_ref(self, inst: InstanceEntity) -> tuple[str, str]:
        """(Python name bound to the runtime object, fully qualified name)."""
        path = self.path if inst.control is not None else None
        qname = instance_name(inst, path)
        kind = inst.type.name
        table = {"register": "registers", "counter": "counters", "meter": "meters"}.get(kind)
        safe = "".join(c if c.isalnum() else "_" for c in qname)
        if table is None:
            return f"X_{safe}", qname
        return self.bind(f"X_{safe}", f"S.{table}[{qname!r}]"), qname

    def extern_method(self, call: ast.MethodCall) -> None:
        inst: InstanceEntity = call.target
        kind, method = inst.type.name, call.method_name
        args = self.positional(call)
        ctx = self.ctx_expr
        obj, qname = self.extern_ref(inst)
        if kind == "register" and method == "read":
            self.assign(args[0], f"{obj}.dp_read({self.ex(args[1])})")
        elif kind == "register" and method == "write":
            self.out.line(f"{obj}.dp_write({self.ex(args[0])}, {self.ex(args[1])})")
        elif kind == "counter" and method == "count":
            self.out.line(f"{obj}.count({self.ex(args[0])}, {ctx}.sm.packet_length)")
        elif kind == "direct_counter" and method == "count":
            pass   # the table counts its entry on every hit
        elif kind == "meter" and method == "execute_meter":
            self.assign(args[1], f"{obj}.execute({self.ex(args[0])}, {ctx}.sm.packet_length, {ctx}.now_us)")
        elif kind == "direct_meter" and method == "read":
            self.assign(args[0], f"{ctx}.meter_color")
        else:
            raise unsupported(f"{kind}.{method}", call.loc)

    # -- expressions -------------------------------------------------------------------------

    def ex(self, e: ast.Expression) -> str:
        if hasattr(e, "const_value") and not isinstance(e.checked_type, (StructLikeT, StackT, TupleT)):
            v = e.const_value
            return repr(bool(v)) if isinstance(e.checked_type, BoolT) else repr(v)
        method = getattr(self, "x_" + type(e).__name__, None)
        if method is None:
            raise unsupported(f"expression {type(e).__name__}", e.loc)
        return method(e)

    def x_StringLiteral(self, e: ast.StringLiteral) -> str:
        return repr(e.value)

    def x_Name(self, e: ast.Name) -> str:
        ref = e.ref
        if isinstance(ref, Var):
            return self.var_code(ref)
        if isinstance(ref, Const):
            return repr(ref.value)
        raise unsupported(f"'{e.name}' as a value", e.loc)

    def x_Member(self, e: ast.Member) -> str:
        bt = e.expr.checked_type
        base = self.ex(e.expr)
        if isinstance(bt, StackT):
            if e.member == "last":
                return f"{base}.last()"
            if e.member == "lastIndex":
                return f"(({base}.nxt - 1) & 0xffffffff)"
            if e.member == "next":
                return f"{base}.hs[{base}.nxt]"
        if isinstance(bt, ApplyResultT):
            if e.member == "hit":
                return f"{base}[0]"
            if e.member == "miss":
                return f"(not {base}[0])"
            return f"{base}[1]"
        return f"{base}.{py_field(e.member)}"

    def x_ArrayIndex(self, e: ast.ArrayIndex) -> str:
        return f"{self.ex(e.expr)}.hs[{self.ex(e.index)}]"

    def x_Slice(self, e: ast.Slice) -> str:
        lo, hi = e.lo.const_value, e.hi.const_value
        base = self.ex(e.expr)
        m = ones(hi - lo + 1)
        return f"(({base} >> {lo}) & {m})" if lo else f"({base} & {m})"

    def x_Unary(self, e: ast.Unary) -> str:
        x = self.ex(e.operand)
        t = e.checked_type
        if e.op == "!":
            return f"(not {x})"
        if e.op == "+":
            return x
        if e.op == "~":
            return f"(~{x})" if t.signed else f"({x} ^ {ones(t.width)})"
        return self.wrap(f"-{x}", t)

    def wrap(self, code: str, t) -> str:
        if not isinstance(t, BitT):
            return f"({code})"
        if t.signed:
            h = 1 << (t.width - 1)
            return f"(((({code}) + {h}) & {ones(t.width)}) - {h})"
        return f"(({code}) & {ones(t.width)})"

    def x_Binary(self, e: ast.Binary) -> str:
        op = e.op
        lt = e.left.checked_type
        l, r = self.ex(e.left), self.ex(e.right)
        if op == "&&":
            return f"({l} and {r})"
        if op == "||":
            return f"({l} or {r})"
        if op in ("==", "!=", "<", "<=", ">", ">="):
            return f"({l} {op} {r})"
        t = e.checked_type
        if op == "++":
            rt = e.right.checked_type
            if rt.signed:
                r = f"({r} & {ones(rt.width)})"
            if lt.signed:
                l = f"({l} & {ones(lt.width)})"
                return f"RT.to_signed(({l} << {rt.width}) | {r}, {t.width})"
            return f"(({l} << {rt.width}) | {r})"
        if op in ("&", "|", "^"):
            return f"({l} {op} {r})"
        if op in ("+", "-", "*"):
            return self.wrap(f"{l} {op} {r}", t)
        if op in ("/", "%"):
            if hasattr(e.right, "const_value"):
                return f"({l} {'//' if op == '/' else '%'} {r})"
            # the spec leaves x / 0 undefined; we give 0 rather than stop the switch
            return f"RT.{'div' if op == '/' else 'mod'}({l}, {r})"
        if op in ("|+|", "|-|"):
            sym = "+" if op == "|+|" else "-"
            if t.signed:
                h = 1 << (t.width - 1)
                return f"max(min({l} {sym} {r}, {h - 1}), {-h})"
            return f"min({l} + {r}, {ones(t.width)})" if sym == "+" else f"max({l} - {r}, 0)"
        if op == "<<":
            if hasattr(e.right, "const_value"):
                amount = e.right.const_value
                if amount >= t.width:
                    return "0"
                return self.wrap(f"{l} << {amount}", t)
            if t.signed:
                return f"RT.to_signed(RT.shl({l} & {ones(t.width)}, {r}, {t.width}), {t.width})"
            return f"RT.shl({l}, {r}, {t.width})"
        if op == ">>":
            return f"({l} >> {r})"
        raise unsupported(f"operator {op}", e.loc)

    def x_Ternary(self, e: ast.Ternary) -> str:
        return f"({self.ex(e.then)} if {self.ex(e.cond)} else {self.ex(e.otherwise)})"

    def x_Cast(self, e: ast.Cast) -> str:
        t, st = e.checked_type, e.expr.checked_type
        x = self.ex(e.expr)
        if isinstance(t, StructLikeT):
            return x
        if isinstance(t, BoolT):
            return f"({x} == 1)" if isinstance(st, BitT) else x
        if isinstance(st, BoolT):
            return f"int({x})"
        if isinstance(t, EnumT):
            t = t.underlying
        if isinstance(st, EnumT):
            st = st.underlying
        if isinstance(t, BitT) and isinstance(st, BitT):
            if t.signed:
                if not st.signed and st.width <= t.width - 1:
                    return x       # widening an unsigned value into a wider signed type
                h = 1 << (t.width - 1)
                return f"(((({x}) & {ones(t.width)}) ^ {h}) - {h})"
            if not st.signed and st.width <= t.width:
                return x
            return f"({x} & {ones(t.width)})"
        return x

    def x_ListExpression(self, e: ast.ListExpression) -> str:
        t = e.checked_type
        if isinstance(t, StructLikeT):
            return self.construct(t, [(f.name, el) for f, el in zip(t.fields, e.elements)])
        return "(" + "".join(self.ex(el) + ", " for el in e.elements) + ")"

    def x_StructInitializer(self, e: ast.StructInitializer) -> str:
        t = e.checked_type
        return self.construct(t, [(nf.name, nf.value) for nf in e.fields])

    def construct(self, t: StructLikeT, values) -> str:
        """A fresh object of ``t`` from field values (a header initialiser makes it valid)."""
        tmp_fn = f"RT_new_{t.name}"
        if tmp_fn not in self.bound_names:
            lines = [f"def {tmp_fn}(*v):", f"    o = {self.cls(t)}()"]
            for i, f in enumerate(t.fields):
                if is_aggregate(f.type):
                    lines.append(f"    o.{py_field(f.name)}._assign(v[{i}])")
                else:
                    lines.append(f"    o.{py_field(f.name)} = v[{i}]")
            if t.kind == "header":
                lines.append("    o._valid = True")
            lines.append("    return o")
            self.bound_names.add(tmp_fn)
            self.bound.extend(lines)
        by_name = dict(values)
        return f"{tmp_fn}({', '.join(self.ex(by_name[f.name]) for f in t.fields)})"

    def x_MethodCall(self, e: ast.MethodCall) -> str:
        kind = e.kind
        if kind == "isValid":
            base = e.callee.expr
            if isinstance(base.checked_type, StructLikeT) and base.checked_type.kind == "header_union":
                return f"{self.ex(base)}._isvalid()"
            return f"{self.ex(base)}._valid"
        if kind == "table_apply":
            return f"{self.table_fns[id(e.target.decl)]}(F)"
        if kind == "function":
            code, outs = self.call_with_outs(e)
            if outs:
                raise unsupported("functions with out parameters inside expressions", e.loc)
            return code
        if kind == "lookahead":
            t = e.checked_type
            too_short = self.typed.errors['PacketTooShort']
            if isinstance(t, StructLikeT) and t.kind == "header":
                return f"RT.lookahead_header({self.cls(t)}, data, off, {(t.width + 7) // 8}, {too_short})"
            if isinstance(t, StructLikeT) and t.kind == "struct":
                return self.lookahead_struct(t, e)
            if not isinstance(t, BitT):
                raise unsupported(f"lookahead of {t}", e.loc)
            nbytes = (t.width + 7) // 8
            return (f"(int.from_bytes(data[off:off + {nbytes}], 'big') >> {nbytes * 8 - t.width} "
                    f"if off + {nbytes} <= n else RT.too_short({too_short}))")
        if kind == "length":
            return "len(data)"
        raise unsupported(f"calling {kind} inside an expression", e.loc)


def generate(typed: TypedProgram, name: str) -> str:
    """The Python source of the program (see the module docstring)."""
    return Generator(typed, name).generate()
