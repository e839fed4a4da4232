"""reports.binary_bootstrap: design-re-running bootstrap of the binary comparison."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from matching import match_cohort
from reports.binary import compare_proportions
from reports.binary_bootstrap import bootstrap_proportions

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "binary_weighted" / "data.csv"


def _frame():
    return pd.read_csv(FIX).query("w > 0").reset_index(drop=True)


def _fixed(rep):
    return pd.DataFrame({"weight": rep["w"].to_numpy()}, index=rep.index)


def test_fixed_weights_bootstrap_se_agrees_with_the_sandwich():
    # weights carried by the rows (no re-estimation): the bootstrap SE estimates the same
    # variance as HC0; 2000 replicates give a Monte-Carlo relative error of about 1.6%,
    # and HC0 differs from the bootstrap by O(1/n): 10% is a loose but failing-capable bar
    f = _frame()
    boot = bootstrap_proportions(
        f, _fixed, response_col="y", treated_value=1, n_boot=2000, random_state=1
    )
    comp = compare_proportions(f, response_col="y", treated_value=1, weight_col="w")
    assert boot.se("difference") == pytest.approx(comp.difference.se, rel=0.10)
    assert boot.se("log_odds_ratio") == pytest.approx(comp.odds_ratio.se_log, rel=0.10)
    applied = boot.apply(comp).to_dict()
    assert applied["difference"]["analytic"]["se"] == pytest.approx(comp.difference.se)
    assert applied["ratio"]["analytic"]["se_log"] == pytest.approx(comp.ratio.se_log)
    assert applied["difference"]["method"].startswith("bootstrap")
    lo, hi = boot.interval("log_ratio")
    assert (applied["ratio"]["lower"], applied["ratio"]["upper"]) == pytest.approx(
        (np.exp(lo), np.exp(hi)))


def test_reproducible_and_failures_counted():
    f = _frame()
    a = bootstrap_proportions(
        f, _fixed, response_col="y", treated_value=1, n_boot=50, random_state=3
    )
    b = bootstrap_proportions(
        f, _fixed, response_col="y", treated_value=1, n_boot=50, random_state=3
    )
    np.testing.assert_array_equal(a.replicates["difference"], b.replicates["difference"])
    calls = {"n": 0}

    def flaky(rep):
        calls["n"] += 1
        if calls["n"] % 5 == 0:
            raise ValueError("design did not converge")
        return _fixed(rep)

    c = bootstrap_proportions(
        f, flaky, response_col="y", treated_value=1, n_boot=50, random_state=3
    )
    assert c.failures == {"ValueError: design did not converge": 10}
    assert c.to_dict()["n_finite"]["difference"] == 40


@pytest.mark.filterwarnings("ignore::UserWarning")  # positivity warnings of replicates
def test_design_rerun_with_matching():
    f = _frame()
    f["x"] = np.random.default_rng(0).normal(size=len(f))

    def redesign(rep):
        res = match_cohort(
            rep,
            ["x"],
            treatment_col="arm",
            treated_value=1,
            id_col=None,
            method="weighting",
            weights="att_odds",
        )
        return pd.DataFrame({"weight": np.asarray(res.weights, float)}, index=rep.index)

    boot = bootstrap_proportions(
        f, redesign, response_col="y", treated_value=1, n_boot=30, random_state=2
    )
    assert np.isfinite(boot.replicates["difference"]).all()
    assert boot.se("difference") > 0
