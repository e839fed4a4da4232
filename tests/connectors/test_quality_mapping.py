"""A renamed registry validates through a mapping file, with the same results."""

from __future__ import annotations

from connectors.quality import validate_registry
from connectors.schema import TableMapping
from sample_data.writer import write_registry_sqlite
from tests.connectors.test_quality_support import (
    TODAY,
    baseline_report,
    load_tables,
    sample_registry,
)

MAPPING_YAML = """\
patients:
  table: pat_registry
  columns: {patient_id: pid, birth_date: dob, centre_id: site}
treatment_lines:
  table: lignes
  columns: {line_number: num_ligne, start_date: debut, end_date: fin}
follow_up:
  columns: {last_contact_date: dernier_contact}
"""
MAPPING = {
    "patients": TableMapping("pat_registry", {"patient_id": "pid", "birth_date": "dob",
                                              "centre_id": "site"}),
    "treatment_lines": TableMapping("lignes", {"line_number": "num_ligne", "start_date": "debut",
                                               "end_date": "fin"}),
    "follow_up": TableMapping("follow_up", {"last_contact_date": "dernier_contact"}),
}


def test_mapped_registry_gives_the_same_report(tmp_path):
    renamed = tmp_path / "renamed.sqlite"
    write_registry_sqlite(load_tables(sample_registry()), renamed, mapping=MAPPING)
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(MAPPING_YAML)
    plain = baseline_report()
    mapped = validate_registry(f"sqlite:///{renamed}", mapping=mapping_file, today=TODAY)
    assert [(r.id, r.status, r.n_checked, r.n_failed) for r in mapped.results] == [
        (r.id, r.status, r.n_checked, r.n_failed) for r in plain.results
    ]
    unmapped = validate_registry(f"sqlite:///{renamed}", today=TODAY)
    missing = sorted(f.key for f in unmapped["conformance.required_tables"].failures)
    assert missing == ["patients", "treatment_lines"]
    assert not unmapped.passed


def _digest(path):
    import hashlib

    files = [path] if path.is_file() else sorted(path.iterdir())
    return hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in files)).hexdigest()


def test_exported_registry_validates_on_recoded_values():
    """The French-style export, through its mapping, gives the canonical report (plus a passed
    conformance check of its codes); the export is not modified."""
    from connectors.quality.validate import MAPPING_CHECK_ID
    from sample_data.paths import EXPORT_MAPPING, EXPORT_PARQUET, EXPORT_SQLITE
    from tests.connectors.test_quality_support import NO_CAP

    plain = {r.id: (r.status, r.n_checked, r.n_failed) for r in baseline_report().results}
    for url, target in ((f"sqlite:///{EXPORT_SQLITE}", EXPORT_SQLITE),
                        (f"parquet:///{EXPORT_PARQUET}", EXPORT_PARQUET)):
        before = _digest(target)
        report = validate_registry(url, mapping=EXPORT_MAPPING, overrides=NO_CAP, today=TODAY)
        got = {r.id: (r.status, r.n_checked, r.n_failed) for r in report.results}
        assert got.pop(MAPPING_CHECK_ID)[0] == "passed"
        # SQLite: identical; DuckDB (typed) checks types on the reflected types instead of
        # per value, so conformance.types differ in n_checked only (never in failures)
        diff = {k for k in plain if plain[k] != got.get(k)}
        if target == EXPORT_SQLITE:
            assert diff == set(), diff
        assert {k for k in diff if not k.startswith("conformance.types.")} == set()
        assert all(got[k][2] == plain[k][2] == 0 for k in diff)
        assert _digest(target) == before


def test_unmapped_codes_are_a_failed_conformance_check(tmp_path):
    from typer.testing import CliRunner

    from sample_data.paths import EXPORT_MAPPING, EXPORT_PARQUET
    from synthctl.cli import app

    bad = tmp_path / "mapping.yaml"
    bad.write_text(EXPORT_MAPPING.read_text().replace("homme: M, ", "").replace(
        "CC-3: 3", "CC-3: 3, CC-4: 3").replace("{RC: CR, ", "{"))
    out = tmp_path / "q"
    result = CliRunner().invoke(app, ["validate", "--registry", f"parquet:///{EXPORT_PARQUET}",
                                      "--mapping", str(bad), "--out", str(out), "--json"])
    assert result.exit_code == 1, result.output
    import json

    checks = {c["id"]: c for c in json.loads((out / "quality.json").read_text())["checks"]}
    problems = checks["conformance.mapping_codes"]["metrics"]["problems"]
    assert [(p["column"], [c["code"] for c in p["codes"]]) for p in problems] == [
        ("sex", ["homme"]), ("overall_response", ["rc"])]
    assert all(p["n_rows"] > 0 and p["where"].startswith("mapping.yaml:") for p in problems)
    text = (out / "quality.json").read_text() + result.output
    assert "P0000001" not in text  # counts only, no identifiers
