"""``synthctl validate``: outputs, exit codes (0 / 1 / 2), --json, no identifiers in the HTML."""

from __future__ import annotations

import csv
import json

import sqlalchemy as sa
from typer.testing import CliRunner

from synthctl.cli import app
from tests.connectors.test_quality_support import copy_registry, sample_registry

runner = CliRunner()


def _ids(path) -> list[str]:
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        ids = conn.exec_driver_sql("SELECT patient_id FROM patients").scalars().all()
    engine.dispose()
    return ids


def test_clean_registry_exit_0_and_outputs(tmp_path):
    out = tmp_path / "q"
    result = runner.invoke(app, ["validate", "--registry", f"sqlite:///{sample_registry()}",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.output
    data = json.loads((out / "quality.json").read_text())
    assert data["passed"] is True and len(data["checks"]) >= 70
    html = (out / "quality.html").read_text()
    for heading in ("Conformance", "Completeness", "Plausibility", "Missingness per centre",
                    "Follow-up per centre"):
        assert heading in html
    assert "<script" not in html and "src=" not in html and "<link" not in html  # standalone
    with (out / "quality_failures.csv").open() as handle:
        assert next(csv.reader(handle)) == ["table", "key", "centre", "check_id", "values"]


def test_defects_exit_1_json_summary_and_no_identifier_in_html(tmp_path):
    path = copy_registry(sample_registry(), tmp_path / "bad.sqlite")
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE patients SET birth_date = '2030-01-01' WHERE patient_id IN "
                             "(SELECT patient_id FROM patients ORDER BY patient_id LIMIT 3)")
        conn.exec_driver_sql("UPDATE patients SET sex = NULL")
    engine.dispose()
    out = tmp_path / "q"
    result = runner.invoke(app, ["validate", "--registry", f"sqlite:///{path}", "--out",
                                 str(out), "--json"])
    assert result.exit_code == 1, result.output
    summary = json.loads(result.output)
    assert summary["passed"] is False
    failed = {c["id"]: c for c in summary["failed_checks"]}
    assert failed["plausibility.birth_before_diagnosis"]["n_failed"] >= 3
    assert failed["plausibility.future.patients"]["n_failed"] == 3
    rows = list(csv.DictReader((out / "quality_failures.csv").open()))
    keys = {r["key"] for r in rows if r["check_id"] == "plausibility.future.patients"}
    assert len(keys) == 3
    html = (out / "quality.html").read_text()
    leaked = [pid for pid in _ids(path) if pid in html]
    assert leaked == []
    assert "quality_failures.csv" in html  # the page says where the keys are


def test_warning_only_failure_exits_0(tmp_path):
    checks = tmp_path / "checks.yaml"
    checks.write_text("checks:\n  completeness.missing.diagnoses.pci: {threshold: 0}\n")
    result = runner.invoke(app, ["validate", "--registry", f"sqlite:///{sample_registry()}",
                                 "--out", str(tmp_path / "q"), "--checks", str(checks)])
    assert result.exit_code == 0, result.output
    assert "completeness.missing.diagnoses.pci" in result.output  # listed as failed


def test_bad_inputs_exit_2_without_traceback(tmp_path):
    result = runner.invoke(app, ["validate", "--registry", f"sqlite:///{tmp_path}/none.sqlite",
                                 "--out", str(tmp_path / "q")])
    assert result.exit_code == 2
    assert "none.sqlite" in result.output and "Traceback" not in result.output
    checks = tmp_path / "checks.yaml"
    checks.write_text("checks:\n  no.such.check: {threshold: 0}\n")
    result = runner.invoke(app, ["validate", "--registry", f"sqlite:///{sample_registry()}",
                                 "--out", str(tmp_path / "q"), "--checks", str(checks)])
    assert result.exit_code == 2
    assert "unknown check id 'no.such.check'" in result.output
    result = runner.invoke(app, ["validate", "--registry", f"sqlite:///{sample_registry()}",
                                 "--cutoff", "31/12/2024"])
    assert result.exit_code == 2 and "--cutoff" in result.output
    result = runner.invoke(app, ["validate", "--registry", f"sqlite:///{sample_registry()}",
                                 "--out", str(tmp_path / "q"), "--centre", "NOWHERE"])
    assert result.exit_code == 2 and "centre 'NOWHERE'" in result.output


def test_centre_option(tmp_path):
    engine = sa.create_engine(f"sqlite:///{sample_registry()}")
    with engine.connect() as conn:
        centre = conn.exec_driver_sql("SELECT max(centre_id) FROM patients").scalar()
    engine.dispose()
    out = tmp_path / "q"
    result = runner.invoke(app, ["validate", "--registry", f"sqlite:///{sample_registry()}",
                                 "--out", str(out), "--centre", centre, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "quality.json").read_text())
    assert data["centre"] == centre
    centres = {c["centre"] for check in data["checks"] for c in check["per_centre"]}
    assert centres == {centre}
