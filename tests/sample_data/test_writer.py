"""The registry writer: round trip of every column type, renamed copies, clear errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from connectors.schema import LOGICAL_SCHEMA, TableMapping, build_metadata
from sample_data.writer import RegistryWriteError, write_registry, write_registry_sqlite
from tests.databases import mariadb_url, scratch_mariadb_database, scratch_pg_schema


def _toy() -> dict[str, pd.DataFrame]:
    """Two patients covering every type, with None/NaN/NaT/pd.NA and date objects/strings."""
    return {
        "centres": pd.DataFrame({"centre_id": ["C01"], "centre_name": ["A"], "region": ["R"]}),
        "patients": pd.DataFrame(
            {
                "patient_id": ["P1", "P2"],
                "centre_id": ["C01", "C01"],
                "sex": ["F", None],
                "birth_date": pd.to_datetime(["1950-01-02", None]),
            }
        ),
        "diagnoses": pd.DataFrame(
            {
                "diagnosis_id": [1, 2],
                "patient_id": ["P1", "P2"],
                "diagnosis_date": [dt.date(2020, 1, 1), None],
                "disease": ["peritoneal_mesothelioma"] * 2,
                "histology": ["epithelioid", "other"],
                "pci": pd.array([3, None], dtype="Int64"),
                "ki67_percent": [np.nan, 12.5],
                "bap1_status": ["lost", None],
            }
        ),
        "surgeries": pd.DataFrame(
            {
                "surgery_id": [1],
                "patient_id": ["P1"],
                "surgery_date": ["2020-02-01"],
                "crs": [True],
                "hipec": [None],
                "cc_score": [0],
            }
        ),
        "treatment_lines": pd.DataFrame({s.name: [] for s in LOGICAL_SCHEMA["treatment_lines"]}),
        "tumour_assessments": pd.DataFrame(
            {
                "assessment_id": [1],
                "patient_id": ["P1"],
                "assessment_date": pd.to_datetime(["2020-03-01"]),
                "criteria": ["RECIST1.1"],
                "overall_response": ["SD"],
                "clinical_progression": [False],
            }
        ),
        "follow_up": pd.DataFrame(
            {
                "patient_id": ["P1", "P2"],
                "last_contact_date": pd.to_datetime(["2021-01-01", "2021-01-02"]),
                "vital_status": ["alive", "dead"],
                "death_date": pd.to_datetime([None, "2021-01-02"]),
            }
        ),
    }


EXPECTED = {
    "patients": [("P1", "C01", "F", dt.date(1950, 1, 2)), ("P2", "C01", None, None)],
    "diagnoses": [
        (1, "P1", dt.date(2020, 1, 1), "peritoneal_mesothelioma", "epithelioid", 3, None, "lost"),
        (2, "P2", None, "peritoneal_mesothelioma", "other", None, 12.5, None),
    ],
    "surgeries": [(1, "P1", dt.date(2020, 2, 1), True, None, 0)],
    "follow_up": [
        ("P1", dt.date(2021, 1, 1), "alive", None),
        ("P2", dt.date(2021, 1, 2), "dead", dt.date(2021, 1, 2)),
    ],
}

MAPPING = {
    "patients": TableMapping("pts", {"patient_id": "pid", "birth_date": "dob"}),
    "diagnoses": TableMapping("dx", {"patient_id": "pat"}),
}


def _read_back(engine, mapping=None, schema=None):
    _, tables = build_metadata(mapping, schema=schema, with_constraints=False)
    with engine.connect() as conn:
        return {
            name: conn.execute(sa.select(tables[name]).order_by(*tables[name].primary_key)).all()
            if tables[name].primary_key
            else sorted(conn.execute(sa.select(tables[name])).all())
            for name in EXPECTED
        }


@pytest.mark.parametrize("mapping", [None, MAPPING], ids=["logical", "renamed"])
def test_sqlite_round_trip(tmp_path, mapping):
    path = write_registry_sqlite(_toy(), tmp_path / "r.sqlite", mapping=mapping)
    engine = sa.create_engine(f"sqlite:///{path}")
    assert _read_back(engine, mapping) == EXPECTED
    names = set(sa.inspect(engine).get_table_names())
    assert ("pts" in names) == (mapping is not None)
    engine.dispose()


def test_refuses_existing_then_replaces(tmp_path):
    path = write_registry_sqlite(_toy(), tmp_path / "r.sqlite")
    with pytest.raises(RegistryWriteError, match="exists"):
        write_registry_sqlite(_toy(), path)
    engine = sa.create_engine(f"sqlite:///{path}")
    with pytest.raises(RegistryWriteError, match="already exist"):
        write_registry(engine, _toy())
    assert write_registry(engine, _toy(), if_exists="replace")["patients"] == 2
    engine.dispose()


def test_bad_tables_are_named(tmp_path):
    tables = _toy()
    del tables["surgeries"]
    with pytest.raises(RegistryWriteError, match="missing \\['surgeries'\\]"):
        write_registry_sqlite(tables, tmp_path / "a.sqlite")
    tables = _toy()
    tables["patients"] = tables["patients"].rename(columns={"sex": "gender"})
    with pytest.raises(RegistryWriteError, match=r"'patients'.*\['sex'\].*\['gender'\]"):
        write_registry_sqlite(tables, tmp_path / "b.sqlite")
    tables = _toy()
    tables["diagnoses"]["pci"] = [3.5, 4.0]
    with pytest.raises(RegistryWriteError, match="'diagnoses', column 'pci'"):
        write_registry_sqlite(tables, tmp_path / "c.sqlite")
    tables = _toy()
    tables["surgeries"]["surgery_date"] = ["2020-02-31"]
    with pytest.raises(RegistryWriteError, match="'surgeries', column 'surgery_date'"):
        write_registry_sqlite(tables, tmp_path / "e.sqlite")
    tables = _toy()
    tables["patients"]["centre_id"] = ["C01", None]
    with pytest.raises(RegistryWriteError, match="'patients', column 'centre_id': missing"):
        write_registry_sqlite(tables, tmp_path / "d.sqlite")


@pytest.mark.db
@pytest.mark.parametrize("mapping", [None, MAPPING], ids=["logical", "renamed"])
def test_postgres_copy_round_trip(mapping):
    with scratch_pg_schema("sd") as (schema, engine):
        write_registry(engine, _toy(), schema=schema, mapping=mapping)
        assert _read_back(engine, mapping, schema) == EXPECTED
        write_registry(engine, _toy(), schema=schema, mapping=mapping, if_exists="replace")
        assert _read_back(engine, mapping, schema) == EXPECTED
        fks = sa.inspect(engine).get_foreign_keys(MAPPING["diagnoses"].table if mapping
                                                  else "diagnoses", schema=schema)
        assert [fk["referred_columns"] for fk in fks] == [["pid" if mapping else "patient_id"]]


@pytest.mark.db
def test_mariadb_round_trip():
    with scratch_mariadb_database("sd") as (db, _):
        engine = sa.create_engine(mariadb_url(db))
        write_registry(engine, _toy(), mapping=MAPPING)
        assert _read_back(engine, MAPPING) == EXPECTED
        engine.dispose()
