"""Expectations: the effect a scenario is known for, written as a comparison of metrics.

Grammar (one comparison per line)::

    expectation := side OP side
    side        := [NUMBER '*'] METRIC '[' VARIANT ']' | NUMBER
    OP          := '==' | '!=' | '<' | '<=' | '>' | '>='
    METRIC      := name ('.' name)*          e.g. drops.lossless, busbw_mbps, victim.rate_mbps

Examples: ``drops.lossless[pfc] == 0``, ``pfc_pause_tx[pfc] > 0``,
``busbw_mbps[spray] > busbw_mbps[ecmp]``, ``victim_mbps[dcqcn] > 2 * victim_mbps[pfc-only]``.
Parsed when the scenario file is loaded, so a typo fails before anything starts.
"""
from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

_OPS = {"==": operator.eq, "!=": operator.ne, "<=": operator.le, ">=": operator.ge,
        "<": operator.lt, ">": operator.gt}
_SIDE_RE = re.compile(
    r"^\s*(?:(?P<factor>[0-9]*\.?[0-9]+)\s*\*\s*)?(?P<metric>[A-Za-z_][\w]*(?:\.[\w-]+)*)\s*\[\s*(?P<variant>[\w.-]+)\s*\]\s*$"
    r"|^\s*(?P<number>-?[0-9]*\.?[0-9]+)\s*$")
_SPLIT_RE = re.compile(r"(==|!=|<=|>=|<|>)")


class ExpectationError(ValueError):
    """A malformed expectation; the message names what is wrong."""


@dataclass(frozen=True)
class Side:
    factor: float = 1.0
    metric: str | None = None
    variant: str | None = None
    number: float | None = None

    def value(self, results: dict[str, dict[str, Any]]) -> float:
        if self.metric is None:
            return float(self.number)
        node: Any = results.get(self.variant)
        if node is None:
            raise ExpectationError(f"no results for variant {self.variant!r}")
        for part in self.metric.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ExpectationError(f"variant {self.variant!r} has no metric {self.metric!r}")
            node = node[part]
        if node is None:
            raise ExpectationError(f"metric {self.metric!r} of variant {self.variant!r} was not measured")
        return self.factor * float(node)

    def __str__(self) -> str:
        if self.metric is None:
            return f"{self.number:g}"
        prefix = f"{self.factor:g} * " if self.factor != 1.0 else ""
        return f"{prefix}{self.metric}[{self.variant}]"


@dataclass(frozen=True)
class Expectation:
    text: str
    left: Side
    op: str
    right: Side

    def variants(self) -> set[str]:
        return {side.variant for side in (self.left, self.right) if side.variant}

    def evaluate(self, results: dict[str, dict[str, Any]]) -> tuple[bool, str]:
        """(held, explanation with the measured values)."""
        try:
            left, right = self.left.value(results), self.right.value(results)
        except ExpectationError as exc:
            return False, str(exc)
        held = _OPS[self.op](left, right)
        return held, f"{left:g} {self.op} {right:g}"


def _parse_side(text: str, whole: str) -> Side:
    match = _SIDE_RE.match(text)
    if not match:
        raise ExpectationError(f"cannot read {text.strip()!r} in {whole!r}: expected METRIC[VARIANT] or a number")
    if match.group("number") is not None:
        return Side(number=float(match.group("number")))
    return Side(factor=float(match.group("factor") or 1.0), metric=match.group("metric"),
                variant=match.group("variant"))


def parse_expectation(text: str) -> Expectation:
    parts = _SPLIT_RE.split(text)
    if len(parts) != 3:
        raise ExpectationError(f"{text!r}: expected exactly one comparison (==, !=, <, <=, >, >=)")
    left, op, right = parts
    return Expectation(text=text.strip(), left=_parse_side(left, text), op=op, right=_parse_side(right, text))
