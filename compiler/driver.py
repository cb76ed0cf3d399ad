"""The compiler driver: P4 text -> checked program -> Python source + ``ProgramInfo``.

``compile_file``/``compile_source`` give a ``CompiledProgram``; ``write_output`` writes
``<name>.py`` (the generated code), ``<name>.p4info.txtpb`` and ``<name>.json`` (a manifest
holding the ``ProgramInfo``) into a directory that ``load`` reads back without recompiling.
"""
from __future__ import annotations

import dataclasses
import json
import linecache
import logging
import os
from pathlib import Path
from typing import Mapping, Sequence

from fabriclab.compiler import ast
from fabriclab.compiler import codegen
from fabriclab.compiler import program
from fabriclab.compiler.codegen import ControlInstance, control_instances, instance_name, qualified_name
from fabriclab.compiler.diagnostics import CompileError
from fabriclab.errors import InternalError, UserError
from fabriclab.compiler.parser import parse_file, parse_text
from fabriclab.compiler.program import ProgramInfo
from fabriclab.compiler.typecheck import (
    BitT, BoolT, EnumT, ErrorT, ExternT, InstanceEntity, StructLikeT, TypedProgram, ValueSetEntity,
    check_program, flat_width,
)

MANIFEST_FORMAT = "fabriclab-compiled-v1"




class CompiledProgram:
    def __init__(self, info: ProgramInfo, python_source: str, typed: TypedProgram | None = None,
                 native_source: str | None = None):
        self.info = info
        self.python_source = python_source
        self._typed = typed
        self._native_source = native_source
        self._native_problem: str | None = None
        namespace: dict = {}
        filename = f"<fabriclab:{info.name}.py>"
        # tracebacks through generated code show its lines
        linecache.cache[filename] = (len(python_source), None, python_source.splitlines(True), filename)
        exec(compile(python_source, filename, "exec"), namespace)
        # build(S, RT): the Python engine's blocks over a runtime state (v1model/loader.py calls it)
        self.build = namespace["build"]

    @property
    def native_source(self) -> str | None:
        """The C source of the native engine, None if the program uses what it does not mirror
        (``native_problem`` then says what)."""
        if self._native_source is None and self._native_problem is None:
            if self._typed is None:
                self._native_problem = "compiled output without its C source (recompile the .p4)"
            else:
                from fabriclab.compiler import native_codegen

                try:
                    self._native_source = native_codegen.generate(self._typed, self.info.name)
                except native_codegen.NativeUnsupported as exc:
                    self._native_problem = f"unsupported: {exc}"
                except Exception as exc:   # a generator bug must not stop the Python engine
                    self._native_problem = f"native code generator failed ({type(exc).__name__}: {exc})"
        return self._native_source

    @property
    def native_problem(self) -> str | None:
        return None if self.native_source is not None else self._native_problem


def compile_file(path: str, include_dirs: Sequence[str] = (),
                 defines: Mapping[str, str] | None = None) -> CompiledProgram:
    tree = parse_file(str(path), include_dirs, defines)
    return _compile(tree, Path(path).stem)


def compile_source(text: str, name: str = "program", include_dirs: Sequence[str] = (),
                   defines: Mapping[str, str] | None = None) -> CompiledProgram:
    tree = parse_text(text, f"{name}.p4", include_dirs, defines)
    return _compile(tree, name)


def _compile(tree: ast.Program, name: str) -> CompiledProgram:
    try:
        typed = check_program(tree)
        source = codegen.generate(typed, name)
        info = build_program_info(typed, name)
        return CompiledProgram(info, source, typed)
    except CompileError:
        raise
    except Exception as exc:
        # a compiler bug must still reach the user as one line, not a traceback
        raise internal_error(exc) from exc


def internal_error(exc: BaseException) -> InternalError:
    """``exc`` as one line, located at the P4 node the innermost failing frame was working on."""
    loc = None
    tb = exc.__traceback__
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if isinstance(value, ast.Node) and getattr(value, "loc", None) is not None:
                loc = value.loc
                break
        tb = tb.tb_next
    where = f" ({loc})" if loc is not None else ""
    return InternalError(f"{type(exc).__name__}: {exc}{where}")


def write_output(compiled: CompiledProgram, out_dir: str) -> None:
    from fabriclab.compiler import p4info

    os.makedirs(out_dir, exist_ok=True)
    name = compiled.info.name
    with open(os.path.join(out_dir, f"{name}.py"), "w", encoding="utf-8") as f:
        f.write(compiled.python_source)
    with open(os.path.join(out_dir, f"{name}.p4info.txtpb"), "w", encoding="utf-8") as f:
        f.write(p4info.to_text(compiled.info))
    manifest = {"format": MANIFEST_FORMAT, "name": name, "python": f"{name}.py",
                "info": dataclasses.asdict(compiled.info)}
    if compiled.native_source is not None:
        # the native engine's C source, so a loaded directory can run natively without the .p4
        manifest["native_source"] = compiled.native_source
    with open(os.path.join(out_dir, f"{name}.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)


def load(path: str) -> CompiledProgram:
    """A ``.p4`` file (compiled now) or a directory written by ``write_output``."""
    if os.path.isdir(path):
        manifests = sorted(Path(path).glob("*.json"))
        for manifest_path in manifests:
            doc = json.loads(manifest_path.read_text(encoding="utf-8"))
            if doc.get("format") == MANIFEST_FORMAT:
                source = (manifest_path.parent / doc["python"]).read_text(encoding="utf-8")
                return CompiledProgram(info_from_dict(doc["info"]), source,
                                       native_source=doc.get("native_source"))
        raise CompileError(f"{path}: no compiled program here (no {MANIFEST_FORMAT} manifest)", None)
    return compile_file(path)


def info_from_dict(d: dict) -> ProgramInfo:
    """Rebuild a ``ProgramInfo`` from ``dataclasses.asdict`` output."""
    def match_fields(items):
        return [program.MatchField(**m) for m in items]

    tables = {}
    for name, t in d["tables"].items():
        t = dict(t)
        t["keys"] = match_fields(t["keys"])
        t["actions"] = [program.ActionRef(**a) for a in t["actions"]]
        t["default_args"] = tuple(t["default_args"])
        t["const_entries"] = [program.ConstEntry(match=tuple(tuple(m) if isinstance(m, list) else m for m in c["match"]),
                                                 priority=c["priority"], action=c["action"], args=tuple(c["args"]))
                              for c in t["const_entries"]]
        tables[name] = program.TableInfo(**t)
    actions = {n: program.ActionInfo(name=a["name"], params=[program.ActionParam(**p) for p in a["params"]],
                                     annotations=a["annotations"], id=a["id"]) for n, a in d["actions"].items()}

    def simple(cls, items, tuple_lists=()):
        out = {}
        for n, v in items.items():
            v = dict(v)
            for key in tuple_lists:
                v[key] = [tuple(x) for x in v[key]]
            out[n] = cls(**v)
        return out

    value_sets = {}
    for n, v in d["value_sets"].items():
        value_sets[n] = program.ValueSetInfo(name=v["name"], size=v["size"], fields=match_fields(v["fields"]), id=v["id"])
    return ProgramInfo(
        name=d["name"], arch=d["arch"], tables=tables, actions=actions,
        action_profiles=simple(program.ActionProfileInfo, d["action_profiles"]),
        counters=simple(program.CounterInfo, d["counters"]),
        meters=simple(program.MeterInfo, d["meters"]),
        registers=simple(program.RegisterInfo, d["registers"]),
        digests=simple(program.DigestInfo, d["digests"], ("fields",)),
        controller_headers=simple(program.ControllerHeaderInfo, d["controller_headers"], ("fields",)),
        value_sets=value_sets, explicit_ids=dict(d["explicit_ids"]),
    )


# ---------------------------------------------------------------------------- ProgramInfo


def expression_text(e: ast.Expression) -> str:
    """The key name p4c gives a key without @name: the expression as written."""
    if isinstance(e, ast.Name):
        return e.name
    if isinstance(e, ast.Member):
        return f"{expression_text(e.expr)}.{e.member}"
    if isinstance(e, ast.ArrayIndex):
        return f"{expression_text(e.expr)}[{expression_text(e.index)}]"
    if isinstance(e, ast.Slice):
        return f"{expression_text(e.expr)}[{expression_text(e.hi)}:{expression_text(e.lo)}]"
    if isinstance(e, ast.IntLiteral):
        return e.text or str(e.value)
    if isinstance(e, ast.MethodCall) and not e.args:
        return f"{expression_text(e.callee)}()"
    if isinstance(e, ast.Cast):
        return expression_text(e.expr)
    raise CompileError("cannot name this table key: give it a @name annotation", e.loc)


def _annotation_texts(annotations: list[ast.Annotation]) -> list[str]:
    out = []
    for a in annotations:
        if a.name in ("name", "id", "defaultonly", "tableonly", "hidden"):
            continue
        out.append(f"@{a.name}({''.join(a.tokens)})" if a.has_body else f"@{a.name}")
    return out


def _bitwidth(t) -> int:
    if isinstance(t, BoolT):
        return 1
    if isinstance(t, ErrorT):
        return 16
    if isinstance(t, EnumT) and t.underlying is None:
        return 32
    return flat_width(t)


class _InfoBuilder:
    def __init__(self, typed: TypedProgram, name: str):
        self.typed = typed
        self.info = ProgramInfo(name=name)

    def explicit_id(self, qname: str, annotations: list) -> None:
        ids = codegen.annotation_ints(annotations, "id")
        if ids:
            self.info.explicit_ids[qname] = ids[0]

    def build(self) -> ProgramInfo:
        for inst in self.typed.top_instances.values():
            self.extern(inst, None, {})
        parser = self.typed.blocks[0]
        for local in parser.locals:
            if isinstance(local, ast.Instantiation):
                self.extern(local.entity, parser.name, {})
            elif isinstance(local, ast.ValueSetDecl):
                self.value_set(local.entity, parser.name)
        for inst in control_instances(self.typed):
            self.control(inst)
            self.direct_calls(inst)
        self.digests_and_headers()
        self.order_as_p4c()
        return self.info

    # -- externs -------------------------------------------------------------------------

    def extern(self, inst: InstanceEntity, path: str | None, direct_tables: dict[int, str]) -> None:
        if not isinstance(inst.type, ExternT):
            return
        kind = inst.type.name
        qname = instance_name(inst, path)
        args = [a.value for a in inst.args]
        self.explicit_id(qname, inst.decl.annotations)
        if kind == "register":
            t = inst.type.type_args[0] if inst.type.type_args else BitT(32)
            self.info.registers[qname] = program.RegisterInfo(
                qname, _bitwidth(t), args[0].const_value, signed=isinstance(t, BitT) and t.signed)
        elif kind == "counter":
            self.info.counters[qname] = program.CounterInfo(qname, _unit(args[1]), args[0].const_value)
        elif kind == "direct_counter":
            self.info.counters[qname] = program.CounterInfo(qname, _unit(args[0]), 0,
                                                            direct_tables.get(id(inst)))
        elif kind == "meter":
            self.info.meters[qname] = program.MeterInfo(qname, _unit(args[1]), args[0].const_value)
        elif kind == "direct_meter":
            self.info.meters[qname] = program.MeterInfo(qname, _unit(args[0]), 0, direct_tables.get(id(inst)))
        elif kind == "action_profile":
            self.info.action_profiles[qname] = program.ActionProfileInfo(qname, args[0].const_value)
        elif kind == "action_selector":
            algo = args[0]
            name = next(n for n, v in algo.checked_type.members.items() if v == algo.const_value)
            self.info.action_profiles[qname] = program.ActionProfileInfo(
                qname, args[1].const_value, with_selector=True, selector_algorithm=name,
                selector_bitwidth=args[2].const_value)

    def value_set(self, vs: ValueSetEntity, path: str) -> None:
        qname = qualified_name(vs.decl.name, vs.decl.annotations, path)
        t = vs.type
        fields = []
        if isinstance(t, StructLikeT):
            for i, f in enumerate(t.fields):
                kind = ast.find_annotation(f.annotations, "match")
                fields.append(program.MatchField(f.name, kind.tokens[0] if kind and kind.tokens else "exact",
                                                 _bitwidth(f.type), i + 1))
        else:
            fields.append(program.MatchField(vs.decl.name, "exact", _bitwidth(t), 1))
        self.info.value_sets[qname] = program.ValueSetInfo(qname, vs.size, fields)
        self.explicit_id(qname, vs.decl.annotations)

    # -- controls ------------------------------------------------------------------------

    def control(self, inst: ControlInstance) -> None:
        decl = inst.decl
        locals_by_name = {l.name: l for l in decl.locals}
        direct: dict[int, str] = {}
        tables = [l for l in decl.locals if isinstance(l, ast.TableDecl)]
        for t in tables:
            tq = qualified_name(t.name, t.annotations, inst.path)
            for prop in (t.counters, t.meters):
                if prop is not None:
                    direct[id(prop.ref)] = tq
        for local in decl.locals:
            if isinstance(local, ast.Instantiation):
                self.extern(local.entity, inst.path, direct)
        for t in tables:
            self.table(t, inst, locals_by_name)

    def action(self, entity, path: str) -> str:
        decl = entity.decl
        qname = qualified_name(decl.name, decl.annotations, path if entity.control else None)
        if qname not in self.info.actions:
            params = [program.ActionParam(p.name, _bitwidth(p.entity.type), i + 1)
                      for i, p in enumerate(p for p in decl.params if not p.direction)]
            self.info.actions[qname] = program.ActionInfo(qname, params, _annotation_texts(decl.annotations))
            self.explicit_id(qname, decl.annotations)
        return qname

    def direct_calls(self, inst: ControlInstance) -> None:
        """Actions called straight from an apply block: in no table, yet in p4c's P4Info (a
        controller holding p4c's P4Info names them, e.g. the ECN tutorial's mark_ecn)."""
        if inst.decl.apply is None:
            return
        for node in ast.walk(inst.decl.apply):
            if isinstance(node, ast.MethodCall) and getattr(node, "kind", None) == "action":
                self.action(node.target, inst.path)

    def order_as_p4c(self) -> None:
        """Actions and tables in p4c's P4Info order, which is the order p4c's front end leaves
        the program in: the package's controls in package order, each with its sub-controls
        inlined where they are instantiated; in each, the top-level actions it uses (NoAction:
        localized copies, put first, in order of first use), then its own actions and tables
        in declaration order. An action two controls use is listed where it first appears."""
        actions: list[str] = []
        tables: list[str] = []
        for top in control_instances(self.typed):
            if not top.top:
                continue
            flat = list(_inlined_locals(top))
            actions += _top_level_action_uses(flat)
            for decl, inst in flat:
                if isinstance(decl, ast.ActionDecl):
                    actions.append(qualified_name(decl.name, decl.annotations, inst.path))
                elif isinstance(decl, ast.TableDecl):
                    tables.append(qualified_name(decl.name, decl.annotations, inst.path))
        self.info.actions = _reordered(self.info.actions, actions)
        self.info.tables = _reordered(self.info.tables, tables)

    def table(self, t: ast.TableDecl, inst: ControlInstance, locals_by_name) -> None:
        qname = qualified_name(t.name, t.annotations, inst.path)
        self.explicit_id(qname, t.annotations)
        keys = []
        for i, (k, kt) in enumerate(zip(t.keys, t.key_types)):
            name_ann = ast.find_annotation(k.annotations, "name")
            if name_ann is not None and name_ann.args and isinstance(name_ann.args[0], ast.StringLiteral):
                kname = name_ann.args[0].value
            else:
                kname = expression_text(k.expr)
            keys.append(program.MatchField(kname, k.match_kind, _bitwidth(kt), i + 1))
        refs = []
        for ref, entity in zip(t.actions, t.action_entities):
            aq = self.action(entity, inst.path)
            names = {a.name for a in ref.annotations} | {a.name for a in entity.decl.annotations}
            scope = "DEFAULT_ONLY" if "defaultonly" in names else "TABLE_ONLY" if "tableonly" in names else "TABLE_AND_DEFAULT"
            refs.append(program.ActionRef(aq, scope))
        info = program.TableInfo(qname, keys, refs, annotations=_annotation_texts(t.annotations))
        if getattr(t, "size_value", None) is not None:
            info.size = t.size_value
        if t.default_action is not None:
            ref = t.default_action.action
            info.default_action = self.action(ref.entity, inst.path)
            info.default_args = tuple(a.value.const_value for a in ref.args)
            info.const_default_action = t.default_action.const
        else:
            no_action = self.typed.top_actions.get("NoAction")
            if no_action is None:
                raise CompileError(f"table {t.name} has no default_action and NoAction is not declared", t.loc)
            info.default_action = "NoAction"
            if "NoAction" not in self.info.actions:
                self.info.actions["NoAction"] = program.ActionInfo("NoAction", [], [])
            if all(ref.name != "NoAction" for ref in refs):
                refs.append(program.ActionRef("NoAction", "DEFAULT_ONLY"))
        if t.implementation is not None:
            info.implementation = instance_name(t.implementation.ref, inst.path if t.implementation.ref.control else None)
            self.info.action_profiles[info.implementation].tables.append(qname)
        if t.counters is not None:
            info.direct_counter = instance_name(t.counters.ref, inst.path)
        if t.meters is not None:
            info.direct_meter = instance_name(t.meters.ref, inst.path)
        if t.support_timeout is not None:
            info.idle_timeout = bool(getattr(t.support_timeout, "const_value", False))
        if t.entries is not None:
            info.is_const_table = t.entries.const
            needs_priority = any(k.match_kind in ("ternary", "range", "optional") for k in t.keys)
            count = len(t.entries.entries)
            # p4c's BMv2 back-end ranks entries by @priority(N), else by position (1, 2, ...),
            # the smallest rank winning; tables here want a priority where the largest wins
            ranks = [(codegen.annotation_ints(e.annotations, "priority") or [i + 1])[0]
                     for i, e in enumerate(t.entries.entries)]
            ranked = any(codegen.annotation_ints(e.annotations, "priority") for e in t.entries.entries)
            for i, entry in enumerate(t.entries.entries):
                match = self.entry_match(entry, keys)
                if entry.priority is not None:
                    priority = entry.priority.const_value
                elif ranked and needs_priority:
                    priority = max(ranks) + 1 - ranks[i]
                else:
                    priority = count - i if needs_priority else 0
                action = self.action(entry.action.entity, inst.path)
                args = tuple(a.value.const_value for a in entry.action.args)
                info.const_entries.append(program.ConstEntry(match, priority, action, args))
        self.info.tables[qname] = info

    def entry_match(self, entry: ast.TableEntry, keys: list[program.MatchField]) -> tuple:
        keysets = entry.keysets
        if len(keysets) == 1 and len(keys) != 1 and isinstance(keysets[0], (ast.DefaultKeyset, ast.DontCare)):
            keysets = keysets * len(keys)
        out = []
        for ks, key in zip(keysets, keys):
            width, kind = key.bitwidth, key.match_kind
            full = (1 << width) - 1
            if isinstance(ks, (ast.DefaultKeyset, ast.DontCare)):
                if kind == "exact":
                    raise CompileError("an exact key cannot be a wildcard", ks.loc)
                out.append({"ternary": (0, 0), "lpm": (0, 0), "range": (0, full), "optional": None}[kind])
            elif isinstance(ks, ast.Mask):
                value, mask = ks.value.const_value, ks.mask.const_value
                if kind == "ternary":
                    out.append((value & mask, mask))
                elif kind == "lpm":
                    prefix = bin(mask).count("1")
                    if mask != full ^ ((1 << (width - prefix)) - 1):
                        raise CompileError("an lpm key's mask must be a prefix", ks.loc)
                    out.append((value & mask, prefix))
                else:
                    raise CompileError(f"'&&&' is not allowed for a {kind} key", ks.loc)
            elif isinstance(ks, ast.Range):
                if kind != "range":
                    raise CompileError(f"'..' is not allowed for a {kind} key", ks.loc)
                out.append((ks.lo.const_value, ks.hi.const_value))
            else:
                v = ks.const_value
                v = int(v)
                out.append({"exact": v, "ternary": (v, full), "lpm": (v, width), "range": (v, v),
                            "optional": v}.get(kind, v))
        return tuple(out)

    # -- digests and controller headers ----------------------------------------------------

    def digests_and_headers(self) -> None:
        for node in ast.walk(self.typed.program):
            if isinstance(node, ast.MethodCall) and getattr(node, "kind", None) == "extern_function" \
                    and node.target.name == "digest":
                t = (getattr(node, "tvars", {}) or {}).get("T") or node.args[1].value.checked_type
                if isinstance(t, StructLikeT) and t.name not in self.info.digests:
                    self.info.digests[t.name] = program.DigestInfo(
                        t.name, [(f.name, _bitwidth(f.type)) for f in t.fields])
        for t in self.typed.types.values():
            if isinstance(t, StructLikeT) and t.kind == "header":
                decl = next((d for d in self.typed.program.declarations
                             if isinstance(d, ast.HeaderDecl) and d.name == t.name), None)
                ann = ast.find_annotation(decl.annotations, "controller_header") if decl else None
                if ann is not None and ann.args and isinstance(ann.args[0], ast.StringLiteral):
                    name = ann.args[0].value
                    self.info.controller_headers[name] = program.ControllerHeaderInfo(
                        name, [(f.name, _bitwidth(f.type)) for f in t.fields], type_name=t.name)
                    self.explicit_id(name, decl.annotations)


def _unit(arg: ast.Expression) -> str:
    member = getattr(arg, "member", None)
    if member not in ("packets", "bytes", "packets_and_bytes"):
        raise CompileError("expected a CounterType/MeterType constant", arg.loc)
    return member


def _inlined_locals(inst: ControlInstance):
    """(declaration, owning instance) of ``inst``'s locals with every sub-control's locals in
    place of its instantiation, as p4c's inliner leaves them."""
    for local in inst.decl.locals:
        child = inst.children.get(id(local))
        if child is not None:
            yield from _inlined_locals(child)
        else:
            yield local, inst


def _top_level_action_uses(flat: list):
    """Names of the top-level actions an inlined control uses, in the order a walk of it meets
    them: tables' action lists, default actions (NoAction where none is given) and entries,
    then calls in the apply blocks."""
    def top_level(entity):
        return [] if entity.control else [qualified_name(entity.decl.name, entity.decl.annotations, None)]

    for decl, _ in flat:
        if isinstance(decl, ast.TableDecl):
            for entity in decl.action_entities:
                yield from top_level(entity)
            if decl.default_action is None:
                yield "NoAction"
            else:
                yield from top_level(decl.default_action.action.entity)
            for entry in decl.entries.entries if decl.entries is not None else ():
                yield from top_level(entry.action.entity)
    for inst in dict.fromkeys(inst for _, inst in flat):
        for node in ast.walk(inst.decl.apply) if inst.decl.apply is not None else ():
            if isinstance(node, ast.MethodCall) and getattr(node, "kind", None) == "action":
                yield from top_level(node.target)


def _reordered(entities: dict, order: list[str]) -> dict:
    """``entities`` with the names of ``order`` first, in that order (first occurrence wins),
    then any others as they were."""
    out = {name: entities[name] for name in order if name in entities}
    out.update((name, value) for name, value in entities.items() if name not in out)
    return out


def build_program_info(typed: TypedProgram, name: str) -> ProgramInfo:
    return _InfoBuilder(typed, name).build()
