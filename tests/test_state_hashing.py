"""v1model hash algorithms against published check values and BMv2's field packing."""
import zlib

from hypothesis import given, strategies as st

from fabriclab.v1model import hashing
from fabriclab.v1model.hashing import HashUnit, crc16, crc32, csum16, pack_fields, v1model_hash

CHECK = b"123456789"   # the CRC catalogue's check input


def test_crc_check_values():
    assert crc16(CHECK) == 0xBB3D          # CRC-16/ARC, BMv2's crc16
    assert crc32(CHECK) == 0xCBF43926      # CRC-32/ISO-HDLC, BMv2's crc32
    unit = HashUnit()
    assert unit.compute("crc16_custom", CHECK) == 0xBB3D   # custom CRCs default to crc16/crc32
    assert unit.compute("crc32_custom", CHECK) == 0xCBF43926


def test_custom_crc_parameters_change_the_algorithm():
    unit = HashUnit()
    unit.set_crc32_parameters(0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, True, True)   # CRC-32C
    assert unit.compute("crc32_custom", CHECK) == 0xE3069283
    unit.set_crc16_parameters(0x1021, 0xFFFF, 0x0000, False, False)             # CRC-16/CCITT-FALSE
    assert unit.compute("crc16_custom", CHECK) == 0x29B1
    assert HashUnit().compute("crc16_custom", CHECK) == 0xBB3D    # per-instance parameters


@given(st.binary(max_size=64))
def test_table_driven_crc32_equals_zlib(data):
    assert hashing.crc(data, hashing.CRC32_DEFAULT) == zlib.crc32(data)


def test_internet_checksum_of_a_known_ipv4_header():
    header = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert hashing.ipv4_checksum(header) == 0xB861
    with_sum = header[:10] + (0xB861).to_bytes(2, "big") + header[12:]
    assert csum16(with_sum) == 0   # a correct header sums to 0xffff


def test_csum16_pads_an_odd_length_with_a_zero_byte():
    assert csum16(b"\x01") == csum16(b"\x01\x00") == 0xFEFF


def test_xor16_and_identity():
    assert hashing.xor16(bytes.fromhex("1234abcd")) == 0x1234 ^ 0xABCD
    assert hashing.xor16(bytes.fromhex("123456")) == 0x1234 ^ 0x5600
    assert hashing.identity(bytes.fromhex("0a000001")) == 0x0A000001
    assert hashing.identity(bytes(range(1, 11))) == int.from_bytes(bytes(range(1, 9)), "big")


def test_fields_are_packed_msb_first_and_padded_at_the_end():
    # 1 + 3 + 4 + 2 = 10 bits: 1 000 1111 11 -> 1000 1111 11(00 0000)
    assert pack_fields([(1, 1), (0, 3), (0xF, 4), (3, 2)]) == bytes([0x8F, 0xC0])
    assert pack_fields([(0x0A000001, 32), (0x0A000002, 32)]) == bytes.fromhex("0a0000010a000002")
    assert pack_fields([(0x1FF, 8)]) == b"\xff"   # values are cut to their width


def test_v1model_hash_is_base_plus_hash_modulo_max():
    fields = [(0x0A000001, 32), (0x0A000002, 32), (6, 8)]
    h = crc16(pack_fields(fields))
    assert v1model_hash("crc16", fields, 0, 4, 16) == h % 4
    assert v1model_hash("crc16", fields, 100, 7, 16) == 100 + h % 7
    assert v1model_hash("crc32", fields, 0, 0, 8) == crc32(pack_fields(fields)) & 0xFF


def test_random_is_reproducible_with_a_seed():
    a, b = HashUnit(seed=7), HashUnit(seed=7)
    assert [a.compute("random", b"") for _ in range(5)] == [b.compute("random", b"") for _ in range(5)]
