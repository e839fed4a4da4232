"""A registry that stalls or drops, through a local TCP proxy (tests/faults/_proxy.py).

Each case runs ``synthctl run`` on a registry study (PostgreSQL and MariaDB) whose database
connection goes through `FaultProxy`, faulted at connect, during the schema check or during
the extraction query. It must end in exit 2 with a one-paragraph message naming the stage and
the cause (the timeout when there is one) -- never exit 70, never hang -- within a bound set by
the (small) timeouts; the registry is unchanged and the password (given as ``?password=`` on
PostgreSQL, whose trust authentication ignores it) appears nowhere.
"""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from synthctl.cli import app
from tests.databases import (
    MARIADB_URL,
    PG_URL,
    mariadb_url,
    scratch_mariadb_database,
    scratch_pg_schema,
)
from tests.faults._db_study import (
    files_containing,
    registry_fingerprint,
    simulate_registry,
    write_study,
)
from tests.faults._proxy import FaultProxy

pytestmark = [pytest.mark.slow, pytest.mark.db,
              pytest.mark.filterwarnings("ignore::connectors.privileges.RegistryWritableWarning")]

cli = CliRunner()
SECRET = "Pw-Fault-9931"
CONNECT_S, STATEMENT_S = 2, 2
# a stalled statement ends at the client deadline: statement_s + 2 s + 5 %; the connect
# timeout is at least 2 s (libpq). Add process start-up and the trial files: 12 s is generous.
BOUND_S = 12

# the first bytes of each stage's query, as the drivers send them
SCHEMA_QUERY = {"postgresql": b"pg_catalog.pg_class.relname", "mysql": b"SHOW FULL TABLES"}
EXTRACT_QUERY = b"row_number"


@pytest.fixture(scope="module")
def tables():
    return simulate_registry()


@pytest.fixture(scope="module", params=["postgresql", "mysql"])
def registry(request, tables):
    """(backend, url without host/port change, schema, admin engine), registry written."""
    from sample_data.writer import write_registry

    if request.param == "postgresql":
        with scratch_pg_schema("synthctl_fault") as (schema, admin):
            write_registry(admin, tables, schema=schema)
            yield "postgresql", f"{PG_URL}?password={SECRET}", schema, admin
    else:
        with scratch_mariadb_database("synthctl_fault") as (database, admin):
            write_registry(admin, tables, schema=database)
            yield "mysql", mariadb_url(database), database, admin


def _run(tmp_path, registry, proxy: FaultProxy):
    backend, url, schema, admin = registry
    before = registry_fingerprint(admin, schema)
    spec = write_study(tmp_path, proxy.url_for(url), schema=schema,
                       connect_s=CONNECT_S, statement_s=STATEMENT_S)
    t0 = time.monotonic()
    res = cli.invoke(app, ["run", str(spec), "--out", str(tmp_path / "out")])
    elapsed = time.monotonic() - t0
    assert registry_fingerprint(admin, schema) == before  # nothing written
    assert SECRET not in res.output
    assert files_containing(tmp_path, SECRET) == (
        [str(tmp_path / "study.yaml")] if backend == "postgresql" else [])
    assert "internal error" not in res.output and "Traceback" not in res.output
    return res, elapsed


def _port(backend: str) -> int:
    import sqlalchemy as sa

    return sa.make_url(PG_URL if backend == "postgresql" else MARIADB_URL).port


def test_connection_that_never_answers_fails_within_the_connect_timeout(tmp_path, registry):
    with FaultProxy(_port(registry[0]), mode="stall") as proxy:
        res, elapsed = _run(tmp_path, registry, proxy)
    assert res.exit_code == 2, res.output
    assert "extract stage" in res.output
    assert f"did not answer within the connect timeout of {CONNECT_S} s" in res.output
    assert elapsed < BOUND_S


@pytest.mark.parametrize("stage_query", ["schema", "extract"])
def test_stalled_database_ends_in_exit_2_naming_the_timeout(tmp_path, registry, stage_query):
    backend = registry[0]
    trigger = SCHEMA_QUERY[backend] if stage_query == "schema" else EXTRACT_QUERY
    with FaultProxy(_port(backend), trigger=trigger, fault="stall") as proxy:
        res, elapsed = _run(tmp_path, registry, proxy)
        assert proxy.triggered.is_set()
    assert res.exit_code == 2, res.output
    assert "extract stage" in res.output
    assert "stopped answering" in res.output
    assert f"statement timeout {STATEMENT_S} s" in res.output
    assert "registry.timeouts.statement_s" in res.output
    assert elapsed < BOUND_S


@pytest.mark.parametrize("stage_query", ["schema", "extract"])
def test_dropped_connection_ends_in_exit_2(tmp_path, registry, stage_query):
    backend = registry[0]
    trigger = SCHEMA_QUERY[backend] if stage_query == "schema" else EXTRACT_QUERY
    with FaultProxy(_port(backend), trigger=trigger, fault="drop") as proxy:
        res, elapsed = _run(tmp_path, registry, proxy)
        assert proxy.triggered.is_set()
    assert res.exit_code == 2, res.output
    assert "extract stage" in res.output and "lost the connection" in res.output
    assert "SELECT" not in res.output  # no SQL dump
    assert len(res.output.strip().splitlines()) <= 3
    assert elapsed < BOUND_S


def test_database_refused_at_connect_ends_in_exit_2(tmp_path, registry):
    with FaultProxy(_port(registry[0]), mode="drop") as proxy:
        res, _ = _run(tmp_path, registry, proxy)
    assert res.exit_code == 2, res.output
    assert "extract stage" in res.output and "cannot connect" in res.output


def test_the_same_study_runs_through_a_passing_proxy(tmp_path, registry):
    """The control: the proxy itself does not break anything."""
    with FaultProxy(_port(registry[0])) as proxy:
        res, _ = _run(tmp_path, registry, proxy)
    assert res.exit_code == 0, res.output


def test_slow_statement_is_cancelled_by_the_server(registry):
    """No proxy: the database itself runs a statement longer than statement_s."""
    import sqlalchemy as sa

    from connectors.errors import RegistryTimeoutError
    from connectors.registry import RegistryConnector
    from connectors.timeouts import Timeouts

    backend, url, schema, _ = registry
    sleep = "SELECT pg_sleep(10)" if backend == "postgresql" else "SELECT SLEEP(10)"
    t0 = time.monotonic()
    with (RegistryConnector(url, schema=schema, timeouts=Timeouts(statement_s=1)) as conn,
          conn.connection() as c,
          pytest.raises(RegistryTimeoutError, match="longer than the statement timeout of 1 s")
          as err):
        c.execute(sa.text(sleep))
    assert time.monotonic() - t0 < 5
    assert SECRET not in str(err.value)


def test_validate_on_a_stalled_database_ends_in_exit_2(tmp_path, registry):
    backend, url, schema, admin = registry
    before = registry_fingerprint(admin, schema)
    with FaultProxy(_port(backend), trigger=SCHEMA_QUERY[backend], fault="stall") as proxy:
        t0 = time.monotonic()
        res = cli.invoke(app, ["validate", "--registry", proxy.url_for(url), "--schema", schema,
                               "--out", str(tmp_path / "q"), "--json", "--connect-timeout", "2",
                               "--statement-timeout", str(STATEMENT_S)])
        elapsed = time.monotonic() - t0
    assert res.exit_code == 2, res.output
    assert "stopped answering" in res.output and "validate --statement-timeout" in res.output
    assert SECRET not in res.output and elapsed < BOUND_S
    assert registry_fingerprint(admin, schema) == before
