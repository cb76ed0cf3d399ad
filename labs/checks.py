"""Check results of a lab checker: what was checked, whether it held, what was measured.

A checker (``labs/NN-name/check.py``) defines ``checks(lab) -> Iterable[Check]``; ``lab`` is a
``LabRun`` (which files to use: the student's or the solution's). Checks test behaviour — the
packets a program emits, the drops a configuration causes — never the text of a file.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass
class Check:
    name: str          # what must hold, in the student's words
    passed: bool
    measured: str      # what was observed, e.g. "left on port 2" or "0 of 120 dropped"

    def line(self) -> str:
        return f"{'✔' if self.passed else '✘'} {self.name}  ({self.measured})"


def expect(name: str, passed: bool, measured: str) -> Check:
    return Check(name, bool(passed), measured)


def report_json(lab: str, solution: bool, checks: list[Check]) -> str:
    return json.dumps({"lab": lab, "solution": solution, "passed": all(c.passed for c in checks),
                       "score": sum(c.passed for c in checks), "total": len(checks),
                       "checks": [asdict(c) for c in checks]}, indent=1) + "\n"
