"""Human units for rates, sizes and durations, as users write them in YAML and on the CLI.

Rates are bit/s with SI prefixes (``100M`` = 100 Mbit/s, as Mininet and iperf write them);
sizes are bytes with SI (``KB`` = 1000) or IEC (``KiB`` = 1024) prefixes; durations accept
``s``, ``ms``, ``us``/``µs`` and ``ns``.
"""
from __future__ import annotations

import re

from fabriclab.errors import UserError

_SI = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_IEC = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}

_RATE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kKMGT]?)(?:bit/s|bps|b/s|bit)?\s*$")
_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(Ki|Mi|Gi|[kKMGT]?)B?\s*$")
_TIME_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(s|ms|us|µs|ns)\s*$")


def parse_rate(value: str | int | float, what: str = "rate") -> int:
    """'100M' -> 100_000_000 bit/s."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        match = _RATE_RE.match(str(value))
        if not match:
            raise UserError(f"{what}: expected a rate like '100M' or '1G', got {value!r}")
        number = float(match.group(1)) * _SI[match.group(2)]
    if number <= 0:
        raise UserError(f"{what}: must be positive, got {value!r}")
    return int(number)


def parse_size(value: str | int | float, what: str = "size") -> int:
    """'8MB' -> 8_000_000 bytes; '64KiB' -> 65536 bytes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise UserError(f"{what}: expected a size like '8MB' or '64KiB', got {value!r}")
        prefix = match.group(2)
        number = float(match.group(1)) * (_IEC[prefix] if prefix in _IEC else _SI[prefix])
    if number < 0:
        raise UserError(f"{what}: must not be negative, got {value!r}")
    return int(number)


def parse_duration(value: str | int | float, what: str = "duration") -> float:
    """'55us' -> 5.5e-05 seconds; a bare number is seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _TIME_RE.match(str(value))
        if not match:
            raise UserError(f"{what}: expected a duration like '2s', '50ms' or '55us', got {value!r}")
        seconds = float(match.group(1)) * _TIME[match.group(2)]
    if seconds < 0:
        raise UserError(f"{what}: must not be negative, got {value!r}")
    return seconds


def format_rate(bits_per_second: float) -> str:
    for prefix, factor in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if bits_per_second >= factor:
            return f"{bits_per_second / factor:g}{prefix}"
    return f"{bits_per_second:g}"
