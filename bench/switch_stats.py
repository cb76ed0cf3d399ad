"""What a python switch dropped, from the JSON it writes with ``--stats-file`` (switch/switch.py
``Switch.stats``): the benchmarks report it next to their figures, because a drop's place says
why a rate was not reached (a full socket: the process fell behind; the traffic manager: a queue
over its threshold; the pipeline: the program or its entries)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path


def drops_by_reason(stats: dict) -> dict[str, int]:
    """Every drop counter of one switch, summed by reason, prefixed by where it happened."""
    drops: Counter[str] = Counter()
    for reason, count in stats.get("drops", {}).items():
        drops[f"switch:{reason}"] += count
    for port in stats.get("ports", {}).values():
        for reason, count in port.get("drops", {}).items():
            drops[f"port:{reason}"] += count
    tm = stats.get("tm", {})
    for reason, count in tm.get("drops", {}).items():
        drops[f"tm:{reason}"] += count
    for port in tm.get("ports", {}).values():
        for queue in port.get("priorities", {}).values():
            for reason, count in queue.get("drops", {}).items():
                drops[f"tm:{reason}"] += count
    return dict(sorted(drops.items()))


def drops_in(paths: list[Path]) -> dict[str, int]:
    """``drops_by_reason`` summed over several switches' stats files."""
    total: Counter[str] = Counter()
    for path in paths:
        total.update(drops_by_reason(json.loads(path.read_text())))
    return dict(sorted(total.items()))
