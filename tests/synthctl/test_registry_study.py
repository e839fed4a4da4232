"""The runner on a registry + ADaM trial files: outcome-blind design, validation exclusions,
password masking. The registry is a small simulated one (sample_data's simulator, 600
patients) written to SQLite (and PostgreSQL for the password test)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from synthctl.cli import app
from synthctl.errors import RegistryConnectionError
from synthctl.runner import run_study
from tests.databases import scratch_pg_schema

cli = CliRunner()

SPEC = """\
study: {{name: "registry study", seed: 20250601}}
trial: {{adsl: adsl.csv, adtte: adtte.csv, paramcd: PFS}}
registry:
  url: "{url}"
{schema}  index: {{after_regimen: platinum_pemetrexed, selection: first}}
eligibility: ["age_at_index >= 18", "ecog_at_index <= 1", "not prior_immunotherapy"]
covariates: [age_at_index, sex, ecog_at_index, histology, pci, crs_hipec, pfi_months]
design: {{method: nearest, ratio: 1, caliper: 0.2, caliper_scale: logit,
         missing: complete_case, balance_threshold: 0.5}}
analysis: {{landmarks: [24], landmark_unit: weeks, null_rate: 0.35, rmst_tau: 52}}
"""


def _spec(folder: Path, url: str = "sqlite:///registry.sqlite", schema: str | None = None,
          name: str = "study.yaml") -> Path:
    path = folder / name
    path.write_text(SPEC.format(url=url, schema=f"  schema: {schema}\n" if schema else ""))
    return path


@pytest.fixture(scope="module")
def scenario():
    from sample_data.simulator import SimulationConfig, simulate_scenario

    # small truth sample: the truth is not used here, only the registry and trial files
    return simulate_scenario(SimulationConfig(seed=7, n_registry=600, n_trial=27,
                                              truth_pool=2000, truth_draws=2000))


@pytest.fixture(scope="module")
def study(scenario, tmp_path_factory) -> Path:
    from sample_data.writer import write_registry_sqlite

    folder = tmp_path_factory.mktemp("registry")
    write_registry_sqlite(scenario.registry_tables, folder / "registry.sqlite")
    scenario.trial_adsl.to_csv(folder / "adsl.csv", index=False)
    scenario.trial_adtte.to_csv(folder / "adtte.csv", index=False)
    return _spec(folder)


@pytest.fixture(scope="module")
def full_run(study):
    return run_study(study, study.parent / "out")


def _copy_study(study: Path, dest: Path) -> Path:
    for name in ("registry.sqlite", "adsl.csv", "adtte.csv", "study.yaml"):
        shutil.copy(study.parent / name, dest / name)
    return dest / "study.yaml"


def test_registry_study_runs_end_to_end(full_run):
    res = full_run.results
    n = res["counts"]
    assert n["trial"] == 27 and 0 < n["control_selected"] <= n["control_pool"]
    assert res["endpoints"]["PFS"]["landmarks"][0]["unit"] == "weeks"
    all_lines = res["sensitivity"]["all_lines"]
    assert all_lines["n_lines"] >= all_lines["n_patients"] >= n["control_pool"]
    assert "cluster=patient_id" in all_lines["hazard_ratio"]["method"]
    reg = full_run.manifest["inputs"]["registry"]
    assert reg["url"].startswith("sqlite:///") and len(reg["pool_sha256"]) == 64
    attrition = pd.read_csv(full_run.folder / "attrition.csv")
    assert attrition["criterion"].iloc[0] == "registry patients"
    assert attrition["n_remaining"].iloc[-1] == n["control_pool"]
    html = (full_run.folder / "report.html").read_text()
    ids = pd.read_csv(full_run.folder / "cohort.csv", dtype=str)["patient_id"]
    assert not [i for i in ids if i in html]


def test_design_runs_without_any_outcome_table(study, full_run, tmp_path):
    """Outcome-blind: on a registry copy whose outcome tables are gone, extract and design
    give the very same design; only analyze needs them (and says so, exit 2)."""
    spec = _copy_study(study, tmp_path)
    con = sqlite3.connect(tmp_path / "registry.sqlite")
    con.execute("DROP TABLE tumour_assessments")
    con.execute("DROP TABLE follow_up")
    con.commit()
    con.close()
    res = cli.invoke(app, ["extract", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    res = cli.invoke(app, ["design", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    for name in ("cohort.csv", "design.json", "attrition.csv"):
        assert (tmp_path / "o" / name).read_bytes() == (full_run.folder / name).read_bytes()
    res = cli.invoke(app, ["analyze", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert "analyze stage" in res.output and "tumour_assessments" in res.output
    assert not (tmp_path / "o" / "results.json").exists()


def test_validation_error_excludes_pool_patients_with_check_id(study, full_run, tmp_path):
    spec = _copy_study(study, tmp_path)
    pool_ids = pd.read_csv(full_run.folder / "cohort.csv", dtype=str)
    victim = pool_ids.loc[pool_ids["arm"] == "control", "patient_id"].iloc[0]
    con = sqlite3.connect(tmp_path / "registry.sqlite")
    # a BAP1 status outside its domain (severity error); BAP1 is neither covariate nor criterion
    con.execute("UPDATE diagnoses SET bap1_status = 'maybe' WHERE patient_id = ?", (victim,))
    con.commit()
    con.close()
    res = run_study(spec, tmp_path / "o", stages=("extract",))
    attrition = pd.read_csv(tmp_path / "o" / "attrition.csv", keep_default_na=False)
    row = attrition[attrition["reason"] == "conformance.domain.diagnoses.bap1_status"]
    assert len(row) == 1 and row["n_excluded"].iloc[0] == 1
    assert attrition["n_remaining"].iloc[-1] == full_run.results["counts"]["control_pool"] - 1
    covs = pd.read_parquet(tmp_path / "o" / "covariates.parquet")
    assert victim not in set(covs["patient_id"])
    assert any("conformance.domain.diagnoses.bap1_status" in w["message"]
               for w in res.manifest["warnings"])


def test_password_in_unreachable_url_never_printed(study, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHCTL_TEST_PW", "pw-Zq81x")
    spec = _copy_study(study, tmp_path)
    _spec(tmp_path, url="postgresql+psycopg://me:${SYNTHCTL_TEST_PW}@127.0.0.1:1/none")
    res = cli.invoke(app, ["run", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert "pw-Zq81x" not in res.output and "***" in res.output
    with pytest.raises(RegistryConnectionError) as err:
        run_study(spec, tmp_path / "o")
    assert "pw-Zq81x" not in str(err.value)


@pytest.mark.db
def test_password_never_reaches_outputs_postgres(scenario, study, tmp_path, monkeypatch):
    """PostgreSQL (trust auth accepts any password): a full run with the password given through
    ${ENV}; it appears in no output file, no log line and not in the report."""
    from sample_data.writer import write_registry

    with scratch_pg_schema() as (schema, engine):
        write_registry(engine, scenario.registry_tables, schema=schema)
        for name in ("adsl.csv", "adtte.csv"):
            shutil.copy(study.parent / name, tmp_path / name)
        secret = "pg-Secret-4471"
        monkeypatch.setenv("SYNTHCTL_PG_PW", secret)
        spec = _spec(tmp_path, url="postgresql+psycopg://postgres:${SYNTHCTL_PG_PW}"
                                   "@127.0.0.1:5432/test", schema=schema)
        res = cli.invoke(app, ["run", str(spec), "--out", str(tmp_path / "o"), "--json"])
        assert res.exit_code == 0, res.output
        assert secret not in res.output
        for path in (tmp_path / "o").rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path.name
        manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
        assert manifest["inputs"]["registry"]["url"] == (
            "postgresql+psycopg://postgres:***@127.0.0.1:5432/test")


def test_analyze_outcomes_equal_the_connectors_own_pool_outcomes(study, full_run):
    """The outcomes analyze joins onto the locked rows (registry: conn.outcomes; trial: ADTTE)
    are exactly those of an extraction with include_outcomes=True, row for row."""
    import numpy as np

    from connectors.registry import IndexRule, RegistryConnector
    from connectors.trial import load_trial_arm
    from synthctl.manifest import Manifest
    from synthctl.specfile import load_spec
    from synthctl.stages._context import StageContext
    from synthctl.stages.analyze import _outcomes

    loaded = load_spec(study)
    covs = pd.read_parquet(full_run.folder / "covariates.parquet")
    manifest = Manifest({"stages": {"analyze": {}}, "warnings": []})
    days, event = _outcomes(StageContext(loaded, full_run.folder, manifest), covs)
    spec = loaded.spec
    with RegistryConnector(spec.registry.url) as conn:
        pool = conn.candidate_pool(IndexRule(), eligibility=list(spec.eligibility),
                                   include_outcomes=True).frame
    trial = load_trial_arm(spec.trial.adsl, spec.trial.adtte)
    expected = pd.concat([trial, pool], ignore_index=True)
    assert expected["patient_id"].tolist() == covs["patient_id"].tolist()
    np.testing.assert_array_equal(expected["pfs_days"].to_numpy(dtype=float), days)
    np.testing.assert_array_equal(expected["pfs_event"].to_numpy(dtype=float), event)


def test_all_index_lines_as_primary_selection(study, full_run, tmp_path):
    """selection: all gives patient x line rows: cohort.csv then carries line_id."""
    spec = _copy_study(study, tmp_path)
    spec.write_text(spec.read_text().replace("selection: first", "selection: all"))
    res = run_study(spec, tmp_path / "o")
    cohort = pd.read_csv(tmp_path / "o" / "cohort.csv", dtype=str, keep_default_na=False)
    assert list(cohort.columns) == ["patient_id", "line_id", "arm", "ps", "weight", "match_id",
                                    "included"]
    control = cohort[cohort["arm"] == "control"]
    assert control["patient_id"].duplicated().any()  # several lines for some patients
    assert (cohort.loc[cohort["arm"] == "trial", "line_id"] == "").all()
    assert res.results["counts"]["control_pool"] == len(control)
    assert res.results["counts"]["control_pool"] > full_run.results["counts"]["control_pool"]
    assert "all_lines" not in res.results["sensitivity"]


def test_registry_reruns_with_bootstrap_are_byte_identical(study, tmp_path):
    spec = _copy_study(study, tmp_path)
    spec.write_text(spec.read_text().replace("rmst_tau: 52}", "rmst_tau: 52, bootstrap: 3}"))
    a = run_study(spec, tmp_path / "a")
    b = run_study(spec, tmp_path / "b")
    assert a.results["bootstrap"]["n_boot"] == 3
    for name in ("results.json", "cohort.csv", "design.json"):
        assert (a.folder / name).read_bytes() == (b.folder / name).read_bytes(), name


def test_analyze_refuses_when_the_registry_pool_changed(study, tmp_path):
    spec = _copy_study(study, tmp_path)
    run_study(spec, tmp_path / "o", stages=("extract", "design"))
    con = sqlite3.connect(tmp_path / "registry.sqlite")
    con.execute("UPDATE treatment_lines SET ecog_at_start = 0 WHERE ecog_at_start = 1")
    con.commit()
    con.close()
    res = cli.invoke(app, ["analyze", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "candidate pool" in res.output, res.output
    assert not (tmp_path / "o" / "results.json").exists()
