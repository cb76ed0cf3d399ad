"""``switch.yaml``: the software switch's ports, buffer, scheduler and PFC settings.

Every key is optional; ``auto`` (or leaving a key out) derives the value from the formulas
below at the *configured* rate, so a testbed scaled down to 100 Mbit/s keeps the proportions of
a real fabric (every rate scaled by one factor, every time by its inverse; pause quanta follow
the port rate by definition).

    rate: 100M            # default line rate of every port, bit/s
    delay: 0us            # default one-way propagation delay of every port's link
    scale: 1              # the emulated fabric's rate / the configured rate (time scaling): the
                          # headroom's 802.3 Annex 31B allowance is the real speed's
    mtu: 1500             # IP MTU; the largest frame is mtu + 22 B (Ethernet 14, one VLAN tag 4, FCS 4)
    buffer: auto          # total packet buffer, bytes (shared pool + PFC headroom)
    alpha: 0.125          # dynamic-threshold factor: a queue may grow to alpha x free shared buffer
    queue_limit: dynamic  # lossy egress queues: 'dynamic' (alpha) or a static size in bytes
    scheduler: strict     # strict (priority 7 first) | dwrr
    weights: [1, 1, 1, 1, 1, 1, 1, 1]  # dwrr weights per priority; 0 = strict, above all weighted ones
    lossless: [3]         # PFC-protected priorities: never dropped, paused instead
    pfc:
      xoff: auto          # bytes of shared buffer one (ingress port, priority) may hold; or 'dynamic'
      xon: auto           # resume when it falls to this many bytes
      headroom: auto      # per (ingress port, lossless priority), above XOFF
      quanta: 65535       # pause time sent, in quanta of 512 bit times
      response_time: 4ms  # the peer's reaction time to a pause: a software switch or host
                          # reads a backlog of frames sent before the pause reached it
    pfcwd:                # PFC watchdog, as SONiC's (off unless enabled)
      enabled: false
      action: drop        # drop: flush the stormed queue, drop what arrives for it, ignore its
                          # pauses; forward: ignore its pauses only
      detection_time: 200ms    # paused with packets waiting and no dequeue this long: a storm
      restoration_time: 200ms  # no pause frame for it this long: back to normal
      poll_interval: 100ms     # how often the watchdog looks (detection counts whole polls)
      ports: all          # or a list of port numbers
    ports:                # per-port overrides, by port number
      1: {rate: 1G, delay: 10us}

Derived defaults (``max_frame`` = mtu + 22):

* headroom = 2 x rate x delay / 8 + 2 x max_frame + allowance + rate x response_time / 8 — what
  keeps arriving after XOFF: the round trip of the cable, one frame in flight at each end, the
  PHY/MAC response allowance of IEEE 802.3 Annex 31B at the emulated real speed (rate x
  ``scale``; it grows with speed: 60 quanta = 3840 B at 10G, 394 quanta = 25 216 B at 100G, as
  SONiC's buffer calculator uses) and the peer's reaction time (a software switch or host reads
  a backlog of frames sent before the pause reached it: testbed time, not scaled). Source: the
  PFC headroom rule in /work/shared/reference/lossless-ethernet.md (vendor rule MTU_R + MTU_S +
  2·rate·cable delay + the 31B allowance; the HPCC simulator uses 3·rate·one-way delay).
* shared pool = 128 x max_frame per port; buffer = shared pool + headroom of every
  (port, lossless priority). With an explicit ``buffer`` the shared pool is what headroom leaves.
* xoff = alpha x shared / (1 + alpha): the steady state of the dynamic threshold
  T = alpha x (shared - T) with one congested queue (Choudhury & Hahne, "Dynamic queue length
  thresholds for shared-memory packet switches", IEEE/ACM ToN 1998). ``xoff: dynamic`` applies
  T = alpha x free shared buffer live instead.
* xon = xoff - 2 x max_frame (at least 0): hysteresis wide enough that one frame does not toggle it.
  With ``xoff: dynamic`` XON is that same offset below the live threshold.

PFC watchdog timers are the operator's wall-clock settings (SONiC's defaults: 200 ms detection and
restoration), not scaled with the rate: they bound how long a queue may stay frozen, whatever
the link speed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fabriclab.errors import UserError
from fabriclab.units import parse_duration, parse_rate, parse_size

NUM_PRIORITIES = 8
FRAME_OVERHEAD = 22               # Ethernet header + one VLAN tag + FCS, on top of the IP MTU
# IEEE 802.3 Annex 31B PAUSE reaction allowance, in pause quanta (512 bit times), by speed
# (bit/s): a bit count, so bytes = quanta x 64 whatever the testbed rate. Speeds between two
# entries take the higher entry's (conservative); above 100G it grows in proportion (assumption).
RESPONSE_QUANTA = ((100e6, 1), (1e9, 2), (10e9, 60), (40e9, 118), (100e9, 394))


def response_allowance_bytes(real_rate_bps: float) -> int:
    """802.3 Annex 31B's response allowance at ``real_rate_bps``, in bytes."""
    for speed, quanta in RESPONSE_QUANTA:
        if real_rate_bps <= speed:
            return quanta * 64
    return round(RESPONSE_QUANTA[-1][1] * 64 * real_rate_bps / RESPONSE_QUANTA[-1][0])

SHARED_FRAMES_PER_PORT = 128

_TOP_KEYS = {"rate", "delay", "scale", "mtu", "buffer", "alpha", "queue_limit", "scheduler", "weights",
             "lossless", "pfc", "pfcwd", "ports"}
_PFC_KEYS = {"xoff", "xon", "headroom", "quanta", "response_time"}
_PFCWD_KEYS = {"enabled", "action", "detection_time", "restoration_time", "poll_interval", "ports"}
PFCWD_ACTIONS = ("drop", "forward")
_PORT_KEYS = {"rate", "delay"}


@dataclass
class PortOverride:
    rate_bps: int | None = None
    delay_s: float | None = None


@dataclass
class PfcwdConfig:
    """The PFC watchdog (``pfcwd:``); times in seconds, ``ports`` None = every PFC port."""

    action: str = "drop"
    detection_s: float = 0.2
    restoration_s: float = 0.2
    poll_s: float = 0.1
    ports: frozenset[int] | None = None

    def as_dict(self) -> dict:
        return {"action": self.action, "detection_ns": round(self.detection_s * 1e9),
                "restoration_ns": round(self.restoration_s * 1e9), "poll_ns": round(self.poll_s * 1e9),
                "ports": "all" if self.ports is None else sorted(self.ports)}


@dataclass
class SwitchConfig:
    """``switch.yaml`` as parsed and validated; ``None`` means derive it (see the module doc)."""

    rate_bps: int = 100_000_000
    delay_s: float = 0.0
    mtu: int = 1500
    buffer_bytes: int | None = None
    alpha: float = 0.125
    queue_limit_bytes: int | None = None          # None: dynamic threshold
    scheduler: str = "strict"
    weights: tuple[int, ...] = (1,) * NUM_PRIORITIES
    lossless: frozenset[int] = frozenset({3})
    xoff_bytes: int | None = None
    xoff_dynamic: bool = False
    xon_bytes: int | None = None
    headroom_bytes: int | None = None
    pause_quanta: int = 0xFFFF
    # a software peer's pause reaction: switch loop lag p99 1.3-2.8 ms and host pacing error p99
    # 2-5 ms measured on a shared 2-core machine (fidelity monitor); with 1 ms, PFC headrooms
    # overflowed -- once overflow became the drop it is, lossless scenarios lost packets
    response_time_s: float = 4e-3
    scale: float = 1.0                            # real fabric rate / this rate (time scaling)
    pfcwd: PfcwdConfig | None = None              # None: no watchdog
    ports: dict[int, PortOverride] = field(default_factory=dict)

    @property
    def max_frame(self) -> int:
        return self.mtu + FRAME_OVERHEAD

    def port_rate(self, port: int) -> int:
        override = self.ports.get(port)
        return override.rate_bps if override and override.rate_bps else self.rate_bps

    def port_delay_s(self, port: int) -> float:
        override = self.ports.get(port)
        return override.delay_s if override and override.delay_s is not None else self.delay_s

    def port_headroom(self, port: int) -> int:
        """Headroom per lossless priority of ``port``: configured, or from the formula."""
        if self.headroom_bytes is not None:
            return self.headroom_bytes
        rate = self.port_rate(port)
        cable = 2 * rate * self.port_delay_s(port) / 8
        response = rate * self.response_time_s / 8
        allowance = response_allowance_bytes(rate * self.scale)
        return int(cable + 2 * self.max_frame + allowance + response + 0.999)

    def resolve(self, port_numbers: list[int]) -> "ResolvedConfig":
        """Concrete numbers for the data-plane ports ``port_numbers``."""
        headroom = {p: self.port_headroom(p) for p in port_numbers}
        total_headroom = sum(headroom.values()) * len(self.lossless)
        if self.buffer_bytes is None:
            shared = SHARED_FRAMES_PER_PORT * self.max_frame * max(1, len(port_numbers))
        else:
            shared = self.buffer_bytes - total_headroom
            if shared < 2 * self.max_frame:
                raise UserError(f"switch.yaml: buffer {self.buffer_bytes} B leaves {shared} B of shared buffer "
                                f"after {total_headroom} B of PFC headroom; make it larger")
        if self.xoff_dynamic:
            xoff = None
        elif self.xoff_bytes is not None:
            xoff = self.xoff_bytes
        else:
            xoff = int(self.alpha * shared / (1 + self.alpha))
        if xoff is None:
            xon = None
        elif self.xon_bytes is not None:
            xon = self.xon_bytes
        else:
            xon = max(0, xoff - 2 * self.max_frame)
        if xoff is not None and xon >= xoff:
            raise UserError(f"switch.yaml: pfc.xon ({xon} B) must be below pfc.xoff ({xoff} B)")
        ports = {p: PortParams(self.port_rate(p), round(self.port_delay_s(p) * 1e9), headroom[p])
                 for p in port_numbers}
        return ResolvedConfig(config=self, ports=ports, shared_bytes=shared,
                              buffer_bytes=shared + total_headroom, xoff_bytes=xoff, xon_bytes=xon,
                              xon_offset=2 * self.max_frame)


@dataclass
class PortParams:
    rate_bps: int
    delay_ns: int
    headroom_bytes: int


@dataclass
class ResolvedConfig:
    """What the traffic manager runs with: every derived value made concrete."""

    config: SwitchConfig
    ports: dict[int, PortParams]
    shared_bytes: int
    buffer_bytes: int
    xoff_bytes: int | None          # None: dynamic (alpha x free shared buffer)
    xon_bytes: int | None
    xon_offset: int

    def as_dict(self) -> dict:
        c = self.config
        return {
            "buffer_bytes": self.buffer_bytes, "shared_bytes": self.shared_bytes, "alpha": c.alpha,
            "queue_limit": c.queue_limit_bytes if c.queue_limit_bytes is not None else "dynamic",
            "scheduler": c.scheduler, "weights": list(c.weights), "lossless": sorted(c.lossless),
            "xoff_bytes": self.xoff_bytes if self.xoff_bytes is not None else "dynamic",
            "xon_bytes": self.xon_bytes if self.xon_bytes is not None else f"threshold-{self.xon_offset}",
            "pause_quanta": c.pause_quanta,
            "pfcwd": c.pfcwd.as_dict() if c.pfcwd is not None else None,
            "ports": {p: {"rate_bps": v.rate_bps, "delay_ns": v.delay_ns, "headroom_bytes": v.headroom_bytes}
                      for p, v in self.ports.items()},
        }


def _check_keys(mapping: object, allowed: set[str], where: str) -> dict:
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise UserError(f"switch.yaml: {where} must be a mapping, got {type(mapping).__name__}")
    unknown = sorted(str(k) for k in mapping if k not in allowed)
    if unknown:
        raise UserError(f"switch.yaml: unknown key {unknown[0]!r} in {where} (known: {', '.join(sorted(allowed))})")
    return mapping


def _auto(value: object) -> bool:
    return value is None or value == "auto"


def _priority_list(value: object, what: str) -> frozenset[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise UserError(f"switch.yaml: {what} must be a list of priorities 0..7, got {value!r}")
    bad = [v for v in value if not 0 <= v < NUM_PRIORITIES]
    if bad:
        raise UserError(f"switch.yaml: {what}: priority {bad[0]} is not in 0..7")
    return frozenset(value)


def config_from_dict(data: dict) -> SwitchConfig:
    """Validate a parsed ``switch.yaml`` document; raises ``UserError`` with one clear line."""
    data = _check_keys(data, _TOP_KEYS, "the top level")
    cfg = SwitchConfig()
    if "rate" in data:
        cfg.rate_bps = parse_rate(data["rate"], "switch.yaml: rate")
    if "delay" in data:
        cfg.delay_s = parse_duration(data["delay"], "switch.yaml: delay")
    if "scale" in data:
        scale = data["scale"]
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not scale >= 1:
            raise UserError(f"switch.yaml: scale must be a number >= 1, got {scale!r}")
        cfg.scale = float(scale)
    if "mtu" in data:
        mtu = data["mtu"]
        if not isinstance(mtu, int) or isinstance(mtu, bool) or not 68 <= mtu <= 9216:
            raise UserError(f"switch.yaml: mtu must be an integer in 68..9216, got {mtu!r}")
        cfg.mtu = mtu
    if not _auto(data.get("buffer")):
        cfg.buffer_bytes = parse_size(data["buffer"], "switch.yaml: buffer")
    if "alpha" in data:
        alpha = data["alpha"]
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 < alpha <= 64:
            raise UserError(f"switch.yaml: alpha must be a number in (0, 64], got {alpha!r}")
        cfg.alpha = float(alpha)
    if data.get("queue_limit", "dynamic") != "dynamic":
        cfg.queue_limit_bytes = parse_size(data["queue_limit"], "switch.yaml: queue_limit")
    if "scheduler" in data:
        if data["scheduler"] not in ("strict", "dwrr"):
            raise UserError(f"switch.yaml: scheduler must be 'strict' or 'dwrr', got {data['scheduler']!r}")
        cfg.scheduler = data["scheduler"]
    if "weights" in data:
        weights = data["weights"]
        if (not isinstance(weights, list) or len(weights) != NUM_PRIORITIES
                or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 0 for w in weights)):
            raise UserError(f"switch.yaml: weights must be a list of 8 non-negative integers, got {weights!r}")
        if not any(weights):
            raise UserError("switch.yaml: weights: at least one priority needs a weight above 0")
        cfg.weights = tuple(weights)
    if "lossless" in data:
        cfg.lossless = _priority_list(data["lossless"], "lossless")
    pfc = _check_keys(data.get("pfc"), _PFC_KEYS, "pfc")
    if pfc.get("xoff") == "dynamic":
        cfg.xoff_dynamic = True
    elif not _auto(pfc.get("xoff")):
        cfg.xoff_bytes = parse_size(pfc["xoff"], "switch.yaml: pfc.xoff")
    if not _auto(pfc.get("xon")):
        if cfg.xoff_dynamic:
            raise UserError("switch.yaml: pfc.xon cannot be set with 'xoff: dynamic' (it follows the threshold)")
        cfg.xon_bytes = parse_size(pfc["xon"], "switch.yaml: pfc.xon")
    if not _auto(pfc.get("headroom")):
        cfg.headroom_bytes = parse_size(pfc["headroom"], "switch.yaml: pfc.headroom")
    if "quanta" in pfc:
        quanta = pfc["quanta"]
        if not isinstance(quanta, int) or isinstance(quanta, bool) or not 1 <= quanta <= 0xFFFF:
            raise UserError(f"switch.yaml: pfc.quanta must be an integer in 1..65535, got {quanta!r}")
        cfg.pause_quanta = quanta
    if "response_time" in pfc:
        cfg.response_time_s = parse_duration(pfc["response_time"], "switch.yaml: pfc.response_time")
    cfg.pfcwd = _pfcwd(_check_keys(data.get("pfcwd"), _PFCWD_KEYS, "pfcwd"))
    ports = data.get("ports") or {}
    if not isinstance(ports, dict):
        raise UserError("switch.yaml: ports must map port numbers to {rate, delay}")
    for number, settings in ports.items():
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise UserError(f"switch.yaml: ports: {number!r} is not a port number")
        settings = _check_keys(settings, _PORT_KEYS, f"ports.{number}")
        cfg.ports[number] = PortOverride(
            parse_rate(settings["rate"], f"switch.yaml: ports.{number}.rate") if "rate" in settings else None,
            parse_duration(settings["delay"], f"switch.yaml: ports.{number}.delay") if "delay" in settings else None)
    return cfg


def _pfcwd(data: dict) -> PfcwdConfig | None:
    enabled = data.get("enabled", False)
    if not isinstance(enabled, bool):
        raise UserError(f"switch.yaml: pfcwd.enabled must be true or false, got {enabled!r}")
    if not enabled:
        return None
    wd = PfcwdConfig()
    if "action" in data:
        if data["action"] not in PFCWD_ACTIONS:
            raise UserError(f"switch.yaml: pfcwd.action must be 'drop' or 'forward', got {data['action']!r}")
        wd.action = data["action"]
    for key, attr in (("detection_time", "detection_s"), ("restoration_time", "restoration_s"),
                      ("poll_interval", "poll_s")):
        if key in data:
            value = parse_duration(data[key], f"switch.yaml: pfcwd.{key}")
            if value <= 0:
                raise UserError(f"switch.yaml: pfcwd.{key} must be above 0")
            setattr(wd, attr, value)
    if wd.poll_s > min(wd.detection_s, wd.restoration_s):
        raise UserError(f"switch.yaml: pfcwd.poll_interval ({wd.poll_s:g} s) must not exceed "
                        "detection_time and restoration_time")
    ports = data.get("ports", "all")
    if ports != "all":
        if (not isinstance(ports, list) or
                not all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in ports)):
            raise UserError(f"switch.yaml: pfcwd.ports must be 'all' or a list of port numbers, got {ports!r}")
        wd.ports = frozenset(ports)
    return wd


def load_config(path: str | Path | None) -> SwitchConfig:
    """Read and validate ``switch.yaml``; ``None`` gives the defaults."""
    if path is None:
        return SwitchConfig()
    import yaml

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UserError(f"cannot read switch config {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"switch config {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return config_from_dict(data or {})
