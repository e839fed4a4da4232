"""Each defect class injected into a copy of the sample registry is found, exactly (SQLite).

Expected failing keys = the clean registry's failing keys for that check (below threshold:
the sample's tolerated missingness, say) plus the keys the injector broke.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from connectors.quality import load_catalogue, validate_registry
from tests.connectors.test_quality_support import (
    NO_CAP,
    TODAY,
    Injector,
    as_date,
    baseline_report,
    copy_registry,
    file_hash,
    inject_codes,
    inject_completeness,
    inject_plausibility,
    row_counts,
    sample_registry,
)


def _keys(report, check_id):
    return sorted(f.key for f in report[check_id].failures)


@pytest.fixture(scope="module")
def baseline():
    return baseline_report()


@pytest.fixture
def writable_copy(tmp_path):
    dst = copy_registry(sample_registry(), tmp_path / "copy.sqlite")
    engine = sa.create_engine(f"sqlite:///{dst}")
    yield dst, engine
    engine.dispose()


def _assert_found(report, baseline, injected):
    for check_id, keys in injected.items():
        expected = sorted(set(_keys(baseline, check_id)) | keys)
        found = _keys(report, check_id)
        assert found == expected, check_id
        assert report[check_id].n_failed == len(expected), check_id


def test_clean_sample_registry_passes_every_check(baseline):
    failed = {r.id for r in baseline.results if r.status == "failed"}
    assert failed == set()
    assert baseline.passed
    applicable = {r.id for r in baseline.results if r.status != "not_applicable"}
    # everything runs except the derived-pool checks (study pipeline only) and text-only types
    assert {r.id for r in baseline.results} - applicable == {
        "plausibility.pool_times_nonnegative",
        "plausibility.pool_pfs_le_os",
        "conformance.types.centres",
    }


def test_plausibility_defects_are_found_exactly(writable_copy, baseline):
    path, engine = writable_copy
    injected = inject_plausibility(Injector(engine), TODAY)
    report = validate_registry(f"sqlite:///{path}", overrides=NO_CAP, today=TODAY,
                               cutoff_date=as_date(baseline.cutoff_date))
    _assert_found(report, baseline, injected)
    assert not report.passed
    assert len(injected) >= 15


def test_codes_ranges_and_line_numbers_are_found_exactly(writable_copy, baseline):
    path, engine = writable_copy
    injected = inject_codes(Injector(engine))
    report = validate_registry(f"sqlite:///{path}", overrides=NO_CAP, today=TODAY)
    _assert_found(report, baseline, injected)


def test_completeness_defects_are_found_exactly(writable_copy, baseline):
    path, engine = writable_copy
    cutoff = as_date(baseline.cutoff_date)
    injected = inject_completeness(Injector(engine), cutoff)
    report = validate_registry(f"sqlite:///{path}", overrides=NO_CAP, today=TODAY,
                               cutoff_date=cutoff)
    _assert_found(report, baseline, injected)
    per_centre = {c.centre: c.n_failed for c in report["completeness.missing.patients.sex"]
                  .per_centre}
    assert sum(per_centre.values()) == report["completeness.missing.patients.sex"].n_failed


def test_keys_orphans_and_types_are_found_exactly(writable_copy, baseline):
    path, engine = writable_copy
    inj = Injector(engine)
    # SQLite stores anything anywhere: one unparseable value per typed table
    pid = inj.patient()
    inj.run("UPDATE patients SET birth_date = '31/12/1950' WHERE patient_id = :p", p=pid)
    diag = inj.value("SELECT min(diagnosis_id) FROM diagnoses WHERE patient_id <> :p", p=pid)
    inj.run("UPDATE diagnoses SET pci = 'abc' WHERE diagnosis_id = :i", i=diag)
    surg = inj.value("SELECT min(surgery_id) FROM surgeries")
    inj.run("UPDATE surgeries SET crs = 7 WHERE surgery_id = :i", i=surg)
    line = inj.value("SELECT max(line_id) FROM treatment_lines")
    inj.run("UPDATE treatment_lines SET ecog_at_start = 1.5 WHERE line_id = :i", i=line)
    aid = inj.value("SELECT max(assessment_id) FROM tumour_assessments")
    inj.run("UPDATE tumour_assessments SET clinical_progression = 'yes' "
            "WHERE assessment_id = :i", i=aid)
    fu = inj.patient()
    inj.run("UPDATE follow_up SET last_contact_date = 'unknown' WHERE patient_id = :p", p=fu)
    # orphans (SQLite does not enforce foreign keys unless asked)
    orphan_patient = inj.patient()
    inj.run("UPDATE patients SET centre_id = 'C99' WHERE patient_id = :p", p=orphan_patient)
    new_aid = aid + 1
    inj.run("INSERT INTO tumour_assessments (assessment_id, patient_id, assessment_date) "
            "VALUES (:i, 'NOBODY', '2020-01-01')", i=new_aid)
    # a duplicated primary key: rebuild the table without its constraint first
    inj.run("CREATE TABLE sl_copy AS SELECT * FROM surgeries")
    inj.run("DROP TABLE surgeries")
    inj.run("ALTER TABLE sl_copy RENAME TO surgeries")
    dup = inj.value("SELECT max(surgery_id) FROM surgeries")
    inj.run("INSERT INTO surgeries SELECT * FROM surgeries WHERE surgery_id = :i", i=dup)
    report = validate_registry(f"sqlite:///{path}", overrides=NO_CAP, today=TODAY)
    _assert_found(report, baseline, {
        "conformance.types.patients": {pid},
        "conformance.types.diagnoses": {str(diag)},
        "conformance.types.surgeries": {str(surg)},
        "conformance.types.treatment_lines": {str(line)},
        "conformance.types.tumour_assessments": {str(aid)},
        "conformance.types.follow_up": {fu},
        "conformance.foreign_key.patients.centre_id": {orphan_patient},
        "conformance.foreign_key.tumour_assessments.patient_id": {str(new_aid)},
    })
    assert _keys(report, "conformance.unique_key.surgeries") == [str(dup), str(dup)]
    assert report["conformance.types.patients"].severity == "fatal"
    assert not report.passed


def test_missing_table_and_column_are_fatal_and_dependent_checks_not_applicable(
        writable_copy):
    path, engine = writable_copy
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE diagnoses DROP COLUMN ki67_percent")
        conn.exec_driver_sql("DROP TABLE surgeries")
    report = validate_registry(f"sqlite:///{path}", today=TODAY)
    assert _keys(report, "conformance.required_tables") == ["surgeries"]
    assert _keys(report, "conformance.required_columns") == ["diagnoses.ki67_percent"]
    assert report["conformance.required_tables"].status == "failed"
    for check_id in ("conformance.range.diagnoses.ki67_percent", "completeness.crs_cc_score",
                     "plausibility.cc_hipec_without_crs"):
        assert report[check_id].status == "not_applicable", check_id
        assert report[check_id].note
    assert report["conformance.range.diagnoses.pci"].status == "passed"
    assert not report.passed


def test_failures_are_capped_and_the_cap_reported(writable_copy):
    path, engine = writable_copy
    with engine.begin() as conn:
        n = conn.exec_driver_sql("UPDATE patients SET sex = 'U'").rowcount
    report = validate_registry(f"sqlite:///{path}", overrides={"failure_cap": 5}, today=TODAY)
    result = report["conformance.domain.patients.sex"]
    assert (result.n_failed, len(result.failures), result.capped) == (n, 5, True)
    assert result.to_dict()["failure_cap"] == 5
    assert result.share_failed == 1.0


def test_registry_is_untouched(baseline):
    path = sample_registry()
    before_hash, before_rows = file_hash(path), row_counts(sa.create_engine(f"sqlite:///{path}"))
    validate_registry(f"sqlite:///{path}", today=TODAY)
    assert file_hash(path) == before_hash
    assert row_counts(sa.create_engine(f"sqlite:///{path}")) == before_rows


def test_catalogue_has_every_kind_implemented():
    from connectors.quality.validate import BUILDERS, POOL_KINDS

    kinds = {spec.kind for spec in load_catalogue().checks}
    assert kinds - set(BUILDERS) - set(POOL_KINDS) == set()
