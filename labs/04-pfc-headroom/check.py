"""Lab 04 checker: with your switch.yaml, a 2:1 overload of priority 3 is paused, not dropped —
fabriclab's own traffic manager between two PFC-honouring senders, in virtual time (see
fabriclab/labs/pfc_bench.py for the bench: 10 Gbit/s, 5 µs cables, 1500 B MTU)."""
from __future__ import annotations

import yaml

from fabriclab.errors import UserError
from fabriclab.labs import pfc_bench
from fabriclab.labs.checks import Check


def checks(run):
    path = run.file("switch.yaml")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    out = pfc_bench.run(data)
    dropped = sum(out.drops.values())
    yield Check("priority 3 is lossless: no RoCE frame dropped", dropped == 0 and out.headroom_overflows == 0,
                f"{dropped} of {out.sent} frames dropped, headroom overflowed {out.headroom_overflows} times "
                f"(lossless priorities {list(out.lossless)})")
    yield Check("the switch paused the senders: 802.1Qbb XOFF and XON for priority 3 on the wire",
                out.xoff > 0 and out.xon > 0, f"{out.xoff} XOFF, {out.xon} XON decoded")
    yield Check("the headroom holds what arrives after XOFF", out.max_headroom <= out.headroom and out.max_headroom > 0,
                f"used at most {out.max_headroom} B of {out.headroom} B")
    yield Check("the headroom is not oversized: at most 4x what it had to hold",
                0 < out.max_headroom and out.headroom <= 4 * out.max_headroom,
                f"{out.headroom} B configured, {out.max_headroom} B used")
    busy = out.busy_ns / out.elapsed_ns if out.elapsed_ns else 0.0
    yield Check("the receiver's link stays busy while the senders are paused (at least 90 %)", busy >= 0.9,
                f"{busy:.1%} busy")
