"""The labs in ``labs/NN-name/``: their ``lab.yaml``, and finding one by number or name.

``lab.yaml``::

    title: L3 forwarding on a leaf
    level: beginner                 # beginner | intermediate | advanced
    minutes: 30
    edit: [l3_forwarding.p4]        # what the student edits; solution/ holds the answers
    start: exercise                 # how `lab start` brings it up (see start.py)
    hints: |                        # printed above the Mininet CLI
      ...

The checker is ``check.py`` in the same folder: ``checks(run: LabRun) -> Iterable[Check]``.
"""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fabriclab.errors import UserError

LABS_DIR = Path(__file__).resolve().parent
LEVELS = ("beginner", "intermediate", "advanced")
START_MODES = ("exercise", "scenario", "fabric")
_FOLDER = re.compile(r"^(\d\d)-[a-z0-9-]+$")


@dataclass
class Lab:
    path: Path
    title: str
    level: str
    minutes: int
    edit: list[str]
    start: str
    hints: str = ""
    options: dict[str, Any] = field(default_factory=dict)    # the start mode's own keys

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def number(self) -> str:
        return self.name[:2]

    def checker(self):
        """The lab's check.py as a module."""
        spec = importlib.util.spec_from_file_location(f"fabriclab_lab_{self.number}", self.path / "check.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


def load_lab(path: Path) -> Lab:
    meta_path = path / "lab.yaml"
    try:
        meta = yaml.safe_load(meta_path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{meta_path}: {exc}") from None
    try:
        lab = Lab(path, str(meta.pop("title")), str(meta.pop("level")), int(meta.pop("minutes")),
                  [str(f) for f in meta.pop("edit")], str(meta.pop("start")), str(meta.pop("hints", "")), meta)
    except KeyError as exc:
        raise UserError(f"{meta_path}: missing key {exc.args[0]!r}") from None
    if lab.level not in LEVELS or lab.start not in START_MODES:
        raise UserError(f"{meta_path}: level must be one of {', '.join(LEVELS)} and start one of {', '.join(START_MODES)}")
    return lab


def all_labs() -> list[Lab]:
    return [load_lab(p) for p in sorted(LABS_DIR.iterdir()) if p.is_dir() and _FOLDER.match(p.name)
            and (p / "lab.yaml").exists()]


def find_lab(name: str) -> Lab | None:
    """A lab by number (``1``, ``01``), folder name (``01-l3-forwarding``) or its part after the
    number (``l3-forwarding``); or a folder holding a ``lab.yaml``. None if ``name`` is none of
    those (it may be a tutorials exercise folder)."""
    path = Path(name)
    if (path / "lab.yaml").exists():
        return load_lab(path.resolve())
    for lab in all_labs():
        if name in (lab.name, lab.number, lab.name[3:]) or (name.isdigit() and int(name) == int(lab.number)):
            return lab
    return None


@dataclass
class LabRun:
    """One check or start of a lab: the student's files, or the solution's (``solution/``)."""
    lab: Lab
    solution: bool = False
    run_dir: Path | None = None      # where checkers that bring a fabric up keep its logs

    def file(self, name: str) -> Path:
        """``name`` as this run uses it: ``solution/name`` with --solution when it exists there."""
        if self.solution and (self.lab.path / "solution" / name).exists():
            return self.lab.path / "solution" / name
        return self.lab.path / name
