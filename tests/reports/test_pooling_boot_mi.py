"""Bootstrap then impute (reports.boot_mi): seeded, identical for any number of workers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from matching.imputed_design import match_imputed
from reports.boot_mi import bootstrap_imputed, mi_point_estimates
from reports.compare import compare_arms
from reports.pooling import pool_comparisons
from tests.reports._reference import FIXTURES, PM_COLUMNS

COVARIATES = ["age", "female", "ecog", "histology", "pci", "crs_hipec", "pfi_months"]


class Redesign:
    """Impute (m = 2, outcome-blind: only covariates and arm) and weight each completed set."""

    def __call__(self, sample: pd.DataFrame, seed: int) -> list[pd.DataFrame]:
        blind = sample[[*COVARIATES, "treated"]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = match_imputed(blind, COVARIATES, imputations=2, max_iter=2,
                                treatment_col="treated", treated_value=1, random_state=seed,
                                id_col=None, method="weighting", weights="att_odds")
        return [d.weights.to_numpy() for d in res.designs]


class Analyse:
    """One imputed design's comparison (ATT odds weights; robust Cox per row)."""

    def __call__(self, sample: pd.DataFrame, weights) -> object:
        return compare_arms(sample.assign(w=weights), **PM_COLUMNS, weight_col="w",
                            landmarks=[24], rmst_tau=52)


@pytest.fixture(scope="module")
def setup():
    d = pd.read_csv(FIXTURES / "mi_pm_a" / "mi_pm_a_missing.csv")
    # a smaller registry keeps the test fast: every trial patient, 150 registry patients
    d = pd.concat([d[d["treated"] == 1], d[d["treated"] == 0].head(150)], ignore_index=True)
    comps = [Analyse()(d, w) for w in Redesign()(d, 11)]
    return d, pool_comparisons(comps)


def _boot(d, pooled, n_jobs):
    return bootstrap_imputed(d, Redesign(), Analyse(), pooled, arm_col="treated",
                             treated_value=1, n_boot=4, random_state=3, n_jobs=n_jobs)


def test_identical_for_any_number_of_workers(setup):
    d, pooled = setup
    one, two = _boot(d, pooled, 1), _boot(d, pooled, 2)
    pd.testing.assert_frame_equal(one.replicates, two.replicates)
    pd.testing.assert_frame_equal(one.table, two.table)
    assert one.n_failed == 0 and one.m == 2
    other = bootstrap_imputed(d, Redesign(), Analyse(), pooled, arm_col="treated",
                              treated_value=1, n_boot=4, random_state=4)
    assert not other.replicates.equals(one.replicates)


def test_point_estimates_and_apply(setup):
    d, pooled = setup
    boot = _boot(d, pooled, 1)
    tab = boot.table.set_index("statistic")
    out = pooled.to_dict()
    # the estimates are the pooled (Rubin-scale) ones of the locked design
    assert tab.loc["log_hr", "estimate"] == pytest.approx(out["hazard_ratio"]["log_hr"])
    assert tab.loc["landmark_24_control", "estimate"] == pytest.approx(
        out["landmarks"][0]["control"]["estimate"])
    assert tab.loc["landmark_24_difference", "estimate"] == pytest.approx(
        out["landmarks"][0]["difference"]["estimate"])
    theta = boot.replicates["log_hr"].to_numpy()
    np.testing.assert_allclose(np.exp(np.quantile(theta, [0.025, 0.975])),
                               [boot.apply(out)["hazard_ratio"]["lower"],
                                boot.apply(out)["hazard_ratio"]["upper"]])
    applied = boot.apply(out)
    hr = applied["hazard_ratio"]
    assert hr["method"].startswith("bootstrap then impute")
    assert hr["analytic"]["lower"] == out["hazard_ratio"]["lower"]
    assert "Rubin" in applied["landmarks"][0]["difference"]["analytic"]["method"]
    assert applied["rmst"]["difference"]["se"] == pytest.approx(tab.loc["rmst_difference", "se"])


def test_mi_point_estimates_scale():
    """S(t) per arm is averaged on log(-log S): the pooled point of reports.pooling."""
    from types import SimpleNamespace as Ns

    def comp(s):
        e = Ns(estimate=s)
        lm = Ns(time=24.0, trial=e, control=e, difference=Ns(estimate=0.0))
        q = Ns(estimate=10.0)
        hr = Ns(log_hr=0.1, converged=True)
        return Ns(landmarks=[lm], median_trial=q, median_control=q, hazard_ratio=hr, rmst=None)

    out = mi_point_estimates([comp(0.3), comp(0.6)])
    g = np.mean(np.log(-np.log([0.3, 0.6])))
    assert out["landmark_24_trial"] == pytest.approx(np.exp(-np.exp(g)))
    assert out["landmark_24_trial"] != pytest.approx(0.45)
