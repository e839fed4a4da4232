"""Pool checks: the catalogue's ``pool: true`` checks, restricted to the candidate pool.

The study runner calls `run_pool_checks` after the candidate pool is built:

- ``outcome.stop``: a fatal check failed (schema, types, unique keys): stop the run;
- ``outcome.excluded``: check id -> patient ids that fail an error check, each patient listed
  once, under the first such check in catalogue order: exclude them with the check id as the
  attrition reason;
- ``outcome.warnings``: warning checks with failing pool patients (for the manifest/report).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from connectors.errors import ConnectorError, RegistryQueryError
from connectors.quality._engine import (
    NotApplicable,
    Structural,
    failing_patients,
    failing_patients_batch,
)
from connectors.quality._source import open_source
from connectors.quality.catalogue import Catalogue, CheckSpec, load_catalogue
from connectors.quality.report import CheckResult
from connectors.quality.validate import (
    POOL_KINDS,
    QualityCheckError,
    _result,
    build_check,
    build_checks,
    make_context,
    not_applicable,
)


@dataclass(frozen=True, slots=True)
class PoolCheckOutcome:
    """Pool-check findings for the study runner (see the module docstring)."""

    results: tuple[CheckResult, ...]
    excluded: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def fatal(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.severity == "fatal" and r.status == "failed")

    @property
    def stop(self) -> bool:
        return bool(self.fatal)

    @property
    def warnings(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.severity == "warning" and r.n_failed)

    def to_dict(self) -> dict[str, Any]:
        """Counts only (no patient ids), for the manifest."""
        return {
            "stop": self.stop,
            "fatal": [r.id for r in self.fatal],
            "excluded": {k: len(v) for k, v in self.excluded.items()},
            "warnings": [r.to_dict() for r in self.warnings],
            "checks": [r.to_dict() for r in self.results],
        }


def _pool_ids(pool: pd.DataFrame | Iterable[str]) -> list[str]:
    if isinstance(pool, pd.DataFrame):
        if "patient_id" not in pool.columns:
            raise ValueError("the pool frame needs a 'patient_id' column")
        ids = pool["patient_id"]
    else:
        ids = pd.Series(list(pool), dtype=object)
    return sorted({str(v) for v in ids.dropna()})


def _frame_check(spec: CheckSpec, pool: Any) -> tuple[CheckResult, set[str]]:
    need = ("pfs_days", "os_days")
    if not isinstance(pool, pd.DataFrame) or any(c not in pool.columns for c in need):
        return not_applicable(spec, "the pool has no outcome columns (pfs_days, os_days)"), set()
    pfs = pd.to_numeric(pool["pfs_days"], errors="coerce")
    os_ = pd.to_numeric(pool["os_days"], errors="coerce")
    if spec.kind == "pool_times_nonnegative":
        checked = pfs.notna() | os_.notna()
        fails = (pfs < 0) | (os_ < 0)
    else:
        checked = pfs.notna() & os_.notna()
        fails = checked & (pfs > os_)
    ids = {str(v) for v in pool.loc[fails, "patient_id"]}
    return _result(spec, "pool", int(checked.sum()), int(fails.sum())), ids


def run_pool_checks(
    connector: Any,
    pool_frame_or_keys: pd.DataFrame | Iterable[str],
    catalogue: Catalogue | None = None,
    *,
    overrides: Mapping[str, Any] | str | Path | None = None,
    today: dt.date | None = None,
) -> PoolCheckOutcome:
    """Run the ``pool: true`` checks on the candidate pool's patients.

    Parameters
    ----------
    connector : RegistryConnector, Engine or URL
        The registry the pool was built from (its mapping is reused).
    pool_frame_or_keys : DataFrame with ``patient_id`` or iterable of patient ids
        The candidate pool; with ``pfs_days``/``os_days`` columns the derived-pool checks
        (times >= 0, PFS <= OS) run too.
    catalogue : Catalogue, optional
        Default: the shipped ``checks.yaml`` (with ``overrides`` applied).
    """
    catalogue = (catalogue or load_catalogue()).with_overrides(overrides)
    ids = _pool_ids(pool_frame_or_keys)
    source = open_source(connector)
    results: list[CheckResult] = []
    excluded: dict[str, tuple[str, ...]] = {}
    seen: set[str] = set()
    try:
        ctx = make_context(source, None, None, today)
        specs = [spec for spec in catalogue.enabled if spec.pool]
        built, found = _batched(ctx, specs, ids)
        for i, spec in enumerate(specs):
            failing: set[str] = set()
            if spec.kind in POOL_KINDS:
                result, failing = _frame_check(spec, pool_frame_or_keys)
            else:
                result, failing = _run_restricted(ctx, spec, ids, built.get(i), found.get(i))
            results.append(result)
            if spec.severity == "error" and failing:
                new = sorted(failing - seen)
                seen.update(new)
                if new:
                    excluded[spec.id] = tuple(new)
    finally:
        source.close()
    return PoolCheckOutcome(tuple(results), excluded)


def _batched(ctx, specs: list[CheckSpec], ids: list[str]):
    """The built checks and, for the row checks that read the same rows, their pool counts
    from one query per batch (`failing_patients_batch`); a batch whose query fails is left
    to its checks, which then run alone and report their own error."""
    from connectors.quality import validate

    if not validate.BATCH:
        return {}, {}
    built, batches = build_checks(ctx, specs)
    found: dict[int, tuple[int, int, set[str]]] = {}
    for batch in batches:
        try:
            with ctx.source.connect() as conn:
                rows = failing_patients_batch(conn, [built[i] for i in batch], ids)
        except (NotApplicable, sa.exc.SQLAlchemyError, ConnectorError):
            continue
        found.update(zip(batch, rows, strict=True))
    return built, found


def _run_restricted(ctx, spec: CheckSpec, ids: list[str], built=None,
                    found: tuple[int, int, set[str]] | None = None
                    ) -> tuple[CheckResult, set[str]]:
    try:
        check = built if built is not None else build_check(ctx, spec)
        if isinstance(check, Structural):
            n_failed = len(check.failures) if check.n_failed is None else check.n_failed
            return _result(spec, check.table, check.n_checked, n_failed), set()
        if found is not None:
            n_checked, n_failed, failing = found
        else:
            with ctx.source.connect() as conn:
                n_checked, n_failed, failing = failing_patients(conn, check, ids)
    except NotApplicable as exc:
        return not_applicable(spec, str(exc)), set()
    except RegistryQueryError as exc:  # translated by the read-only engine
        raise QualityCheckError(f"check {spec.id}: {exc}") from exc
    except sa.exc.DBAPIError as exc:  # an engine the caller opened
        raise QualityCheckError(f"check {spec.id}: the database query failed: {exc.orig}") from exc
    return _result(spec, check.table, n_checked, n_failed), failing
