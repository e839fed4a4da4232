"""The catalogue is data: schema of checks.yaml, per-registry overrides, clear errors."""

from __future__ import annotations

import json

import pytest

from connectors.quality import (
    QualityConfigError,
    load_catalogue,
    validate_registry,
    write_failures_csv,
    write_quality_json,
)
from connectors.quality.catalogue import CATEGORIES, SEVERITIES
from tests.connectors.test_quality_support import TODAY, baseline_report, sample_registry


def test_shipped_catalogue_is_well_formed():
    cat = load_catalogue()
    assert len(cat.checks) >= 70
    assert {c.category for c in cat.checks} == set(CATEGORIES)
    assert {c.severity for c in cat.checks} == set(SEVERITIES)
    assert all(0 <= c.threshold <= 1 and c.description for c in cat.checks)
    assert cat.failure_cap == 100


def test_overrides_change_threshold_severity_and_disable(tmp_path):
    url = f"sqlite:///{sample_registry()}"
    base = baseline_report()
    pci = base["completeness.missing.diagnoses.pci"]
    assert pci.n_failed > 0 and pci.status == "passed"
    override = tmp_path / "checks.yaml"
    override.write_text(
        "checks:\n"
        "  completeness.missing.diagnoses.pci: {threshold: 0, severity: error}\n"
        "  plausibility.age_unusual: {enabled: false}\n"
        "failure_cap: 3\n"
    )
    report = validate_registry(url, overrides=override, today=TODAY)
    changed = report["completeness.missing.diagnoses.pci"]
    assert (changed.status, changed.severity, changed.threshold) == ("failed", "error", 0.0)
    assert len(changed.failures) == min(3, changed.n_failed) and changed.capped
    assert not report.passed  # an error check failed
    with pytest.raises(KeyError):
        report["plausibility.age_unusual"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"checks": {"no.such.check": {"threshold": 0.1}}}, "unknown check id 'no.such.check'"),
        ({"checks": {"plausibility.age_unusual": {"threshold": 1.5}}}, "threshold must be in"),
        ({"checks": {"plausibility.age_unusual": {"severity": "minor"}}}, "severity must be"),
        ({"checks": {"plausibility.age_unusual": {"colour": "red"}}}, "settings must be"),
        ({"thresholds": {}}, "expected a mapping with keys"),
        ({"failure_cap": -1}, "failure_cap must be"),
    ],
)
def test_bad_overrides_are_clear_errors(overrides, message):
    with pytest.raises(QualityConfigError, match=message):
        load_catalogue().with_overrides(overrides)


def test_override_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "mine.yaml"
    bad.write_text("checks: [unclosed\n")
    with pytest.raises(QualityConfigError, match=r"mine\.yaml"):
        load_catalogue().with_overrides(bad)


def test_json_and_failures_csv(tmp_path):
    report = validate_registry(f"sqlite:///{sample_registry()}", today=TODAY,
                               overrides={"checks": {
                                   "completeness.missing.diagnoses.pci": {"threshold": 0}}})
    data = json.loads(write_quality_json(report, tmp_path / "q.json").read_text())
    assert [c["id"] for c in data["checks"]] == [r.id for r in report.results]
    entry = next(c for c in data["checks"] if c["id"] == "completeness.missing.diagnoses.pci")
    assert entry["status"] == "failed" and entry["passed"] is False
    assert sum(c["n_failed"] for c in entry["per_centre"]) == entry["n_failed"]
    assert "P0" not in json.dumps(data)  # counts only: no patient key in quality.json
    lines = write_failures_csv(report, tmp_path / "f.csv").read_text().splitlines()
    assert lines[0] == "table,key,centre,check_id,values"
    assert len(lines) - 1 == sum(len(r.failures) for r in report.results) > 0


def test_centre_filter_restricts_rows():
    url = f"sqlite:///{sample_registry()}"
    full = baseline_report()
    centre = full["conformance.domain.patients.sex"].per_centre[0]
    one = validate_registry(url, centre=centre.centre, today=TODAY)
    result = one["conformance.domain.patients.sex"]
    assert result.n_checked == centre.n_checked
    assert [c.centre for c in result.per_centre] == [centre.centre]
