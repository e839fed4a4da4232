"""`validate_registry`: run the catalogue on a registry, in the database, read-only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connectors.errors import ConnectorError, RegistryQueryError, RegistryUnavailableError
from connectors.introspect import columns, relations
from connectors.quality import checks_completeness, checks_conformance, checks_plausibility
from connectors.quality._engine import (
    Context,
    Counts,
    NotApplicable,
    RowCheck,
    Structural,
    batch_key,
    count_rows,
    count_rows_batch,
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
from connectors.recode import code_problems, recoded_columns
from connectors.schema import LOGICAL_SCHEMA
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
    """Logical tables and columns found in the database, with their types.

    A column the mapping recodes has the schema's type (the checks read recoded values); a
    column it declares absent is present (read as NULL: completeness reports it).
    """
    physical = source.physical if source.physical is not None else source.tables
    present: dict[str, dict[str, sa.types.TypeEngine]] = {}
    try:
        with source.connect() as con:
            found_relations: dict[str | None, set[str]] = {}
            for name, table in physical.items():
                schema = table.schema
                if schema not in found_relations:
                    found_relations[schema] = relations(con, schema)
                if table.name not in found_relations[schema]:
                    continue
                reflected = _reflected(con, table.name, schema)
                tm = source.mapping.get(name)
                types: dict[str, sa.types.TypeEngine] = {}
                for spec in LOGICAL_SCHEMA[name]:
                    rc = tm.recode.get(spec.name) if tm is not None else None
                    if rc is not None and (rc.absent or rc.values is not None or rc.type
                                           or rc.scale):
                        types[spec.name] = sa.types.to_instance(spec.type_)
                    elif spec.name in table.c and table.c[spec.name].name in reflected:
                        types[spec.name] = reflected[table.c[spec.name].name]
                present[name] = types
    except sa.exc.OperationalError as exc:
        raise RegistryUnavailableError(f"cannot open registry {source.label}: {exc.orig}") from exc
    return present


_DUCKDB_TYPES = (("INT", sa.Integer()), ("DOUBLE", sa.Float()), ("FLOAT", sa.Float()),
                 ("REAL", sa.Float()), ("DECIMAL", sa.Numeric()), ("BOOL", sa.Boolean()),
                 ("TIMESTAMP", sa.DateTime()), ("DATE", sa.Date()), ("CHAR", sa.String()),
                 ("TEXT", sa.String()))


def _reflected(con: sa.Connection, table: str, schema: str | None) -> dict[str, Any]:
    if con.dialect.name != "duckdb":
        return {c["name"]: c["type"] for c in sa.inspect(con).get_columns(table, schema=schema)}
    out: dict[str, Any] = {}
    for name, spelled in columns(con, table, schema):
        out[name] = next((t for key, t in _DUCKDB_TYPES if key in spelled), sa.types.NullType())
    return out


def mapping_codes_check(source: Source) -> CheckResult | None:
    """Conformance of the source values to the mapping: unmapped codes and bad casts, counted.

    None without a mapping that recodes anything. Counts only (codes of keys and dates are not
    shown), no identifiers.
    """
    checked = list(recoded_columns(source.mapping, source.physical))
    if not checked:
        return None
    with source.connect() as con:
        problems = code_problems(con, source.physical, source.mapping,
                                 tuple(t for t in source.physical if t in _present_names(con,
                                                                                           source)))
    status = "failed" if problems else "passed"
    return CheckResult(
        MAPPING_CHECK_ID, "conformance", ", ".join(sorted({p.table for p in problems})) or "*",
        "every source value has a schema code (mapping 'values') and casts to its 'type'",
        "error", 0.0, len(checked), len(problems), status,
        metrics={"problems": [p.to_dict() for p in problems]},
        note="; ".join(p.message() for p in problems),
    )


MAPPING_CHECK_ID = "conformance.mapping_codes"


def _present_names(con: sa.Connection, source: Source) -> set[str]:
    names = set()
    cache: dict[str | None, set[str]] = {}
    for logical, table in source.physical.items():
        if table.schema not in cache:
            cache[table.schema] = relations(con, table.schema)
        if table.name in cache[table.schema]:
            names.add(logical)
    return names


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


BATCH = True  # count the row checks that read the same rows in one query (see run_checks)


def run_check(ctx: Context, spec: CheckSpec, cap: int, *,
              built: RowCheck | Structural | None = None,
              counts: Counts | None = None) -> CheckResult:
    """Build and run one check over the whole registry (or the selected centre).

    ``built`` and ``counts`` are the check and its counts when `run_checks` already has them
    (the counts of a batch); the failing rows and the metrics are the check's own queries.
    """
    if spec.kind in POOL_KINDS:
        return not_applicable(spec, "runs on the derived candidate pool in the study pipeline")
    try:
        check = built if built is not None else build_check(ctx, spec)
        if isinstance(check, Structural):
            failures = tuple(Failure(check.table, k, None, spec.id, v) for k, v in check.failures)
            n_failed = len(failures) if check.n_failed is None else check.n_failed
            return _result(spec, check.table, check.n_checked, n_failed,
                           failures=failures[:cap], capped=len(failures) > cap, failure_cap=cap)
        with ctx.source.connect() as conn:
            if counts is None:
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


def build_checks(ctx: Context, specs: Sequence[CheckSpec]
                 ) -> tuple[dict[int, RowCheck | Structural], list[list[int]]]:
    """The checks of ``specs`` that build (by position) and the batches of row checks that
    read the same rows (`connectors.quality._engine.batch_key`), two or more each.

    A check that does not build is left out: running it alone reports why, as before.
    """
    built: dict[int, RowCheck | Structural] = {}
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i, spec in enumerate(specs):
        if spec.kind in POOL_KINDS:
            continue
        try:
            check = build_check(ctx, spec)
        except (NotApplicable, sa.exc.SQLAlchemyError, ConnectorError):
            continue
        built[i] = check
        if isinstance(check, RowCheck):
            groups.setdefault(batch_key(check), []).append(i)
    return built, [g for g in groups.values() if len(g) > 1]


def run_checks(ctx: Context, specs: Sequence[CheckSpec], cap: int) -> tuple[CheckResult, ...]:
    """`run_check` of every spec, in order, with the counts of the row checks that read the
    same table computed in one grouped scan per table (`count_rows_batch`).

    The results are those of `run_check` one at a time (same counts, per-centre counts,
    failing rows, notes): a batch whose query fails is dropped and its checks run alone,
    so each reports its own error as before.
    """
    if not BATCH:
        return tuple(run_check(ctx, spec, cap) for spec in specs)
    built, batches = build_checks(ctx, specs)
    counts: dict[int, Counts] = {}
    for batch in batches:
        try:
            with ctx.source.connect() as conn:
                found = count_rows_batch(conn, [built[i] for i in batch], ctx.centre)
        except (NotApplicable, sa.exc.SQLAlchemyError, ConnectorError):
            continue
        counts.update(zip(batch, found, strict=True))
    return tuple(
        run_check(ctx, spec, cap, built=built.get(i), counts=counts.get(i))
        for i, spec in enumerate(specs)
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
        results = run_checks(ctx, catalogue.enabled, catalogue.failure_cap)
        codes = mapping_codes_check(source)
        if codes is not None:
            results = (codes, *results)
    finally:
        source.close()
    return QualityReport(
        passed=not any(r.blocking for r in results), results=results, registry=source.label,
        centre=centre, cutoff_date=ctx.cutoff_date.isoformat(),
        extraction_date=ctx.today.isoformat(), failure_cap=catalogue.failure_cap,
    )
