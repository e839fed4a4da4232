"""Bootstrap: reproducible whatever n_jobs, stratified by arm, patient resampling, intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reports.bootstrap import _Config, _resample, bootstrap_comparison
from reports.errors import EstimationError
from tests.reports._reference import PM_COLUMNS, eligible

KW = dict(
    **PM_COLUMNS,
    landmarks=[24],
    rmst_tau=40,
    time_unit="weeks",
)


def att_odds_redesign(frame: pd.DataFrame) -> pd.DataFrame:
    """A small design: logistic PS on two covariates, ATT odds weights (no cluster)."""
    x = np.column_stack([np.ones(len(frame)), frame["age"], frame["pci"]])
    y = frame["treated"].to_numpy(float)
    beta = np.zeros(3)
    for _ in range(25):  # Newton-Raphson logistic regression
        p = 1 / (1 + np.exp(-x @ beta))
        beta += np.linalg.solve(x.T @ (x * (p * (1 - p))[:, None]), x.T @ (y - p))
    p = 1 / (1 + np.exp(-x @ beta))
    w = np.where(y == 1, 1.0, p / (1 - p))
    return pd.DataFrame({"weight": w}, index=frame.index)


def pair_redesign(frame: pd.DataFrame) -> pd.DataFrame:
    """Greedy 1:1 nearest matching on pci (clusters = pairs; unmatched weight 0)."""
    t = frame.index[frame["treated"] == 1]
    c = list(frame.index[frame["treated"] == 0])
    w = pd.Series(0.0, index=frame.index)
    cl = pd.Series(np.nan, index=frame.index)
    for k, i in enumerate(t):
        j = min(c, key=lambda r: abs(frame.at[r, "pci"] - frame.at[i, "pci"]))
        c.remove(j)
        w[[i, j]] = 1.0
        cl[[i, j]] = k
    return pd.DataFrame({"weight": w, "cluster": cl})


@pytest.fixture(scope="module")
def small():
    d = eligible()
    rng = np.random.default_rng(1)
    keep = np.r_[
        np.flatnonzero(d["treated"] == 1)[:30],
        rng.choice(np.flatnonzero(d["treated"] == 0), 150, replace=False),
    ]
    return d.iloc[keep].reset_index(drop=True)


@pytest.mark.slow
def test_same_seed_same_result_whatever_n_jobs(small):
    a = bootstrap_comparison(small, att_odds_redesign, n_boot=12, random_state=7, n_jobs=1, **KW)
    b = bootstrap_comparison(small, att_odds_redesign, n_boot=12, random_state=7, n_jobs=2, **KW)
    pd.testing.assert_frame_equal(a.replicates, b.replicates)
    pd.testing.assert_frame_equal(a.table, b.table)
    c = bootstrap_comparison(small, att_odds_redesign, n_boot=12, random_state=8, n_jobs=1, **KW)
    assert not np.allclose(a.replicates["log_hr"], c.replicates["log_hr"])


def test_progress_hook_and_intervals(small):
    calls = []
    res = bootstrap_comparison(
        small,
        pair_redesign,
        n_boot=12,
        random_state=3,
        progress=lambda done, total: calls.append((done, total)),
        **KW,
    )
    assert calls[-1] == (12, 12) and [c[0] for c in calls] == list(range(1, 13))
    tab = res.table.set_index("statistic")
    assert tab.loc["log_hr", "lower"] < tab.loc["log_hr", "upper"]
    # the point estimate is the original analysis (design on the full frame)
    np.testing.assert_allclose(tab.loc["log_hr", "estimate"], res.comparison.hazard_ratio.log_hr)
    out = res.apply().to_dict()
    lm = out["landmarks"][0]["control"]
    assert lm["method"].startswith("bootstrap percentile") and "analytic" in lm
    assert out["hazard_ratio"]["analytic"]["se_log"] == pytest.approx(
        res.comparison.hazard_ratio.se_log
    )
    assert "cluster" in res.comparison.hazard_ratio.method


def test_stratified_resampling_keeps_arm_sizes_and_patients(small):
    d = pd.concat([small, small.iloc[:10]], ignore_index=True)  # 10 patients with 2 lines
    cfg = _Config(
        "pfs_weeks",
        "pfs_event",
        "treated",
        1,
        "patient_id",
        "weight",
        "cluster",
        (24.0,),
        None,
        None,
        "log",
    )
    s = _resample(d, cfg, np.random.default_rng(0))
    assert (s["treated"] == 1).sum() >= 30 and (s["treated"] == 0).sum() == 150
    base = s["patient_id"].str.split("~").str[0]
    # a patient is drawn with all their rows: every copy of a 2-line patient has 2 rows
    counts = s.groupby("patient_id").size()
    two_line = set(small["patient_id"].iloc[:10])
    assert all(
        counts[pid] == 2 for pid in counts.index if base[s["patient_id"] == pid].iloc[0] in two_line
    )
    assert (s.groupby("patient_id")["treated"].nunique() == 1).all()


def test_bca_runs_and_bad_redesign_is_reported(small):
    res = bootstrap_comparison(
        small, att_odds_redesign, n_boot=20, random_state=1, ci="bca", n_jackknife_groups=5, **KW
    )
    assert res.ci == "bca" and np.isfinite(res.table["lower"]).any()
    with pytest.raises(EstimationError, match="weight"):
        bootstrap_comparison(small, lambda f: pd.DataFrame(index=f.index), n_boot=2, **KW)


def test_patients_with_several_rows_are_clusters_in_the_analysis(small):
    d = pd.concat(
        [small, small.iloc[:10].assign(pfs_weeks=lambda f: f["pfs_weeks"] + 1)], ignore_index=True
    )
    res = bootstrap_comparison(
        d, att_odds_redesign, n_boot=4, random_state=2, id_col="patient_id", **KW
    )
    assert "cluster=patient_id" in res.comparison.hazard_ratio.method
    assert res.comparison.trial_curve.cluster == "patient_id"
    assert "patients (id_col)" in res.method
