"""The second sample cohort (gestational trophoblastic tumours): the shipped files are what the
default seed produces, the registry read through its own mapping is the simulated one, and
the truth is what the derivation estimates (issue 15)."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

from connectors.biomarker import NORMALISED, NormalisationRule, derive_normalisation
from connectors.registry import IndexRule, RegistryConnector
from sample_data import gtt_export, paths
from sample_data.gtt import (
    GttConfig,
    gtt_truth,
    simulate_gtt,
    trial_rate_by_derivation,
)

TEXT_FILES = (gtt_export.GTT_MAPPING_FILE, gtt_export.GTT_ADSL_FILE, gtt_export.GTT_ADTTE_FILE,
              gtt_export.GTT_ADLB_FILE, gtt_export.GTT_TRUTH_FILE, gtt_export.GTT_SPEC_FILE)
RULE = NormalisationRule.by_landmark("hcg", 2, 24, "weeks")


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    return gtt_export.write_gtt(tmp_path_factory.mktemp("gtt"))


@pytest.fixture(scope="module")
def scenario():
    return simulate_gtt()


def test_paths_resolve_to_package_files():
    for p in (paths.GTT_REGISTRY, paths.GTT_MAPPING, paths.GTT_ADSL, paths.GTT_ADTTE,
              paths.GTT_ADLB, paths.GTT_TRUTH, paths.DEMO_GTT_SPEC):
        assert p.is_file() and p.parent == paths.SAMPLE_DIR, p
    total = sum(p.stat().st_size for p in paths.SAMPLE_DIR.glob("gtt_*"))
    assert total < 2_000_000  # small enough to ship


@pytest.mark.parametrize("name", TEXT_FILES)
def test_text_files_are_the_default_seed(rebuilt, name):
    assert (paths.SAMPLE_DIR / name).read_bytes() == rebuilt[name].read_bytes(), (
        f"{name} differs from the default seed: run `python -m sample_data.build`")


def _rows(path):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        names = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {n: con.execute(f'SELECT * FROM "{n}" ORDER BY 1').fetchall() for n in names}


def test_registry_is_the_default_seed(rebuilt):
    shipped = _rows(paths.GTT_REGISTRY)
    assert set(shipped) == set(gtt_export.export_frames(simulate_gtt(GttConfig(
        n_registry=5, truth_n=10)).registry_tables))
    assert shipped == _rows(rebuilt[gtt_export.GTT_REGISTRY_FILE])


def test_registry_has_its_own_naming():
    """No physical table or column has a schema name: only the mapping reaches it."""
    from connectors.schema import LOGICAL_SCHEMA

    with sqlite3.connect(f"file:{paths.GTT_REGISTRY}?mode=ro", uri=True) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        codes = {r[0] for r in con.execute("SELECT DISTINCT protocole FROM cnmtt_traitement")}
        units = {r[0] for r in con.execute("SELECT DISTINCT unite FROM cnmtt_biologie")}
    assert not set(tables) & set(LOGICAL_SCHEMA)
    assert "EMA-CO" in codes and "ema_co" not in codes and units == {"mUI/mL", "mUI/L"}


def test_mapping_reads_the_simulated_registry(scenario):
    """Through the mapping, the connector's normalisation of every index line is the pandas
    derivation on the simulator's canonical tables."""
    with RegistryConnector(f"sqlite:///{paths.GTT_REGISTRY}", mapping=paths.GTT_MAPPING) as conn:
        keys = conn.candidate_pool(IndexRule(after_regimen="ema_co")).frame[
            ["patient_id", "line_id", "index_date"]]
        got = conn.normalisation(keys, RULE)
    lab = scenario.registry_tables["lab_results"].merge(keys, on="patient_id")
    raw = pd.DataFrame({"key": lab["patient_id"], "analyte": lab["analyte"],
                        "days": (pd.to_datetime(lab["lab_date"])
                                 - pd.to_datetime(lab["index_date"])).dt.days,
                        "value": lab["value"], "unit": lab["unit"], "uln": lab["uln"]})
    want = derive_normalisation(raw, list(keys["patient_id"]), RULE)
    np.testing.assert_array_equal(got[NORMALISED].to_numpy(), want[NORMALISED].to_numpy())
    assert got.attrs["n_unmeasured"] == want.attrs["n_unmeasured"] > 0
    assert got.attrs["n_no_uln"] == want.attrs["n_no_uln"] > 0
    lines = scenario.registry_tables["treatment_lines"]
    assert len(keys) == lines["end_date"].isna().sum()  # one salvage line per patient reaching it


def test_tables_follow_the_schema(scenario):
    from connectors.schema import LOGICAL_SCHEMA

    assert set(scenario.registry_tables) == set(LOGICAL_SCHEMA)
    for name, specs in LOGICAL_SCHEMA.items():
        table = scenario.registry_tables[name]
        assert list(table.columns) == [s.name for s in specs], name
        for spec in specs:
            if not spec.nullable or spec.primary_key:
                assert table[spec.name].notna().all(), (name, spec.name)
            if spec.primary_key:
                assert table[spec.name].is_unique, (name, spec.name)
    assert len(scenario.adsl) == 27 and set(scenario.adlb["PARAMCD"]) == {"HCG"}


def test_truth_file_is_the_truth_function():
    shipped = json.loads(paths.GTT_TRUTH.read_text())
    assert {k: v for k, v in shipped.items() if k != "config"} == gtt_truth(GttConfig())


@pytest.mark.slow
def test_truth_is_what_the_derivation_estimates():
    """A 4,000-patient trial run through the shared derivation (`derive_normalisation` on its
    ADLB) hits the truth's trial rate: |estimate - truth| < 4 binomial SEs (+ the truth's MC
    SE); the truth's own Monte Carlo skips the simulated values (one block of normal results),
    so this checks that shortcut."""
    truth = gtt_truth(GttConfig())["normalisation_rate"]
    big = simulate_gtt(GttConfig(seed=5, n_trial=4000, n_registry=5, truth_n=10))
    est = trial_rate_by_derivation(big)
    se = np.sqrt(truth["trial"] * (1 - truth["trial"]) / 4000) + truth["mc_se"]
    assert abs(est - truth["trial"]) < 4 * se, (est, truth["trial"])
    control = simulate_gtt(GttConfig(seed=6, n_trial=4000, n_registry=5, truth_n=10,
                                     effect=1.0))
    est_c = trial_rate_by_derivation(control)
    assert abs(est_c - truth["control"]) < 4 * se, (est_c, truth["control"])


def test_demo_gtt_spec_validates_and_points_at_the_shipped_files():
    from synthctl.specfile import load_spec

    spec = load_spec(paths.DEMO_GTT_SPEC).spec
    assert spec.registry.url == f"sqlite:///{paths.GTT_REGISTRY}"
    assert spec.registry.mapping == paths.GTT_MAPPING
    assert spec.trial.adlb == paths.GTT_ADLB and spec.trial.adsl == paths.GTT_ADSL
    assert spec.analysis.primary_endpoint == "NORMALISATION"
    n = spec.analysis.normalisation
    assert (n.analyte, n.n_consecutive, n.by, n.unit, n.adlb_paramcd) == (
        "hcg", 2, 24, "weeks", "HCG")
