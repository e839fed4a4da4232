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
