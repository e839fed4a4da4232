"""Pool checks for the study runner: fatal stops, error excludes (reason = check id), warnings."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from connectors.quality import load_catalogue, run_pool_checks
from tests.connectors.test_quality_support import (
    TODAY,
    Injector,
    copy_registry,
    inject_plausibility,
    sample_registry,
)

_TABLE_KEY = {"patients": "patient_id", "diagnoses": "diagnosis_id", "surgeries": "surgery_id",
              "treatment_lines": "line_id", "tumour_assessments": "assessment_id",
              "follow_up": "patient_id"}


@pytest.fixture(scope="module")
def defective(tmp_path_factory):
    path = copy_registry(sample_registry(), tmp_path_factory.mktemp("pool") / "p.sqlite")
    engine = sa.create_engine(f"sqlite:///{path}")
    injected = inject_plausibility(Injector(engine), TODAY)
    # patients behind each injected key
    catalogue = load_catalogue()
    by_patient: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for check_id, keys in injected.items():
            table = catalogue[check_id].table
            key_col = _TABLE_KEY[table]
            stmt = sa.text(f"SELECT patient_id FROM {table} WHERE {key_col} IN :keys")
            stmt = stmt.bindparams(sa.bindparam("keys", expanding=True))
            rows = conn.execute(stmt, {"keys": sorted(keys)}).scalars().all()
            for pid in rows:
                by_patient.setdefault(pid, []).append(check_id)
        all_ids = conn.execute(sa.text("SELECT patient_id FROM patients")).scalars().all()
    engine.dispose()
    return path, injected, by_patient, sorted(all_ids)


def test_clean_pool_has_no_findings():
    engine = sa.create_engine(f"sqlite:///{sample_registry()}")
    with engine.connect() as conn:
        ids = conn.exec_driver_sql("SELECT patient_id FROM patients").scalars().all()
    engine.dispose()
    outcome = run_pool_checks(f"sqlite:///{sample_registry()}", ids, today=TODAY)
    assert not outcome.stop and outcome.excluded == {}
    assert all(r.status != "failed" for r in outcome.results)
    assert {r.id for r in outcome.results} == {c.id for c in load_catalogue().checks if c.pool}


def test_error_checks_exclude_exactly_the_defective_pool_patients(defective):
    path, _, by_patient, all_ids = defective
    catalogue = load_catalogue()
    order = [c.id for c in catalogue.checks]
    outcome = run_pool_checks(f"sqlite:///{path}", all_ids, today=TODAY)
    expected: dict[str, set[str]] = {}
    for pid, checks in by_patient.items():
        errors = [c for c in checks if catalogue[c].severity == "error"]
        if errors:
            expected.setdefault(min(errors, key=order.index), set()).add(pid)
    assert {k: set(v) for k, v in outcome.excluded.items()} == expected
    assert not outcome.stop
    warned = {r.id for r in outcome.warnings}
    assert warned == {"plausibility.age_unusual", "plausibility.duplicate_probable"}
    assert "P0" not in str(outcome.to_dict())  # counts only for the manifest


def test_pool_restriction_only_reports_pool_patients(defective):
    path, _, by_patient, all_ids = defective
    clean = [p for p in all_ids if p not in by_patient][:20]
    outcome = run_pool_checks(f"sqlite:///{path}", pd.DataFrame({"patient_id": clean}),
                              today=TODAY)
    assert outcome.excluded == {} and not outcome.warnings


def test_derived_pool_times(defective):
    path, _, by_patient, all_ids = defective
    clean = [p for p in all_ids if p not in by_patient][:4]
    frame = pd.DataFrame({"patient_id": clean, "pfs_days": [10.0, -1.0, 50.0, 30.0],
                          "os_days": [20.0, 5.0, 40.0, None]})
    outcome = run_pool_checks(f"sqlite:///{path}", frame, today=TODAY)
    assert outcome.excluded == {"plausibility.pool_times_nonnegative": (clean[1],),
                                "plausibility.pool_pfs_le_os": (clean[2],)}
    assert next(r for r in outcome.results if r.id == "plausibility.pool_pfs_le_os").n_checked == 3


def test_fatal_check_stops_the_run(tmp_path):
    path = copy_registry(sample_registry(), tmp_path / "f.sqlite")
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE patients SET birth_date = 'yesterday' "
                             "WHERE patient_id = (SELECT min(patient_id) FROM patients)")
        pid = conn.exec_driver_sql("SELECT min(patient_id) FROM patients").scalar()
    engine.dispose()
    outcome = run_pool_checks(f"sqlite:///{path}", [pid], today=TODAY)
    assert outcome.stop
    assert [r.id for r in outcome.fatal] == ["conformance.types.patients"]
    outcome = run_pool_checks(f"sqlite:///{path}", ["P_NOT_THERE"], today=TODAY)
    assert not outcome.stop  # the defect is outside the pool


def test_accepts_a_registry_connector(defective):
    from connectors.registry import RegistryConnector

    path, _, by_patient, _ = defective
    ids = sorted(by_patient)
    with RegistryConnector(f"sqlite:///{path}") as conn:
        from_connector = run_pool_checks(conn, ids, today=TODAY)
        assert conn.dialect == "sqlite"  # the connector stays open: it is the runner's
    from_url = run_pool_checks(f"sqlite:///{path}", ids, today=TODAY)
    assert from_connector.excluded == from_url.excluded != {}
