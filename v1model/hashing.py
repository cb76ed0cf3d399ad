"""v1model hash algorithms and checksums, computed the way BMv2 computes them.

BMv2 (``src/bm_sim/calculations.cpp``) first deparses the field list into a byte buffer:
fields are concatenated bit-wise, most significant bit first, and the buffer is padded with
zero bits at the end up to a byte boundary. The algorithm then runs over that buffer:

* ``crc16``   CRC-16/ARC: poly 0x8005, reflected in and out, init 0, xorout 0
* ``crc32``   CRC-32/IEEE as zlib: poly 0x04c11db7, reflected, init and xorout 0xffffffff
* ``crc16_custom`` / ``crc32_custom``: parameterised CRCs whose defaults equal crc16 / crc32
* ``csum16``  16-bit one's-complement Internet checksum (RFC 1071) of the buffer, zero-padded
* ``xor16``   XOR of the buffer taken as big-endian 16-bit words (last one zero-padded)
* ``identity`` the first 8 bytes of the buffer as a big-endian integer
* ``random``  a pseudo-random number (p4c maps it to BMv2's ``random`` hash)

``v1model_hash`` applies simple_switch's semantics of the ``hash(out, algo, base, data, max)``
extern: ``base + (h % max)``, truncated to the output's width.
"""
from __future__ import annotations

import random as _random
import zlib
from dataclasses import dataclass
from functools import lru_cache

ALGORITHMS = ("crc16", "crc32", "crc16_custom", "crc32_custom", "csum16", "xor16", "identity", "random")


def pack_fields(fields) -> bytes:
    """Concatenate ``(value, bitwidth)`` pairs MSB-first and zero-pad to a byte boundary."""
    acc = 0
    nbits = 0
    for value, width in fields:
        acc = (acc << width) | (value & ((1 << width) - 1))
        nbits += width
    pad = -nbits % 8
    return (acc << pad).to_bytes((nbits + pad) // 8, "big")


def _reflect(value: int, width: int) -> int:
    out = 0
    for _ in range(width):
        out = (out << 1) | (value & 1)
        value >>= 1
    return out


@dataclass(frozen=True)
class CrcConfig:
    """A CRC's Rocksoft-model parameters, as BMv2's ``crc_config_t``."""
    width: int
    polynomial: int
    initial_remainder: int
    final_xor_value: int
    data_reflected: bool
    remainder_reflected: bool


CRC16_DEFAULT = CrcConfig(16, 0x8005, 0x0000, 0x0000, True, True)
CRC32_DEFAULT = CrcConfig(32, 0x04C11DB7, 0xFFFFFFFF, 0xFFFFFFFF, True, True)


@lru_cache(maxsize=32)
def _crc_table(width: int, polynomial: int) -> tuple[int, ...]:
    top = 1 << (width - 1)
    mask = (1 << width) - 1
    table = []
    for dividend in range(256):
        rem = dividend << (width - 8)
        for _ in range(8):
            rem = ((rem << 1) ^ polynomial) if rem & top else (rem << 1)
        table.append(rem & mask)
    return tuple(table)


_REFLECT8 = tuple(_reflect(b, 8) for b in range(256))


def crc(data: bytes, config: CrcConfig) -> int:
    """Table-driven MSB-first CRC exactly as BMv2's ``crc_custom`` runs it."""
    width = config.width
    mask = (1 << width) - 1
    table = _crc_table(width, config.polynomial)
    shift = width - 8
    rem = config.initial_remainder
    for byte in data:
        if config.data_reflected:
            byte = _REFLECT8[byte]
        rem = (table[(byte ^ (rem >> shift)) & 0xFF] ^ (rem << 8)) & mask
    if config.remainder_reflected:
        rem = _reflect(rem, width)
    return rem ^ config.final_xor_value


def crc16(data: bytes) -> int:
    return crc(data, CRC16_DEFAULT)


def crc32(data: bytes) -> int:
    # zlib's CRC-32 is the same function as BMv2's crc32, and much faster than Python.
    return zlib.crc32(data)


def csum16(data: bytes) -> int:
    """One's-complement sum of 16-bit big-endian words, complemented (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_checksum(header: bytes) -> int:
    """The IPv4 header checksum of ``header`` (its checksum field must be zero)."""
    return csum16(header)


def xor16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    out = 0
    for i in range(0, len(data), 2):
        out ^= (data[i] << 8) | data[i + 1]
    return out


def identity(data: bytes) -> int:
    return int.from_bytes(data[:8], "big")


class HashUnit:
    """All v1model algorithms with per-instance custom CRC parameters and random state."""

    def __init__(self, seed: int | None = None):
        self._random = _random.Random(seed)
        self.reset()

    def reset(self) -> None:
        """Back to the default custom-CRC parameters (those of crc16 and crc32)."""
        self.crc16_custom = CRC16_DEFAULT
        self.crc32_custom = CRC32_DEFAULT

    def set_crc16_parameters(self, polynomial: int, initial_remainder: int, final_xor_value: int,
                             data_reflected: bool, remainder_reflected: bool) -> None:
        self.crc16_custom = CrcConfig(16, polynomial, initial_remainder, final_xor_value,
                                      data_reflected, remainder_reflected)

    def set_crc32_parameters(self, polynomial: int, initial_remainder: int, final_xor_value: int,
                             data_reflected: bool, remainder_reflected: bool) -> None:
        self.crc32_custom = CrcConfig(32, polynomial, initial_remainder, final_xor_value,
                                      data_reflected, remainder_reflected)

    def compute(self, algorithm: str, data: bytes) -> int:
        """The raw hash of ``data`` (an already packed buffer)."""
        if algorithm == "crc16":
            return crc16(data)
        if algorithm == "crc32":
            return zlib.crc32(data)
        if algorithm == "crc16_custom":
            return crc(data, self.crc16_custom)
        if algorithm == "crc32_custom":
            return crc(data, self.crc32_custom)
        if algorithm == "csum16":
            return csum16(data)
        if algorithm == "xor16":
            return xor16(data)
        if algorithm == "identity":
            return identity(data)
        if algorithm == "random":
            return self._random.getrandbits(32)
        raise ValueError(f"unknown hash algorithm {algorithm!r} (known: {', '.join(ALGORITHMS)})")

    def hash_fields(self, algorithm: str, fields) -> int:
        """The raw hash of ``(value, bitwidth)`` pairs, packed as BMv2 packs field lists."""
        return self.compute(algorithm, pack_fields(fields))


DEFAULT_HASH_UNIT = HashUnit()


def v1model_hash(algorithm: str, fields, base: int, max_value: int, out_width: int,
                 unit: HashUnit = DEFAULT_HASH_UNIT) -> int:
    """The value v1model's ``hash(out O, algo, T base, D data, M max)`` writes to O.

    p4c's BMv2 back-end emits ``modify_field_with_hash_based_offset(O, base, calc, max)``
    which computes ``base + h % max``; with ``max == 0`` BMv2 would divide by zero, so
    (as p4c warns) we leave the hash unreduced. The result is truncated to O's width.
    """
    h = unit.hash_fields(algorithm, fields)
    value = base + (h % max_value) if max_value else h
    return value & ((1 << out_width) - 1)
