"""reports.pooling: Rubin's rules by hand, scales and back-transforms, edge cases.

The R equality (mice::pool / pool.scalar) is in test_pooling_r.py; here the formulas are
checked on numbers small enough to compute by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from reports.errors import EstimationError
from reports.estimate import Estimate
from reports.pooling import barnard_rubin_df, pool_estimates, rubin_pool


def test_two_imputations_by_hand():
    p = rubin_pool([1.0, 3.0], [0.5, 1.5], dfcom=10)
    # Qbar 2, Ubar 1, B = 2, T = 1 + 1.5 * 2 = 4, r = 3, lambda = 0.75
    assert (p.estimate, p.within, p.between, p.total) == (2.0, 1.0, 2.0, 4.0)
    assert p.riv == pytest.approx(3.0) and p.lambda_ == pytest.approx(0.75)
    df_old = 1 / 0.75**2
    df_obs = 11 / 13 * 10 * 0.25
    assert p.df == pytest.approx(df_old * df_obs / (df_old + df_obs))
    assert p.fmi == pytest.approx((3 + 2 / (p.df + 3)) / 4)
    half = student_t.ppf(0.975, p.df) * 2.0
    assert (p.lower, p.upper) == pytest.approx((2 - half, 2 + half))


def test_infinite_dfcom_gives_rubins_1987_df():
    assert barnard_rubin_df(5, 0.2, 1.0) == pytest.approx(4 / (1.2 * 0.2) ** 2)
    # df grows to the complete-data df as the between variance vanishes
    assert barnard_rubin_df(5, 1e-12, 1.0, dfcom=50) < 50


def test_no_between_variance():
    p = rubin_pool([0.3] * 4, [0.01] * 4)
    assert p.between == 0 and p.riv == 0 and p.total == pytest.approx(0.01)
    assert p.df == pytest.approx(3 / 1e-8)  # lambda floored at 1e-4, as mice
    assert p.fmi == pytest.approx(2 / (p.df + 3))


@pytest.mark.parametrize("bad", [([1.0], [1.0]), ([1.0, np.nan], [1.0, 1.0]),
                                 ([1.0, 2.0], [1.0, -1.0]), ([1.0, 2.0], [1.0])])
def test_bad_inputs(bad):
    with pytest.raises(EstimationError):
        rubin_pool(*bad)


def _est(x, se):
    return Estimate(x, se, x - 1.96 * se, x + 1.96 * se, 0.95, "test")


def test_cloglog_back_transform_and_swap():
    ests = [_est(0.6, 0.05), _est(0.65, 0.05), _est(0.55, 0.06)]
    pooled, p = pool_estimates(ests, scale="cloglog")
    g = [math.log(-math.log(e.estimate)) for e in ests]
    assert p.estimate == pytest.approx(np.mean(g))
    assert pooled.estimate == pytest.approx(math.exp(-math.exp(np.mean(g))))
    # a decreasing transform: the upper g limit is the lower survival limit
    assert pooled.lower == pytest.approx(math.exp(-math.exp(p.upper)))
    assert pooled.upper == pytest.approx(math.exp(-math.exp(p.lower)))
    assert pooled.lower < pooled.estimate < pooled.upper
    s = pooled.estimate
    assert pooled.se == pytest.approx(p.se * s * abs(math.log(s)))
    assert "cloglog" in pooled.method and "Rubin" in pooled.method


@pytest.mark.parametrize("scale", ["log", "logit", "identity"])
def test_identical_imputations_keep_the_estimate(scale):
    pooled, p = pool_estimates([_est(0.4, 0.05)] * 3, scale=scale)
    assert pooled.estimate == pytest.approx(0.4)
    assert pooled.se == pytest.approx(0.05)
    assert p.between == pytest.approx(0, abs=1e-20)


def test_not_estimable_in_one_imputation():
    na = Estimate.not_estimable("landmark beyond follow-up", 0.95, "km")
    pooled, p = pool_estimates([_est(0.5, 0.1), na], scale="cloglog")
    assert p is None and not pooled.estimable
    assert "imputations [2]" in pooled.reason and "beyond follow-up" in pooled.reason


def test_unknown_scale():
    with pytest.raises(EstimationError, match="scale"):
        pool_estimates([_est(0.5, 0.1)] * 2, scale="probit")
