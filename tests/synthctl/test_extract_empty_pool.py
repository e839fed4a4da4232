"""A criterion that leaves nobody stops the extract stage, naming the criterion and the
values the column has (issue 14, defect 11); before, the run failed later with "no control"."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from sample_data.paths import SAMPLE_DIR
from synthctl.cli import app

cli = CliRunner()


def _sample_study(tmp: Path, criterion: str) -> Path:
    for name in ("renape_sample.sqlite", "trial_adsl.csv", "trial_adtte.csv"):
        shutil.copy(SAMPLE_DIR / name, tmp / name)
    text = (SAMPLE_DIR / "demo_study.yaml").read_text().replace(
        "  - \"histology in ['epithelioid', 'biphasic']\"", f'  - "{criterion}"')
    assert criterion in text
    path = tmp / "study.yaml"
    path.write_text(text)
    return path


def test_registry_criterion_emptying_the_pool_fails_at_extract(tmp_path: Path):
    path = _sample_study(tmp_path, "histology == 'epitheloid'")
    res = cli.invoke(app, ["extract", str(path), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert "eligibility criterion 5 (\"histology == 'epitheloid'\") leaves no registry patient" \
        in out, out
    assert "'epithelioid'" in out and "eligibility[4]" in out
    # the counts are the sample registry's (aggregates of the index pool, no identifiers)
    import sqlite3

    con = sqlite3.connect(tmp_path / "renape_sample.sqlite")
    ids = pd.read_sql("select patient_id from patients", con)["patient_id"].astype(str)
    con.close()
    assert not any(i in out for i in ids.head(50) if len(i) > 3)
    assert not (tmp_path / "out").exists()


def test_flat_criterion_emptying_the_controls_fails_at_extract(flat_study: Path):
    text = flat_study.read_text().replace('"ecog <= 1"', "\"histology == 'epitheloid'\"")
    flat_study.write_text(text)
    res = cli.invoke(app, ["extract", str(flat_study), "--out", str(flat_study.parent / "o")])
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert "leaves no control row of the flat file" in out, out
    data = pd.read_csv(flat_study.parent / "data.csv")
    top = data.loc[data["treated"] == 0, "histology"].value_counts().index[0]
    assert f"histology: {top!r} " in out
