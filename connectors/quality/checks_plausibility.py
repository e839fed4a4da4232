"""Plausibility checks: date order, events after death or last contact, ages, duplicates."""

from __future__ import annotations

import sqlalchemy as sa

from connectors.quality._engine import Context, RowCheck
from connectors.quality.catalogue import CheckSpec
from connectors.quality.checks_conformance import _PRIMARY_KEYS

DAYS_PER_YEAR = 365.25


def _first_diagnosis(ctx: Context, name: str = "first_diagnosis"):
    diag = ctx.table("diagnoses", "patient_id", "diagnosis_date")
    return (
        sa.select(diag.c.patient_id, sa.func.min(diag.c.diagnosis_date).label("d0"))
        .group_by(diag.c.patient_id).subquery(name)
    )


def birth_before_diagnosis(ctx: Context, spec: CheckSpec) -> RowCheck:
    source, diag, centre, patient = ctx.with_centre("diagnoses", "diagnosis_id", "diagnosis_date")
    pat = ctx.table("patients", "patient_id", "birth_date").alias("birth")
    source = source.outerjoin(pat, pat.c.patient_id == diag.c.patient_id)
    return RowCheck(
        "diagnoses", source, diag.c.diagnosis_id, pat.c.birth_date > diag.c.diagnosis_date,
        centre, patient,
        {"birth_date": pat.c.birth_date, "diagnosis_date": diag.c.diagnosis_date},
    )


def diagnosis_before_treatment(ctx: Context, spec: CheckSpec) -> RowCheck:
    tolerance = int(spec.parameters.get("tolerance_days", 0))
    first = _first_diagnosis(ctx)
    lines = ctx.table("treatment_lines", "patient_id", "start_date")
    first_line = (
        sa.select(lines.c.patient_id, sa.func.min(lines.c.start_date).label("t0"))
        .group_by(lines.c.patient_id).subquery("first_line")
    )
    patients = ctx.table("patients", "patient_id", "centre_id")
    source = patients.join(first, first.c.patient_id == patients.c.patient_id).join(
        first_line, first_line.c.patient_id == patients.c.patient_id
    )
    fails = ctx.days_between(first.c.d0, first_line.c.t0) < -tolerance
    return RowCheck(
        "patients", source, patients.c.patient_id, fails, patients.c.centre_id,
        patients.c.patient_id, {"diagnosis_date": first.c.d0, "first_line_start": first_line.c.t0},
    )


def line_start_before_end(ctx: Context, spec: CheckSpec) -> RowCheck:
    source, line, centre, patient = ctx.with_centre(
        "treatment_lines", "line_id", "start_date", "end_date"
    )
    return RowCheck(
        "treatment_lines", source, line.c.line_id, line.c.end_date < line.c.start_date,
        centre, patient, {"start_date": line.c.start_date, "end_date": line.c.end_date},
    )


def line_sequence(ctx: Context, spec: CheckSpec) -> RowCheck:
    source, line, centre, patient = ctx.with_centre(
        "treatment_lines", "line_id", "line_number", "start_date", "end_date"
    )
    prev = ctx.source.tables["treatment_lines"].alias("previous_line")
    source = source.join(
        prev,
        sa.and_(prev.c.patient_id == line.c.patient_id,
                prev.c.line_number == line.c.line_number - 1),
    )
    fails = sa.or_(line.c.start_date < prev.c.start_date, line.c.start_date < prev.c.end_date)
    return RowCheck(
        "treatment_lines", source, line.c.line_id, fails, centre, patient,
        {"line_number": line.c.line_number, "start_date": line.c.start_date,
         "previous_start": prev.c.start_date, "previous_end": prev.c.end_date},
    )


def assessment_within_follow_up(ctx: Context, spec: CheckSpec) -> RowCheck:
    source, ta, centre, patient = ctx.with_centre(
        "tumour_assessments", "assessment_id", "assessment_date"
    )
    first = _first_diagnosis(ctx)
    fu = ctx.table("follow_up", "patient_id", "last_contact_date").alias("fu")
    source = source.outerjoin(first, first.c.patient_id == ta.c.patient_id).outerjoin(
        fu, fu.c.patient_id == ta.c.patient_id
    )
    date = ta.c.assessment_date
    return RowCheck(
        "tumour_assessments", source, ta.c.assessment_id,
        sa.or_(date < first.c.d0, date > fu.c.last_contact_date), centre, patient,
        {"assessment_date": date, "diagnosis_date": first.c.d0,
         "last_contact_date": fu.c.last_contact_date},
    )


def _dated(ctx: Context, spec: CheckSpec):
    columns = list(spec.parameters["columns"])
    key_name = _PRIMARY_KEYS[spec.table]
    source, table, centre, patient = ctx.with_centre(spec.table, key_name, *columns)
    return source, table, centre, patient, [table.c[c] for c in columns], table.c[key_name]


def after_death(ctx: Context, spec: CheckSpec) -> RowCheck:
    grace = int(spec.parameters.get("grace_days", 60))
    source, table, centre, patient, dates, key = _dated(ctx, spec)
    fu = ctx.table("follow_up", "patient_id", "death_date").alias("death")
    source = source.join(fu, fu.c.patient_id == table.c.patient_id)
    fails = sa.or_(*(ctx.days_between(fu.c.death_date, d) > grace for d in dates))
    values = {d.key: d for d in dates} | {"death_date": fu.c.death_date}
    return RowCheck(spec.table, source, key, fails, centre, patient, values)


def after_last_contact(ctx: Context, spec: CheckSpec) -> RowCheck:
    source, table, centre, patient, dates, key = _dated(ctx, spec)
    fu = ctx.table("follow_up", "patient_id", "last_contact_date").alias("contact")
    source = source.join(fu, fu.c.patient_id == table.c.patient_id)
    fails = sa.or_(*(d > fu.c.last_contact_date for d in dates))
    values = {d.key: d for d in dates} | {"last_contact_date": fu.c.last_contact_date}
    return RowCheck(spec.table, source, key, fails, centre, patient, values)


def future(ctx: Context, spec: CheckSpec) -> RowCheck:
    source, _, centre, patient, dates, key = _dated(ctx, spec)
    fails = sa.or_(*(d > ctx.today for d in dates))
    return RowCheck(spec.table, source, key, fails, centre, patient, {d.key: d for d in dates})


def age(ctx: Context, spec: CheckSpec) -> RowCheck:
    low, high = float(spec.parameters["min"]), float(spec.parameters["max"])
    source, diag, centre, patient = ctx.with_centre("diagnoses", "diagnosis_id", "diagnosis_date")
    pat = ctx.table("patients", "patient_id", "birth_date").alias("birth")
    source = source.join(pat, pat.c.patient_id == diag.c.patient_id)
    years = ctx.days_between(pat.c.birth_date, diag.c.diagnosis_date) / DAYS_PER_YEAR
    return RowCheck(
        "diagnoses", source, diag.c.diagnosis_id, sa.or_(years < low, years > high),
        centre, patient,
        {"birth_date": pat.c.birth_date, "diagnosis_date": diag.c.diagnosis_date},
    )


def cc_hipec_without_crs(ctx: Context, spec: CheckSpec) -> RowCheck:
    source, surg, centre, patient = ctx.with_centre(
        "surgeries", "surgery_id", "crs", "hipec", "cc_score"
    )
    no_crs = sa.or_(surg.c.crs.is_(None), surg.c.crs == sa.false())
    fails = sa.and_(no_crs, sa.or_(surg.c.cc_score.is_not(None), surg.c.hipec == sa.true()))
    return RowCheck(
        "surgeries", source, surg.c.surgery_id, fails, centre, patient,
        {"crs": surg.c.crs, "hipec": surg.c.hipec, "cc_score": surg.c.cc_score},
    )


def duplicates(ctx: Context, spec: CheckSpec) -> RowCheck:
    """Patients sharing the ``match`` values (window counts: no self-join, one sort)."""
    match = list(spec.parameters["match"])
    required = list(spec.parameters.get("required", match))  # the others match NULL = NULL
    across = bool(spec.parameters.get("across_centres", False))
    diag_cols = [c for c in match if c not in ("sex", "birth_date", "diagnosis_date")]
    patients = ctx.table("patients", "patient_id", "centre_id", "sex", "birth_date")
    diag = ctx.table("diagnoses", "diagnosis_id", "patient_id", "diagnosis_date", *diag_cols)
    # one diagnosis per patient: the first dated one (ties: lowest record id)
    ranked = (
        sa.select(
            diag.c.patient_id, diag.c.diagnosis_date, *(diag.c[c] for c in diag_cols),
            sa.func.row_number().over(
                partition_by=diag.c.patient_id,
                order_by=(diag.c.diagnosis_date, diag.c.diagnosis_id),
            ).label("rank"),
        )
        .where(diag.c.diagnosis_date.is_not(None))
        .subquery("ranked_diagnoses")
    )
    record = (
        sa.select(patients.c.patient_id, patients.c.centre_id, patients.c.sex,
                  patients.c.birth_date, ranked.c.diagnosis_date,
                  *(ranked.c[c] for c in diag_cols))
        .join(ranked, sa.and_(ranked.c.patient_id == patients.c.patient_id, ranked.c.rank == 1))
        .subquery("dup_record")
    )
    group = [record.c[c] for c in match]
    windowed = sa.select(
        record,
        sa.func.count().over(partition_by=group).label("n_same"),
        sa.func.min(record.c.centre_id).over(partition_by=group).label("centre_min"),
        sa.func.max(record.c.centre_id).over(partition_by=group).label("centre_max"),
    ).subquery("dup_groups")
    w = windowed.c
    complete = sa.and_(*(w[c].is_not(None) for c in required))
    duplicated = w.centre_min != w.centre_max if across else w.n_same > 1
    return RowCheck(
        "patients", windowed, w.patient_id, sa.and_(complete, duplicated), w.centre_id,
        w.patient_id, {c: w[c] for c in match},
    )


BUILDERS = {
    "birth_before_diagnosis": birth_before_diagnosis,
    "diagnosis_before_treatment": diagnosis_before_treatment,
    "line_start_before_end": line_start_before_end,
    "line_sequence": line_sequence,
    "assessment_within_follow_up": assessment_within_follow_up,
    "after_death": after_death,
    "after_last_contact": after_last_contact,
    "future": future,
    "age": age,
    "cc_hipec_without_crs": cc_hipec_without_crs,
    "duplicates": duplicates,
}
