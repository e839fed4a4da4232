"""`reports.analysis_mi.analyze_imputed`: the typed pooled analysis, bootstrap then impute
(seeded, identical for any number of workers), pooled KM curves, pooled sensitivities.

(R agreement of the pooled numbers: tests/reports/test_pooling_r.py.)
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from matching.imputed_design import match_imputed
from reports.analysis import AnalysisDesign, Sensitivity, time_to_event_settings
from reports.analysis_mi import _PooledPoint, analyze_imputed, pooling_scale
from reports.endpoints import StatKey
from reports.km import nelson_aalen_at
from reports.pooling import pool_curves
from tests.reports._reference import FIXTURES, PM_COLUMNS

COVARIATES = ["age", "female", "ecog", "histology", "pci", "crs_hipec", "pfi_months"]


class Redesign:
    """Impute (m = 2, outcome-blind: only covariates and arm) and weight each completed set."""

    def __call__(self, sample: pd.DataFrame, seed: int) -> list[AnalysisDesign]:
        blind = sample[[*COVARIATES, "treated"]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = match_imputed(blind, COVARIATES, imputations=2, max_iter=2,
                                treatment_col="treated", treated_value=1, random_state=seed,
                                id_col=None, method="weighting", weights="att_odds")
        return [AnalysisDesign.from_result(d) for d in res.designs]


def _settings(**kw):
    return time_to_event_settings(
        "PFS", time_col=PM_COLUMNS["time_col"], event_col=PM_COLUMNS["event_col"],
        landmarks=[24], unit="weeks", rmst_tau=52, arm_col="treated", treated_value=1,
        id_col="patient_id", **kw)


@pytest.fixture(scope="module")
def setup():
    d = pd.read_csv(FIXTURES / "mi_pm_a" / "mi_pm_a_missing.csv")
    # a smaller registry keeps the test fast: every trial patient, 150 registry patients
    d = pd.concat([d[d["treated"] == 1], d[d["treated"] == 0].head(150)], ignore_index=True)
    return d, Redesign()(d, 11)


def _boot(d, designs, n_jobs, seed=3):
    return analyze_imputed(d, designs, Redesign(), _settings(bootstrap=4, n_jobs=n_jobs,
                                                             random_state=seed), naive=False)


def test_bootstrap_then_impute_identical_for_any_number_of_workers(setup):
    d, designs = setup
    one, two = _boot(d, designs, 1), _boot(d, designs, 2)
    pd.testing.assert_frame_equal(one.bootstrap.replicates, two.bootstrap.replicates)
    assert one.to_dict() == two.to_dict()
    assert one.bootstrap.n_failed == 0
    other = _boot(d, designs, 1, seed=4)
    assert not other.bootstrap.replicates.equals(one.bootstrap.replicates)


def test_bootstrap_keeps_the_pooled_estimates_and_moves_rubin_to_analytic(setup):
    d, designs = setup
    boot = _boot(d, designs, 1)
    rubin = analyze_imputed(d, designs, None, _settings(), naive=False)
    pb, pr = boot.primary.comparison, rubin.primary.comparison
    assert pb.hazard_ratio.log_hr == pr.hazard_ratio.log_hr
    assert pb.landmarks[0].difference.estimate == pr.landmarks[0].difference.estimate
    theta = boot.bootstrap.replicates[StatKey("PFS", "log_hr")].to_numpy()
    np.testing.assert_allclose(np.exp(np.quantile(theta, [0.025, 0.975])),
                               [pb.hazard_ratio.lower, pb.hazard_ratio.upper])
    assert pb.hazard_ratio.analytic == (pr.hazard_ratio.se_log, pr.hazard_ratio.lower,
                                        pr.hazard_ratio.upper)
    out = boot.to_dict()
    assert "bootstrap then impute" in out["bootstrap"]["method"]
    assert "bootstrap then impute" in out["endpoints"]["PFS"]["hazard_ratio"]["method"]
    assert out["endpoints"]["PFS"]["landmarks"][0]["difference"]["analytic"]["se"] == \
        pytest.approx(pr.landmarks[0].difference.se)
    # the analytic results are Rubin's (the same object as without the bootstrap)
    assert boot.analytic["PFS"].to_dict() == rubin.primary.to_dict()


def test_replicate_point_estimates_on_the_pooling_scale(setup):
    d, designs = setup
    point = _PooledPoint(_settings())(d, designs)
    key = StatKey("PFS", "landmark", "control", 24.0)
    per = [_PooledPoint(_settings())(d, [x, x])[key].estimate for x in designs]
    g = np.mean(np.log(-np.log(per)))
    assert point[key].estimate == pytest.approx(np.exp(-np.exp(g)))
    assert pooling_scale(key) == "cloglog"
    assert pooling_scale(StatKey("PFS", "landmark", "difference", 24.0)) == "identity"
    assert pooling_scale(StatKey("PFS", "median", "trial")) is None


def test_pooled_curves(setup):
    d, designs = setup
    res = analyze_imputed(d, designs, None, _settings(), naive=False)
    per = res.primary.per_imputation
    curves = [r.comparison.control_curve for r in per]
    pooled = res.primary.comparison.control_curve
    t = np.array([10.0, 24.0, 40.0])
    want = np.mean([c.at(t)["surv"].to_numpy() for c in curves], axis=0)
    np.testing.assert_allclose(pooled.at(t)["surv"].to_numpy(), want)
    assert (pooled.at(t)["lower"] <= pooled.at(t)["surv"]).all()
    same = pool_curves([curves[0], curves[0]])
    np.testing.assert_allclose(same.at(t)["surv"], curves[0].at(t)["surv"])
    np.testing.assert_allclose(same.at(t)["std_err"], curves[0].at(t)["std_err"], rtol=1e-9)


def test_pooled_sensitivity(setup):
    d, designs = setup
    sens = Sensitivity("alt", "the same designs, pooled", None, imputed=tuple(designs))
    res = analyze_imputed(d, designs, None, _settings(), sensitivities=[sens], naive=False)
    s = res.to_dict()["sensitivity"]["alt"]
    assert s["status"] == "estimated"
    assert s["hazard_ratio"] == res.to_dict()["endpoints"]["PFS"]["hazard_ratio"]


def test_needs_two_designs(setup):
    from reports.errors import EstimationError

    d, designs = setup
    with pytest.raises(EstimationError, match="m >= 2"):
        analyze_imputed(d, designs[:1], None, _settings())


def test_nelson_aalen_at():
    time = np.array([3.0, 1.0, 2.0, 2.0, 5.0])
    event = np.array([1, 1, 1, 0, 1])
    # risk sets: t=1: 5 (1 event); t=2: 4 (1 event, 1 censored); t=3: 2; t=5: 1
    h1, h2, h3 = 1 / 5, 1 / 5 + 1 / 4, 1 / 5 + 1 / 4 + 1 / 2
    np.testing.assert_allclose(nelson_aalen_at(time, event), [h3, h1, h2, h2, h3 + 1])
