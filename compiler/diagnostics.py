"""Compile diagnostics: source locations and the one error type the compiler raises.

A ``CompileError`` carries the location of the offending token; ``format()`` renders it as
compilers do (``file:line:col: error: message``, the source line, a caret under the column).
The preprocessor registers every file it reads, so the source line is shown as it was when it
was compiled even if the file changes afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass

# path -> lines of the file as read by the preprocessor
_sources: dict[str, list[str]] = {}


@dataclass(frozen=True, slots=True)
class SourceLocation:
    file: str
    line: int   # 1-based
    col: int    # 1-based, counting characters (a tab counts as one)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


def register_source(path: str, text: str) -> None:
    """Remember ``text`` as the contents of ``path`` for error messages."""
    _sources[path] = text.splitlines()


def source_line(loc: SourceLocation) -> str | None:
    """The text of the line ``loc`` points into, or None if it cannot be found."""
    lines = _sources.get(loc.file)
    if lines is None:
        try:
            with open(loc.file, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return None
    if 1 <= loc.line <= len(lines):
        return lines[loc.line - 1]
    return None


class CompileError(Exception):
    """An error in the P4 program (or an unsupported construct) at a source location."""

    exit_code = 1

    def __init__(self, message: str, loc: SourceLocation | None):
        super().__init__(message)
        self.message = message
        self.loc = loc

    def headline(self) -> str:
        """``file:line:col: error: message`` (or ``error: message`` without a location)."""
        if self.loc is None:
            return f"error: {self.message}"
        return f"{self.loc}: error: {self.message}"

    def format(self) -> str:
        """The headline, then the source line and a caret under the column."""
        text = self.headline()
        if self.loc is None:
            return text
        line = source_line(self.loc)
        if line is None:
            return text
        # Keep tabs in the caret line so the caret lines up under the same column.
        pad = "".join(c if c == "\t" else " " for c in line[: self.loc.col - 1])
        return f"{text}\n{line}\n{pad}^"

    def __str__(self) -> str:
        return self.headline()


def unsupported(what: str, loc: SourceLocation | None) -> CompileError:
    """The error for a valid P4 construct that fabriclab does not implement."""
    return CompileError(f"unsupported: {what}", loc)
