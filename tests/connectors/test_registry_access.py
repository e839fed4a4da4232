"""Read-only access, unavailable databases, schema checks and mapping files (SQLite)."""

import hashlib
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from connectors.errors import (
    MappingError,
    ReadOnlyViolationError,
    RegistrySchemaError,
    RegistryUnavailableError,
)
from connectors.mapping import load_mapping
from connectors.registry import RegistryConnector
from connectors.schema import LOGICAL_SCHEMA, TableMapping, build_metadata
from sample_data.writer import write_registry_sqlite


def _digest(url: str) -> str:
    return hashlib.sha256(Path(url.removeprefix("sqlite:///")).read_bytes()).hexdigest()


# -- read-only -----------------------------------------------------------------------------


WRITES = [
    "DELETE FROM patients",
    "UPDATE patients SET sex = 'M'",
    "INSERT INTO centres (centre_id) VALUES ('X')",
    "DROP TABLE follow_up",
    "CREATE TABLE x (a INTEGER)",
    "ATTACH DATABASE ':memory:' AS other",
    "  /* comment */ delete from patients",
]


@pytest.mark.parametrize("statement", WRITES)
def test_writes_through_the_connector_are_refused(tiny_sqlite, statement):
    before = _digest(tiny_sqlite)
    with (
        RegistryConnector(tiny_sqlite) as conn,
        pytest.raises(ReadOnlyViolationError, match="read-only"),
        conn.engine.begin() as c,
    ):
        c.exec_driver_sql(statement)
    assert _digest(tiny_sqlite) == before


def test_core_insert_is_refused(tiny_sqlite):
    with RegistryConnector(tiny_sqlite) as conn:
        _, tables = build_metadata()
        with pytest.raises(ReadOnlyViolationError), conn.engine.begin() as c:
            c.execute(tables["centres"].insert().values(centre_id="X"))


def test_database_refuses_writes_that_pass_the_statement_guard(tiny_sqlite):
    """A WITH ... INSERT passes the keyword guard: SQLite's mode=ro refuses it, mapped."""
    before = _digest(tiny_sqlite)
    with RegistryConnector(tiny_sqlite) as conn:
        with pytest.raises(ReadOnlyViolationError, match="database refused"), \
                conn.engine.begin() as c:
            c.exec_driver_sql("WITH x AS (SELECT 'X' AS a) INSERT INTO centres (centre_id) "
                              "SELECT a FROM x")
        raw = conn.engine.raw_connection()  # below SQLAlchemy: the file itself is read-only
        try:
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                raw.cursor().execute("DELETE FROM patients")
        finally:
            raw.close()
    assert _digest(tiny_sqlite) == before


def test_uri_style_sqlite_url_is_still_read_only(tiny_sqlite):
    path = tiny_sqlite.removeprefix("sqlite:///")
    with RegistryConnector(f"sqlite:///file:{path}?mode=rwc&uri=true") as conn:
        raw = conn.engine.raw_connection()
        try:
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                raw.cursor().execute("DELETE FROM patients")
        finally:
            raw.close()


# -- unavailable ---------------------------------------------------------------------------


def test_missing_sqlite_file(tmp_path):
    with pytest.raises(RegistryUnavailableError, match="no such SQLite file"):
        RegistryConnector(f"sqlite:///{tmp_path}/nope.sqlite")
    assert not (tmp_path / "nope.sqlite").exists()  # mode=ro never creates the file


def test_unreachable_database_hides_the_password():
    url = "postgresql+psycopg://alice:s3cr3t-pw@127.0.0.1:1/registry"
    with pytest.raises(RegistryUnavailableError) as err:
        RegistryConnector(url)
    msg = str(err.value)
    assert "cannot connect" in msg and "alice:***@127.0.0.1:1/registry" in msg
    assert "s3cr3t-pw" not in msg and err.value.__cause__ is None


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql+mysqldb://bob:pw123@localhost/db", "driver not available"),
        ("postgresql+nosuchdriver://bob:pw123@localhost/db", "driver not available"),
        ("oracle://bob:pw123@localhost/db", "unsupported database"),
        ("sqlite://", "must be a file"),
        ("not a url", "malformed database URL"),
    ],
)
def test_bad_urls_and_missing_drivers(url, fragment):
    with pytest.raises(RegistryUnavailableError, match=fragment) as err:
        RegistryConnector(url)
    assert "pw123" not in str(err.value)


# -- schema check --------------------------------------------------------------------------


def test_check_schema_passes_on_a_complete_registry(tiny_sqlite):
    with RegistryConnector(tiny_sqlite) as conn:
        conn.check_schema()


def test_missing_tables_and_columns_are_all_listed(tiny_sqlite, tmp_path):
    path = tmp_path / "broken.sqlite"
    path.write_bytes(Path(tiny_sqlite.removeprefix("sqlite:///")).read_bytes())
    with sqlite3.connect(path) as raw:
        raw.execute("DROP TABLE surgeries")
        raw.execute("ALTER TABLE patients DROP COLUMN birth_date")
        raw.execute("ALTER TABLE treatment_lines RENAME COLUMN regimen TO protocol")
    with RegistryConnector(f"sqlite:///{path}") as conn:
        with pytest.raises(RegistrySchemaError) as err:
            conn.check_schema()
        with pytest.raises(RegistrySchemaError):
            conn.candidate_pool()
    msg = str(err.value)
    for part in ("missing table or view surgeries", "missing column patients.birth_date",
                 "missing column treatment_lines.regimen", "mapping file"):
        assert part in msg


# -- mapping -------------------------------------------------------------------------------

RENAMED = {
    name: TableMapping(
        table=f"reg_{name}",
        columns={spec.name: f"x_{spec.name}" for spec in specs[::2]},  # every other column
    )
    for name, specs in LOGICAL_SCHEMA.items()
}


def _mapping_yaml(path: Path) -> Path:
    lines = []
    for name, tm in RENAMED.items():
        lines.append(f"{name}:\n  table: {tm.table}\n  columns:")
        lines += [f"    {k}: {v}" for k, v in tm.columns.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_renamed_registry_through_a_mapping_file_gives_identical_results(
    tiny_sqlite, tiny_tables, tmp_path
):
    renamed = tmp_path / "renamed.sqlite"
    write_registry_sqlite(tiny_tables, renamed, mapping=RENAMED)
    with sqlite3.connect(renamed) as raw:
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names == {tm.table for tm in RENAMED.values()}  # really renamed
    criteria = ["age_at_index >= 18", "ecog_at_index <= 1", "not prior_immunotherapy"]
    with RegistryConnector(tiny_sqlite) as ref:
        want = ref.candidate_pool(eligibility=criteria, include_outcomes=True)
    mapping_file = _mapping_yaml(tmp_path / "mapping.yaml")
    with RegistryConnector(f"sqlite:///{renamed}", mapping=mapping_file) as conn:
        conn.check_schema()
        got = conn.candidate_pool(eligibility=criteria, include_outcomes=True)
        keys = got.frame[["patient_id", "line_id", "index_date"]]
        pd.testing.assert_frame_equal(
            conn.outcomes(keys), ref_outcomes := RegistryConnector(tiny_sqlite).outcomes(keys)
        )
    pd.testing.assert_frame_equal(got.frame, want.frame)
    pd.testing.assert_frame_equal(got.attrition.table, want.attrition.table)
    assert len(ref_outcomes) == len(want.frame)
    # without the mapping the renamed registry is reported, not misread
    with RegistryConnector(f"sqlite:///{renamed}") as conn, pytest.raises(RegistrySchemaError):
        conn.check_schema()


def test_mapping_dict_equals_file(tmp_path):
    assert load_mapping(_mapping_yaml(tmp_path / "m.yaml")) == {
        k: TableMapping(v.table, dict(v.columns)) for k, v in RENAMED.items()
    }
    assert load_mapping(None) == {} and load_mapping({}) == {}


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("patient:\n  table: p\n", ["unknown table 'patient'", "known: centres, patients"]),
        ("patients:\n  table: p\n  columns: {dob: birth, pid: id}\n",
         ["unknown column 'dob'", "unknown column 'pid'", "known: patient_id"]),
        ("patients: [a, b]\n", ["m.yaml:1: patients: Input should be a valid dictionary"]),
        ("patients:\n  table: ''\n", ["m.yaml:2: patients.table: String should have at least"]),
        ("patients:\n  tabel: p\n", ["m.yaml:2: patients.tabel: unknown key 'tabel'"]),
        ("- a\n- b\n", ["expected a mapping (version: 2, tables: ...), got list"]),
        ("patients: {table: x}\ncentres: {table: X}\nsurgeries: {table: x}\n",
         ["'patients' and 'surgeries' both map to 'x'"]),
        ("patients:\n  columns: {sex: s, birth_date: s}\n", ["both map to 's'"]),
        ("patients:\n  table: [unclosed\n", ["m.yaml:3: mapping file is not valid YAML"]),
    ],
)
def test_malformed_mapping_files(tmp_path, text, fragments):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert str(err.value).startswith(f"mapping file {path}") or str(path) in str(err.value)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_missing_mapping_file(tmp_path):
    with pytest.raises(MappingError, match="cannot be read"):
        RegistryConnector("sqlite:///x.sqlite", mapping=tmp_path / "none.yaml")


def test_engine_is_what_the_connector_uses(tiny_sqlite):
    with RegistryConnector(tiny_sqlite) as conn, conn.engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM patients")).scalar_one() == 10
