"""Performance measures of the simulation study (Morris, White & Crowther 2019, Table 6).

Two kinds of check: hand-computed values on a 4-replicate toy (exact to 1e-12), and a
meta-simulation showing that each Monte Carlo SE matches the spread of its measure over
many independent simulation studies (which is what an MC SE claims to be).
"""

from __future__ import annotations

import numpy as np
import pytest

from synthctl.simulation.metrics import binomial_band, performance_measures, share_with_mcse

TOY = {
    "estimate": [1.0, 2.0, 3.0, 4.0],
    "se": [1.0, 1.0, 2.0, 2.0],
    "lower": [0.0, 1.0, 2.0, 3.0],
    "upper": [2.0, 3.0, 4.0, 5.0],
    "truth": 2.0,
}
# Worked by hand: errors -1, 0, 1, 2.
TOY_EXPECTED = {
    "bias": 0.5,
    "bias_mcse": np.sqrt(5 / 3) / 2,  # sd(errors) / sqrt(n)
    "emp_se": np.sqrt(5 / 3),
    "emp_se_mcse": np.sqrt(5 / 3) / np.sqrt(6),  # / sqrt(2 (n - 1))
    "rmse": np.sqrt(1.5),  # mean squared error 6 / 4
    # MC SE of the MSE: sqrt(sum((e^2 - 1.5)^2) / (n (n-1))) = sqrt(9 / 12); delta to RMSE
    "rmse_mcse": np.sqrt(9 / 12) / (2 * np.sqrt(1.5)),
    "model_se": np.sqrt(2.5),  # variances 1, 1, 4, 4
    "model_se_mcse": np.sqrt(3 / (4 * 4 * 2.5)),  # var(variances) = 3
    "coverage": 0.75,  # the last interval [3, 5] misses 2
    "coverage_mcse": np.sqrt(0.75 * 0.25 / 4),
}


def test_toy_values_worked_by_hand():
    pm = performance_measures(**TOY)
    for name, expected in TOY_EXPECTED.items():
        assert getattr(pm, name) == pytest.approx(expected, abs=1e-12), name
    assert (pm.n_runs, pm.n_valid, pm.n_ci, pm.truth) == (4, 4, 4, 2.0)


def test_missing_estimates_are_counted_not_used():
    toy = {k: ([*v, np.nan] if isinstance(v, list) else v) for k, v in TOY.items()}
    pm = performance_measures(**toy)
    assert (pm.n_runs, pm.n_valid) == (5, 4)
    assert pm.bias == pytest.approx(TOY_EXPECTED["bias"], abs=1e-12)
    assert pm.coverage == pytest.approx(0.75, abs=1e-12)


def test_missing_limits_leave_estimate_but_not_coverage():
    toy = dict(TOY, lower=[0.0, 1.0, 2.0, np.nan])
    pm = performance_measures(**toy)
    assert pm.n_valid == 4 and pm.n_ci == 3
    assert pm.coverage == 1.0


def test_per_replicate_truth():
    truth = np.array([0.1, 0.5, -0.2, 0.3])
    pm = performance_measures(truth + 0.25, 0.1, truth - 1, truth + 1, truth)
    assert pm.bias == pytest.approx(0.25)
    assert pm.bias_mcse == pytest.approx(0.0, abs=1e-12)
    assert pm.rmse == pytest.approx(0.25)
    assert pm.emp_se == pytest.approx(np.std(truth, ddof=1))
    assert pm.coverage == 1.0


def test_all_missing_gives_nan_not_error():
    pm = performance_measures([np.nan, np.nan], [1, 1], [0, 0], [1, 1], 0.0)
    assert pm.n_valid == 0 and np.isnan(pm.bias) and np.isnan(pm.coverage)


def test_measures_recover_known_operating_characteristics():
    # A normal estimator with known bias b and SD sigma, exact SEs, 95% Wald limits:
    # bias -> b, emp SE and model SE -> sigma, RMSE -> sqrt(b^2 + sigma^2), coverage ->
    # P(|Z + b/sigma| <= 1.96). n = 20,000 replicates; tolerance 4 MC SEs (each measure's
    # own MC SE, so a wrong formula or a wrong MC SE both fail).
    from scipy.stats import norm

    rng = np.random.default_rng(1)
    n, b, sigma, z = 20_000, 0.1, 0.5, norm.ppf(0.975)
    est = 1.0 + b + sigma * rng.standard_normal(n)
    pm = performance_measures(est, sigma, est - z * sigma, est + z * sigma, 1.0)
    cover = norm.cdf(z - b / sigma) - norm.cdf(-z - b / sigma)
    assert abs(pm.bias - b) < 4 * pm.bias_mcse
    assert abs(pm.emp_se - sigma) < 4 * pm.emp_se_mcse
    assert pm.model_se == pytest.approx(sigma)
    assert abs(pm.rmse - np.hypot(b, sigma)) < 4 * pm.rmse_mcse
    assert abs(pm.coverage - cover) < 4 * pm.coverage_mcse


def test_mc_se_equals_spread_over_repeated_studies():
    # 1,000 independent simulation studies of 60 replicates each. The SD of each measure
    # over the studies is the true MC SE; the mean of the reported MC SEs must match it.
    # The SD over 1,000 studies has relative SE 1/sqrt(2 * 999) = 2.2%; we allow 12%
    # (5 of those SEs plus the O(1/n) bias of the delta-method and ratio formulas at
    # n = 60). A forgotten sqrt(2) (41%) or factor 2 (100%) fails.
    rng = np.random.default_rng(7)
    k, n = 1_000, 60
    names = ("bias", "emp_se", "model_se", "rmse", "coverage")
    values = {m: [] for m in names}
    mcses = {m: [] for m in names}
    for _ in range(k):
        est = 0.2 + 0.4 * rng.standard_normal(n)
        se = 0.4 * np.sqrt(rng.chisquare(30, n) / 30)  # noisy model SEs
        pm = performance_measures(est, se, est - 1.96 * se, est + 1.96 * se, 0.0)
        for m in names:
            values[m].append(getattr(pm, m))
            mcses[m].append(getattr(pm, f"{m}_mcse"))
    for m in names:
        assert np.mean(mcses[m]) == pytest.approx(np.std(values[m], ddof=1), rel=0.12), m


def test_share_with_mcse_ignores_missing():
    p, se = share_with_mcse([True, False, None, True, True])
    assert p == 0.75 and se == pytest.approx(np.sqrt(0.75 * 0.25 / 4))


@pytest.mark.parametrize("n", [100, 200, 500])
def test_binomial_band_is_the_central_99_percent_range(n):
    from scipy.stats import binom

    lo, hi = binomial_band(n, 0.95, 0.99)
    k_lo, k_hi = round(lo * n), round(hi * n)
    # each tail outside the band holds at most 0.5% (and one step further in, more)
    assert binom.cdf(k_lo - 1, n, 0.95) <= 0.005 < binom.cdf(k_lo, n, 0.95)
    assert binom.sf(k_hi, n, 0.95) <= 0.005 < binom.sf(k_hi - 1, n, 0.95)
    assert lo < 0.95 < hi
