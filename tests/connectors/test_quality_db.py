"""The checks run on PostgreSQL and MariaDB too, find the same injected rows, write nothing.

Each test copies the sample registry into a fresh schema (PostgreSQL) / database (MariaDB)
with `sample_data.writer.write_registry`, injects defects, validates through a read-only URL
and drops the scratch schema.
"""

from __future__ import annotations

import pytest

from connectors.quality import validate_registry
from sample_data.writer import write_registry
from tests.connectors.test_quality_support import (
    NO_CAP,
    TODAY,
    Injector,
    baseline_report,
    inject_codes,
    inject_plausibility,
    load_tables,
    row_counts,
    sample_registry,
)
from tests.databases import MARIADB_URL, PG_URL, scratch_mariadb_database, scratch_pg_schema


@pytest.fixture(params=["postgresql", "mariadb"])
def server(request):
    """(admin engine, URL of the scratch registry, schema) on a fresh schema/database."""
    if request.param == "postgresql":
        scratch, url = scratch_pg_schema("synthctl_quality"), PG_URL
    else:
        scratch, url = scratch_mariadb_database("synthctl_quality"), MARIADB_URL
    with scratch as (schema, engine):
        write_registry(engine, load_tables(sample_registry()), schema=schema)
        yield engine, url, schema


def _keys(report, check_id):
    return sorted(f.key for f in report[check_id].failures)


@pytest.mark.db
@pytest.mark.slow
def test_server_registry_validates_like_sqlite(server):
    engine, url, schema = server
    sqlite = baseline_report()
    clean = validate_registry(url, schema=schema, overrides=NO_CAP, today=TODAY)
    assert clean.passed
    _assert_same_except_types(clean, sqlite)
    assert clean["completeness.follow_up_stale"].metrics == \
        sqlite["completeness.follow_up_stale"].metrics

    counts_before = row_counts(engine, schema)
    inj = Injector(engine, schema)
    injected = inject_codes(inj) | inject_plausibility(inj, TODAY)
    counts_after_injection = row_counts(engine, schema)
    report = validate_registry(url, schema=schema, overrides=NO_CAP, today=TODAY)
    assert row_counts(engine, schema) == counts_after_injection  # validation wrote nothing
    assert counts_after_injection != counts_before  # (the injection did write)
    for check_id, keys in injected.items():
        expected = sorted(set(_keys(clean, check_id)) | keys)
        assert _keys(report, check_id) == expected, check_id
    assert not report.passed


def _assert_same_except_types(a, b) -> None:
    """Same results, except the type checks (SQLite: per value; typed databases: per column)."""
    strip = lambda rep: [(r.id, r.status, r.n_checked, r.n_failed)  # noqa: E731
                         for r in rep.results if not r.id.startswith("conformance.types.")]
    assert strip(a) == strip(b)
    types = [r for r in a.results if r.id.startswith("conformance.types.")]
    assert types and all(r.status == "passed" for r in types)


@pytest.mark.db
def test_wrongly_typed_column_is_fatal_and_dependent_checks_degrade():
    """PostgreSQL: a date stored as text fails conformance.types; date checks cannot run."""
    with scratch_pg_schema("synthctl_quality") as (schema, engine):
        write_registry(engine, load_tables(sample_registry()), schema=schema)
        with engine.begin() as conn:
            conn.exec_driver_sql(f'ALTER TABLE "{schema}".patients ALTER COLUMN birth_date '
                                 "TYPE varchar(10)")
        report = validate_registry(PG_URL, schema=schema, today=TODAY)
    types = report["conformance.types.patients"]
    assert types.status == "failed" and [f.key for f in types.failures] == ["birth_date"]
    assert types.n_failed == types.n_checked > 0  # every row: the column cannot be trusted
    age = report["plausibility.age_impossible"]
    assert age.status == "not_applicable" and "conformance.types" in age.note
    assert report["plausibility.line_start_before_end"].status == "passed"
    assert not report.passed
