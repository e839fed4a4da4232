"""The shipped sample files are exactly what ``python -m sample_data.build`` makes."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest
import yaml

from connectors import schema
from sample_data import build, paths
from sample_data.simulator import simulate_scenario
from sample_data.writer import _native_columns


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    return build.build(out)


def _rows(path, table):
    pk = [s.name for s in schema.LOGICAL_SCHEMA[table] if s.primary_key]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY {', '.join(pk)}").fetchall()


def test_paths_resolve_to_package_files():
    for p in (paths.SAMPLE_REGISTRY, paths.TRIAL_ADSL, paths.TRIAL_ADTTE, paths.TRUTH_JSON,
              paths.DEMO_SPEC):
        assert p.is_file(), p
        assert p.parent == paths.SAMPLE_DIR


@pytest.mark.parametrize("name", [build.ADSL_FILE, build.ADTTE_FILE, build.TRUTH_FILE,
                                  build.SPEC_FILE])
def test_text_files_are_the_default_seed(rebuilt, name):
    assert (paths.SAMPLE_DIR / name).read_bytes() == rebuilt[name].read_bytes(), (
        f"{name} differs from the default seed: run `python -m sample_data.build`"
    )


def test_registry_is_the_default_seed(rebuilt):
    for table in schema.REQUIRED_TABLES:  # the mesothelioma registry has no lab_results
        assert _rows(paths.SAMPLE_REGISTRY, table) == _rows(rebuilt[build.REGISTRY_FILE], table)


def test_registry_holds_the_simulated_tables():
    """Row by row, the SQLite values are the simulator's (dates ISO, booleans 0/1)."""
    tables = simulate_scenario().registry_tables
    assert set(tables) == set(schema.REQUIRED_TABLES)
    for table in schema.REQUIRED_TABLES:
        native = _native_columns(table, tables[table])
        expected = list(zip(*native.values(), strict=True))
        assert sorted(_rows(paths.SAMPLE_REGISTRY, table), key=repr) == sorted(expected, key=repr)


def test_truth_constant_is_the_shipped_truth():
    import json

    from sample_data import simulator

    shipped = json.loads(paths.TRUTH_JSON.read_text())
    assert shipped == simulator.TRUTH
    assert {k: v for k, v in shipped.items() if k != "config"} == simulate_scenario().truth


def test_demo_spec_points_at_the_shipped_files():
    spec = yaml.safe_load(paths.DEMO_SPEC.read_text())
    assert spec["registry"]["url"] == "sqlite:///renape_sample.sqlite"
    assert (paths.SAMPLE_DIR / spec["trial"]["adsl"]) == paths.TRIAL_ADSL
    assert (paths.SAMPLE_DIR / spec["trial"]["adtte"]) == paths.TRIAL_ADTTE
    assert spec["analysis"]["null_rate"] == 0.35 and spec["analysis"]["landmarks"] == [24]


def test_demo_spec_validates():
    from synthctl import specfile

    loaded = specfile.load_spec(paths.DEMO_SPEC)
    assert loaded.spec.registry.url.endswith("renape_sample.sqlite")


def test_connector_extraction_equals_reference_frame():
    """The SQL connector and the simulator's pandas reference agree on every column."""
    from connectors import registry
    from sample_data._tables import control_frame

    conn = registry.RegistryConnector(f"sqlite:///{paths.SAMPLE_REGISTRY}")
    try:
        pool = conn.candidate_pool(
            registry.IndexRule(after_regimen="platinum_pemetrexed", selection="first"),
            eligibility=[],
            include_outcomes=True,
        )
    finally:
        conn.close()
    got = pool.frame.sort_values("patient_id").reset_index(drop=True)
    ref = control_frame(simulate_scenario().registry_tables)
    ref = ref.sort_values("patient_id").reset_index(drop=True)
    assert len(got) == len(ref)
    for col in ref.columns:
        if col not in got.columns:
            continue
        a, b = got[col], ref[col]
        if pd.api.types.is_float_dtype(b):
            pd.testing.assert_series_equal(a.astype(float), b, check_names=False, atol=1e-9)
        else:
            assert (a.astype(str) == b.astype(str)).all(), col


def test_trial_loader_equals_reference_frame():
    """`connectors.trial.load_trial_arm` reads the shipped ADaM files as the simulator means."""
    from connectors import trial
    from sample_data._trial import trial_frame

    got = trial.load_trial_arm(paths.TRIAL_ADSL, paths.TRIAL_ADTTE)
    got = got.sort_values("patient_id").reset_index(drop=True)
    ref = trial_frame(pd.read_csv(paths.TRIAL_ADSL), pd.read_csv(paths.TRIAL_ADTTE))
    ref = ref.sort_values("patient_id").reset_index(drop=True)
    assert len(got) == len(ref) == 27
    for col in ref.columns.drop("disease"):
        a, b = got[col], ref[col]
        same = (a.astype(str) == b.astype(str)) | (a.isna() & b.isna())
        assert same.all(), col
