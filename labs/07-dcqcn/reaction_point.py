"""Lab 07: the DCQCN reaction point's rate cut — what a RoCE NIC does when a CNP arrives.

fabriclab's reaction point (traffic/dcqcn.py) calls ``cut`` once per CNP (at most once per
rate-decrease interval); everything else — α's decay without CNPs, the timer and byte-counter
driven recovery — is already there.
"""


def cut(rate: float, target: float, alpha: float, g: float) -> tuple[float, float, float]:
    """A CNP arrived for this flow.

    rate:   RC, the flow's current sending rate (bit/s)
    target: RT, the rate recovery climbs back towards (bit/s)
    alpha:  α, the flow's estimate of how congested the path is (0..1)
    g:      the gain of α's moving average

    Returns the new (rate, target, alpha).
    """
    # TODO (task 2): the cut of Zhu et al., SIGCOMM 2015, section 3.1 (see the README).
    return rate, target, alpha
