"""Identical extraction on SQLite, PostgreSQL and MariaDB; read-only on the servers.

Each test writes the tiny registry into its own uniquely named PostgreSQL schema / MariaDB
database (dropped afterwards). Frames must be *equal* (same dtypes, exact values): the day
counts are integers on every backend and the unit conversions are the same IEEE divisions.
"""

import pandas as pd
import pytest
import sqlalchemy as sa

from connectors.errors import ReadOnlyViolationError
from connectors.registry import IndexRule, RegistryConnector
from sample_data.writer import write_registry
from tests.databases import MARIADB_URL, PG_URL

from .test_registry_access import RENAMED

pytestmark = pytest.mark.db

CRITERIA = [
    "age_at_index >= 18",
    "ecog_at_index <= 1 or ecog_at_index == None",
    "histology in ['epithelioid', 'biphasic', 'other']",
    "not prior_immunotherapy",
    "pfi_months >= 1.5",
]


def _extract(url, schema=None, mapping=None):
    with RegistryConnector(url, schema=schema, mapping=mapping) as conn:
        conn.check_schema()
        first = conn.candidate_pool(IndexRule(), eligibility=CRITERIA, include_outcomes=True)
        every = conn.candidate_pool(IndexRule(selection="all"), include_outcomes=True)
        outcomes = conn.outcomes(every.frame[["patient_id", "line_id", "index_date"]])
    return first, every, outcomes


@pytest.fixture(scope="module")
def sqlite_reference(tiny_sqlite):
    return _extract(tiny_sqlite)


def _assert_same(got, want):
    for g, w in zip(got[:2], want[:2], strict=True):
        pd.testing.assert_frame_equal(g.frame, w.frame, check_exact=True)
        pd.testing.assert_frame_equal(g.attrition.table, w.attrition.table)
    pd.testing.assert_frame_equal(got[2], want[2], check_exact=True)
    assert len(want[0].frame) > 0 and len(want[1].frame) == 12


def test_postgresql_equals_sqlite(pg_schema, tiny_tables, sqlite_reference):
    schema, admin = pg_schema
    write_registry(admin, tiny_tables, schema=schema)
    _assert_same(_extract(PG_URL, schema=schema), sqlite_reference)


def test_mariadb_equals_sqlite(mariadb_database, tiny_tables, sqlite_reference):
    database, admin = mariadb_database
    write_registry(admin, tiny_tables, schema=database)
    _assert_same(_extract(MARIADB_URL, schema=database), sqlite_reference)


def test_renamed_registry_on_postgresql(pg_schema, tiny_tables, sqlite_reference):
    schema, admin = pg_schema
    write_registry(admin, tiny_tables, schema=schema, mapping=RENAMED)
    _assert_same(_extract(PG_URL, schema=schema, mapping=RENAMED), sqlite_reference)


def _assert_read_only(url, schema, admin, raw_error_check):
    with RegistryConnector(url, schema=schema) as conn:
        for statement in (f"DELETE FROM {schema}.patients",
                          f"CREATE TABLE {schema}.x (a INTEGER)",
                          f"UPDATE {schema}.centres SET region = 'x'"):
            with pytest.raises(ReadOnlyViolationError), conn.connection() as c:
                c.exec_driver_sql(statement)
        raw = conn._engine.raw_connection()  # below SQLAlchemy: the session is read-only
        try:
            cur = raw.cursor()
            with pytest.raises(Exception) as err:
                cur.execute(f"DELETE FROM {schema}.patients")
            raw_error_check(err.value)
        finally:
            raw.close()
    with admin.connect() as c:
        assert c.exec_driver_sql(f"SELECT count(*) FROM {schema}.patients").scalar_one() == 10


def test_postgresql_session_is_read_only(pg_schema, tiny_tables):
    schema, admin = pg_schema
    write_registry(admin, tiny_tables, schema=schema)

    def check(exc):
        assert getattr(exc, "sqlstate", None) == "25006"  # read_only_sql_transaction

    _assert_read_only(PG_URL, schema, admin, check)
    with RegistryConnector(PG_URL, schema=schema) as conn:
        # a data-modifying CTE: refused by the guard (tests/faults/test_db_api_writes.py
        # shows PostgreSQL refusing it too)
        with pytest.raises(ReadOnlyViolationError, match="DELETE"), conn.connection() as c:
            c.exec_driver_sql(f"WITH d AS (DELETE FROM {schema}.patients RETURNING 1) "
                              "SELECT count(*) FROM d")
        with conn.connection() as c:
            assert c.exec_driver_sql("SHOW transaction_read_only").scalar_one() == "on"


def test_mariadb_session_is_read_only(mariadb_database, tiny_tables):
    database, admin = mariadb_database
    write_registry(admin, tiny_tables, schema=database)

    def check(exc):
        assert exc.args[0] == 1792  # Cannot execute statement in a READ ONLY transaction

    _assert_read_only(MARIADB_URL, database, admin, check)


def test_server_urls_never_show_passwords(pg_schema):
    schema, _ = pg_schema
    url = sa.make_url(PG_URL).set(password="hunter2")
    with RegistryConnector(url, schema=schema) as conn:  # trust auth ignores the password
        assert "hunter2" not in conn.url and "***" in conn.url
        assert "hunter2" not in repr(conn)
