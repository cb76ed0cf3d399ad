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
    connect_timeout_s: float = 300.0   # how long to keep trying to reach a switch's P4Runtime server:
                                       # a switch starts in ~1 s here, in minutes in a VM without
                                       # acceleration (p4runtime/client.py, RPC_TIMEOUT_S)
    # adaptive routing (controller/policy.py) and the telemetry loop that feeds it
    policy: str = "static"
    policy_params: dict = field(default_factory=dict)
    poll_interval_s: float = 0.2       # testbed time; scenarios give it at fabric time and scale it
    smoothing: float = 0.5             # EWMA gain per poll of the link utilisation
    repair: bool = True                # recompute routes when a link loses carrier (false: routes frozen)
    rest_host: str = "127.0.0.1"
    rest_port: int | None = None       # REST API port (fabriclab up: 8080); None: no REST API

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
        if not self.poll_interval_s > 0:
            raise UserError(f"poll interval must be positive, got {self.poll_interval_s}")
        if not 0 < self.smoothing <= 1:
            raise UserError(f"smoothing must be in (0, 1], got {self.smoothing}")
        if self.rest_port is not None and not 0 <= self.rest_port < 65536:
            raise UserError(f"REST port must be 0..65535, got {self.rest_port}")
        from fabriclab.controller.policy import make_policy

        make_policy(self.policy, self.policy_params)    # an unknown name or parameter fails here

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
