"""Completeness checks: missing values, conditional completeness, follow-up per centre."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import sqlalchemy as sa

from connectors.quality._engine import Context, RowCheck
from connectors.quality.catalogue import CheckSpec
from connectors.quality.checks_conformance import _PRIMARY_KEYS

DAYS_PER_MONTH = 365.25 / 12.0


def missing(ctx: Context, spec: CheckSpec) -> RowCheck:
    column = spec.parameters["column"]
    source, table, centre, patient = ctx.with_centre(spec.table, column)
    key = table.c[_PRIMARY_KEYS[spec.table]]
    return RowCheck(spec.table, source, key, table.c[column].is_(None), centre, patient)


def has_child(ctx: Context, spec: CheckSpec) -> RowCheck:
    # joins to grouped subqueries, not correlated EXISTS: child patient_id is not indexed
    child = ctx.table(spec.parameters["child"], "patient_id")
    patients = ctx.table("patients", "patient_id", "centre_id")
    known = sa.select(child.c.patient_id.label("pid")).group_by(child.c.patient_id).subquery()
    source = patients.outerjoin(known, known.c.pid == patients.c.patient_id)
    return RowCheck(
        "patients", source, patients.c.patient_id, known.c.pid.is_(None),
        patients.c.centre_id, patients.c.patient_id,
    )


def dead_death_date(ctx: Context, spec: CheckSpec) -> RowCheck:
    source, fu, centre, patient = ctx.with_centre("follow_up", "vital_status", "death_date")
    return RowCheck(
        "follow_up", source, fu.c.patient_id, fu.c.death_date.is_(None), centre, patient,
        {"vital_status": fu.c.vital_status, "death_date": fu.c.death_date},
        where=fu.c.vital_status == "dead",
    )


def _crs(ctx: Context):
    source, surg, centre, patient = ctx.with_centre("surgeries", "crs", "surgery_id")
    return source, surg, centre, patient, surg.c.crs == sa.true()


def crs_pci(ctx: Context, spec: CheckSpec) -> RowCheck:
    source, surg, centre, patient, is_crs = _crs(ctx)
    diag = ctx.table("diagnoses", "patient_id", "pci")
    with_pci = (
        sa.select(diag.c.patient_id.label("pid")).where(diag.c.pci.is_not(None))
        .group_by(diag.c.patient_id).subquery("with_pci")
    )
    source = source.outerjoin(with_pci, with_pci.c.pid == surg.c.patient_id)
    return RowCheck(
        "surgeries", source, surg.c.surgery_id, with_pci.c.pid.is_(None), centre, patient,
        where=is_crs,
    )


def crs_cc_score(ctx: Context, spec: CheckSpec) -> RowCheck:
    source, surg, centre, patient, is_crs = _crs(ctx)
    ctx.table("surgeries", "cc_score")
    return RowCheck(
        "surgeries", source, surg.c.surgery_id, surg.c.cc_score.is_(None), centre, patient,
        where=is_crs,
    )


def progression_record(ctx: Context, spec: CheckSpec) -> RowCheck:
    window = int(spec.parameters.get("window_days", 60))
    line = ctx.table(
        "treatment_lines", "line_id", "patient_id", "start_date", "end_date", "end_reason"
    )
    ta = ctx.table(
        "tumour_assessments", "patient_id", "assessment_date", "overall_response",
        "clinical_progression",
    )
    progressions = (
        sa.select(ta.c.patient_id, ta.c.assessment_date)
        .where(sa.or_(ta.c.overall_response == "PD", ta.c.clinical_progression == sa.true()))
        .subquery("progressions")
    )
    ended = line.c.end_reason == "progression"
    found = (
        sa.select(
            line.c.line_id.label("line_id"), line.c.patient_id.label("patient_id"),
            line.c.start_date.label("start_date"), line.c.end_date.label("end_date"),
            sa.func.count(progressions.c.assessment_date).label("n_progressions"),
        )
        .select_from(line.outerjoin(progressions, sa.and_(
            progressions.c.patient_id == line.c.patient_id,
            progressions.c.assessment_date >= line.c.start_date,
            ctx.days_between(line.c.end_date, progressions.c.assessment_date) <= window,
        )))
        .where(ended)
        .group_by(line.c.line_id, line.c.patient_id, line.c.start_date, line.c.end_date)
        .subquery("progression_lines")
    )
    patients = ctx.table("patients", "patient_id", "centre_id").alias("centre_of_row")
    source = found.outerjoin(patients, patients.c.patient_id == found.c.patient_id)
    return RowCheck(
        "treatment_lines", source, found.c.line_id, found.c.n_progressions == 0,
        patients.c.centre_id, found.c.patient_id,
        {"start_date": found.c.start_date, "end_date": found.c.end_date},
    )


def follow_up_stale(ctx: Context, spec: CheckSpec) -> RowCheck:
    months = float(spec.parameters.get("months", 12))
    limit = ctx.cutoff_date - dt.timedelta(days=round(months * DAYS_PER_MONTH))
    source, fu, centre, patient = ctx.with_centre(
        "follow_up", "last_contact_date", "vital_status"
    )
    return RowCheck(
        "follow_up", source, fu.c.patient_id, fu.c.last_contact_date < limit, centre, patient,
        {"last_contact_date": fu.c.last_contact_date},
        where=sa.and_(fu.c.vital_status == "alive", fu.c.last_contact_date.is_not(None)),
    )


def reverse_km_median_follow_up(ctx: Context, conn: sa.Connection) -> dict[str | None, float]:
    """Median potential follow-up per centre (days from first diagnosis to last contact).

    Reverse Kaplan-Meier (Schemper & Smith 1996): being alive at last contact is the "event"
    and death censors. The database returns counts per (centre, day, status) only, so memory
    is bounded by centres x distinct follow-up days. ``None`` median: the curve never
    reaches 0.5; centres are keyed by id (``None``: patients without a known centre).
    """
    fu = ctx.table("follow_up", "patient_id", "last_contact_date", "vital_status")
    diag = ctx.table("diagnoses", "patient_id", "diagnosis_date")
    patients = ctx.table("patients", "patient_id", "centre_id")
    first = (
        sa.select(diag.c.patient_id, sa.func.min(diag.c.diagnosis_date).label("d0"))
        .group_by(diag.c.patient_id).subquery("first_diagnosis")
    )
    days = sa.func.round(ctx.days_between(first.c.d0, fu.c.last_contact_date)).label("days")
    alive = sa.case((fu.c.vital_status == "alive", 1), else_=0).label("alive")
    stmt = (
        sa.select(patients.c.centre_id.label("centre"), days, alive, sa.func.count().label("n"))
        .select_from(
            fu.join(first, first.c.patient_id == fu.c.patient_id).outerjoin(
                patients, patients.c.patient_id == fu.c.patient_id
            )
        )
        .where(
            fu.c.last_contact_date.is_not(None),
            fu.c.vital_status.in_(["alive", "dead"]),
            first.c.d0.is_not(None),
        )
        .group_by(patients.c.centre_id, days, alive)
    )
    if ctx.centre is not None:
        stmt = stmt.where(patients.c.centre_id == ctx.centre)
    table: dict[str | None, dict[float, list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0])
    )
    for row in conn.execute(stmt):
        if row.days is None:
            continue
        table[row.centre][float(row.days)][int(row.alive)] += int(row.n)
    return {centre: _km_median(by_day) for centre, by_day in table.items()}


def _km_median(by_day: dict[float, list[int]]) -> float | None:
    """KM median of the 'alive' events, as R survival reports it.

    The smallest t with S(t) <= 0.5; when S(t) equals 0.5 exactly (a flat stretch), the
    midpoint between t and the next event time (``survival:::quantile.survfit``).
    """
    at_risk = sum(a + d for d, a in by_day.values())
    surv, half_at = 1.0, None
    for t in sorted(by_day):
        dead, alive = by_day[t]
        if alive and at_risk:
            if half_at is not None:
                return (half_at + t) / 2.0
            surv *= 1.0 - alive / at_risk
            if abs(surv - 0.5) < 1e-12:
                half_at = t
            elif surv < 0.5:
                return t
        at_risk -= dead + alive
    return half_at


BUILDERS = {
    "missing": missing,
    "has_child": has_child,
    "dead_death_date": dead_death_date,
    "crs_pci": crs_pci,
    "crs_cc_score": crs_cc_score,
    "progression_record": progression_record,
    "follow_up_stale": follow_up_stale,
}
