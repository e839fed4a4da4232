"""DuckDB and export folders behind the read-only guard and the error translation of i20."""

from __future__ import annotations

import pytest

from connectors.errors import ReadOnlyViolationError, RegistryQueryError
from connectors.readonly import check_statement, open_readonly_engine
from sample_data.paths import EXPORT_PARQUET

URL = f"parquet:///{EXPORT_PARQUET}"


@pytest.fixture()
def con():
    engine = open_readonly_engine(URL)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def test_duckdb_statements_are_read_with_postgresql_quoting():
    # E'...' with a backslash escape is one literal in DuckDB, as in PostgreSQL; SQLite's
    # reading would end it early and see INTO
    check_statement("SELECT E'it\\'s into'", "duckdb")
    with pytest.raises(ReadOnlyViolationError):
        check_statement("SELECT E'it\\'s' INTO t", "duckdb")


def test_export_folder_accepts_reads_and_refuses_writes(con):
    assert con.exec_driver_sql("SELECT E'it\\'s into'").scalar() == "it's into"
    assert con.exec_driver_sql("SELECT count(*) FROM v_patients").scalar() > 0
    for sql in ("CREATE TABLE x (a INTEGER)", "COPY v_patients TO 'out.csv'",
                "SELECT 1; DROP VIEW v_patients"):
        with pytest.raises(ReadOnlyViolationError):
            con.exec_driver_sql(sql)


@pytest.mark.parametrize(("sql", "dbapi_class"), [
    ("SELECT CAST('x' AS INTEGER)", "DataError"),
    ("SELECT * FROM no_such_table", "ProgrammingError"),
])
def test_duckdb_query_errors_are_registry_query_errors(con, sql, dbapi_class):
    # duckdb-engine's DBAPI shim lacks the PEP 249 classes: the translation must still classify
    with pytest.raises(RegistryQueryError) as info:
        con.exec_driver_sql(sql).all()
    assert info.value.dbapi_class == dbapi_class
    assert str(EXPORT_PARQUET.name) in str(info.value)  # the folder, not DuckDB's :memory:
    assert ":memory:" not in str(info.value) and "%3A" not in str(info.value)
