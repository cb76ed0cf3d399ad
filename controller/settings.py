"""What the controller installs besides routes: load-balancing mode, DSCP classification and
ECN marking. Bring-up writes them to ``<run dir>/controller.json`` next to ``fabric.json``.

DSCP defaults follow common RoCEv2 deployments: RoCE data in DSCP 26 (AF31) on priority 3,
the PFC-protected class (switch.yaml ``lossless: [3]``); CNPs in DSCP 48 (CS6) on priority 6
so they overtake the congested data they report; everything else on priority 0 (lossy).
ECN thresholds are the DCQCN paper's (Zhu et al., SIGCOMM 2015: Kmin 5 KB, Kmax 200 KB,
Pmax 1 %), marking off unless asked, as the scenario defaults have it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fabriclab.errors import UserError

LB_MODES = ("ecmp", "spray", "spray-rr", "flowlet", "adaptive")
DEFAULT_DSCP_PRIORITY = {26: 3, 48: 6}


@dataclass
class EcnSettings:
    enabled: bool = False
    kmin_bytes: int = 5_000
    kmax_bytes: int = 200_000
    pmax: float = 0.01


@dataclass
class ControllerSettings:
    lb: str = "ecmp"
    flowlet_gap_s: float = 0.005
    dscp_priority: dict[int, int] = field(default_factory=lambda: dict(DEFAULT_DSCP_PRIORITY))
    default_priority: int = 0
    ecn: EcnSettings = field(default_factory=EcnSettings)
    connect_timeout_s: float = 30.0    # how long to keep trying to reach a switch's P4Runtime server

    def validate(self) -> None:
        if self.lb not in LB_MODES:
            raise UserError(f"unknown load-balancing mode {self.lb!r} (choose from {', '.join(LB_MODES)})")
        for dscp, priority in self.dscp_priority.items():
            if not 0 <= dscp < 64 or not 0 <= priority < 8:
                raise UserError(f"DSCP {dscp} -> priority {priority}: DSCP must be 0..63, priority 0..7")
        if not 0 <= self.default_priority < 8:
            raise UserError(f"default priority must be 0..7, got {self.default_priority}")
        if self.ecn.kmin_bytes > self.ecn.kmax_bytes or not 0 <= self.ecn.pmax <= 1:
            raise UserError("ECN: need kmin <= kmax and 0 <= pmax <= 1")
        if self.flowlet_gap_s <= 0:
            raise UserError("flowlet gap must be positive")

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "ControllerSettings":
        try:
            data = json.loads(Path(path).read_text())
            settings = cls(**{**data, "ecn": EcnSettings(**data.get("ecn", {})),
                              "dscp_priority": {int(k): int(v) for k, v in data.get("dscp_priority", {}).items()}})
        except OSError as exc:
            raise UserError(f"cannot read controller settings {path}: {exc.strerror}") from None
        except (ValueError, TypeError) as exc:
            raise UserError(f"{path}: not controller settings ({exc})") from None
        settings.validate()
        return settings
