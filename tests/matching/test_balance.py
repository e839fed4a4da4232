"""Balance statistics: conventions and invariances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching import balance_table
from matching.balance import ecdf_stats, weighted_var


def test_weighted_variance_is_sd_squared_at_unit_weights():
    x = np.array([1.0, 4.0, 2.0, 8.0])
    assert weighted_var(x, np.ones(4)) == pytest.approx(np.var(x, ddof=1))
    # integer weights = replicated observations' frequency-corrected variance is not the goal;
    # scaling all weights leaves it unchanged
    w = np.array([1.0, 2.0, 0.5, 3.0])
    assert weighted_var(x, w) == pytest.approx(weighted_var(x, 7 * w))


def test_ks_and_binary_conventions():
    x = np.array([0, 1, 1, 0, 0, 0.0])
    t = np.array([True, True, True, False, False, False])
    tab = balance_table(pd.DataFrame({"b": x}), t)
    row = tab.frame.iloc[0]
    assert row["type"] == "binary" and np.isnan(row["variance_ratio_before"])
    p = 2 / 3
    assert row["smd_before"] == pytest.approx(p / np.sqrt(p * (1 - p)))  # sqrt(p(1-p))
    assert row["ecdf_max_before"] == pytest.approx(p) == row["ks_before"]
    mean_, max_ = ecdf_stats(np.array([1.0, 2, 3, 4]), np.array([True, True, False, False]),
                             np.ones(4))
    assert max_ == pytest.approx(1.0) and mean_ == pytest.approx((0.5 + 1 + 0.5 + 0) / 4)


def test_zero_trial_sd_uses_pooled_and_says_so():
    x = np.array([0, 0, 1, 0, 1.0])
    t = np.array([True, True, False, False, False])
    row = balance_table(pd.DataFrame({"sarc": x}), t).frame.iloc[0]
    assert np.isfinite(row["smd_before"]) and "pooled" in row["note"]


def test_max_abs_smd_and_pass():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=100), "b": rng.normal(size=100)})
    t = np.arange(100) < 50
    tab = balance_table(X, t, distance=rng.random(100), threshold=0.1)
    assert tab.max_abs_smd == pytest.approx(tab.frame["smd_after"].iloc[1:].abs().max())
    assert tab.passed == (tab.max_abs_smd <= 0.1)
    assert tab.to_dict()["rows"][0]["covariate"] == "distance"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-800, 800), min_size=6, max_size=40), st.floats(-1e3, 1e3),
       st.integers(0, 2**16))
def test_smd_invariant_to_shifting_a_covariate(xs, shift, seed):
    x = np.array(xs) / 8.0  # exact binary fractions: no rounding in the data themselves
    n = len(x)
    t = np.arange(n) % 3 == 0
    w = np.random.default_rng(seed).random(n)
    a = balance_table(pd.DataFrame({"x": x}), t, weights=w).frame.iloc[0]
    b = balance_table(pd.DataFrame({"x": x + shift}), t, weights=w).frame.iloc[0]
    for col in ("smd_before", "smd_after"):
        if np.isfinite(a[col]):
            assert b[col] == pytest.approx(a[col], rel=1e-6, abs=1e-6 * (1 + abs(shift)))
