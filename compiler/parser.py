"""Recursive-descent parser for P4_16 (spec v1.2.x grammar appendix) producing ``ast.Program``.

Like p4c, it tells type names from other names by remembering every type declared so far
(headers, structs, typedefs, externs, parsers, controls, packages, enums) and the type
parameters in scope. That settles P4's classic ambiguities:

* ``T x;`` / ``T<U> x;`` / ``T[4] x;`` declare variables while ``x = ...;`` assigns;
* ``f<bit<8>>(x)`` is a generic call while ``a < b`` compares (type arguments are tried first
  and abandoned unless they parse and a ``(`` follows);
* ``(bit<8>) x`` and ``(T) x`` are casts while ``(E.A)`` is a parenthesised expression;
* ``bit<bit<8>>``'s ``>>`` closes two lists: the lexer never makes ``>>``; two adjacent ``>``
  are a shift inside expressions;
* ``a[7:0]`` is a slice, ``a[i]`` an index.

Constructs the rest of fabriclab does not implement (``for``, ``break``, ``continue``, ``{#}``,
``...``, ``[e +: w]``, ``list<T>``, object initialisers) raise ``unsupported: ...``.
"""
from __future__ import annotations

import copy
from typing import Callable, Mapping, Sequence, TypeVar

from fabriclab.compiler import ast
from fabriclab.compiler.diagnostics import CompileError, SourceLocation, unsupported
from fabriclab.compiler.lexer import EOF, IDENT, INT, STRING, Token
from fabriclab.compiler.preprocessor import preprocess, preprocess_text

T = TypeVar("T")

# Binary operators by precedence level, loosest first (spec grammar appendix, %left lines).
_BINARY_LEVELS: list[tuple[str, ...]] = [
    ("||",),
    ("&&",),
    ("==", "!="),
    ("<", ">", "<=", ">="),
    ("|",),
    ("^",),
    ("&",),
    ("<<", ">>"),
    ("++", "+", "-", "|+|", "|-|"),
    ("*", "/", "%"),
]
_PRECEDENCE = {op: level for level, ops in enumerate(_BINARY_LEVELS) for op in ops}

_COMPOUND_ASSIGNMENTS = {"+=": "+", "-=": "-", "*=": "*", "/=": "/", "%=": "%", "&=": "&",
                         "|=": "|", "^=": "^", "<<=": "<<", "|+|=": "|+|", "|-|=": "|-|"}

_BASE_TYPE_KEYWORDS = frozenset({"bit", "int", "varbit", "bool", "error", "string", "match_kind"})
# Tokens that may follow ')' when '(T)' is a cast rather than a parenthesised name.
_CAST_OPERAND_START = frozenset({IDENT, INT, STRING, "(", "{", "!", "~", "-", "+", "true", "false",
                                 "this", ".", "error"})


class Parser:
    def __init__(self, tokens: list[Token], type_names: set[str] | None = None):
        self.tokens = tokens
        self.pos = 0
        self.type_names: set[str] = type_names if type_names is not None else set()
        self.type_param_scopes: list[set[str]] = []

    # ------------------------------------------------------------------ token helpers

    def peek(self, ahead: int = 0) -> Token:
        index = self.pos + ahead
        return self.tokens[index] if index < len(self.tokens) else self.tokens[-1]

    def at(self, kind: str, ahead: int = 0) -> bool:
        return self.peek(ahead).kind == kind

    def at_word(self, word: str, ahead: int = 0) -> bool:
        """A contextual keyword: an identifier with this text."""
        token = self.peek(ahead)
        return token.kind == IDENT and token.text == word

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind != EOF:
            self.pos += 1
        return token

    def accept(self, kind: str) -> Token | None:
        if self.peek().kind == kind:
            return self.advance()
        return None

    def expect(self, kind: str, what: str | None = None) -> Token:
        token = self.peek()
        if token.kind != kind:
            raise self.error_here(what or f"'{kind}'")
        return self.advance()

    def expect_word(self, word: str) -> Token:
        if not self.at_word(word):
            raise self.error_here(f"'{word}'")
        return self.advance()

    def error_here(self, expected: str) -> CompileError:
        token = self.peek()
        return CompileError(f"expected {expected}, found {token.describe()}", token.loc)

    def name(self, what: str = "a name") -> Token:
        return self.expect(IDENT, what)

    def speculate(self, parse: Callable[[], T]) -> T | None:
        """Run ``parse``; on a syntax error rewind and return None.

        Only used for lookahead that declares nothing, so the position is all there is to restore.
        """
        saved_pos = self.pos
        try:
            return parse()
        except CompileError:
            self.pos = saved_pos
            return None

    def first_success(self, *alternatives: Callable[[], T]) -> T:
        """The result of the first alternative that parses; if none does, the error of the one
        that got furthest (it is the one closest to the programmer's intent)."""
        start = self.pos
        furthest: tuple[int, CompileError] | None = None
        for alternative in alternatives:
            try:
                return alternative()
            except CompileError as exc:
                if furthest is None or self.pos > furthest[0]:
                    furthest = (self.pos, exc)
                self.pos = start
        assert furthest is not None
        raise furthest[1]

    def is_type_name(self, name: str) -> bool:
        return name in self.type_names or any(name in scope for scope in self.type_param_scopes)

    def at_shift_right(self) -> bool:
        """Two adjacent '>' tokens."""
        return self.at(">") and self.at(">", 1) and not self.peek(1).space_before

    # ------------------------------------------------------------------ program

    def parse_program(self) -> ast.Program:
        # The program is where the main file starts (the first token is usually in core.p4).
        loc = SourceLocation(self.tokens[-1].loc.file, 1, 1)
        declarations: list[ast.Declaration] = []
        while not self.at(EOF):
            if self.accept(";"):
                continue
            declarations.append(self.top_level_declaration())
        return ast.Program(loc=loc, declarations=declarations)

    def top_level_declaration(self) -> ast.Declaration:
        annotations = self.annotations()
        token = self.peek()
        kind = token.kind
        if kind == "const":
            return self.const_declaration(annotations)
        if kind == "extern":
            return self.extern_declaration(annotations)
        if kind == "action":
            return self.action_declaration(annotations)
        if kind == "parser":
            return self.parser_declaration(annotations)
        if kind == "control":
            return self.control_declaration(annotations)
        if kind == "package":
            return self.package_declaration(annotations)
        if kind in ("header", "header_union", "struct"):
            return self.struct_like_declaration(annotations)
        if kind == "enum":
            return self.enum_declaration(annotations)
        if kind == "typedef" or (self.at_word("type") and not self.at("=", 1) and not self.at("(", 1)):
            return self.typedef_declaration(annotations)
        if kind == "error" and self.at("{", 1):
            return self.error_declaration(annotations)
        if kind == "match_kind" and self.at("{", 1):
            return self.match_kind_declaration(annotations)
        if kind == "value_set":
            return self.value_set_declaration(annotations)
        if kind == "table":
            raise CompileError("a table must be declared inside a control", token.loc)
        if self.at_type_start():
            return self.function_or_instantiation(annotations)
        raise self.error_here("a declaration")

    # ------------------------------------------------------------------ annotations

    def annotations(self) -> list[ast.Annotation]:
        result = []
        while self.at("@"):
            result.append(self.annotation())
        return result

    def annotation(self) -> ast.Annotation:
        at = self.advance()
        name_token = self.peek()
        # Reserved words are fine as annotation names (e.g. '@switch' in some programs).
        if not name_token.text.isidentifier():
            raise self.error_here("an annotation name")
        self.advance()
        annotation = ast.Annotation(loc=at.loc, name=name_token.text)
        if self.at("("):
            body = self.balanced_tokens("(", ")")
            annotation.has_body = True
            annotation.tokens = [t.text for t in body]
            # Unstructured bodies may hold any tokens (target-specific syntax); keep them raw.
            try:
                annotation.args = self._annotation_expressions(body)
            except CompileError:
                annotation.args = []
        elif self.at("["):
            body = self.balanced_tokens("[", "]")
            annotation.has_body = True
            annotation.tokens = [t.text for t in body]
            self.structured_annotation_body(annotation, body)
        elif name_token.text == "pragma":
            # '@pragma name args' (P4_14 style, still accepted by p4c) runs to the end of the line.
            while self.peek().kind != EOF and self.peek().loc.line == at.loc.line \
                    and self.peek().loc.file == at.loc.file:
                annotation.tokens.append(self.advance().text)
        return annotation

    def balanced_tokens(self, open_kind: str, close_kind: str) -> list[Token]:
        """The tokens between a bracket pair (exclusive), nested pairs included."""
        opening = self.expect(open_kind)
        depth = 1
        start = self.pos
        while True:
            token = self.peek()
            if token.kind == EOF:
                raise CompileError(f"unbalanced '{open_kind}'", opening.loc)
            if token.kind == open_kind:
                depth += 1
            elif token.kind == close_kind:
                depth -= 1
                if depth == 0:
                    body = self.tokens[start:self.pos]
                    self.advance()
                    return body
            self.advance()

    def sub_parser(self, body: list[Token]) -> Parser:
        end = Token(EOF, "", body[-1].loc if body else self.peek().loc)
        sub = Parser(body + [end], self.type_names)
        sub.type_param_scopes = self.type_param_scopes
        return sub

    def _annotation_expressions(self, body: list[Token]) -> list[ast.Expression]:
        sub = self.sub_parser(body)
        values = sub.expression_list(EOF)
        sub.expect(EOF, "end of annotation")
        return values

    def structured_annotation_body(self, annotation: ast.Annotation, body: list[Token]) -> None:
        sub = self.sub_parser(body)
        if sub.at(IDENT) and sub.at("=", 1):
            while not sub.at(EOF):
                key = sub.name()
                sub.expect("=")
                annotation.named_args.append(
                    ast.NamedExpression(loc=key.loc, name=key.text, value=sub.expression()))
                if not sub.accept(","):
                    break
        else:
            annotation.args = sub.expression_list(EOF)
        sub.expect(EOF, "']'")

    # ------------------------------------------------------------------ types

    def at_type_start(self, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return (token.kind in _BASE_TYPE_KEYWORDS or token.kind in ("tuple", "void", "_", IDENT)
                or (token.kind == "." and self.peek(ahead + 1).kind == IDENT))

    def type_ref(self, allow_void: bool = False, allow_dont_care: bool = False) -> ast.TypeRef:
        token = self.peek()
        loc = token.loc
        kind = token.kind
        if kind in ("bit", "int", "varbit"):
            self.advance()
            if not self.at("<"):
                if kind == "bit":
                    return ast.BitType(loc=loc, width=ast.IntLiteral(loc=loc, value=1, text="1"))
                if kind == "int":
                    return ast.IntegerType(loc=loc)
                raise self.error_here("'<'")
            self.advance()
            if self.at("("):
                self.advance()
                width = self.expression()
                self.expect(")")
            else:
                width_token = self.expect(INT, "a width")
                value, _, _ = width_token.value
                width = ast.IntLiteral(loc=width_token.loc, value=value, text=width_token.text)
            self.expect(">")
            if kind == "bit":
                result: ast.TypeRef = ast.BitType(loc=loc, width=width)
            elif kind == "int":
                result = ast.IntType(loc=loc, width=width)
            else:
                result = ast.VarbitType(loc=loc, max_width=width)
            return self.maybe_stack(result)
        simple = {"bool": ast.BoolType, "error": ast.ErrorType, "string": ast.StringType,
                  "match_kind": ast.MatchKindType}
        if kind in simple:
            self.advance()
            return self.maybe_stack(simple[kind](loc=loc))
        if kind == "void":
            if not allow_void:
                raise CompileError("'void' is not allowed here", loc)
            self.advance()
            return ast.VoidType(loc=loc)
        if kind == "_":
            if not allow_dont_care:
                raise CompileError("'_' is not allowed here", loc)
            self.advance()
            return ast.DontCareType(loc=loc)
        if kind == "tuple":
            self.advance()
            return self.maybe_stack(ast.TupleType(loc=loc, elements=self.type_arguments()))
        if self.at_word("list") and self.at("<", 1):
            raise unsupported("list<T> types", loc)
        top_level = bool(self.accept("."))
        name = self.name("a type")
        named = ast.NamedType(loc=loc, name=name.text, top_level=top_level)
        if self.at("<"):
            named.type_args = self.type_arguments()
        return self.maybe_stack(named)

    def maybe_stack(self, element: ast.TypeRef) -> ast.TypeRef:
        """``T[N]``: a header stack of ``element``."""
        if not self.at("["):
            return element
        self.advance()
        size = self.expression()
        self.expect("]")
        return ast.HeaderStackType(loc=element.loc, element=element, size=size)

    def type_arguments(self) -> list[ast.TypeRef]:
        self.expect("<")
        args = []
        if not self.at(">"):
            args.append(self.type_ref(allow_void=True, allow_dont_care=True))
            while self.accept(","):
                args.append(self.type_ref(allow_void=True, allow_dont_care=True))
        self.expect(">", "',' or '>'")
        return args

    def type_parameters(self) -> list[str]:
        """``<A, B>`` after a declared name; the names are pushed as a new scope by the caller."""
        if not self.at("<"):
            return []
        self.advance()
        names = [self.name("a type parameter").text]
        while self.accept(","):
            names.append(self.name("a type parameter").text)
        self.expect(">", "',' or '>'")
        return names

    # ------------------------------------------------------------------ parameters and arguments

    def parameters(self) -> list[ast.Parameter]:
        self.expect("(")
        params = []
        if not self.at(")"):
            params.append(self.parameter())
            while self.accept(","):
                params.append(self.parameter())
        self.expect(")", "',' or ')'")
        return params

    def parameter(self) -> ast.Parameter:
        annotations = self.annotations()
        loc = self.peek().loc
        direction = ""
        if self.peek().kind in ("in", "out", "inout"):
            direction = self.advance().kind
        param_type = self.type_ref()
        name = self.name("a parameter name")
        default = self.expression() if self.accept("=") else None
        return ast.Parameter(loc=loc, name=name.text, type=param_type, direction=direction,
                             default=default, annotations=annotations)

    def arguments(self) -> list[ast.Argument]:
        self.expect("(")
        args = []
        if not self.at(")"):
            args.append(self.argument())
            while self.accept(","):
                args.append(self.argument())
        self.expect(")", "',' or ')'")
        return args

    def argument(self) -> ast.Argument:
        loc = self.peek().loc
        name = None
        if self.at(IDENT) and self.at("=", 1):
            name = self.advance().text
            self.advance()
        if self.at("_") and (self.at(",", 1) or self.at(")", 1)):
            return ast.Argument(loc=loc, value=ast.DontCare(loc=self.advance().loc), name=name)
        return ast.Argument(loc=loc, value=self.expression(), name=name)

    # ------------------------------------------------------------------ type declarations

    def declare_type(self, name: str) -> None:
        self.type_names.add(name)

    def struct_like_declaration(self, annotations: list[ast.Annotation]) -> ast.Declaration:
        keyword = self.advance()
        name = self.name()
        self.declare_type(name.text)
        type_params = self.type_parameters()
        self.type_param_scopes.append(set(type_params))
        try:
            self.expect("{")
            fields = []
            while not self.accept("}"):
                field_annotations = self.annotations()
                field_loc = self.peek().loc
                field_type = self.type_ref()
                field_name = self.name("a field name")
                self.expect(";")
                fields.append(ast.StructField(loc=field_loc, name=field_name.text, type=field_type,
                                              annotations=field_annotations))
        finally:
            self.type_param_scopes.pop()
        node_class = {"header": ast.HeaderDecl, "header_union": ast.HeaderUnionDecl,
                      "struct": ast.StructDecl}[keyword.kind]
        return node_class(loc=keyword.loc, name=name.text, annotations=annotations, fields=fields,
                          type_params=type_params)

    def enum_declaration(self, annotations: list[ast.Annotation]) -> ast.EnumDecl:
        keyword = self.advance()
        underlying = None
        if not (self.at(IDENT) and self.at("{", 1)):
            underlying = self.type_ref()
        name = self.name("an enum name")
        self.declare_type(name.text)
        self.expect("{")
        members = []
        while True:
            member = self.name("an enum member")
            value = None
            if underlying is not None:
                self.expect("=")
                value = self.expression()
            members.append(ast.EnumMember(loc=member.loc, name=member.text, value=value))
            if not self.accept(","):
                break
            if self.at("}"):
                break
        self.expect("}", "',' or '}'")
        return ast.EnumDecl(loc=keyword.loc, name=name.text, annotations=annotations, members=members,
                            underlying_type=underlying)

    def identifier_list_declaration(self) -> tuple[Token, list[ast.Identifier]]:
        keyword = self.advance()
        self.expect("{")
        members = []
        while not self.at("}"):
            member = self.name()
            members.append(ast.Identifier(loc=member.loc, name=member.text))
            if not self.accept(","):
                break
        self.expect("}", "',' or '}'")
        return keyword, members

    def error_declaration(self, annotations: list[ast.Annotation]) -> ast.ErrorDecl:
        keyword, members = self.identifier_list_declaration()
        return ast.ErrorDecl(loc=keyword.loc, name="error", annotations=annotations, members=members)

    def match_kind_declaration(self, annotations: list[ast.Annotation]) -> ast.MatchKindDecl:
        keyword, members = self.identifier_list_declaration()
        return ast.MatchKindDecl(loc=keyword.loc, name="match_kind", annotations=annotations, members=members)

    def typedef_declaration(self, annotations: list[ast.Annotation]) -> ast.Declaration:
        keyword = self.advance()
        if self.peek().kind in ("header", "header_union", "struct", "enum"):
            raise unsupported("typedef of an inline type declaration", self.peek().loc)
        aliased = self.type_ref()
        name = self.name("a type name")
        self.expect(";")
        self.declare_type(name.text)
        if keyword.kind == "typedef":
            return ast.TypedefDecl(loc=keyword.loc, name=name.text, annotations=annotations, type=aliased)
        return ast.NewTypeDecl(loc=keyword.loc, name=name.text, annotations=annotations, type=aliased)

    # ------------------------------------------------------------------ constants, variables, instances

    def const_declaration(self, annotations: list[ast.Annotation]) -> ast.ConstDecl:
        keyword = self.expect("const")
        const_type = self.type_ref()
        name = self.name("a constant name")
        self.expect("=")
        value = self.expression()
        self.expect(";")
        return ast.ConstDecl(loc=keyword.loc, name=name.text, annotations=annotations, type=const_type,
                             value=value)

    def value_set_declaration(self, annotations: list[ast.Annotation]) -> ast.ValueSetDecl:
        keyword = self.expect("value_set")
        self.expect("<")
        element_type = self.type_ref()
        self.expect(">")
        self.expect("(")
        size = self.expression()
        self.expect(")")
        name = self.name()
        self.expect(";")
        return ast.ValueSetDecl(loc=keyword.loc, name=name.text, annotations=annotations,
                                element_type=element_type, size=size)

    def variable_or_instantiation(self, annotations: list[ast.Annotation],
                                  allow_instantiation: bool) -> ast.Declaration:
        """``T x;``, ``T x = e;`` or (where allowed) ``T(args) x;``."""
        loc = self.peek().loc
        decl_type = self.type_ref()
        if self.at("("):
            if not allow_instantiation:
                raise CompileError("instantiations are not allowed here", loc)
            return self.instantiation_rest(annotations, loc, decl_type)
        name = self.name("a variable name")
        init = self.expression() if self.accept("=") else None
        self.expect(";", "';'" if init is not None else "'=' or ';'")
        return ast.VariableDecl(loc=loc, name=name.text, annotations=annotations, type=decl_type, init=init)

    def instantiation_rest(self, annotations: list[ast.Annotation], loc: SourceLocation,
                           instance_type: ast.TypeRef) -> ast.Instantiation:
        args = self.arguments()
        name = self.name("an instance name")
        if self.at("="):
            raise unsupported("instantiation with an object initializer", self.peek().loc)
        self.expect(";")
        return ast.Instantiation(loc=loc, name=name.text, annotations=annotations, type=instance_type, args=args)

    def at_function_start(self) -> bool:
        """Whether a function declaration ``T name(...`` or ``T name<...`` starts here."""
        saved = self.pos
        try:
            self.type_ref(allow_void=True)
            return self.at(IDENT) and self.peek(1).kind in ("(", "<")
        except CompileError:
            return False
        finally:
            self.pos = saved

    def function_or_instantiation(self, annotations: list[ast.Annotation]) -> ast.Declaration:
        """At top level: ``T(args) name;`` or a function ``T name<..>(params) {...}``."""
        loc = self.peek().loc
        return_type = self.type_ref(allow_void=True)
        if self.at("("):
            return self.instantiation_rest(annotations, loc, return_type)
        name = self.name("a name")
        type_params = self.type_parameters()
        if not self.at("("):
            raise self.error_here("'(' (variables cannot be declared at top level)")
        self.type_param_scopes.append(set(type_params))
        try:
            params = self.parameters()
            body = self.block()
        finally:
            self.type_param_scopes.pop()
        return ast.FunctionDecl(loc=loc, name=name.text, annotations=annotations, return_type=return_type,
                                params=params, body=body, type_params=type_params)

    # ------------------------------------------------------------------ externs and packages

    def extern_declaration(self, annotations: list[ast.Annotation]) -> ast.Declaration:
        keyword = self.expect("extern")
        annotations = annotations + self.annotations()

        def object_header() -> tuple[Token, list[str]]:
            name = self.name()
            params = self.type_parameters()
            if not self.at("{"):
                raise self.error_here("'{'")
            return name, params

        header = self.speculate(object_header)
        if header is None:
            return self.extern_function(keyword, annotations)
        name, type_params = header
        self.declare_type(name.text)
        self.type_param_scopes.append(set(type_params))
        methods: list[ast.MethodPrototype] = []
        constructors: list[ast.ConstructorPrototype] = []
        try:
            self.expect("{")
            while not self.accept("}"):
                member_annotations = self.annotations()
                loc = self.peek().loc
                if self.at_word(name.text) and self.at("(", 1):
                    self.advance()
                    params = self.parameters()
                    self.expect(";")
                    constructors.append(ast.ConstructorPrototype(loc=loc, params=params,
                                                                 annotations=member_annotations))
                    continue
                abstract = bool(self.accept("abstract"))
                methods.append(self.method_prototype(member_annotations, abstract))
        finally:
            self.type_param_scopes.pop()
        return ast.ExternDecl(loc=keyword.loc, name=name.text, annotations=annotations, methods=methods,
                              constructors=constructors, type_params=type_params)

    def method_prototype(self, annotations: list[ast.Annotation], abstract: bool) -> ast.MethodPrototype:
        loc = self.peek().loc
        return_type = self.type_ref(allow_void=True)
        name = self.name("a method name")
        type_params = self.type_parameters()
        self.type_param_scopes.append(set(type_params))
        try:
            params = self.parameters()
        finally:
            self.type_param_scopes.pop()
        self.expect(";")
        return ast.MethodPrototype(loc=loc, name=name.text, return_type=return_type, params=params,
                                   type_params=type_params, abstract=abstract, annotations=annotations)

    def extern_function(self, keyword: Token, annotations: list[ast.Annotation]) -> ast.ExternFunctionDecl:
        prototype = self.method_prototype([], abstract=False)
        return ast.ExternFunctionDecl(loc=keyword.loc, name=prototype.name, annotations=annotations,
                                      return_type=prototype.return_type, params=prototype.params,
                                      type_params=prototype.type_params)

    def package_declaration(self, annotations: list[ast.Annotation]) -> ast.PackageTypeDecl:
        keyword = self.expect("package")
        name = self.name("a package name")
        self.declare_type(name.text)
        type_params = self.type_parameters()
        self.type_param_scopes.append(set(type_params))
        try:
            params = self.parameters()
        finally:
            self.type_param_scopes.pop()
        self.expect(";")
        return ast.PackageTypeDecl(loc=keyword.loc, name=name.text, annotations=annotations, params=params,
                                   type_params=type_params)

    # ------------------------------------------------------------------ parsers

    def parser_declaration(self, annotations: list[ast.Annotation]) -> ast.Declaration:
        keyword = self.expect("parser")
        name = self.name("a parser name")
        self.declare_type(name.text)
        type_params = self.type_parameters()
        self.type_param_scopes.append(set(type_params))
        try:
            params = self.parameters()
            if self.accept(";"):
                return ast.ParserTypeDecl(loc=keyword.loc, name=name.text, annotations=annotations,
                                          params=params, type_params=type_params)
            constructor_params = self.parameters() if self.at("(") else []
            self.expect("{", "'{' or ';'")
            locals_: list[ast.Declaration] = []
            states: list[ast.ParserState] = []
            while not self.accept("}"):
                if self.accept(";"):
                    continue
                member_annotations = self.annotations()
                if self.at_word("state") and self.at(IDENT, 1):
                    states.append(self.parser_state(member_annotations))
                elif states:
                    raise self.error_here("'state' or '}'")
                elif self.at("const"):
                    locals_.append(self.const_declaration(member_annotations))
                elif self.at("value_set"):
                    locals_.append(self.value_set_declaration(member_annotations))
                elif self.at_type_start():
                    locals_.append(self.variable_or_instantiation(member_annotations, allow_instantiation=True))
                else:
                    raise self.error_here("a parser state or declaration")
        finally:
            self.type_param_scopes.pop()
        if not states:
            raise CompileError(f"parser '{name.text}' has no states", name.loc)
        return ast.ParserDecl(loc=keyword.loc, name=name.text, annotations=annotations, params=params,
                              constructor_params=constructor_params, type_params=type_params,
                              locals=locals_, states=states)

    def parser_state(self, annotations: list[ast.Annotation]) -> ast.ParserState:
        keyword = self.expect_word("state")
        name = self.name("a state name")
        self.expect("{")
        statements: list[ast.Node] = []
        transition = None
        while not self.accept("}"):
            if self.at("transition"):
                transition = self.transition()
                if not self.at("}"):
                    raise self.error_here("'}' after the transition")
                continue
            statements.append(self.statement(in_parser=True))
        return ast.ParserState(loc=keyword.loc, name=name.text, annotations=annotations,
                               statements=statements, transition=transition)

    def transition(self) -> ast.Transition:
        keyword = self.expect("transition")
        if self.at("select"):
            return ast.Transition(loc=keyword.loc, select=self.select_expression())
        state = self.name("a state name or 'select'")
        self.expect(";")
        return ast.Transition(loc=keyword.loc, state=state.text)

    def select_expression(self) -> ast.SelectExpression:
        keyword = self.expect("select")
        self.expect("(")
        exprs = self.expression_list(")")
        self.expect(")", "',' or ')'")
        self.expect("{")
        cases = []
        while not self.accept("}"):
            loc = self.peek().loc
            keysets = self.keyset_expression()
            self.expect(":")
            state = self.name("a state name")
            self.expect(";")
            cases.append(ast.SelectCase(loc=loc, keysets=keysets, state=state.text))
        return ast.SelectExpression(loc=keyword.loc, exprs=exprs, cases=cases)

    def keyset_expression(self) -> list[ast.Expression]:
        """A tuple keyset ``(a, b &&& m, _)`` as its elements, or one simple keyset."""
        if self.at("("):
            def tuple_keyset() -> list[ast.Expression]:
                self.advance()
                elements = [self.simple_keyset()]
                while self.accept(","):
                    elements.append(self.simple_keyset())
                self.expect(")")
                if not self.at(":"):
                    # '(a) + 1 : s' is an expression that happens to start with '('.
                    raise self.error_here("':'")
                return elements

            return self.first_success(tuple_keyset, lambda: [self.simple_keyset()])
        return [self.simple_keyset()]

    def simple_keyset(self) -> ast.Expression:
        token = self.peek()
        if token.kind == "default":
            self.advance()
            return ast.DefaultKeyset(loc=token.loc)
        if token.kind == "_":
            self.advance()
            return ast.DontCare(loc=token.loc)
        value = self.expression()
        if self.accept("&&&"):
            return ast.Mask(loc=value.loc, value=value, mask=self.expression())
        if self.accept(".."):
            return ast.Range(loc=value.loc, lo=value, hi=self.expression())
        return value

    # ------------------------------------------------------------------ controls, actions, tables

    def control_declaration(self, annotations: list[ast.Annotation]) -> ast.Declaration:
        keyword = self.expect("control")
        name = self.name("a control name")
        self.declare_type(name.text)
        type_params = self.type_parameters()
        self.type_param_scopes.append(set(type_params))
        try:
            params = self.parameters()
            if self.accept(";"):
                return ast.ControlTypeDecl(loc=keyword.loc, name=name.text, annotations=annotations,
                                           params=params, type_params=type_params)
            constructor_params = self.parameters() if self.at("(") else []
            self.expect("{", "'{' or ';'")
            locals_: list[ast.Declaration] = []
            while not (self.at_word("apply") and self.at("{", 1)):
                if self.accept(";"):
                    continue
                if self.at("}"):
                    raise CompileError(f"control '{name.text}' has no apply block", self.peek().loc)
                member_annotations = self.annotations()
                if self.at("const"):
                    locals_.append(self.const_declaration(member_annotations))
                elif self.at("action"):
                    locals_.append(self.action_declaration(member_annotations))
                elif self.at("table"):
                    locals_.append(self.table_declaration(member_annotations))
                elif (self.at_type_start() or self.at("void")) and self.at_function_start():
                    locals_.append(self.function_or_instantiation(member_annotations))
                elif self.at_type_start() and not self.at("_"):
                    locals_.append(self.variable_or_instantiation(member_annotations, allow_instantiation=True))
                else:
                    raise self.error_here("a declaration or 'apply'")
            self.advance()
            apply_block = self.block()
            self.expect("}")
        finally:
            self.type_param_scopes.pop()
        return ast.ControlDecl(loc=keyword.loc, name=name.text, annotations=annotations, params=params,
                               constructor_params=constructor_params, type_params=type_params,
                               locals=locals_, apply=apply_block)

    def action_declaration(self, annotations: list[ast.Annotation]) -> ast.ActionDecl:
        keyword = self.expect("action")
        name = self.name("an action name")
        params = self.parameters()
        body = self.block()
        return ast.ActionDecl(loc=keyword.loc, name=name.text, annotations=annotations, params=params, body=body)

    def table_declaration(self, annotations: list[ast.Annotation]) -> ast.TableDecl:
        keyword = self.expect("table")
        name = self.name("a table name")
        table = ast.TableDecl(loc=keyword.loc, name=name.text, annotations=annotations)
        self.expect("{")
        seen: set[str] = set()
        while not self.accept("}"):
            property_annotations = self.annotations()
            const = bool(self.accept("const"))
            prop = self.name("a table property")
            if prop.text in seen:
                raise CompileError(f"duplicate table property '{prop.text}'", prop.loc)
            seen.add(prop.text)
            self.expect("=")
            if prop.text == "key":
                table.keys = self.key_elements()
            elif prop.text == "actions":
                table.actions = self.action_list()
            elif prop.text == "entries":
                table.entries = ast.TableEntries(loc=prop.loc, entries=self.entry_list(), const=const)
            elif prop.text == "default_action":
                action = self.action_ref()
                self.expect(";")
                table.default_action = ast.DefaultAction(loc=prop.loc, action=action, const=const)
            else:
                value = self.expression()
                self.expect(";")
                if prop.text in ("size", "implementation", "counters", "meters", "support_timeout"):
                    setattr(table, prop.text, value)
                else:
                    table.other_properties.append(ast.TableProperty(
                        loc=prop.loc, name=prop.text, value=value, const=const, annotations=property_annotations))
        return table

    def key_elements(self) -> list[ast.KeyElement]:
        self.expect("{")
        keys = []
        while not self.accept("}"):
            expr = self.expression()
            self.expect(":")
            match_kind = self.name("a match kind")
            key_annotations = self.annotations()
            self.expect(";")
            keys.append(ast.KeyElement(loc=expr.loc, expr=expr, match_kind=match_kind.text,
                                       annotations=key_annotations))
        return keys

    def action_list(self) -> list[ast.ActionRef]:
        self.expect("{")
        actions = []
        while not self.accept("}"):
            action_annotations = self.annotations()
            ref = self.action_ref()
            ref.annotations = action_annotations
            self.expect(";")
            actions.append(ref)
        return actions

    def action_ref(self) -> ast.ActionRef:
        loc = self.peek().loc
        top_level = bool(self.accept("."))
        name = self.name("an action name")
        args = self.arguments() if self.at("(") else []
        return ast.ActionRef(loc=loc, name=name.text, args=args, top_level=top_level)

    def entry_list(self) -> list[ast.TableEntry]:
        self.expect("{")
        entries = []
        while not self.accept("}"):
            loc = self.peek().loc
            const = bool(self.accept("const"))
            priority = None
            if self.at_word("priority") and self.at("=", 1):
                self.advance()
                self.advance()
                if self.at("("):
                    self.advance()
                    priority = self.expression()
                    self.expect(")")
                else:
                    token = self.expect(INT, "an integer priority")
                    value, width, signed = token.value
                    priority = ast.IntLiteral(loc=token.loc, value=value, width=width, signed=signed,
                                              text=token.text)
                self.expect(":")
            keysets = self.keyset_expression()
            self.expect(":")
            action = self.action_ref()
            entry_annotations = self.annotations()
            self.expect(";")
            entries.append(ast.TableEntry(loc=loc, keysets=keysets, action=action, priority=priority,
                                          const=const, annotations=entry_annotations))
        return entries

    # ------------------------------------------------------------------ statements

    def block(self, annotations: list[ast.Annotation] | None = None, in_parser: bool = False) -> ast.BlockStatement:
        opening = self.expect("{")
        statements: list[ast.Node] = []
        while not self.accept("}"):
            if self.at(EOF):
                raise CompileError("'{' is never closed", opening.loc)
            statements.append(self.statement(in_parser))
        return ast.BlockStatement(loc=opening.loc, statements=statements, annotations=annotations or [])

    def statement(self, in_parser: bool = False) -> ast.Node:
        annotations = self.annotations()
        token = self.peek()
        kind = token.kind
        loc = token.loc
        if kind == "{":
            return self.block(annotations, in_parser)
        if kind == ";":
            self.advance()
            return ast.EmptyStatement(loc=loc)
        if kind == "if":
            self.advance()
            self.expect("(")
            cond = self.expression()
            self.expect(")")
            then = self.statement(in_parser)
            otherwise = self.statement(in_parser) if self.accept("else") else None
            return ast.IfStatement(loc=loc, cond=cond, then=then, otherwise=otherwise)
        if kind == "const":
            return self.const_declaration(annotations)
        if kind in ("switch", "return", "exit") and in_parser:
            raise CompileError(f"'{kind}' is not allowed in a parser state", loc)
        if kind == "transition":
            raise CompileError("'transition' must be the last statement of a parser state", loc)
        if kind == "switch":
            return self.switch_statement()
        if kind == "return":
            self.advance()
            value = None if self.at(";") else self.expression()
            self.expect(";")
            return ast.ReturnStatement(loc=loc, value=value)
        if kind == "exit":
            self.advance()
            self.expect(";")
            return ast.ExitStatement(loc=loc)
        if kind in ("for", "break", "continue") and in_parser:
            raise CompileError(f"'{kind}' is not allowed in a parser state", loc)
        if kind == "for":
            return self.for_statement()
        if kind in ("break", "continue"):
            self.advance()
            self.expect(";")
            return ast.BreakStatement(loc=loc) if kind == "break" else ast.ContinueStatement(loc=loc)
        if self.at_declaration_start():
            return self.variable_or_instantiation(annotations, allow_instantiation=False)
        return self.expression_statement()

    def for_statement(self) -> ast.Statement:
        loc = self.expect("for").loc
        self.expect("(")
        in_form = self.speculate(self.for_in_head)
        if in_form is not None:
            var, collection = in_form
            self.expect(")")
            return ast.ForInStatement(loc=loc, var=var, collection=collection, body=self.statement())
        init = [] if self.at(";") else self.for_clauses(";")
        self.expect(";")
        cond = None if self.at(";") else self.expression()
        self.expect(";")
        update = [] if self.at(")") else self.for_clauses(")")
        self.expect(")")
        return ast.ForStatement(loc=loc, init=init, cond=cond, update=update, body=self.statement())

    def for_in_head(self) -> tuple[ast.VariableDecl, ast.Expression]:
        """``T x in collection`` or ``x in collection`` (x declared before)."""
        loc = self.peek().loc
        decl_type = self.type_ref() if not (self.at(IDENT) and self.at("in", 1)) else None
        name = self.name("a loop variable")
        self.expect("in")
        collection = self.expression()
        if self.accept(".."):
            collection = ast.Range(loc=collection.loc, lo=collection, hi=self.expression())
        return ast.VariableDecl(loc=loc, name=name.text, type=decl_type), collection

    def for_clauses(self, end: str) -> list[ast.Node]:
        """The comma-separated declarations, assignments and calls of a for's init or update."""
        clauses = []
        while True:
            loc = self.peek().loc
            if self.at_declaration_start():
                decl_type = self.type_ref()
                name = self.name("a variable name")
                self.expect("=")
                clauses.append(ast.VariableDecl(loc=loc, name=name.text, type=decl_type, init=self.expression()))
            else:
                target = self.expression()
                if self.accept("="):
                    clauses.append(ast.AssignmentStatement(loc=loc, target=target, value=self.expression()))
                elif isinstance(target, ast.MethodCall):
                    clauses.append(ast.MethodCallStatement(loc=loc, call=target))
                else:
                    raise self.error_here("'=' or a call")
            if not self.accept(","):
                return clauses

    def at_declaration_start(self) -> bool:
        """Whether a statement starts with a type (a local variable) rather than an expression."""
        token = self.peek()
        if token.kind in ("bit", "int", "varbit", "bool", "string", "tuple", "match_kind"):
            return True
        if token.kind == "error":
            return not self.at(".", 1)
        if token.kind == "." and self.at(IDENT, 1):
            return self.is_type_name(self.peek(1).text) and self.at(IDENT, 2)
        if token.kind != IDENT:
            return False
        following = self.peek(1).kind
        if following == IDENT:
            return True                     # 'T x': even an unknown T is a type here
        if self.is_type_name(token.text):
            return following in ("<", "[")
        return False

    def expression_statement(self) -> ast.Statement:
        loc = self.peek().loc
        target = self.expression()
        token = self.peek()
        if token.kind == "=":
            self.advance()
            value = self.expression()
            self.expect(";")
            return ast.AssignmentStatement(loc=loc, target=target, value=value)
        op = _COMPOUND_ASSIGNMENTS.get(token.kind)
        if op is None and token.kind == ">" and self.at(">=", 1) and not self.peek(1).space_before:
            op = ">>"
            self.advance()
        if op is not None:
            self.advance()
            value = self.expression()
            self.expect(";")
            # 'a op= b' is 'a = a op b' (spec 8.x, compound assignment); the target is copied so
            # every node has a single parent.
            combined = ast.Binary(loc=value.loc, op=op, left=copy.deepcopy(target), right=value)
            return ast.AssignmentStatement(loc=loc, target=target, value=combined)
        if isinstance(target, ast.MethodCall):
            self.expect(";")
            return ast.MethodCallStatement(loc=loc, call=target)
        if token.kind == ";":
            raise CompileError("expression is not a statement (expected an assignment or a call)", loc)
        raise self.error_here("'=', '(' or ';'")

    def switch_statement(self) -> ast.SwitchStatement:
        keyword = self.expect("switch")
        self.expect("(")
        expr = self.expression()
        self.expect(")")
        self.expect("{")
        cases = []
        while not self.accept("}"):
            loc = self.peek().loc
            if self.at("default"):
                label: ast.Expression = ast.DefaultKeyset(loc=self.advance().loc)
            else:
                label = self.expression()
            self.expect(":")
            body = self.block() if self.at("{") else None
            cases.append(ast.SwitchCase(loc=loc, label=label, body=body))
        return ast.SwitchStatement(loc=keyword.loc, expr=expr, cases=cases)

    # ------------------------------------------------------------------ expressions

    def expression_list(self, closing: str) -> list[ast.Expression]:
        values: list[ast.Expression] = []
        if self.at(closing):
            return values
        values.append(self.expression())
        while self.accept(","):
            if self.at(closing):
                break                       # trailing comma
            values.append(self.expression())
        return values

    def expression(self) -> ast.Expression:
        cond = self.binary(0)
        if self.at("?"):
            self.advance()
            then = self.expression()
            self.expect(":")
            otherwise = self.expression()
            return ast.Ternary(loc=cond.loc, cond=cond, then=then, otherwise=otherwise)
        return cond

    def binary_operator(self) -> str | None:
        kind = self.peek().kind
        if kind == "+" and self.at(":", 1):
            return None                     # 'e[i +: w]', rejected by postfix()
        if kind == ">":
            if self.at_shift_right():
                return ">>"
            if self.at(">=", 1) and not self.peek(1).space_before:
                return None                 # '>>=' ends the expression
        return kind if kind in _PRECEDENCE else None

    def binary(self, min_level: int) -> ast.Expression:
        left = self.unary()
        while True:
            op = self.binary_operator()
            if op is None:
                return left
            level = _PRECEDENCE[op]
            if level < min_level:
                return left
            self.advance()
            if op == ">>":
                self.advance()
            right = self.binary(level + 1)
            left = ast.Binary(loc=left.loc, op=op, left=left, right=right)

    def unary(self) -> ast.Expression:
        token = self.peek()
        if token.kind in ("!", "~", "-", "+"):
            self.advance()
            return ast.Unary(loc=token.loc, op=token.kind, operand=self.unary())
        if token.kind == "(":
            def cast() -> ast.Expression:
                target_type = self.cast_prefix()
                operand = self.unary()
                if isinstance(operand, ast.StructInitializer) and isinstance(target_type, ast.NamedType):
                    operand.type_name = target_type      # '(T){ f = e }' types the initialiser
                    operand.loc = token.loc
                    return operand
                return ast.Cast(loc=token.loc, target_type=target_type, expr=operand)
            return self.first_success(cast, lambda: self.postfix(self.primary()))
        return self.postfix(self.primary())

    def cast_prefix(self) -> ast.TypeRef:
        """``(T)`` when it is a cast; raises (to be rewound) otherwise."""
        self.expect("(")
        first = self.peek()
        if first.kind == "error" and self.at(".", 1):
            raise self.error_here("a type")
        if first.kind == IDENT and not self.is_type_name(first.text):
            raise self.error_here("a type")
        if first.kind == "." and not (self.at(IDENT, 1) and self.is_type_name(self.peek(1).text)):
            raise self.error_here("a type")
        target = self.type_ref()
        self.expect(")")
        if self.peek().kind not in _CAST_OPERAND_START:
            raise self.error_here("an expression to cast")
        return target

    def primary(self) -> ast.Expression:
        token = self.peek()
        kind = token.kind
        loc = token.loc
        if kind == INT:
            self.advance()
            value, width, signed = token.value
            return ast.IntLiteral(loc=loc, value=value, width=width, signed=signed, text=token.text)
        if kind == STRING:
            self.advance()
            return ast.StringLiteral(loc=loc, value=token.value)
        if kind in ("true", "false"):
            self.advance()
            return ast.BoolLiteral(loc=loc, value=kind == "true")
        if kind == "this":
            self.advance()
            return ast.This(loc=loc)
        if kind == "_":
            self.advance()
            return ast.DontCare(loc=loc)
        if kind == IDENT:
            self.advance()
            return ast.Name(loc=loc, name=token.text)
        if kind in ("error", "match_kind") or kind in ("bool", "string") and self.at(".", 1):
            self.advance()
            return ast.Name(loc=loc, name=kind)
        if kind == "." and self.at(IDENT, 1):
            self.advance()
            return ast.Name(loc=loc, name=self.advance().text, top_level=True)
        if kind == "(":
            self.advance()
            inner = self.expression()
            self.expect(")")
            return inner
        if kind == "{":
            return self.brace_expression()
        if kind == "{#}":
            raise unsupported("invalid header expression '{#}'", loc)
        if kind == "...":
            raise unsupported("'...' expressions", loc)
        raise self.error_here("an expression")

    def brace_expression(self) -> ast.Expression:
        opening = self.expect("{")
        if self.at(IDENT) and self.at("=", 1):
            fields = []
            while not self.at("}"):
                name = self.name("a field name")
                self.expect("=")
                if self.at("..."):
                    raise unsupported("'...' in struct initializers", self.peek().loc)
                fields.append(ast.NamedExpression(loc=name.loc, name=name.text, value=self.expression()))
                if not self.accept(","):
                    break
            self.expect("}", "',' or '}'")
            return ast.StructInitializer(loc=opening.loc, fields=fields)
        elements = self.expression_list("}")
        self.expect("}", "',' or '}'")
        return ast.ListExpression(loc=opening.loc, elements=elements)

    def postfix(self, expr: ast.Expression) -> ast.Expression:
        while True:
            token = self.peek()
            kind = token.kind
            if kind == ".":
                self.advance()
                member = self.name("a member name")
                expr = ast.Member(loc=expr.loc, expr=expr, member=member.text)
            elif kind == "[":
                self.advance()
                index = self.expression()
                if self.at("+") and self.at(":", 1):
                    raise unsupported("indexed slices '[e +: w]'", self.peek().loc)
                if self.accept(":"):
                    lo = self.expression()
                    self.expect("]")
                    expr = ast.Slice(loc=expr.loc, expr=expr, hi=index, lo=lo)
                else:
                    self.expect("]", "']' or ':'")
                    expr = ast.ArrayIndex(loc=expr.loc, expr=expr, index=index)
            elif kind == "(":
                expr = ast.MethodCall(loc=expr.loc, callee=expr, args=self.arguments())
            elif kind == "<" and isinstance(expr, (ast.Name, ast.Member)) and self.at_type_start(1):
                if self.peek(1).kind in _BASE_TYPE_KEYWORDS or self.peek(1).kind in ("tuple", "void"):
                    type_args = self.call_type_arguments()   # 'a < bit' cannot be a comparison
                else:
                    type_args = self.speculate(self.call_type_arguments)
                    if type_args is None:
                        return expr
                expr = ast.MethodCall(loc=expr.loc, callee=expr, type_args=type_args, args=self.arguments())
            else:
                return expr

    def call_type_arguments(self) -> list[ast.TypeRef]:
        """``<T, U>`` followed by ``(``; raises (to be rewound) when it is a comparison."""
        first = self.peek(1)
        if first.kind == IDENT and not self.is_type_name(first.text):
            raise self.error_here("a type")
        args = self.type_arguments()
        if not self.at("("):
            raise self.error_here("'('")
        return args


# ---------------------------------------------------------------------- entry points

def parse_tokens(tokens: list[Token]) -> ast.Program:
    """Parse preprocessed tokens (ending with EOF) into a program."""
    return Parser(tokens).parse_program()


def parse_file(path: str, include_dirs: Sequence[str] = (),
               defines: Mapping[str, str | None] | None = None) -> ast.Program:
    """Preprocess and parse the P4 program in ``path``."""
    return parse_tokens(preprocess(path, include_dirs, defines))


def parse_text(text: str, filename: str = "<input>", include_dirs: Sequence[str] = (),
               defines: Mapping[str, str | None] | None = None) -> ast.Program:
    """Preprocess and parse program text (``#include <v1model.p4>`` works as in a file)."""
    return parse_tokens(preprocess_text(text, filename, include_dirs, defines))
