"""Lab 05 checker: the "lossless" variant of your incast.yaml, run on a Mininet fabric, delivers
the 3 -> 1 incast without a drop or a retransmission, the receiver's leaf pausing the senders."""
from __future__ import annotations

from fabriclab.labs.checks import Check
from fabriclab.labs.scenario_check import run_variant_of


def checks(run):
    m = run_variant_of(run, "incast.yaml", "lossless")
    yield Check("the incast completed", m.get("error") is None and m.get("cct_s") is not None,
                m.get("error") or f"in {m['cct_s']:.2f} s")
    drops = m["drops"]
    total = (drops["lossless"] or 0) + (drops["lossy"] or 0)
    yield Check("no packet dropped anywhere in the fabric", total == 0,
                f"{drops['lossless']} lossless, {drops['lossy']} lossy drops")
    yield Check("no retransmission", m.get("retransmissions") == 0, f"{m.get('retransmissions')} retransmissions")
    yield Check("the switches paused their senders (PFC frames sent)", (m.get("pfc_pause_tx") or 0) > 0,
                f"{m.get('pfc_pause_tx')} PFC frames sent")
    yield Check("no headroom overflow", m.get("headroom_overflow") == 0, f"{m.get('headroom_overflow')} overflows")
