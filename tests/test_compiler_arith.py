"""Property test: the generated code's arithmetic equals Python ints reduced to P4 widths.

One program per width W computes every operator on two bit<W> operands (and their int<W>
reinterpretations) taken from the packet, and writes the results into an output header; the
test decodes it and compares with a reference computed here from the P4_16 spec (8.5-8.9):
bit<W> wraps modulo 2**W, int<W> wraps in two's complement, |+| |-| saturate, shifts by W
or more give 0 (or the sign for signed >>), casts truncate or extend.
"""
from __future__ import annotations

import functools

from hypothesis import given, settings, strategies as st

from fabriclab.compiler.driver import compile_source
from fabriclab.v1model.loader import instantiate

WIDTHS = (2, 5, 8, 13, 16, 31, 32, 48, 64)    # the corner-case sweep; hypothesis draws any 2..64

# (output field, its type as a function of W, P4 expression)
OPS = [
    ("add", "bit<{W}>", "a + b"),
    ("sub", "bit<{W}>", "a - b"),
    ("mul", "bit<{W}>", "a * b"),
    ("sadd", "bit<{W}>", "a |+| b"),
    ("ssub", "bit<{W}>", "a |-| b"),
    ("shl", "bit<{W}>", "a << hdr.i.sh"),
    ("shr", "bit<{W}>", "a >> hdr.i.sh"),
    ("band", "bit<{W}>", "a & b"),
    ("bor", "bit<{W}>", "a | b"),
    ("bxor", "bit<{W}>", "a ^ b"),
    ("bnot", "bit<{W}>", "~a"),
    ("neg", "bit<{W}>", "-a"),
    ("iadd", "int<{W}>", "x + y"),
    ("isub", "int<{W}>", "x - y"),
    ("imul", "int<{W}>", "x * y"),
    ("isadd", "int<{W}>", "x |+| y"),
    ("issub", "int<{W}>", "x |-| y"),
    ("ishr", "int<{W}>", "x >> hdr.i.sh"),
    ("ishl", "int<{W}>", "x << hdr.i.sh"),
    ("ineg", "int<{W}>", "-x"),
    ("cat", "bit<{W2}>", "a ++ b"),
    ("hi", "bit<{H}>", "a[{W1}:{L}]"),
    ("widen", "bit<{W5}>", "(bit<{W5}>)a"),
    ("narrow", "bit<{N}>", "(bit<{N}>)a"),
    ("sext", "int<{W5}>", "(int<{W5}>)x"),
    ("u2s", "int<{N}>", "(int<{N}>)a"),
    ("s2u", "bit<{W}>", "(bit<{W}>)(x - y)"),
    ("lt", "bit<1>", "(bit<1>)(a < b)"),
    ("ilt", "bit<1>", "(bit<1>)(x < y)"),
    ("tern", "bit<{W}>", "a >= b ? a : b"),
    ("tern2", "bit<{W}>", "a > b ? 1 : 2"),
    ("div", "bit<{W}>", "a / b"),
    ("mod", "bit<{W}>", "a % b"),
]


def params(w: int) -> dict:
    low = w // 3
    return {"W": w, "W2": 2 * w, "W1": w - 1, "L": low, "H": w - low, "W5": w + 5, "N": max(2, w // 2)}


def field_width(type_text: str, w: int) -> tuple[int, bool]:
    text = type_text.format(**params(w))
    return int(text[text.index("<") + 1:-1]), text.startswith("int")


def program_text(w: int) -> str:
    p = params(w)
    in_bits = 2 * w + 8
    out_fields = [(name, t.format(**p), expr.format(**p)) for name, t, expr in OPS]
    out_bits = sum(field_width(t, w)[0] for _, t, _ in OPS)
    pad_in, pad_out = -in_bits % 8, -out_bits % 8
    decl_out = "\n".join(f"    {t} {name};" for name, t, _ in out_fields)
    body = "\n".join(f"        hdr.o.{name} = {expr};" for name, _, expr in out_fields)
    return f"""
#include <core.p4>
#include <v1model.p4>
header in_t {{ bit<{w}> a; bit<{w}> b; bit<8> sh;{f' bit<{pad_in}> pad;' if pad_in else ''} }}
header out_t {{
{decl_out}
{f'    bit<{pad_out}> pad;' if pad_out else ''}
}}
struct headers_t {{ in_t i; out_t o; }}
struct meta_t {{ }}
parser P(packet_in pkt, out headers_t hdr, inout meta_t m, inout standard_metadata_t sm) {{
    state start {{ pkt.extract(hdr.i); transition accept; }}
}}
control VC(inout headers_t hdr, inout meta_t m) {{ apply {{ }} }}
control Ing(inout headers_t hdr, inout meta_t m, inout standard_metadata_t sm) {{
    apply {{
        bit<{w}> a = hdr.i.a;
        bit<{w}> b = hdr.i.b;
        int<{w}> x = (int<{w}>)a;
        int<{w}> y = (int<{w}>)b;
        hdr.o.setValid();
{body}
        sm.egress_spec = 1;
    }}
}}
control Eg(inout headers_t hdr, inout meta_t m, inout standard_metadata_t sm) {{ apply {{ }} }}
control CC(inout headers_t hdr, inout meta_t m) {{ apply {{ }} }}
control Dep(packet_out pkt, in headers_t hdr) {{ apply {{ pkt.emit(hdr.i); pkt.emit(hdr.o); }} }}
V1Switch(P(), VC(), Ing(), Eg(), CC(), Dep()) main;
"""


@functools.lru_cache(maxsize=None)
def pipeline(w: int):
    return instantiate(compile_source(program_text(w), f"arith{w}"))


def wrap(v: int, width: int, signed: bool) -> int:
    v &= (1 << width) - 1
    if signed and v >> (width - 1):
        v -= 1 << width
    return v


def reference(w: int, a: int, b: int, sh: int) -> dict[str, int]:
    """Every output as P4_16 defines it, with plain Python ints."""
    p = params(w)
    m = (1 << w) - 1
    x, y = wrap(a, w, True), wrap(b, w, True)
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    return {
        "add": (a + b) & m, "sub": (a - b) & m, "mul": (a * b) & m,
        "sadd": min(a + b, m), "ssub": max(a - b, 0),
        "shl": (a << sh) & m, "shr": a >> sh,
        "band": a & b, "bor": a | b, "bxor": a ^ b, "bnot": ~a & m, "neg": -a & m,
        "iadd": wrap(x + y, w, True), "isub": wrap(x - y, w, True), "imul": wrap(x * y, w, True),
        "isadd": min(max(x + y, lo), hi), "issub": min(max(x - y, lo), hi),
        "ishr": x >> sh, "ishl": wrap(x << sh, w, True), "ineg": wrap(-x, w, True),
        "cat": (a << w) | b,
        "hi": (a >> p["L"]) & ((1 << p["H"]) - 1),
        "widen": a, "narrow": a & ((1 << p["N"]) - 1),
        "sext": x, "u2s": wrap(a, p["N"], True), "s2u": (x - y) & m,
        "lt": int(a < b), "ilt": int(x < y), "tern": a if a >= b else b,
        "tern2": (1 if a > b else 2) & m,
        "div": a // b if b else 0, "mod": a % b if b else 0,   # x / 0 is ours to define
    }


def decode(w: int, data: bytes) -> dict[str, int]:
    in_bytes = (2 * w + 8 + 7) // 8
    out = data[in_bytes:]
    bits = int.from_bytes(out, "big")
    total = len(out) * 8
    values = {}
    for name, t, _ in OPS:
        width, signed = field_width(t, w)
        total -= width
        values[name] = wrap(bits >> total, width, signed)
    return values


def packet(w: int, a: int, b: int, sh: int) -> bytes:
    in_bits = 2 * w + 8
    pad = -in_bits % 8
    value = ((((a << w) | b) << 8) | sh) << pad
    return value.to_bytes((in_bits + pad) // 8, "big")


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 64), st.data())
def test_operators_match_python_reference(w, data):
    a = data.draw(st.integers(0, (1 << w) - 1), label="a")
    b = data.draw(st.one_of(st.integers(0, (1 << w) - 1), st.just(a)), label="b")
    sh = data.draw(st.integers(0, min(255, w + 3)), label="sh")
    out = pipeline(w).process(packet(w, a, b, sh), 0)
    assert len(out) == 1 and out[0][0] == 1
    assert decode(w, out[0][1]) == reference(w, a, b, sh)


def test_extremes_for_every_width():
    """The corner values hypothesis may not draw: 0, 1, max, and the signed boundaries."""
    for w in WIDTHS:
        m = (1 << w) - 1
        corners = [0, 1, m, m - 1, 1 << (w - 1), (1 << (w - 1)) - 1]
        for a in corners:
            for b in corners:
                for sh in (0, 1, w - 1, w, 255):
                    out = pipeline(w).process(packet(w, a, b, sh), 0)
                    assert decode(w, out[0][1]) == reference(w, a, b, sh), (w, a, b, sh)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 40).flatmap(lambda w: st.tuples(st.integers(0, (1 << w) - 1), st.just(w))),
                max_size=12),
       st.binary(max_size=9))
def test_inline_csum16_equals_the_reference_on_packed_bytes(fields, payload):
    """The generated code's csum16 (on the packed integer) against hashing.csum16."""
    from fabriclab.v1model.runtime import csum16_of
    from fabriclab.v1model.hashing import csum16, pack_fields

    value, nbits = 0, 0
    for v, w in fields:
        value, nbits = (value << w) | v, nbits + w
    assert csum16_of(value, nbits, payload) == csum16(pack_fields(fields) + payload)
