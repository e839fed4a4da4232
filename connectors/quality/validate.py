"""`validate_registry`: run the catalogue on a registry, in the database, read-only."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connectors.errors import ConnectorError, RegistryQueryError, RegistryUnavailableError
from connectors.quality import checks_completeness, checks_conformance, checks_plausibility
from connectors.quality._engine import (
    Context,
    NotApplicable,
    RowCheck,
    Structural,
    count_rows,
    failing_rows,
)
from connectors.quality._source import Source, open_source
from connectors.quality.catalogue import (
    Catalogue,
    CheckSpec,
    QualityConfigError,
    load_catalogue,
)
from connectors.quality.report import CentreCount, CheckResult, Failure, QualityReport
from connectors.timeouts import Timeouts

BUILDERS = {
    **checks_conformance.BUILDERS,
    **checks_completeness.BUILDERS,
    **checks_plausibility.BUILDERS,
}
POOL_KINDS = ("pool_times_nonnegative", "pool_pfs_le_os")  # run on the pool frame only


class QualityCheckError(ConnectorError):
    """A check's query failed in the database (the message names the check)."""


def present_columns(source: Source) -> dict[str, dict[str, sa.types.TypeEngine]]:
    """Logical tables and columns found in the database, with their reflected types."""
    with contextlib.ExitStack() as stack:
        try:
            inspector = sa.inspect(stack.enter_context(source.connect()))
            physical_tables = set(inspector.get_table_names(schema=source.schema))
        except sa.exc.OperationalError as exc:
            raise RegistryUnavailableError(
                f"cannot open registry {source.label}: {exc.orig}") from exc
        present: dict[str, dict[str, sa.types.TypeEngine]] = {}
        for name, table in source.tables.items():
            if table.name not in physical_tables:
                continue
            reflected = {c["name"]: c["type"]
                         for c in inspector.get_columns(table.name, schema=source.schema)}
            present[name] = {col.key: reflected[col.name] for col in table.c
                             if col.name in reflected}
    return present


def default_cutoff(source: Source, present: Mapping[str, Any], fallback: dt.date) -> dt.date:
    """The data cut-off: the latest last-contact date (``fallback`` when there is none)."""
    if "last_contact_date" not in present.get("follow_up", {}):
        return fallback
    col = source.tables["follow_up"].c.last_contact_date
    with source.connect() as conn:
        raw = conn.execute(sa.select(sa.cast(sa.func.max(col), sa.String(32)))).scalar()
    if raw is None:
        return fallback
    try:
        return dt.date.fromisoformat(str(raw)[:10])
    except ValueError:
        return fallback


def _status(n_checked: int, n_failed: int, threshold: float) -> str:
    if n_checked == 0:
        return "not_applicable"
    return "failed" if n_failed / n_checked > threshold else "passed"


def _result(spec: CheckSpec, table: str, n_checked: int, n_failed: int, **kwargs) -> CheckResult:
    status = _status(n_checked, n_failed, spec.threshold)
    note = kwargs.pop("note", "") or ("no rows to check" if status == "not_applicable" else "")
    return CheckResult(
        spec.id, spec.category, table, spec.description, spec.severity, spec.threshold,
        n_checked, n_failed, status, note=note, **kwargs,
    )


def not_applicable(spec: CheckSpec, note: str) -> CheckResult:
    return CheckResult(
        spec.id, spec.category, spec.table, spec.description, spec.severity, spec.threshold,
        0, 0, "not_applicable", note=note,
    )


def build_check(ctx: Context, spec: CheckSpec) -> RowCheck | Structural:
    try:
        builder = BUILDERS[spec.kind]
    except KeyError:
        raise NotApplicable(f"unknown check kind {spec.kind!r}") from None
    return builder(ctx, spec)


def run_check(ctx: Context, spec: CheckSpec, cap: int) -> CheckResult:
    """Build and run one check over the whole registry (or the selected centre)."""
    if spec.kind in POOL_KINDS:
        return not_applicable(spec, "runs on the derived candidate pool in the study pipeline")
    try:
        check = build_check(ctx, spec)
        if isinstance(check, Structural):
            failures = tuple(Failure(check.table, k, None, spec.id, v) for k, v in check.failures)
            n_failed = len(failures) if check.n_failed is None else check.n_failed
            return _result(spec, check.table, check.n_checked, n_failed,
                           failures=failures[:cap], capped=len(failures) > cap, failure_cap=cap)
        with ctx.source.connect() as conn:
            counts = count_rows(conn, check, ctx.centre)
            rows = failing_rows(conn, check, ctx.centre, cap) if counts.n_failed else []
            metrics: dict[str, Any] = {}
            if spec.kind == "follow_up_stale":
                medians = checks_completeness.reverse_km_median_follow_up(ctx, conn)
                metrics = {
                    "cutoff_date": ctx.cutoff_date.isoformat(),
                    "median_follow_up_days_by_centre": {
                        ("" if c is None else str(c)): m for c, m in sorted(
                            medians.items(), key=lambda kv: (kv[0] is None, str(kv[0])))
                    },
                }
    except NotApplicable as exc:
        return not_applicable(spec, str(exc))
    except (sa.exc.ProgrammingError, sa.exc.DataError) as exc:
        # typically a column of the wrong type (PostgreSQL refuses to compare text with a
        # date): conformance.types reports that column; this check cannot run meanwhile
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        return not_applicable(spec, f"the query failed ({first}); see conformance.types")
    except RegistryQueryError as exc:  # translated by the read-only engine
        if exc.dbapi_class in ("ProgrammingError", "DataError"):  # as above
            return not_applicable(spec, f"the query failed ({exc.reason}); see "
                                        "conformance.types")
        raise QualityCheckError(f"check {spec.id}: {exc}") from exc
    except sa.exc.DBAPIError as exc:  # an engine the caller opened
        raise QualityCheckError(f"check {spec.id}: the database query failed: {exc.orig}") from exc
    failures = tuple(Failure(check.table, str(k), c, spec.id, v) for k, c, v in rows)
    return _result(
        spec, check.table, counts.n_checked, counts.n_failed,
        per_centre=tuple(CentreCount(c, n, f) for c, n, f in counts.per_centre),
        failures=failures, capped=counts.n_failed > len(failures), failure_cap=cap,
        metrics=metrics,
    )


def make_context(source: Source, centre: str | None, cutoff_date: dt.date | None,
                 today: dt.date | None) -> Context:
    today = today or dt.date.today()
    present = present_columns(source)
    if centre is not None and "centre_id" in present.get("patients", {}):
        col = source.tables["patients"].c.centre_id
        with source.connect() as conn:
            found = conn.execute(sa.select(col).where(col == centre).limit(1)).first()
        if found is None:
            raise QualityConfigError(f"centre {centre!r}: no patient of the registry has it")
    cutoff = cutoff_date or default_cutoff(source, present, today)
    return Context(source, present, centre, cutoff, today)


def validate_registry(
    url_or_connector: Any,
    mapping: Any = None,
    centre: str | None = None,
    overrides: Mapping[str, Any] | str | Path | None = None,
    cutoff_date: dt.date | None = None,
    *,
    catalogue: Catalogue | None = None,
    schema: str | None = None,
    today: dt.date | None = None,
    timeouts: Timeouts | None = None,
) -> QualityReport:
    """Run every enabled check of the catalogue on a registry, read-only.

    Parameters
    ----------
    url_or_connector : str, Engine or RegistryConnector
        A registry URL (opened read-only), an engine, or a connector (its mapping is used).
    mapping : mapping of logical table -> `connectors.schema.TableMapping`, optional
        Physical names, for a URL or engine.
    centre : str, optional
        Restrict every row check to this centre's patients.
    overrides : dict or path to YAML, optional
        Thresholds, severities, disabled checks, failure cap (see `catalogue`).
    cutoff_date : datetime.date, optional
        Data cut-off for follow-up completeness; default: the latest last-contact date.
    catalogue : Catalogue, optional
        Default: the shipped ``checks.yaml``.
    schema : str, optional
        Database schema holding the registry (URL or engine only).
    today : datetime.date, optional
        Extraction date: dates after it are "in the future"; default: today.
    timeouts : Timeouts, optional
        Connect and statement timeouts for a URL (`connectors.timeouts`).

    Returns
    -------
    QualityReport
        ``passed`` is False when a fatal or error check fails its threshold.
    """
    catalogue = (catalogue or load_catalogue()).with_overrides(overrides)
    source = open_source(url_or_connector, mapping, schema, timeouts)
    try:
        ctx = make_context(source, centre, cutoff_date, today)
        results = tuple(run_check(ctx, spec, catalogue.failure_cap) for spec in catalogue.enabled)
    finally:
        source.close()
    return QualityReport(
        passed=not any(r.blocking for r in results), results=results, registry=source.label,
        centre=centre, cutoff_date=ctx.cutoff_date.isoformat(),
        extraction_date=ctx.today.isoformat(), failure_cap=catalogue.failure_cap,
    )
