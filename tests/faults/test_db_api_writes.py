"""Write attempts through the Python API, as a role that has write privileges.

The issue's attack: through ``RegistryConnector(...).engine``, ``set_config(
'default_transaction_read_only', 'off', false)`` then ``WITH d AS (DELETE ...)`` deleted 15
rows. The connector now exposes no engine; its connections refuse both statements (guard), and
with the guard switched off the database still refuses the delete, because every transaction
is started READ ONLY. A scratch role with INSERT/UPDATE/DELETE is warned about and recorded; a
SELECT-only role is not.
"""

from __future__ import annotations

import uuid
import warnings

import pytest
import sqlalchemy as sa

from connectors import readonly
from connectors.errors import ReadOnlyViolationError
from connectors.privileges import RegistryWritableWarning
from connectors.registry import RegistryConnector
from tests.databases import (
    PG_URL,
    mariadb_url,
    scratch_mariadb_database,
    scratch_pg_schema,
)
from tests.faults._db_study import registry_fingerprint, simulate_registry

pytestmark = [pytest.mark.slow, pytest.mark.db]

SESSION_OFF = "SELECT set_config('default_transaction_read_only', 'off', false)"


@pytest.fixture(scope="module")
def tables():
    return simulate_registry()


@pytest.fixture
def pg_roles(tables):
    """(schema, admin, writer URL, reader URL): scratch roles with and without writes."""
    from sample_data.writer import write_registry

    suffix = uuid.uuid4().hex[:10]
    writer, reader = f"synthctl_w_{suffix}", f"synthctl_r_{suffix}"
    with scratch_pg_schema("synthctl_roles") as (schema, admin):
        write_registry(admin, tables, schema=schema)
        with admin.begin() as c:
            for role, privs in ((writer, "SELECT, INSERT, UPDATE, DELETE"), (reader, "SELECT")):
                c.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
                c.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
                c.exec_driver_sql(f'GRANT {privs} ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
        try:
            base = sa.make_url(PG_URL)
            yield (schema, admin, base.set(username=writer).render_as_string(False),
                   base.set(username=reader).render_as_string(False))
        finally:
            with admin.begin() as c:
                for role in (writer, reader):
                    c.exec_driver_sql(f'DROP OWNED BY "{role}"')
                    c.exec_driver_sql(f'DROP ROLE "{role}"')


def _delete_cte(schema: str) -> str:
    return (f'WITH d AS (DELETE FROM "{schema}".patients WHERE patient_id IN (SELECT '
            f'patient_id FROM "{schema}".patients LIMIT 15) RETURNING 1) SELECT count(*) FROM d')


def test_issue_attack_is_refused_on_postgresql(pg_roles):
    schema, admin, writer, _ = pg_roles
    before = registry_fingerprint(admin, schema)
    with pytest.warns(RegistryWritableWarning, match="read-only role"):
        conn = RegistryConnector(writer, schema=schema)
    with conn:
        assert not hasattr(conn, "engine")
        assert conn.role_check.can_write is True
        assert any(p.startswith("INSERT/UPDATE/DELETE on") for p in conn.role_check.privileges)
        for statement in (SESSION_OFF, _delete_cte(schema)):
            with pytest.raises(ReadOnlyViolationError), conn.connection() as c:
                c.exec_driver_sql(statement)
    assert registry_fingerprint(admin, schema) == before


def test_transactions_stay_read_only_without_the_guard(pg_roles, monkeypatch):
    """Defence in depth: the guard switched off, the session default turned off, a new
    transaction still refuses the data-modifying CTE (it is started READ ONLY)."""
    schema, admin, writer, _ = pg_roles
    before = registry_fingerprint(admin, schema)
    monkeypatch.setattr(readonly, "check_statement", lambda *args: None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RegistryWritableWarning)
        conn = RegistryConnector(writer, schema=schema)
    with conn, conn.connection() as c:
        c.exec_driver_sql(SESSION_OFF)
        c.commit()
        assert c.exec_driver_sql("SHOW default_transaction_read_only").scalar_one() == "off"
        c.commit()
        with pytest.raises(ReadOnlyViolationError, match="database refused"):
            c.exec_driver_sql(_delete_cte(schema))
    assert registry_fingerprint(admin, schema) == before


def test_select_only_role_is_not_warned_about(pg_roles):
    schema, _, _, reader = pg_roles
    with warnings.catch_warnings():
        warnings.simplefilter("error", RegistryWritableWarning)
        with RegistryConnector(reader, schema=schema) as conn:
            assert conn.role_check.to_dict() == {
                "role": sa.make_url(reader).username, "can_write": False, "privileges": []}


def test_mariadb_write_role_is_warned_about_and_refused(tables):
    from sample_data.writer import write_registry

    user = f"synthctl_w_{uuid.uuid4().hex[:8]}"
    reader = f"synthctl_r_{uuid.uuid4().hex[:8]}"
    with scratch_mariadb_database("synthctl_roles") as (database, admin):
        write_registry(admin, tables, schema=database)
        with admin.begin() as c:
            c.exec_driver_sql(f"CREATE USER '{user}'@'%%'")
            c.exec_driver_sql(f"GRANT SELECT, INSERT, DELETE ON `{database}`.* TO '{user}'@'%%'")
            c.exec_driver_sql(f"CREATE USER '{reader}'@'%%'")
            c.exec_driver_sql(f"GRANT SELECT ON `{database}`.* TO '{reader}'@'%%'")
        try:
            before = registry_fingerprint(admin, database)
            url = sa.make_url(mariadb_url(database))
            with pytest.warns(RegistryWritableWarning, match="INSERT, DELETE on"):
                conn = RegistryConnector(url.set(username=user), schema=database)
            with conn:
                assert conn.role_check.can_write is True
                for statement in ("SET SESSION TRANSACTION READ WRITE",
                                  f"DELETE FROM `{database}`.patients LIMIT 15",
                                  "SELECT 1 INTO OUTFILE '/tmp/synthctl_should_not_exist'"):
                    with pytest.raises(ReadOnlyViolationError), conn.connection() as c:
                        c.exec_driver_sql(statement)
            with warnings.catch_warnings():
                warnings.simplefilter("error", RegistryWritableWarning)
                with RegistryConnector(url.set(username=reader), schema=database) as conn:
                    assert conn.role_check.can_write is False
            assert registry_fingerprint(admin, database) == before
        finally:
            with admin.begin() as c:
                c.exec_driver_sql(f"DROP USER '{user}'@'%%'")
                c.exec_driver_sql(f"DROP USER '{reader}'@'%%'")
