"""The controller's progress as a small JSON file, so the process that started it (``fabriclab
up``, a scenario) can wait for "routes installed" without sharing a process."""
from __future__ import annotations

import json
import os
from pathlib import Path

STARTING, READY, FAILED = "starting", "ready", "failed"


def write_status(path: str | Path, state: str, **details) -> None:
    """Replace the file atomically: a reader never sees half a document."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"state": state, **details}, indent=2) + "\n")
    os.replace(tmp, path)


def read_status(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
