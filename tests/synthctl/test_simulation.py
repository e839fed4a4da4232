"""The simulation study, run small and seeded: can the designs recover the known truth?

Scenario (``CI_SPEC``): the sample DGP with the registry imaged on the trial's schedule
(every 6 weeks, +/- 3 days), so the observed-PFS truth ``trial_schedule`` of
``sample_data.truth`` is what an unconfounded comparison estimates; 60 trial patients (with
the sample's 27, 1:1 matching leaves a finite-sample bias of the Cox log HR away from the
null, -0.031 with MC SE 0.013 in the 500-replicate run of benchmarks/README.md: real, and
reported there, but not the large-sample validity this test is about); the truth by Monte
Carlo on a smaller pool (its own MC SE, about 0.005 on the log HR, enters the bias test).

Number of replicates, N = 100 (0.27 s of CPU per replicate for the six designs, so about
15 s on 2 idle cores plus worker start-up; the data generation dominates). Figures from a
200-replicate pilot of this scenario (seed 8):
- bias: |bias| < 3 x MC SE has a 0.3% false-alarm rate per design for an unbiased design;
  the empirical SE of the log HR is 0.15-0.19, so the MC SE at N = 100 is about 0.017 and a
  bias of 0.1 (10% on the HR scale) is caught with power > 99%;
- coverage: the exact binomial 99% band around 0.95 for N = 100 is [0.90, 0.99]; a true
  coverage of 0.85 falls below it with power about 90%;
- naive: its bias on the log HR is -0.145 (the trial is selected toward a better prognosis),
  about 10 MC SEs at N = 100, so "detectably biased" (> 3 MC SEs) has power > 99%.
"""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest

from synthctl.simulation import SimulationSpec, run_simulation
from synthctl.simulation.metrics import binomial_band

N_REPLICATES = 100
ADJUSTED = (
    "nearest_1to1_caliper",
    "nearest_1to2_caliper",
    "att_odds_weights",
    "overlap_weights",
    "entropy_balancing",
)
CI_SPEC = SimulationSpec(
    name="equal schedules, 60 trial patients (CI)",
    seed=20250601,
    scenario={
        "n_registry": 2000,
        "n_trial": 60,
        "registry_interval_weeks": [6.0, 6.0],
        "registry_visit_window_days": 3,
        "truth_pool": 60_000,
        "truth_draws": 100_000,
    },
    truth="trial_schedule",
    covariates=["age_at_index", "sex", "ecog_at_index", "histology", "pfi_months", "crs_hipec"],
    eligibility=[
        "age_at_index >= 18",
        "age_at_index <= 80",
        "ecog_at_index <= 1",
        "histology in ['epithelioid', 'biphasic']",
        "prior_lines == 1",
        "not prior_immunotherapy",
    ],
    designs={
        "naive": {"method": "none"},
        "nearest_1to1_caliper": {
            "method": "nearest",
            "ratio": 1,
            "caliper": 0.2,
            "caliper_scale": "logit",
        },
        "nearest_1to2_caliper": {
            "method": "nearest",
            "ratio": 2,
            "caliper": 0.2,
            "caliper_scale": "logit",
        },
        "att_odds_weights": {"method": "weighting", "weights": "att_odds", "estimand": "ATT"},
        "overlap_weights": {"method": "weighting", "weights": "overlap", "estimand": "ATO"},
        "entropy_balancing": {"method": "weighting", "weights": "entropy", "estimand": "ATT"},
    },
)
# the reproducibility tests: 4 replicates, two designs (one matching, one weighting)
SMALL_SPEC = CI_SPEC.model_copy(
    update={
        "designs": {k: CI_SPEC.designs[k] for k in ("nearest_1to1_caliper", "att_odds_weights")}
    }
)


@pytest.fixture(scope="module")
def study():
    return run_simulation(CI_SPEC, replicates=N_REPLICATES, n_jobs=2)


@pytest.fixture(scope="module")
def serial_small():
    return run_simulation(SMALL_SPEC, replicates=4, n_jobs=1)


def _row(summary: pd.DataFrame, design: str, estimand: str) -> pd.Series:
    hit = summary[(summary["design"] == design) & (summary["estimand"] == estimand)]
    assert len(hit) == 1, (design, estimand)
    return hit.iloc[0]


@pytest.mark.slow
@pytest.mark.parametrize("design", ADJUSTED)
def test_adjusted_designs_unbiased_log_hr_and_nominal_coverage(study, design):
    row = _row(study.summary, design, "log_hr")
    # a design failing on more than 5% of replicates is itself a finding, not a footnote
    assert row["n_valid"] >= 0.95 * N_REPLICATES, (
        study.runs.loc[(study.runs["design"] == design) & study.runs["error"].notna(), "error"]
        .head(3)
        .tolist()
    )
    mcse = np.hypot(row["bias_mcse"], row["truth_mcse"])
    assert abs(row["bias"]) < 3 * mcse, (row["bias"], mcse)
    lo, hi = binomial_band(int(row["n_ci"]), 0.95, 0.99)
    assert lo <= row["coverage"] <= hi, (row["coverage"], lo, hi)


@pytest.mark.slow
def test_naive_comparison_is_detectably_biased(study):
    row = _row(study.summary, "naive", "log_hr")
    # the trial is selected toward a better prognosis: the naive HR flatters the trial
    assert row["bias"] < -3 * np.hypot(row["bias_mcse"], row["truth_mcse"])
    assert row["balance_share"] == 0.0


@pytest.mark.slow
def test_every_replicate_design_and_estimand_is_recorded(study):
    runs = study.runs
    assert len(runs) == N_REPLICATES * len(CI_SPEC.designs) * 3
    assert set(runs["replicate"]) == set(range(N_REPLICATES))
    # a missing estimate is either a recorded failure or an estimand not estimable (RMST
    # beyond follow-up); never a silent gap in the landmark difference or the log HR
    core = runs[runs["estimand"] != "rmst_diff"]
    assert (core["estimate"].notna() | core["error"].notna()).all()


@pytest.mark.slow
def test_same_seed_same_table_with_one_or_two_workers(serial_small):
    parallel = run_simulation(SMALL_SPEC, replicates=4, n_jobs=2)
    pd.testing.assert_frame_equal(serial_small.runs, parallel.runs)
    pd.testing.assert_frame_equal(serial_small.summary, parallel.summary)


@pytest.mark.slow
def test_replicate_i_depends_on_its_own_seed_only(study, serial_small):
    # SeedSequence(seed).spawn(n)[i] does not depend on n: the first replicates of a long
    # run are those of a short run (so a study can be extended without redrawing)
    long_runs = study.runs[
        (study.runs["replicate"] < 4) & study.runs["design"].isin(SMALL_SPEC.designs)
    ].reset_index(drop=True)
    short = serial_small.runs.copy()
    short["design"] = short["design"].astype(str)
    long_runs["design"] = long_runs["design"].astype(str)
    pd.testing.assert_frame_equal(short, long_runs)


@pytest.mark.slow
def test_dask_backend_gives_the_same_table(serial_small):
    import distributed  # in the test extra: a missing install must fail, not skip

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
        joblib.parallel_config(backend="dask"),
    ):
        on_dask = run_simulation(SMALL_SPEC, replicates=4, n_jobs=2)
    pd.testing.assert_frame_equal(serial_small.runs, on_dask.runs)


@pytest.mark.slow
def test_different_seed_gives_different_draws(serial_small):
    other = run_simulation(SMALL_SPEC, replicates=2, seed=1)
    first = serial_small.runs["estimate"].to_numpy()[: len(other.runs)]
    assert not np.allclose(other.runs["estimate"].to_numpy(), first, equal_nan=True)
