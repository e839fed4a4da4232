"""Bootstrap (through `analyze_study`): reproducible whatever n_jobs, stratified by arm,
patient resampling, typed statistics, intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reports.analysis import AnalysisDesign, analyze_study, time_to_event_settings
from reports.bootstrap import Resampling, _resample
from reports.endpoints import StatKey
from reports.errors import EstimationError
from tests.reports._reference import eligible

COLS = dict(time_col="pfs_weeks", event_col="pfs_event")
SETTINGS = dict(landmarks=[24], rmst_tau=40, unit="weeks", arm_col="treated", treated_value=1,
                id_col="patient_id")


def settings(**kw):
    return time_to_event_settings("PFS", **COLS, **{**SETTINGS, **kw})


def att_odds_redesign(frame: pd.DataFrame, seed: int | None = None) -> AnalysisDesign:
    """A small design: logistic PS on two covariates, ATT odds weights (no cluster)."""
    x = np.column_stack([np.ones(len(frame)), frame["age"], frame["pci"]])
    y = frame["treated"].to_numpy(float)
    beta = np.zeros(3)
    for _ in range(25):  # Newton-Raphson logistic regression
        p = 1 / (1 + np.exp(-x @ beta))
        beta += np.linalg.solve(x.T @ (x * (p * (1 - p))[:, None]), x.T @ (y - p))
    p = 1 / (1 + np.exp(-x @ beta))
    w = np.where(y == 1, 1.0, p / (1 - p))
    return AnalysisDesign(w, np.ones(len(w), bool), np.full(len(w), np.nan), "weights")


def pair_redesign(frame: pd.DataFrame, seed: int | None = None) -> AnalysisDesign:
    """Greedy 1:1 nearest matching on pci (clusters = pairs; unmatched weight 0); the order
    of the trial patients is shuffled with ``seed`` (a design that uses its seed)."""
    t = list(frame.index[frame["treated"] == 1])
    np.random.default_rng(seed).shuffle(t)
    c = list(frame.index[frame["treated"] == 0])
    w = pd.Series(0.0, index=frame.index)
    cl = pd.Series(np.nan, index=frame.index)
    for k, i in enumerate(t):
        j = min(c, key=lambda r: abs(frame.at[r, "pci"] - frame.at[i, "pci"]))
        c.remove(j)
        w[[i, j]] = 1.0
        cl[[i, j]] = k
    return AnalysisDesign(w.to_numpy(), (w > 0).to_numpy(), cl.to_numpy(), "sets")


@pytest.fixture(scope="module")
def small():
    d = eligible()
    rng = np.random.default_rng(1)
    keep = np.r_[
        np.flatnonzero(d["treated"] == 1)[:30],
        rng.choice(np.flatnonzero(d["treated"] == 0), 150, replace=False),
    ]
    return d.iloc[keep].reset_index(drop=True)


def _run(frame, redesign, **kw):
    return analyze_study(frame, redesign(frame, 0), redesign, settings(**kw))


@pytest.mark.slow
def test_same_seed_same_result_whatever_n_jobs(small):
    """Each replicate's resample and redesign seed come from its own SeedSequence child."""
    a = _run(small, pair_redesign, bootstrap=12, random_state=7, n_jobs=1).bootstrap
    b = _run(small, pair_redesign, bootstrap=12, random_state=7, n_jobs=2).bootstrap
    pd.testing.assert_frame_equal(a.replicates, b.replicates)
    assert a.to_dict() == b.to_dict()
    c = _run(small, pair_redesign, bootstrap=12, random_state=8, n_jobs=1).bootstrap
    key = StatKey("PFS", "log_hr")
    assert not np.allclose(a.replicates[key], c.replicates[key])


def test_replicates_hand_distinct_seeds_to_the_redesign(small):
    seen = []

    def spy(frame, seed=None):
        seen.append(seed)
        return att_odds_redesign(frame, seed)

    analyze_study(small, att_odds_redesign(small), spy, settings(bootstrap=6, random_state=3))
    assert len(seen) == 6 and len(set(seen)) == 6


def test_progress_hook_and_intervals(small):
    calls = []
    res = analyze_study(small, pair_redesign(small, 0), pair_redesign,
                        settings(bootstrap=12, random_state=3),
                        progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (12, 12) and [c[0] for c in calls] == list(range(1, 13))
    stats = {s.key: s for s in res.bootstrap.statistics}
    log_hr = stats[StatKey("PFS", "log_hr")]
    assert log_hr.lower < log_hr.upper
    # the point estimate is the original analysis (the locked design on the full frame)
    analytic = res.analytic["PFS"].comparison
    np.testing.assert_allclose(log_hr.estimate, analytic.hazard_ratio.log_hr)
    out = res.to_dict()["endpoints"]["PFS"]
    lm = out["landmarks"][0]["control"]
    assert lm["method"].startswith("bootstrap percentile") and "analytic" in lm
    assert out["hazard_ratio"]["analytic"]["se_log"] == pytest.approx(analytic.hazard_ratio.se_log)
    assert "cluster" in analytic.hazard_ratio.method
    labels = [s["statistic"] for s in res.to_dict()["bootstrap"]["statistics"]]
    assert labels[:3] == ["landmark_24_trial", "landmark_24_control", "landmark_24_difference"]


def test_stratified_resampling_keeps_arm_sizes_and_patients(small):
    d = pd.concat([small, small.iloc[:10]], ignore_index=True)  # 10 patients with 2 lines
    s = _resample(d, Resampling("treated", 1, "patient_id"), np.random.default_rng(0))
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
    res = _run(small, att_odds_redesign, bootstrap=20, random_state=1, ci="bca")
    assert res.bootstrap.ci == "bca"
    assert any(np.isfinite(s.lower) for s in res.bootstrap.statistics)
    with pytest.raises(EstimationError, match="bootstrap > 0 needs a redesign"):
        analyze_study(small, att_odds_redesign(small), None, settings(bootstrap=2))
    with pytest.raises(EstimationError, match="aligned row by row"):
        analyze_study(small, att_odds_redesign(small.iloc[:5]), None, settings())


def test_patients_with_several_rows_are_clusters_in_the_analysis(small):
    d = pd.concat(
        [small, small.iloc[:10].assign(pfs_weeks=lambda f: f["pfs_weeks"] + 1)], ignore_index=True
    )
    res = _run(d, att_odds_redesign, bootstrap=4, random_state=2)
    comp = res.analytic["PFS"].comparison
    assert "cluster=patient_id" in comp.hazard_ratio.method
    assert comp.trial_curve.cluster == "patient_id"
    assert "patients (id_col)" in res.bootstrap.method


def test_matched_sets_cluster_only_when_the_design_yields_sets(small):
    """Defect 6: matching with replacement has no matched sets: robust per row, no crash."""
    sets = pair_redesign(small, 0)
    with_replacement = AnalysisDesign(sets.weights, sets.included,
                                      np.full(len(small), np.nan), "pairs_with_replacement")
    hr = analyze_study(small, with_replacement, None, settings()).analytic["PFS"]
    assert "each row its own cluster" in hr.comparison.hazard_ratio.method
    hr_sets = analyze_study(small, sets, None, settings()).analytic["PFS"]
    assert "cluster=cluster" in hr_sets.comparison.hazard_ratio.method


def test_one_evalue_for_the_hr_from_the_primary_limits(small):
    """Defect 3: the HR's E-value was computed from the analytic limits and a second one from
    the bootstrap limits; now one, under the endpoint, from the primary (bootstrap) limits."""
    from reports.evalue import evalue_hr

    out = _run(small, att_odds_redesign, bootstrap=20, random_state=4).to_dict()
    hr = out["endpoints"]["PFS"]["hazard_ratio"]
    assert hr["method"].startswith("bootstrap")
    ev = out["endpoints"]["PFS"]["evalues"]["hazard_ratio"]
    assert ev == evalue_hr(hr["estimate"], hr["lower"], hr["upper"]).to_dict()
    assert "evalue" not in out["sensitivity"]


def test_statistics_missing_in_replicates_are_counted_and_refused(small):
    """Defect 2: replicates where the RMST cannot be computed (tau beyond the resample's
    follow-up) were dropped silently ("0 failed"); now counted per statistic with the reason,
    warned about, and below `min_valid_share` the interval is refused (NaN with the reason)."""
    tau = float(small.loc[small["treated"] == 1, "pfs_weeks"].max()) - 1e-6  # near the end
    res = _run(small, att_odds_redesign, bootstrap=20, random_state=5, rmst_tau=tau)
    stats = {s.key.label: s for s in res.bootstrap.statistics}
    rm = stats["rmst_trial"]
    assert rm.n_valid < 20 and rm.n_missing == 20 - rm.n_valid
    assert any("beyond the last follow-up" in r for r in rm.not_estimable)
    assert rm.refused is not None and not np.isfinite(rm.lower)
    out = res.to_dict()
    trial = out["endpoints"]["PFS"]["rmst"]["trial"]
    assert trial["lower"] is None and "replicates give it" in trial["reason"]
    assert trial["analytic"]["se"] > 0  # the analytic interval stays beside it
    rec = next(r for r in out["bootstrap"]["statistics"] if r["statistic"] == "rmst_trial")
    assert rec["n_missing"] == rm.n_missing and rec["refused"]
    assert any("rmst_trial missing in" in w for w in out["warnings"])
    # a complete statistic keeps its percentile interval
    assert stats["log_hr"].n_missing == 0 and stats["log_hr"].refused is None
    # with a permissive share the same replicates give an interval
    loose = _run(small, att_odds_redesign, bootstrap=20, random_state=5, rmst_tau=tau,
                 min_valid_share=0.0)
    assert next(s for s in loose.bootstrap.statistics
                if s.key.label == "rmst_trial").refused is None
