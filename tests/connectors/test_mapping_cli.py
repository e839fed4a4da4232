"""Through the CLI: the exported sample extracts; a mapping that cannot translate the registry,
and hostile YAML (alias bombs, deep nesting, huge files), end in exit 2 with a short message
naming the file and line, before any output is written."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from connectors.yamlfile import MAX_BYTES, MAX_DEPTH
from sample_data.paths import EXPORT_MAPPING, EXPORT_PARQUET, TRIAL_ADSL, TRIAL_ADTTE
from synthctl.cli import app

cli = CliRunner()
MAX_MESSAGE = 2_000  # characters: one paragraph, never a dump

SPEC = """\
study: {{name: export, seed: 1}}
trial: {{adsl: {adsl}, adtte: {adtte}, paramcd: PFS}}
registry:
  url: "parquet:///{folder}"
  mapping: {mapping}
eligibility: [{criteria}]
covariates: [{covariates}]
"""


def _spec(tmp_path: Path, mapping: Path = EXPORT_MAPPING, *, criteria="\"age_at_index >= 18\"",
          covariates="age_at_index, sex, ecog_at_index, histology") -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(adsl=TRIAL_ADSL, adtte=TRIAL_ADTTE, folder=EXPORT_PARQUET,
                                mapping=mapping, criteria=criteria, covariates=covariates))
    return path


def _extract(tmp_path: Path, spec: Path):
    out = tmp_path / "out"
    result = cli.invoke(app, ["extract", str(spec), "--out", str(out)])
    return result, out


def _mapping_without(tmp_path: Path, old: str, new: str) -> Path:
    text = EXPORT_MAPPING.read_text()
    assert old in text
    path = tmp_path / "mapping.yaml"
    path.write_text(text.replace(old, new))
    return path


def _line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_export_extracts_through_its_mapping(tmp_path):
    result, out = _extract(tmp_path, _spec(tmp_path))
    assert result.exit_code == 0, result.output
    assert (out / "attrition.csv").is_file()


def test_unmapped_code_exit_2_names_file_line_column_code_and_count(tmp_path):
    mapping = _mapping_without(tmp_path, "homme: M, ", "")
    result, out = _extract(tmp_path, _spec(tmp_path, mapping))
    n_homme = int((pd.read_parquet(EXPORT_PARQUET / "v_patients.parquet")["sexe"] == "homme"
                   ).sum())
    assert result.exit_code == 2
    line = _line(mapping, "sex: {column: sexe")
    assert (f"mapping.yaml:{line}: sex (v_patients.sexe): {n_homme:,} rows with unmapped "
            f"codes: 'homme' ({n_homme:,} rows)") in result.output
    assert len(result.output) < MAX_MESSAGE and not out.exists()


def test_bad_cast_exit_2(tmp_path):
    mapping = _mapping_without(tmp_path, 'date_naissance, type: date, format: "%d/%m/%Y"',
                               'date_naissance, type: date, format: "%m/%d/%Y"')
    result, out = _extract(tmp_path, _spec(tmp_path, mapping))
    assert result.exit_code == 2
    line = _line(mapping, "birth_date:")
    assert re.search(rf"mapping.yaml:{line}: birth_date \(v_patients.date_naissance\): "
                     r"[\d,]+ rows that do not cast to a date %m/%d/%Y", result.output)
    assert not out.exists()


def test_absent_column_used_by_a_covariate_exit_2(tmp_path):
    mapping = _mapping_without(tmp_path, "pci: {column: score_pci, type: integer}",
                               "pci: {absent: true}")
    result, _ = _extract(tmp_path, _spec(tmp_path, mapping, covariates="age_at_index, pci"))
    assert result.exit_code == 2
    line = _line(mapping, "pci: {absent")
    assert (f"covariate pci cannot be derived: it needs diagnoses.pci, which the mapping "
            f"declares absent (mapping.yaml:{line})") in result.output
    result, _ = _extract(tmp_path, _spec(tmp_path, mapping, criteria="\"pci < 20\""))
    assert result.exit_code == 2 and "reads pci, which cannot be derived" in result.output


def test_mapping_typo_exit_2(tmp_path):
    mapping = _mapping_without(tmp_path, "      sex: {column: sexe", "      sexe: {column: sexe")
    result, _ = _extract(tmp_path, _spec(tmp_path, mapping))
    assert result.exit_code == 2
    assert f"mapping.yaml:{_line(mapping, 'sexe: {')}: tables.patients.columns.sexe: unknown " \
           "column 'sexe'" in result.output


# -- hostile YAML ------------------------------------------------------------------------------

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}]\n" for i in range(9))


def _bombs() -> dict[str, tuple[str, str]]:
    return {
        "alias": (ALIAS_BOMB, "anchor or alias"),
        "alias_in_value": ("study: {name: &n x, seed: 1}\ncovariates: [*n]\n", "anchor or alias"),
        "deep": ("x: " + "[" * 5000 + "]" * 5000 + "\n", f"nested more than {MAX_DEPTH}"),
        "huge": ("# " + "x" * (MAX_BYTES + 10) + "\n", "bytes allowed"),
    }


@pytest.mark.parametrize("kind", list(_bombs()))
def test_yaml_bombs_in_a_spec_exit_2_with_a_short_message(tmp_path, kind):
    text, fragment = _bombs()[kind]
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    result, out = _extract(tmp_path, spec)
    assert result.exit_code == 2, result.output[:500]
    assert fragment in result.output and "spec.yaml" in result.output
    assert len(result.output) < MAX_MESSAGE and not out.exists()


@pytest.mark.parametrize("kind", list(_bombs()))
def test_yaml_bombs_in_a_mapping_exit_2_with_a_short_message(tmp_path, kind):
    text, fragment = _bombs()[kind]
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(text)
    result, out = _extract(tmp_path, _spec(tmp_path, mapping))
    assert result.exit_code == 2, result.output[:500]
    assert fragment in result.output and "mapping.yaml" in result.output
    assert len(result.output) < MAX_MESSAGE and not out.exists()


def test_long_values_are_not_echoed(tmp_path):
    """A 499-byte mapping used to produce a 44 MB message; long keys are cut now too."""
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("version: 2\ntables:\n  " + "p" * 400 + ": {table: x}\n")
    result, _ = _extract(tmp_path, _spec(tmp_path, mapping))
    assert result.exit_code == 2 and "unknown table" in result.output
    assert len(result.output) < MAX_MESSAGE


def test_declared_covariate_in_eligibility_and_manifest(tmp_path):
    import json

    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(EXPORT_MAPPING.read_text() + """\
covariates:
  grade_bap1: {table: diagnoses, column: bap1, type: integer, values: {perte: 2, conservee: 1},
               description: BAP1 loss as a grade}
""")
    spec = _spec(tmp_path, mapping, criteria="\"age_at_index >= 18\", \"grade_bap1 == 2\"")
    result, out = _extract(tmp_path, spec)
    assert result.exit_code == 0, result.output
    attrition = pd.read_csv(out / "attrition.csv")
    assert "grade_bap1 == 2" in set(attrition["criterion"])
    registry = json.loads((out / "manifest.json").read_text())["inputs"]["registry"]
    assert registry["data_dictionary"] == [{
        "name": "grade_bap1", "table": "diagnoses", "source_column": "bap1", "type": "integer",
        "measured": "at diagnosis (the patient's earliest diagnosis record)",
        "description": "BAP1 loss as a grade"}]
    assert registry["recoding"] == []
