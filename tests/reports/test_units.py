"""Unit behaviour: input errors, API conventions, E-values, null-rate test, lifelines pitfalls."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from reports.compare import compare_arms
from reports.errors import ConvergenceWarning, EstimationError
from reports.evalue import evalue_hr, evalue_rr, hr_to_rr
from reports.km import WeightedKM, km_estimate
from reports.landmark import landmark_survival, test_null_rate
from tests.reports._reference import FIXTURES, PM_COLUMNS, by_arm, eligible, reference

DF = pd.DataFrame(
    {
        "t": [1.0, 2, 2, 3, 5, 8],
        "e": [1, 1, 0, 1, 0, 1],
        "w": [1, 2, 1, 1, 1, 1],
        "arm": ["trial", "control"] * 3,
    }
)


# --- WeightedKM follows the estimator conventions -------------------------------------------
def test_weighted_km_conventions():
    km = WeightedKM("log-log", conf_level=0.9)
    assert km.fit(DF, "t", "e", weights_col="w") is km
    assert km.curve_.conf_type == "log-log" and km.curve_.variance == "greenwood"
    assert clone(km).get_params() == km.get_params()
    assert not hasattr(clone(km), "curve_")
    before = DF.copy()
    WeightedKM().fit(DF, "t", "e", cluster_col="arm")
    pd.testing.assert_frame_equal(DF, before)  # input untouched
    with pytest.raises(EstimationError, match="conf_type"):
        WeightedKM("linear").fit(DF, "t", "e")
    with pytest.raises(EstimationError, match="conf_level"):
        WeightedKM(conf_level=95).fit(DF, "t", "e")


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        ("t", -1.0, "column 't': negative time .* index 2"),
        ("t", np.nan, "column 't': missing or non-numeric time .* index 2"),
        ("e", 2, "column 'e': event indicator must be 0 .* index 2"),
        ("w", -0.5, "column 'w': weights must be finite and >= 0.* index 2"),
    ],
)
def test_bad_input_names_column_and_row(column, value, match):
    bad = DF.copy()
    bad[column] = bad[column].astype(float)
    bad.loc[2, column] = value
    with pytest.raises(EstimationError, match=match):
        WeightedKM().fit(bad, "t", "e", weights_col="w")


def test_compare_arms_argument_errors():
    kw = dict(time_col="t", event_col="e")
    with pytest.raises(EstimationError, match="weight_col='nope'"):
        compare_arms(DF, weight_col="nope", **kw)
    with pytest.raises(EstimationError, match="both arms"):
        compare_arms(DF, treated_value="other", **kw)
    with pytest.raises(EstimationError, match="null_rate"):
        compare_arms(DF, null_rate=35, **kw)


# --- landmark conventions ---------------------------------------------------------------------
def test_landmark_before_first_time_and_null_test_matches_one_sided_limit():
    curve = km_estimate(DF["t"], DF["e"])
    early = landmark_survival(curve, 0.5)
    assert (early.estimate, early.se, early.lower, early.upper) == (1.0, 0.0, 1.0, 1.0)
    d = eligible()
    comp = compare_arms(
        d,
        **PM_COLUMNS,
        landmarks=[24],
        null_rate=0.35,
    )
    lm = comp.landmarks[0]
    # one-sided p < 0.025 exactly when the two-sided 95% log-scale lower limit is above H0
    for est, test in ((lm.trial, lm.trial_vs_null), (lm.control, lm.control_vs_null)):
        assert test.p_value == test_null_rate(est, 0.35, "log").p_value
        for null in (0.2, 0.3, 0.45, 0.5, 0.55):
            t = test_null_rate(est, null, "log")
            assert (t.p_value < 0.025) == (est.lower > null)
    assert lm.trial_vs_null.p_value < 1e-4 and lm.control_vs_null.p_value > 0.5


# --- E-values: EValue package formulas ----------------------------------------------------------
def test_evalues_follow_evalue_package():
    hr, lo, hi = 1.3, 1.2, 1.4
    rr = (1 - 0.5 ** np.sqrt(hr)) / (1 - 0.5 ** np.sqrt(1 / hr))
    rr_lo = (1 - 0.5 ** np.sqrt(lo)) / (1 - 0.5 ** np.sqrt(1 / lo))
    ev = evalue_hr(hr, lo, hi)
    assert ev.estimate_rr == pytest.approx(rr, rel=1e-12)
    assert ev.evalue_point == pytest.approx(rr + np.sqrt(rr * (rr - 1)), rel=1e-12)
    assert ev.evalue_ci == pytest.approx(rr_lo + np.sqrt(rr_lo * (rr_lo - 1)), rel=1e-12)
    # non-null true value (EValue's test "Common HR": (RR + sqrt(RR (RR - RR_true))) / RR_true)
    rr_t = hr_to_rr(1.1)
    assert evalue_hr(hr, lo, hi, true=1.1).evalue_point == pytest.approx(
        (rr + np.sqrt(rr * (rr - rr_t))) / rr_t, rel=1e-12
    )
    # protective effect: invert; the limit closer to 1 is the upper one
    p = evalue_rr(0.5, 0.3, 0.8)
    assert p.evalue_point == pytest.approx(2 + np.sqrt(2), rel=1e-12)
    assert p.evalue_ci == pytest.approx(1.25 + np.sqrt(1.25 * 0.25), rel=1e-12)
    assert evalue_rr(0.8, 0.5, 1.2).evalue_ci == 1.0  # CI includes the null
    assert evalue_hr(0.7, 0.5, 0.9, rare=True).estimate_rr == 0.7
    with pytest.raises(EstimationError, match="est"):
        evalue_rr(-1.0)


def test_compare_reports_evalues():
    comp = compare_arms(
        eligible(),
        **PM_COLUMNS,
        weight_col="w_att",
        landmarks=[24],
    )
    ev = comp.to_dict()["evalues"]
    hr = comp.hazard_ratio
    assert ev["hazard_ratio"]["point"] == pytest.approx(
        evalue_hr(hr.estimate, hr.lower, hr.upper).evalue_point
    )
    assert ev["landmark_24"]["rr"] < 1 and ev["landmark_24"]["point"] > 1
    json.dumps(comp.to_dict())  # JSON-serialisable


# --- the library pitfalls that made us write our own ------------------------------------------
def test_lifelines_robust_cox_does_not_reproduce_r_with_ties():
    from lifelines import CoxPHFitter

    d = pd.read_csv(FIXTURES / "survival_ties_weights" / "data.csv")
    exp = json.loads((FIXTURES / "survival_ties_weights" / "expected.json").read_text())
    ref = exp["configs"]["nonint_weights"]["cox"]
    ours = compare_arms(
        d, time_col="time", event_col="status", arm_col="arm", treated_value=1, weight_col="w"
    ).hazard_ratio
    assert ours.se_log == pytest.approx(ref["robust_se"], rel=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph = CoxPHFitter().fit(
            d.loc[d["w"] > 0, ["time", "status", "arm", "w"]],
            "time",
            "status",
            weights_col="w",
            robust=True,
        )
    assert abs(cph.standard_errors_["arm"] / ref["robust_se"] - 1) > 1e-3


def test_ess_and_counts_in_output():
    comp = compare_arms(
        eligible(),
        **PM_COLUMNS,
        weight_col="w_att",
    )
    arms = comp.to_dict()["arms"]
    assert arms["control"]["ess"] == pytest.approx(
        reference()["att_odds_weights"]["ess_control"], rel=1e-12
    )
    assert arms["trial"]["n"] == 60 and "ess=" in repr(comp.control_curve)
    assert by_arm(reference()["naive"]["km_landmark"])[1]["surv"] > 0.5


def test_unmatched_rows_may_have_no_cluster_when_weight_is_zero():
    d = DF.assign(pair=[0, 0, np.nan, 1, 1, np.nan], w=[1, 1, 0, 1, 1, 0])
    full = compare_arms(d, time_col="t", event_col="e", weight_col="w", cluster_col="pair")
    sub = d[d["w"] > 0]
    ref = compare_arms(sub, time_col="t", event_col="e", weight_col="w", cluster_col="pair")
    assert full.hazard_ratio.se_log == pytest.approx(ref.hazard_ratio.se_log, rel=1e-12)
    with pytest.raises(EstimationError, match=r"column 'pair': missing cluster id .* index 2"):
        compare_arms(
            d.assign(w=1.0), time_col="t", event_col="e", weight_col="w", cluster_col="pair"
        )


def test_arm_all_censored_before_landmark():
    d = pd.DataFrame(
        {
            "t": [2.0, 5, 9, 11, 3, 30, 40, 50],
            "e": [0, 0, 0, 0, 1, 1, 0, 1],
            "arm": ["control"] * 4 + ["trial"] * 4,
        }
    )
    with pytest.warns(ConvergenceWarning):  # no events in control: the HR MLE is infinite
        comp = compare_arms(
            d, time_col="t", event_col="e", landmarks=[24], null_rate=0.35, rmst_tau=24
        )
    assert not comp.hazard_ratio.converged
    lm = comp.landmarks[0]
    assert lm.trial.estimable and not lm.control.estimable
    assert "beyond the last follow-up time (11)" in lm.control.reason
    assert not comp.rmst.control.estimable and comp.rmst.trial.estimable
    assert comp.median_control.to_dict()["reason"].startswith("not reached")


def test_ij_influence_reproduces_curve_se_and_pair_covariance():
    from reports.km import ij_influence_at
    from tests.reports._reference import matched

    md = matched("nearest_1to2_caliper02_logit")
    ctrl = md[md["treated"] == 0]
    t, e, w = (ctrl[c].to_numpy(float) for c in ("pfs_weeks", "pfs_event", "weights"))
    cl = ctrl["subclass"].to_numpy()
    curve = km_estimate(t, e, w, cl)
    for at in (5.0, 24.0, 60.0):
        u = np.bincount(cl, weights=ij_influence_at(t, e, w, at))
        np.testing.assert_allclose(
            np.sqrt(np.sum(u**2)), curve.at([at])["std_err"].iloc[0], rtol=1e-10
        )
    comp = compare_arms(
        md,
        **PM_COLUMNS,
        weight_col="weights",
        cluster_col="subclass",
        km_cluster_col="subclass",
        landmarks=[24],
    )
    lm = comp.landmarks[0]
    independent = np.hypot(lm.trial.se, lm.control.se)
    assert "shared by the arms" in lm.difference.method
    assert lm.difference.se != pytest.approx(independent, rel=1e-3)  # pairs are correlated
