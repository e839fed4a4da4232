"""Mapping v2 on the tiny registry: codes, casts, scale, absent columns, rules, covariates.

Each recoding is checked against the registry in our own shape: the same pool must come out
of a registry that stores the facts differently, and each way a value can fail to translate
is an error naming the file, the YAML line, the column and the offending codes with counts.
"""

from __future__ import annotations

import shutil
import sqlite3

import pandas as pd
import pytest

from connectors.errors import CriterionError, MappingError, RegistrySchemaError
from connectors.mapping import load_mapping
from connectors.registry import IndexRule, RegistryConnector

CRITERIA = ["age_at_index >= 18", "ecog_at_index <= 1 or ecog_at_index == None",
            "not prior_immunotherapy"]


def _copy(tiny_sqlite, tmp_path, *statements):
    path = tmp_path / "r.sqlite"
    shutil.copy(tiny_sqlite.removeprefix("sqlite:///"), path)
    with sqlite3.connect(path) as con:
        for s in statements:
            con.execute(s)
    return f"sqlite:///{path}"


def _mapping(tmp_path, text):
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    return path


def _pool(url, mapping=None, criteria=CRITERIA):
    with RegistryConnector(url, mapping=mapping) as conn:
        return conn.candidate_pool(IndexRule(), eligibility=criteria, include_outcomes=True)


@pytest.fixture(scope="module")
def reference(tiny_sqlite):
    return _pool(tiny_sqlite)


def test_codes_casts_and_units_give_the_same_pool(tiny_sqlite, tmp_path, reference):
    url = _copy(
        tiny_sqlite, tmp_path,
        "UPDATE patients SET sex = CASE sex WHEN 'M' THEN ' Homme' WHEN 'F' THEN 'femme' END",
        "UPDATE patients SET birth_date = substr(birth_date, 9, 2) || '/' || "
        "substr(birth_date, 6, 2) || '/' || substr(birth_date, 1, 4)",
        "UPDATE surgeries SET crs = CASE crs WHEN 1 THEN 'oui' WHEN 0 THEN 'non' END",
        "UPDATE treatment_lines SET ecog_at_start = ecog_at_start * 1.0",
        "UPDATE diagnoses SET ki67_percent = ki67_percent / 10",
    )
    mapping = _mapping(tmp_path, """\
version: 2
tables:
  patients:
    columns:
      sex: {column: sex, values: {homme: M, FEMME: F}}
      birth_date: {column: birth_date, type: date, format: "%d/%m/%Y"}
  surgeries:
    columns:
      crs: {column: crs, type: boolean}
  treatment_lines:
    columns:
      ecog_at_start: {column: ecog_at_start, type: integer}
  diagnoses:
    columns:
      ki67_percent: {column: ki67_percent, type: number, scale: 10}
""")
    got = _pool(url, mapping)
    pd.testing.assert_frame_equal(got.frame, reference.frame, check_exact=True)
    pd.testing.assert_frame_equal(got.attrition.table, reference.attrition.table)


def test_text_keys_work_everywhere(tiny_sqlite, tmp_path, reference):
    """Record keys as text ('L0000102'): no crash; the keys come back as text."""
    url = _copy(tiny_sqlite, tmp_path,
                "CREATE TABLE tl AS SELECT 'L' || printf('%07d', line_id) AS line_id, patient_id, "
                "line_number, regimen, drug_classes, start_date, end_date, end_reason, "
                "ecog_at_start FROM treatment_lines", "DROP TABLE treatment_lines",
                "ALTER TABLE tl RENAME TO treatment_lines")
    mapping = _mapping(tmp_path, "version: 2\ntables:\n  treatment_lines:\n    columns:\n"
                                 "      line_id: {column: line_id, type: text}\n")
    with RegistryConnector(url, mapping=mapping) as conn:
        got = conn.candidate_pool(IndexRule(), eligibility=CRITERIA, include_outcomes=True)
        every = conn.candidate_pool(IndexRule(selection="all"), include_outcomes=True)
        outcomes = conn.outcomes(every.frame[["patient_id", "line_id", "index_date"]])
    assert got.frame["line_id"].tolist() == [
        f"L{v:07d}" for v in reference.frame["line_id"]]
    rest = [c for c in reference.frame.columns if c != "line_id"]
    pd.testing.assert_frame_equal(got.frame[rest], reference.frame[rest], check_exact=True)
    assert outcomes["line_id"].str.startswith("L").all() and len(outcomes) == len(every.frame)


def test_immunotherapy_rule_instead_of_drug_classes(tiny_sqlite, tmp_path, reference):
    with sqlite3.connect(tiny_sqlite.removeprefix("sqlite:///")) as con:
        io = [r[0] for r in con.execute(
            "SELECT DISTINCT regimen FROM treatment_lines WHERE drug_classes LIKE "
            "'%immune_checkpoint_inhibitor%'")]
    assert io
    url = _copy(tiny_sqlite, tmp_path, "UPDATE treatment_lines SET drug_classes = 'x'")
    assert len(_pool(url).frame) != len(reference.frame)  # the flag really matters here
    listed = ", ".join(repr(r) for r in io)
    mapping = _mapping(tmp_path, f"""\
version: 2
tables:
  treatment_lines:
    columns:
      drug_classes: {{absent: true}}
      immunotherapy: {{rule: "regimen in [{listed}]"}}
""")
    pd.testing.assert_frame_equal(_pool(url, mapping).frame, reference.frame, check_exact=True)


def test_unmapped_codes_are_an_error_with_counts(tiny_sqlite, tmp_path):
    url = _copy(tiny_sqlite, tmp_path,
                "UPDATE patients SET sex = CASE sex WHEN 'M' THEN 'homme' ELSE 'femme' END "
                "WHERE sex IS NOT NULL", "UPDATE patients SET sex = 'X' WHERE patient_id = 'P01'")
    mapping = _mapping(tmp_path, "version: 2\ntables:\n  patients:\n    columns:\n"
                                 "      sex: {column: sex, values: {femme: F}}\n")
    with pytest.raises(MappingError) as err:
        _pool(url, mapping)
    msg = str(err.value)
    assert ("mapping.yaml:5: sex (patients.sex): 5 rows with unmapped codes: 'homme' (4 rows), "
            "'x' (1 rows)") in msg


def test_unmapped_missing_reads_null_and_reports(tiny_sqlite, tmp_path, reference):
    url = _copy(tiny_sqlite, tmp_path, "UPDATE patients SET sex = 'homme' WHERE sex = 'M'")
    mapping = _mapping(tmp_path, "version: 2\nunmapped: missing\ntables:\n  patients:\n"
                                 "    columns:\n      sex: {column: sex, values: {F: F}}\n")
    got = _pool(url, mapping)
    want = reference.frame["sex"].where(reference.frame["sex"] != "M", None)
    assert got.frame["sex"].tolist() == want.tolist()
    (problem,) = got.recoding
    assert (problem.column, problem.n_rows, problem.codes) == ("sex", 4, (("homme", 4),))
    assert problem.action == "missing" and "unmapped code" in problem.message()


def test_bad_cast_is_an_error_naming_the_values(tiny_sqlite, tmp_path):
    url = _copy(tiny_sqlite, tmp_path,
                "UPDATE diagnoses SET pci = 'douze' WHERE diagnosis_id = 1",
                "UPDATE diagnoses SET pci = 2.5 WHERE diagnosis_id = 2",
                "UPDATE patients SET birth_date = '1960-13-45' WHERE patient_id = 'P01'")
    mapping = _mapping(tmp_path, """\
version: 2
tables:
  diagnoses:
    columns:
      pci: {column: pci, type: integer}
  patients:
    columns:
      birth_date: {column: birth_date, type: date}
""")
    with pytest.raises(MappingError) as err:
        _pool(url, mapping)
    msg = str(err.value)
    assert ("mapping.yaml:5: pci (diagnoses.pci): 2 rows that do not cast to an integer: "
            "'2.5' (1 rows), 'douze' (1 rows)") in msg
    # dates are quasi-identifiers: counted, not shown
    assert ("mapping.yaml:8: birth_date (patients.birth_date): 1 rows that do not cast to an "
            "ISO date YYYY-MM-DD (values not shown") in msg
    assert "1960-13-45" not in msg


def test_unmapped_missing_for_a_bad_cast_reads_null(tiny_sqlite, tmp_path, reference):
    url = _copy(tiny_sqlite, tmp_path, "UPDATE diagnoses SET pci = 'douze' WHERE pci = 12")
    mapping = _mapping(tmp_path, "version: 2\ntables:\n  diagnoses:\n    columns:\n"
                                 "      pci: {column: pci, type: integer, unmapped: missing}\n")
    got = _pool(url, mapping)
    want = reference.frame["pci"].where(reference.frame["pci"] != 12)
    pd.testing.assert_series_equal(got.frame["pci"], want)


def test_absent_column_makes_only_its_features_unavailable(tiny_sqlite, tmp_path, reference):
    url = _copy(tiny_sqlite, tmp_path, "ALTER TABLE diagnoses DROP COLUMN ki67_percent",
                "ALTER TABLE centres DROP COLUMN region")
    with RegistryConnector(url) as conn, pytest.raises(RegistrySchemaError, match="ki67"):
        conn.check_schema()
    mapping = _mapping(tmp_path, """\
version: 2
tables:
  diagnoses:
    columns: {ki67_percent: {absent: true}}
  centres:
    columns: {region: {absent: true}}
""")
    got = _pool(url, mapping)
    assert got.frame["ki67"].isna().all()
    others = [c for c in reference.frame.columns if c != "ki67"]
    pd.testing.assert_frame_equal(got.frame[others], reference.frame[others], check_exact=True)
    with pytest.raises(CriterionError) as err:
        _pool(url, mapping, ["ki67 < 20"])
    assert "needs diagnoses.ki67_percent" in str(err.value) and "mapping.yaml:4" in str(
        err.value)


def test_a_rule_can_replace_a_boolean_column(tiny_sqlite, tmp_path, reference):
    url = _copy(tiny_sqlite, tmp_path, "ALTER TABLE surgeries ADD COLUMN acte TEXT",
                "UPDATE surgeries SET acte = CASE WHEN crs = 1 THEN 'CRS' ELSE 'biopsie' END",
                "ALTER TABLE surgeries DROP COLUMN crs")
    mapping = _mapping(tmp_path, "version: 2\ntables:\n  surgeries:\n    columns:\n"
                                 "      crs: {rule: \"cc_score >= 0\"}\n")
    with sqlite3.connect(url.removeprefix("sqlite:///")) as con:
        same = con.execute("SELECT count(*) FROM surgeries WHERE (acte = 'CRS') != "
                           "(cc_score IS NOT NULL)").fetchone()[0]
    assert same == 0  # in the tiny registry, a CC score is recorded exactly for CRS
    got = _pool(url, mapping)
    pd.testing.assert_frame_equal(got.frame, reference.frame, check_exact=True)


def test_declared_covariates_are_columns_and_criteria(tiny_sqlite, tmp_path, reference):
    url = _copy(tiny_sqlite, tmp_path, "ALTER TABLE diagnoses ADD COLUMN grade TEXT",
                "UPDATE diagnoses SET grade = CASE WHEN pci >= 20 THEN 'G3' ELSE 'g1' END "
                "WHERE pci IS NOT NULL", "ALTER TABLE treatment_lines ADD COLUMN ps REAL",
                "UPDATE treatment_lines SET ps = ecog_at_start * 10")
    mapping = _mapping(tmp_path, """\
version: 2
covariates:
  grade: {table: diagnoses, column: grade, type: integer, values: {g1: 1, g3: 3},
          description: tumour grade}
  karnofsky_like: {table: treatment_lines, column: ps, type: number}
""")
    got = _pool(url, mapping, [*CRITERIA, "grade == 1 or grade == None"])
    ref = reference.frame
    keep = ref["pci"].isna() | (ref["pci"] < 20)
    want = ref[keep].reset_index(drop=True)
    pd.testing.assert_frame_equal(got.frame[list(ref.columns)], want, check_exact=True)
    assert got.frame["grade"].dtype == "Int64"
    assert got.frame["grade"].isna().tolist() == want["pci"].isna().tolist()
    assert (got.frame["karnofsky_like"] == want["ecog_at_index"] * 10).fillna(True).all()
    assert load_mapping(mapping).covariates["grade"].to_dict()["measured"].startswith(
        "at diagnosis")


@pytest.mark.parametrize(("text", "fragments"), [
    ("version: 2\ntables:\n  patients:\n    columns:\n      sexe: {column: s}\n",
     ["mapping.yaml:5: tables.patients.columns.sexe: unknown column 'sexe' of patients"]),
    ("version: 2\ntables:\n  patients:\n    columns:\n      sex: {column: s, values: {h: X}}\n",
     ["mapping.yaml:5", "'X' is not a text schema code (schema codes: F, M)"]),
    ("version: 2\ntables:\n  patients:\n    columns:\n      sex: {column: s, valeurs: {}}\n",
     ["mapping.yaml:5: tables.patients.columns.sex.valeurs: unknown key 'valeurs'"]),
    ("version: 2\ntables:\n  patients:\n    columns:\n      sex: {column: s, absent: true}\n",
     ["exactly one of 'column', 'absent: true' or 'rule'"]),
    ("version: 2\ntables:\n  patients:\n    columns:\n"
     "      birth_date: {column: d, type: date, format: '%d.%m.%y'}\n",
     ["mapping.yaml:5", "must hold %d, %m and %Y once each"]),
    ("version: 2\ntables:\n  treatment_lines:\n    columns:\n"
     "      immunotherapy: {rule: \"__import__('os')\"}\n",
     ["mapping.yaml:5", "not allowed: function calls"]),
    ("version: 2\ntables:\n  surgeries:\n    columns:\n"
     "      crs: {column: c, values: {yes: true}}\n",
     ["mapping.yaml:5", "YAML boolean", "in quotes"]),
    ("version: 3\n", ["mapping.yaml:1: version: unsupported mapping version 3"]),
    ("version: 2\ntables:\n  patients:\n    columns:\n      sex: {rule: \"centre_id == 'x'\"}\n",
     ["mapping.yaml:5", "sex is not boolean"]),
    ("version: 2\ncovariates:\n  sex: {table: patients, column: s}\n",
     ["mapping.yaml:3: covariates.sex: sex is a built-in column"]),
])
def test_mapping_typos_name_file_line_and_element(tmp_path, text, fragments):
    with pytest.raises(MappingError) as err:
        load_mapping(_mapping(tmp_path, text))
    for fragment in fragments:
        assert fragment in str(err.value)


def test_columns_nobody_reads_may_be_missing(tiny_sqlite, tmp_path, reference):
    """Only what the derivations read is required (found by walking their SQL)."""
    from connectors.registry import READ_COLUMNS

    assert "region" not in READ_COLUMNS["centres"] and "pci" in READ_COLUMNS["diagnoses"]
    url = _copy(tiny_sqlite, tmp_path, "ALTER TABLE centres DROP COLUMN region",
                "ALTER TABLE surgeries DROP COLUMN cc_score",
                "ALTER TABLE treatment_lines DROP COLUMN end_reason",
                "ALTER TABLE tumour_assessments DROP COLUMN criteria")
    pd.testing.assert_frame_equal(_pool(url).frame, reference.frame, check_exact=True)
    # with a code map on a table that lacks an unread column: the view reads it as NULL
    mapping = _mapping(tmp_path, "version: 2\ntables:\n  surgeries:\n    columns:\n"
                                 "      crs: {column: crs, type: boolean}\n")
    pd.testing.assert_frame_equal(_pool(url, mapping).frame, reference.frame, check_exact=True)
