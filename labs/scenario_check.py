"""Checkers of scenario labs: run one variant of the student's scenario file on a Mininet
fabric and hand back its metrics (scenarios/runner.py's ``run_variant``: the same bring-up,
traffic and counters as ``fabriclab run``)."""
from __future__ import annotations

import os
import time
from pathlib import Path

from fabriclab.errors import UserError


def run_variant_of(run, file: str, variant: str) -> dict:
    from fabriclab.scenarios.runner import run_variant
    from fabriclab.scenarios.schema import load_scenario

    if os.geteuid() != 0:
        raise UserError("this lab's checker brings a fabric up: it needs root")
    scenario = load_scenario(str(run.file(file)))
    if variant not in scenario.variants:
        raise UserError(f"{file}: no variant {variant!r} (variants: {', '.join(scenario.variants)})")
    base = run.run_dir or Path(f"runs/lab-{run.lab.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    return run_variant(variant, scenario.variants[variant], Path(base) / variant, progress=lambda message: None)
