"""match_cohort: dispatch, errors, alignment, exclusions and design.json content."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from matching import (
    DesignResult,
    MatchingConvergenceWarning,
    MatchingError,
    PositivityWarning,
    SeparationWarning,
    match_cohort,
)

COVS = ["age", "sex", "histology", "pci"]


def _frame(n_t=40, n_c=400, seed=0, shift=0.5):
    rng = np.random.default_rng(seed)
    n = n_t + n_c
    t = np.r_[np.ones(n_t, bool), np.zeros(n_c, bool)]
    return pd.DataFrame({
        "patient_id": [f"P{i:04d}" for i in range(n)],
        "arm": np.where(t, "trial", "control"),
        "age": rng.normal(62, 9, n) - shift * 5 * t,
        "sex": rng.choice(["F", "M"], n),
        "histology": rng.choice(["epithelioid", "biphasic"], n, p=[0.7, 0.3]),
        "pci": rng.integers(0, 30, n).astype(float),
        "pfs_days": rng.exponential(200, n),  # an outcome: must never be read
    }, index=pd.RangeIndex(100, 100 + n))


def test_nearest_defaults_and_alignment():
    df = _frame()
    res = match_cohort(df, COVS, random_state=1)
    assert isinstance(res, DesignResult)
    for s in (res.ps, res.weights, res.match_id, res.included):
        assert s.index.equals(df.index)
    assert res.options["caliper"] == 0.2 and res.options["distance"] == "logit_ps"
    assert res.yields == "sets" and res.variance_cluster == "match_id"
    # each matched set has one trial patient and one control (1:1 without replacement)
    sizes = res.match_id.dropna().value_counts()
    assert (sizes == 2).all()
    assert res.counts["trial_selected"] == int(res.included[res.treated].sum())
    assert res.ess["trial"] == pytest.approx(res.counts["trial_selected"])
    assert "\n" not in repr(res) and "ess_control" in repr(res)


def test_bootstrap_replicate_with_repeated_rows():
    """A bootstrap replicate repeats patients (same index labels, id check off): outputs are
    aligned by position."""
    df = _frame()
    rep = df.sample(len(df), replace=True, random_state=3)
    assert not rep.index.is_unique
    rep.iloc[:5, rep.columns.get_loc("pci")] = np.nan
    res = match_cohort(rep, COVS, id_col=None, missing="complete_case", exact="sex")
    assert res.weights.index.equals(rep.index)
    assert len(res.weights) == len(rep) and not res.included.iloc[:5].any()


def test_outcomes_are_not_read():
    df = _frame()
    a = match_cohort(df, COVS)
    b = match_cohort(df.assign(pfs_days=np.nan), COVS)
    pd.testing.assert_series_equal(a.weights, b.weights)


def test_to_dict_is_design_json():
    res = match_cohort(_frame(), COVS, ratio=2)
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["method"] == "nearest" and d["options"]["ratio"] == 2
    assert set(d["ps_model"]["coefficients"]) >= {"(Intercept)", "age", "sex_M"}
    row = d["balance"]["rows"][1]
    for k in ("covariate", "smd_before", "smd_after", "variance_ratio_before",
              "variance_ratio_after", "ks_after"):
        assert k in row
    assert set(d["ess"]) == {"trial", "control"}
    assert d["counts"]["trial"] == 40


def test_no_overlap_is_an_error():
    df = _frame()
    df.loc[df["arm"] == "trial", "pci"] = 100.0 + np.arange(40)  # far outside the registry
    df.loc[df["arm"] == "control", "pci"] = np.linspace(0, 20, 400)
    with (pytest.raises(MatchingError, match="No overlap"), pytest.warns(SeparationWarning),
          pytest.warns(MatchingConvergenceWarning)):
        match_cohort(df, COVS)


def test_trial_patients_beyond_the_registry_range_warn():
    df = _frame()
    df.loc[df.index[:3], "pci"] = 60.0  # three trial patients above every registry PCI
    with pytest.warns(PositivityWarning, match="3 trial patients"):
        res = match_cohort(df, COVS)
    assert any(w.startswith("positivity") for w in res.warnings)


def test_level_absent_from_trial_is_reported():
    df = _frame()
    df.loc[df.index[-30:], "histology"] = "sarcomatoid"
    with pytest.warns(SeparationWarning, match="histology_sarcomatoid"):
        res = match_cohort(df, COVS)
    assert any("histology_sarcomatoid" in w for w in res.warnings)
    assert np.isfinite(res.ps).all()
    assert res.weights.iloc[-30:].eq(0).all()


def test_caliper_drop_is_counted_and_warned():
    df = _frame(shift=3.0)
    res = match_cohort(df, COVS, caliper=0.01)
    lost = [x for x in res.exclusions if x["arm"] == "trial"]
    assert lost and lost[0]["n"] == res.counts["trial"] - res.counts["trial_selected"]
    assert any("got no match" in w for w in res.warnings)


def test_missing_policies_through_the_facade():
    df = _frame()
    df.loc[df.index[[0, 1, 50]], "pci"] = np.nan
    with pytest.raises(MatchingError, match="pci: 3 missing"):
        match_cohort(df, COVS)
    res = match_cohort(df, COVS, missing="complete_case")
    assert {(x["arm"], x["reason"], x["n"]) for x in res.exclusions
            if x["reason"].startswith("missing")} == {("trial", "missing pci", 2),
                                                       ("control", "missing pci", 1)}
    assert res.ps.isna().sum() == 3 and not res.included.iloc[[0, 1, 50]].any()
    # the two trial patients missing PCI get an indicator no registry patient shares
    with pytest.warns(PositivityWarning):
        res = match_cohort(df, COVS, missing="indicator")
    assert "pci_missing" in res.ps_model["features"]


def test_methods_and_estimands():
    df = _frame()
    opt = match_cohort(df, COVS, method="optimal", caliper=None)
    near = match_cohort(df, COVS, caliper=None)
    assert opt.details["total_distance"] <= sum(
        abs(near.distance[near.match_id == k].diff().iloc[-1])
        for k in near.match_id.dropna().unique()) + 1e-9
    ate = match_cohort(df, COVS, method="weighting", weights="ate", estimand="ATE",
                       stabilized=True, truncate=0.99)
    assert ate.estimand == "ATE" and "truncation" in ate.details
    assert ate.balance.estimand == "ATE"
    eb = match_cohort(df, COVS, method="weighting", weights="entropy")
    assert eb.max_abs_smd < 1e-4 and eb.details["entropy"]["converged"]


def test_bad_options_are_errors():
    df = _frame()
    with pytest.raises(MatchingError, match="method must be one of"):
        match_cohort(df, COVS, method="genetic")
    with pytest.raises(MatchingError, match="ps_model must be one of"):
        match_cohort(df, COVS, ps_model="forest")
    with pytest.raises(MatchingError, match="targets ATT; estimand ATE needs method weighting"):
        match_cohort(df, COVS, estimand="ATE")
    with pytest.raises(MatchingError, match="set estimand: ATE"):
        match_cohort(df, COVS, method="weighting", weights="ate")
    with pytest.raises(MatchingError, match=r"caliper_scale \(the old name of distance"):
        match_cohort(df, COVS, caliper_scale="probit")
    with pytest.raises(MatchingError, match="distance must be one of"):
        match_cohort(df, COVS, distance="probit")
    with pytest.raises(MatchingError, match="ratio must be an int in"):
        match_cohort(df, COVS, ratio=0)
    with pytest.raises(MatchingError, match="'calipr' does not apply to method nearest"):
        match_cohort(df, COVS, calipr=0.1)
    dup = df.copy()
    dup.loc[dup.index[1], "patient_id"] = dup["patient_id"].iloc[0]
    with pytest.raises(MatchingError, match="duplicated"):
        match_cohort(dup, COVS)
    with pytest.raises(MatchingError, match="No row has arm == 'treated'"):
        match_cohort(df, COVS, treated_value="treated")
    # an option the method does not take is an error, never silently ignored (issue 14, 7)
    with pytest.raises(MatchingError, match="'ratio' does not apply to method weighting"):
        match_cohort(df, COVS, method="weighting", ratio=3)
    with pytest.raises(MatchingError, match="'weights' does not apply to method nearest"):
        match_cohort(df, COVS, weights="ate")


def test_exact_matching_through_the_facade():
    res = match_cohort(_frame(), COVS, exact=["sex"], caliper=None)
    df = _frame()
    for k in res.match_id.dropna().unique():
        assert df.loc[res.match_id == k, "sex"].nunique() == 1
