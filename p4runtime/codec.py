"""What the P4Runtime server and client both speak beyond the protobufs: canonical
bytestrings (P4Runtime spec 8.4) and fabriclab's ``p4_device_config`` (the P4 source itself,
with its local includes, so a device compiles what it is given as simple_switch_grpc loads JSON).
"""
from __future__ import annotations

import json
import os
import re

DEVICE_CONFIG_FORMAT = "fabriclab-p4-source-v1"


def encode_int(value: int) -> bytes:
    """The canonical bytestring of a non-negative int: shortest big-endian, 0 -> b'\\x00'."""
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def pack_device_config(p4_path: str, defines: dict[str, str] | None = None) -> bytes:
    """The ``p4_device_config`` for a P4 file: its text plus every local ``#include "..."``,
    named relative to the folder that holds them all (so ``../common/x.p4`` works too)."""
    found: dict[str, str] = {}   # absolute path -> text
    pending = [os.path.abspath(p4_path)]
    while pending:
        path = os.path.normpath(pending.pop())
        if path in found or not os.path.isfile(path):
            continue  # a missing one is a system include (e.g. "v1model.p4"): the compiler has it
        with open(path, encoding="utf-8") as f:
            found[path] = f.read()
        here = os.path.dirname(path)
        pending.extend(os.path.join(here, inc) for inc in _INCLUDE.findall(found[path]))
    root = os.path.commonpath([os.path.dirname(path) for path in found])
    doc = {"format": DEVICE_CONFIG_FORMAT, "main": os.path.relpath(os.path.abspath(p4_path), root),
           "files": {os.path.relpath(path, root): text for path, text in found.items()},
           "defines": dict(defines or {})}
    return json.dumps(doc, sort_keys=True).encode()
