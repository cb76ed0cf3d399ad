"""The C-like preprocessor P4 programs use, working on tokens so locations survive.

Supported: ``#include <file>`` (``compiler/p4include/`` first, then ``-I`` dirs) and
``#include "file"`` (the including file's folder, then ``-I`` dirs, then ``p4include/``);
object-like ``#define NAME tokens``, function-like ``#define NAME(a, b) tokens`` (arguments are
macro-expanded before substitution; ``#`` and ``##`` are not supported) and ``#undef``; ``#ifdef``/``#ifndef``/``#if``/``#elif``/
``#else``/``#endif`` with ``defined(X)``, integers, macros and C operators in conditions;
``#error``; ``#pragma once`` (other ``#pragma`` lines and ``#line`` are ignored, as p4c's
front-end ignores them).

Every output token keeps the file:line:col where it was written; a token produced by a macro
expansion takes the location of the macro's use, which is where an error about it belongs.
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

from fabriclab.compiler.diagnostics import CompileError, SourceLocation, register_source
from fabriclab.compiler.lexer import DIRECTIVE, EOF, ERROR, IDENT, INT, Token, tokenize

P4INCLUDE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "p4include")

MAX_INCLUDE_DEPTH = 64


class _Conditional:
    """One open ``#if`` group."""
    __slots__ = ("directive", "loc", "parent_active", "active", "taken", "seen_else")

    def __init__(self, directive: str, loc: SourceLocation, parent_active: bool, active: bool):
        self.directive = directive
        self.loc = loc
        self.parent_active = parent_active
        self.active = parent_active and active
        self.taken = active            # some branch of this group was chosen
        self.seen_else = False


class Preprocessor:
    def __init__(self, include_dirs: Sequence[str] = (), defines: Mapping[str, str] | None = None):
        self.include_dirs = [str(d) for d in include_dirs]
        # name -> replacement tokens
        self.macros: dict[str, list[Token]] = {}
        # function-like: name -> (parameter names, replacement tokens)
        self.functions: dict[str, tuple[list[str], list[Token]]] = {}
        self.once: set[str] = set()
        self.output: list[Token] = []
        self.eof: Token | None = None      # the main file's end
        for name, value in (defines or {}).items():
            if not name.isidentifier():
                raise CompileError(f"invalid macro name '{name}'", None)
            self.macros[name] = self._tokens_of(value if value is not None else "1", f"<-D {name}>")

    @staticmethod
    def _tokens_of(text: str, filename: str, loc: SourceLocation | None = None) -> list[Token]:
        line, col = (loc.line, loc.col) if loc else (1, 1)
        tokens = list(tokenize(text, loc.file if loc else filename, line, col, directives=False))
        tokens.pop()   # EOF
        for token in tokens:
            if token.kind == ERROR:
                raise CompileError(token.value, token.loc)
        return tokens

    # ------------------------------------------------------------------ files

    def run_file(self, path: str, depth: int = 0, include_loc: SourceLocation | None = None) -> None:
        real = os.path.realpath(path)
        if real in self.once:
            return
        if depth > MAX_INCLUDE_DEPTH:
            raise CompileError(f"#include nested too deeply (recursive include of '{path}'?)", include_loc)
        try:
            with open(path, encoding="utf-8-sig") as f:   # -sig: tolerate a byte-order mark
                text = f.read()
        except UnicodeDecodeError:
            raise CompileError(f"'{path}' is not UTF-8 text", include_loc) from None
        except OSError as exc:
            raise CompileError(f"cannot read '{path}': {exc.strerror}", include_loc) from None
        self.run_text(text, path, depth)

    def run_text(self, text: str, filename: str, depth: int = 0) -> None:
        register_source(filename, text)
        stack: list[_Conditional] = []
        tokens = tokenize(text, filename)
        pushed: list[Token] = []       # a token read ahead after a function-like macro's name
        while True:
            token = pushed.pop() if pushed else next(tokens)
            active = not stack or stack[-1].active
            if token.kind == DIRECTIVE:
                self._directive(token, stack, active, filename, depth)
            elif token.kind == EOF:
                if depth == 0:
                    self.eof = token
                break
            elif not active:
                continue
            elif token.kind == ERROR:
                raise CompileError(token.value, token.loc)
            elif token.kind == IDENT and token.text in self.macros:
                self.output.extend(self._expand([token], set(), token.loc))
            elif token.kind == IDENT and token.text in self.functions:
                following = next(tokens)
                if following.kind != "(":
                    self.output.append(token)       # the name alone is not a macro use
                    pushed.append(following)
                    continue
                call = [token, following]
                depth_ = 1
                while depth_:
                    t = next(tokens)
                    if t.kind in (EOF, DIRECTIVE):
                        raise CompileError(f"unterminated call of macro '{token.text}'", token.loc)
                    depth_ += {"(": 1, ")": -1}.get(t.kind, 0)
                    call.append(t)
                self.output.extend(self._expand(call, set(), token.loc))
            else:
                self.output.append(token)
        if stack:
            raise CompileError(f"unterminated #{stack[-1].directive}", stack[-1].loc)

    # ------------------------------------------------------------------ directives

    def _directive(self, token: Token, stack: list[_Conditional], active: bool, filename: str,
                   depth: int) -> None:
        body, body_loc = token.value
        words = body.split(None, 1)
        if not words:
            return                                  # a lone '#' is the null directive
        name = words[0]
        name_col = body_loc.col + (len(body) - len(body.lstrip()))
        rest_loc = SourceLocation(body_loc.file, body_loc.line, name_col + len(name))
        rest = body.lstrip()[len(name):]
        if name in ("if", "ifdef", "ifndef"):
            if not active:
                # Inside a skipped group the condition is not evaluated (it may be garbage).
                stack.append(_Conditional(name, token.loc, False, False))
                return
            if name == "if":
                value = self._condition(rest, rest_loc, token.loc)
            else:
                macro = self._macro_name(rest, rest_loc, token.loc, name)
                value = self._defined(macro) == (name == "ifdef")
            stack.append(_Conditional(name, token.loc, True, value))
            return
        if name in ("elif", "else", "endif"):
            if not stack:
                raise CompileError(f"#{name} without #if", token.loc)
            group = stack[-1]
            if name == "endif":
                stack.pop()
                return
            if group.seen_else:
                raise CompileError(f"#{name} after #else", token.loc)
            if name == "else":
                group.seen_else = True
                group.active = group.parent_active and not group.taken
                group.taken = True
                return
            if group.parent_active and not group.taken:
                value = self._condition(rest, rest_loc, token.loc)
                group.active = value
                group.taken = value
            else:
                group.active = False
            return
        if not active:
            return
        if name == "include":
            self._include(rest, rest_loc, token.loc, filename, depth)
        elif name == "define":
            self._define(rest, rest_loc, token.loc)
        elif name == "undef":
            macro = self._macro_name(rest, rest_loc, token.loc, name)
            self.macros.pop(macro, None)
            self.functions.pop(macro, None)
        elif name == "error":
            raise CompileError(f"#error {rest.strip()}".rstrip(), token.loc)
        elif name == "pragma":
            if rest.split() == ["once"]:
                self.once.add(os.path.realpath(filename))
        elif name == "line":
            pass
        else:
            raise CompileError(f"unknown preprocessor directive '#{name}'", token.loc)

    def _macro_name(self, rest: str, rest_loc: SourceLocation, loc: SourceLocation, directive: str) -> str:
        tokens = self._tokens_of(rest, "", rest_loc)
        if not tokens or tokens[0].kind != IDENT:
            raise CompileError(f"#{directive} expects a macro name", tokens[0].loc if tokens else loc)
        if len(tokens) > 1:
            raise CompileError(f"extra tokens after #{directive} {tokens[0].text}", tokens[1].loc)
        return tokens[0].text

    def _define(self, rest: str, rest_loc: SourceLocation, loc: SourceLocation) -> None:
        tokens = self._tokens_of(rest, "", rest_loc)
        if not tokens or tokens[0].kind != IDENT:
            raise CompileError("#define expects a macro name", tokens[0].loc if tokens else loc)
        name = tokens[0]
        self.macros.pop(name.text, None)
        self.functions.pop(name.text, None)
        if len(tokens) > 1 and tokens[1].kind == "(" and not tokens[1].space_before:
            params: list[str] = []
            i = 2
            while i < len(tokens) and tokens[i].kind != ")":
                if tokens[i].kind != IDENT or tokens[i].text in params:
                    raise CompileError(f"bad parameter list of macro '{name.text}'", tokens[i].loc)
                params.append(tokens[i].text)
                i += 1
                if i < len(tokens) and tokens[i].kind == ",":
                    i += 1
                elif i >= len(tokens) or tokens[i].kind != ")":
                    raise CompileError(f"bad parameter list of macro '{name.text}'",
                                       tokens[i].loc if i < len(tokens) else name.loc)
            if i >= len(tokens):
                raise CompileError(f"bad parameter list of macro '{name.text}'", name.loc)
            self.functions[name.text] = (params, tokens[i + 1:])
            return
        self.macros[name.text] = tokens[1:]

    def _defined(self, name: str) -> bool:
        return name in self.macros or name in self.functions

    def _include(self, rest: str, rest_loc: SourceLocation, loc: SourceLocation, filename: str,
                 depth: int) -> None:
        spec = rest.strip()
        spec_loc = SourceLocation(rest_loc.file, rest_loc.line, rest_loc.col + len(rest) - len(rest.lstrip()))
        if len(spec) >= 2 and spec[0] == "<" and spec[-1] == ">":
            name = spec[1:-1]
            search = [P4INCLUDE_DIR] + self.include_dirs
        elif len(spec) >= 2 and spec[0] == '"' and spec[-1] == '"':
            name = spec[1:-1]
            search = [os.path.dirname(os.path.abspath(filename))] + self.include_dirs + [P4INCLUDE_DIR]
        else:
            raise CompileError('#include expects "FILE" or <FILE>', spec_loc if spec else loc)
        if os.path.isabs(name):
            search = [""]
        for folder in search:
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                self.run_file(os.path.normpath(candidate), depth + 1, spec_loc)
                return
        raise CompileError(f"cannot find include file '{name}'", spec_loc)

    # ------------------------------------------------------------------ macros

    def _expand(self, tokens: list[Token], hidden: set[str], use_loc: SourceLocation) -> list[Token]:
        """``tokens`` with macros replaced, recursively; a macro is not expanded inside itself."""
        out: list[Token] = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            i += 1
            if token.kind != IDENT or token.text in hidden:
                out.append(token)
            elif token.text in self.macros:
                replacement = [Token(t.kind, t.text, use_loc, t.value, t.space_before)
                               for t in self.macros[token.text]]
                out.extend(self._expand(replacement, hidden | {token.text}, use_loc))
            elif token.text in self.functions and i < len(tokens) and tokens[i].kind == "(":
                args, i = self._arguments(token, tokens, i)
                params, body = self.functions[token.text]
                if len(args) != len(params) and not (not params and args == [[]]):
                    raise CompileError(f"macro '{token.text}' takes {len(params)} argument"
                                       f"{'s' if len(params) != 1 else ''}, got {len(args)}", token.loc)
                values = {p: self._expand(a, hidden, use_loc) for p, a in zip(params, args)}
                replacement = []
                for t in body:
                    if t.kind == IDENT and t.text in values:
                        replacement.extend(values[t.text])
                    else:
                        replacement.append(Token(t.kind, t.text, use_loc, t.value, t.space_before))
                out.extend(self._expand(replacement, hidden | {token.text}, use_loc))
            else:
                out.append(token)
        return out

    @staticmethod
    def _arguments(name: Token, tokens: list[Token], i: int) -> tuple[list[list[Token]], int]:
        """The comma-separated arguments of a macro call whose '(' is ``tokens[i]``, and the
        index after its ')'."""
        args: list[list[Token]] = [[]]
        depth = 0
        for j in range(i + 1, len(tokens)):
            t = tokens[j]
            if t.kind == ")" and depth == 0:
                return args, j + 1
            if t.kind == "," and depth == 0:
                args.append([])
                continue
            depth += {"(": 1, ")": -1}.get(t.kind, 0)
            args[-1].append(t)
        raise CompileError(f"unterminated call of macro '{name.text}'", name.loc)

    # ------------------------------------------------------------------ #if conditions

    def _condition(self, rest: str, rest_loc: SourceLocation, loc: SourceLocation) -> bool:
        tokens = self._tokens_of(rest, "", rest_loc)
        if not tokens:
            raise CompileError("#if with no expression", loc)
        # 'defined X' / 'defined(X)' must be resolved before macro expansion.
        resolved: list[Token] = []
        i = 0
        while i < len(tokens):
            t = tokens[i]
            if t.kind == IDENT and t.text == "defined":
                if i + 1 < len(tokens) and tokens[i + 1].kind == IDENT:
                    name, i = tokens[i + 1].text, i + 2
                elif (i + 3 < len(tokens) and tokens[i + 1].kind == "(" and tokens[i + 2].kind == IDENT
                      and tokens[i + 3].kind == ")"):
                    name, i = tokens[i + 2].text, i + 4
                else:
                    raise CompileError("'defined' expects a macro name", t.loc)
                resolved.append(Token(INT, "1" if self._defined(name) else "0", t.loc,
                                      (int(self._defined(name)), None, False)))
                continue
            resolved.append(t)
            i += 1
        expanded = self._expand(resolved, set(), rest_loc)
        return _ConditionEvaluator(expanded, loc).evaluate() != 0

    def tokens(self) -> list[Token]:
        """Everything preprocessed so far, ending with the main file's EOF token."""
        assert self.eof is not None, "run_file or run_text first"
        return self.output + [self.eof]


# Binary operators of #if conditions, by C precedence (higher binds tighter).
_BINARY_PRECEDENCE = {
    "||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6,
    "<": 7, ">": 7, "<=": 7, ">=": 7, "<<": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10,
}


class _ConditionEvaluator:
    """Integer evaluation of an ``#if`` condition; identifiers left after expansion are 0."""

    def __init__(self, tokens: list[Token], loc: SourceLocation):
        self.tokens = tokens
        self.pos = 0
        self.loc = loc

    def evaluate(self) -> int:
        value = self._binary(0)
        if self.pos < len(self.tokens):
            raise CompileError(f"unexpected {self.tokens[self.pos].describe()} in #if condition",
                               self.tokens[self.pos].loc)
        return value

    def _peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _binary(self, min_precedence: int) -> int:
        left = self._unary()
        while True:
            token = self._peek()
            op = token.kind if token else None
            # '>>' arrives as two adjacent '>' tokens.
            if op == ">" and self.pos + 1 < len(self.tokens) and self.tokens[self.pos + 1].kind == ">" \
                    and not self.tokens[self.pos + 1].space_before:
                op = ">>"
                precedence = 8
            else:
                precedence = _BINARY_PRECEDENCE.get(op, 0) if op else 0
            if precedence == 0 or precedence < min_precedence:
                return left
            self.pos += 2 if op == ">>" else 1
            right = self._binary(precedence + 1)
            left = self._apply(op, left, right, token)

    def _apply(self, op: str, a: int, b: int, token: Token) -> int:
        if op in ("/", "%") and b == 0:
            raise CompileError("division by zero in #if condition", token.loc)
        return {
            "||": lambda: int(bool(a) or bool(b)), "&&": lambda: int(bool(a) and bool(b)),
            "|": lambda: a | b, "^": lambda: a ^ b, "&": lambda: a & b,
            "==": lambda: int(a == b), "!=": lambda: int(a != b), "<": lambda: int(a < b),
            ">": lambda: int(a > b), "<=": lambda: int(a <= b), ">=": lambda: int(a >= b),
            "<<": lambda: a << b, ">>": lambda: a >> b, "+": lambda: a + b, "-": lambda: a - b,
            "*": lambda: a * b, "/": lambda: int(a / b), "%": lambda: a % b,
        }[op]()

    def _unary(self) -> int:
        token = self._peek()
        if token is None:
            raise CompileError("incomplete #if condition", self.loc)
        self.pos += 1
        if token.kind == "!":
            return int(not self._unary())
        if token.kind == "-":
            return -self._unary()
        if token.kind == "+":
            return self._unary()
        if token.kind == "~":
            return ~self._unary()
        if token.kind == "(":
            value = self._binary(0)
            closing = self._peek()
            if closing is None or closing.kind != ")":
                raise CompileError("expected ')' in #if condition", closing.loc if closing else self.loc)
            self.pos += 1
            return value
        if token.kind == INT:
            return token.value[0]
        if token.kind in (IDENT, "true", "false") or token.text.isidentifier():
            return 1 if token.kind == "true" else 0
        raise CompileError(f"unexpected {token.describe()} in #if condition", token.loc)


def preprocess(path: str, include_dirs: Sequence[str] = (),
               defines: Mapping[str, str | None] | None = None) -> list[Token]:
    """The tokens of the program in ``path`` after preprocessing, ending with EOF."""
    pp = Preprocessor(include_dirs, defines)
    pp.run_file(path)
    return pp.tokens()


def preprocess_text(text: str, filename: str = "<input>", include_dirs: Sequence[str] = (),
                    defines: Mapping[str, str | None] | None = None) -> list[Token]:
    """Like ``preprocess`` for program text not read from a file (quote includes are looked up
    relative to the current directory)."""
    pp = Preprocessor(include_dirs, defines)
    pp.run_text(text, filename)
    return pp.tokens()

