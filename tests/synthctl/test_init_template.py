"""`synthctl init` writes a template that runs on the shipped sample as written (issue 14,
defect 17: it listed pci, which has missing values, without a missing: line)."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from sample_data.paths import SAMPLE_REGISTRY, TRIAL_ADSL, TRIAL_ADTTE
from synthctl.cli import app
from synthctl.specfile import load_spec

cli = CliRunner()


def _init_next_to_the_sample(tmp_path: Path) -> Path:
    res = cli.invoke(app, ["init", str(tmp_path)])
    assert res.exit_code == 0, res.output
    for f in (SAMPLE_REGISTRY, TRIAL_ADSL, TRIAL_ADTTE):  # the names the template uses
        shutil.copy(f, tmp_path / f.name)
    return tmp_path / "study.yaml"


def test_template_design_runs_on_the_sample_as_written(tmp_path: Path):
    spec = _init_next_to_the_sample(tmp_path)
    out = tmp_path / "out"
    for stage in ("extract", "design"):
        res = cli.invoke(app, [stage, str(spec), "--out", str(out)])
        # 1: the balance check failed (a result, reported); 2 would be an error
        assert res.exit_code in (0, 1), res.output
    assert (out / "design.json").is_file()


def test_template_runs_end_to_end_without_the_bootstrap(tmp_path: Path):
    spec = _init_next_to_the_sample(tmp_path)
    text = spec.read_text()
    assert "bootstrap: 1000" in text
    spec.write_text(text.replace("bootstrap: 1000", "bootstrap: 0"))  # time only
    res = cli.invoke(app, ["run", str(spec), "--out", str(tmp_path / "out")])
    assert res.exit_code in (0, 1), res.output
    assert (tmp_path / "out" / "report.html").is_file()


def test_template_names_every_design_option_it_sets_from_the_table(tmp_path: Path):
    from matching.methods import METHODS

    spec = load_spec(_init_next_to_the_sample(tmp_path)).spec
    assert set(spec.design.method_options()) == {o.name for o in METHODS["nearest"].options}
    assert spec.design.missing == "complete_case"


def test_missing_values_error_suggests_the_spec_option_not_python(tmp_path: Path):
    spec = _init_next_to_the_sample(tmp_path)
    spec.write_text(spec.read_text().replace("  missing: complete_case", "  missing: error"))
    out = tmp_path / "out"
    assert cli.invoke(app, ["extract", str(spec), "--out", str(out)]).exit_code == 0
    res = cli.invoke(app, ["design", str(spec), "--out", str(out)])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "pci" in text
    assert "missing to indicator" in text and "missing='" not in text
