"""Batched checks (one grouped scan per table) report exactly what the checks one at a time do.

`connectors.quality.validate.BATCH` switches the batching off; both ways run on a copy of the
sample registry with planted defects of every injector (codes, plausibility, completeness),
for the whole registry, one centre, and the pool checks on both pool paths (IN lists and the
grouped scan). PostgreSQL: a wrongly typed column makes a batch's query fail; its checks then
run alone and report their own "see conformance.types" note, as before.
"""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from connectors.quality import _engine, load_catalogue, run_pool_checks, validate_registry
from connectors.quality import validate as validate_module
from connectors.quality._source import open_source
from sample_data.writer import write_registry
from tests.connectors.test_quality_support import (
    NO_CAP,
    TODAY,
    Injector,
    copy_registry,
    inject_codes,
    inject_completeness,
    inject_plausibility,
    load_tables,
    sample_registry,
)
from tests.databases import PG_URL, scratch_pg_schema


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    path = copy_registry(sample_registry(), tmp_path_factory.mktemp("batch") / "b.sqlite")
    engine = sa.create_engine(f"sqlite:///{path}")
    inj = Injector(engine)
    injected = inject_codes(inj) | inject_plausibility(inj, TODAY)
    injected |= inject_completeness(inj, TODAY)
    with engine.connect() as conn:
        ids = conn.exec_driver_sql("SELECT patient_id FROM patients ORDER BY patient_id"
                                   ).scalars().all()
        centre = conn.exec_driver_sql("SELECT min(centre_id) FROM patients").scalar()
    engine.dispose()
    return path, injected, ids, centre


def _both(monkeypatch, fn):
    monkeypatch.setattr(validate_module, "BATCH", False)
    alone = fn()
    monkeypatch.setattr(validate_module, "BATCH", True)
    return alone, fn()


def _full(report) -> tuple:
    """Everything a report says: counts, per-centre counts, notes, every listed failure."""
    return (report.to_dict(),
            [[dataclasses.astuple(f) for f in r.failures] for r in report.results])


def test_batches_exist_and_share_one_source(planted):
    path, *_ = planted
    source = open_source(f"sqlite:///{path}")
    try:
        ctx = validate_module.make_context(source, None, None, TODAY)
        built, batches = validate_module.build_checks(ctx, load_catalogue().enabled)
    finally:
        source.close()
    assert len(batches) >= 6  # one per table at least
    assert sum(len(b) for b in batches) >= 40  # most row checks of the catalogue
    for batch in batches:
        assert len({_engine.batch_key(built[i]) for i in batch}) == 1


@pytest.mark.slow
@pytest.mark.parametrize("by_centre", [False, True])
def test_batched_validation_reports_what_single_checks_report(planted, monkeypatch, by_centre):
    path, injected, _, centre = planted
    url = f"sqlite:///{path}"
    alone, batched = _both(monkeypatch, lambda: validate_registry(
        url, centre=centre if by_centre else None, overrides=NO_CAP, today=TODAY))
    assert _full(batched) == _full(alone)
    failed = {r.id for r in batched.results if r.n_failed}
    if by_centre:  # one centre's share of the planted defects
        assert failed and failed < set(injected) | {r.id for r in alone.results}
    else:
        assert set(injected) <= failed  # the planted defects are found at all


def _pool_outcome(monkeypatch, url, pool, *, batch: bool, path: str, schema=None):
    """`run_pool_checks` with the batching on or off, by IN lists, scan or in-database."""
    monkeypatch.setattr(validate_module, "BATCH", batch)
    monkeypatch.setattr(_engine, "SCAN_ABOVE", 10**9 if path == "in_list" else 0)
    monkeypatch.setattr(_engine, "ID_CHUNK", 211)  # several IN lists
    monkeypatch.setattr(_engine, "SCAN_CHUNK_ROWS", 97)  # several fetches
    if path == "scan":
        monkeypatch.setattr(_engine, "pool_condition", lambda *a: None)
    connector = url if schema is None else _connector(url, schema)
    try:
        return run_pool_checks(connector, pool, today=TODAY)
    finally:
        monkeypatch.setattr(_engine, "pool_condition", _POOL_CONDITION)


_POOL_CONDITION = _engine.pool_condition


def _connector(url, schema):
    from connectors.registry import RegistryConnector

    return RegistryConnector(url, schema=schema)


@pytest.mark.slow
@pytest.mark.parametrize(("batch", "path"), [(False, "scan"), (False, "database"),
                                             (True, "in_list"), (True, "scan"),
                                             (True, "database")])
def test_pool_checks_find_the_same_on_every_path(planted, monkeypatch, batch, path):
    path_, _, ids, _ = planted
    url = f"sqlite:///{path_}"
    pool = ids[::3]
    reference = _pool_outcome(monkeypatch, url, pool, batch=False, path="in_list")
    outcome = _pool_outcome(monkeypatch, url, pool, batch=batch, path=path)
    assert reference.excluded  # some planted defect is in the pool
    assert outcome.excluded == reference.excluded
    assert outcome.to_dict() == reference.to_dict()


@pytest.mark.db
@pytest.mark.slow
def test_pool_checks_in_postgresql_find_what_in_lists_find(monkeypatch):
    with scratch_pg_schema("synthctl_quality") as (schema, engine):
        write_registry(engine, load_tables(sample_registry()), schema=schema)
        inj = Injector(engine, schema)
        inject_codes(inj)
        inject_plausibility(inj, TODAY)
        with engine.connect() as conn:
            ids = conn.exec_driver_sql(f'SELECT patient_id FROM "{schema}".patients '
                                       "ORDER BY patient_id").scalars().all()
        pool = ids[::2]
        reference = _pool_outcome(monkeypatch, PG_URL, pool, batch=False, path="in_list",
                                  schema=schema)
        outcome = _pool_outcome(monkeypatch, PG_URL, pool, batch=True, path="database",
                                schema=schema)
    assert reference.excluded
    assert outcome.excluded == reference.excluded
    assert outcome.to_dict() == reference.to_dict()


@pytest.mark.db
@pytest.mark.slow
def test_a_failing_batch_falls_back_to_single_checks_on_postgresql(monkeypatch):
    with scratch_pg_schema("synthctl_quality") as (schema, engine):
        write_registry(engine, load_tables(sample_registry()), schema=schema)
        with engine.begin() as conn:
            conn.exec_driver_sql(f'ALTER TABLE "{schema}".patients ALTER COLUMN birth_date '
                                 "TYPE varchar(10)")
        alone, batched = _both(monkeypatch, lambda: validate_registry(
            PG_URL, schema=schema, overrides=NO_CAP, today=TODAY))
    assert _full(batched) == _full(alone)
    future = batched["plausibility.future.patients"]
    assert future.status == "not_applicable" and "conformance.types" in future.note
