"""The exported sample registry, read through its mapping, gives the canonical sample's pool.

Every column of every patient is compared exactly (``check_exact=True``), with one stated
exception: Ki-67 is exported as a fraction (percent / 100) and read back with ``scale: 100``;
``(p / 100) * 100`` differs from ``p`` by at most one unit in the last place for about 10% of
one-decimal percents, so that column is compared with ``rtol=1e-15`` (a few ulps), nothing
looser. The same pool comes out of the shipped SQLite file and Parquet folder, a DuckDB file,
PostgreSQL and MariaDB.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from connectors import columns as cn
from connectors.registry import IndexRule, RegistryConnector
from connectors.schema import LOGICAL_SCHEMA, REQUIRED_TABLES
from sample_data.export import (
    EXPORT_FOLDER,
    PATIENT_VIEW,
    export_frames,
    export_mapping,
    io_regimens,
    write_export_db,
    write_export_duckdb,
)
from sample_data.paths import EXPORT_MAPPING, EXPORT_PARQUET, EXPORT_SQLITE, SAMPLE_REGISTRY
from tests.databases import (
    MARIADB_URL,
    PG_URL,
    scratch_mariadb_database,
    scratch_pg_schema,
)

CRITERIA = ["age_at_index >= 18", "ecog_at_index <= 1", "not prior_immunotherapy",
            "histology in ['epithelioid', 'biphasic']", "bap1 == 'lost' or ki67 < 20"]


def _pools(url, mapping=None, schema=None):
    with RegistryConnector(url, mapping=mapping, schema=schema) as conn:
        first = conn.candidate_pool(IndexRule(), eligibility=CRITERIA, include_outcomes=True)
        every = conn.candidate_pool(IndexRule(selection="all"), include_outcomes=True)
    return first, every


def _assert_same(got, want):
    for g, w in zip(got, want, strict=True):
        assert len(g.frame) == len(w.frame) > 0
        rest = [c for c in w.frame.columns if c != cn.KI67]
        pd.testing.assert_frame_equal(g.frame[rest], w.frame[rest], check_exact=True)
        pd.testing.assert_series_equal(g.frame[cn.KI67], w.frame[cn.KI67], rtol=1e-15, atol=0)
        pd.testing.assert_frame_equal(g.attrition.table, w.attrition.table)
        assert g.recoding == ()


@pytest.fixture(scope="module")
def canonical_tables():
    with sqlite3.connect(SAMPLE_REGISTRY) as con:
        return {t: pd.read_sql(f"SELECT * FROM {t}", con) for t in REQUIRED_TABLES}


@pytest.fixture(scope="module")
def reference():
    return _pools(f"sqlite:///{SAMPLE_REGISTRY}")


@pytest.fixture(scope="module")
def frames(canonical_tables):
    return export_frames(canonical_tables)


def _digest(path: Path) -> str:
    files = [path] if path.is_file() else sorted(path.iterdir())
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def test_shipped_export_is_what_the_build_writes(canonical_tables, frames):
    assert EXPORT_MAPPING.read_text() == export_mapping(io_regimens(canonical_tables))
    for name, frame in frames.items():
        target = PATIENT_VIEW if name == "patients_brut" else name
        shipped = pd.read_parquet(EXPORT_PARQUET / f"{target}.parquet")
        pd.testing.assert_frame_equal(shipped, frame.reset_index(drop=True), check_dtype=False)
    assert EXPORT_PARQUET.name == EXPORT_FOLDER


def test_export_really_differs_from_the_schema(frames):
    dx = frames["diagnostics"]
    assert set(frames) & set(LOGICAL_SCHEMA) == set()
    assert dx["id_diagnostic"].map(type).eq(str).all()
    assert dx["ki67_fraction"].max() <= 1
    assert "drug_classes" not in frames["lignes_traitement"]
    assert "region" not in frames["etablissements"]
    assert frames["patients_brut"]["date_naissance"].str.match(r"\d\d/\d\d/\d{4}$").all()
    with sqlite3.connect(EXPORT_SQLITE) as con:
        kinds = dict(con.execute("SELECT name, type FROM sqlite_master").fetchall())
    assert kinds[PATIENT_VIEW] == "view"


@pytest.mark.parametrize("kind", ["sqlite", "parquet"])
def test_shipped_export_gives_the_canonical_pool(kind, reference):
    url = (f"sqlite:///{EXPORT_SQLITE}" if kind == "sqlite" else f"parquet:///{EXPORT_PARQUET}")
    target = EXPORT_SQLITE if kind == "sqlite" else EXPORT_PARQUET
    before = _digest(target)
    _assert_same(_pools(url, EXPORT_MAPPING), reference)
    assert _digest(target) == before  # the registry is unchanged


def test_duckdb_export_gives_the_canonical_pool(tmp_path, frames, reference):
    path = tmp_path / "export.duckdb"
    write_export_duckdb(path, frames)
    before = _digest(path)
    _assert_same(_pools(f"duckdb:///{path}", EXPORT_MAPPING), reference)
    assert _digest(path) == before


def test_csv_folder_gives_the_canonical_pool(tmp_path, frames, reference):
    folder = tmp_path / "csv"
    folder.mkdir()
    for name, frame in frames.items():
        target = PATIENT_VIEW if name == "patients_brut" else name
        frame.to_csv(folder / f"{target}.csv", index=False)
    _assert_same(_pools(f"csv:///{folder}", EXPORT_MAPPING), reference)


def _checksum(admin, schema: str, names) -> list:
    """Row count and an order-independent digest of every table (server side)."""
    import sqlalchemy as sa

    out = []
    with admin.connect() as con:
        q = con.dialect.identifier_preparer
        for name in names:
            rows = con.execute(sa.text(f"SELECT * FROM {q.quote_schema(schema)}.{q.quote(name)}")
                               ).fetchall()
            out.append((name, len(rows), hashlib.sha256(
                "\n".join(sorted(map(repr, rows))).encode()).hexdigest()))
    return out


def _validate_and_map_init(url, schema, tmp_path):
    from typer.testing import CliRunner

    from connectors.quality import validate_registry
    from synthctl.cli import app

    report = validate_registry(url, mapping=EXPORT_MAPPING, schema=schema)
    assert report["conformance.mapping_codes"].status == "passed"
    result = CliRunner().invoke(app, ["map-init", "--registry", url, "--schema", schema,
                                      "--out", str(tmp_path / "draft.yaml")])
    assert result.exit_code == 0, result.output


@pytest.mark.db
def test_postgresql_export_gives_the_canonical_pool(frames, reference, tmp_path):
    with scratch_pg_schema("synthctl_export") as (schema, admin):
        write_export_db(admin, frames, schema=schema)
        before = _checksum(admin, schema, frames)
        _assert_same(_pools(PG_URL, EXPORT_MAPPING, schema=schema), reference)
        _validate_and_map_init(PG_URL, schema, tmp_path)
        assert _checksum(admin, schema, frames) == before  # extract, validate, map-init


@pytest.mark.db
def test_schema_qualified_names_on_postgresql(frames, reference, tmp_path):
    """Every table named ``schema.table`` in the mapping, no connector schema."""
    import re

    with scratch_pg_schema("synthctl_export") as (schema, admin):
        write_export_db(admin, frames, schema=schema)
        qualified = tmp_path / "qualified.yaml"
        qualified.write_text(re.sub(r"(?m)^    table: ", f"    table: {schema}.",
                                    EXPORT_MAPPING.read_text()))
        _assert_same(_pools(PG_URL, qualified), reference)


@pytest.mark.db
def test_mariadb_export_gives_the_canonical_pool(frames, reference, tmp_path):
    with scratch_mariadb_database("synthctl_export") as (database, admin):
        write_export_db(admin, frames, schema=database)
        before = _checksum(admin, database, frames)
        _assert_same(_pools(MARIADB_URL, EXPORT_MAPPING, schema=database), reference)
        _validate_and_map_init(MARIADB_URL, database, tmp_path)
        assert _checksum(admin, database, frames) == before
