"""Lab 07 solution: DCQCN's rate cut (Zhu et al., SIGCOMM 2015, section 3.1)."""


def cut(rate: float, target: float, alpha: float, g: float) -> tuple[float, float, float]:
    target = rate                       # remember where we were: recovery climbs back to it
    rate = rate * (1 - alpha / 2)       # cut by half of the congestion estimate
    alpha = (1 - g) * alpha + g         # a CNP means congestion: α moves towards 1
    return rate, target, alpha
