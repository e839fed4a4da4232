"""Biomarker normalisation is the same from the registry (SQL on ``lab_results`` through a
mapping, on SQLite, PostgreSQL, MariaDB and DuckDB), from an ADaM ADLB and from a flat file;
ADLB errors name file, row and column (issue 15)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from connectors.adlb import read_adlb, trial_normalisation
from connectors.biomarker import NORMALISED, NormalisationRule
from connectors.errors import ConnectorError, RegistrySchemaError, TrialDataError
from connectors.flatfile import load_flat_response
from connectors.registry import IndexRule, RegistryConnector
from connectors.response import RESPONSE
from sample_data.gtt import GttConfig, simulate_gtt
from sample_data.gtt_export import export_frames, gtt_mapping, write_registry_db
from tests.databases import PG_URL, mariadb_url, scratch_mariadb_database, scratch_pg_schema

RULE = NormalisationRule.by_landmark("hcg", 2, 24, "weeks")
KEYS = ["patient_id", "line_id", "index_date"]


@pytest.fixture(scope="module")
def gtt(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gtt")
    sc = simulate_gtt(GttConfig(seed=11, n_registry=120, truth_n=1000))
    db = write_registry_db(folder / "gtt.sqlite", sc.registry_tables)
    mapping = folder / "mapping.yaml"
    mapping.write_text(gtt_mapping(), encoding="utf-8")
    return sc, db, mapping, folder


def _normalisation(url, mapping, schema=None):
    with RegistryConnector(url, mapping=mapping, schema=schema) as conn:
        keys = conn.candidate_pool(IndexRule(after_regimen="ema_co")).frame[KEYS]
        return keys, conn.normalisation(keys, RULE)


@pytest.fixture(scope="module")
def on_sqlite(gtt):
    _, db, mapping, _ = gtt
    return _normalisation(f"sqlite:///{db}", mapping)


def test_registry_adlb_and_flat_file_agree(gtt, on_sqlite, tmp_path):
    sc, _, _, _ = gtt
    keys, registry = on_sqlite
    assert 0 < registry[NORMALISED].mean() < 1 and (~registry["measured"]).any()
    assert registry.attrs["unit"] == "IU/L"  # mUI/mL recoded by the mapping's values
    lab = sc.registry_tables["lab_results"]
    lab = lab[lab["patient_id"].isin(keys["patient_id"])]
    adlb = pd.DataFrame({
        "USUBJID": lab["patient_id"], "PARAMCD": np.where(lab["analyte"] == "hcg", "HCG", "TSH"),
        "PARAM": np.where(lab["analyte"] == "hcg", "hCG (IU/L)", "TSH (mIU/L)"),
        "AVAL": lab["value"], "ANRHI": lab["uln"], "ADT": pd.to_datetime(lab["lab_date"])})
    adlb.to_csv(tmp_path / "adlb.csv", index=False, date_format="%Y-%m-%d")
    trial = trial_normalisation(read_adlb(tmp_path / "adlb.csv"), keys[KEYS[::2]], RULE, "HCG")
    for col in (NORMALISED, "days_to_normalisation", "measured", "n_results"):
        np.testing.assert_array_equal(trial[col].to_numpy(), registry[col].to_numpy(), col)
    assert trial.attrs["n_no_uln"] == registry.attrs["n_no_uln"]
    registry[["patient_id", NORMALISED]].to_csv(tmp_path / "flat.csv", index=False)
    flat = load_flat_response(tmp_path / "flat.csv", id_col="patient_id",
                              response_col=NORMALISED, what="normalisation")
    np.testing.assert_array_equal(flat[RESPONSE].to_numpy(), registry[NORMALISED].to_numpy())


def test_adlb_by_study_day_equals_by_date(gtt, on_sqlite, tmp_path):
    """ADY (no day 0: ADY = days + 1 on or after the first dose) gives the ADT's days."""
    sc, _, _, _ = gtt
    keys, registry = on_sqlite
    lab = sc.registry_tables["lab_results"].merge(keys, on="patient_id")
    lab = lab[lab["analyte"] == "hcg"]
    days = (pd.to_datetime(lab["lab_date"]) - pd.to_datetime(lab["index_date"])).dt.days
    pd.DataFrame({"USUBJID": lab["patient_id"], "PARAMCD": "HCG", "AVAL": lab["value"],
                  "AVALU": "IU/L", "ANRHI": lab["uln"],
                  "ADY": np.where(days >= 0, days + 1, days)}).to_csv(tmp_path / "a.csv",
                                                                       index=False)
    trial = trial_normalisation(read_adlb(tmp_path / "a.csv"), keys[KEYS[::2]], RULE, "hcg")
    np.testing.assert_array_equal(trial[NORMALISED].to_numpy(), registry[NORMALISED].to_numpy())


def test_registry_without_lab_results_says_so(tmp_path):
    """lab_results is optional: a registry without it passes the schema check, and asking for
    the normalisation names the missing table."""
    from sample_data.simulator import SimulationConfig, simulate_scenario
    from sample_data.writer import write_registry_sqlite

    sc = simulate_scenario(SimulationConfig(seed=3, n_registry=60))
    db = write_registry_sqlite(sc.registry_tables, tmp_path / "meso.sqlite")
    with RegistryConnector(f"sqlite:///{db}") as conn:
        conn.check_schema()
        keys = conn.candidate_pool(IndexRule()).frame[KEYS]
        with pytest.raises(RegistrySchemaError, match="missing table or view lab_results"):
            conn.normalisation(keys, RULE)


def _write_csv(path, header, *rows):
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("header", "rows", "match"),
    [
        ("USUBJID,PARAMCD,AVAL,ADT", ["S1,HCG,3,2024-01-08"],
         r"adlb\.csv: missing required variables \['ANRHI'\]"),
        ("USUBJID,PARAMCD,AVAL,ANRHI", ["S1,HCG,3,5"],
         r"missing required variables \['ADT or ADY'\]"),
        ("USUBJID,PARAMCD,AVAL,ANRHI,ADT", ["S1,HCG,3,5,2024-01-08", "S1,HCG,low,5,2024-01-15"],
         r"adlb\.csv, row 3, column AVAL: expected a number >= 0, got 'low'"),
        ("USUBJID,PARAMCD,AVAL,ANRHI,ADT", ["S1,HCG,3,-5,2024-01-08"],
         r"row 2, column ANRHI: expected an upper limit of normal"),
        ("USUBJID,PARAMCD,AVAL,ANRHI,ADT", ["S1,HCG,3,5,2024-13-45"], r"row 2, column ADT"),
        ("USUBJID,PARAMCD,AVAL,ANRHI,ADY", ["S1,HCG,3,5,0"],
         r"row 2, column ADY: expected a study"),
        ("USUBJID,PARAMCD,AVAL,ANRHI,ADT", [",HCG,3,5,2024-01-08"], r"row 2, column USUBJID"),
    ],
)
def test_adlb_errors_name_file_row_and_column(tmp_path, header, rows, match):
    path = _write_csv(tmp_path / "adlb.csv", header, *rows)
    with pytest.raises(TrialDataError, match=match):
        read_adlb(path)


def test_adlb_subjects_parameters_and_units(tmp_path):
    subjects = pd.DataFrame({"patient_id": ["S1", "S2"],
                             "index_date": pd.to_datetime(["2024-01-01", "2024-01-01"])})
    head = "USUBJID,PARAMCD,PARAM,AVAL,ANRHI,ADT"
    ok = read_adlb(_write_csv(tmp_path / "a.csv", head, "S1,HCG,hCG (IU/L),3,5,2024-01-08",
                              "S1,HCG,hCG (IU/L),2,5,2024-01-15"))
    out = trial_normalisation(ok, subjects, RULE, "HCG")
    assert out[NORMALISED].tolist() == [1, 0] and out["measured"].tolist() == [True, False]
    assert out.attrs["unit"] == "IU/L" and out.attrs["n_unmeasured"] == 1  # unit from PARAM
    with pytest.raises(TrialDataError, match="no records with PARAMCD 'AFP'"):
        trial_normalisation(ok, subjects, RULE, "AFP")
    stranger = read_adlb(_write_csv(tmp_path / "b.csv", head, "S9,HCG,hCG (IU/L),3,5,2024-01-08"))
    with pytest.raises(TrialDataError, match=r"b\.csv, row 2, column USUBJID: subject 'S9'"):
        trial_normalisation(stranger, subjects, RULE, "HCG")
    mixed = read_adlb(_write_csv(tmp_path / "c.csv", head, "S1,HCG,hCG (IU/L),3,5,2024-01-08",
                                 "S2,HCG,hCG (mIU/mL),2,5,2024-01-15"))
    with pytest.raises(TrialDataError, match=r"c\.csv, PARAMCD HCG: .*several units"):
        trial_normalisation(mixed, subjects, RULE, "HCG")


def test_duckdb_equals_sqlite(gtt, on_sqlite, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    sc, _, mapping, _ = gtt
    con = duckdb.connect(str(tmp_path / "gtt.duckdb"))
    for name, frame in export_frames(sc.registry_tables).items():
        con.register("frame", frame)
        con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM frame')
        con.unregister("frame")
    con.close()
    _, got = _normalisation(f"duckdb:///{tmp_path / 'gtt.duckdb'}", mapping)
    pd.testing.assert_frame_equal(got, on_sqlite[1], check_exact=True)


def _load(engine: sa.Engine, tables, schema: str) -> None:
    with engine.begin() as con:
        for name, frame in export_frames(tables).items():
            frame.to_sql(name, con, schema=schema, index=False)


@pytest.mark.db
def test_postgresql_equals_sqlite(gtt, on_sqlite):
    sc, _, mapping, _ = gtt
    with scratch_pg_schema("gtt") as (schema, admin):
        _load(admin, sc.registry_tables, schema)
        _, got = _normalisation(PG_URL, mapping, schema=schema)
    pd.testing.assert_frame_equal(got, on_sqlite[1], check_exact=True)


@pytest.mark.db
def test_mariadb_equals_sqlite(gtt, on_sqlite):
    sc, _, mapping, _ = gtt
    with scratch_mariadb_database("gtt") as (database, admin):
        _load(admin, sc.registry_tables, database)
        _, got = _normalisation(mariadb_url(database), mapping)
    pd.testing.assert_frame_equal(got, on_sqlite[1], check_exact=True)


def test_bad_rule_analyte_reads_nothing_but_counts(on_sqlite, gtt):
    _, db, mapping, _ = gtt
    with RegistryConnector(f"sqlite:///{db}", mapping=mapping) as conn:
        keys = on_sqlite[0]
        out = conn.normalisation(keys, NormalisationRule.by_landmark("afp", 2, 24, "weeks"))
    assert not out["measured"].any() and out.attrs["n_unmeasured"] == len(keys)
    with pytest.raises(ConnectorError, match="keys lack columns"):
        RegistryConnector(f"sqlite:///{db}", mapping=mapping).normalisation(keys[["line_id"]],
                                                                            RULE)
