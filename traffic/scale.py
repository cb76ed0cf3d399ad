"""Time scaling: run a real fabric's dynamics on a slow software testbed.

One factor ``scale`` maps the real fabric onto the testbed:

    testbed rate = real rate / scale          (100 Gbit/s at scale 1000 -> 100 Mbit/s)
    testbed time = real time × scale          (DCQCN's 55 µs timer -> 55 ms)
    testbed size = real size                  (bytes are rate × time, so they are invariant:
                                               buffers, Kmin/Kmax, DCQCN's byte counter, MTU)

So every bandwidth-delay product, every queue in bytes and every "how many packets per timer
period" stays the same, and the dimensionless behaviour (rate cuts per RTT, queue depth in
packets, pause quanta, which follow the port rate by definition) is preserved.

Default: real links of 100 Gbit/s run as 100 Mbit/s veths, i.e. scale = 1000 — what one Python
switch process forwards on a 2-core machine.
"""
from __future__ import annotations

from dataclasses import dataclass

from fabriclab.errors import UserError

DEFAULT_REAL_LINK_BPS = 100e9
DEFAULT_TESTBED_LINK_BPS = 100e6
DEFAULT_SCALE = DEFAULT_REAL_LINK_BPS / DEFAULT_TESTBED_LINK_BPS


@dataclass(frozen=True)
class TimeScale:
    """Maps real-fabric rates and time constants to testbed ones (see the module docstring)."""

    scale: float = DEFAULT_SCALE

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise UserError(f"scale must be positive, got {self.scale!r}")

    @classmethod
    def from_rates(cls, real_link_bps: float, testbed_link_bps: float) -> "TimeScale":
        """The scale that turns a real link rate into the testbed's link rate."""
        if real_link_bps <= 0 or testbed_link_bps <= 0:
            raise UserError("link rates must be positive")
        return cls(real_link_bps / testbed_link_bps)

    def rate(self, real_bps: float) -> float:
        return real_bps / self.scale

    def time(self, real_seconds: float) -> float:
        return real_seconds * self.scale

    def size(self, real_bytes: float) -> float:
        return real_bytes

    def real_rate(self, testbed_bps: float) -> float:
        """A measured testbed rate expressed at real-fabric speed (for reports)."""
        return testbed_bps * self.scale

    def real_time(self, testbed_seconds: float) -> float:
        return testbed_seconds / self.scale
