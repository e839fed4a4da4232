"""Defect 14: entropy-balancing weights can be huge (1e160); the weighted KM flooded stderr
with overflow warnings and returned NaN ESS and zero SEs. The IJ curve does not depend on the
weights' scale, so it must give the same numbers, silently, at any scale."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from reports.compare import compare_arms
from reports.km import are_counts, ij_influence_at, km_estimate
from reports.rmst import ij_rmst_influence


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.exponential(10, n)
    e = (rng.random(n) < 0.8).astype(float)
    w = np.exp(rng.normal(0, 1, n))
    return t, e, w


@pytest.mark.parametrize("scale", [1e-150, 1.0, 1e160])
def test_ij_curve_is_scale_free_and_silent(scale):
    t, e, w = _data()
    ref = km_estimate(t, e, w)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning (overflow) fails the test
        c = km_estimate(t, e, w * scale)
        u = ij_influence_at(t, e, w * scale, 10.0)
        r = ij_rmst_influence(t, e, w * scale, 20.0)
    assert c.variance == "ij"
    np.testing.assert_allclose(c.surv, ref.surv, rtol=1e-12)
    np.testing.assert_allclose(c.std_err, ref.std_err, rtol=1e-9)
    np.testing.assert_allclose(c.ess, ref.ess, rtol=1e-12)
    np.testing.assert_allclose(c.n_risk, ref.n_risk * scale, rtol=1e-12)
    np.testing.assert_allclose(u, ij_influence_at(t, e, w, 10.0), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(r, ij_rmst_influence(t, e, w, 20.0), rtol=1e-9, atol=1e-12)


def test_huge_integer_valued_weights_are_not_counts():
    assert are_counts(np.array([1.0, 2.0, 3.0]))
    assert not are_counts(np.array([1.0, 2.5]))
    assert not are_counts(np.array([1e160, 3e160]))  # every float this large is "integer"


def test_comparison_with_huge_weights_is_silent():
    t, e, w = _data()
    arm = np.r_[np.ones(40), np.zeros(260)]
    import pandas as pd

    frame = pd.DataFrame({"t": t, "e": e, "arm": arm, "w": np.where(arm == 1, 1.0, w * 1e160)})
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        comp = compare_arms(frame, time_col="t", event_col="e", arm_col="arm", treated_value=1,
                            weight_col="w", landmarks=[5], rmst_tau=15)
    assert np.isfinite(comp.rmst.control.se) and comp.control_curve.ess > 1
