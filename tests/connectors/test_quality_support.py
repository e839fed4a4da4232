"""Shared helpers of the quality tests: a small clean registry and defect injection.

Defects are injected with plain SQL into a *copy* of a registry; each injector returns the
keys it broke so that a test asserts the check finds exactly those rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from sample_data.writer import write_registry, write_registry_sqlite

TODAY = dt.date(2026, 1, 1)  # extraction date of the test registries
CENTRES = ("C01", "C02", "C03")


def clean_tables(n: int = 120, seed: int = 7) -> dict[str, pd.DataFrame]:
    """A small registry with no defect: every check passes on it."""
    rng = np.random.default_rng(seed)
    day = dt.timedelta(days=1)
    centres = pd.DataFrame({"centre_id": list(CENTRES), "centre_name": ["A", "B", "C"],
                            "region": ["N", "S", "E"]})
    pats, diags, surgs, lines, tas, fus = [], [], [], [], [], []
    line_id = ta_id = surg_id = 0
    for i in range(n):
        pid = f"P{i:05d}"
        diag_date = dt.date(2016, 1, 1) + int(rng.integers(0, 1500)) * day
        birth = diag_date - int(rng.integers(45 * 365, 80 * 365)) * day
        pats.append((pid, CENTRES[i % 3], "FM"[i % 2], birth))
        diags.append((i + 1, pid, diag_date, "peritoneal_mesothelioma",
                      ("epithelioid", "biphasic", "sarcomatoid")[i % 3],
                      int(rng.integers(0, 40)) if i % 15 != 1 else None,
                      float(rng.uniform(1, 60)), ("lost", "retained")[i % 2]))
        if i % 3 != 1:
            surg_id += 1
            surgs.append((surg_id, pid, diag_date + 20 * day, True, bool(i % 4 == 0),
                          int(rng.integers(0, 4))))
        start = diag_date + 60 * day
        n_lines = 1 + i % 3
        for k in range(1, n_lines + 1):
            line_id += 1
            end = start + int(rng.integers(60, 200)) * day
            reason = "progression" if k < n_lines or i % 2 else "completed"
            lines.append((line_id, pid, k, "platinum_pemetrexed" if k == 1 else "vinorelbine",
                          "platinum;antifolate" if k == 1 else "vinca_alkaloid", start, end,
                          reason, int(rng.integers(0, 3))))
            ta_id += 1
            tas.append((ta_id, pid, start + 30 * day, "mRECIST", "SD", False))
            if reason == "progression":
                ta_id += 1
                tas.append((ta_id, pid, end, "mRECIST", "PD", False))
            start = end + int(rng.integers(10, 40)) * day
        dead = i % 4 == 1
        last = start + int(rng.integers(30, 200)) * day
        if not dead:
            last = dt.date(2025, 6, 1) - int(rng.integers(0, 200)) * day
        fus.append((pid, last, "dead" if dead else "alive", last if dead else None))
    cols = {
        "patients": ["patient_id", "centre_id", "sex", "birth_date"],
        "diagnoses": ["diagnosis_id", "patient_id", "diagnosis_date", "disease", "histology",
                      "pci", "ki67_percent", "bap1_status"],
        "surgeries": ["surgery_id", "patient_id", "surgery_date", "crs", "hipec", "cc_score"],
        "treatment_lines": ["line_id", "patient_id", "line_number", "regimen", "drug_classes",
                            "start_date", "end_date", "end_reason", "ecog_at_start"],
        "tumour_assessments": ["assessment_id", "patient_id", "assessment_date", "criteria",
                               "overall_response", "clinical_progression"],
        "follow_up": ["patient_id", "last_contact_date", "vital_status", "death_date"],
    }
    rows = {"patients": pats, "diagnoses": diags, "surgeries": surgs, "treatment_lines": lines,
            "tumour_assessments": tas, "follow_up": fus}
    out = {"centres": centres}
    out.update({name: pd.DataFrame(rows[name], columns=cols[name]) for name in cols})
    return out


def write_sqlite(tables, path: Path) -> Path:
    write_registry_sqlite(tables, path)
    return path


def write_engine(engine: sa.Engine, tables, schema: str | None = None) -> None:
    write_registry(engine, tables, schema=schema)


def copy_registry(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


def load_tables(path: Path) -> dict[str, pd.DataFrame]:
    """Read a SQLite registry back into DataFrames (to copy it into another database)."""
    from connectors.schema import LOGICAL_SCHEMA, REQUIRED_TABLES

    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        out = {name: pd.read_sql_query(sa.text(f"SELECT * FROM {name}"), conn)
               for name in REQUIRED_TABLES}
    engine.dispose()
    for name in REQUIRED_TABLES:
        for spec in LOGICAL_SCHEMA[name]:
            if isinstance(sa.types.to_instance(spec.type_), sa.Boolean):
                out[name][spec.name] = out[name][spec.name].map(
                    lambda v: None if pd.isna(v) else bool(v)).astype(object)
    return out


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def row_counts(engine: sa.Engine, schema: str | None = None) -> dict[str, int]:
    meta = sa.MetaData()
    meta.reflect(engine, schema=schema)
    with engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in meta.sorted_tables}


def as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


class _TableNames(dict):
    """``{t[patients]}`` in SQL templates -> schema-qualified table name."""

    def __init__(self, schema: str | None):
        super().__init__()
        self.schema = schema

    def __missing__(self, key: str) -> str:
        return f"{self.schema}.{key}" if self.schema else key


class Injector:
    """Inject defects with plain SQL into a writable copy; targets are picked by query.

    Each picked patient is used once per copy so that injected defects do not interact.
    """

    def __init__(self, engine: sa.Engine, schema: str | None = None):
        self.engine, self.used = engine, set()
        self.t = _TableNames(schema)
        # the target queries correlate on patient_id: index it in the copy (speed only)
        for table in ("diagnoses", "surgeries", "treatment_lines", "tumour_assessments"):
            self.run(f"CREATE INDEX IF NOT EXISTS ix_q_{table} ON {{t[{table}]}} (patient_id)")

    def all(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql.format(t=self.t)), params).all()

    def run(self, sql: str, **params) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql.format(t=self.t)), params)

    def patient(self, where: str = "1=1", **params) -> str:
        """The first unused patient id satisfying ``where`` (aliases p, f, d)."""
        rows = self.all(
            "SELECT p.patient_id FROM {t[patients]} p "
            "JOIN {t[follow_up]} f ON f.patient_id = p.patient_id "
            "JOIN {t[diagnoses]} d ON d.patient_id = p.patient_id "
            f"WHERE {where} ORDER BY p.patient_id", **params
        )
        for (pid,) in rows:
            if pid not in self.used:
                self.used.add(pid)
                return pid
        raise LookupError(f"no unused patient with {where}")

    def d(self, value: dt.date):
        """A date parameter (ISO text for SQLite, where DATE is stored as text)."""
        return value.isoformat() if self.engine.dialect.name == "sqlite" else value

    def value(self, sql: str, **params):
        rows = self.all(sql, **params)
        return rows[0][0] if rows else None

    def lines(self, pid: str):
        return self.all(
            "SELECT line_id, line_number, start_date, end_date, end_reason "
            "FROM {t[treatment_lines]} WHERE patient_id = :pid ORDER BY line_number", pid=pid
        )


_CACHE: dict[str, object] = {}
NO_CAP = {"failure_cap": 1_000_000}  # keep every failing row to compare key sets

def sample_registry() -> Path:
    """The shipped sample registry (never modified: copy it before injecting defects)."""
    from sample_data.paths import SAMPLE_REGISTRY

    assert Path(SAMPLE_REGISTRY).is_file(), "run python -m sample_data.build"
    return Path(SAMPLE_REGISTRY)


def baseline_report():
    """The validation of the clean sample registry (uncapped), once per test session."""
    if "baseline" not in _CACHE:
        from connectors.quality import validate_registry

        _CACHE["baseline"] = validate_registry(
            f"sqlite:///{sample_registry()}", overrides=NO_CAP, today=TODAY
        )
    return _CACHE["baseline"]


def failure_keys(report, check_id: str) -> list[str]:
    return sorted(f.key for f in report[check_id].failures)


# ----------------------------------------------------------------------------- injectors
# Each returns {check id: set of keys it broke}; tests expect baseline | injected.

DAY = dt.timedelta(days=1)


def _fu(inj: Injector, pid: str):
    return inj.all(
        "SELECT last_contact_date, vital_status, death_date FROM {t[follow_up]} "
        "WHERE patient_id = :pid", pid=pid
    )[0]


def _next_id(inj: Injector, table: str, column: str) -> int:
    return int(inj.value(f"SELECT max({column}) FROM {{t[{table}]}}") or 0) + 1


def _add_assessment(inj: Injector, pid: str, date: dt.date) -> str:
    aid = _next_id(inj, "tumour_assessments", "assessment_id")
    inj.run(
        "INSERT INTO {t[tumour_assessments]} (assessment_id, patient_id, assessment_date, "
        "criteria, overall_response, clinical_progression) "
        "VALUES (:aid, :pid, :d, 'mRECIST', 'SD', :f)", aid=aid, pid=pid, d=inj.d(date), f=False
    )
    return str(aid)


def _first_diagnosis(inj: Injector, pid: str):
    return inj.all(
        "SELECT diagnosis_id, diagnosis_date, disease, histology, pci, ki67_percent, "
        "bap1_status FROM {t[diagnoses]} WHERE patient_id = :pid "
        "ORDER BY diagnosis_date, diagnosis_id", pid=pid
    )[0]


def _copy_patient(inj: Injector, pid: str, new_id: str, *, other_centre: bool,
                  histology: str | None = None) -> None:
    """Enter patient ``pid`` again as ``new_id`` (patient row and first diagnosis)."""
    centre, sex, birth = inj.all(
        "SELECT centre_id, sex, birth_date FROM {t[patients]} WHERE patient_id = :pid", pid=pid
    )[0]
    if other_centre:
        centre = inj.value(
            "SELECT min(centre_id) FROM {t[centres]} WHERE centre_id <> :c", c=centre
        )
    inj.run(
        "INSERT INTO {t[patients]} (patient_id, centre_id, sex, birth_date) "
        "VALUES (:p, :c, :s, :b)", p=new_id, c=centre, s=sex, b=inj.d(as_date(birth))
    )
    _, ddate, disease, histo, pci, ki67, bap1 = _first_diagnosis(inj, pid)
    inj.run(
        "INSERT INTO {t[diagnoses]} (diagnosis_id, patient_id, diagnosis_date, disease, "
        "histology, pci, ki67_percent, bap1_status) VALUES (:i, :p, :d, :dis, :h, :pci, :k, :b)",
        i=_next_id(inj, "diagnoses", "diagnosis_id"), p=new_id, d=inj.d(as_date(ddate)),
        dis=disease, h=histology or histo, pci=pci, k=ki67, b=bap1,
    )


def inject_plausibility(inj: Injector, today: dt.date) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}

    def add(check, *keys):
        out.setdefault(check, set()).update(str(k) for k in keys)

    diag_ids = lambda pid: [str(r[0]) for r in inj.all(  # noqa: E731
        "SELECT diagnosis_id FROM {t[diagnoses]} WHERE patient_id = :pid", pid=pid)]
    max_diag = lambda pid: max(as_date(r[0]) for r in inj.all(  # noqa: E731
        "SELECT diagnosis_date FROM {t[diagnoses]} WHERE patient_id = :pid", pid=pid))
    # birth after diagnosis (age < 0), age > 120, age 16
    a = inj.patient()
    inj.run("UPDATE {t[patients]} SET birth_date = :b WHERE patient_id = :p",
            b=inj.d(max_diag(a) + DAY), p=a)
    add("plausibility.birth_before_diagnosis", *diag_ids(a))
    add("plausibility.age_impossible", *diag_ids(a))
    add("plausibility.age_unusual", *diag_ids(a))
    b = inj.patient()
    inj.run("UPDATE {t[patients]} SET birth_date = :b WHERE patient_id = :p",
            b=inj.d(max_diag(b) - dt.timedelta(days=round(121 * 365.25))), p=b)
    add("plausibility.age_impossible", *diag_ids(b))
    add("plausibility.age_unusual", *diag_ids(b))
    c = inj.patient("(SELECT count(*) FROM {t[diagnoses]} x WHERE x.patient_id = p.patient_id) = 1")
    inj.run("UPDATE {t[patients]} SET birth_date = :b WHERE patient_id = :p",
            b=inj.d(max_diag(c) - dt.timedelta(days=round(16.5 * 365.25))), p=c)
    add("plausibility.age_unusual", *diag_ids(c))
    # diagnosis after the first treatment line
    has_line = "EXISTS (SELECT 1 FROM {t[treatment_lines]} l WHERE l.patient_id = p.patient_id)"
    d = inj.patient(has_line)
    first_start = min(as_date(r[2]) for r in inj.lines(d))
    inj.run("UPDATE {t[diagnoses]} SET diagnosis_date = :d WHERE patient_id = :p",
            d=inj.d(first_start + 10 * DAY), p=d)
    add("plausibility.diagnosis_before_treatment", d)
    # line ending before it starts
    e = inj.patient(has_line + " AND f.vital_status = 'alive'")
    line = inj.lines(e)[0]
    inj.run("UPDATE {t[treatment_lines]} SET end_date = :d WHERE line_id = :i",
            d=inj.d(as_date(line[2]) - 5 * DAY), i=line[0])
    add("plausibility.line_start_before_end", line[0])
    # line 2 starting before line 1 ended
    two = ("(SELECT count(*) FROM {t[treatment_lines]} l WHERE l.patient_id = p.patient_id "
           "AND l.line_number = 2 AND l.start_date IS NOT NULL) = 1 AND EXISTS (SELECT 1 "
           "FROM {t[treatment_lines]} l1 WHERE l1.patient_id = p.patient_id "
           "AND l1.line_number = 1 AND l1.end_date > l1.start_date)")
    f = inj.patient(two)
    l1, l2 = inj.lines(f)[:2]
    new_start = as_date(l1[2]) + DAY
    inj.run("UPDATE {t[treatment_lines]} SET start_date = :d WHERE line_id = :i",
            d=inj.d(new_start), i=l2[0])
    add("plausibility.line_sequence", l2[0])
    # assessments before diagnosis / after last contact (alive patients)
    alive = "f.vital_status = 'alive'"
    g = inj.patient(alive)
    add("plausibility.assessment_within_follow_up",
        _add_assessment(inj, g, as_date(_first_diagnosis(inj, g)[1]) - 30 * DAY))
    h = inj.patient(alive)
    add("plausibility.assessment_within_follow_up",
        _add_assessment(inj, h, as_date(_fu(inj, h)[0]) + 5 * DAY))
    # events after death (+60 days grace); expectations follow the last contact too
    dead = "f.vital_status = 'dead' AND f.death_date IS NOT NULL"
    i = inj.patient(dead + " AND " + has_line)
    last_contact, _, death = _fu(inj, i)
    line = inj.lines(i)[-1]
    new_end = as_date(death) + 61 * DAY
    inj.run("UPDATE {t[treatment_lines]} SET end_date = :d WHERE line_id = :i",
            d=inj.d(new_end), i=line[0])
    add("plausibility.after_death.treatment_lines", line[0])
    if last_contact is not None and new_end > as_date(last_contact):
        add("plausibility.after_last_contact.treatment_lines", line[0])
    m = inj.patient(dead)
    last_contact, _, death = _fu(inj, m)
    when = as_date(death) + 90 * DAY
    aid = _add_assessment(inj, m, when)
    add("plausibility.after_death.tumour_assessments", aid)
    if last_contact is not None and when > as_date(last_contact):
        add("plausibility.assessment_within_follow_up", aid)
    n = inj.patient(dead)
    death = as_date(_fu(inj, n)[2])
    inj.run("UPDATE {t[follow_up]} SET last_contact_date = :d WHERE patient_id = :p",
            d=inj.d(death + 61 * DAY), p=n)
    add("plausibility.after_death.follow_up", n)
    # surgery after last contact (alive) / CC score without CRS
    has_surgery = "EXISTS (SELECT 1 FROM {t[surgeries]} s WHERE s.patient_id = p.patient_id)"
    j = inj.patient(alive + " AND " + has_surgery)
    sid = inj.value("SELECT min(surgery_id) FROM {t[surgeries]} WHERE patient_id = :p", p=j)
    inj.run("UPDATE {t[surgeries]} SET surgery_date = :d WHERE surgery_id = :i",
            d=inj.d(as_date(_fu(inj, j)[0]) + 10 * DAY), i=sid)
    add("plausibility.after_last_contact.surgeries", sid)
    k = inj.patient(has_surgery)
    sid = inj.value("SELECT min(surgery_id) FROM {t[surgeries]} WHERE patient_id = :p", p=k)
    inj.run("UPDATE {t[surgeries]} SET crs = :f, cc_score = 1 WHERE surgery_id = :i",
            f=False, i=sid)
    add("plausibility.cc_hipec_without_crs", sid)
    k2 = inj.patient(has_surgery)
    sid = inj.value("SELECT min(surgery_id) FROM {t[surgeries]} WHERE patient_id = :p", p=k2)
    inj.run("UPDATE {t[surgeries]} SET crs = NULL, cc_score = NULL, hipec = :t "
            "WHERE surgery_id = :i", t=True, i=sid)
    add("plausibility.cc_hipec_without_crs", sid)
    # a surgery 100 days after death (after the last contact too when that is earlier)
    k3 = inj.patient(dead + " AND " + has_surgery)
    last_contact, _, death = _fu(inj, k3)
    sid = inj.value("SELECT min(surgery_id) FROM {t[surgeries]} WHERE patient_id = :p", p=k3)
    when = as_date(death) + 100 * DAY
    inj.run("UPDATE {t[surgeries]} SET surgery_date = :d WHERE surgery_id = :i",
            d=inj.d(when), i=sid)
    add("plausibility.after_death.surgeries", sid)
    if last_contact is not None and when > as_date(last_contact):
        add("plausibility.after_last_contact.surgeries", sid)
    # an assessment in the future (after the extraction date; also after last contact)
    o = inj.patient(alive)
    aid = _add_assessment(inj, o, today + 30 * DAY)
    add("plausibility.future.tumour_assessments", aid)
    add("plausibility.assessment_within_follow_up", aid)
    # duplicates: exact across centres, probable only (other histology), exact same centre
    q = inj.patient()
    _copy_patient(inj, q, "DUPX1", other_centre=True)
    add("plausibility.duplicate_exact", q, "DUPX1")
    add("plausibility.duplicate_probable", q, "DUPX1")
    r = inj.patient()
    histo = _first_diagnosis(inj, r)[3]
    other = "biphasic" if histo != "biphasic" else "epithelioid"
    _copy_patient(inj, r, "DUPX2", other_centre=True, histology=other)
    add("plausibility.duplicate_probable", r, "DUPX2")
    s = inj.patient()
    _copy_patient(inj, s, "DUPX3", other_centre=False)
    add("plausibility.duplicate_exact", s, "DUPX3")
    return out


def inject_codes(inj: Injector) -> dict[str, set[str]]:
    """Value domains, ranges, line numbering (constraint-free on every backend)."""
    out: dict[str, set[str]] = {}

    def set_value(check, table, column, key_col, value, where="1=1"):
        pid = inj.patient(f"EXISTS (SELECT 1 FROM {{t[{table}]}} x WHERE x.patient_id = "
                          f"p.patient_id AND {where})")
        key = inj.value(f"SELECT min({key_col}) FROM {{t[{table}]}} x WHERE patient_id = :p "
                        f"AND {where}", p=pid)
        inj.run(f"UPDATE {{t[{table}]}} SET {column} = :v WHERE {key_col} = :k", v=value, k=key)
        out.setdefault(check, set()).add(str(key))

    set_value("conformance.domain.patients.sex", "patients", "sex", "patient_id", "X")
    set_value("conformance.domain.diagnoses.disease", "diagnoses", "disease", "diagnosis_id",
              "lymphoma")
    set_value("conformance.domain.diagnoses.histology", "diagnoses", "histology",
              "diagnosis_id", "mixed")
    set_value("conformance.domain.diagnoses.bap1_status", "diagnoses", "bap1_status",
              "diagnosis_id", "unknown")
    set_value("conformance.domain.surgeries.cc_score", "surgeries", "cc_score", "surgery_id", 5)
    set_value("conformance.domain.treatment_lines.ecog_at_start", "treatment_lines",
              "ecog_at_start", "line_id", 7)
    set_value("conformance.domain.treatment_lines.end_reason", "treatment_lines", "end_reason",
              "line_id", "lost")
    set_value("conformance.domain.tumour_assessments.overall_response", "tumour_assessments",
              "overall_response", "assessment_id", "XX")
    set_value("conformance.domain.tumour_assessments.criteria", "tumour_assessments",
              "criteria", "assessment_id", "WHO")
    set_value("conformance.domain.follow_up.vital_status", "follow_up", "vital_status",
              "patient_id", "gone")  # fits the VARCHAR(5) of typed databases
    set_value("conformance.range.diagnoses.pci", "diagnoses", "pci", "diagnosis_id", 45)
    set_value("conformance.range.diagnoses.pci", "diagnoses", "pci", "diagnosis_id", -1)
    set_value("conformance.range.diagnoses.ki67_percent", "diagnoses", "ki67_percent",
              "diagnosis_id", 120.5)
    # a gap (last line renumbered +1) and a patient whose only line is numbered 2
    several = ("(SELECT count(*) FROM {t[treatment_lines]} l WHERE l.patient_id = p.patient_id)"
               " >= 2")
    pid = inj.patient(several)
    last = inj.lines(pid)[-1]
    inj.run("UPDATE {t[treatment_lines]} SET line_number = :n WHERE line_id = :i",
            n=last[1] + 1, i=last[0])
    out["conformance.line_numbers"] = {pid}
    single = several.replace(">= 2", "= 1")
    pid = inj.patient(single)
    inj.run("UPDATE {t[treatment_lines]} SET line_number = 2 WHERE patient_id = :p", p=pid)
    out["conformance.line_numbers"].add(pid)
    return out


def inject_completeness(inj: Injector, cutoff: dt.date) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}

    def null(check, table, column, key_col, where="1=1", **params):
        pid = inj.patient(f"EXISTS (SELECT 1 FROM {{t[{table}]}} x WHERE x.patient_id = "
                          f"p.patient_id AND x.{column} IS NOT NULL AND {where})", **params)
        key = inj.value(f"SELECT min({key_col}) FROM {{t[{table}]}} x WHERE patient_id = :p "
                        f"AND {column} IS NOT NULL AND {where}", p=pid, **params)
        inj.run(f"UPDATE {{t[{table}]}} SET {column} = NULL WHERE {key_col} = :k", k=key)
        out.setdefault(check, set()).add(str(key))
        return pid, key

    for _ in range(2):
        null("completeness.missing.patients.sex", "patients", "sex", "patient_id")
    null("completeness.missing.patients.birth_date", "patients", "birth_date", "patient_id")
    null("completeness.missing.treatment_lines.regimen", "treatment_lines", "regimen",
         "line_id")
    null("completeness.missing.follow_up.vital_status", "follow_up", "vital_status",
         "patient_id", "x.vital_status = 'dead'")
    null("completeness.dead_death_date", "follow_up", "death_date", "patient_id",
         "x.vital_status = 'dead'")
    null("completeness.crs_cc_score", "surgeries", "cc_score", "surgery_id", "x.crs = :t",
         t=True)
    # a CRS patient losing every PCI: all its CRS records fail
    pid = inj.patient("EXISTS (SELECT 1 FROM {t[surgeries]} s WHERE s.patient_id = "
                      "p.patient_id AND s.crs = :t AND s.cc_score IS NOT NULL)", t=True)
    inj.run("UPDATE {t[diagnoses]} SET pci = NULL WHERE patient_id = :p", p=pid)
    out["completeness.crs_pci"] = {str(r[0]) for r in inj.all(
        "SELECT surgery_id FROM {t[surgeries]} WHERE patient_id = :p AND crs = :t", p=pid,
        t=True)}
    # a line ended for progression losing its progression record(s)
    pid = inj.patient("EXISTS (SELECT 1 FROM {t[treatment_lines]} l WHERE l.patient_id = "
                      "p.patient_id AND l.end_reason = 'progression' AND l.line_number = 1)")
    line = inj.lines(pid)[0]
    window_end = as_date(line[3]) + 60 * DAY
    inj.run("DELETE FROM {t[tumour_assessments]} WHERE patient_id = :p AND (overall_response "
            "= 'PD' OR clinical_progression = :t) AND assessment_date >= :a "
            "AND assessment_date <= :b", p=pid, t=True, a=inj.d(as_date(line[2])),
            b=inj.d(window_end))
    out["completeness.progression_record"] = {str(line[0])}
    # a patient without follow-up record, one without diagnosis
    pid = inj.patient("f.vital_status = 'dead'")
    inj.run("DELETE FROM {t[follow_up]} WHERE patient_id = :p", p=pid)
    out["completeness.patient_follow_up"] = {pid}
    pid = inj.patient("NOT EXISTS (SELECT 1 FROM {t[surgeries]} s WHERE s.patient_id = "
                      "p.patient_id AND s.crs = :t)", t=True)  # (else crs_pci fails too)
    inj.run("DELETE FROM {t[diagnoses]} WHERE patient_id = :p", p=pid)
    out["completeness.patient_diagnosis"] = {pid}
    # an alive patient last seen 400 days before the cut-off
    pid = inj.patient("f.vital_status = 'alive' AND f.last_contact_date < :c",
                      c=inj.d(cutoff))
    inj.run("UPDATE {t[follow_up]} SET last_contact_date = :d WHERE patient_id = :p",
            d=inj.d(cutoff - 400 * DAY), p=pid)
    out["completeness.follow_up_stale"] = {pid}
    return out
