"""Registers, counters and meters: the stateful v1model externs, indirect and direct.

Control-plane accessors (``read``/``write``/``set_config``...) check indices and raise
``StateError("OUT_OF_RANGE")``; the data-plane accessors (``dp_read``/``dp_write``/``count``/
``execute``) behave like simple_switch instead: an out-of-range register read returns 0 and a
write, count or meter execution out of range is ignored (GREEN for meters).
"""
from __future__ import annotations

from dataclasses import dataclass

from fabriclab.compiler.program import CounterInfo, MeterInfo, RegisterInfo
from fabriclab.v1model.tables import StateError

GREEN, YELLOW, RED = 0, 1, 2   # v1model MeterColor_t values, as BMv2 returns them


def _check_index(name: str, index: int, size: int) -> None:
    if not 0 <= index < size:
        raise StateError("OUT_OF_RANGE", f"{name}: index {index} out of range [0, {size})")


class Register:
    """``register<T>(size)``: values are stored modulo 2**bitwidth (two's complement for int<W>)."""

    def __init__(self, info: RegisterInfo):
        self.info = info
        self.mask = (1 << info.bitwidth) - 1
        self.values = [0] * info.size

    def _to_user(self, raw: int) -> int:
        if self.info.signed and raw >> (self.info.bitwidth - 1):
            return raw - (1 << self.info.bitwidth)
        return raw

    def read(self, index: int) -> int:
        _check_index(self.info.name, index, self.info.size)
        return self._to_user(self.values[index])

    def write(self, index: int, value: int) -> None:
        _check_index(self.info.name, index, self.info.size)
        self.values[index] = value & self.mask

    def reset(self) -> None:
        self.values[:] = [0] * self.info.size    # in place: the native engine holds the list

    def dp_read(self, index: int) -> int:
        if 0 <= index < self.info.size:
            return self._to_user(self.values[index])
        return 0

    def dp_write(self, index: int, value: int) -> None:
        if 0 <= index < self.info.size:
            self.values[index] = value & self.mask


class Counter:
    """``counter(size, type)``: a packet and a byte count per index (unit decides what is shown)."""

    def __init__(self, info: CounterInfo):
        self.info = info
        self.packets = [0] * info.size
        self.bytes = [0] * info.size

    def count(self, index: int, nbytes: int) -> None:
        if 0 <= index < self.info.size:
            self.packets[index] += 1
            self.bytes[index] += nbytes

    def read(self, index: int) -> tuple[int, int]:
        """(packets, bytes) at ``index``."""
        _check_index(self.info.name, index, self.info.size)
        return self.packets[index], self.bytes[index]

    def write(self, index: int, packets: int, nbytes: int) -> None:
        _check_index(self.info.name, index, self.info.size)
        self.packets[index] = packets
        self.bytes[index] = nbytes

    def reset(self) -> None:
        # in place: the native engine holds the lists
        self.packets[:] = [0] * self.info.size
        self.bytes[:] = [0] * self.info.size


@dataclass
class MeterBucket:
    rate_per_us: float     # tokens (packets or bytes) added per microsecond
    burst: int             # bucket depth
    tokens: int
    tokens_last: int = 0   # tokens credited since the time origin, as BMv2 counts them


class MeterCell:
    """One two-rate three-color marker (RFC 2698, color-blind), as BMv2's ``Meter`` runs it.

    BMv2 keeps the buckets ordered peak first: if the peak bucket lacks the packet's size the
    packet is RED (nothing is taken); otherwise the peak bucket pays, and then the committed
    bucket decides YELLOW (it lacks tokens) or GREEN (it pays too). Tokens are credited from
    a single time origin, floor(µs since origin * rate), so rounding errors do not accumulate.
    """

    __slots__ = ("buckets", "config")

    def __init__(self):
        self.buckets: list[MeterBucket] | None = None   # None: unconfigured, always GREEN
        self.config: tuple[int, int, int, int] | None = None

    def set_rates(self, committed: tuple[float, int], peak: tuple[float, int]) -> None:
        """Rates in units/µs and bursts in units, as ``simple_switch_CLI meter_set_rates``."""
        (cir, cburst), (pir, pburst) = committed, peak
        if cir > pir:
            raise StateError("INVALID_ARGUMENT", f"committed rate {cir} above peak rate {pir}")
        self.buckets = [MeterBucket(pir, pburst, pburst), MeterBucket(cir, cburst, cburst)]
        self.config = (round(cir * 1e6), cburst, round(pir * 1e6), pburst)

    def set_config(self, cir: int, cburst: int, pir: int, pburst: int) -> None:
        """P4Runtime ``MeterConfig``: rates in units per second, bursts in units."""
        self.set_rates((cir / 1e6, cburst), (pir / 1e6, pburst))
        self.config = (cir, cburst, pir, pburst)

    def reset(self) -> None:
        self.buckets = None
        self.config = None

    def execute(self, amount: int, now_us: int) -> int:
        if self.buckets is None:
            return GREEN
        color = GREEN
        for bucket, miss_color in zip(self.buckets, (RED, YELLOW)):
            credited = int(now_us * bucket.rate_per_us)
            if credited > bucket.tokens_last:
                bucket.tokens = min(bucket.tokens + credited - bucket.tokens_last, bucket.burst)
                bucket.tokens_last = credited
            if bucket.tokens < amount:
                color = miss_color
                break
            bucket.tokens -= amount
        return color


class Meter:
    """``meter(size, type)``: an array of two-rate three-color markers."""

    def __init__(self, info: MeterInfo):
        self.info = info
        self.by_packets = info.unit == "packets"
        self.cells = [MeterCell() for _ in range(info.size)]

    def execute(self, index: int, nbytes: int, now_us: int) -> int:
        """The color of a packet of ``nbytes`` at ``now_us`` (GREEN when index is out of range)."""
        if 0 <= index < self.info.size:
            return self.cells[index].execute(1 if self.by_packets else nbytes, now_us)
        return GREEN

    def set_config(self, index: int, cir: int, cburst: int, pir: int, pburst: int) -> None:
        _check_index(self.info.name, index, self.info.size)
        self.cells[index].set_config(cir, cburst, pir, pburst)

    def set_rates(self, index: int, committed: tuple[float, int], peak: tuple[float, int]) -> None:
        _check_index(self.info.name, index, self.info.size)
        self.cells[index].set_rates(committed, peak)

    def get_config(self, index: int) -> tuple[int, int, int, int] | None:
        _check_index(self.info.name, index, self.info.size)
        return self.cells[index].config

    def reset_config(self, index: int) -> None:
        _check_index(self.info.name, index, self.info.size)
        self.cells[index].reset()

    def reset(self) -> None:
        self.cells = [MeterCell() for _ in range(self.info.size)]


def execute_direct_meter(entry, unit: str, nbytes: int, now_us: int) -> int:
    """Run the direct meter attached to a table entry (configured through ``entry.meter``)."""
    if entry.meter is None:
        return GREEN
    cell = entry.meter_cell
    config = tuple(entry.meter)
    if cell is None or cell.config != config:   # first use, or reconfigured by the controller
        cell = MeterCell()
        cell.set_config(*config)
        entry.meter_cell = cell
    return cell.execute(1 if unit == "packets" else nbytes, now_us)
