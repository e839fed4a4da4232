"""The binary-endpoint scenario of `synthctl simulate` (synthctl.simulation.binary, issue 15)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from synthctl.cli import app
from synthctl.errors import SpecError
from synthctl.simulation import load_simulation_spec, run_simulation
from synthctl.simulation.binary import (
    BinaryScenario,
    binary_truth,
    run_binary_replicate,
    simulate_binary_frame,
)

SPEC = Path(__file__).resolve().parents[2] / "synthctl" / "simulation_binary.yaml"


def test_truth_is_the_att_difference():
    # no treatment effect: every patient's two response probabilities are equal
    assert binary_truth(BinaryScenario(b_arm=0.0, truth_draws=20_000)) == (0.0, 0.0)
    # no confounding of response: the ATT difference is the marginal one over the trial
    # population; with b_x = b_z = 0 it is expit(b0 + b_arm) - expit(b0) exactly
    t, se = binary_truth(BinaryScenario(b_x=0.0, b_z=0.0, truth_draws=20_000))
    assert t == pytest.approx(1 / (1 + np.exp(0.1)) - 1 / (1 + np.exp(0.9)), abs=1e-12)
    t, se = binary_truth(BinaryScenario(truth_draws=200_000))
    assert 0 < se < 1e-3 and 0.1 < t < 0.25


def test_frame_sizes_and_confounding():
    s = BinaryScenario(n_trial=300, n_registry=3000)
    f = simulate_binary_frame(s, 1)
    assert (f["arm"] == "trial").sum() == 300 and (f["arm"] == "control").sum() == 3000
    # selection toward larger x: the trial's mean x is higher (sel_x = 0.6)
    assert f.loc[f.arm == "trial", "x"].mean() > f.loc[f.arm == "control", "x"].mean() + 0.3


def test_spec_kind_binary_validates_its_scenario(tmp_path):
    spec = load_simulation_spec(SPEC)
    assert spec.kind == "binary" and spec.covariates == ["x", "z"]
    bad = SPEC.read_text().replace("n_registry: 400", "n_registry: 400, n_centres: 3")
    (tmp_path / "s.yaml").write_text(bad)
    with pytest.raises(SpecError, match=r"unknown binary scenario option\(s\) \['n_centres'\]"):
        load_simulation_spec(tmp_path / "s.yaml")


def test_replicate_estimates_are_analyze_study_on_the_design():
    """One replicate's estimate = compare_proportions on the design's rows (what the
    old benchmarks/sim_binary.py computed), through the one analysis."""
    from matching import match_cohort
    from reports.binary import compare_proportions

    spec = load_simulation_spec(SPEC)
    ss = np.random.SeedSequence(5)
    recs = {r["design"]: r for r in run_binary_replicate(spec, 0, ss)}
    data_seed, design_seed = (int(s) for s in ss.generate_state(2, dtype=np.uint32))
    frame = simulate_binary_frame(BinaryScenario(**spec.scenario), data_seed)
    res = match_cohort(frame, ["x", "z"], treatment_col="arm", treated_value="trial",
                       id_col="patient_id", random_state=design_seed,
                       method="nearest", ratio=1, caliper=0.2, caliper_scale="logit")
    f = frame.assign(w=np.asarray(res.weights, float),
                     m=pd.Series(res.match_id).to_numpy())[np.asarray(res.included, bool)]
    f = f[f.w > 0]
    d = compare_proportions(f, response_col="response", weight_col="w", cluster_col="m",
                            treated_value="trial").difference
    rec = recs["nearest_1to1_caliper"]
    assert (rec["estimate"], rec["se"]) == pytest.approx((d.estimate, d.se), rel=1e-12)
    assert rec["truth"] == binary_truth(BinaryScenario(**spec.scenario))[0]
    naive = compare_proportions(frame, response_col="response", treated_value="trial")
    assert recs["naive"]["estimate"] == pytest.approx(naive.difference.estimate)


def test_simulate_cli_runs_the_binary_scenario(tmp_path):
    res = CliRunner().invoke(app, ["simulate", str(SPEC), "-n", "3", "--out",
                                   str(tmp_path / "sim"), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    rows = summary["summary"]
    assert {r["estimand"] for r in rows} == {"proportion_diff"}
    assert {r["design"] for r in rows} == set(load_simulation_spec(SPEC).designs)


def test_run_simulation_is_reproducible():
    spec = load_simulation_spec(SPEC)
    a = run_simulation(spec, replicates=2, seed=3).runs
    b = run_simulation(spec, replicates=2, seed=3).runs
    pd.testing.assert_frame_equal(a, b)
