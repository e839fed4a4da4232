"""PS models: the logistic fit is R's glm MLE; separation is reported; alternatives work."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from matching import (
    GBMPropensity,
    L2LogisticPropensity,
    LogisticPropensity,
    MatchingError,
    SeparationWarning,
)
from matching.propensity import _WARM_START_ROWS


def _sim(n, seed=0, shift=0.5):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.binomial(1, 0.4, n).astype(float),
                      "c": rng.normal(50, 10, n)})
    lin = -1 + shift * X["a"] + 0.8 * X["b"] - 0.02 * (X["c"] - 50)
    t = rng.random(n) < 1 / (1 + np.exp(-lin))
    return X, t


def test_equals_statsmodels_mle():
    """Independent check of the MLE (statsmodels Newton); PS agree to 1e-9."""
    X, t = _sim(2000)
    ours = LogisticPropensity().fit(X, t)
    ref = sm.Logit(t.astype(float), sm.add_constant(X)).fit(disp=0, tol=1e-12)
    np.testing.assert_allclose(ours.ps_, ref.predict(sm.add_constant(X)), atol=1e-9)
    np.testing.assert_allclose(ours.coef_.to_numpy(), ref.params.to_numpy(), rtol=1e-6)
    assert ours.converged_ and ours.n_iter_ <= 25


@pytest.mark.slow
def test_warm_start_reaches_the_same_mle():
    """Above 200,000 rows the iteration starts from a subsample fit: same MLE (1e-8)."""
    X, t = _sim(_WARM_START_ROWS + 50_000, seed=2, shift=1.0)
    ours = LogisticPropensity().fit(X, t)
    ref = sm.Logit(t.astype(float), sm.add_constant(X)).fit(disp=0, tol=1e-12)
    np.testing.assert_allclose(ours.ps_, ref.predict(sm.add_constant(X)), atol=1e-8)


def test_identical_rows_get_identical_scores():
    """Exact ties must survive the fit (matching breaks them by data order, as MatchIt)."""
    X, t = _sim(3000, seed=4)
    X.iloc[1::7] = X.iloc[0].to_numpy()  # many copies of row 0 at varied memory offsets
    ps = LogisticPropensity().fit(X, t).ps_
    assert np.unique(ps[1::7]).size == 1 and ps[1] == ps[0]


def test_level_absent_from_trial_warns_and_stays_finite():
    X, t = _sim(400, seed=1)
    X["sarcomatoid"] = 0.0
    X.loc[~t & (np.arange(400) % 9 == 0), "sarcomatoid"] = 1.0
    with pytest.warns(SeparationWarning, match="no trial patient has sarcomatoid"):
        m = LogisticPropensity().fit(X, t)
    assert np.isfinite(m.ps_).all()
    assert m.ps_[X["sarcomatoid"] == 1].max() < 1e-6  # what it does: PS ~ 0 for them
    assert any("sarcomatoid" in s for s in m.separation_)


def test_aliased_column_gets_nan_coefficient():
    X, t = _sim(300)
    X["a2"] = 2 * X["a"]
    m = LogisticPropensity().fit(X, t)
    assert m.aliased_ == ["a2"] and np.isnan(m.coef_["a2"])
    ref = LogisticPropensity().fit(X.drop(columns="a2"), t)
    np.testing.assert_allclose(m.ps_, ref.ps_, atol=1e-12)


def test_bad_input():
    X, t = _sim(50)
    with pytest.raises(MatchingError, match="Both arms"):
        LogisticPropensity().fit(X, np.zeros(50, bool))
    X.iloc[3, 0] = np.nan
    with pytest.raises(MatchingError, match=r"\['a'\]"):
        LogisticPropensity().fit(X, t)
    with pytest.raises(MatchingError, match="'max_iter' parameter of LogisticPropensity"):
        LogisticPropensity(max_iter=0).fit(X, t)


@pytest.mark.parametrize("est", [L2LogisticPropensity(random_state=0),
                                 GBMPropensity(max_iter=30, random_state=0)])
def test_alternative_models(est):
    X, t = _sim(400)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.fit(X, t)
    assert est.ps_.shape == (400,)
    assert ((est.ps_ > 0) & (est.ps_ < 1)).all()
    # better than chance at ranking trial vs control
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(t, est.ps_) > 0.6
