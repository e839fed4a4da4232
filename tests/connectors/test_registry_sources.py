"""Registry URLs of the spec: DuckDB files and export folders resolve like SQLite files."""

from __future__ import annotations

import shutil

import pytest

from sample_data.paths import EXPORT_MAPPING, EXPORT_PARQUET, TRIAL_ADSL, TRIAL_ADTTE
from synthctl.errors import SpecError
from synthctl.specfile import load_spec

SPEC = f"""\
study: {{name: s, seed: 1}}
trial: {{adsl: {TRIAL_ADSL}, adtte: {TRIAL_ADTTE}}}
registry: {{url: "{{url}}", mapping: {EXPORT_MAPPING}}}
covariates: [age_at_index]
"""


def _load(tmp_path, url):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.replace("{url}", url))
    return load_spec(path).spec.registry.url


def test_relative_export_folder_is_relative_to_the_spec(tmp_path):
    shutil.copytree(EXPORT_PARQUET, tmp_path / "exports")
    assert _load(tmp_path, "parquet:///exports") == f"parquet:///{tmp_path / 'exports'}"
    assert _load(tmp_path, f"parquet:///{EXPORT_PARQUET}") == f"parquet:///{EXPORT_PARQUET}"


@pytest.mark.parametrize(("url", "fragment"), [
    ("parquet:///nowhere", "export folder not found"),
    ("csv:///nowhere", "export folder not found"),
    ("duckdb:///nowhere.duckdb", "DuckDB registry file not found"),
    ("sqlite:///nowhere.sqlite", "SQLite registry file not found"),
])
def test_missing_files_and_folders_are_spec_errors(tmp_path, url, fragment):
    with pytest.raises(SpecError, match=fragment):
        _load(tmp_path, url)
