"""The truth: calibration to the literature, internal consistency, and a check against data.

Monte Carlo errors quoted below come from the truth's own ``*_mc_se`` entries or are derived
in the test; every tolerance is a multiple (>= 3) of them unless said otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter

from connectors import columns as cols
from sample_data import _dgp
from sample_data._tables import Structure
from sample_data._trial import candidate_pool, second_line_population
from sample_data.simulator import SimulationConfig, simulate_analysis_frames
from sample_data.truth import compute_truth, cox_binary_efron


@pytest.fixture(scope="module")
def truth():
    return compute_truth(SimulationConfig())


def test_second_line_calibration_latent():
    """Latent second-line PFS median of registry patients after platinum-pemetrexed ~3.3 months.

    Target 3.3 months (RAMES gemcitabine + placebo; VIM and CONFIRM bracket 1.8-4.2 months,
    docs/sample_data.md). Checked on *sampled* latent times from an independent pool
    (structure fixed, other seed): n ~ 40,000 second-line patients; SE of a sample median
    ~ 1 / (2 f(m) sqrt(n)) with density f(m) ~ 0.18 per month -> ~0.014 months; pool-to-pool
    variation of the population median adds ~0.01. Tolerance 0.1 month is > 5 SE.
    """
    cfg = SimulationConfig(structure_seed=1)
    pool, _, _ = candidate_pool(np.random.default_rng(123), 80_000, cfg, Structure.from_config(cfg))
    idx = second_line_population(pool)
    t = _dgp.weibull_time(np.random.default_rng(5), pool.lp[idx, 1], 1) / _dgp.DAYS_PER_MONTH
    assert idx.size > 30_000
    assert abs(np.median(t) - 3.3) < 0.1
    assert 3.0 <= np.median(t) <= 4.0  # the literature's range for standard chemotherapy


def test_registry_schedule_lengthens_observed_pfs(truth):
    """Observed registry second-line PFS is longer than latent: 8-16-weekly imaging.

    KM median of the default registry's pool (n ~ 1,000, SE ~ 0.15 months) must sit between
    the latent median (3.3) + 0.5 and 6 months (documented: ~4.5).
    """
    control, _, _ = simulate_analysis_frames(SimulationConfig())
    km = KaplanMeierFitter().fit(control[cols.PFS_DAYS] / _dgp.DAYS_PER_MONTH,
                                 control[cols.PFS_EVENT])
    assert truth["registry_second_line"]["median_months"] + 0.5 < km.median_survival_time_ < 6.0


def test_truth_story_and_consistency(truth):
    lat, sched = truth["latent"], truth["trial_schedule"]
    # the Simon story: ~35% under control, ~55-60% under the trial treatment, at 24 weeks
    assert 0.32 < lat["control"]["survival_at_landmark"] < 0.38
    assert 0.55 < lat["trial"]["survival_at_landmark"] < 0.61
    # the trial population has a better prognosis than the registry's second line
    assert lat["control"]["survival_at_landmark"] > truth["registry_second_line"][
        "survival_at_landmark"] + 0.05
    # non-collapsibility: the marginal HR lies between the conditional HR and 1
    assert truth["conditional_hr"] < lat["marginal_hr"] < 1.0
    # the curves agree with the landmark values (week 24 is on the grid)
    week = truth["curves"]["weeks"].index(24.0)
    assert truth["curves"]["control_latent"][week] == pytest.approx(
        lat["control"]["survival_at_landmark"], abs=1e-6)
    # observation on a schedule delays progressions: later when imaging is sparser
    reg = truth["control_registry_schedule"]
    assert (lat["control"]["survival_at_landmark"] < sched["control"]["survival_at_landmark"]
            < reg["survival_at_landmark"])
    assert lat["control"]["rmst"] < sched["control"]["rmst"] < reg["rmst"]
    for arm in ("control", "trial"):
        assert lat[arm]["survival_at_landmark_mc_se"] < 0.002
        assert sched[arm]["survival_at_landmark_mc_se"] < 0.002


def test_cox_efron_matches_lifelines():
    rng = np.random.default_rng(0)
    x = np.repeat([0.0, 1.0], 300)
    t = np.ceil(rng.exponential(np.where(x == 1, 2.0, 1.0)) * 4)  # heavy ties
    e = rng.random(600) < 0.8
    beta, se = cox_binary_efron(t, x, e)
    cph = CoxPHFitter().fit(pd.DataFrame({"t": t, "e": e, "x": x}), "t", "e")
    assert beta == pytest.approx(cph.params_["x"], abs=1e-6)
    assert se == pytest.approx(cph.standard_errors_["x"], rel=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("hr,arm", [(1.0, "control"), (0.5, "trial")])
def test_truth_matches_a_large_simulated_trial(hr, arm):
    """A 600-patient trial, analysed like the real one, recovers the schedule-observed truth.

    With ``trial_hr = 1`` the trial arm *is* the counterfactual control on the trial's
    schedule. KM S(24 wk) of 600 patients has SE ~ sqrt(0.4 * 0.6 / 600) = 0.02 (little
    censoring before 24 weeks); the truth's MC SE (~0.002) is negligible. Tolerance 3.5 SE.
    """
    cfg = SimulationConfig(seed=21, n_registry=50, n_trial=600, trial_hr=hr,
                           truth_pool=60_000, truth_draws=100_000)
    _, trial, truth = simulate_analysis_frames(cfg)
    km = KaplanMeierFitter().fit(trial[cols.PFS_DAYS], trial[cols.PFS_EVENT])
    s24 = float(km.survival_function_at_times(24 * 7).iloc[0])
    expected = truth["trial_schedule"][arm]["survival_at_landmark"]
    se = np.sqrt(expected * (1 - expected) / len(trial))
    assert abs(s24 - expected) < 3.5 * se


def test_trial_grid_truth_is_the_nominal_grid(truth):
    """``trial_grid`` (the harmonised estimator's estimand) reads both arms on the nominal
    6-week grid: it does not depend on the trial's visit window, and at a landmark on a grid
    visit (24 weeks = visit 4) its survival is the exact-visit ``trial_schedule`` one in each
    arm (S(168 d) = P(progression-or-death day > 168) however the events are dated), while
    the +/- 3-day window moves ``trial_schedule`` by far more than its MC SE."""
    exact = compute_truth(SimulationConfig(trial_visit_window_days=0))
    assert exact["trial_grid"] == truth["trial_grid"]
    grid = truth["trial_grid"]
    for arm in ("control", "trial"):
        assert grid[arm]["survival_at_landmark"] == pytest.approx(
            exact["trial_schedule"][arm]["survival_at_landmark"], abs=1e-6)
        se = grid[arm]["survival_at_landmark_mc_se"]
        assert abs(truth["trial_schedule"][arm]["survival_at_landmark"]
                   - grid[arm]["survival_at_landmark"]) > 10 * se
    assert grid["log_marginal_hr_mc_se"] > 0
    # every progression on the grid, clinical ones included: the HR agrees with the
    # exact-visit trial_schedule HR within 3 MC SEs (the two share the latent draws)
    assert abs(grid["log_marginal_hr"] - exact["trial_schedule"]["log_marginal_hr"]) < (
        3 * grid["log_marginal_hr_mc_se"])
