"""The P4_16 abstract syntax tree produced by ``parser.py``.

Every node is a keyword-only dataclass with a ``loc: SourceLocation`` (file, line, col of its
first token). Nodes compare and hash by identity (``eq=False``), so passes can key dicts by
node; ``dump()`` gives a structural text form for tests. Node families:

* Annotations: ``Annotation`` (``@name("x")``, ``@id(1)``, ``@defaultonly``, any other kept as
  name + parsed expressions / key-value pairs + raw token texts).
* Type references (``TypeRef``): ``BitType``, ``IntType``, ``VarbitType``, ``IntegerType``
  (``int``), ``BoolType``, ``ErrorType``, ``StringType``, ``MatchKindType``, ``VoidType``,
  ``DontCareType`` (``_`` as a type argument), ``NamedType`` (with type arguments),
  ``TupleType``, ``HeaderStackType`` (``T[N]``).
* Declarations (``Declaration``): ``TypedefDecl``, ``NewTypeDecl`` (``type``), ``HeaderDecl``,
  ``HeaderUnionDecl``, ``StructDecl``, ``EnumDecl`` (serializable when ``underlying_type`` is
  set), ``ErrorDecl``, ``MatchKindDecl``, ``ConstDecl``, ``ExternDecl`` (object: methods and
  constructors), ``ExternFunctionDecl``, ``ParserTypeDecl``, ``ControlTypeDecl``,
  ``PackageTypeDecl``, ``ParserDecl``, ``ControlDecl``, ``ActionDecl``, ``TableDecl``,
  ``Instantiation``, ``ValueSetDecl``, ``FunctionDecl``, ``VariableDecl``; with their parts
  ``Parameter``, ``StructField``, ``EnumMember``, ``Identifier``, ``MethodPrototype``,
  ``ConstructorPrototype``, ``ParserState``, ``KeyElement``, ``ActionRef``, ``DefaultAction``,
  ``TableEntries``, ``TableEntry``, ``TableProperty``.
* Parser transitions: ``Transition`` (to a state, or through a ``SelectExpression`` whose
  ``SelectCase``s hold keysets).
* Statements (``Statement``): ``AssignmentStatement``, ``MethodCallStatement``,
  ``IfStatement``, ``SwitchStatement`` (``SwitchCase``; body None = fall through),
  ``BlockStatement``, ``ReturnStatement``, ``ExitStatement``, ``EmptyStatement``; a block (and a
  parser state) may also hold ``VariableDecl`` and ``ConstDecl``.
* Expressions (``Expression``): ``IntLiteral``, ``BoolLiteral``, ``StringLiteral``, ``Name``,
  ``Member``, ``ArrayIndex``, ``Slice``, ``Unary``, ``Binary``, ``Ternary``, ``Cast``,
  ``MethodCall`` (with ``Argument``s), ``ListExpression``, ``StructInitializer``
  (``NamedExpression``s), ``This``, ``DontCare`` (``_``), and the keyset forms ``Mask``
  (``&&&``), ``Range`` (``..``), ``DefaultKeyset`` (``default``). A keyset naming a value_set
  is a plain ``Name``.

Conventions: names are plain ``str``; type parameters are lists of names. ``error.NoError``,
``HashAlgorithm.crc32`` and the like are ``Member(Name("error"), "NoError")`` — the type
checker decides whether a ``Name`` is a type or a value. Constructor calls
(``MyParser()``, ``register<bit<8>>(4)`` as an argument) are ``MethodCall``s too. Every
expression has a ``checked_type`` slot (None from the parser) for the type checker to fill.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterator

from fabriclab.compiler.diagnostics import SourceLocation


@dataclass(kw_only=True, eq=False)
class Node:
    loc: SourceLocation


# ---------------------------------------------------------------------------- annotations

@dataclass(kw_only=True, eq=False)
class NamedExpression(Node):
    """``name = value``: a struct-initialiser field or a key-value annotation argument."""
    name: str
    value: Expression


@dataclass(kw_only=True, eq=False)
class Annotation(Node):
    name: str                                   # without the '@'
    # Parsed body when it is an expression list (``@name("x")``, ``@id(1)``) ...
    args: list[Expression] = field(default_factory=list)
    # ... or a key-value list (``@foo[a=1, b="x"]``).
    named_args: list[NamedExpression] = field(default_factory=list)
    # The raw token texts between the brackets, always kept (empty for ``@defaultonly``);
    # when the body is neither form, ``args``/``named_args`` are empty and this is all there is.
    tokens: list[str] = field(default_factory=list)
    has_body: bool = False                      # written with (...) or [...]


def find_annotation(annotations: list[Annotation], name: str) -> Annotation | None:
    """The last annotation called ``name`` (later ones override earlier ones), or None."""
    found = None
    for annotation in annotations:
        if annotation.name == name:
            found = annotation
    return found


# ---------------------------------------------------------------------------- type references

@dataclass(kw_only=True, eq=False)
class TypeRef(Node):
    pass


@dataclass(kw_only=True, eq=False)
class BitType(TypeRef):
    """``bit<W>``; plain ``bit`` is ``bit<1>`` (width is then an IntLiteral 1)."""
    width: Expression


@dataclass(kw_only=True, eq=False)
class IntType(TypeRef):
    """``int<W>``: signed, fixed width."""
    width: Expression


@dataclass(kw_only=True, eq=False)
class VarbitType(TypeRef):
    max_width: Expression


@dataclass(kw_only=True, eq=False)
class IntegerType(TypeRef):
    """``int``: arbitrary-precision (compile-time) integer."""


@dataclass(kw_only=True, eq=False)
class BoolType(TypeRef):
    pass


@dataclass(kw_only=True, eq=False)
class ErrorType(TypeRef):
    pass


@dataclass(kw_only=True, eq=False)
class StringType(TypeRef):
    pass


@dataclass(kw_only=True, eq=False)
class MatchKindType(TypeRef):
    pass


@dataclass(kw_only=True, eq=False)
class VoidType(TypeRef):
    pass


@dataclass(kw_only=True, eq=False)
class DontCareType(TypeRef):
    """``_`` as a type argument: let the compiler infer it."""


@dataclass(kw_only=True, eq=False)
class NamedType(TypeRef):
    """A declared type (header, struct, typedef, extern, type variable...), maybe specialised."""
    name: str
    type_args: list[TypeRef] = field(default_factory=list)
    top_level: bool = False                     # written ``.name``


@dataclass(kw_only=True, eq=False)
class TupleType(TypeRef):
    elements: list[TypeRef]


@dataclass(kw_only=True, eq=False)
class HeaderStackType(TypeRef):
    """``T[N]``."""
    element: TypeRef
    size: Expression


# ---------------------------------------------------------------------------- expressions

@dataclass(kw_only=True, eq=False)
class Expression(Node):
    # Filled in by the type checker; the parser leaves it None.
    checked_type: Any = field(default=None, repr=False)


@dataclass(kw_only=True, eq=False)
class IntLiteral(Expression):
    value: int
    width: int | None = None                    # ``8w5`` -> 8; None for an unsized literal
    signed: bool = False                        # ``4s3`` -> True
    text: str = ""                              # as written, for messages and @name texts


@dataclass(kw_only=True, eq=False)
class BoolLiteral(Expression):
    value: bool


@dataclass(kw_only=True, eq=False)
class StringLiteral(Expression):
    value: str                                  # escapes resolved


@dataclass(kw_only=True, eq=False)
class Name(Expression):
    """A value, type or state name (``error`` and other type names too, before ``.member``)."""
    name: str
    top_level: bool = False                     # written ``.name``


@dataclass(kw_only=True, eq=False)
class Member(Expression):
    expr: Expression
    member: str


@dataclass(kw_only=True, eq=False)
class ArrayIndex(Expression):
    expr: Expression
    index: Expression


@dataclass(kw_only=True, eq=False)
class Slice(Expression):
    """``expr[hi:lo]``."""
    expr: Expression
    hi: Expression
    lo: Expression


@dataclass(kw_only=True, eq=False)
class Unary(Expression):
    op: str                                     # '!' | '~' | '-' | '+'
    operand: Expression


@dataclass(kw_only=True, eq=False)
class Binary(Expression):
    # '*' '/' '%' '+' '-' '|+|' '|-|' '++' '<<' '>>' '&' '^' '|'
    # '==' '!=' '<' '<=' '>' '>=' '&&' '||'
    op: str
    left: Expression
    right: Expression


@dataclass(kw_only=True, eq=False)
class Ternary(Expression):
    cond: Expression
    then: Expression
    otherwise: Expression


@dataclass(kw_only=True, eq=False)
class Cast(Expression):
    target_type: TypeRef
    expr: Expression


@dataclass(kw_only=True, eq=False)
class Argument(Node):
    """A call argument; ``name`` is set for ``f(x = 1)``; ``value`` may be ``DontCare``."""
    value: Expression
    name: str | None = None


@dataclass(kw_only=True, eq=False)
class MethodCall(Expression):
    """``callee<type_args>(args)``: functions, methods, actions, constructors, ``t.apply()``."""
    callee: Expression
    type_args: list[TypeRef] = field(default_factory=list)
    args: list[Argument] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class ListExpression(Expression):
    """``{a, b, c}``: a tuple / list value."""
    elements: list[Expression]


@dataclass(kw_only=True, eq=False)
class StructInitializer(Expression):
    """``{ f = e, ... }``; its struct/header type comes from context, or from ``type_name`` when
    written ``(T){ f = e, ... }`` (the parser folds that cast into the initialiser)."""
    fields: list[NamedExpression]
    type_name: TypeRef | None = None


@dataclass(kw_only=True, eq=False)
class This(Expression):
    pass


@dataclass(kw_only=True, eq=False)
class DontCare(Expression):
    """``_``: an ignored out argument, or a wildcard keyset."""


@dataclass(kw_only=True, eq=False)
class DefaultKeyset(Expression):
    """``default`` in a select case or entry key."""


@dataclass(kw_only=True, eq=False)
class Mask(Expression):
    """``value &&& mask``."""
    value: Expression
    mask: Expression


@dataclass(kw_only=True, eq=False)
class Range(Expression):
    """``lo .. hi`` (inclusive)."""
    lo: Expression
    hi: Expression


# ---------------------------------------------------------------------------- statements

@dataclass(kw_only=True, eq=False)
class Statement(Node):
    pass


@dataclass(kw_only=True, eq=False)
class AssignmentStatement(Statement):
    target: Expression
    value: Expression


@dataclass(kw_only=True, eq=False)
class MethodCallStatement(Statement):
    call: MethodCall
    result: Expression | None = None            # set by compiler/sideeffects.py: receives the value


@dataclass(kw_only=True, eq=False)
class BlockStatement(Statement):
    # Statements, VariableDecl and ConstDecl, in order.
    statements: list[Node] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class IfStatement(Statement):
    cond: Expression
    then: Statement
    otherwise: Statement | None = None


@dataclass(kw_only=True, eq=False)
class SwitchCase(Node):
    """``label: body``; label is an action Name, a value expression or ``DefaultKeyset``."""
    label: Expression
    body: BlockStatement | None                 # None: falls through to the next case


@dataclass(kw_only=True, eq=False)
class SwitchStatement(Statement):
    """``switch (t.apply().action_run) {...}`` or ``switch (value) {...}``."""
    expr: Expression
    cases: list[SwitchCase]


@dataclass(kw_only=True, eq=False)
class ReturnStatement(Statement):
    value: Expression | None = None


@dataclass(kw_only=True, eq=False)
class ForStatement(Statement):
    """``for (init; cond; update) body`` (P4_16 1.2.4)."""
    init: list[Node] = field(default_factory=list)     # declarations, assignments, calls
    cond: Expression | None = None
    update: list[Node] = field(default_factory=list)   # assignments, calls
    body: Statement


@dataclass(kw_only=True, eq=False)
class ForInStatement(Statement):
    """``for (T x in lo .. hi) body`` or ``for (T x in stack) body`` (P4_16 1.2.4)."""
    var: VariableDecl
    collection: Expression                              # a Range, or a header stack
    body: Statement


@dataclass(kw_only=True, eq=False)
class BreakStatement(Statement):
    pass


@dataclass(kw_only=True, eq=False)
class ContinueStatement(Statement):
    pass


@dataclass(kw_only=True, eq=False)
class ExitStatement(Statement):
    pass


@dataclass(kw_only=True, eq=False)
class EmptyStatement(Statement):
    pass


# ---------------------------------------------------------------------------- declarations

@dataclass(kw_only=True, eq=False)
class Declaration(Node):
    name: str
    annotations: list[Annotation] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class Identifier(Node):
    """A declared name with its own location (error and match_kind members)."""
    name: str


@dataclass(kw_only=True, eq=False)
class Parameter(Node):
    name: str
    type: TypeRef
    direction: str = ""                         # '' | 'in' | 'out' | 'inout'
    default: Expression | None = None           # ``bit<8> x = 1``
    annotations: list[Annotation] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class StructField(Node):
    name: str
    type: TypeRef
    annotations: list[Annotation] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class TypedefDecl(Declaration):
    type: TypeRef


@dataclass(kw_only=True, eq=False)
class NewTypeDecl(Declaration):
    """``type bit<32> IPv4Address_t;``: a distinct type, not an alias."""
    type: TypeRef


@dataclass(kw_only=True, eq=False)
class HeaderDecl(Declaration):
    fields: list[StructField]
    type_params: list[str] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class HeaderUnionDecl(Declaration):
    fields: list[StructField]
    type_params: list[str] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class StructDecl(Declaration):
    fields: list[StructField]
    type_params: list[str] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class EnumMember(Node):
    name: str
    value: Expression | None = None             # set in serializable enums


@dataclass(kw_only=True, eq=False)
class EnumDecl(Declaration):
    members: list[EnumMember]
    underlying_type: TypeRef | None = None      # ``enum bit<8> E {...}``: serializable

    @property
    def is_serializable(self) -> bool:
        return self.underlying_type is not None


@dataclass(kw_only=True, eq=False)
class ErrorDecl(Declaration):
    """``error { A, B }`` (name is "error"); several declarations merge."""
    members: list[Identifier]


@dataclass(kw_only=True, eq=False)
class MatchKindDecl(Declaration):
    """``match_kind { exact, lpm }`` (name is "match_kind"); several declarations merge."""
    members: list[Identifier]


@dataclass(kw_only=True, eq=False)
class ConstDecl(Declaration):
    type: TypeRef
    value: Expression


@dataclass(kw_only=True, eq=False)
class VariableDecl(Declaration):
    type: TypeRef
    init: Expression | None = None


@dataclass(kw_only=True, eq=False)
class MethodPrototype(Node):
    name: str
    return_type: TypeRef
    params: list[Parameter]
    type_params: list[str] = field(default_factory=list)
    abstract: bool = False                      # ``abstract`` methods are implemented by the user
    annotations: list[Annotation] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class ConstructorPrototype(Node):
    params: list[Parameter]
    annotations: list[Annotation] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class ExternDecl(Declaration):
    """An extern object type: ``extern register<T> { register(bit<32> size); ... }``."""
    methods: list[MethodPrototype] = field(default_factory=list)
    constructors: list[ConstructorPrototype] = field(default_factory=list)
    type_params: list[str] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class ExternFunctionDecl(Declaration):
    """``extern void mark_to_drop(inout standard_metadata_t m);``."""
    return_type: TypeRef
    params: list[Parameter]
    type_params: list[str] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class ParserTypeDecl(Declaration):
    """``parser Parser<H, M>(packet_in b, out H h, ...);``."""
    params: list[Parameter]
    type_params: list[str] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class ControlTypeDecl(Declaration):
    params: list[Parameter]
    type_params: list[str] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class PackageTypeDecl(Declaration):
    """``package V1Switch<H, M>(Parser<H, M> p, ...);``."""
    params: list[Parameter]
    type_params: list[str] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class SelectCase(Node):
    """``keyset: state;`` — one keyset per select expression (a tuple keyset is split), or a
    single ``DefaultKeyset`` / ``DontCare`` standing for the whole tuple."""
    keysets: list[Expression]
    state: str


@dataclass(kw_only=True, eq=False)
class SelectExpression(Expression):
    exprs: list[Expression]
    cases: list[SelectCase]


@dataclass(kw_only=True, eq=False)
class Transition(Node):
    """``transition next;`` (``state`` set) or ``transition select(...) {...}``."""
    state: str | None = None
    select: SelectExpression | None = None


@dataclass(kw_only=True, eq=False)
class ParserState(Declaration):
    statements: list[Node] = field(default_factory=list)   # as in BlockStatement
    transition: Transition | None = None                   # None: implicitly ``reject``


@dataclass(kw_only=True, eq=False)
class ParserDecl(Declaration):
    params: list[Parameter]
    constructor_params: list[Parameter] = field(default_factory=list)
    type_params: list[str] = field(default_factory=list)
    locals: list[Declaration] = field(default_factory=list)  # const, variable, instance, value_set
    states: list[ParserState] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class ControlDecl(Declaration):
    params: list[Parameter]
    constructor_params: list[Parameter] = field(default_factory=list)
    type_params: list[str] = field(default_factory=list)
    # const, variable, instance, action, table, function declarations in order
    locals: list[Declaration] = field(default_factory=list)
    apply: BlockStatement | None = None


@dataclass(kw_only=True, eq=False)
class ActionDecl(Declaration):
    params: list[Parameter]
    body: BlockStatement


@dataclass(kw_only=True, eq=False)
class FunctionDecl(Declaration):
    return_type: TypeRef
    params: list[Parameter]
    body: BlockStatement
    type_params: list[str] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class Instantiation(Declaration):
    """``register<bit<32>>(64) r;``, ``V1Switch(MyParser(), ...) main;``."""
    type: TypeRef
    args: list[Argument] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class ValueSetDecl(Declaration):
    """``value_set<bit<16>>(4) pvs;``."""
    element_type: TypeRef
    size: Expression


# ---------------------------------------------------------------------------- tables

@dataclass(kw_only=True, eq=False)
class KeyElement(Node):
    """``hdr.ipv4.dstAddr : lpm @name("dst");``."""
    expr: Expression
    match_kind: str
    annotations: list[Annotation] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class ActionRef(Node):
    """An action named in ``actions``, ``default_action`` or an entry, maybe with arguments."""
    name: str
    args: list[Argument] = field(default_factory=list)
    top_level: bool = False                     # written ``.name``
    annotations: list[Annotation] = field(default_factory=list)   # @defaultonly, @tableonly


@dataclass(kw_only=True, eq=False)
class DefaultAction(Node):
    action: ActionRef
    const: bool = False


@dataclass(kw_only=True, eq=False)
class TableEntry(Node):
    """``[priority = P :] keyset : action(args);`` — one keyset per table key (a tuple keyset is
    split), or a single ``DefaultKeyset`` / ``DontCare`` standing for every key."""
    keysets: list[Expression]
    action: ActionRef
    priority: Expression | None = None
    const: bool = False                         # ``const`` written on this entry
    annotations: list[Annotation] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class TableEntries(Node):
    entries: list[TableEntry]
    const: bool = False                         # ``const entries = {...}``


@dataclass(kw_only=True, eq=False)
class TableProperty(Node):
    """Any other table property, e.g. ``largest_priority_wins = true;``."""
    name: str
    value: Expression
    const: bool = False
    annotations: list[Annotation] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class TableDecl(Declaration):
    keys: list[KeyElement] = field(default_factory=list)      # empty: no ``key`` property
    actions: list[ActionRef] = field(default_factory=list)
    default_action: DefaultAction | None = None
    entries: TableEntries | None = None
    size: Expression | None = None
    implementation: Expression | None = None
    counters: Expression | None = None
    meters: Expression | None = None
    support_timeout: Expression | None = None
    other_properties: list[TableProperty] = field(default_factory=list)


# ---------------------------------------------------------------------------- program

@dataclass(kw_only=True, eq=False)
class Program(Node):
    declarations: list[Declaration]


# ---------------------------------------------------------------------------- traversal

def children(node: Node) -> Iterator[Node]:
    """The direct child nodes of ``node``, in field order."""
    for f in dataclasses.fields(node):
        if f.name in ("loc", "checked_type"):
            continue
        value = getattr(node, f.name)
        if isinstance(value, Node):
            yield value
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, Node):
                    yield item


def walk(node: Node) -> Iterator[Node]:
    """``node`` and every node below it, depth first, in source order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(list(children(current))))


def dump(node: Any) -> str:
    """A compact structural rendering without locations, for tests and debugging."""
    if isinstance(node, list):
        return "[" + ", ".join(dump(item) for item in node) + "]"
    if not isinstance(node, Node):
        return repr(node)
    parts = []
    for f in dataclasses.fields(node):
        if f.name in ("loc", "checked_type"):
            continue
        value = getattr(node, f.name)
        if value is None or value == [] or value == "" or (value is False and f.default is False) or (
                f.name == "text" and isinstance(node, IntLiteral)):
            continue
        parts.append(f"{f.name}={dump(value)}")
    return f"{type(node).__name__}({', '.join(parts)})"
