"""ChainedImputer: completes what is missing, respects types, is seeded, and is valid (MAR).

The statistical checks are small simulations against known truth (the imputation itself is not
compared with mice's random draws): the mean of a variable missing at random given an observed
one is unbiased after MI, where complete cases are biased; the category shares of a
logistic/multinomial imputed column follow the model; Rubin's intervals cover at the nominal rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matching import MatchingError
from matching.impute import ChainedImputer
from reports.pooling import rubin_pool
from tests.estimator_contract import check_estimator_contract


def _mar_frame(n=400, seed=0):
    """x observed; y ~ x (numeric), g ~ x (3 levels), b ~ x (bool); each MAR given x."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 1 + 2 * x + rng.normal(size=n)
    eta = np.column_stack([np.zeros(n), 0.5 + x, -0.5 - x])
    p = np.exp(eta) / np.exp(eta).sum(axis=1, keepdims=True)
    g = np.array(["a", "b", "c"], dtype=object)[(rng.random(n)[:, None] > p.cumsum(1)).sum(1)]
    b = rng.random(n) < 1 / (1 + np.exp(-x))
    df = pd.DataFrame({"x": x, "y": y, "g": g, "b": b, "k": rng.integers(0, 4, n)})
    miss = rng.random((n, 3)) < 1 / (1 + np.exp(-(x[:, None] - 0.5)))  # more missing at high x
    df.loc[miss[:, 0], "y"] = np.nan
    df.loc[miss[:, 1], "g"] = None
    df["b"] = df["b"].astype(object)
    df.loc[miss[:, 2], "b"] = None
    return df


def test_completes_and_keeps_observed_values_and_types():
    df = _mar_frame()
    df.loc[:40, "k"] = np.nan  # an integer column with missing values
    before = df.copy()
    imp = ChainedImputer(3, max_iter=3, random_state=1).fit(df)
    pd.testing.assert_frame_equal(df, before)  # input untouched
    assert imp.methods_ == {"y": "pmm", "g": "polyreg", "b": "logreg", "k": "pmm"}
    assert imp.n_missing_ == {c: int(before[c].isna().sum()) for c in ("y", "g", "b", "k")}
    for c in imp.completed_:
        assert not c.isna().any().any()
        assert list(c.columns) == list(df.columns)
        obs = ~imp.missing_
        for col in df.columns:
            pd.testing.assert_series_equal(c[col][obs[col]], df[col][obs[col]],
                                           check_dtype=False)
        assert set(c["g"]) <= {"a", "b", "c"}
        assert c["b"].dtype == bool
        # predictive mean matching imputes observed values: integers stay integers
        assert set(c["k"]) <= set(df["k"].dropna())
        assert set(c["y"][imp.missing_["y"]]) <= set(df["y"].dropna())


def test_norm_draws_new_values():
    df = _mar_frame()
    imp = ChainedImputer(2, max_iter=2, numeric="norm", random_state=1).fit(df)
    assert imp.methods_["y"] == "norm"
    mis = imp.missing_["y"]
    assert not set(imp.completed_[0]["y"][mis]) & set(df["y"].dropna())


def test_seeded_and_chain_k_does_not_depend_on_m():
    df = _mar_frame()
    a = ChainedImputer(3, max_iter=2, random_state=7).fit(df).completed_
    b = ChainedImputer(5, max_iter=2, random_state=7).fit(df).completed_
    for x, y in zip(a, b[:3], strict=True):
        pd.testing.assert_frame_equal(x, y)
    c = ChainedImputer(3, max_iter=2, random_state=8).fit(df).completed_
    assert not c[0].equals(a[0])
    assert not a[0].equals(a[1])  # chains differ from each other


def test_categorical_pandas_dtype_is_kept():
    df = _mar_frame()
    df["g"] = pd.Categorical(df["g"], categories=["c", "b", "a"])
    imp = ChainedImputer(2, max_iter=2, random_state=0).fit(df)
    assert imp.completed_[0]["g"].dtype == df["g"].dtype


@pytest.mark.parametrize("bad", [{"n_imputations": 1}, {"numeric": "mean"}, {"max_iter": 0},
                                 {"n_donors": 0}])
def test_bad_parameters_name_themselves(bad):
    name = next(iter(bad))
    with pytest.raises(MatchingError, match=name):
        ChainedImputer(**{"n_imputations": 2, **bad}).fit(_mar_frame(50))


def test_a_column_with_no_observed_value_is_an_error():
    df = _mar_frame(50).assign(z=np.nan)
    with pytest.raises(MatchingError, match=r"\['z'\] have no observed value"):
        ChainedImputer(2).fit(df)


def test_estimator_contract():
    df = _mar_frame(80)
    check_estimator_contract(lambda: ChainedImputer(2, max_iter=2, random_state=0), (df,))


def test_mar_means_unbiased_where_complete_cases_are_not():
    """n = 4,000, one data set: MI recovers E[y] = 1, P(g) and P(b); complete cases do not.

    Truth: E[y] = 1 (x ~ N(0, 1)); P(b) = E[expit(x)] = 0.5; P(g = "a") = E[softmax_a].
    Missingness rises with x and y, g, b all depend on x, so complete cases are biased
    (E[y | observed] ~ 0.4). The MI tolerances are ~4 SE of each estimate at this n.
    """
    df = _mar_frame(4000, seed=3)
    imp = ChainedImputer(5, max_iter=5, random_state=1).fit(df)
    y_mi = np.mean([c["y"].mean() for c in imp.completed_])
    b_mi = np.mean([c["b"].mean() for c in imp.completed_])
    rng = np.random.default_rng(0)
    xs = rng.normal(size=1_000_000)
    eta = np.column_stack([np.zeros_like(xs), 0.5 + xs, -0.5 - xs])
    pa_true = float((1 / np.exp(eta).sum(axis=1)).mean())
    ga_mi = np.mean([(c["g"] == "a").mean() for c in imp.completed_])
    assert abs(df["y"].mean() - 1) > 0.4  # complete cases: biased
    assert abs(y_mi - 1) < 0.15
    assert abs(b_mi - 0.5) < 0.035
    assert abs(ga_mi - pa_true) < 0.035


def test_rubin_intervals_cover_the_mean():
    """120 replicates of n = 150, m = 5: coverage of E[y] = 1 in the binomial band.

    Nominal 95%; with 120 replicates the MC SE is 0.020, so the 3-SE band is [0.887, 1].
    """
    hits = 0
    for rep in range(120):
        df = _mar_frame(150, seed=100 + rep)[["x", "y"]]
        imp = ChainedImputer(5, max_iter=3, random_state=rep).fit(df)
        q = [c["y"].mean() for c in imp.completed_]
        u = [c["y"].var(ddof=1) / len(c) for c in imp.completed_]
        p = rubin_pool(q, u, dfcom=len(df) - 1)
        hits += p.lower <= 1 <= p.upper
    assert hits / 120 >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / 120)
