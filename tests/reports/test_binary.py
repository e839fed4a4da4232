"""reports.binary against R: glm + sandwich (weighted and matched designs) and binom.test.

Tolerances: estimates and limits 1e-6 absolute (R's glm is fitted to epsilon = 1e-14, so
the references are exact to ~1e-12), SEs 1e-6 relative (the issue's bar).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from reports.binary import binomial_test, compare_proportions
from reports.errors import EstimationError

FIX = Path(__file__).resolve().parents[1] / "fixtures"
CASES = {"binary_weighted": None, "binary_matched": "subclass"}


def _load(case):
    frame = pd.read_csv(FIX / case / "data.csv")
    ref = json.loads((FIX / case / "expected.json").read_text())
    return frame, ref


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_r_glm_sandwich(case):
    frame, ref = _load(case)
    res = compare_proportions(
        frame,
        response_col="y",
        arm_col="arm",
        treated_value=1,
        weight_col="w",
        cluster_col=CASES[case],
    )
    assert res.n["trial"] + res.n["control"] == ref["n"]
    for arm in ("trial", "control"):
        got, want = getattr(res, arm), ref[arm]
        assert_allclose(got.estimate, want["estimate"], atol=1e-6)
        assert_allclose(got.se, want["se"], rtol=1e-6)
        assert_allclose([got.lower, got.upper], [want["lower"], want["upper"]], atol=1e-6)
    d, want = res.difference, ref["difference"]
    assert_allclose(d.estimate, want["estimate"], atol=1e-6)
    assert_allclose(d.se, want["se"], rtol=1e-6)
    assert_allclose([d.lower, d.upper], [want["lower"], want["upper"]], atol=1e-6)
    for key in ("ratio", "odds_ratio"):
        got, want = getattr(res, key), ref[key]
        assert_allclose(got.estimate, want["estimate"], atol=1e-6)
        assert_allclose(got.se_log, want["se_log"], rtol=1e-6)
        assert_allclose([got.lower, got.upper], [want["lower"], want["upper"]], atol=1e-6)
        assert_allclose(got.p_value, want["p_value"], atol=1e-6)


def test_unclustered_per_arm_equals_arm_alone_fit():
    # without clusters the joint model's per-arm variance is the arm-alone model's
    frame, ref = _load("binary_weighted")
    res = compare_proportions(
        frame, response_col="y", arm_col="arm", treated_value=1, weight_col="w"
    )
    assert_allclose(res.control.se, ref["control_alone"]["se"], rtol=1e-6)


def test_clustering_changes_the_difference_se():
    frame, _ = _load("binary_matched")
    kw = dict(response_col="y", arm_col="arm", treated_value=1, weight_col="w")
    clustered = compare_proportions(frame, cluster_col="subclass", **kw)
    plain = compare_proportions(frame, **kw)
    assert clustered.difference.se != pytest.approx(plain.difference.se, rel=1e-3)


def test_evalue_of_the_ratio_and_dict_shape():
    frame, _ = _load("binary_weighted")
    res = compare_proportions(
        frame, response_col="y", arm_col="arm", treated_value=1, weight_col="w"
    )
    out = res.to_dict()
    assert set(out) >= {"trial", "control", "difference", "ratio", "odds_ratio", "evalue"}
    assert set(out["ratio"]) >= {"estimate", "lower", "upper", "se_log"}
    assert set(out["difference"]) >= {"estimate", "se", "lower", "upper", "method"}
    rr = res.ratio.estimate
    rr1 = rr if rr >= 1 else 1 / rr
    assert out["evalue"]["point"] == pytest.approx(rr1 + np.sqrt(rr1 * (rr1 - 1)))
    json.dumps(out)


def test_zero_weight_rows_change_nothing():
    frame, _ = _load("binary_weighted")
    kw = dict(response_col="y", arm_col="arm", treated_value=1, weight_col="w")
    full = compare_proportions(frame, **kw)
    dropped = compare_proportions(frame[frame.w > 0], **kw)
    assert full.difference.se == dropped.difference.se
    assert full.n == dropped.n


def test_no_responder_in_an_arm_reports_reasons():
    frame = pd.DataFrame({"y": [0, 0, 0, 1, 0, 1], "arm": [1, 1, 1, 0, 0, 0]})
    res = compare_proportions(frame, response_col="y", arm_col="arm", treated_value=1)
    assert res.trial.estimate == 0 and res.trial.reason
    assert np.isnan(res.ratio.estimate) and res.ratio.reason
    assert np.isnan(res.odds_ratio.estimate) and res.evalue is None
    assert np.isfinite(res.difference.se)


@pytest.mark.parametrize(
    ("values", "match"),
    [([0, 1, 2, 1], "'y'.*0 or 1"), ([0, 1, None, 1], "'y'.*0 or 1")],
)
def test_bad_outcome_is_named(values, match):
    frame = pd.DataFrame({"y": values, "arm": [1, 1, 0, 0]})
    with pytest.raises(EstimationError, match=match):
        compare_proportions(frame, response_col="y", arm_col="arm", treated_value=1)


def test_missing_cluster_on_a_weighted_row_is_an_error():
    frame = pd.DataFrame({"y": [0, 1, 1, 0], "arm": [1, 1, 0, 0], "s": [1, 2, 1, None]})
    with pytest.raises(EstimationError, match="missing cluster"):
        compare_proportions(
            frame, response_col="y", arm_col="arm", treated_value=1, cluster_col="s"
        )


def test_empty_arm_is_an_error():
    frame = pd.DataFrame({"y": [0, 1], "arm": [1, 1]})
    with pytest.raises(EstimationError, match="control arm"):
        compare_proportions(frame, response_col="y", arm_col="arm", treated_value=1)


def test_binomial_test_matches_binom_test():
    ref = json.loads((FIX / "binary_binom" / "expected.json").read_text())
    for case in ref["cases"]:
        t = binomial_test(int(case["x"]), int(case["n"]), case["null_rate"])
        assert_allclose(t.p_value, case["p_value"], atol=1e-6, rtol=1e-9)
        assert_allclose(
            [t.lower, t.upper, t.lower_one_sided],
            [case["lower"], case["upper"], case["lower_one_sided"]],
            atol=1e-6,
        )


def test_binomial_test_rejects_bad_counts():
    with pytest.raises(EstimationError, match="responders"):
        binomial_test(5, 3, 0.3)
    with pytest.raises(EstimationError, match="null_rate"):
        binomial_test(1, 3, 1.2)
