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
from connectors.readonly import check_statement
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
        conn.connection() as c,
    ):
        c.exec_driver_sql(statement)
    assert _digest(tiny_sqlite) == before


def test_core_insert_is_refused(tiny_sqlite):
    with RegistryConnector(tiny_sqlite) as conn:
        _, tables = build_metadata()
        with pytest.raises(ReadOnlyViolationError), conn.connection() as c:
            c.execute(tables["centres"].insert().values(centre_id="X"))


def test_connector_exposes_no_engine(tiny_sqlite):
    """Callers get guarded connections, never the engine (issue 20)."""
    with RegistryConnector(tiny_sqlite) as conn:
        assert not hasattr(conn, "engine")
        assert conn.dialect == "sqlite" and conn.role_check.can_write is False


# statements that start like a read but write or change the session (the attack was
# the first two, on PostgreSQL): refused before they reach any database
SNEAKY = [
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "WITH d AS (DELETE FROM patients RETURNING 1) SELECT count(*) FROM d",
    "WITH x AS (SELECT 'X' AS a) INSERT INTO centres (centre_id) SELECT a FROM x",
    "SELECT * INTO patients_copy FROM patients",
    "SELECT 1; DELETE FROM patients",
    "SELECT setval('s', 1)",
    "SELECT 1 /*! INTO OUTFILE '/tmp/x' */",
    "PRAGMA query_only = 0",
    "  (  SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE)",
]


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite", None])
@pytest.mark.parametrize("statement", SNEAKY)
def test_guard_refuses_sneaky_writes(statement, dialect):
    with pytest.raises(ReadOnlyViolationError, match="read-only"):
        check_statement(statement, dialect)


@pytest.mark.parametrize(
    ("statement", "dialect"),
    [
        # MySQL strings have backslash escapes: the INTO is code there, not inside a literal
        (r"SELECT 'it\'s' INTO OUTFILE '/tmp/x'", "mysql"),
        # PostgreSQL E'' strings too
        (r"SELECT E'\'' , x FROM (DELETE FROM t RETURNING 1) q", "postgresql"),
        # '#' is an operator in PostgreSQL, not a comment
        ("SELECT 1 # 2\n, (DELETE FROM t RETURNING 1)", "postgresql"),
        # '--' without a space is not a comment in MySQL
        ("SELECT 1--1 INTO OUTFILE '/tmp/x'", "mysql"),
    ],
)
def test_guard_reads_literals_and_comments_as_the_dialect_does(statement, dialect):
    with pytest.raises(ReadOnlyViolationError):
        check_statement(statement, dialect)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT \"delete\", 'update; set' FROM t -- insert into\n WHERE a = 1",
        "SHOW CREATE TABLE patients",
        'PRAGMA main.table_info("patients")',
        "(SELECT last_update FROM t) UNION (SELECT 2)",
        "SELECT 1;",
    ],
)
def test_guard_lets_reads_through(statement):
    check_statement(statement, "postgresql" if "SHOW" not in statement else "mysql")


def test_database_refuses_writes_below_the_guard(tiny_sqlite):
    """Below SQLAlchemy (raw DBAPI connection): the file itself is read-only."""
    before = _digest(tiny_sqlite)
    with RegistryConnector(tiny_sqlite) as conn:
        raw = conn._engine.raw_connection()  # test-only: what a caller cannot get
        try:
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                raw.cursor().execute("WITH x AS (SELECT 'X' AS a) INSERT INTO centres "
                                     "(centre_id) SELECT a FROM x")
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                raw.cursor().execute("DELETE FROM patients")
        finally:
            raw.close()
    assert _digest(tiny_sqlite) == before


def test_uri_style_sqlite_url_is_still_read_only(tiny_sqlite):
    path = tiny_sqlite.removeprefix("sqlite:///")
    with RegistryConnector(f"sqlite:///file:{path}?mode=rwc&uri=true") as conn:
        raw = conn._engine.raw_connection()
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
    assert names == {RENAMED[t].table for t in tiny_tables}  # really renamed
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


def test_connection_reads_the_registry(tiny_sqlite):
    with RegistryConnector(tiny_sqlite) as conn, conn.connection() as c:
        assert c.execute(sa.text("SELECT count(*) FROM patients")).scalar_one() == 10


# -- timeouts --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "10"])
def test_timeouts_must_be_positive_seconds(bad):
    from connectors.timeouts import Timeouts

    with pytest.raises(ValueError, match="positive number of seconds"):
        Timeouts(connect_s=bad)
    with pytest.raises(ValueError, match="statement_s"):
        Timeouts(statement_s=bad)


def test_spec_timeouts_reach_the_connector(tmp_path):
    from connectors.timeouts import Timeouts
    from synthctl.spec import Registry

    url = "postgresql+psycopg://u@h/db"
    reg = Registry(url=url, timeouts={"connect_s": 3, "statement_s": 45})
    assert reg.connector_timeouts() == Timeouts(connect_s=3, statement_s=45)
    assert Registry(url=url).connector_timeouts() == Timeouts()
    with pytest.raises(ValueError, match="greater than 0"):
        Registry(url=url, timeouts={"statement_s": 0})


def test_database_errors_are_connector_errors(tiny_sqlite):
    """A failing query is a `RegistryQueryError` (one line, no SQL dump), never a raw DBAPI
    error that the CLI would report as a bug."""
    from connectors.errors import RegistryQueryError

    refused = "refused a query: OperationalError: no such table: nope"
    with (RegistryConnector(tiny_sqlite) as conn, conn.connection() as c,
          pytest.raises(RegistryQueryError, match=refused) as err):
        c.exec_driver_sql("SELECT * FROM nope")
    assert err.value.dbapi_class == "OperationalError" and "\n" not in str(err.value)
