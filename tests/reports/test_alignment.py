"""Endpoint alignment: versions, harmonised multiple imputation, Rubin's rules, tipping point."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as student_t

from reports.alignment import align_endpoint, gap_summary, progression_intervals, rubin
from reports.compare import compare_arms
from reports.errors import EstimationError

GRID = 6.0  # weeks


def _arm(rng, n, scale, gap_weeks, jitter):
    """Weibull latent PFS (weeks) seen at scans every ``gap_weeks`` (+/- jitter); 10% deaths."""
    rows = []
    for _ in range(n):
        t = scale * rng.weibull(1.4)
        death = rng.random() < 0.1
        cens = rng.uniform(30, 90)
        visit = last = 0.0
        while True:
            visit += gap_weeks(rng) + jitter * rng.uniform(-1, 1)
            if death and t <= visit and t <= cens:
                rows.append((t, 1, last, True))
                break
            if visit > cens:
                rows.append((last, 0, last, False))
                break
            if t <= visit:
                rows.append((visit, 1, last, False))
                break
            last = visit
    return pd.DataFrame(rows, columns=["t", "e", "left", "death"])


def _frame(seed=1, control_gap=lambda r: r.uniform(8, 16)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tr = _arm(rng, 60, 36, lambda r: GRID, 0.0).assign(arm="trial", w=1.0, gap=42.0)
    co = _arm(rng, 200, 26, control_gap, 0.0).assign(arm="control")
    co["w"] = rng.gamma(2, 0.5, len(co))
    co["gap"] = 84.0
    return pd.concat([tr, co], ignore_index=True)


def _align(d, **kw):
    args = dict(time_col="t", event_col="e", left_col="left", exact_col="death",
                grid_every=GRID, weight_col="w", gap_col="gap", landmarks=[24],
                time_unit="weeks", rmst_tau=52, imputations=5, random_state=3,
                days_per_unit=7.0, grid_label=(6, "weeks"))
    args.update(kw)
    return align_endpoint(d, **args)


def test_versions_have_the_primary_shapes():
    d = _frame()
    res = _align(d, tipping=False).to_dict()
    primary = compare_arms(d, time_col="t", event_col="e", weight_col="w", landmarks=[24],
                           time_unit="weeks", rmst_tau=52).to_dict()
    for name in ("right_point", "midpoint", "left_point", "harmonised"):
        v = res["estimates"][name]
        assert v["landmarks"][0].keys() == primary["landmarks"][0].keys()
        for arm in ("trial", "control", "difference"):
            assert set(primary["landmarks"][0][arm]) <= set(v["landmarks"][0][arm])
        assert set(primary["hazard_ratio"]) <= set(v["hazard_ratio"])
        assert v["rmst"].keys() == primary["rmst"].keys()
    # the right point is the standard analysis
    assert res["estimates"]["right_point"]["landmarks"] == primary["landmarks"]
    assert res["estimates"]["right_point"]["hazard_ratio"] == primary["hazard_ratio"]
    assert set(res["estimates"]["turnbull"]) == {"landmarks", "method"}
    assert res["grid"] == {"every": 6, "unit": "weeks"}


def test_ordering_of_versions_on_sparse_control_imaging():
    """Left point < midpoint < right point for each arm's S(24); harmonised near Turnbull."""
    res = _align(_frame(), tipping=False)
    s = {k: v.landmarks[0].control.estimate for k, v in res.versions.items()}
    assert s["left_point"] < s["midpoint"] < s["right_point"]
    assert abs(s["harmonised"] - s["turnbull"]) < abs(s["right_point"] - s["turnbull"])


def test_on_the_grid_already_harmonised_equals_right_point():
    """Both arms scanned exactly on the grid: every imputed event lands on its own scan."""
    d = _frame(control_gap=lambda r: GRID)
    res = _align(d, tipping=False)
    rp, hm = res.versions["right_point"], res.versions["harmonised"]
    for arm in ("trial", "control", "difference"):
        a, b = getattr(rp.landmarks[0], arm), getattr(hm.landmarks[0], arm)
        assert b.estimate == pytest.approx(a.estimate, abs=1e-12)
        assert b.se == pytest.approx(a.se, abs=1e-12)  # no between-imputation variance
    assert hm.hazard_ratio.log_hr == pytest.approx(rp.hazard_ratio.log_hr, abs=1e-10)


def test_harmonised_is_seeded():
    d = _frame()
    a = _align(d, tipping=False).to_dict()["estimates"]["harmonised"]
    b = _align(d, tipping=False).to_dict()["estimates"]["harmonised"]
    c = _align(d, tipping=False, random_state=4).to_dict()["estimates"]["harmonised"]
    assert a == b
    assert a["landmarks"][0]["control"]["estimate"] != c["landmarks"][0]["control"]["estimate"]


def test_rubin_rules_by_hand():
    est = np.array([0.30, 0.34, 0.31, 0.29])
    var = np.array([0.002, 0.0021, 0.0019, 0.002])
    q, se, _lo, hi = rubin(est, var, 0.95)
    w, b, m = var.mean(), est.var(ddof=1), 4
    tot = w + (1 + 1 / m) * b
    df = (m - 1) * (1 + w / ((1 + 1 / m) * b)) ** 2
    assert q == pytest.approx(est.mean())
    assert se == pytest.approx(np.sqrt(tot))
    assert hi - q == pytest.approx(student_t.ppf(0.975, df) * np.sqrt(tot))


def test_tipping_point_moves_the_limit_to_the_null():
    d = _frame(seed=5)
    res = _align(d)
    _t, shift, limit = res.tipping_point.landmarks[0]
    assert shift is not None
    prog = (d["arm"] == "control") & (d["e"] == 1) & ~d["death"]

    def lim(delta_days):
        tt = d["t"].where(~prog, np.maximum(d["t"] + delta_days / 7, d["left"]))
        c = compare_arms(d.assign(t=tt), time_col="t", event_col="e", weight_col="w",
                         landmarks=[24])
        return getattr(c.landmarks[0].difference, limit)

    base = lim(0.0)
    assert np.sign(lim(shift - 0.5)) != np.sign(lim(shift + 0.5))  # the limit crosses 0
    assert np.sign(base) != 0
    hr_shift, hr_limit = res.tipping_point.hazard_ratio
    assert hr_shift is not None

    def hr_lim(delta_days):
        tt = d["t"].where(~prog, np.maximum(d["t"] + delta_days / 7, d["left"]))
        c = compare_arms(d.assign(t=tt), time_col="t", event_col="e", weight_col="w")
        return np.log(getattr(c.hazard_ratio, hr_limit))

    assert np.sign(hr_lim(hr_shift - 0.5)) != np.sign(hr_lim(hr_shift + 0.5))


def test_gap_summary_weighted_and_warning():
    g = gap_summary(np.array([42.0, 84.0, 84.0, np.nan]), np.array([1.0, 1.0, 2.0, 1.0]))
    assert (g.n, g.median, g.q1, g.q3) == (3, 84.0, 42.0, 84.0)  # cum. weights .25/.5/1
    res = _align(_frame(), tipping=False)
    assert "not assessed alike" in res.gap_warning


def test_interval_errors_name_column_and_row():
    d = pd.DataFrame({"t": [10.0, 12.0], "e": [1, 1], "left": [4.0, 13.0]})
    with pytest.raises(EstimationError, match=r"'left'.*after the event time.*index 1"):
        progression_intervals(d, time_col="t", event_col="e", left_col="left")
    d = pd.DataFrame({"t": [10.0, 12.0], "e": [1, 1], "left": [np.nan, 3.0]})
    with pytest.raises(EstimationError, match=r"'left'.*missing.*index 0"):
        progression_intervals(d, time_col="t", event_col="e", left_col="left")


def test_bad_options():
    d = _frame()
    with pytest.raises(EstimationError, match="imputations"):
        _align(d, imputations=1)
    with pytest.raises(EstimationError, match="grid_every"):
        _align(d, grid_every=0.0)


def test_imputation_model_option():
    """Default: the grid-cell hazard model; "turnbull" the arm's NPMLE (a sensitivity
    analysis); the method text says which; an unknown model is an error."""
    d = _frame()
    default = _align(d, tipping=False).versions["harmonised"]
    npmle = _align(d, tipping=False, imputation_model="turnbull").versions["harmonised"]
    assert "piecewise-exponential" in default.method and "Turnbull" not in default.method
    assert "Turnbull NPMLE" in npmle.method
    assert default.hazard_ratio.log_hr != npmle.hazard_ratio.log_hr
    # the standard and Turnbull versions do not depend on the imputation model
    other = _align(d, tipping=False, imputation_model="turnbull").versions
    assert _align(d, tipping=False).versions["turnbull"].to_dict() == other["turnbull"].to_dict()
    with pytest.raises(EstimationError, match="imputation_model"):
        _align(d, imputation_model="uniform")


def test_control_only_harmonisation_keeps_the_trial_as_observed():
    from reports.alignment import harmonised_estimate

    rng = np.random.default_rng(8)
    trial = _arm(rng, 60, 36, lambda r: GRID, 0.4).assign(arm="trial", w=1.0)  # +/- 3 days
    control = _arm(rng, 200, 26, lambda r: r.uniform(8, 16), 0.0).assign(arm="control", w=1.0)
    d = pd.concat([trial, control], ignore_index=True)
    args = dict(time_col="t", event_col="e", left_col="left", exact_col="death",
                grid_every=GRID, weight_col="w", landmarks=[24], time_unit="weeks",
                imputations=3, random_state=2)
    kept = harmonised_estimate(d, impute_trial=False, **args).landmarks[0].trial
    standard = compare_arms(d, time_col="t", event_col="e", weight_col="w",
                            landmarks=[24]).landmarks[0].trial
    assert kept.estimate == pytest.approx(standard.estimate, abs=1e-12)
    assert kept.se == pytest.approx(standard.se, abs=1e-12)
    moved = harmonised_estimate(d, **args).landmarks[0].trial  # trial visits off the grid
    assert moved.estimate != pytest.approx(standard.estimate, abs=1e-6)


def test_grid_cell_reads_a_windowed_visit_at_its_nominal_visit():
    from reports.alignment import grid_cell

    lo = np.array([0.0, 5.7, 6.5, 5.0, 6.0, 12.0, 6.0])
    hi = np.array([6.4, 12.5, 11.6, 12.0, 18.0, 12.3, 11.0])
    # within +/- 0.6 weeks of visits (0, 1), (1, 2), (1, 2); 5.0 is off the window; (1, 3)
    # spans two cells; (2, 2) is no cell; 11.0 is off the window
    out = grid_cell(lo, hi, GRID, 0.1)
    np.testing.assert_array_equal(np.isnan(out), [False, False, False, True, True, True, True])
    np.testing.assert_allclose(out[:3], [6.0, 12.0, 12.0])
    assert np.isnan(grid_cell(lo[:1], hi[:1], GRID, 0.0)).all()  # no window: exact cells only
    assert grid_cell(np.array([6.0]), np.array([12.0]), GRID, 0.0)[0] == 12.0


def test_windowed_trial_visits_are_read_at_their_nominal_visits():
    """Trial scans at nominal visits +/- 3 days: the harmonised trial arm is the standard
    analysis of the trial with each progression at its nominal visit (no imputation noise)."""
    from reports.alignment import harmonised_estimate

    rng = np.random.default_rng(3)
    rows = []
    for _ in range(80):
        t = 30 * rng.weibull(1.4)
        k, last = 1, 0.0
        while True:
            visit = k * GRID + rng.integers(-3, 4) / 7
            if t <= visit or k == 15:
                rows.append((visit, int(t <= visit), last, k * GRID))
                break
            last, k = visit, k + 1
    trial = pd.DataFrame(rows, columns=["t", "e", "left", "nominal"]).assign(arm="trial",
                                                                             death=False)
    trial["left"] = np.where(trial["e"] == 1, trial["left"], trial["t"])
    control = _arm(rng, 200, 26, lambda r: r.uniform(8, 16), 0.0).assign(arm="control")
    d = pd.concat([trial, control], ignore_index=True).assign(w=1.0)
    harm = harmonised_estimate(d, time_col="t", event_col="e", left_col="left",
                               exact_col="death", grid_every=GRID, weight_col="w",
                               landmarks=[24], time_unit="weeks", imputations=3,
                               random_state=2).landmarks[0].trial
    snapped = d.assign(tg=np.where((d["arm"] == "trial") & (d["e"] == 1), d["nominal"], d["t"]))
    ref = compare_arms(snapped, time_col="tg", event_col="e", weight_col="w",
                       landmarks=[24]).landmarks[0].trial
    assert harm.estimate == pytest.approx(ref.estimate, abs=1e-12)
    assert harm.se == pytest.approx(ref.se, abs=1e-12)  # no between-imputation variance
