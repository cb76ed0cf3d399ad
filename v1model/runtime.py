"""What generated programs see as ``RT``: the v1model runtime support both engines call.

The Python engine's generated code (compiler/codegen.py) and the native engine's C module
(compiler/native_codegen.py) reach these names through ``RT``: parser errors and ``exit`` as
exceptions, header stacks, width-safe arithmetic, checksums over packed fields, ``log_msg``,
assertions, ``random``, lookahead and parser value_sets.
"""
from __future__ import annotations

import logging
import random as _random

from fabriclab.v1model.externs import GREEN, execute_direct_meter

log = logging.getLogger("fabriclab.p4")


class ParserError(Exception):
    """Raised inside a generated parser; ``code`` is the P4 error number."""

    def __init__(self, code: int | None):
        self.code = code
        self.off = None        # set by a sub-parser: where in the packet it stopped


class Exit(Exception):
    """The P4 ``exit`` statement: leaves every enclosing control."""


class P4AssertionError(AssertionError):
    """A failed v1model ``assert``/``assume`` (simple_switch aborts; we raise)."""


class Stack:
    """A header stack: ``hs`` holds the elements, ``nxt`` is nextIndex."""

    __slots__ = ("hs", "nxt", "_t")

    def __init__(self, element_class, size: int):
        self._t = element_class
        self.hs = [element_class() for _ in range(size)]
        self.nxt = 0

    def _copy(self) -> "Stack":
        c = Stack.__new__(Stack)
        c._t = self._t
        c.hs = [h._copy() for h in self.hs]
        c.nxt = self.nxt
        return c

    def _assign(self, other: "Stack") -> None:
        for mine, theirs in zip(self.hs, other.hs):
            mine._assign(theirs)
        self.nxt = other.nxt

    def push_front(self, count: int) -> None:
        size = len(self.hs)
        count = min(count, size)
        self.hs = [self._t() for _ in range(count)] + self.hs[: size - count]
        self.nxt = min(self.nxt + count, size)

    def pop_front(self, count: int) -> None:
        size = len(self.hs)
        count = min(count, size)
        self.hs = self.hs[count:] + [self._t() for _ in range(count)]
        self.nxt = max(self.nxt - count, 0)

    def last(self):
        if self.nxt == 0:
            raise ParserError(STACK_OUT_OF_BOUNDS)
        return self.hs[self.nxt - 1]


STACK_OUT_OF_BOUNDS = 3   # core.p4 error order: NoError, PacketTooShort, NoMatch, StackOutOfBounds


def div(a: int, b: int) -> int:
    return a // b if b else 0


def mod(a: int, b: int) -> int:
    return a % b if b else 0


def shl(value: int, amount: int, width: int) -> int:
    """``value << amount`` within ``width`` bits, without building huge ints."""
    return (value << amount) & ((1 << width) - 1) if amount < width else 0


def to_signed(value: int, width: int) -> int:
    value &= (1 << width) - 1
    return value - (1 << width) if value >> (width - 1) else value


def csum16_of(value: int, nbits: int, payload: bytes = b"") -> int:
    """``hashing.csum16`` of fields packed into ``value`` (``nbits`` wide, then ``payload``),
    without splitting into words: 2**16 = 1 (mod 0xFFFF), so the one's-complement sum of the
    16-bit words (RFC 1071) is the whole value mod 0xFFFF, written 0xFFFF rather than 0 unless
    every word is zero."""
    pad = -nbits % 8
    value <<= pad
    nbytes = (nbits + pad) // 8
    if payload:
        value = (value << (8 * len(payload))) | int.from_bytes(payload, "big")
        nbytes += len(payload)
    if nbytes % 2:
        value <<= 8
    total = value % 0xFFFF
    if total == 0 and value:
        total = 0xFFFF
    return ~total & 0xFFFF


def log_msg(fmt: str, values: tuple = ()) -> None:
    """v1model ``log_msg``: ``{}`` placeholders filled in order, to the Python log."""
    parts = fmt.split("{}")
    text = parts[0]
    for i, part in enumerate(parts[1:]):
        text += (str(values[i]) if i < len(values) else "{}") + part
    log.info("%s", text)


def failed_assertion(where: str) -> None:
    raise P4AssertionError(f"P4 assertion failed at {where}")


def packet_failure(exc: BaseException) -> str:
    """Why a packet could not be processed, in one line (the switch drops it and goes on; where
    simple_switch aborts the process: a header stack index out of range, a failed assert)."""
    if isinstance(exc, IndexError):
        return "header stack index out of range"
    if isinstance(exc, P4AssertionError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


random_source = _random.Random()
# re-exported for generated code (it sees this module as RT)
__all__ = ["GREEN", "execute_direct_meter"]


def too_short(code: int) -> int:
    raise ParserError(code)


def lookahead_header(cls, data: bytes, off: int, nbytes: int, too_short_code: int):
    """``lookahead<H>()``: a valid header of type ``cls`` read without advancing."""
    if off + nbytes > len(data):
        raise ParserError(too_short_code)
    h = cls()
    h._unpack(int.from_bytes(data[off:off + nbytes], "big"))
    return h


class ValueSet:
    """A parser value_set's entries: (value, mask) pairs, written by the control plane."""

    def __init__(self):
        self.entries: list[tuple[int, int]] = []

    def matches(self, key) -> bool:
        for value, mask in self.entries:
            if key & mask == value:
                return True
        return False


def value_set(state, name: str) -> ValueSet:
    """The runtime object of a value_set (kept on the state object, created on first use)."""
    sets = state.__dict__.setdefault("value_sets", {})
    return sets.setdefault(name, ValueSet())
