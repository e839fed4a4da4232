"""Per-imputation designs and Rubin's-rules pooling equal R's on the same completed data sets.

tests/fixtures/mi_pm_a/mi_reference.R exports m = 5 completed data sets from R ``mice`` (fixed
seed) and analyses each one in R directly (MatchThem is not in Debian): PS glm, ATT odds weights
or 1:1 nearest matching on the PS (MatchIt's defaults written out), ``survfit`` at 24 weeks,
``coxph`` robust / clustered by pair, then ``mice::pool.scalar`` and ``mice::pool``.
Here the same completed sets go through ``match_cohort`` + ``compare_arms`` + ``reports.pooling``.

Tolerance 1e-6 (the issue's bar) on every per-imputation and pooled figure: estimates, SEs,
variance components, df, FMI and limits (R wrote 15 significant digits; the per-imputation
arithmetic is the closed form R uses, and the Cox fits converge to ~1e-9).
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pandas as pd
import pytest

from matching import match_cohort
from reports.compare import compare_arms
from reports.pooling import pool_estimates, pool_hazard_ratios, rubin_pool
from tests.reports._reference import FIXTURES, PM_COLUMNS

MI = FIXTURES / "mi_pm_a"
COVARIATES = ["age", "female", "ecog", "histology", "pci", "crs_hipec", "pfi_months"]
ATOL = 1e-6
DESIGNS = {
    "att_odds": {"method": "weighting", "weights": "att_odds"},
    "nearest_1to1_ps": {"method": "nearest", "caliper": None, "caliper_scale": "ps"},
}


@cache
def reference() -> dict:
    return json.loads((MI / "mi_pm_a_reference.json").read_text())


@cache
def completed() -> list[pd.DataFrame]:
    long = pd.read_csv(MI / "mi_pm_a_completed.csv")
    return [g.drop(columns=".imp").reset_index(drop=True) for _, g in long.groupby(".imp")]


@cache
def analyses(design: str) -> tuple:
    out = []
    for d in completed():
        res = match_cohort(d, COVARIATES, treatment_col="treated", treated_value=1,
                           **DESIGNS[design])
        frame = d.assign(w=res.weights, pair=res.match_id)
        comp = compare_arms(frame, **PM_COLUMNS, weight_col="w",
                            cluster_col="pair" if design != "att_odds" else None,
                            landmarks=[reference()["landmark_weeks"]], time_unit="weeks")
        out.append((res, d, comp))
    return tuple(out)


def _close(got, want):
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)


@pytest.mark.parametrize("design", list(DESIGNS))
def test_per_imputation_design_and_analysis(design):
    ref = reference()[design]["per_imputation"]
    assert len(ref) == reference()["m"] == len(completed())
    for (res, d, comp), r in zip(analyses(design), ref, strict=True):
        _close(res.ps.to_numpy(), r["ps"])
        selected = d["patient_id"][res.weights.to_numpy() > 0]
        assert sorted(selected) == sorted(r["ids_selected"])
        lm = comp.landmarks[0]
        _close([lm.trial.estimate, lm.trial.se, lm.control.estimate, lm.control.se],
               [r["surv_trial"], r["se_trial"], r["surv_control"], r["se_control"]])
        _close([comp.hazard_ratio.log_hr, comp.hazard_ratio.se_log],
               [r["log_hr"], r["se_log_hr"]])
        assert comp.hazard_ratio.events == r["nevent"]


def _check_pooled(p, r):
    _close([p.estimate, p.within, p.between, p.total, p.riv, p.fmi, p.lower, p.upper],
           [r["qbar"], r["ubar"], r["b"], r["t"], r["r"], r["fmi"], r["lower"], r["upper"]])
    np.testing.assert_allclose(p.df, r["df"], rtol=ATOL)  # df reaches 1e5: relative


@pytest.mark.parametrize("design", list(DESIGNS))
def test_pooled_log_hr_equals_mice(design):
    comps = [c for _, _, c in analyses(design)]
    hr, p = pool_hazard_ratios([c.hazard_ratio for c in comps])
    ref = reference()[design]
    _check_pooled(p, ref["log_hr"])
    _close([hr.estimate, hr.lower, hr.upper],
           [ref["log_hr"]["hr"], ref["log_hr"]["hr_lower"], ref["log_hr"]["hr_upper"]])
    # mice::pool on the coxph fits: same numbers, dfcom = events - 1
    mp = ref["mice_pool_coxph"]
    assert p.dfcom == mp["dfcom"]
    _close([p.estimate, p.se, p.lower, p.upper, p.fmi, p.lambda_, p.riv],
           [mp["estimate"], mp["std.error"], mp["lower"], mp["upper"], mp["fmi"], mp["lambda"],
            mp["riv"]])
    np.testing.assert_allclose(p.df, mp["df"], rtol=ATOL)


@pytest.mark.parametrize("design", list(DESIGNS))
def test_pooled_landmarks_equal_mice(design):
    comps = [c for _, _, c in analyses(design)]
    ref = reference()[design]
    for arm in ("trial", "control"):
        est, p = pool_estimates([getattr(c.landmarks[0], arm) for c in comps], scale="cloglog")
        r = ref[f"landmark_{arm}"]
        _check_pooled(p, r)
        _close([est.estimate, est.lower, est.upper], [r["estimate"], r["lower_s"], r["upper_s"]])
    diff, p = pool_estimates([c.landmarks[0].difference for c in comps], scale="identity")
    _check_pooled(p, ref["landmark_difference"])
    _close([diff.estimate, diff.lower, diff.upper],
           [ref["landmark_difference"]["qbar"], ref["landmark_difference"]["lower"],
            ref["landmark_difference"]["upper"]])


def test_rubin_pool_equals_pool_scalar_with_finite_dfcom():
    r = reference()["nearest_1to1_ps"]["per_imputation"]
    p = rubin_pool([x["log_hr"] for x in r], [x["se_log_hr"] ** 2 for x in r],
                   dfcom=r[0]["nevent"] - 1)
    _check_pooled(p, reference()["nearest_1to1_ps"]["log_hr"])


@pytest.mark.parametrize("design", list(DESIGNS))
def test_analyze_imputed_equals_mice(design):
    """The study analysis over the m imputed designs (`reports.analysis_mi.analyze_imputed`,
    what the analyze stage runs) gives R's pooled numbers in its typed result and its
    results.json form."""
    from reports.analysis import AnalysisDesign, time_to_event_settings
    from reports.analysis_mi import analyze_imputed

    ref = reference()[design]
    frame = completed()[0]
    designs = [AnalysisDesign.from_result(res) for res, _, _ in analyses(design)]
    settings = time_to_event_settings(
        "PFS", time_col=PM_COLUMNS["time_col"], event_col=PM_COLUMNS["event_col"],
        landmarks=[reference()["landmark_weeks"]], unit="weeks",
        arm_col=PM_COLUMNS["arm_col"], treated_value=PM_COLUMNS["treated_value"],
        id_col="patient_id")
    study = analyze_imputed(frame, designs, None, settings, naive=False)
    comp = study.primary.comparison
    lm = comp.landmarks[0]
    for arm in ("trial", "control"):
        r = ref[f"landmark_{arm}"]
        est = getattr(lm, arm)
        _close([est.estimate, est.lower, est.upper], [r["estimate"], r["lower_s"], r["upper_s"]])
    r = ref["landmark_difference"]
    _close([lm.difference.estimate, lm.difference.lower, lm.difference.upper],
           [r["qbar"], r["lower"], r["upper"]])
    mp = ref["mice_pool_coxph"]
    hr = comp.hazard_ratio
    _close([hr.log_hr, hr.se_log, np.log(hr.lower), np.log(hr.upper)],
           [mp["estimate"], mp["std.error"], mp["lower"], mp["upper"]])
    out = study.to_dict()["endpoints"]["PFS"]
    rows = {p["statistic"]: p for p in out["pooling"]}
    _close([rows["log_hr"]["rubin"]["fmi"], rows["log_hr"]["rubin"]["df"] / mp["df"],
            rows["landmark_24_control"]["rubin"]["fmi"]],
           [mp["fmi"], 1.0, ref["landmark_control"]["fmi"]])
    assert rows["log_hr"]["rubin"]["dfcom"] == mp["dfcom"]
    assert out["imputation"]["m"] == reference()["m"] == len(out["imputation"]["per_imputation"])
    assert "not Rubin's rules" in out["median"]["trial"]["method"]
    assert out["hazard_ratio"]["estimate"] == pytest.approx(ref["log_hr"]["hr"], abs=ATOL)
