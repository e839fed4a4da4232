"""match_imputed: the design within (or across) imputed data sets, pooled balance, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from matching import MatchingError, MatchingWarning
from matching.imputed_design import match_imputed
from tests.reports._reference import FIXTURES

COVARIATES = ["age", "female", "ecog", "histology", "pci", "crs_hipec", "pfi_months"]
KW = {"treatment_col": "treated", "treated_value": 1}


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(FIXTURES / "mi_pm_a" / "mi_pm_a_missing.csv")


def _run(d, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MatchingWarning)
        return match_imputed(d, COVARIATES, **{**KW, "imputations": 3, "max_iter": 3,
                                               "random_state": 5, **kw})


@pytest.fixture(scope="module")
def weighted(data):
    return _run(data, method="weighting", weights="att_odds")


def test_counts_per_covariate_and_arm(data, weighted):
    t = data["treated"] == 1
    assert weighted.imputed == {
        c: {"trial": int(data.loc[t, c].isna().sum()), "control": int(data.loc[~t, c].isna().sum())}
        for c in ("ecog", "histology", "pci")}
    assert weighted.m == 3 and len(weighted.completed) == 3
    assert not any(c[COVARIATES].isna().any().any() for c in weighted.completed)


def test_pooled_balance_is_the_mean_over_imputations(weighted):
    per = [d.balance.frame.set_index("covariate")["smd_after"] for d in weighted.designs]
    pooled = weighted.balance.frame.set_index("covariate")["smd_after"]
    pd.testing.assert_series_equal(pooled, pd.concat(per, axis=1).mean(axis=1), check_names=False)
    assert list(pooled.index) == list(per[0].index)
    assert weighted.balance_passed == (weighted.max_abs_smd <= 0.1)
    d = weighted.to_dict()
    assert d["balance"]["max_abs_smd"] == pytest.approx(weighted.max_abs_smd)
    assert len(d["per_imputation"]) == 3 and d["imputation"]["m"] == 3
    assert d["imputation"]["imputed"] == weighted.imputed


def test_outcome_blind_and_seeded(data, weighted):
    """Outcome columns in the frame change nothing (they are never read); same seed, same sets."""
    other = data.assign(pfs_weeks=np.random.default_rng(0).permutation(data["pfs_weeks"]))
    again = _run(other, method="weighting", weights="att_odds")
    for a, b in zip(weighted.designs, again.designs, strict=True):
        pd.testing.assert_series_equal(a.weights, b.weights)
    assert not _run(data, method="weighting", weights="att_odds", random_state=6
                    ).designs[0].weights.equals(weighted.designs[0].weights)


def test_cohort_has_one_row_per_patient_and_imputation(data, weighted):
    c = weighted.cohort(data["patient_id"])
    assert len(c) == 3 * len(data) and c.columns[0] == "imputation"
    assert sorted(c["imputation"].unique()) == [1, 2, 3]


def test_across_uses_one_averaged_ps(data, weighted):
    across = _run(data, approach="across", method="weighting", weights="att_odds")
    ps = [d.ps.to_numpy() for d in across.designs]
    for p in ps[1:]:
        np.testing.assert_array_equal(p, ps[0])
    np.testing.assert_allclose(ps[0], np.mean([d.ps.to_numpy() for d in weighted.designs],
                                              axis=0), rtol=1e-12)
    assert across.designs[0].ps_model["name"] == "given"


def test_matching_within(data):
    res = _run(data, caliper=None, caliper_scale="ps")
    for d in res.designs:
        assert d.counts["trial_selected"] == (data["treated"] == 1).sum()
        assert d.counts["control_selected"] == d.counts["trial_selected"]


@pytest.mark.parametrize(("kw", "match"), [
    ({"imputations": 1}, "n_imputations"),
    ({"auxiliary": ["age"]}, r"auxiliary variables \['age'\] are also covariates"),
    ({"auxiliary": ["nope"]}, r"columns \['nope'\] are not in the frame"),
    ({"approach": "sideways"}, "approach"),
    ({"missing": "indicator"}, "missing="),
])
def test_bad_options(data, kw, match):
    with pytest.raises(MatchingError, match=match):
        _run(data, **kw)


def test_covariate_missing_in_a_whole_arm(data):
    d = data.copy()
    d.loc[d["treated"] == 1, "pci"] = np.nan
    with pytest.raises(MatchingError, match="'pci' is missing for every trial patient"):
        _run(d)


def test_match_cohort_with_given_ps(data):
    """match_cohort(ps=...) (the "across" path) equals the fitted-PS design for the same PS."""
    from matching import match_cohort

    d = data.dropna(subset=COVARIATES).reset_index(drop=True)
    fitted = match_cohort(d, COVARIATES, **KW, caliper=0.2)
    given = match_cohort(d, COVARIATES, **KW, caliper=0.2, ps=fitted.ps.to_numpy())
    pd.testing.assert_series_equal(given.weights, fitted.weights)
    pd.testing.assert_series_equal(given.match_id, fitted.match_id)
    with pytest.raises(MatchingError, match="ps must hold"):
        match_cohort(d, COVARIATES, **KW, ps=np.full(len(d) - 1, 0.5))
