"""Statistical validity by simulation against known truth (not assertion).

Data: two covariates drive both trial membership (logistic, correctly specified) and the
untreated outcome ``Y0 = 2 + 1.5 x1 - x2 + noise``. The target is the trial arm's mean
untreated outcome (the ATT's counterfactual), known in each replicate as the mean of
``2 + 1.5 x1 - x2`` over the trial patients. Each design's control-arm estimate must be
unbiased within 3.5 Monte Carlo SEs over 150 replicates, while the naive (unadjusted)
control mean is off by many SEs (so the check has power).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matching import EntropyBalancer, LogisticPropensity, NearestMatcher, ps_weights

R = 150


def _replicate(rng, n=1200):
    x1 = rng.normal(size=n)
    x2 = rng.binomial(1, 0.4, n).astype(float)
    t = rng.random(n) < 1 / (1 + np.exp(-(-2.0 + 0.9 * x1 + 0.7 * x2)))
    mu0 = 2 + 1.5 * x1 - x2
    y = mu0 + rng.normal(size=n)
    return pd.DataFrame({"x1": x1, "x2": x2}), t, y, mu0[t].mean()


def _estimates(X, t, y):
    ps = LogisticPropensity().fit(X, t)
    out = {"naive": y[~t].mean()}
    w = ps_weights(ps.ps_, t, "att_odds")
    out["att_odds"] = np.average(y[~t], weights=w[~t])
    eb = EntropyBalancer().fit(X, t)
    out["entropy"] = np.average(y[~t], weights=eb.weights_[~t])
    m = NearestMatcher(replace=True).fit(ps.linear_predictor_, t)
    out["nearest_replace"] = np.average(y[~t], weights=m.weights_[~t])
    return out


@pytest.mark.slow
def test_designs_recover_the_trial_population_mean():
    rng = np.random.default_rng(20250601)
    errors = {k: [] for k in ("naive", "att_odds", "entropy", "nearest_replace")}
    for _ in range(R):
        X, t, y, truth = _replicate(rng)
        for k, v in _estimates(X, t, y).items():
            errors[k].append(v - truth)
    for k, e in errors.items():
        e = np.asarray(e)
        bias, mcse = e.mean(), e.std(ddof=1) / np.sqrt(R)
        if k == "naive":
            assert abs(bias) > 10 * mcse, (k, bias, mcse)
        else:
            assert abs(bias) < 3.5 * mcse, (k, bias, mcse)
