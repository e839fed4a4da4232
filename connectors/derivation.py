"""The SQL that derives index lines, covariates at index and endpoints (SQLAlchemy Core).

Rules (also in ``docs/data_dictionary.md``); ``t0`` is the index date:

- **Index line.** A line L of a patient is a candidate if the patient has another line P
  with ``regimen = <after_regimen>`` (default ``platinum_pemetrexed``) and L starts after it:
  ``L.start_date > P.end_date`` or ``L.line_number > P.line_number``; L needs a start date.
  ``selection="first"`` keeps the earliest candidate (order: start date, line number,
  line id); ``"all"`` keeps every candidate. ``t0 = L.start_date``.
- **Reference platinum line** of L: the most recent such P (latest start date, then line
  number, then line id); ``pfi_months = (t0 - P.end_date)`` in months (missing when
  ``P.end_date`` is missing).
- **Diagnosis**: the patient's earliest diagnosis record (date, then diagnosis id); histology,
  PCI, Ki-67, BAP1 and disease come from it.
- **Surgery**: ``prior_crs`` = a surgery with ``crs`` true dated before t0; ``crs_hipec``
  = one with ``crs`` and ``hipec`` true before t0 (no such record: False).
- **Prior lines**: lines starting before t0; ``prior_immunotherapy`` = one of them has
  ``immune_checkpoint_inhibitor`` among its ';'-separated drug classes (or, when the mapping
  declares the ``immunotherapy`` flag of treatment lines as a rule, one of them meets it).
- **Disease-specific covariates** declared in the mapping come from the patient row, the
  earliest diagnosis record, or the index line (``connectors.mapping.COVARIATE_TABLES``).
- Units: years = days / 365.25, months = days / (365.25 / 12).

The design query reads centres/patients/diagnoses/surgeries/treatment_lines only, and never
the index line's end date or end reason (no query reads ``end_reason``; end dates are read of
the platinum lines only). Endpoint queries read `OUTCOME_TABLES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement, FromClause

from connectors import columns as cn
from connectors.errors import ConnectorError
from connectors.readonly import days_between

DESIGN_TABLES = ("centres", "patients", "diagnoses", "surgeries", "treatment_lines")
OUTCOME_TABLES = ("tumour_assessments", "follow_up")
DAYS_PER_YEAR = cn.DAYS_PER_UNIT["years"]
DAYS_PER_MONTH = cn.DAYS_PER_UNIT["months"]
IO_DRUG_CLASS = "immune_checkpoint_inhibitor"
IO_FLAG = "immunotherapy"  # the derived flag of a line (`connectors.schema.DERIVED_FLAGS`)

#: The registry columns (logical table, column) each frame column is derived from: a column
#: the mapping declares absent makes these features unavailable (a clear error if asked for).
FEATURE_SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    cn.CENTRE_ID: (("patients", "centre_id"),),
    cn.DISEASE: (("diagnoses", "disease"),),
    cn.AGE: (("patients", "birth_date"),),
    cn.SEX: (("patients", "sex"),),
    cn.ECOG: (("treatment_lines", "ecog_at_start"),),
    cn.HISTOLOGY: (("diagnoses", "histology"),),
    cn.PCI: (("diagnoses", "pci"),),
    cn.PRIOR_CRS: (("surgeries", "crs"), ("surgeries", "surgery_date")),
    cn.CRS_HIPEC: (("surgeries", "crs"), ("surgeries", "hipec"), ("surgeries", "surgery_date")),
    cn.PFI_MONTHS: (("treatment_lines", "end_date"),),
    cn.PRIOR_IMMUNOTHERAPY: (("treatment_lines", IO_FLAG),),
    cn.MONTHS_SINCE_DIAGNOSIS: (("diagnoses", "diagnosis_date"),),
    cn.KI67: (("diagnoses", "ki67_percent"),),
    cn.BAP1: (("diagnoses", "bap1_status"),),
}


def read_columns() -> dict[str, frozenset[str]]:
    """The schema columns the design and endpoint queries read, per logical table.

    Found by walking the SQL of `design_select` and `outcome_select` (built on the schema's
    own tables), so it follows the derivations as they change. A registry needs only these
    (plus what its mapping names): a column nobody reads may be missing.
    """
    from collections import defaultdict

    from sqlalchemy.sql import visitors

    from connectors.schema import build_metadata

    _, t = build_metadata(None, with_constraints=False)
    lines = t["treatment_lines"]
    keys = sa.select(lines.c.patient_id, lines.c.line_id,
                     lines.c.start_date.label("index_date")).cte("keys")
    owner = {table: name for name, table in t.items()}
    found: dict[str, set[str]] = defaultdict(set)
    for stmt in (design_select(t, IndexRule()), outcome_select(t, keys)):
        for element in visitors.iterate(stmt):
            if isinstance(element, sa.Column):
                table = element.table
                while isinstance(table, sa.sql.Alias):
                    table = table.element
                if table in owner:
                    found[owner[table]].add(element.key)
    return {name: frozenset(found[name]) for name in t}


def unavailable_features(mapping: Any) -> dict[str, str]:
    """Frame columns that cannot be derived because the mapping declares a source absent.

    Returns
    -------
    dict of frame column -> reason (the absent source column and where it is declared)
    """
    absent = mapping.absent() if hasattr(mapping, "absent") else {}
    out: dict[str, str] = {}
    for feature, sources in FEATURE_SOURCES.items():
        for table, column in sources:
            rc = absent.get((table, column))
            if column == IO_FLAG:
                has_rule = mapping.recode(table, IO_FLAG) is not None if hasattr(
                    mapping, "recode") else False
                rc = None if has_rule else absent.get((table, "drug_classes"))
                column = "drug_classes" if rc is not None else column
            if rc is not None:
                out[feature] = (f"it needs {table}.{column}, which the mapping declares "
                                f"absent ({rc.where})")
                break
    return out
PROGRESSION_RESPONSE = "PD"
ADEQUATE_RESPONSES = ("CR", "PR", "SD")


@dataclass(frozen=True, slots=True)
class IndexRule:
    """How the index (time-zero) line is chosen.

    Parameters
    ----------
    after_regimen : str, default="platinum_pemetrexed"
        Regimen code of the line the index line must follow.
    selection : {"first", "all"}, default="first"
        The first line after it (one row per patient) or every such line (one row per
        patient x line, with ``line_id``; for sensitivity analyses).
    """

    after_regimen: str = "platinum_pemetrexed"
    selection: Literal["first", "all"] = "first"

    def __post_init__(self) -> None:
        if self.selection not in ("first", "all"):
            raise ConnectorError(
                f"index selection must be 'first' or 'all', got {self.selection!r}"
            )
        if not isinstance(self.after_regimen, str) or not self.after_regimen.strip():
            raise ConnectorError(f"index after_regimen must be a regimen code, got "
                                 f"{self.after_regimen!r}")


def _nulls_last(col: ColumnElement, *, descending: bool = False) -> list[ColumnElement]:
    """Dialect-independent NULLS LAST (SQLite/MariaDB put NULLs first, PostgreSQL last)."""
    flag = sa.case((col.is_(None), 1), else_=0)
    return [flag, col.desc() if descending else col]


def _is_io(lines: FromClause) -> ColumnElement:
    """The line's immunotherapy flag: the mapping's rule, else its drug classes."""
    if IO_FLAG in lines.c:
        return lines.c[IO_FLAG] == sa.true()
    classes = sa.func.lower(sa.func.replace(sa.func.coalesce(lines.c.drug_classes, ""), " ", ""))
    return (sa.literal(";") + classes + sa.literal(";")).like(
        sa.bindparam("io_pattern", f"%;{IO_DRUG_CLASS};%", type_=sa.String)
    )


def _lines_with_history(t: Mapping[str, sa.Table], extra: tuple[str, ...] = ()) -> FromClause:
    """Every treatment line with the number of lines, and of immunotherapy lines, before it.

    "Before" is a strictly earlier start date (lines without a start date are neither counted
    nor candidates); window aggregates over the patient's dated lines, so no self-join.
    """
    lines = t["treatment_lines"]
    io = sa.case((_is_io(lines), 1), else_=0)
    undated = sa.case((lines.c.start_date.is_(None), 1), else_=0)
    patient = [lines.c.patient_id, undated]
    # RANK() - 1 counts rows with a strictly earlier start (peers share a rank); the running
    # sum includes same-day peers, so subtract them
    return sa.select(
        lines.c.patient_id,
        lines.c.line_id,
        lines.c.line_number,
        lines.c.start_date,
        lines.c.ecog_at_start,
        *(lines.c[name] for name in extra),
        (sa.func.rank().over(partition_by=patient, order_by=lines.c.start_date) - 1).label(
            "n_prior"
        ),
        (
            sa.func.sum(io).over(partition_by=patient, order_by=lines.c.start_date)
            - sa.func.sum(io).over(partition_by=[*patient, lines.c.start_date])
        ).label("n_io_prior"),
    ).subquery("lines_history")


def _first_surgeries(t: Mapping[str, sa.Table]) -> FromClause:
    """Per patient, the first dated CRS and the first dated CRS with HIPEC."""
    s = t["surgeries"]
    crs = s.c.crs == sa.true()
    return (
        sa.select(
            s.c.patient_id,
            sa.func.min(sa.case((crs, s.c.surgery_date))).label("first_crs"),
            sa.func.min(sa.case((sa.and_(crs, s.c.hipec == sa.true()), s.c.surgery_date))).label(
                "first_crs_hipec"
            ),
        )
        .group_by(s.c.patient_id)
        .subquery("first_surgeries")
    )


def design_select(t: Mapping[str, sa.Table], rule: IndexRule,
                  extra: Mapping[str, str] | None = None) -> sa.Select:
    """One row per index line with the covariates at index (analysis-frame column names).

    ``extra``: the mapping's covariates, name -> logical table (patients, diagnoses or
    treatment_lines), selected after the built-in columns under their names.

    Every join happens before the ROW_NUMBER filters and nothing is joined after them:
    PostgreSQL estimates ``row_number() = 1`` filters at a fraction of a percent and would
    otherwise pick nested loops that are quadratic in the pool size.
    """
    extra = dict(extra or {})
    line = _lines_with_history(
        t, tuple(n for n, tb in extra.items() if tb == "treatment_lines"))
    plat = t["treatment_lines"].alias("platinum")
    pat = t["patients"]
    diag = t["diagnoses"]
    surg = _first_surgeries(t)
    regimen = sa.bindparam("after_regimen", rule.after_regimen, type_=sa.String)
    follows = sa.and_(
        plat.c.patient_id == line.c.patient_id,
        plat.c.line_id != line.c.line_id,
        plat.c.regimen == regimen,
        sa.or_(line.c.start_date > plat.c.end_date, line.c.line_number > plat.c.line_number),
    )
    # one row per candidate line: its most recent platinum line, the earliest diagnosis
    rn_reference = sa.func.row_number().over(
        partition_by=line.c.line_id,
        order_by=[
            *_nulls_last(plat.c.start_date, descending=True),
            *_nulls_last(plat.c.line_number, descending=True),
            plat.c.line_id.desc(),
            *_nulls_last(diag.c.diagnosis_date),
            diag.c.diagnosis_id,
        ],
    )
    ranked = (
        sa.select(
            line.c.patient_id, line.c.line_id, line.c.line_number,
            line.c.start_date.label("index_date"), line.c.ecog_at_start, line.c.n_prior,
            line.c.n_io_prior, plat.c.end_date.label("platinum_end"),
            pat.c.centre_id, pat.c.sex, pat.c.birth_date,
            diag.c.diagnosis_date, diag.c.disease, diag.c.histology, diag.c.pci,
            diag.c.ki67_percent, diag.c.bap1_status,
            surg.c.first_crs, surg.c.first_crs_hipec,
            *(_source(name, table, line, pat, diag) for name, table in extra.items()),
            rn_reference.label("rn_reference"),
        )
        .select_from(
            line.join(plat, follows)
            .join(pat, pat.c.patient_id == line.c.patient_id)
            .outerjoin(diag, diag.c.patient_id == line.c.patient_id)
            .outerjoin(surg, surg.c.patient_id == line.c.patient_id)
        )
        .where(line.c.start_date.is_not(None))
        .subquery("ranked")
    )
    rn_line = sa.func.row_number().over(
        partition_by=ranked.c.patient_id,
        order_by=[ranked.c.index_date, *_nulls_last(ranked.c.line_number), ranked.c.line_id],
    )
    cand = (
        sa.select(ranked, rn_line.label("rn_line"))
        .where(ranked.c.rn_reference == 1)
        .subquery("candidates")
    )

    def days_to_index(start) -> ColumnElement:
        return days_between(start, cand.c.index_date)

    year = sa.literal(DAYS_PER_YEAR, sa.Float)
    month = sa.literal(DAYS_PER_MONTH, sa.Float)
    sel = sa.select(
        cand.c.patient_id.label(cn.PATIENT_ID),
        cand.c.line_id.label(cn.LINE_ID),
        cand.c.centre_id.label(cn.CENTRE_ID),
        cand.c.index_date.label(cn.INDEX_DATE),
        cand.c.disease.label(cn.DISEASE),
        (days_to_index(cand.c.birth_date) / year).label(cn.AGE),
        cand.c.sex.label(cn.SEX),
        cand.c.ecog_at_start.label(cn.ECOG),
        cand.c.histology.label(cn.HISTOLOGY),
        cand.c.pci.label(cn.PCI),
        sa.func.coalesce(cand.c.first_crs < cand.c.index_date, False).label(cn.PRIOR_CRS),
        sa.func.coalesce(cand.c.first_crs_hipec < cand.c.index_date, False).label(
            cn.CRS_HIPEC
        ),
        (days_to_index(cand.c.platinum_end) / month).label(cn.PFI_MONTHS),
        cand.c.n_prior.label(cn.PRIOR_LINES),
        (cand.c.n_io_prior > 0).label(cn.PRIOR_IMMUNOTHERAPY),
        (days_to_index(cand.c.diagnosis_date) / month).label(cn.MONTHS_SINCE_DIAGNOSIS),
        cand.c.ki67_percent.label(cn.KI67),
        cand.c.bap1_status.label(cn.BAP1),
        *(cand.c[name].label(name) for name in extra),
    )
    if rule.selection == "first":
        sel = sel.where(cand.c.rn_line == 1)
    return sel


def _source(name: str, table: str, line, pat, diag) -> ColumnElement:
    by_table = {"treatment_lines": line, "patients": pat, "diagnoses": diag}
    if table not in by_table:
        raise ConnectorError(f"covariate {name}: cannot be read from table {table}")
    return by_table[table].c[name].label(name)


def _assessment_predicates(a: FromClause, suffix: str = "") -> tuple[ColumnElement,
                                                                        ColumnElement]:
    """``(progression, adequate)`` on tumour assessment rows ``a``: PD or clinical
    progression; CR/PR/SD without clinical progression. ``suffix`` names the bind parameters
    apart, so that both the PFS derivation and the interval query can sit in one statement."""
    progression = sa.or_(
        a.c.overall_response == sa.bindparam(f"pd_code{suffix}", PROGRESSION_RESPONSE,
                                             type_=sa.String),
        a.c.clinical_progression == sa.true(),
    )
    adequate = sa.and_(
        a.c.overall_response.in_(sa.bindparam(f"adequate{suffix}", list(ADEQUATE_RESPONSES),
                                               expanding=True)),
        sa.or_(a.c.clinical_progression.is_(None), a.c.clinical_progression == sa.false()),
    )
    return progression, adequate


def outcome_select(t: Mapping[str, sa.Table], idx: FromClause) -> sa.Select:
    """Per index line (``idx``: patient_id, line_id, index_date) the raw endpoint dates.

    Columns (days from index, NULL when absent): days_to_progression (first assessment after
    index with PD or clinical progression), days_to_last_adequate (last assessment after
    index with CR/PR/SD and no clinical progression), days_to_death, days_to_last_contact.
    `derive_endpoints` turns them into PFS and OS.
    """
    a = t["tumour_assessments"]
    days = days_between(idx.c.index_date, a.c.assessment_date)
    progression, adequate = _assessment_predicates(a)
    assessed = (
        sa.select(
            idx.c.line_id,
            sa.func.min(sa.case((progression, days))).label("days_to_progression"),
            sa.func.max(sa.case((adequate, days))).label("days_to_last_adequate"),
        )
        .select_from(
            idx.join(a, sa.and_(a.c.patient_id == idx.c.patient_id,
                                a.c.assessment_date > idx.c.index_date))
        )
        .group_by(idx.c.line_id)
        .subquery("assessed")
    )
    f = t["follow_up"]
    return sa.select(
        idx.c.patient_id.label(cn.PATIENT_ID),
        idx.c.line_id.label(cn.LINE_ID),
        idx.c.index_date.label(cn.INDEX_DATE),
        assessed.c.days_to_progression,
        assessed.c.days_to_last_adequate,
        days_between(idx.c.index_date, f.c.death_date).label("days_to_death"),
        days_between(idx.c.index_date, f.c.last_contact_date).label("days_to_last_contact"),
    ).select_from(
        idx.outerjoin(assessed, assessed.c.line_id == idx.c.line_id).outerjoin(
            f, f.c.patient_id == idx.c.patient_id
        )
    )


RAW_OUTCOME_COLUMNS = (
    "days_to_progression", "days_to_last_adequate", "days_to_death", "days_to_last_contact",
)


def derive_endpoints(raw: pd.DataFrame) -> pd.DataFrame:
    """PFS and OS (days, event 0/1) from the columns of `outcome_select`.

    PFS: event at the earlier of first progression after index and death on/after index;
    otherwise censored at the last adequate assessment after index, or at day 0 when there is
    none (the trials' rule: no post-baseline assessment -> censored at time zero).
    OS: event at death; otherwise censored at last contact. A death or last contact dated
    before the index date is inconsistent and gives a missing OS (and is ignored for PFS).
    """
    prog = pd.to_numeric(raw["days_to_progression"], errors="coerce").to_numpy(float)
    last_ok = pd.to_numeric(raw["days_to_last_adequate"], errors="coerce").to_numpy(float)
    death = pd.to_numeric(raw["days_to_death"], errors="coerce").to_numpy(float)
    contact = pd.to_numeric(raw["days_to_last_contact"], errors="coerce").to_numpy(float)
    death_ok = np.where(death >= 0, death, np.nan)
    event_time = np.fmin(prog, death_ok)  # fmin ignores NaN
    pfs_event = ~np.isnan(event_time)
    pfs_days = np.where(pfs_event, event_time, np.where(np.isnan(last_ok), 0.0, last_ok))
    has_death = ~np.isnan(death)
    os_days = np.where(has_death, death, contact)
    os_days = np.where(os_days >= 0, os_days, np.nan)
    os_event = pd.array(np.where(has_death, 1, 0), dtype="Int64")
    os_event[np.isnan(os_days)] = pd.NA
    if not os_event.isna().any():  # plain int64 like pfs_event unless an OS is missing
        os_event = os_event.astype("int64")
    return pd.DataFrame(
        {
            cn.PFS_DAYS: pfs_days.astype(float),
            cn.PFS_EVENT: pfs_event.astype("int64"),
            cn.OS_DAYS: os_days.astype(float),
            cn.OS_EVENT: os_event,
        },
        index=raw.index,
    )


def progression_interval_select(t: Mapping[str, sa.Table], idx: FromClause) -> sa.Select:
    """Per index line the PFS progression interval and the assessment schedule (alignment).

    ``idx``: patient_id, line_id, index_date. The PFS event day is the earlier of the first
    post-index assessment with PD or clinical progression and a death on/after the index (the
    rules of `derive_endpoints`). Columns (`connectors.columns.ALIGNMENT_COLUMNS`):
    ``pfs_last_pf_days`` the last post-index assessment with CR/PR/SD and no clinical
    progression strictly before the event day (any, when censored; 0 when none);
    ``pfs_death`` whether the event is a death without an earlier or same-day progression;
    ``pfs_n_assessments`` the post-index assessments on or before the event day;
    ``pfs_mean_gap_days`` the last of those days / their number (the mean gap, index to first
    scan included; NULL when none). One statement, the same on every backend.
    """
    a = t["tumour_assessments"]
    f = t["follow_up"]
    days = days_between(idx.c.index_date, a.c.assessment_date)
    progression, adequate = _assessment_predicates(a, "_i")
    post = (
        sa.select(idx.c.line_id, days.label("days"),
                  sa.case((progression, 1), else_=0).label("is_prog"),
                  sa.case((adequate, 1), else_=0).label("is_pf"))
        .select_from(idx.join(a, sa.and_(a.c.patient_id == idx.c.patient_id,
                                         a.c.assessment_date > idx.c.index_date)))
        .subquery("post_index_assessments")
    )
    first_prog = (
        sa.select(post.c.line_id,
                  sa.func.min(sa.case((post.c.is_prog == 1, post.c.days))).label("first_prog"))
        .group_by(post.c.line_id)
        .subquery("first_progression")
    )
    death = days_between(idx.c.index_date, f.c.death_date)
    ev = (
        sa.select(idx.c.line_id, first_prog.c.first_prog,
                  sa.case((death >= 0, death)).label("death_day"))
        .select_from(idx.outerjoin(first_prog, first_prog.c.line_id == idx.c.line_id)
                     .outerjoin(f, f.c.patient_id == idx.c.patient_id))
        .subquery("pfs_event_day")
    )
    is_death = sa.and_(ev.c.death_day.is_not(None),
                       sa.or_(ev.c.first_prog.is_(None), ev.c.death_day < ev.c.first_prog))
    end = sa.case((is_death, ev.c.death_day), else_=ev.c.first_prog)
    counted = sa.and_(post.c.days.is_not(None), sa.or_(end.is_(None), post.c.days <= end))
    before = sa.and_(post.c.is_pf == 1, sa.or_(end.is_(None), post.c.days < end))
    n = sa.func.count(sa.case((counted, 1)))
    return (
        sa.select(
            ev.c.line_id.label(cn.LINE_ID),
            sa.func.coalesce(sa.func.max(sa.case((before, post.c.days))), 0).label(
                cn.PFS_LAST_PF_DAYS),
            sa.func.max(sa.case((is_death, 1), else_=0)).label(cn.PFS_DEATH),
            n.label(cn.PFS_N_ASSESSMENTS),
            (sa.func.max(sa.case((counted, post.c.days))) * sa.literal(1.0, sa.Float)
             / sa.func.nullif(n, 0)).label(cn.PFS_MEAN_GAP_DAYS),
        )
        .select_from(ev.outerjoin(post, post.c.line_id == ev.c.line_id))
        .group_by(ev.c.line_id)
    )
