"""Lab 08 checker: your receiver against one 2000-packet message sprayed over four paths of
different delay, with one packet lost (fabriclab/labs/spray_bench.py: virtual time, seeded)."""
from __future__ import annotations

import importlib.util

from fabriclab.errors import UserError
from fabriclab.labs import spray_bench
from fabriclab.labs.checks import Check

RETX_GOAL = 0.02          # retransmitted packets, as a share of the message
TIME_GOAL = 1.25          # completion time, as a multiple of the ideal


def checks(run):
    path = run.file("receiver.py")
    spec = importlib.util.spec_from_file_location("lab08_receiver", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        out = spray_bench.run(module.Receiver(spray_bench.WINDOW))
    except Exception as exc:     # the student's code: any error is theirs to see, in one line
        raise UserError(f"{path}: {type(exc).__name__}: {exc}") from None
    n = spray_bench.PACKETS
    in_order = out.delivered == list(range(n))
    yield Check(f"all {n} packets delivered to the application, in order, once each", in_order,
                f"{len(out.delivered)} delivered" + ("" if in_order else ", not 0..N-1 in order"))
    yield Check(f"retransmissions stay below {RETX_GOAL:.0%} of the message", out.retransmitted < RETX_GOAL * n,
                f"{out.retransmitted} retransmitted ({out.retransmitted / n:.1%})")
    yield Check("the lost packet is recovered by a NAK, not by waiting for the timeout",
                out.timeouts == 0 and in_order, f"{out.timeouts} timeouts")
    done = out.finish_us
    yield Check(f"the message completes within {TIME_GOAL}x the ideal time ({out.ideal_us} µs)",
                done is not None and done <= TIME_GOAL * out.ideal_us,
                f"completed in {done} µs" if done is not None else "never completed")
