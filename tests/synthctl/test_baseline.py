"""The report's baseline table: per-arm summaries, weighting, SMD fallback, missing rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthctl.baseline import baseline_table

FRAME = pd.DataFrame({
    "arm": ["trial"] * 3 + ["control"] * 4,
    "ecog": [0, 1, 1, 0, 0, 1, 0],
    "age": [50.0, 60.0, 70.0, 55.0, 65.0, 75.0, 85.0],
    "histology": ["a", "b", "a", "b", "b", "a", None],
    "hipec": [True, False, True, False, False, False, True],
})


def _table(weights=None, balance=None):
    w = np.ones(7) if weights is None else np.asarray(weights, dtype=float)
    return baseline_table(FRAME, w, w > 0, ["ecog", "age", "histology", "hipec"],
                          balance=balance).set_index("variable")


def test_summaries_per_arm_and_weighted_control():
    # the synthetic control keeps controls 1 and 3 only, with weights 1 and 3
    t = _table(weights=[1, 1, 1, 0, 1, 0, 3])
    assert t.loc["ecog = 1", "trial"] == "66.7%"
    assert t.loc["ecog = 1", "pool"] == "25.0%"
    assert t.loc["age", "trial"] == "60.0 (10.0)"
    assert t.loc["age", "pool"] == f"70.0 ({np.std([55, 65, 75, 85], ddof=1):.1f})"
    assert t.loc["age", "control"].startswith("80.0 ")  # (65 + 3 * 85) / 4
    assert t.loc["hipec", "control"] == "75.0%"
    # categorical levels among known values; one missing row per covariate
    assert t.loc["histology: a", "pool"] == "33.3%"
    assert t.loc["histology: missing", "pool"] == "25.0%"
    assert [v for v in t.index if "missing" in v] == ["histology: missing"]


def test_smd_from_design_balance_when_present_else_att_formula():
    t = _table(balance={"ecog": {"smd_before": 0.5, "smd_after": 0.1},
                        "histology_a": {"smd_before": 0.7, "smd_after": 0.2}})
    assert (t.loc["ecog = 1", "smd_before"], t.loc["ecog = 1", "smd_after"]) == ("0.500",
                                                                                 "0.100")
    assert t.loc["histology: a", "smd_before"] == "0.700"
    # age: no balance row -> (mean_trial - mean_pool) / SD_trial (ATT, MatchIt's convention)
    expected = (60.0 - 70.0) / 10.0
    assert float(t.loc["age", "smd_before"]) == pytest.approx(expected, abs=5e-4)


def test_fallback_smds_are_matching_balance_statistics():
    """Rows without a design.json row use matching.balance (issue 14 leftover: baseline.py
    re-implemented them, with a sample SD for proportions where design.json uses sqrt(p(1-p)))."""
    from matching.balance import balance_table

    t = _table(weights=[1, 1, 1, 0, 1, 0, 3])
    arm = (FRAME["arm"] == "trial").to_numpy()
    w = np.where(arm, 1.0, [1, 1, 1, 0, 1, 0, 3])
    ref = balance_table(FRAME[["ecog", "age"]].astype(float), arm, weights=w,
                        estimand="ATT").frame.set_index("covariate")
    p_t, p_c = 2 / 3, 1 / 4  # MatchIt: a binary covariate's SD is sqrt(p (1 - p))
    assert float(t.loc["ecog = 1", "smd_before"]) == pytest.approx(
        (p_t - p_c) / np.sqrt(p_t * (1 - p_t)), abs=5e-4)
    for label, cov in (("ecog = 1", "ecog"), ("age", "age")):
        for col in ("smd_before", "smd_after"):
            assert float(t.loc[label, col]) == pytest.approx(ref.loc[cov, col], abs=5e-4)
