"""Defect 1: the weighted RMST's SE is the infinitesimal-jackknife one, invariant to the scale
of the weights, equal to R's ``residuals(survfit(..., influence = TRUE), times = tau,
type = "sojourn", weighted = TRUE)`` (tests/fixtures/rmst_ij, survival 3.5-3); survfit's
printed ``se(rmean)`` is kept where the weights are counts.

Tolerance 1e-9 relative: the same estimator on the same data (R prints 15 digits)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports.compare import compare_arms
from reports.km import ij_influence_at, km_estimate
from reports.rmst import ij_rmst_influence, rmst

FIX = Path(__file__).resolve().parents[1] / "fixtures"
REF = json.loads((FIX / "rmst_ij" / "rmst_ij.json").read_text())
TAU = REF["tau"]


def _data() -> pd.DataFrame:
    d = pd.read_csv(FIX / "pm_external_control_a" / "pm_external_control_a.csv")
    d = d[d["ecog"] <= 1].reset_index(drop=True)
    ctrl = d["treated"] == 0
    d["w"] = 1.0
    d.loc[ctrl, "w"] = 0.5 + (np.arange(1, ctrl.sum() + 1) % 4) / 3
    return d


@pytest.mark.parametrize("scale", [1, 23.4, 100])
def test_ij_se_equals_r_and_ignores_the_weight_scale(scale):
    d = _data()
    d.loc[d["treated"] == 0, "w"] *= scale
    comp = compare_arms(d, time_col="pfs_weeks", event_col="pfs_event", arm_col="treated",
                        treated_value=1, weight_col="w", rmst_tau=TAU)
    ref = REF[f"control_x{scale:g}"]
    assert comp.rmst.control.estimate == pytest.approx(ref["rmst"], rel=1e-9)
    assert comp.rmst.control.se == pytest.approx(ref["se_ij"], rel=1e-9)
    assert "infinitesimal-jackknife" in comp.rmst.control.method


def test_counts_keep_survfits_printed_se():
    d = _data()
    tr = d[d["treated"] == 1]
    est = rmst(km_estimate(tr["pfs_weeks"], tr["pfs_event"]), TAU)
    assert est.estimate == pytest.approx(REF["trial_counts"]["rmst"], rel=1e-9)
    assert est.se == pytest.approx(REF["trial_counts"]["se_rmean_print"], rel=1e-9)


def test_clustered_influence_equals_r():
    d = _data()
    c = d[d["treated"] == 0].reset_index(drop=True)
    u = ij_rmst_influence(c["pfs_weeks"], c["pfs_event"], c["w"], TAU)
    pairs = np.arange(len(c)) // 2
    se = np.sqrt(np.sum(np.bincount(pairs, weights=u) ** 2))
    assert se == pytest.approx(REF["control_cluster_pairs"]["se_ij"], rel=1e-9)


def test_influence_is_the_integral_of_the_landmark_influence():
    """Independent check: integrate `ij_influence_at` (piecewise constant) over [0, tau]."""
    d = _data()
    c = d[d["treated"] == 0]
    t, e, w = c["pfs_weeks"].to_numpy(), c["pfs_event"].to_numpy(float), c["w"].to_numpy()
    grid = np.unique(np.r_[0.0, t[t < TAU], TAU])
    steps = np.array([ij_influence_at(t, e, w, g) for g in grid[:-1]])
    numeric = (steps * np.diff(grid)[:, None]).sum(axis=0)
    np.testing.assert_allclose(ij_rmst_influence(t, e, w, TAU), numeric, rtol=1e-9, atol=1e-12)
