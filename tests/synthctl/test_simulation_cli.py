"""``synthctl simulate`` through a local Typer app: files written, --json = library, errors."""

from __future__ import annotations

import json
import math

import pytest
import typer
import yaml
from typer.testing import CliRunner

from synthctl.commands.simulate import simulate
from synthctl.errors import SpecError
from synthctl.simulation import load_simulation_spec, run_simulation
from synthctl.simulation.outputs import OUTPUT_FILES

app = typer.Typer()
app.command()(simulate)

SPEC = {
    "name": "cli test",
    "seed": 11,
    "scenario": {"n_registry": 800, "truth_pool": 20_000, "truth_draws": 20_000},
    "covariates": ["age_at_index", "sex", "ecog_at_index", "histology", "pfi_months"],
    "eligibility": ["ecog_at_index <= 1"],
    "designs": {
        "naive": {"method": "none"},
        "att_odds_weights": {"method": "weighting", "weights": "att_odds"},
    },
}


@pytest.fixture()
def spec_path(tmp_path):
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return path


@pytest.mark.slow
def test_cli_writes_outputs_and_json_equals_library(spec_path, tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, [str(spec_path), "--replicates", "3", "--out", str(out), "--json"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    for name in OUTPUT_FILES.values():
        assert (out / name).is_file(), name
    assert (out / "simulation.png").read_bytes()[:4] == b"\x89PNG"
    lib = run_simulation(load_simulation_spec(spec_path), replicates=3)
    expected = lib.summary.to_dict(orient="records")
    assert len(doc["summary"]) == len(expected) == 2 * 3
    for got, want in zip(doc["summary"], expected, strict=True):
        for key, value in want.items():
            if isinstance(value, float) and math.isnan(value):
                assert got[key] is None, key
            elif isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
            else:  # labels (design, estimate names): pytest 9's approx refuses strings
                assert got[key] == value, key
    assert doc["seed"] == 11 and doc["truth_kind"] == "latent"


def test_cli_bad_spec_exits_2_naming_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "replicatez": 5}))
    res = CliRunner().invoke(app, [str(path), "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 2
    assert "replicatez" in res.output and "bad.yaml" in res.output


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        ({"scenario": {"seed": 3}}, "scenario.seed"),
        ({"scenario": {"n_registri": 3}}, "n_registri"),
        ({"designs": {"x": {"method": "nearest", "ratoi": 2}}}, "ratoi"),
        ({"designs": {"x": {"ratio": 2}}}, "'method' is required"),
        ({"designs": {"x": {"method": "none", "ratio": 2}}}, "takes no options"),
        ({"designs": {"x": {"method": "nearest", "random_state": 2}}}, "random_state"),
        ({"truth": "observed"}, "truth"),
    ],
)
def test_spec_errors_name_the_problem(tmp_path, patch, needle):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SPEC, **patch}))
    with pytest.raises(SpecError, match=r"s\.yaml") as err:
        load_simulation_spec(path)
    assert needle in str(err.value)


def test_default_spec_is_shipped_and_valid():
    spec = load_simulation_spec()
    assert set(spec.designs) == {
        "naive",
        "nearest_1to1_caliper",
        "nearest_1to2_caliper",
        "att_odds_weights",
        "overlap_weights",
        "entropy_balancing",
    }
    assert (spec.landmark_weeks, spec.rmst_tau_weeks) == (24, 52)


def _fake_truth(landmark=24.0):
    arm = {"survival_at_landmark_mc_se": 0.003, "rmst_mc_se": 0.04}
    block = {
        "control": arm,
        "trial": arm,
        "landmark_difference": 0.2,
        "rmst_difference": 8.0,
        "log_marginal_hr": -0.6,
        "log_marginal_hr_mc_se": 0.002,
    }
    other = {**block, "landmark_difference": 0.1, "rmst_difference": 7.0, "log_marginal_hr": -0.5}
    return {"landmark": landmark, "rmst_tau": 52.0, "latent": block, "trial_schedule": other}


def test_truth_values_pick_the_block_the_spec_names():
    from synthctl.simulation.truth import truth_mc_se, truth_values

    spec = load_simulation_spec()
    assert truth_values(_fake_truth(), spec).log_hr == -0.6
    sched = spec.model_copy(update={"truth": "trial_schedule"})
    tv = truth_values(_fake_truth(), sched)
    assert (tv.landmark_diff, tv.log_hr, tv.rmst_diff) == (0.1, -0.5, 7.0)
    mcse = truth_mc_se(_fake_truth(), spec)
    assert mcse["landmark_diff"] == pytest.approx(0.003 * 2**0.5)
    assert mcse["log_hr"] == 0.002
    with pytest.raises(SpecError, match="landmark 12"):
        truth_values(_fake_truth(landmark=12.0), spec)
