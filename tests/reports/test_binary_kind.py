"""reports.endpoints.Binary: the binary endpoint kind run by reports.analysis.analyze_study.

The design-re-running bootstrap, the naive and alternative-design sensitivity analyses and
the warnings come from analyze_study; nothing here is binary-specific code.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from reports.analysis import AnalysisDesign, AnalysisSettings, Sensitivity, analyze_study
from reports.binary import compare_proportions
from reports.endpoints import ENDPOINT_KINDS, Binary, StatKey
from reports.evalue import evalue_rr

FIX = Path(__file__).resolve().parents[1] / "fixtures"


def _case(case):
    frame = pd.read_csv(FIX / case / "data.csv")
    ref = json.loads((FIX / case / "expected.json").read_text())
    return frame, ref


def _settings(**kw):
    return AnalysisSettings(endpoints=(Binary("ORR", "y", null_rate=0.3),), arm_col="arm",
                            treated_value=1, id_col="id", **kw)


def _fixed(frame):
    """A redesign that keeps the rows' own weights (no re-estimation)."""
    def redesign(rep, seed):
        return AnalysisDesign(rep["w"].to_numpy(float), np.ones(len(rep), bool),
                              np.full(len(rep), np.nan), "weights")
    return redesign


def test_registered_kind():
    assert ENDPOINT_KINDS["binary"] is Binary


@pytest.mark.parametrize(("case", "yields"), [("binary_weighted", "weights"),
                                              ("binary_matched", "sets")])
def test_analyze_study_agrees_with_r(case, yields):
    """The kind through analyze_study = R glm + sandwich (clustered on the matched set for a
    matched design: the analysis' one clustering rule); tolerances of tests/reports/
    test_binary.py (1e-6 absolute, SEs 1e-6 relative)."""
    frame, ref = _case(case)
    mid = frame["subclass"].to_numpy(float) if "subclass" in frame else np.full(len(frame),
                                                                                 np.nan)
    design = AnalysisDesign(frame["w"].to_numpy(float), np.ones(len(frame), bool), mid, yields)
    res = analyze_study(frame, design, None, _settings())
    p = res.primary.proportion
    for arm in ("trial", "control", "difference"):
        got, want = getattr(p, arm), ref[arm]
        assert_allclose(got.estimate, want["estimate"], atol=1e-6)
        assert_allclose(got.se, want["se"], rtol=1e-6)
    for key in ("ratio", "odds_ratio"):
        assert_allclose(getattr(p, key).se_log, ref[key]["se_log"], rtol=1e-6)
        assert_allclose(getattr(p, key).lower, ref[key]["lower"], atol=1e-6)
    d = res.to_dict()["endpoints"]["ORR"]
    assert d["kind"] == "binary" and set(d) >= {"proportion", "trial_vs_null", "simon"}
    assert set(d["proportion"]["difference"]) >= {"estimate", "se", "lower", "upper", "method"}
    assert set(d["proportion"]["ratio"]) >= {"estimate", "lower", "upper", "se_log"}
    assert set(d["trial_vs_null"]) >= {"p_value", "lower", "upper"}


def test_statistics_are_typed_on_the_log_scale_for_ratios():
    frame, _ = _case("binary_weighted")
    res = analyze_study(frame, AnalysisDesign(frame["w"].to_numpy(float),
                                              np.ones(len(frame), bool),
                                              np.full(len(frame), np.nan), "weights"),
                        None, _settings())
    stats = res.primary.statistics()
    p = res.primary.proportion
    assert stats[StatKey("ORR", "proportion", "difference")].estimate == p.difference.estimate
    assert stats[StatKey("ORR", "log_ratio")].estimate == pytest.approx(np.log(p.ratio.estimate))
    assert stats[StatKey("ORR", "log_odds_ratio")].se == p.odds_ratio.se_log
    assert [k.label for k in stats] == ["proportion_trial", "proportion_control",
                                        "proportion_difference", "log_ratio", "log_odds_ratio"]


def test_bootstrap_with_fixed_weights_agrees_with_the_sandwich():
    # weights carried by the rows: the bootstrap SE estimates the HC0 variance; 1000
    # replicates give a Monte-Carlo relative error of about 2.2%, and HC0 differs from the
    # bootstrap by O(1/n): 10% is a loose but failing-capable bar
    frame, _ = _case("binary_weighted")
    frame = frame[frame["w"] > 0].reset_index(drop=True)
    design = AnalysisDesign(frame["w"].to_numpy(float), np.ones(len(frame), bool),
                            np.full(len(frame), np.nan), "weights")
    res = analyze_study(frame, design, _fixed(frame), _settings(bootstrap=1000,
                                                                random_state=1))
    comp = compare_proportions(frame, response_col="y", treated_value=1, weight_col="w")
    p = res.primary.proportion
    assert p.difference.se == pytest.approx(comp.difference.se, rel=0.10)
    assert p.odds_ratio.se_log == pytest.approx(comp.odds_ratio.se_log, rel=0.10)
    assert p.difference.analytic[0] == pytest.approx(comp.difference.se)
    assert p.ratio.analytic[0] == pytest.approx(comp.ratio.se_log)
    assert p.difference.method.startswith("bootstrap")
    stat = {s.key: s for s in res.bootstrap.statistics}[StatKey("ORR", "log_ratio")]
    assert (p.ratio.lower, p.ratio.upper) == pytest.approx((np.exp(stat.lower),
                                                            np.exp(stat.upper)))
    # one E-value, from the primary (bootstrap) limits
    assert p.evalue.to_dict() == evalue_rr(p.ratio.estimate, p.ratio.lower,
                                           p.ratio.upper).to_dict()
    # the analytic result stays beside the primary one
    assert res.analytic["ORR"].proportion.difference.se == pytest.approx(comp.difference.se)


def test_replicates_without_a_responder_are_counted_not_dropped():
    # 12 trial patients, one responder: in about (11/12)^12 = 35% of the replicates the
    # trial arm has no responder and the log ratio cannot be computed
    rng = np.random.default_rng(4)
    n_c = 60
    frame = pd.DataFrame({"id": [f"P{i}" for i in range(12 + n_c)],
                          "arm": [1] * 12 + [0] * n_c,
                          "y": [1] + [0] * 11 + list(rng.binomial(1, 0.4, n_c)),
                          "w": 1.0})
    design = AnalysisDesign(np.ones(len(frame)), np.ones(len(frame), bool),
                            np.full(len(frame), np.nan), "weights")
    res = analyze_study(frame, design, _fixed(frame), _settings(bootstrap=200,
                                                                random_state=3))
    stat = {s.key: s for s in res.bootstrap.statistics}[StatKey("ORR", "log_ratio")]
    assert 40 < sum(stat.not_estimable.values()) < 110
    assert stat.refused is not None and np.isnan(res.primary.proportion.ratio.lower)
    assert any("log_ratio missing in" in w for w in res.warnings)
    # the difference needs no responder: every replicate gives it
    diff = {s.key: s for s in res.bootstrap.statistics}[StatKey("ORR", "proportion",
                                                                "difference")]
    assert diff.n_valid == 200


def test_naive_and_alternative_design_sensitivity_of_a_binary_primary():
    frame, _ = _case("binary_matched")
    mid = frame["subclass"].to_numpy(float)
    design = AnalysisDesign(frame["w"].to_numpy(float), np.ones(len(frame), bool), mid, "sets")
    alt = AnalysisDesign(np.ones(len(frame)), np.ones(len(frame), bool),
                         np.full(len(frame), np.nan), "weights")
    res = analyze_study(frame, design, None, _settings(),
                        sensitivities=[Sensitivity("alternative_design", "unweighted", alt)])
    out = res.to_dict()["sensitivity"]
    naive = compare_proportions(frame, response_col="y", treated_value=1)
    assert out["naive"]["proportion"]["difference"]["estimate"] == pytest.approx(
        naive.difference.estimate)
    assert out["alternative_design"]["status"] == "estimated"
    assert "proportion" in out["alternative_design"]


def test_all_responders_is_a_warning_not_a_crash():
    frame = pd.DataFrame({"id": list("abcdefgh"), "arm": [1] * 4 + [0] * 4,
                          "y": [1, 1, 1, 1, 0, 1, 0, 0], "w": 1.0})
    design = AnalysisDesign(np.ones(8), np.ones(8, bool), np.full(8, np.nan), "weights")
    res = analyze_study(frame, design, None, _settings())
    assert any("odds ratio is not estimable" in w for w in res.warnings)
    assert res.to_dict()["endpoints"]["ORR"]["proportion"]["odds_ratio"]["estimate"] is None
