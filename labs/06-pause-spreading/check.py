"""Lab 06 checker: the "tuned" variant of your pause-spreading.yaml, run on a Mininet fabric:
ECN marks and CNPs flow, nothing is lost, and the victim keeps a fair share of its link."""
from __future__ import annotations

from fabriclab.labs.checks import Check
from fabriclab.labs.scenario_check import run_variant_of

RATE_MBPS = 20
VICTIM_SHARE = 0.45     # PFC alone leaves the victim about a third of its link; DCQCN about two thirds


def checks(run):
    m = run_variant_of(run, "pause-spreading.yaml", "tuned")
    yield Check("the traffic completed", m.get("error") is None and m.get("cct_s") is not None,
                m.get("error") or f"incast in {m['cct_s']:.2f} s")
    yield Check("the switches marked ECN", (m.get("ecn_marked") or 0) > 0, f"{m.get('ecn_marked')} packets marked CE")
    yield Check("receivers sent CNPs, senders cut their rates (DCQCN)", (m.get("cnp") or 0) > 0, f"{m.get('cnp')} CNPs")
    drops = m["drops"]["lossless"]
    yield Check("the lossless class stayed lossless", drops == 0, f"{drops} lossless drops")
    victim = m.get("victim_mbps") or 0.0
    yield Check(f"the victim flow gets at least {VICTIM_SHARE:.0%} of its {RATE_MBPS} Mbit/s link",
                victim >= VICTIM_SHARE * RATE_MBPS, f"victim at {victim:.1f} Mbit/s")
