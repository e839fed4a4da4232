"""The harmonised estimator as a simulation design option (issue 13)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from connectors import columns as cn
from connectors.registry import IndexRule, RegistryConnector
from sample_data import _tables
from sample_data.paths import SAMPLE_REGISTRY
from sample_data.simulator import SimulationConfig, _simulate
from synthctl.errors import SpecError
from synthctl.simulation.intervals import registry_intervals
from synthctl.simulation.spec import SimulationSpec, default_spec_path, load_simulation_spec
from synthctl.simulation.study import run_simulation

SPEC = default_spec_path().with_name("simulation_alignment.yaml")  # shipped with the package


def test_pandas_intervals_equal_the_sql_on_the_sample_registry():
    cfg = SimulationConfig()  # the shipped sample's configuration
    registry, _ = _simulate(cfg)
    tables = _tables.registry_tables(registry, cfg)
    control = _tables.control_frame(tables)
    mine = registry_intervals(tables, control).set_axis(control[cn.PATIENT_ID].to_numpy())
    with RegistryConnector(f"sqlite:///{SAMPLE_REGISTRY}") as conn:
        pool = conn.candidate_pool(IndexRule(), include_outcomes=True).frame
        sql = conn.progression_intervals(pool[[cn.PATIENT_ID, cn.LINE_ID, cn.INDEX_DATE]])
    sql = sql.set_index(cn.PATIENT_ID)[list(cn.ALIGNMENT_COLUMNS)]
    pd.testing.assert_frame_equal(mine.loc[sql.index], sql, check_dtype=False,
                                  check_names=False)


def test_estimator_option_is_validated():
    base = load_simulation_spec(SPEC).model_dump()
    bad = {**base, "designs": {"x": {"method": "none", "estimator": "magic"}}}
    with pytest.raises(ValueError, match="estimator must be one of"):
        SimulationSpec.model_validate(bad)
    bad = {**base, "designs": {"x": {"method": "none", "imputations": 5}}}
    with pytest.raises(ValueError, match="imputations"):
        SimulationSpec.model_validate(bad)
    for model, estimator in (("magic", "harmonised"), ("turnbull", "standard")):
        bad = {**base, "designs": {"x": {"method": "none", "estimator": estimator,
                                         "imputation_model": model}}}
        with pytest.raises(ValueError, match="imputation_model"):
            SimulationSpec.model_validate(bad)


def test_spec_file_loads():
    spec = load_simulation_spec(SPEC)
    assert spec.truth == "trial_grid"
    assert spec.designs["att_odds_harmonised"]["estimator"] == "harmonised"
    with pytest.raises(SpecError):
        load_simulation_spec("does/not/exist.yaml")


def test_harmonised_design_runs_and_moves_the_control_estimate():
    spec = load_simulation_spec(SPEC)
    res = run_simulation(spec, replicates=2, seed=11)
    runs = res.runs
    assert runs["error"].isna().all()
    lm = runs[runs["estimand"] == "landmark_diff"].pivot(index="replicate", columns="design",
                                                          values="estimate")
    # sparse registry imaging flatters the control arm: harmonising raises the difference
    assert (lm["att_odds_harmonised"] > lm["att_odds_standard"]).all()
    # the imputation model is a real option: the Turnbull sensitivity design differs
    assert not np.allclose(lm["att_odds_harmonised"], lm["att_odds_harmonised_turnbull"])
    again = run_simulation(spec, replicates=2, seed=11).runs
    np.testing.assert_array_equal(runs["estimate"].to_numpy(), again["estimate"].to_numpy())


def test_impute_trial_option_goes_with_harmonised():
    base = load_simulation_spec(SPEC).model_dump()
    bad = {**base, "designs": {"x": {"method": "none", "impute_trial": False}}}
    with pytest.raises(ValueError, match="impute_trial"):
        SimulationSpec.model_validate(bad)
    ok = {**base, "designs": {"x": {"method": "none", "estimator": "harmonised",
                                    "impute_trial": False}}}
    assert SimulationSpec.model_validate(ok).designs["x"]["impute_trial"] is False


def test_harmonised_option_is_the_benchmarked_estimator():
    """Through analyze_study (the alignment block as primary) the simulation reads the same
    numbers as `reports.alignment.harmonised_estimate` on the design's rows (the estimator
    benchmarks/README.md measured)."""
    from reports.alignment import harmonised_estimate
    from synthctl.simulation import study

    spec = load_simulation_spec(SPEC)
    frame, _ = study.simulate_replicate_frame(spec, 7)
    options = spec.designs["att_odds_harmonised"]
    design, *_ = study._apply_design(frame, spec, study._design_options(options), 5)
    got = study._estimate(frame, design, spec, study._blocks(spec, options, 5))
    rows = design.included & (design.weights > 0)
    est = harmonised_estimate(
        frame[rows].assign(w=design.weights[rows]), time_col=study.TIME_COL,
        event_col=cn.PFS_EVENT, left_col=study.LEFT_COL, exact_col=study.EXACT_COL,
        grid_every=float(study.scenario_config(spec, 0).trial_interval_weeks), weight_col="w",
        landmarks=[spec.landmark_weeks], time_unit="weeks",
        rmst_tau=spec.rmst_tau_weeks, imputations=study.SIMULATION_IMPUTATIONS,
        random_state=5, conf_level=spec.conf_level)
    diff = est.landmarks[0].difference
    assert got["landmark_diff"] == pytest.approx(
        (diff.estimate, diff.se, diff.lower, diff.upper), rel=1e-12)
    assert got["log_hr"][0] == pytest.approx(est.hazard_ratio.log_hr, rel=1e-12)
    assert got["log_hr"][1] == pytest.approx(est.hazard_ratio.se_log, rel=1e-12)
