"""WeightedCoxPH with several covariates, Efron and Breslow, robust and clustered, vs R.

Reference: tests/fixtures/survival_cox_multi (coxph, survival 3.5-3, on the pm reference
data with ATT odds weights; cluster = an artificial 25-level centre). Tolerances: coefficients
1e-6 absolute (R's convergence), variances 1e-4 relative (SEs to ~5e-5), log-likelihood 1e-8.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from reports.cox import WeightedCoxPH
from reports.logrank import weighted_logrank
from tests.reports._reference import FIXTURES, PM_COLUMNS, eligible

EXPECTED = json.loads((FIXTURES / "survival_cox_multi" / "expected.json").read_text())


@pytest.mark.parametrize("variant", list(EXPECTED))
def test_multi_covariate_cox_matches_r(variant):
    d = eligible()
    d["centre"] = d["patient_id"].str[1:].astype(int) % 25
    ties = "breslow" if variant.startswith("breslow") else "efron"
    cluster = "centre" if variant.endswith("cluster") else None
    fit = WeightedCoxPH(ties).fit(
        d,
        "pfs_weeks",
        "pfs_event",
        ["treated", "age", "pci"],
        weights_col="w_att",
        cluster_col=cluster,
    )
    ref = EXPECTED[variant]
    np.testing.assert_allclose(fit.coef_.to_numpy(), ref["coef"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(fit.naive_var_.to_numpy(), ref["naive_var"], rtol=1e-4)
    np.testing.assert_allclose(fit.var_.to_numpy(), ref["var"], rtol=1e-4)
    np.testing.assert_allclose(fit.loglik_, ref["loglik"][1], rtol=1e-8)
    assert fit.converged_ and clone(fit).get_params() == fit.get_params()


def test_weighted_logrank_function_equals_compare_output():
    d = eligible()
    lr = weighted_logrank(
        d,
        **PM_COLUMNS,
        weight_col="w_att",
    )
    assert lr.df == 1 and 0 < lr.p_value < 0.05 and "robust" in lr.method
    assert isinstance(lr.summary(), pd.DataFrame)
