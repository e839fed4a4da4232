"""Study spec: validation errors name the YAML path and line; env substitution; paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthctl.cli import app
from synthctl.errors import SpecError
from synthctl.specfile import load_spec
from tests.synthctl.conftest import SPEC

runner = CliRunner()


def _spec_text(**kw) -> str:
    return SPEC.format(csv=kw.get("csv", "data.csv"), threshold=0.25, bootstrap=0)


def _write(tmp: Path, text: str) -> Path:
    p = tmp / "study.yaml"
    p.write_text(text)
    return p


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_valid_spec_resolves_relative_paths(flat_study: Path):
    loaded = load_spec(flat_study)
    assert loaded.spec.data.path == flat_study.parent / "data.csv"
    assert loaded.spec.source_kind == "flat"
    assert len(loaded.sha256) == 64


@pytest.mark.parametrize(
    ("edit", "needle", "where", "message"),
    [
        # unknown key inside design:
        (lambda t: t.replace("ratio: 1,", "ratio: 1, colour: red,"), "colour: red",
         "design.colour", "unknown key 'colour'"),
        # wrong type
        (lambda t: t.replace("ratio: 1,", "ratio: two,"), "ratio: two",
         "design.ratio", "valid integer"),
        # closed set
        (lambda t: t.replace("method: nearest", "method: nearst"), "method: nearst",
         "design.method", "'nearest', 'optimal' or 'weighting'"),
        # unknown covariate: checked against the flat file's header
        (lambda t: t.replace("pfi_months]", "pfi_months, bmi]"), "covariates:",
         "covariates[7]", "unknown covariate 'bmi'"),
        # unknown top-level key
        (lambda t: t + "extras: 1\n", "extras: 1", "extras", "unknown key 'extras'"),
    ],
)
def test_bad_spec_names_path_and_line(flat_study: Path, edit, needle, where, message):
    text = edit(flat_study.read_text())
    path = _write(flat_study.parent, text)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    msg = str(err.value)
    assert f"study.yaml:{_line_of(text, needle)}: {where}: " in msg, msg
    assert message in msg
    # the CLI: exit code 2, one paragraph on stderr, no traceback
    res = runner.invoke(app, ["run", str(path), "--out", str(flat_study.parent / "out")])
    assert res.exit_code == 2, res.output
    assert where in res.output and "Traceback" not in res.output
    assert not (flat_study.parent / "out").exists()


def test_missing_data_file_names_path_and_line(tmp_path: Path):
    text = _spec_text(csv="nowhere.csv")
    path = _write(tmp_path, text)
    with pytest.raises(SpecError, match=r"study.yaml:2: data.path: .*file not found: .*nowhere"):
        load_spec(path)
    res = runner.invoke(app, ["design", str(path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "nowhere.csv" in res.output


def test_missing_spec_file(tmp_path: Path):
    res = runner.invoke(app, ["run", str(tmp_path / "absent.yaml"), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "study spec not found" in res.output


def test_unknown_column_in_criterion_is_a_spec_error(flat_study: Path):
    text = flat_study.read_text().replace('"ecog <= 1"', '"ecog <= 1", "bmi > 3"')
    with pytest.raises(SpecError, match=r"eligibility\[1\].*bmi"):
        load_spec(_write(flat_study.parent, text))


def test_injection_in_criterion_is_a_spec_error(flat_study: Path):
    text = flat_study.read_text().replace('"ecog <= 1"', "\"__import__('os')\"")
    with pytest.raises(SpecError, match=r"study.yaml:4: eligibility\[0\]"):
        load_spec(_write(flat_study.parent, text))


def test_missing_required_key_names_parent(tmp_path: Path):
    text = _spec_text().replace("study: {name: \"flat demo\", seed: 1}\n", "")
    with pytest.raises(SpecError, match=r"study: required key missing"):
        load_spec(_write(tmp_path, text), check_files=False)


def test_registry_and_flat_together_rejected(flat_study: Path):
    text = flat_study.read_text() + 'registry: {url: "sqlite:///x.sqlite"}\n'
    with pytest.raises(SpecError, match="either 'data'"):
        load_spec(_write(flat_study.parent, text), check_files=False)


def test_env_substitution_and_missing_variable(tmp_path: Path, monkeypatch):
    text = (
        'study: {name: s, seed: 1}\n'
        'trial: {adsl: a.csv, adtte: b.csv}\n'
        'registry:\n'
        '  url: "postgresql+psycopg://me:${SYNTHCTL_TEST_PW}@127.0.0.1/db"\n'
        'covariates: [age_at_index]\n'
    )
    path = _write(tmp_path, text)
    monkeypatch.delenv("SYNTHCTL_TEST_PW", raising=False)
    with pytest.raises(SpecError, match=r"study.yaml:4: registry.url: environment variable "
                                        r"SYNTHCTL_TEST_PW is not set"):
        load_spec(path, check_files=False)
    monkeypatch.setenv("SYNTHCTL_TEST_PW", "s3cret-pw")
    loaded = load_spec(path, check_files=False)
    assert "s3cret-pw" in loaded.spec.registry.url
    assert loaded.scrub("failed for me:s3cret-pw@") == "failed for me:***@"
    # the file hash is of the text with the placeholder: the secret never enters it
    assert loaded.sha256 == load_spec(path, check_files=False).sha256


def test_registry_covariates_checked_against_analysis_columns(tmp_path: Path):
    text = ('study: {name: s, seed: 1}\ntrial: {adsl: a.csv, adtte: b.csv}\n'
            'registry: {url: "sqlite:///r.sqlite"}\ncovariates: [age_at_index, shoe_size]\n')
    with pytest.raises(SpecError, match=r"study.yaml:4: covariates\[1\]: unknown covariate"):
        load_spec(_write(tmp_path, text), check_files=False)


def test_design_hash_tracks_design_part_only(flat_study: Path, tmp_path: Path):
    base = load_spec(flat_study).spec
    other = flat_study.read_text().replace("rmst_tau: 52", "rmst_tau: 40")
    same = load_spec(_write(flat_study.parent, other)).spec
    assert same.design_hash() == base.design_hash()
    changed = flat_study.read_text().replace("caliper: 0.2", "caliper: 0.1")
    assert load_spec(_write(flat_study.parent, changed)).spec.design_hash() != base.design_hash()


def test_missing_sqlite_registry_names_the_line(tmp_path: Path):
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("x\n")
    text = ('study: {name: s, seed: 1}\ntrial: {adsl: a.csv, adtte: b.csv}\n'
            'registry: {url: "sqlite:///gone.sqlite"}\ncovariates: [age_at_index]\n')
    with pytest.raises(SpecError, match=r"study.yaml:3: registry.url: .*SQLite registry file "
                                        r"not found: .*gone.sqlite"):
        load_spec(_write(tmp_path, text))


def test_unknown_nested_block_key_reports_the_key_line(flat_study: Path):
    text = flat_study.read_text() + "extras:\n  deep:\n    a: 1\n"
    with pytest.raises(SpecError) as err:
        load_spec(_write(flat_study.parent, text))
    assert f"study.yaml:{_line_of(text, 'extras:')}: extras: unknown key" in str(err.value)
