"""P4_16 tokens with source locations.

``tokenize`` turns text into ``Token``s. Reserved words and punctuation have their own text as
``kind``; identifiers, integers, strings, preprocessor directives, bad input and the end of the
input have the kinds below. Contextual words (``apply``, ``key``, ``actions``, ``state``,
``entries``, ``type``, ``priority``, ``list``) are identifiers: P4 allows them as names.

``>>`` is never one token: ``bit<bit<8>>`` closes two type-argument lists, so the parser joins
two adjacent ``>`` into a shift (as p4c's grammar does). A ``#`` that starts a line begins a
``directive`` token holding the rest of the logical line for the preprocessor. Bad input becomes
an ``error`` token rather than an exception, so text skipped by ``#if 0`` may contain anything;
whoever consumes an error token raises it.
"""
from __future__ import annotations

import re
from typing import Iterator

from fabriclab.compiler.diagnostics import SourceLocation

# Kinds of the tokens that are not a reserved word or punctuation (never equal to one).
IDENT = "identifier"
INT = "integer literal"
STRING = "string literal"
DIRECTIVE = "preprocessor directive"
ERROR = "invalid token"
EOF = "end of file"

KEYWORDS = frozenset("""
    abstract action bit bool break const continue control default else enum error exit extern
    false for header header_union if in inout int match_kind out package parser return select
    string struct switch table this transition true tuple typedef varbit value_set void
""".split())

# Longest first, so the alternation picks '&&&' over '&&' over '&'.
PUNCTUATION = sorted("""
    ... {#} &&& |+|= |-|= |+| |-| <<= .. && || == != >= <= ++ << += -= *= /= %= &= |= ^=
    { } ( ) [ ] < > ; : , . = + - * / % & | ^ ~ ! ? @
""".split(), key=len, reverse=True)


class Token:
    __slots__ = ("kind", "text", "loc", "value", "space_before")

    def __init__(self, kind: str, text: str, loc: SourceLocation, value: object = None,
                 space_before: bool = True):
        self.kind = kind
        self.text = text
        self.loc = loc
        # INT: (value, width | None, signed); STRING: the unescaped text; DIRECTIVE: (body, body_loc);
        # ERROR: the message.
        self.value = value
        # Whether whitespace or a comment separates this token from the previous one.
        self.space_before = space_before

    def describe(self) -> str:
        """How error messages name this token."""
        if self.kind == EOF:
            return "end of file"
        return f"'{self.text}'"

    def __repr__(self) -> str:
        return f"Token({self.kind!r}, {self.text!r}, {self.loc})"


_DIGITS = {"x": (16, "[0-9a-fA-F_]"), "b": (2, "[01_]"), "o": (8, "[0-7_]"), "d": (10, "[0-9_]")}

_TOKEN_RE = re.compile(r"""
    (?P<newline>\n)
  | (?P<space>[ \t\r\f\v]+)
  | (?P<line_comment>//[^\n]*)
  | (?P<block_comment>/\*.*?\*/)
  | (?P<open_comment>/\*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<open_string>")
  | (?P<number>[0-9]+s-[0-9][0-9a-zA-Z_]*|[0-9][0-9a-zA-Z_]*)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>""" + "|".join(re.escape(p) for p in PUNCTUATION) + r""")
  | (?P<hash>\#)
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)

_DIRECTIVE_STRING_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"?')
_SIZED_RE = re.compile(r"([0-9]+)([ws])(-?)(.+)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "0": "\0"}


def parse_integer(text: str) -> tuple[int, int | None, bool] | None:
    """``(value, width, signed)`` of an integer literal, or None if it is malformed.

    Forms per the P4_16 spec: ``123``, ``0x1F``/``0b101``/``0o17``/``0d99`` (underscores allowed),
    optionally prefixed by a width and ``w`` (unsigned) or ``s`` (signed): ``8w5``, ``4s3``;
    ``4s-1`` is accepted as a negative signed literal.
    """
    width = None
    signed = False
    negative = False
    sized = _SIZED_RE.fullmatch(text)
    if sized:
        width = int(sized.group(1))
        signed = sized.group(2) == "s"
        negative = sized.group(3) == "-"
        text = sized.group(4)
        if negative and not signed:
            return None
    elif "-" in text:
        return None
    base, digits = 10, text
    if len(text) > 2 and text[0] == "0" and text[1].lower() in _DIGITS:
        base, allowed = _DIGITS[text[1].lower()]
        digits = text[2:]
        if not re.fullmatch(allowed + "+", digits):
            return None
    elif not re.fullmatch(r"[0-9][0-9_]*", text):
        return None
    digits = digits.replace("_", "")
    if not digits:
        return None
    value = int(digits, base)
    return (-value if negative else value), width, signed


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def _directive_body(text: str, start: int) -> tuple[str, int, int]:
    """The directive text from ``start`` (just after '#') to the end of the logical line.

    Joins backslash-continued lines and drops comments. Returns (body, end offset, newlines
    consumed).
    """
    out = []
    i = start
    newlines = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            break
        if c == "\\" and text.startswith("\n", i + 1):
            newlines += 1
            i += 2
            continue
        if c == "\\" and text.startswith("\r\n", i + 1):
            newlines += 1
            i += 3
            continue
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            break
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            newlines += text.count("\n", i, end)
            out.append(" ")
            i = end
            continue
        if c == '"':
            match = _DIRECTIVE_STRING_RE.match(text, i)
            out.append(match.group())
            i = match.end()
            continue
        out.append(c)
        i += 1
    return "".join(out), i, newlines


def tokenize(text: str, filename: str, line: int = 1, col: int = 1,
             directives: bool = True) -> Iterator[Token]:
    """Tokens of ``text`` as if it started at ``filename:line:col``, ending with an EOF token.

    With ``directives`` false (for a directive's own body) '#' is an error token.
    """
    pos = 0
    line_start = pos - (col - 1)      # offset of the current line's column 1
    at_line_start = col == 1
    space_before = True
    match_at = _TOKEN_RE.match
    while True:
        m = match_at(text, pos)
        if m is None:
            break
        kind = m.lastgroup
        start = pos
        pos = m.end()
        loc_col = start - line_start + 1
        if kind == "newline":
            line += 1
            line_start = pos
            at_line_start = True
            space_before = True
            continue
        if kind == "space" or kind == "line_comment":
            space_before = True
            continue
        if kind == "block_comment":
            newlines = text.count("\n", start, pos)
            if newlines:
                line += newlines
                line_start = text.rindex("\n", start, pos) + 1
            space_before = True
            continue
        loc = SourceLocation(filename, line, loc_col)
        token_text = m.group()
        if kind == "word":
            if token_text == "_":
                yield Token("_", token_text, loc, None, space_before)
            elif token_text in KEYWORDS:
                yield Token(token_text, token_text, loc, None, space_before)
            else:
                yield Token(IDENT, token_text, loc, None, space_before)
        elif kind == "punct":
            yield Token(token_text, token_text, loc, None, space_before)
        elif kind == "number":
            value = parse_integer(token_text)
            if value is None:
                yield Token(ERROR, token_text, loc, f"invalid integer literal '{token_text}'", space_before)
            else:
                yield Token(INT, token_text, loc, value, space_before)
        elif kind == "string":
            yield Token(STRING, token_text, loc, _unescape(token_text[1:-1]), space_before)
        elif kind == "hash" and directives and at_line_start:
            body, end, newlines = _directive_body(text, pos)
            body_loc = SourceLocation(filename, line, loc_col + 1)
            yield Token(DIRECTIVE, "#" + body, loc, (body, body_loc), space_before)
            pos = end
            if newlines:
                line += newlines
                line_start = text.rindex("\n", 0, pos) + 1
        elif kind == "open_comment":
            yield Token(ERROR, "/*", loc, "unterminated comment", space_before)
            pos = len(text)
        elif kind == "open_string":
            yield Token(ERROR, '"', loc, "unterminated string literal", space_before)
            nl = text.find("\n", pos)
            pos = len(text) if nl < 0 else nl
        else:
            yield Token(ERROR, token_text, loc, f"unexpected character '{token_text}'", space_before)
        at_line_start = False
        space_before = False
    yield Token(EOF, "", SourceLocation(filename, line, pos - line_start + 1), None, True)
