"""Weights: formulas, trimming, truncation, entropy balancing (exact balance, infeasible)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching import EntropyBalancer, MatchingError, ps_weights
from matching.weighting import compute_weights, trim_mask, truncate_weights

E = np.array([0.2, 0.5, 0.8, 0.25, 0.4])
T = np.array([True, True, False, False, False])


def test_formulas():
    np.testing.assert_allclose(ps_weights(E, T, "att_odds"), [1, 1, 4, 1 / 3, 2 / 3])
    np.testing.assert_allclose(ps_weights(E, T, "ate"), [5, 2, 5, 4 / 3, 5 / 3])
    np.testing.assert_allclose(ps_weights(E, T, "ate", stabilized=True),
                               [5 * 0.4, 2 * 0.4, 5 * 0.6, 4 / 3 * 0.6, 5 / 3 * 0.6])
    np.testing.assert_allclose(ps_weights(E, T, "overlap"), [0.8, 0.5, 0.8, 0.25, 0.4])
    # min(e, 1 - e) / (e for trial, 1 - e for control)
    np.testing.assert_allclose(ps_weights(E, T, "matching"), [1, 1, 1, 1 / 3, 2 / 3])


def test_trimming_and_truncation():
    assert trim_mask(E, T, 0.3).tolist() == [False, True, False, False, True]
    # common support: trial PS in [0.2, 0.5], control in [0.25, 0.8] -> [0.25, 0.5]
    assert trim_mask(E, T, "common_support").tolist() == [False, True, False, True, True]
    with pytest.raises(MatchingError, match="trim must be"):
        trim_mask(E, T, 0.7)
    w, rep = truncate_weights(np.array([1, 1, 10, 1, 2.0]), T, 0.6)
    assert rep["arms"]["control"]["n_truncated"] == 1
    assert w[2] == pytest.approx(rep["arms"]["control"]["cap"])
    out = compute_weights(E, T, kind="att_odds", trim=0.3)
    assert {x["arm"]: x["n"] for x in out.exclusions} == {"trial": 1, "control": 2}
    assert out.weights[[0, 2, 3]].tolist() == [0, 0, 0]


def test_entropy_balancing_exact_means():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=500), "b": rng.binomial(1, 0.3, 500)})
    t = rng.random(500) < 1 / (1 + np.exp(-(X["a"] - 1)))
    eb = EntropyBalancer().fit(X, t)
    w = eb.weights_
    assert eb.converged_
    for c in X:
        x = X[c].to_numpy()
        assert np.average(x[~t], weights=w[~t]) == pytest.approx(x[t].mean(), abs=1e-6)
    assert w[~t].sum() == pytest.approx((~t).sum())


def test_entropy_balancing_infeasible_is_an_error():
    X = pd.DataFrame({"a": np.r_[np.full(10, 5.0), np.linspace(0, 1, 50)]})
    t = np.r_[np.ones(10, bool), np.zeros(50, bool)]
    with pytest.raises(MatchingError, match="infeasible"):
        EntropyBalancer().fit(X, t)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(1e-6, 1 - 1e-6), min_size=4, max_size=50),
       st.sampled_from(["att_odds", "ate", "overlap", "matching"]), st.booleans())
def test_weights_finite_non_negative(ps, kind, stab):
    e = np.array(ps)
    t = np.arange(len(e)) % 2 == 0
    w = ps_weights(e, t, kind, stabilized=stab)
    assert np.isfinite(w).all() and (w >= 0).all()
