"""``synthctl map-init``: a draft that loads, names what is left, shows no identifier, and leaves
the registry unchanged (SQLite, Parquet folder, DuckDB, PostgreSQL)."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from connectors.mapping import load_mapping
from connectors.schema import REQUIRED_TABLES
from sample_data.export import PATIENT_VIEW, export_frames, write_export_db, write_export_duckdb
from sample_data.paths import EXPORT_PARQUET, EXPORT_SQLITE, SAMPLE_REGISTRY
from synthctl.cli import app
from tests.databases import PG_URL, scratch_pg_schema

cli = CliRunner()
EXPORT_TABLES = {"centres": "etablissements", "patients": PATIENT_VIEW,
                 "diagnoses": "diagnostics", "surgeries": "chirurgies",
                 "treatment_lines": "lignes_traitement", "tumour_assessments": "evaluations",
                 "follow_up": "suivi"}


def _digest(path: Path) -> str:
    files = [path] if path.is_file() else sorted(path.iterdir())
    return hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in files)).hexdigest()


def _map_init(tmp_path: Path, url: str, *extra: str):
    out = tmp_path / "draft.yaml"
    result = cli.invoke(app, ["map-init", "--registry", url, "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return out, out.read_text()


def _no_identifiers(text: str, frames) -> None:
    assert not re.search(r"\d{2}/\d{2}/\d{4}|\d{4}-\d{2}-\d{2}", text)  # no dates
    ids = set(frames["patients_brut"]["id_patient"]) | set(frames["lignes_traitement"][
        "id_ligne"]) | set(frames["diagnostics"]["id_diagnostic"])
    assert not any(i in text for i in ids)


@pytest.fixture(scope="module")
def frames():
    with sqlite3.connect(SAMPLE_REGISTRY) as con:
        tables = {t: pd.read_sql(f"SELECT * FROM {t}", con) for t in REQUIRED_TABLES}
    return export_frames(tables)


@pytest.mark.parametrize("kind", ["sqlite", "parquet"])
def test_draft_for_the_export(tmp_path, frames, kind):
    target = EXPORT_SQLITE if kind == "sqlite" else EXPORT_PARQUET
    url = f"sqlite:///{EXPORT_SQLITE}" if kind == "sqlite" else f"parquet:///{EXPORT_PARQUET}"
    before = _digest(target)
    path, text = _map_init(tmp_path, url)
    assert _digest(target) == before
    _no_identifiers(text, frames)
    mapping = load_mapping(path)  # a valid mapping, TODOs included
    assert {k: v.table for k, v in mapping.items()} == EXPORT_TABLES
    assert mapping.recode("patients", "birth_date").format == "%d/%m/%Y"
    assert mapping.recode("diagnoses", "ki67_percent").scale == 100
    assert mapping.recode("treatment_lines", "line_id").type == "integer"
    assert mapping.recode("surgeries", "crs").type == "boolean"
    assert "# values (rows): homme (1,151), femme (849)" in text
    assert "TODO: map 'homme', 'femme'" in text and "immunotherapy: {rule:" in text
    # validate on the draft says what is left: the codes still to map, with their counts
    result = cli.invoke(app, ["validate", "--registry", url, "--mapping", str(path),
                              "--out", str(tmp_path / "q")])
    assert result.exit_code == 1
    assert "sex (v_patients.sexe): 2,000 rows with unmapped codes: 'homme' (1,151 rows)" in \
        result.output
    assert _digest(target) == before


def test_draft_for_a_registry_in_our_shape_validates(tmp_path):
    path, text = _map_init(tmp_path, f"sqlite:///{SAMPLE_REGISTRY}")
    assert "TODO" not in text.split("tables:")[1]
    result = cli.invoke(app, ["validate", "--registry", f"sqlite:///{SAMPLE_REGISTRY}",
                              "--mapping", str(path), "--out", str(tmp_path / "q")])
    assert result.exit_code == 0, result.output


def test_rare_codes_and_free_text_are_not_shown(tmp_path):
    path = tmp_path / "r.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE patients (patient_id TEXT, sexe TEXT, commentaire TEXT)")
        rows = [(f"P{i}", "homme" if i % 2 else "femme", f"note libre numero {i} " * 3)
                for i in range(40)]
        rows.append(("P99", "Jean Dupont", "x"))  # a name typed into a code column, once
        con.executemany("INSERT INTO patients VALUES (?, ?, ?)", rows)
    _, text = _map_init(tmp_path, f"sqlite:///{path}")
    assert "Jean Dupont" not in text and "1 rows with rare values" in text
    assert "note libre" not in text and "P1" not in text


def test_duckdb_registry_unchanged(tmp_path, frames):
    path = tmp_path / "export.duckdb"
    write_export_duckdb(path, frames)
    before = _digest(path)
    draft, _ = _map_init(tmp_path, f"duckdb:///{path}")
    assert {k: v.table for k, v in load_mapping(draft).items()} == EXPORT_TABLES
    assert _digest(path) == before


@pytest.mark.db
def test_postgresql_registry_unchanged(tmp_path, frames):
    import sqlalchemy as sa

    with scratch_pg_schema("synthctl_mapinit") as (schema, admin):
        write_export_db(admin, frames, schema=schema)

        def checksum() -> list:
            with admin.connect() as c:
                return [c.execute(sa.text(f'SELECT count(*), md5(string_agg(t::text, \'|\' '
                                          f'ORDER BY t::text)) FROM "{schema}"."{name}" t')
                                  ).one() for name in frames]

        before = checksum()
        draft, text = _map_init(tmp_path, PG_URL, "--schema", schema)
        assert {k: v.table for k, v in load_mapping(draft).items()} == EXPORT_TABLES
        _no_identifiers(text, frames)
        assert checksum() == before


def test_draft_never_overwrites_a_file_it_did_not_write(tmp_path):
    url = f"sqlite:///{SAMPLE_REGISTRY}"
    out, first = _map_init(tmp_path, url)
    again, second = _map_init(tmp_path, url)  # its own unedited draft: replaced
    assert again == out and second == first
    for content in ("version: 2\ntables: {}\n",  # someone's mapping
                    first.replace("unmapped: error", "unmapped: warn")):  # an edited draft
        out.write_text(content)
        result = cli.invoke(app, ["map-init", "--registry", url, "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert "never overwrites a file it did not write" in result.output
        assert out.read_text() == content
    result = cli.invoke(app, ["map-init", "--registry", url, "--out", str(tmp_path)])
    assert result.exit_code == 2 and "is a folder" in result.output
    # --out is checked before the registry is opened; a registry error is exit 2, not a bug
    result = cli.invoke(app, ["map-init", "--registry", "sqlite:///nowhere.sqlite", "--out",
                              str(out)])
    assert result.exit_code == 2 and "never overwrites" in result.output
    result = cli.invoke(app, ["map-init", "--registry", "sqlite:///nowhere.sqlite"])
    assert result.exit_code == 2 and "no such SQLite file" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["draft.yaml"]  # no temporary left
