"""Name resolution, types and widths, constant folding and v1model checks.

``check_program(ast.Program) -> TypedProgram``. The checker annotates the AST in place for
the code generator:

* every expression gets ``checked_type`` (a ``Type`` below) and, when it is a compile-time
  constant, ``const_value`` (an int/bool; unsized ``int`` constants are converted to the
  width the context asks for, as P4_16 8.9.2 allows for implicit casts of integer literals);
* ``Name`` nodes get ``ref``: the ``Var``/``Const``/``Callable`` entity they name;
* ``MethodCall`` nodes get ``kind`` (what is called: ``action``, ``extern``, ``table_apply``...)
  and ``target`` (the entity), plus ``param_list`` (the parameters matched, in order);
* ``VariableDecl``/``Instantiation`` nodes in bodies get ``entity``.

Types follow P4_16 (spec sections 7 and 8): ``bit<W>``/``int<W>`` wrap, ``int`` is an
infinite-precision compile-time integer, ``bool`` only converts by explicit cast.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

from fabriclab.compiler import ast
from fabriclab.compiler.diagnostics import CompileError, SourceLocation, unsupported
from fabriclab.compiler.sideeffects import Hoister, has_writing_call

# ---------------------------------------------------------------------------- types


class Type:
    def __str__(self) -> str:  # pragma: no cover - overridden
        return type(self).__name__


@dataclass(frozen=True)
class BitT(Type):
    width: int
    signed: bool = False

    def __str__(self) -> str:
        return f"{'int' if self.signed else 'bit'}<{self.width}>"


@dataclass(frozen=True)
class VarbitT(Type):
    """``varbit<max_width>``: a header's variable-size field; its bits count 0 in a header's
    fixed width (``StructLikeT.width``), its length comes from ``extract(hdr, length)``."""
    max_width: int

    def __str__(self) -> str:
        return f"varbit<{self.max_width}>"


@dataclass(frozen=True)
class IntegerT(Type):
    """``int``: arbitrary precision, compile time only."""

    def __str__(self) -> str:
        return "int"


@dataclass(frozen=True)
class BoolT(Type):
    def __str__(self) -> str:
        return "bool"


@dataclass(frozen=True)
class StringT(Type):
    def __str__(self) -> str:
        return "string"


@dataclass(frozen=True)
class VoidT(Type):
    def __str__(self) -> str:
        return "void"


@dataclass(frozen=True)
class ErrorT(Type):
    def __str__(self) -> str:
        return "error"


@dataclass(frozen=True)
class MatchKindT(Type):
    def __str__(self) -> str:
        return "match_kind"


@dataclass(frozen=True)
class DontCareT(Type):
    def __str__(self) -> str:
        return "_"


@dataclass(eq=False)
class EnumT(Type):
    name: str
    members: dict[str, int]                 # member -> value (index unless serializable)
    underlying: BitT | None = None

    def __str__(self) -> str:
        return self.name


@dataclass(eq=False)
class FieldT:
    name: str
    type: Type
    annotations: list = field(default_factory=list)


@dataclass(eq=False)
class StructLikeT(Type):
    name: str
    fields: list[FieldT]
    kind: str                               # struct | header | header_union

    def field(self, name: str) -> FieldT | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @property
    def width(self) -> int:
        return sum(flat_width(f.type) for f in self.fields)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class StackT(Type):
    element: StructLikeT
    size: int

    def __str__(self) -> str:
        return f"{self.element}[{self.size}]"


@dataclass(frozen=True)
class TupleT(Type):
    elements: tuple

    def __str__(self) -> str:
        return "tuple<" + ", ".join(map(str, self.elements)) + ">"


@dataclass(eq=False)
class ExternT(Type):
    decl: ast.ExternDecl
    type_args: list[Type] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.decl.name

    def __str__(self) -> str:
        return self.decl.name


@dataclass(eq=False)
class BlockT(Type):
    """A parser/control/package type or declaration (what instances are made of)."""
    decl: ast.Declaration

    def __str__(self) -> str:
        return self.decl.name


@dataclass(eq=False)
class TableT(Type):
    decl: ast.TableDecl

    def __str__(self) -> str:
        return f"table {self.decl.name}"


@dataclass(eq=False)
class ApplyResultT(Type):
    table: "TableEntity"


@dataclass(eq=False)
class ActionRunT(Type):
    table: "TableEntity"


def flat_width(t: Type) -> int:
    """Bits when serialised (headers, field lists, hash inputs)."""
    if isinstance(t, BitT):
        return t.width
    if isinstance(t, BoolT):
        return 1
    if isinstance(t, EnumT) and t.underlying is not None:
        return t.underlying.width
    if isinstance(t, StructLikeT):
        return t.width
    if isinstance(t, StackT):
        return t.size * t.element.width
    if isinstance(t, TupleT):
        return sum(flat_width(e) for e in t.elements)
    if isinstance(t, VarbitT):
        return 0                # the fixed part of a header counts it as nothing
    raise TypeError(f"{t} has no fixed width")


def is_aggregate(t: Type) -> bool:
    return isinstance(t, (StructLikeT, StackT))


# ---------------------------------------------------------------------------- entities

_ids = count(1)


@dataclass(eq=False)
class Var:
    """A variable or parameter. ``storage``: ``local`` (Python local), ``frame`` (a field of
    the control's frame object, shared by its actions and apply block)."""
    name: str
    type: Type
    storage: str
    direction: str = ""
    pyname: str = ""
    readonly: bool = False                      # in and directionless parameters

    def __post_init__(self) -> None:
        if not self.pyname:
            self.pyname = f"v_{self.name}_{next(_ids)}"


@dataclass(eq=False)
class Const:
    name: str
    type: Type
    value: object


@dataclass(eq=False)
class ActionEntity:
    decl: ast.ActionDecl
    control: ast.ControlDecl | None           # None: top-level action


@dataclass(eq=False)
class FunctionEntity:
    decl: ast.FunctionDecl


@dataclass(eq=False)
class ExternFunctionEntity:
    name: str
    overloads: list[ast.ExternFunctionDecl]


@dataclass(eq=False)
class InstanceEntity:
    """An instance declared in a parser/control/top level: extern object or sub-block."""
    decl: ast.Instantiation
    type: Type                                  # ExternT or BlockT
    args: list[ast.Argument]
    control: ast.Declaration | None             # declaring control/parser, None: top level


@dataclass(eq=False)
class TableEntity:
    decl: ast.TableDecl
    control: ast.ControlDecl


@dataclass(eq=False)
class ValueSetEntity:
    decl: ast.ValueSetDecl
    type: Type
    size: int


@dataclass(eq=False)
class TypeEntity:
    """A type name used where a value is expected (``error.X``, ``HashAlgorithm.crc32``)."""
    type: Type


@dataclass(eq=False)
class PacketParam:
    name: str
    kind: str                                   # packet_in | packet_out


class Scope:
    def __init__(self, parent: Scope | None = None):
        self.parent = parent
        self.names: dict[str, object] = {}

    def lookup(self, name: str):
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None

    def declare(self, name: str, entity: object, loc: SourceLocation) -> None:
        if name in self.names:
            raise CompileError(f"duplicate declaration of '{name}'", loc)
        self.names[name] = entity


@dataclass
class TypedProgram:
    program: ast.Program
    types: dict[str, Type]
    errors: dict[str, int]                     # error member -> code (core.p4 order first)
    match_kinds: set[str]
    parsers: dict[str, ast.ParserDecl]
    controls: dict[str, ast.ControlDecl]
    top_actions: dict[str, ast.ActionDecl]
    top_instances: dict[str, InstanceEntity]
    functions: dict[str, ast.FunctionDecl]
    # the six v1model blocks in package order: parser, verifyChecksum, ingress, egress,
    # computeChecksum, deparser
    blocks: list[ast.Declaration]
    main: ast.Instantiation


# ---------------------------------------------------------------------------- the checker

_V1MODEL_BLOCKS = ("parser", "verify checksum", "ingress", "egress", "compute checksum", "deparser")


def check_program(program: ast.Program) -> TypedProgram:
    return _Checker(program).run()


def _err(message: str, node) -> CompileError:
    return CompileError(message, getattr(node, "loc", None))


def _fits(value: int, t: BitT) -> bool:
    if t.signed:
        return -(1 << (t.width - 1)) <= value < (1 << (t.width - 1))
    return 0 <= value < (1 << t.width)


def wrap(value: int, t: Type) -> int:
    """``value`` reduced to the range of ``t`` (two's complement for int<W>)."""
    if isinstance(t, BitT):
        value &= (1 << t.width) - 1
        if t.signed and value >> (t.width - 1):
            value -= 1 << t.width
    return value


class _Checker:
    def __init__(self, program: ast.Program):
        self.program = program
        self.top = Scope()
        self.types: dict[str, Type] = {}
        self.errors: dict[str, int] = {}
        self.match_kinds: set[str] = set()
        self.parsers: dict[str, ast.ParserDecl] = {}
        self.controls: dict[str, ast.ControlDecl] = {}
        self.top_actions: dict[str, ast.ActionDecl] = {}
        self.top_instances: dict[str, InstanceEntity] = {}
        self.functions: dict[str, ast.FunctionDecl] = {}
        self.extern_functions: dict[str, ExternFunctionEntity] = {}
        self.main: ast.Instantiation | None = None
        # per-body context
        self.block: ast.Declaration | None = None
        self.in_action = False
        self.in_parser = False
        self.return_type: Type | None = None
        self.loops = 0                                  # for statements around this one

    # -- top level --------------------------------------------------------------------------

    def run(self) -> TypedProgram:
        for decl in self.program.declarations:
            self.declare_top(decl)
        for decl in self.program.declarations:
            if isinstance(decl, ast.ParserDecl):
                self.check_parser(decl)
            elif isinstance(decl, ast.ControlDecl):
                self.check_control(decl)
            elif isinstance(decl, ast.ActionDecl):
                self.check_action(decl, self.top, None)
            elif isinstance(decl, ast.FunctionDecl):
                self.check_function(decl, self.top)
        if self.main is None:
            raise CompileError("no 'main' package instance", self.program.loc)
        blocks = self.check_main(self.main)
        return TypedProgram(self.program, self.types, self.errors, self.match_kinds, self.parsers,
                            self.controls, self.top_actions, self.top_instances, self.functions,
                            blocks, self.main)

    def declare_top(self, decl: ast.Declaration) -> None:
        if isinstance(decl, (ast.TypedefDecl, ast.NewTypeDecl)):
            self.types[decl.name] = self.resolve_type(decl.type)
        elif isinstance(decl, (ast.HeaderDecl, ast.StructDecl, ast.HeaderUnionDecl)):
            if decl.type_params:
                raise unsupported("generic struct and header types", decl.loc)
            kind = {ast.HeaderDecl: "header", ast.StructDecl: "struct",
                    ast.HeaderUnionDecl: "header_union"}[type(decl)]
            t = StructLikeT(decl.name, [], kind)
            self.types[decl.name] = t           # before the fields: allow self-description errors
            names = set()
            for f in decl.fields:
                if f.name in names:
                    raise _err(f"duplicate field '{f.name}' in {decl.name}", f)
                names.add(f.name)
                ft = self.resolve_type(f.type)
                self.check_field_type(kind, ft, f)
                if isinstance(ft, VarbitT) and any(isinstance(g.type, VarbitT) for g in t.fields):
                    raise _err(f"header {decl.name} has more than one varbit field", f)
                t.fields.append(FieldT(f.name, ft, f.annotations))
        elif isinstance(decl, ast.EnumDecl):
            self.types[decl.name] = self.enum_type(decl)
        elif isinstance(decl, ast.ErrorDecl):
            for m in decl.members:
                if m.name not in self.errors:
                    self.errors[m.name] = len(self.errors)
        elif isinstance(decl, ast.MatchKindDecl):
            self.match_kinds.update(m.name for m in decl.members)
        elif isinstance(decl, ast.ConstDecl):
            self.top.declare(decl.name, self.const_decl(decl, self.top), decl.loc)
        elif isinstance(decl, ast.ExternDecl):
            self.types[decl.name] = ExternT(decl)
        elif isinstance(decl, ast.ExternFunctionDecl):
            entity = self.extern_functions.setdefault(decl.name, ExternFunctionEntity(decl.name, []))
            entity.overloads.append(decl)
            self.top.names[decl.name] = entity
        elif isinstance(decl, (ast.ParserTypeDecl, ast.ControlTypeDecl, ast.PackageTypeDecl)):
            self.types[decl.name] = BlockT(decl)
        elif isinstance(decl, ast.ParserDecl):
            self.reject_generic(decl)
            self.parsers[decl.name] = decl
            self.types[decl.name] = BlockT(decl)
        elif isinstance(decl, ast.ControlDecl):
            self.reject_generic(decl)
            self.controls[decl.name] = decl
            self.types[decl.name] = BlockT(decl)
        elif isinstance(decl, ast.ActionDecl):
            self.top_actions[decl.name] = decl
            self.top.declare(decl.name, ActionEntity(decl, None), decl.loc)
        elif isinstance(decl, ast.FunctionDecl):
            self.functions[decl.name] = decl
            self.top.declare(decl.name, FunctionEntity(decl), decl.loc)
        elif isinstance(decl, ast.Instantiation):
            if decl.name == "main":
                self.main = decl
                return
            entity = self.instance(decl, self.top, None)
            self.top_instances[decl.name] = entity
            self.top.declare(decl.name, entity, decl.loc)
        elif isinstance(decl, ast.VariableDecl):
            raise _err("variables cannot be declared at the top level", decl)
        else:
            raise unsupported(f"top-level {type(decl).__name__}", decl.loc)

    def reject_generic(self, decl) -> None:
        if decl.type_params:
            raise unsupported("generic parsers and controls", decl.loc)
        if decl.constructor_params:
            raise unsupported("parser and control constructor parameters", decl.loc)

    def check_field_type(self, kind: str, t: Type, node) -> None:
        if kind == "header":
            if isinstance(t, (BitT, BoolT, VarbitT)) or (isinstance(t, EnumT) and t.underlying):
                return
            raise _err(f"header field '{node.name}' has type {t}: header fields must be bit<W>, "
                       "int<W>, bool or a serializable enum", node)
        if kind == "header_union" and not (isinstance(t, StructLikeT) and t.kind == "header"):
            raise _err(f"header union field '{node.name}' must be a header", node)

    def enum_type(self, decl: ast.EnumDecl) -> EnumT:
        if decl.underlying_type is None:
            return EnumT(decl.name, {m.name: i for i, m in enumerate(decl.members)})
        underlying = self.resolve_type(decl.underlying_type)
        if not isinstance(underlying, BitT):
            raise _err("a serializable enum's underlying type must be bit<W> or int<W>", decl)
        members = {}
        for m in decl.members:
            if m.value is None:
                raise _err(f"serializable enum member '{m.name}' needs a value", m)
            members[m.name] = wrap(self.const_int(m.value, self.top, underlying), underlying)
        return EnumT(decl.name, members, underlying)

    # -- type references -----------------------------------------------------------------

    def resolve_type(self, ref: ast.TypeRef, tvars: dict[str, Type] | None = None) -> Type:
        if isinstance(ref, ast.BitType):
            return BitT(self.width(ref.width), False)
        if isinstance(ref, ast.IntType):
            return BitT(self.width(ref.width), True)
        if isinstance(ref, ast.BoolType):
            return BoolT()
        if isinstance(ref, ast.IntegerType):
            return IntegerT()
        if isinstance(ref, ast.ErrorType):
            return ErrorT()
        if isinstance(ref, ast.StringType):
            return StringT()
        if isinstance(ref, ast.MatchKindType):
            return MatchKindT()
        if isinstance(ref, ast.VoidType):
            return VoidT()
        if isinstance(ref, ast.DontCareType):
            return DontCareT()
        if isinstance(ref, ast.VarbitType):
            return VarbitT(self.width(ref.max_width))
        if isinstance(ref, ast.TupleType):
            return TupleT(tuple(self.resolve_type(e, tvars) for e in ref.elements))
        if isinstance(ref, ast.HeaderStackType):
            element = self.resolve_type(ref.element, tvars)
            if not (isinstance(element, StructLikeT) and element.kind in ("header", "header_union")):
                raise _err(f"header stack elements must be headers, not {element}", ref)
            size = self.const_int(ref.size, self.top, None)
            if size <= 0:
                raise _err("header stack size must be positive", ref)
            return StackT(element, size)
        if isinstance(ref, ast.NamedType):
            if tvars and ref.name in tvars:
                return tvars[ref.name]
            t = self.types.get(ref.name)
            if t is None:
                raise _err(f"unknown type '{ref.name}'", ref)
            if isinstance(t, ExternT):
                args = [self.resolve_type(a, tvars) for a in ref.type_args]
                missing = t.decl.type_params[len(args):]
                if args and missing == ["I"] or not args and t.decl.type_params == ["I"]:
                    args.append(BitT(32))       # v1model's index type, left out: bit<32>
                return ExternT(t.decl, args)
            return t
        raise unsupported(f"type {type(ref).__name__}", ref.loc)

    def width(self, expr: ast.Expression) -> int:
        w = self.const_int(expr, self.top, None)
        if w <= 0:
            raise _err(f"width must be positive, got {w}", expr)
        return w

    # -- constants -------------------------------------------------------------------------

    def const_decl(self, decl: ast.ConstDecl, scope: Scope) -> Const:
        t = self.resolve_type(decl.type)
        self.expr(decl.value, scope, t)
        self.coerce(decl.value, t, "constant initialiser")
        if not hasattr(decl.value, "const_value"):
            raise _err(f"the value of constant '{decl.name}' is not a compile-time constant", decl.value)
        return Const(decl.name, t, decl.value.const_value)

    def const_int(self, expr: ast.Expression, scope: Scope, expected: Type | None) -> int:
        self.expr(expr, scope, expected)
        value = getattr(expr, "const_value", None)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _err("expected a compile-time integer constant", expr)
        return value

    # -- blocks ----------------------------------------------------------------------------

    def params_scope(self, params: list[ast.Parameter], scope: Scope, storage: str) -> Scope:
        inner = Scope(scope)
        for p in params:
            if isinstance(p.type, ast.NamedType) and p.type.name in ("packet_in", "packet_out"):
                inner.declare(p.name, PacketParam(p.name, p.type.name), p.loc)
                continue
            t = self.resolve_type(p.type)
            var = Var(p.name, t, storage, p.direction, readonly=p.direction in ("in", ""))
            p.entity = var
            inner.declare(p.name, var, p.loc)
        return inner

    def check_parser(self, decl: ast.ParserDecl) -> None:
        self.block, self.in_parser, self.in_action = decl, True, False
        scope = self.params_scope(decl.params, self.top, "local")
        for local in decl.locals:
            self.local_decl(local, scope, "local")
        states = {s.name for s in decl.states}
        if "start" not in states:
            raise _err(f"parser {decl.name} has no 'start' state", decl)
        for state in decl.states:
            if state.name in ("accept", "reject"):
                raise _err(f"state '{state.name}' is predefined", state)
            body = Scope(scope)
            state.statements = self.statements(state.statements, body)
            t = state.transition
            if t is None:
                continue
            targets = [t.state] if t.select is None else [c.state for c in t.select.cases]
            for target in targets:
                if target not in states and target not in ("accept", "reject"):
                    raise _err(f"unknown parser state '{target}'", t)
            if t.select is not None:
                self.select(t.select, body)
        self.in_parser = False

    def select(self, sel: ast.SelectExpression, scope: Scope) -> None:
        key_types = [self.expr(e, scope) for e in sel.exprs]
        for kt, e in zip(key_types, sel.exprs):
            if not isinstance(kt, (BitT, BoolT, EnumT, ErrorT)):
                raise _err(f"cannot select on a value of type {kt}", e)
        for case in sel.cases:
            if len(case.keysets) == 1 and isinstance(case.keysets[0], (ast.DefaultKeyset, ast.DontCare)):
                continue
            if len(case.keysets) == 1 and isinstance(case.keysets[0], ast.Name):
                entity = scope.lookup(case.keysets[0].name)
                if isinstance(entity, ValueSetEntity):
                    case.keysets[0].ref = entity
                    continue
            if len(case.keysets) != len(key_types):
                raise _err(f"select case has {len(case.keysets)} keysets, expected {len(key_types)}", case)
            for ks, kt in zip(case.keysets, key_types):
                self.keyset(ks, kt, scope)

    def keyset(self, ks: ast.Expression, kt: Type, scope: Scope) -> None:
        if isinstance(ks, (ast.DefaultKeyset, ast.DontCare)):
            return
        if isinstance(ks, ast.Mask):
            self.keyset_value(ks.value, kt, scope)
            self.keyset_value(ks.mask, kt, scope)
        elif isinstance(ks, ast.Range):
            self.keyset_value(ks.lo, kt, scope)
            self.keyset_value(ks.hi, kt, scope)
        else:
            self.keyset_value(ks, kt, scope)

    def keyset_value(self, e: ast.Expression, kt: Type, scope: Scope) -> None:
        et = self.expr(e, scope, kt)
        if isinstance(kt, EnumT) and kt.underlying is not None and not isinstance(et, EnumT):
            kt = kt.underlying     # a serializable enum key matches values of its underlying type
        self.coerce(e, kt, "keyset")
        if not hasattr(e, "const_value"):
            raise _err("keyset values must be compile-time constants", e)

    def check_control(self, decl: ast.ControlDecl) -> None:
        self.block, self.in_parser, self.in_action = decl, False, False
        scope = self.params_scope(decl.params, self.top, "frame")
        for local in decl.locals:
            if isinstance(local, ast.ActionDecl):
                scope.declare(local.name, ActionEntity(local, decl), local.loc)
                self.check_action(local, scope, decl)
            elif isinstance(local, ast.TableDecl):
                entity = TableEntity(local, decl)
                scope.declare(local.name, entity, local.loc)
                self.table(local, scope)
            elif isinstance(local, ast.FunctionDecl):
                scope.declare(local.name, FunctionEntity(local), local.loc)
                self.check_function(local, scope)
                local.control = decl
            else:
                self.local_decl(local, scope, "frame")
        if decl.apply is not None:
            self.block_stmt(decl.apply, Scope(scope))

    def local_decl(self, local: ast.Node, scope: Scope, storage: str) -> None:
        if isinstance(local, ast.ConstDecl):
            scope.declare(local.name, self.const_decl(local, scope), local.loc)
        elif isinstance(local, ast.VariableDecl):
            t = self.resolve_type(local.type)
            if isinstance(t, (ExternT, VoidT, IntegerT, StringT)):
                raise _err(f"cannot declare a variable of type {t}", local)
            if local.init is not None:
                self.expr(local.init, scope, t)
                self.coerce(local.init, t, "initialiser")
            local.entity = Var(local.name, t, storage)
            scope.declare(local.name, local.entity, local.loc)
        elif isinstance(local, ast.Instantiation):
            local.entity = self.instance(local, scope, self.block)
            scope.declare(local.name, local.entity, local.loc)
        elif isinstance(local, ast.ValueSetDecl):
            t = self.resolve_type(local.element_type)
            local.entity = ValueSetEntity(local, t, self.const_int(local.size, scope, None))
            scope.declare(local.name, local.entity, local.loc)
        else:
            raise unsupported(f"local {type(local).__name__}", local.loc)

    def instance(self, decl: ast.Instantiation, scope: Scope, block) -> InstanceEntity:
        t = self.resolve_type(decl.type)
        if isinstance(t, ExternT):
            if not t.decl.constructors and decl.args:
                raise _err(f"extern {t.name} has no constructor", decl)
            ctors = [c for c in t.decl.constructors if len(c.params) == len(decl.args)]
            if t.decl.constructors and not ctors:
                raise _err(f"{t.name} constructor takes "
                           f"{' or '.join(str(len(c.params)) for c in t.decl.constructors)} "
                           f"arguments, got {len(decl.args)}", decl)
            tvars = dict(zip(t.decl.type_params, t.type_args))
            if ctors:
                for arg, p in zip(decl.args, ctors[0].params):
                    pt = self.resolve_type(p.type, tvars) if not self.mentions_tvar(p.type, t.decl.type_params, tvars) else None
                    self.expr(arg.value, scope, pt)
                    if pt is not None:
                        self.coerce(arg.value, pt, f"argument '{p.name}'")
            return InstanceEntity(decl, t, decl.args, block)
        if isinstance(t, BlockT) and isinstance(t.decl, (ast.ControlDecl, ast.ParserDecl)):
            if decl.args:
                raise unsupported("constructor arguments for parsers and controls", decl.loc)
            return InstanceEntity(decl, t, decl.args, block)
        raise _err(f"cannot instantiate {t}", decl)

    def mentions_tvar(self, ref: ast.TypeRef, tparams: list[str], tvars: dict) -> bool:
        return any(isinstance(n, ast.NamedType) and n.name in tparams and n.name not in tvars
                   for n in ast.walk(ref))

    def check_action(self, decl: ast.ActionDecl, scope: Scope, control) -> None:
        inner = Scope(scope)
        seen_directionless = False
        for p in decl.params:
            t = self.resolve_type(p.type)
            if not p.direction:
                seen_directionless = True
                if not isinstance(t, (BitT, BoolT, EnumT)):
                    raise _err(f"action parameter '{p.name}' supplied by the control plane must be "
                               f"bit<W>, int<W>, bool or an enum, not {t}", p)
            elif seen_directionless:
                raise _err("directional action parameters must come before directionless ones", p)
            p.entity = Var(p.name, t, "local", p.direction, readonly=p.direction in ("in", ""))
            inner.declare(p.name, p.entity, p.loc)
        was, self.in_action = self.in_action, True
        saved_rt, self.return_type = self.return_type, VoidT()
        self.block_stmt(decl.body, inner)
        self.in_action, self.return_type = was, saved_rt

    def check_function(self, decl: ast.FunctionDecl, scope: Scope) -> None:
        if decl.type_params:
            raise unsupported("generic functions", decl.loc)
        inner = Scope(scope)
        for p in decl.params:
            p.entity = Var(p.name, self.resolve_type(p.type), "local", p.direction)
            inner.declare(p.name, p.entity, p.loc)
        saved_rt, self.return_type = self.return_type, self.resolve_type(decl.return_type)
        was, self.in_action = self.in_action, True
        self.block_stmt(decl.body, inner)
        self.return_type, self.in_action = saved_rt, was

    # -- tables ----------------------------------------------------------------------------

    def table(self, decl: ast.TableDecl, scope: Scope) -> None:
        key_types = []
        for k in decl.keys:
            kt = self.expr(k.expr, scope)
            if k.match_kind not in self.match_kinds:
                raise _err(f"unknown match kind '{k.match_kind}'", k)
            if not isinstance(kt, (BitT, BoolT, EnumT, ErrorT)):
                raise _err(f"table key of type {kt} cannot be matched", k.expr)
            key_types.append(kt)
        decl.key_types = key_types
        decl.action_entities = []
        for ref in decl.actions:
            entity = self.action_ref(ref, scope)
            decl.action_entities.append(entity)
            self.action_ref_args(ref, entity, scope, table_action=True)
        names = {a.decl.name for a in decl.action_entities}
        if decl.default_action is not None:
            ref = decl.default_action.action
            entity = self.action_ref(ref, scope)
            if entity.decl.name not in names:
                raise _err(f"default action '{ref.name}' is not in the table's actions", ref)
            self.action_ref_args(ref, entity, scope, table_action=False)
        if decl.size is not None:
            decl.size_value = self.const_int(decl.size, scope, None)
        for prop in ("implementation", "counters", "meters"):
            e = getattr(decl, prop)
            if e is None:
                continue
            if not isinstance(e, ast.Name):
                raise unsupported(f"table {prop} other than the name of an instance", e.loc)
            entity = scope.lookup(e.name)
            wanted = {"implementation": ("action_profile", "action_selector"),
                      "counters": ("direct_counter",), "meters": ("direct_meter",)}[prop]
            if not (isinstance(entity, InstanceEntity) and isinstance(entity.type, ExternT)
                    and entity.type.name in wanted):
                raise _err(f"table {prop} must name a {' or '.join(wanted)} instance", e)
            e.ref = entity
        if decl.support_timeout is not None:
            self.expr(decl.support_timeout, scope, BoolT())
        if decl.entries is not None:
            for entry in decl.entries.entries:
                if not (len(entry.keysets) == 1 and isinstance(entry.keysets[0], (ast.DefaultKeyset, ast.DontCare))):
                    if len(entry.keysets) != len(key_types):
                        raise _err(f"entry has {len(entry.keysets)} keys, the table has {len(key_types)}", entry)
                    for ks, kt in zip(entry.keysets, key_types):
                        self.keyset(ks, kt, scope)
                entity = self.action_ref(entry.action, scope)
                if entity.decl.name not in names:
                    raise _err(f"entry action '{entry.action.name}' is not in the table's actions", entry.action)
                self.action_ref_args(entry.action, entity, scope, table_action=False)
                if entry.priority is not None:
                    self.const_int(entry.priority, scope, None)
        for prop in decl.other_properties:
            self.expr(prop.value, scope)

    def action_ref(self, ref: ast.ActionRef, scope: Scope) -> ActionEntity:
        entity = self.top.lookup(ref.name) if ref.top_level else scope.lookup(ref.name)
        if not isinstance(entity, ActionEntity):
            raise _err(f"unknown action '{ref.name}'", ref)
        ref.entity = entity
        return entity

    def action_ref_args(self, ref: ast.ActionRef, entity: ActionEntity, scope: Scope, table_action: bool) -> None:
        params = entity.decl.params
        directional = [p for p in params if p.direction]
        if table_action:
            # in `actions = {...}` only directional arguments may be bound
            if ref.args and len(ref.args) != len(directional):
                raise _err(f"action '{ref.name}' takes {len(directional)} directional arguments here, "
                           f"got {len(ref.args)}", ref)
            wanted = directional if ref.args else []
        else:
            # directional arguments are the ones the `actions` list binds: an entry or default
            # action gives the control-plane ones, or restates the bound ones first
            wanted = [p for p in params if not p.direction]
            if directional and len(ref.args) == len(params):
                ref.args = ref.args[len(directional):]
            if len(ref.args) != len(wanted):
                raise _err(f"action '{ref.name}' takes {len(wanted)} arguments, got {len(ref.args)}", ref)
        for arg, p in zip(ref.args, wanted):
            pt = p.entity.type
            self.expr(arg.value, scope, pt)
            self.coerce(arg.value, pt, f"argument '{p.name}'")
            if not table_action and not hasattr(arg.value, "const_value"):
                raise _err(f"argument '{p.name}' of '{ref.name}' must be a compile-time constant", arg.value)

    # -- main ------------------------------------------------------------------------------

    def check_main(self, main: ast.Instantiation) -> list[ast.Declaration]:
        t = self.resolve_type(main.type)
        if not (isinstance(t, BlockT) and isinstance(t.decl, ast.PackageTypeDecl)):
            raise _err("'main' must be an instance of a package", main)
        if t.decl.name != "V1Switch":
            raise unsupported(f"architecture package {t.decl.name} (only v1model's V1Switch)", main.loc)
        if len(main.args) != 6:
            raise _err(f"V1Switch takes 6 blocks, got {len(main.args)}", main)
        blocks = []
        for arg, role in zip(main.args, _V1MODEL_BLOCKS):
            call = arg.value
            if not (isinstance(call, ast.MethodCall) and isinstance(call.callee, ast.Name) and not call.args):
                raise _err(f"the {role} argument of V1Switch must be an instance like MyBlock()", arg.value)
            name = call.callee.name
            decl = self.parsers.get(name) if role == "parser" else self.controls.get(name)
            if decl is None:
                raise _err(f"unknown {'parser' if role == 'parser' else 'control'} '{name}' for the {role}", call)
            want = {"parser": 4, "verify checksum": 2, "ingress": 3, "egress": 3,
                    "compute checksum": 2, "deparser": 2}[role]
            if len(decl.params) != want:
                raise _err(f"{role} block {name} must have {want} parameters as in v1model.p4, "
                           f"has {len(decl.params)}", decl)
            blocks.append(decl)
        return blocks

    # -- statements ------------------------------------------------------------------------

    def block_stmt(self, block: ast.BlockStatement, scope: Scope) -> None:
        inner = Scope(scope)
        block.statements = self.statements(block.statements, inner)

    def statements(self, statements: list, scope: Scope) -> list:
        """Check each statement; calls with out arguments inside expressions move before it."""
        out = []
        for s in statements:
            self.stmt(s, scope)
            hoister = Hoister(self.temp_var)
            hoister.statement(s)
            out.extend(hoister.pending)
            out.append(s)
        return out

    def temp_var(self, t: Type, loc) -> tuple[ast.Name, ast.VariableDecl]:
        var = Var("tmp", t, "local")
        decl = ast.VariableDecl(loc=loc, name=var.name, type=None)
        decl.entity = var
        name = ast.Name(loc=loc, name=var.name)
        name.ref, name.checked_type = var, t
        return name, decl

    def loop_body(self, s: ast.Node, scope: Scope) -> ast.Node:
        self.loops += 1
        try:
            return self.branch(s, Scope(scope))
        finally:
            self.loops -= 1

    def branch(self, s: ast.Node, scope: Scope) -> ast.Node:
        """An if branch: a lone statement that gains hoisted calls becomes a block."""
        if isinstance(s, ast.BlockStatement):
            self.block_stmt(s, scope)
            return s
        out = self.statements([s], scope)
        return s if len(out) == 1 else ast.BlockStatement(loc=s.loc, statements=out)

    def stmt(self, s: ast.Node, scope: Scope) -> None:
        if isinstance(s, ast.AssignmentStatement):
            t = self.expr(s.target, scope)
            self.lvalue(s.target, scope)
            self.expr(s.value, scope, t)
            self.coerce(s.value, t, "assignment")
        elif isinstance(s, ast.MethodCallStatement):
            self.expr(s.call, scope)
        elif isinstance(s, ast.BlockStatement):
            self.block_stmt(s, scope)
        elif isinstance(s, ast.IfStatement):
            ct = self.expr(s.cond, scope, BoolT())
            if not isinstance(ct, BoolT):
                raise _err(f"if condition must be bool, not {ct}", s.cond)
            s.then = self.branch(s.then, Scope(scope))
            if s.otherwise is not None:
                s.otherwise = self.branch(s.otherwise, Scope(scope))
        elif isinstance(s, ast.SwitchStatement):
            self.switch(s, scope)
        elif isinstance(s, ast.ReturnStatement):
            if self.in_parser:
                raise _err("return is not allowed in a parser", s)
            rt = self.return_type
            if s.value is not None:
                if rt is None or isinstance(rt, VoidT):
                    raise _err("return with a value in a block that returns nothing", s)
                self.expr(s.value, scope, rt)
                self.coerce(s.value, rt, "return value")
            elif rt is not None and not isinstance(rt, VoidT):
                raise _err(f"missing return value of type {rt}", s)
        elif isinstance(s, ast.ForStatement):
            inner = Scope(scope)
            s.init = self.statements(s.init, inner)
            if s.cond is not None:
                ct = self.expr(s.cond, inner, BoolT())
                if not isinstance(ct, BoolT):
                    raise _err(f"for condition must be bool, not {ct}", s.cond)
                if has_writing_call(s.cond):
                    raise unsupported("a call with out arguments in a for condition", s.cond.loc)
            s.update = self.statements(s.update, inner)
            s.body = self.loop_body(s.body, inner)
        elif isinstance(s, ast.ForInStatement):
            inner = Scope(scope)
            c = s.collection
            existing = scope.lookup(s.var.name) if s.var.type is None else None
            if s.var.type is None and not isinstance(existing, Var):
                raise _err(f"'{s.var.name}' is not a variable", s.var)
            if isinstance(c, ast.Range):
                declared = self.resolve_type(s.var.type) if s.var.type is not None else existing.type
                lt = self.expr(c.lo, scope, declared)
                self.expr(c.hi, scope, declared or lt)
                t = declared or (lt if not isinstance(lt, IntegerT) else c.hi.checked_type)
                if not isinstance(t, BitT):
                    raise _err(f"a range loop variable must be bit<W> or int<W>, not {t}", s.var)
                self.coerce(c.lo, t, "range")
                self.coerce(c.hi, t, "range")
            else:
                ct = self.expr(c, scope)
                if not isinstance(ct, StackT):
                    raise _err(f"for ... in needs a range 'lo .. hi' or a header stack, not {ct}", c)
                t = ct.element
                if s.var.type is not None and not _same(self.resolve_type(s.var.type), t):
                    raise _err(f"loop variable of type {self.resolve_type(s.var.type)} over a stack of {t}", s.var)
            if s.var.type is None:
                if not _same(existing.type, t) or existing.readonly:
                    raise _err(f"'{s.var.name}' is not a writable variable of type {t}", s.var)
                s.var.entity = existing
            else:
                s.var.entity = Var(s.var.name, t, "local")
                inner.declare(s.var.name, s.var.entity, s.var.loc)
            s.body = self.loop_body(s.body, inner)
        elif isinstance(s, (ast.BreakStatement, ast.ContinueStatement)):
            if not self.loops:
                raise _err(f"'{'break' if isinstance(s, ast.BreakStatement) else 'continue'}' outside a loop", s)
        elif isinstance(s, ast.ExitStatement):
            if self.in_parser:
                raise _err("exit is not allowed in a parser", s)
        elif isinstance(s, ast.EmptyStatement):
            pass
        elif isinstance(s, (ast.VariableDecl, ast.ConstDecl, ast.Instantiation)):
            if isinstance(s, ast.Instantiation) and (self.in_action or self.in_parser):
                raise _err("instances cannot be declared here", s)
            self.local_decl(s, scope, "local")
        else:
            raise unsupported(f"statement {type(s).__name__}", s.loc)

    def switch(self, s: ast.SwitchStatement, scope: Scope) -> None:
        t = self.expr(s.expr, scope)
        seen = set()
        for case in s.cases:
            label = case.label
            if isinstance(label, ast.DefaultKeyset):
                key = "default"
            elif isinstance(t, ActionRunT):
                if not isinstance(label, ast.Name):
                    raise _err("switch on action_run: case labels must be action names", label)
                actions = {a.decl.name: a for a in t.table.decl.action_entities}
                if label.name not in actions:
                    raise _err(f"'{label.name}' is not an action of table {t.table.decl.name}", label)
                label.ref = actions[label.name]
                key = label.name
            elif isinstance(t, (BitT, EnumT, ErrorT)):
                self.expr(label, scope, t)
                self.coerce(label, t, "switch label")
                if not hasattr(label, "const_value"):
                    raise _err("switch labels must be compile-time constants", label)
                key = label.const_value
            else:
                raise _err(f"cannot switch on a value of type {t}", s.expr)
            if key in seen:
                raise _err("duplicate switch label", label)
            seen.add(key)
            if case.body is not None:
                self.block_stmt(case.body, scope)

    def lvalue(self, e: ast.Expression, scope: Scope) -> None:
        if isinstance(e, ast.Name):
            ref = getattr(e, "ref", None)
            if isinstance(ref, Const):
                raise _err(f"cannot assign to constant '{e.name}'", e)
            if not isinstance(ref, Var):
                raise _err(f"'{e.name}' cannot be assigned", e)
            if ref.readonly:
                raise _err(f"cannot assign to read-only parameter '{e.name}'", e)
        elif isinstance(e, ast.Member):
            base_t = e.expr.checked_type
            if isinstance(base_t, StackT) and e.member in ("size", "lastIndex"):
                raise _err(f"'{e.member}' cannot be assigned", e)
            if not isinstance(base_t, (StructLikeT, StackT)):
                raise _err("expression cannot be assigned", e)
            self.lvalue(e.expr, scope)
        elif isinstance(e, (ast.ArrayIndex, ast.Slice)):
            self.lvalue(e.expr, scope)
        elif isinstance(e, ast.DontCare):
            pass
        else:
            raise _err("expression cannot be assigned", e)

    # -- expressions -----------------------------------------------------------------------

    def coerce(self, e: ast.Expression, t: Type, what: str) -> None:
        """Check that ``e`` (already typed) may be used where ``t`` is expected, applying the
        implicit casts P4_16 allows (integer constants to bit<W>/int<W>, enum to itself)."""
        et = e.checked_type
        if isinstance(t, DontCareT) or isinstance(et, DontCareT):
            return
        if isinstance(et, IntegerT) and isinstance(t, BitT):
            value = e.const_value
            e.const_value = wrap(value, t)
            e.checked_type = t
            return
        if isinstance(et, IntegerT) and isinstance(t, IntegerT):
            return
        if _same(et, t):
            return
        if isinstance(et, EnumT) and et.underlying is not None and _same(et.underlying, t):
            e.checked_type = t    # a serializable enum converts to its underlying type (P4_16 8.3)
            return
        if isinstance(t, TupleT) and isinstance(e, ast.ListExpression) and len(e.elements) == len(t.elements):
            for el, elt in zip(e.elements, t.elements):
                self.coerce(el, elt, what)
            e.checked_type = t
            return
        if isinstance(t, StructLikeT) and isinstance(e, (ast.ListExpression, ast.StructInitializer)):
            self.struct_value(e, t)
            return
        raise _err(f"type mismatch in {what}: expected {t}, got {et}", e)

    def struct_value(self, e, t: StructLikeT) -> None:
        if isinstance(e, ast.ListExpression):
            if len(e.elements) != len(t.fields):
                raise _err(f"{t} has {len(t.fields)} fields, the list has {len(e.elements)}", e)
            for el, f in zip(e.elements, t.fields):
                self.coerce(el, f.type, f"field '{f.name}'")
        else:
            given = {nf.name: nf for nf in e.fields}
            for nf in e.fields:
                f = t.field(nf.name)
                if f is None:
                    raise _err(f"{t} has no field '{nf.name}'", nf)
                self.coerce(nf.value, f.type, f"field '{nf.name}'")
            missing = [f.name for f in t.fields if f.name not in given]
            if missing:
                raise _err(f"missing fields in {t} initialiser: {', '.join(missing)}", e)
        e.checked_type = t

    def expr(self, e: ast.Expression, scope: Scope, expected: Type | None = None) -> Type:
        t = self._expr(e, scope, expected)
        e.checked_type = t
        return t

    def _expr(self, e, scope: Scope, expected):
        method = getattr(self, "e_" + type(e).__name__, None)
        if method is None:
            raise unsupported(f"expression {type(e).__name__}", e.loc)
        return method(e, scope, expected)

    def e_IntLiteral(self, e: ast.IntLiteral, scope, expected):
        if e.width is None:
            e.const_value = e.value
            return IntegerT()
        t = BitT(e.width, e.signed)
        if not _fits(e.value, t) and not (not e.signed and e.value < 0):
            raise _err(f"value {e.value} does not fit in {t}", e)
        e.const_value = wrap(e.value, t)
        return t

    def e_BoolLiteral(self, e, scope, expected):
        e.const_value = e.value
        return BoolT()

    def e_StringLiteral(self, e, scope, expected):
        return StringT()

    def e_DontCare(self, e, scope, expected):
        return DontCareT()

    def e_Name(self, e: ast.Name, scope: Scope, expected):
        entity = self.top.lookup(e.name) if e.top_level else scope.lookup(e.name)
        if entity is None:
            if e.name in self.types:
                e.ref = TypeEntity(self.types[e.name])
                return self.types[e.name]
            if e.name == "error":
                e.ref = TypeEntity(ErrorT())
                return ErrorT()
            raise _err(f"unknown name '{e.name}'", e)
        e.ref = entity
        if isinstance(entity, Var):
            return entity.type
        if isinstance(entity, Const):
            e.const_value = entity.value
            return entity.type
        if isinstance(entity, InstanceEntity):
            return entity.type
        if isinstance(entity, TableEntity):
            return TableT(entity.decl)
        if isinstance(entity, ValueSetEntity):
            return entity.type
        if isinstance(entity, PacketParam):
            return VoidT()
        return VoidT()  # actions, functions: only callable; checked at the call

    def e_Member(self, e: ast.Member, scope: Scope, expected):
        base = e.expr
        # error.X, Enum.X, match kinds
        if isinstance(base, ast.Name) and scope.lookup(base.name) is None and not base.top_level:
            if base.name == "error":
                if e.member not in self.errors:
                    raise _err(f"unknown error '{e.member}'", e)
                e.const_value = self.errors[e.member]
                base.ref = TypeEntity(ErrorT())
                base.checked_type = ErrorT()
                return ErrorT()
            t = self.types.get(base.name)
            if isinstance(t, EnumT):
                if e.member not in t.members:
                    raise _err(f"enum {t.name} has no member '{e.member}'", e)
                e.const_value = t.members[e.member]
                base.ref = TypeEntity(t)
                base.checked_type = t
                return t
        bt = self.expr(base, scope)
        if isinstance(bt, StructLikeT):
            f = bt.field(e.member)
            if f is None:
                raise _err(f"{bt.kind.replace('_', ' ')} {bt.name} has no field '{e.member}'", e)
            return f.type
        if isinstance(bt, StackT):
            if e.member in ("next", "last"):
                if e.member == "next" and not self.in_parser:
                    raise _err("header stack 'next' is only allowed in parsers", e)
                return bt.element
            if e.member == "size":
                e.const_value = bt.size
                return BitT(32)
            if e.member == "lastIndex":
                return BitT(32)
            raise _err(f"header stack has no member '{e.member}'", e)
        if isinstance(bt, ApplyResultT):
            if e.member in ("hit", "miss"):
                return BoolT()
            if e.member == "action_run":
                return ActionRunT(bt.table)
            raise _err(f"table apply result has no member '{e.member}'", e)
        raise _err(f"{bt} has no member '{e.member}'", e)

    def e_ArrayIndex(self, e: ast.ArrayIndex, scope, expected):
        bt = self.expr(e.expr, scope)
        it = self.expr(e.index, scope)
        if not isinstance(bt, StackT):
            raise _err(f"cannot index a value of type {bt}", e)
        if isinstance(it, IntegerT):
            self.coerce(e.index, BitT(32), "index")
        elif not isinstance(it, BitT):
            raise _err(f"index must be an integer, not {it}", e.index)
        if hasattr(e.index, "const_value") and not 0 <= e.index.const_value < bt.size:
            raise _err(f"index {e.index.const_value} out of bounds for a stack of size {bt.size}", e.index)
        return bt.element

    def e_Slice(self, e: ast.Slice, scope, expected):
        bt = self.expr(e.expr, scope)
        if not isinstance(bt, (BitT, IntegerT)):
            raise _err(f"cannot slice a value of type {bt}", e)
        hi = self.const_int(e.hi, scope, None)
        lo = self.const_int(e.lo, scope, None)
        width = bt.width if isinstance(bt, BitT) else None
        if lo < 0 or hi < lo or (width is not None and hi >= width):
            raise _err(f"bad slice bounds [{hi}:{lo}] for {bt}", e)
        t = BitT(hi - lo + 1)
        if hasattr(e.expr, "const_value"):
            e.const_value = (e.expr.const_value >> lo) & ((1 << t.width) - 1)
        return t

    def e_Unary(self, e: ast.Unary, scope, expected):
        t = self.expr(e.operand, scope, expected)
        c = getattr(e.operand, "const_value", None)
        if e.op == "!":
            if not isinstance(t, BoolT):
                raise _err(f"'!' needs a bool, not {t}", e)
            if c is not None:
                e.const_value = not c
            return t
        if not isinstance(t, (BitT, IntegerT)):
            raise _err(f"'{e.op}' needs an integer, not {t}", e)
        if e.op == "~" and isinstance(t, IntegerT):
            if not isinstance(expected, BitT):
                raise _err("'~' needs a value of fixed width (cast the constant first)", e)
            self.coerce(e.operand, expected, "'~'")
            t = expected
            c = e.operand.const_value
        if c is not None:
            value = {"-": -c, "+": c, "~": ~c}[e.op]
            e.const_value = wrap(value, t)
        return t

    def e_Binary(self, e: ast.Binary, scope, expected):
        op = e.op
        if op in ("&&", "||"):
            for side in (e.left, e.right):
                st = self.expr(side, scope, BoolT())
                if not isinstance(st, BoolT):
                    raise _err(f"'{op}' needs bool operands, not {st}", side)
            lc, rc = getattr(e.left, "const_value", None), getattr(e.right, "const_value", None)
            if lc is not None and rc is not None:
                e.const_value = (lc and rc) if op == "&&" else (lc or rc)
            return BoolT()
        lt = self.expr(e.left, scope, None if op in ("<<", ">>", "++") else expected)
        rt = self.expr(e.right, scope, None if op in ("<<", ">>", "++") else lt)
        if op == "++":
            for side, st in ((e.left, lt), (e.right, rt)):
                if not isinstance(st, BitT):
                    raise _err(f"'++' needs bit<W> or int<W> operands, not {st}", side)
            t = BitT(lt.width + rt.width, lt.signed)
            if hasattr(e.left, "const_value") and hasattr(e.right, "const_value"):
                e.const_value = wrap((e.left.const_value << rt.width) | wrap(e.right.const_value, BitT(rt.width)), t)
            return t
        if op in ("<<", ">>"):
            if not isinstance(lt, (BitT, IntegerT)):
                raise _err(f"'{op}' needs an integer left operand, not {lt}", e.left)
            if not isinstance(rt, (BitT, IntegerT)) or (isinstance(rt, BitT) and rt.signed):
                raise _err(f"shift amount must be an unsigned integer, not {rt}", e.right)
            if isinstance(lt, IntegerT) and not hasattr(e.right, "const_value"):
                raise _err("shifting an int constant by a run-time amount: give the constant a width", e)
            if isinstance(rt, IntegerT):
                if e.right.const_value < 0:
                    raise _err("negative shift amount", e.right)
            if hasattr(e.left, "const_value") and hasattr(e.right, "const_value"):
                value = e.left.const_value << e.right.const_value if op == "<<" else e.left.const_value >> e.right.const_value
                e.const_value = wrap(value, lt)
            return lt
        # serializable enums mix with their underlying type as that type
        if isinstance(lt, EnumT) and lt.underlying is not None and isinstance(rt, (BitT, IntegerT)):
            self.coerce(e.left, lt.underlying, f"'{op}'")
            lt = lt.underlying
        if isinstance(rt, EnumT) and rt.underlying is not None and isinstance(lt, (BitT, IntegerT)):
            self.coerce(e.right, rt.underlying, f"'{op}'")
            rt = rt.underlying
        # both operands must agree; an int constant takes the other side's type
        if isinstance(lt, IntegerT) and not isinstance(rt, IntegerT):
            self.coerce(e.left, rt, f"'{op}'")
            lt = rt
        elif isinstance(rt, IntegerT) and not isinstance(lt, IntegerT):
            self.coerce(e.right, lt, f"'{op}'")
            rt = lt
        if op in ("==", "!="):
            if not _same(lt, rt):
                raise _err(f"cannot compare {lt} with {rt}", e)
            if isinstance(lt, (StructLikeT, StackT, TupleT)):
                raise unsupported("comparing headers, structs or stacks", e.loc)
            if hasattr(e.left, "const_value") and hasattr(e.right, "const_value"):
                e.const_value = (e.left.const_value == e.right.const_value) == (op == "==")
            return BoolT()
        for side, st in ((e.left, lt), (e.right, rt)):
            if not isinstance(st, (BitT, IntegerT)):
                raise _err(f"'{op}' needs integer operands, not {st}", side)
        if not _same(lt, rt):
            raise _err(f"operands of '{op}' have different types: {lt} and {rt}", e)
        if op in ("/", "%"):
            if isinstance(lt, BitT) and lt.signed:
                raise _err(f"'{op}' is not defined for signed int<W>", e)
            if hasattr(e.right, "const_value") and e.right.const_value == 0:
                raise _err("division by zero", e.right)
        lc, rc = getattr(e.left, "const_value", None), getattr(e.right, "const_value", None)
        if op in ("<", "<=", ">", ">="):
            if lc is not None and rc is not None:
                e.const_value = {"<": lc < rc, "<=": lc <= rc, ">": lc > rc, ">=": lc >= rc}[op]
            return BoolT()
        if lc is not None and rc is not None:
            e.const_value = wrap(_fold(op, lc, rc, lt), lt)
        return lt

    def e_Ternary(self, e: ast.Ternary, scope, expected):
        ct = self.expr(e.cond, scope, BoolT())
        if not isinstance(ct, BoolT):
            raise _err(f"'?:' condition must be bool, not {ct}", e.cond)
        tt = self.expr(e.then, scope, expected)
        ot = self.expr(e.otherwise, scope, tt if not isinstance(tt, IntegerT) else expected)
        if isinstance(tt, IntegerT) and not isinstance(ot, IntegerT):
            self.coerce(e.then, ot, "'?:'")
            tt = ot
        elif isinstance(ot, IntegerT) and not isinstance(tt, IntegerT):
            self.coerce(e.otherwise, tt, "'?:'")
        elif isinstance(tt, IntegerT) and isinstance(ot, IntegerT) and not hasattr(e.cond, "const_value"):
            if not isinstance(expected, BitT):
                raise _err("'?:' of two int constants needs a width", e)
            self.coerce(e.then, expected, "'?:'")
            self.coerce(e.otherwise, expected, "'?:'")
            tt = expected
        elif not _same(tt, ot):
            raise _err(f"'?:' branches have different types: {tt} and {ot}", e)
        c = getattr(e.cond, "const_value", None)
        if c is not None and hasattr(e.then, "const_value") and hasattr(e.otherwise, "const_value"):
            e.const_value = e.then.const_value if c else e.otherwise.const_value
        return tt

    def e_Cast(self, e: ast.Cast, scope, expected):
        t = self.resolve_type(e.target_type)
        st = self.expr(e.expr, scope, t if isinstance(t, (StructLikeT, TupleT)) else None)
        c = getattr(e.expr, "const_value", None)
        if isinstance(t, StructLikeT):
            self.coerce(e.expr, t, "cast")
            return t
        ok = (
            (isinstance(t, BitT) and isinstance(st, (BitT, IntegerT)))
            or (isinstance(t, BitT) and isinstance(st, BoolT) and t.width == 1 and not t.signed)
            or (isinstance(t, BoolT) and isinstance(st, BitT) and st.width == 1 and not st.signed)
            or (isinstance(t, BoolT) and isinstance(st, (BoolT, IntegerT)))
            or (isinstance(t, EnumT) and t.underlying is not None and isinstance(st, (BitT, IntegerT)))
            or (isinstance(t, BitT) and isinstance(st, EnumT) and st.underlying is not None)
            or (isinstance(t, IntegerT) and isinstance(st, (BitT, IntegerT)))
            or _same(t, st)
        )
        if not ok:
            raise _err(f"cannot cast {st} to {t}", e)
        if c is not None:
            if isinstance(t, BoolT):
                e.const_value = bool(c)
            elif isinstance(t, BitT):
                e.const_value = wrap(int(c), t)
            elif isinstance(t, EnumT):
                e.const_value = wrap(int(c), t.underlying)
            else:
                e.const_value = int(c)
        return t

    def e_ListExpression(self, e: ast.ListExpression, scope, expected):
        if isinstance(expected, StructLikeT):
            for el, f in zip(e.elements, expected.fields):
                self.expr(el, scope, f.type)
            self.struct_value(e, expected)
            return expected
        elements = []
        for i, el in enumerate(e.elements):
            et = expected.elements[i] if isinstance(expected, TupleT) and i < len(expected.elements) else None
            elements.append(self.expr(el, scope, et))
        return TupleT(tuple(elements))

    def e_StructInitializer(self, e: ast.StructInitializer, scope, expected):
        t = self.resolve_type(e.type_name) if e.type_name is not None else expected
        if not isinstance(t, StructLikeT):
            raise _err("cannot tell the type of this structure initialiser (cast it)", e)
        for nf in e.fields:
            f = t.field(nf.name)
            self.expr(nf.value, scope, f.type if f else None)
        self.struct_value(e, t)
        return t

    def e_MethodCall(self, e: ast.MethodCall, scope: Scope, expected):
        return _CallChecker(self, e, scope, expected).check()

    def e_Mask(self, e, scope, expected):
        raise _err("'&&&' is only allowed in keysets", e)

    def e_Range(self, e, scope, expected):
        raise _err("'..' is only allowed in keysets", e)

    def e_DefaultKeyset(self, e, scope, expected):
        raise _err("'default' is only allowed in keysets", e)

    def e_This(self, e, scope, expected):
        raise unsupported("'this'", e.loc)


def _fold(op: str, a: int, b: int, t: Type) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a // b
    if op == "%":
        return a % b
    if op == "&":
        return a & b
    if op == "|":
        return a | b
    if op == "^":
        return a ^ b
    if op in ("|+|", "|-|"):
        value = a + b if op == "|+|" else a - b
        if isinstance(t, BitT):
            lo, hi = ((-(1 << (t.width - 1)), (1 << (t.width - 1)) - 1) if t.signed else (0, (1 << t.width) - 1))
            value = min(max(value, lo), hi)
        return value
    raise ValueError(op)


def _same(a: Type, b: Type) -> bool:
    if a is b:
        return True
    if isinstance(a, (EnumT, StructLikeT, ExternT, BlockT)):
        return a is b or (type(a) is type(b) and a.name == b.name)
    return a == b


# ---------------------------------------------------------------------------- calls


class _CallChecker:
    """One method call: what it calls (``kind``/``target`` on the node) and its arguments."""

    def __init__(self, checker: _Checker, call: ast.MethodCall, scope: Scope, expected):
        self.c = checker
        self.call = call
        self.scope = scope
        self.expected = expected

    def check(self) -> Type:
        callee = self.call.callee
        if isinstance(callee, ast.Name):
            entity = self.c.top.lookup(callee.name) if callee.top_level else self.scope.lookup(callee.name)
            callee.ref = entity
            if isinstance(entity, ActionEntity):
                return self.action(entity)
            if isinstance(entity, FunctionEntity):
                return self.function(entity)
            if isinstance(entity, ExternFunctionEntity):
                return self.extern_function(entity)
            if entity is None and callee.name in self.c.types:
                raise unsupported("constructor calls as expressions", callee.loc)
            if entity is None:
                raise _err(f"unknown name '{callee.name}'", callee)
            raise _err(f"'{callee.name}' cannot be called", callee)
        if isinstance(callee, ast.Member):
            return self.method(callee)
        raise _err("this expression cannot be called", callee)

    def mark(self, kind: str, target, params=None) -> None:
        self.call.kind = kind
        self.call.target = target
        self.call.param_list = params or []

    def args(self, params: list[ast.Parameter], tvars: dict[str, Type], what: str,
             type_params: list[str] = ()) -> None:
        """Match arguments to parameters (positional or by name), infer type variables from
        the arguments, check directions (out/inout need l-values) and types."""
        args = self.call.args
        if any(a.name for a in args):
            by_name = {a.name: a for a in args}
            unknown = [n for n in by_name if n not in {p.name for p in params}]
            if unknown:
                raise _err(f"{what} has no parameter '{unknown[0]}'", self.call)
            ordered = [by_name.get(p.name) for p in params]
        else:
            ordered = list(args) + [None] * (len(params) - len(args))
        required = [p for p in params if p.default is None and not _optional(p)]
        if len(args) > len(params) or sum(a is not None for a in ordered) < len(required):
            n = len(params)
            raise _err(f"{what} takes {n} argument{'s' if n != 1 else ''}, got {len(args)}", self.call)
        matched = []
        for arg, p in zip(ordered, params):
            if arg is None:
                if p.default is None and not _optional(p):
                    raise _err(f"missing argument '{p.name}' of {what}", self.call)
                continue
            if isinstance(p.type, ast.NamedType) and p.type.name in ("packet_in", "packet_out"):
                self.c.expr(arg.value, self.scope)     # a sub-parser's packet: the caller's own
                if not (isinstance(getattr(arg.value, "ref", None), PacketParam) and arg.value.ref.kind == p.type.name):
                    raise _err(f"argument '{p.name}' of {what} must be the {p.type.name} parameter", arg.value)
                matched.append((arg, p))
                continue
            generic = any(isinstance(n, ast.NamedType) and n.name in type_params and n.name not in tvars
                          for n in ast.walk(p.type))
            pt = None if generic else self.c.resolve_type(p.type, tvars)
            if isinstance(arg.value, ast.DontCare):
                if p.direction != "out":
                    raise _err(f"'_' can only be passed for an out parameter ('{p.name}')", arg.value)
                arg.value.checked_type = pt or DontCareT()
                matched.append((arg, p))
                continue
            at = self.c.expr(arg.value, self.scope, pt)
            if generic:
                # an unsized constant leaves the type variable open; the value is known
                if isinstance(p.type, ast.NamedType) and p.type.name in type_params and not isinstance(at, IntegerT):
                    tvars[p.type.name] = at
            else:
                self.c.coerce(arg.value, pt, f"argument '{p.name}' of {what}")
            if p.direction in ("out", "inout"):
                self.c.lvalue(arg.value, self.scope)
            matched.append((arg, p))
        self.call.matched_args = matched

    # -- callee kinds ------------------------------------------------------------------------

    def action(self, entity: ActionEntity) -> Type:
        if self.c.in_parser:
            raise _err("actions cannot be called from a parser", self.call)
        for p in entity.decl.params:
            if not hasattr(p, "entity"):
                p.entity = Var(p.name, self.c.resolve_type(p.type), "local", p.direction)
        self.args(entity.decl.params, {}, f"action '{entity.decl.name}'")
        self.mark("action", entity)
        return VoidT()

    def function(self, entity: FunctionEntity) -> Type:
        self.args(entity.decl.params, {}, f"function '{entity.decl.name}'")
        self.mark("function", entity)
        return self.c.resolve_type(entity.decl.return_type)

    def extern_function(self, entity: ExternFunctionEntity) -> Type:
        n = len(self.call.args)
        candidates = [d for d in entity.overloads
                      if sum(1 for p in d.params if p.default is None and not _optional(p)) <= n <= len(d.params)]
        if not candidates:
            counts = sorted({len(d.params) for d in entity.overloads})
            raise _err(f"'{entity.name}' takes {' or '.join(map(str, counts))} arguments, got {n}", self.call)
        decl = candidates[0]
        tvars = {}
        for tp, ta in zip(decl.type_params, self.call.type_args):
            tvars[tp] = self.c.resolve_type(ta)
        self.args(decl.params, tvars, f"'{entity.name}'", decl.type_params)
        if entity.name in ("resubmit", "recirculate", "clone3"):
            raise unsupported(f"'{entity.name}' (use the *_preserving_field_list form)", self.call.loc)
        self.mark("extern_function", entity, decl.params)
        self.call.tvars = tvars
        rt = decl.return_type
        return self.c.resolve_type(rt, tvars) if not self.c.mentions_tvar(rt, decl.type_params, tvars) else VoidT()

    def method(self, callee: ast.Member) -> Type:
        base, name = callee.expr, callee.member
        if isinstance(base, ast.Name):
            entity = self.c.top.lookup(base.name) if base.top_level else self.scope.lookup(base.name)
            base.ref = entity
            if isinstance(entity, PacketParam):
                return self.packet_method(entity, name)
            if isinstance(entity, TableEntity):
                if name != "apply":
                    raise _err(f"table has no method '{name}'", callee)
                if self.call.args:
                    raise _err("table apply() takes no arguments", self.call)
                if self.c.in_action:
                    raise _err("tables cannot be applied from an action", self.call)
                self.mark("table_apply", entity)
                return ApplyResultT(entity)
            if isinstance(entity, InstanceEntity) and isinstance(entity.type, BlockT):
                if name != "apply":
                    raise _err(f"{entity.type} has no method '{name}'", callee)
                sub_parser = isinstance(entity.type.decl, ast.ParserDecl)
                if sub_parser != self.c.in_parser:
                    raise _err(f"a {'parser' if sub_parser else 'control'} can only be applied in a "
                               f"{'parser state' if sub_parser else 'control'}", self.call)
                self.args(entity.type.decl.params, {}, f"{entity.decl.name}.apply")
                self.mark("parser_apply" if sub_parser else "control_apply", entity, entity.type.decl.params)
                return VoidT()
            if isinstance(entity, InstanceEntity) and isinstance(entity.type, ExternT):
                return self.extern_method(entity, name, callee)
            if entity is None:
                what = "table or control" if name == "apply" else "name"
                raise _err(f"unknown {what} '{base.name}'", base)
        bt = self.c.expr(base, self.scope)
        if isinstance(bt, StructLikeT) and bt.kind in ("header", "header_union"):
            if name not in ("isValid", "setValid", "setInvalid"):
                raise _err(f"{bt.kind.replace('_', ' ')} has no method '{name}'", callee)
            if self.call.args:
                raise _err(f"{name}() takes no arguments", self.call)
            if bt.kind == "header_union" and name != "isValid":
                raise _err(f"header unions have no method '{name}'", callee)
            if name != "isValid":
                self.c.lvalue(base, self.scope)
            self.mark(name, None)
            return BoolT() if name == "isValid" else VoidT()
        if isinstance(bt, StackT):
            if name not in ("push_front", "pop_front"):
                raise _err(f"header stack has no method '{name}'", callee)
            if len(self.call.args) != 1:
                raise _err(f"{name}() takes 1 argument", self.call)
            self.mark(name, None)
            self.call.count = self.c.const_int(self.call.args[0].value, self.scope, None)
            self.c.lvalue(base, self.scope)
            return VoidT()
        if name in ("isValid", "setValid", "setInvalid"):
            raise _err(f"{name}() needs a header, not {bt}", callee)
        raise _err(f"{bt} has no method '{name}'", callee)

    def packet_method(self, packet: PacketParam, name: str) -> Type:
        args = self.call.args
        if packet.kind == "packet_out":
            if name != "emit":
                raise _err(f"packet_out has no method '{name}'", self.call)
            if len(args) != 1:
                raise _err("emit() takes 1 argument", self.call)
            t = self.c.expr(args[0].value, self.scope)
            if not isinstance(t, (StructLikeT, StackT)):
                raise _err(f"emit() needs a header, stack, union or struct of them, not {t}", args[0].value)
            _check_emittable(t, args[0].value)
            self.mark("emit", packet)
            return VoidT()
        if not self.c.in_parser:
            raise _err(f"packet_in.{name} is only available in parsers", self.call)
        if name == "extract":
            if len(args) not in (1, 2):
                raise _err("extract() takes 1 or 2 arguments", self.call)
            t = self.c.expr(args[0].value, self.scope)
            if not (isinstance(t, StructLikeT) and t.kind == "header"):
                raise _err(f"extract() needs a header, not {t}", args[0].value)
            has_varbit = any(isinstance(f.type, VarbitT) for f in t.fields)
            if has_varbit != (len(args) == 2):
                raise _err(f"header {t.name} {'has' if has_varbit else 'has no'} varbit field: extract() "
                           f"takes {'2 arguments (header, length in bits)' if has_varbit else '1 argument'}", self.call)
            if has_varbit:
                self.c.expr(args[1].value, self.scope, BitT(32))
                self.c.coerce(args[1].value, BitT(32), "extract() length")
            self.c.lvalue(args[0].value, self.scope)
            self.mark("extract", packet)
            return VoidT()
        if name == "lookahead":
            if len(self.call.type_args) != 1 or args:
                raise _err("lookahead<T>() takes one type argument and no arguments", self.call)
            t = self.c.resolve_type(self.call.type_args[0])
            if not isinstance(t, (BitT, StructLikeT)):
                raise _err(f"cannot look ahead for a {t}", self.call)
            self.mark("lookahead", packet)
            return t
        if name == "advance":
            if len(args) != 1:
                raise _err("advance() takes 1 argument", self.call)
            self.c.expr(args[0].value, self.scope, BitT(32))
            self.c.coerce(args[0].value, BitT(32), "advance()")
            self.mark("advance", packet)
            return VoidT()
        if name == "length":
            self.mark("length", packet)
            return BitT(32)
        raise _err(f"packet_in has no method '{name}'", self.call)

    def extern_method(self, inst: InstanceEntity, name: str, callee) -> Type:
        et: ExternT = inst.type
        methods = [m for m in et.decl.methods if m.name == name]
        if not methods:
            raise _err(f"extern {et.name} has no method '{name}'", callee)
        n = len(self.call.args)
        fitting = [m for m in methods if sum(1 for p in m.params if p.default is None and not _optional(p)) <= n <= len(m.params)]
        if not fitting:
            counts = sorted({len(m.params) for m in methods})
            raise _err(f"{et.name}.{name} takes {' or '.join(map(str, counts))} arguments, got {n}", self.call)
        m = fitting[0]
        tvars = dict(zip(et.decl.type_params, et.type_args))
        for tp, ta in zip(m.type_params, self.call.type_args):
            tvars[tp] = self.c.resolve_type(ta)
        self.args(m.params, tvars, f"{et.name}.{name}", list(et.decl.type_params) + list(m.type_params))
        self.mark("extern_method", inst, m.params)
        self.call.method_name = name
        self.call.tvars = tvars
        if self.c.mentions_tvar(m.return_type, list(et.decl.type_params) + list(m.type_params), tvars):
            return VoidT()
        return self.c.resolve_type(m.return_type, tvars)


def _optional(p: ast.Parameter) -> bool:
    return any(a.name == "optional" for a in p.annotations)


def _check_emittable(t: Type, node) -> None:
    if isinstance(t, StackT):
        return
    if isinstance(t, StructLikeT):
        if t.kind == "struct":
            for f in t.fields:
                if not isinstance(f.type, (StructLikeT, StackT)):
                    raise _err(f"emit() of struct {t.name}: field '{f.name}' is not a header", node)
                _check_emittable(f.type, node)
