"""DCQCN reaction point in virtual time, against the SIGCOMM'15 equations."""
from __future__ import annotations

import pytest

from fabriclab.errors import UserError
from fabriclab.traffic.dcqcn import MELLANOX, PAPER, Dcqcn, DcqcnParams, ecn_profile, preset
from fabriclab.traffic.scale import TimeScale

LINE = 100e6
G = 1 / 16
PARAMS = DcqcnParams(g=G, alpha_timer=1.0, rate_timer=0.1, byte_counter=1000, fast_recovery_stages=3,
                     rate_ai=1e6, rate_hai=5e6, min_rate=1e6, rate_decrease_interval=0.0, cnp_interval=0.0)


def test_cut_follows_the_equations():
    rp = Dcqcn(LINE, PARAMS.with_overrides(initial_alpha=0.5), now=0.0)
    rp.on_cnp(0.01)
    assert rp.target == LINE
    assert rp.rate == pytest.approx(LINE * (1 - 0.5 / 2))
    alpha = (1 - G) * 0.5 + G
    assert rp.alpha == pytest.approx(alpha)
    rc = rp.rate
    rp.on_cnp(0.02)
    assert rp.target == pytest.approx(rc)
    assert rp.rate == pytest.approx(rc * (1 - alpha / 2))
    assert rp.alpha == pytest.approx((1 - G) * alpha + G)
    assert rp.cuts == 2


def test_alpha_decays_each_period_without_cnp():
    rp = Dcqcn(LINE, PARAMS.with_overrides(alpha_timer=0.001, rate_timer=100.0), now=0.0)
    rp.advance(0.0105)
    assert rp.alpha == pytest.approx((1 - G) ** 10)
    rp.advance(0.0205)
    assert rp.alpha == pytest.approx((1 - G) ** 20)


def _expected_recovery(rt: float, rc: float, stages: list[str]) -> list[tuple[float, float]]:
    out = []
    for stage in stages:
        if stage == "AI":
            rt += PARAMS.rate_ai
        elif stage == "HAI":
            rt += PARAMS.rate_hai
        rc = (rt + rc) / 2
        out.append((rt, rc))
    return out


def test_fast_recovery_then_additive_then_hyper_increase():
    rp = Dcqcn(LINE, PARAMS, now=0.0)
    rp.on_cnp(0.05)                  # RT = 100M, RC = 50M (α = 1)
    rp.on_cnp(0.06)                  # RT = 50M,  RC = 25M
    assert (rp.target, rp.rate) == (50e6, 25e6)
    # timer stages 1..4: F = 3 fast-recovery stages, then additive increase
    expected = _expected_recovery(50e6, 25e6, ["FR", "FR", "FR", "AI"])
    for k, (rt, rc) in enumerate(expected, start=1):
        rp.advance(0.06 + k * 0.1 + 1e-9)
        assert (rp.target, rp.rate) == (pytest.approx(rt), pytest.approx(rc)), f"timer stage {k}"
    # byte counter stages 1..4: the fourth makes both counts > F: hyper increase
    rt, rc = expected[-1]
    for k, stage in enumerate(["AI", "AI", "AI", "HAI"], start=1):
        rp.on_sent(PARAMS.byte_counter, 0.06 + 4 * 0.1 + 0.01)
        (rt, rc), = _expected_recovery(rt, rc, [stage])
        assert (rp.target, rp.rate) == (pytest.approx(rt), pytest.approx(rc)), f"byte stage {k}"


def test_cnp_restarts_increase_and_rates_stay_in_bounds():
    rp = Dcqcn(LINE, PARAMS, now=0.0)
    for i in range(40):
        rp.on_cnp(0.001 * (i + 1))
    assert rp.rate == PARAMS.min_rate        # floored
    rp.advance(1000.0)                       # long recovery: back to, never above, line rate
    assert rp.rate == pytest.approx(LINE) and rp.rate <= LINE and rp.target <= LINE


def test_rate_decrease_interval_limits_cuts():
    params = PARAMS.with_overrides(rate_decrease_interval=0.004)
    rp = Dcqcn(LINE, params, now=0.0)
    for t in (0.010, 0.011, 0.012, 0.0141):
        rp.on_cnp(t)
    assert rp.cnps == 4 and rp.cuts == 2


def test_presets_and_scaling():
    assert PAPER.g == 1 / 256 and PAPER.fast_recovery_stages == 5 and PAPER.byte_counter == 10_000_000
    assert PAPER.rate_timer == pytest.approx(55e-6) and PAPER.cnp_interval == pytest.approx(50e-6)
    assert MELLANOX.rate_timer == pytest.approx(300e-6)
    scaled = PAPER.scaled(TimeScale(1000))
    assert scaled.rate_timer == pytest.approx(55e-3) and scaled.alpha_timer == pytest.approx(55e-3)
    assert scaled.rate_ai == pytest.approx(40e3) and scaled.min_rate == pytest.approx(40e3)
    assert scaled.byte_counter == PAPER.byte_counter       # bytes are scale-invariant
    assert preset("mellanox") is MELLANOX
    with pytest.raises(UserError):
        preset("nope")
    with pytest.raises(UserError):
        PAPER.with_overrides(bogus=1)


def test_time_scale():
    s = TimeScale.from_rates(100e9, 100e6)
    assert s.scale == 1000
    assert s.rate(100e9) == pytest.approx(100e6) and s.time(55e-6) == pytest.approx(55e-3)
    assert s.size(1500) == 1500 and s.real_rate(50e6) == pytest.approx(50e9)
    with pytest.raises(UserError):
        TimeScale(0)


def test_mellanox_preset_is_what_the_hpcc_simulator_runs():
    m = MELLANOX
    assert (m.alpha_timer, m.rate_timer, m.rate_decrease_interval) == (1e-6, 300e-6, 4e-6)
    assert m.fast_recovery_stages == 1 and m.g == 1 / 256 and m.byte_counter == 0
    assert m.min_rate == 1e9 and m.alpha_on_first_cnp
    at25 = m.for_link(25e9)                    # R_AI/R_HAI follow the link rate: 20/200 Mb/s at 100G
    assert (at25.rate_ai, at25.rate_hai) == (pytest.approx(5e6), pytest.approx(50e6))
    assert PAPER.for_link(25e9) is PAPER
    scaled = m.scaled(TimeScale(1000))
    assert scaled.min_rate == pytest.approx(1e6) and scaled.alpha_timer == pytest.approx(1e-3)
    assert ecn_profile("mellanox", 100e9) == (400_000, 1_600_000, 0.2)
    assert ecn_profile("paper", 100e9) == (5_000, 200_000, 0.01)


def test_mellanox_first_cnp_sets_alpha_to_one():
    """α = 1 on a flow's first CNP however long it ran before: the first cut halves the rate
    (α decaying from 1 since the flow began made it a ~1 % cut)."""
    rp = Dcqcn(100e9, MELLANOX, now=0.0)
    rp.advance(0.5)
    assert rp.alpha == 1.0 and rp.rate == 100e9          # no timer runs before the first CNP
    rp.on_cnp(0.5)
    assert rp.rate == pytest.approx(50e9) and rp.cuts == 1
    paper = Dcqcn(100e9, PAPER, now=0.0)
    paper.on_cnp(0.5)
    assert paper.rate > 99e9                            # the paper's α had decayed for 0.5 s


def test_timer_only_increase_reaches_hyper_increase():
    """No byte counter: F fast-recovery stages, one additive step, then hyper increase
    (the paper's rule with i_B stuck at 0 never got past additive increase)."""
    params = MELLANOX.with_overrides(rate_ai=1e9, rate_hai=10e9)
    rp = Dcqcn(100e9, params, now=0.0)
    rp.on_cnp(0.0)
    rp.on_cnp(1e-5)
    rt, rc = rp.target, rp.rate
    assert rt == pytest.approx(50e9) and rc < rt
    expected = []
    for stage in ("FR", "AI", "HAI", "HAI"):
        rt += {"FR": 0.0, "AI": 1e9, "HAI": 10e9}[stage]
        rc = (rt + rc) / 2
        expected.append((rt, rc))
    for k, (t, r) in enumerate(expected, start=1):
        rp.advance(1e-5 + k * 300e-6 + 1e-9)
        assert (rp.target, rp.rate) == (pytest.approx(t), pytest.approx(r)), f"timer stage {k}"
    rp.on_sent(10**9, 1e-5 + 4 * 300e-6 + 2e-9)           # bytes do not count without a byte counter
    assert (rp.target, rp.rate) == (pytest.approx(expected[-1][0]), pytest.approx(expected[-1][1]))
