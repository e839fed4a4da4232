"""pm_external_control_a: the facade reproduces MatchIt 4.7.2 (PS, pairs, balance, ATT weights).

The R script applies ``ecog <= 1`` first and fixes the factor levels (ecog 0/1, histology
epithelioid/biphasic/sarcomatoid); ``_refs.pm_external_control_a`` does the same.
Tolerances as in test_reference_lalonde: 1e-6 absolute on PS, SMD, variance ratios, weights,
ESS (R wrote 15 significant digits; we agree to ~1e-14). Pairs are compared exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matching import match_cohort

from ._refs import PM_COVARIATES, by_id, pm_external_control_a, r_name

FACTORS = ("ecog", "histology")
VARIANTS = {
    "nearest_1to1_nocaliper": {"caliper": None, "caliper_scale": "ps"},
    "nearest_1to1_caliper02_ps": {"caliper": 0.2, "caliper_scale": "ps"},
    "nearest_1to1_caliper02_logit": {"caliper": 0.2, "caliper_scale": "logit"},
    "nearest_1to2_caliper02_logit": {"caliper": 0.2, "caliper_scale": "logit", "ratio": 2},
}


def _run(d, **kw):
    return match_cohort(d, PM_COVARIATES, treatment_col="treated", treated_value=1, **kw)


@pytest.fixture(scope="module")
def pm():
    return pm_external_control_a()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_pairs_balance(pm, variant):
    d, ref = pm
    res = _run(d, **VARIANTS[variant])
    r = ref[variant]
    np.testing.assert_allclose(res.ps.to_numpy(), by_id(ref["ps_glm"]["ps"], d["patient_id"]),
                               atol=1e-6, rtol=0)
    ids = d["patient_id"].to_numpy()
    sets = {}
    for i in np.flatnonzero(res.treated.to_numpy()):
        mid = res.match_id.iloc[i]
        sets[ids[i]] = [] if pd.isna(mid) else sorted(
            ids[res.match_id.eq(mid).fillna(False).to_numpy(bool) & ~res.treated.to_numpy()])
    assert sets == {p["treated"]: sorted(p["controls"]) for p in r["pairs"]}
    assert res.counts["trial_selected"] == r["n_matched_treated"]
    assert res.counts["control_selected"] == r["n_matched_control"]
    ours = res.balance.frame.set_index("covariate")
    ours.index = [r_name(c, FACTORS) for c in ours.index]
    for when in ("before", "after"):
        want = pd.DataFrame(r[f"balance_{when}"]).set_index("covariate")
        got = ours.loc[want.index]
        np.testing.assert_allclose(got[f"smd_{when}"], want["smd"].astype(float), atol=1e-6)
        np.testing.assert_allclose(got[f"variance_ratio_{when}"].astype(float),
                                   want["var_ratio"].astype(float), atol=1e-6, equal_nan=True)


def test_att_odds_weights_and_ess(pm):
    d, ref = pm
    res = _run(d, method="weighting", weights="att_odds")
    want = ref["att_odds_weights"]
    np.testing.assert_allclose(res.weights.to_numpy(), by_id(want["weight"], d["patient_id"]),
                               atol=1e-6, rtol=1e-9)
    assert res.ess["control"] == pytest.approx(want["ess_control"], abs=1e-6)
    assert res.match_id.isna().all()


def test_caliper_on_ps_scale_binds(pm):
    """A PS-scale caliper must bind (Debian's MatchIt 4.5.1 bug: it never did)."""
    d, _ = pm
    res = _run(d, caliper=0.2, caliper_scale="ps")
    assert res.counts["trial_selected"] < res.counts["trial"]
    assert any(x["reason"].startswith("no control within") for x in res.exclusions)
