"""Edge cases against survival 3.5-3 (fixtures made by tests/fixtures/survival_common/).

Cases: ties between event and censoring times with zero, integer and non-integer weights and
clusters (``ties_weights``); an arm without events (``no_events``); an arm whose follow-up
ends before the landmark and whose curve drops to 0 (``short_follow_up``); S(t) = 0.5 on a
flat segment and at the last time (``median_flat``). Each is checked under six survfit calls
(unweighted; non-integer / integer weights; with cluster; log-log limits).

Tolerances as in test_reference_pm.py: survival 1e-6 absolute, SE and limits 1e-4 relative,
Cox coefficient 1e-6 absolute (R's own convergence), SEs and score tests 1e-4 relative.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports.compare import compare_arms
from reports.errors import ConvergenceWarning
from reports.median import survival_quantile
from reports.rmst import rmst

FIX = Path(__file__).resolve().parents[1] / "fixtures"
CASES = ("ties_weights", "no_events", "short_follow_up", "median_flat")
CONFIGS = {
    "unweighted": (None, None, "log"),
    "nonint_weights": ("w", None, "log"),
    "int_weights": ("w_int", None, "log"),
    "int_weights_cl": ("w_int", "cl", "log"),
    "nonint_loglog": ("w", None, "log-log"),
    "nonint_cl": ("w", "cl", "log"),
}
CURVE_COLS = ("n_risk", "n_event", "surv", "std_err", "lower", "upper")


def _load(case):
    data = pd.read_csv(FIX / f"survival_{case}" / "data.csv")
    expected = json.loads((FIX / f"survival_{case}" / "expected.json").read_text())
    return data, expected


def _arr(values):
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _compare(data, config):
    w, cl, ct = CONFIGS[config]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return compare_arms(
            data,
            time_col="time",
            event_col="status",
            arm_col="arm",
            treated_value=1,
            weight_col=w,
            cluster_col=cl,
            km_cluster_col=cl,
            conf_type=ct,
            landmarks=[24],
            time_unit="weeks",
        )


def _close(actual, expected, rtol, atol=0.0):
    actual, expected = np.asarray(actual, float), _arr(expected)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    ok = ~np.isnan(expected)
    np.testing.assert_allclose(actual[ok], expected[ok], rtol=rtol, atol=atol)


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("case", CASES)
def test_curves_quantiles_rmst(case, config):
    data, expected = _load(case)
    exp = expected["configs"][config]
    comp = _compare(data, config)
    curves = {"arm=0": comp.control_curve, "arm=1": comp.trial_curve}
    assert {c.variance for c in curves.values()} == {"ij" if exp["robust"] else "greenwood"}
    ref_curve = pd.DataFrame(exp["curve"])
    ref_at = pd.DataFrame(exp["at"])
    for strata, curve in curves.items():
        rc = ref_curve[ref_curve["strata"] == strata]
        np.testing.assert_allclose(curve.time, rc["time"], rtol=0, atol=0)
        _close(curve.surv, rc["surv"], rtol=0, atol=1e-6)
        for col in ("n_risk", "n_event"):
            _close(getattr(curve, col), rc[col], rtol=1e-12)
        for col in ("std_err", "lower", "upper"):
            _close(getattr(curve, col), rc[col].tolist(), rtol=1e-4)
        ra = ref_at[ref_at["strata"] == strata]
        at = curve.at(ra["time"].to_numpy())
        for col in ("n_risk", "surv", "std_err", "lower", "upper"):
            _close(at[col], ra[col].tolist(), rtol=1e-4, atol=1e-12)
        # quantiles (R row order = strata order)
        qi = exp["quantile"]["strata"].index(strata)
        for j, prob in enumerate(exp["quantile"]["probs"]):
            q = survival_quantile(curve, prob)
            _close(
                [q.estimate, q.lower, q.upper],
                [exp["quantile"][k][qi][j] for k in ("estimate", "lower", "upper")],
                rtol=0,
                atol=1e-9,
            )
        # RMST: same as R when tau <= last follow-up, NA with a reason otherwise
        ri = exp["rmean"]["strata"].index(strata)
        est = rmst(curve, exp["rmean"]["tau"])
        if exp["rmean"]["tau"] <= curve.max_time:
            np.testing.assert_allclose(est.estimate, exp["rmean"]["rmean"][ri], rtol=1e-9)
            np.testing.assert_allclose(est.se, exp["rmean"]["se"][ri], rtol=1e-4)
        else:
            assert not est.estimable and "beyond the last follow-up" in est.reason


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("case", CASES)
def test_cox_and_logrank(case, config):
    data, expected = _load(case)
    cox = expected["configs"][config]["cox"]
    comp = _compare(data, config)
    hr, lr = comp.hazard_ratio, comp.logrank
    # the score tests at HR = 1 exist even when the MLE does not (no events in an arm)
    np.testing.assert_allclose(lr.chisq, cox["robscore"], rtol=1e-4)
    np.testing.assert_allclose(lr.chisq_naive, cox["sctest"], rtol=1e-4)
    if case == "no_events":
        assert not hr.converged and "reason" in hr.to_dict()
        return
    assert hr.converged
    np.testing.assert_allclose(hr.log_hr, cox["coef"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(hr.se_log_naive, cox["se"], rtol=1e-4)
    np.testing.assert_allclose(hr.se_log, cox["robust_se"], rtol=1e-4)


def test_no_events_arm_curve_and_median():
    data, _ = _load("no_events")
    with pytest.warns(ConvergenceWarning):
        comp = compare_arms(
            data, time_col="time", event_col="status", arm_col="arm", treated_value=1, landmarks=[5]
        )
    assert np.all(comp.trial_curve.surv == 1.0)
    assert comp.landmarks[0].trial.estimate == 1.0 and comp.landmarks[0].trial.se == 0.0
    med = comp.median_trial.to_dict()
    assert med["estimate"] is None and med["reason"].startswith("not reached")


def test_landmark_beyond_follow_up_is_na_with_reason():
    data, _ = _load("short_follow_up")
    comp = compare_arms(
        data,
        time_col="time",
        event_col="status",
        arm_col="arm",
        treated_value=1,
        landmarks=[24],
        null_rate=0.35,
        time_unit="weeks",
    )
    lm = comp.landmarks[0]
    assert lm.trial.estimable
    assert not lm.control.estimable
    assert "beyond the last follow-up" in lm.control.reason
    out = lm.to_dict()
    assert out["control"]["estimate"] is None and out["difference"]["estimate"] is None
    assert out["control"]["null_test"]["p_value"] is None
    # R would carry the last value forward (extend=TRUE): we check that is what at() reports
    row = comp.control_curve.at(24).iloc[0]
    assert row["beyond_follow_up"] and row["n_risk"] == 0


def test_zero_weight_rows_change_nothing():
    data, _ = _load("ties_weights")
    kw = dict(
        time_col="time",
        event_col="status",
        arm_col="arm",
        treated_value=1,
        weight_col="w",
        landmarks=[10, 20],
        rmst_tau=20,
    )
    full = compare_arms(data, **kw).to_dict()
    dropped = compare_arms(data[data["w"] > 0], **kw).to_dict()
    for key in ("landmarks", "median", "hazard_ratio", "rmst", "logrank"):
        a, b = _leaves(full[key]), _leaves(dropped[key])
        assert [k for k, _ in a] == [k for k, _ in b]
        # same arithmetic up to the order of floating-point sums
        np.testing.assert_allclose([v for _, v in a], [v for _, v in b], rtol=1e-10)


def _leaves(obj, prefix=""):
    if isinstance(obj, dict):
        return [x for k, v in obj.items() for x in _leaves(v, f"{prefix}.{k}")]
    if isinstance(obj, list):
        return [x for i, v in enumerate(obj) for x in _leaves(v, f"{prefix}[{i}]")]
    return [(prefix, float(obj))] if isinstance(obj, (int, float)) else []
