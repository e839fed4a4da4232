"""CLI commands: demo (the README's first command), init, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthctl.cli import app
from synthctl.specfile import load_spec

cli = CliRunner()


@pytest.fixture
def quick_demo(tmp_path: Path, monkeypatch) -> Path:
    """The shipped demo spec with 5 bootstrap replicates instead of 200 (test time)."""
    import sample_data.paths as paths

    text = paths.DEMO_SPEC.read_text().replace("bootstrap: 200", "bootstrap: 5")
    assert "bootstrap: 5\n" in text
    for name in ("trial_adsl.csv", "trial_adtte.csv"):
        text = text.replace(f": {name}", f": {paths.SAMPLE_DIR / name}")
    text = text.replace("sqlite:///renape_sample.sqlite", f"sqlite:///{paths.SAMPLE_REGISTRY}")
    spec = tmp_path / "demo_study.yaml"
    spec.write_text(text)
    monkeypatch.setattr(paths, "DEMO_SPEC", spec)
    return spec


@pytest.mark.slow
def test_demo_runs_end_to_end(quick_demo: Path, tmp_path: Path):
    out = tmp_path / "synthctl_demo"
    res = cli.invoke(app, ["demo", "--out", str(out), "--json"])
    assert res.exit_code in (0, 1), res.output  # 1: the balance check failed, report says so
    summary = json.loads(res.stdout)
    assert summary["report"] == str(out / "report.html") and (out / "report.html").is_file()
    results = json.loads((out / "results.json").read_text())
    assert summary["results"] == results
    assert results["counts"]["trial"] == 27
    assert results["bootstrap"]["n_boot"] == 5
    # bootstrap-primary limits with the analytic ones kept aside (ARCHITECTURE.md)
    control = results["endpoints"]["PFS"]["landmarks"][0]["control"]
    assert "bootstrap" in control["method"] and set(control["analytic"]) == {"se", "lower",
                                                                             "upper"}
    # the human summary names the report
    res = cli.invoke(app, ["analyze", str(quick_demo), "--out", str(out)])
    assert res.exit_code in (0, 1) and "report: " in res.output


def test_init_writes_a_loadable_template(tmp_path: Path):
    res = cli.invoke(app, ["init", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    spec = tmp_path / "s" / "study.yaml"
    assert "synthctl run" in res.output
    loaded = load_spec(spec, check_files=False)
    assert loaded.spec.design.method == "nearest" and loaded.spec.analysis.null_rate == 0.35
    res = cli.invoke(app, ["init", str(tmp_path / "s")])
    assert res.exit_code == 2 and "exists" in res.output


def test_unexpected_error_is_exit_70_without_traceback(flat_study: Path, monkeypatch):
    import synthctl.runner as runner

    def boom(*a, **k):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(runner, "run_study", boom)
    res = cli.invoke(app, ["run", str(flat_study), "--out", str(flat_study.parent / "o")])
    assert res.exit_code == 70
    assert "internal error" in res.output and "Traceback" not in res.output
    res = cli.invoke(app, ["run", str(flat_study), "--out", str(flat_study.parent / "o"),
                           "--debug"])
    assert res.exit_code == 70 and "Traceback" in res.output


def test_quiet_prints_nothing(flat_study: Path):
    res = cli.invoke(app, ["run", str(flat_study), "--out", str(flat_study.parent / "o"),
                           "--quiet"])
    assert res.exit_code == 0 and res.stdout == ""
