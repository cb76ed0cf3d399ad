"""``fabriclab scenarios``: the built-in scenarios, one line each."""
from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from fabriclab.scenarios.schema import builtin_scenarios, load_scenario

    for path in builtin_scenarios():
        scenario = load_scenario(str(path))
        print(f"{scenario.name:<16} {scenario.description}  [variants: {', '.join(scenario.variants)}]")
    return 0
