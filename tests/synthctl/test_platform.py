"""``synthctl platform``: several cohorts in one run; a failing cohort fails alone (issue 15)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from synthctl.cli import app
from synthctl.commands.platform import load_platform, run_platform
from synthctl.errors import SpecError
from tests.synthctl.conftest import CSV, write_spec

cli = CliRunner()

PLATFORM = """\
platform: {name: "two cohorts (test)", description: "flat-file cohorts"}
cohorts:
  - name: pfs_cohort
    spec: a/study.yaml
    overrides: {analysis: {simon: {p0: 0.35, p1: 0.6}}}
  - name: response_cohort
    spec: a/study.yaml
    overrides:
      study: {name: "response cohort"}
      data: {response: resp}
      analysis: {simon: {p0: 0.35, p1: 0.6, endpoint: ORR}}
  - {name: broken, spec: missing/study.yaml}
"""


@pytest.fixture(scope="module")
def platform_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("platform")
    (tmp / "a").mkdir()
    data = pd.read_csv(CSV)
    data["resp"] = np.random.default_rng(1).binomial(1, 0.4, len(data))
    data.to_csv(tmp / "a" / "data.csv", index=False)
    write_spec(tmp / "a")
    (tmp / "platform.yaml").write_text(PLATFORM)
    result = cli.invoke(app, ["platform", str(tmp / "platform.yaml"), "--out", str(tmp / "out"),
                              "--quiet"])
    return tmp, result


def test_cohorts_run_and_the_failing_one_is_reported(platform_run):
    tmp, result = platform_run
    assert result.exit_code == 1, result.output  # one cohort failed
    res = json.loads((tmp / "out" / "results.json").read_text())
    rows = {r["name"]: r for r in res["cohorts"]}
    assert [r["name"] for r in res["cohorts"]] == ["pfs_cohort", "response_cohort", "broken"]
    assert rows["broken"]["status"] == "failed" and "not found" in rows["broken"]["error"]
    for name in ("pfs_cohort", "response_cohort"):
        assert rows[name]["status"] == "ok"
        cohort = json.loads((tmp / "out" / name / "results.json").read_text())
        lm = cohort["endpoints"]["PFS"]["landmarks"][0]
        assert rows[name]["primary"]["trial"] == lm["trial"]["estimate"]
        assert rows[name]["primary"]["difference"]["estimate"] == lm["difference"]["estimate"]
        assert (tmp / "out" / name / "manifest.json").is_file()
    pfs_simon = json.loads((tmp / "out" / "pfs_cohort" / "results.json").read_text())[
        "endpoints"]["PFS"]["simon"]
    assert rows["pfs_cohort"]["simon_decision"] == pfs_simon["decision"]
    assert pfs_simon["outcome"] == "event-free at 24 weeks"
    assert pfs_simon["n_evaluable"] + pfs_simon["n_censored_before_landmark"] == 60
    assert "H0" in rows["response_cohort"]["simon_decision"]
    assert rows["pfs_cohort"]["trial_n"] == 60
    page = (tmp / "out" / "report.html").read_text()
    assert "<svg" in page and "broken" in page and "not found" in page
    assert not list((tmp / "a").glob(".study.platform-*"))  # merged specs cleaned up


def test_platform_file_errors(tmp_path):
    (tmp_path / "p.yaml").write_text("platform: {name: x}\ncohorts: [{name: 'a b', spec: s}]\n")
    with pytest.raises(SpecError, match="folder name"):
        load_platform(tmp_path / "p.yaml")
    (tmp_path / "p.yaml").write_text(
        "platform: {name: x}\ncohorts: [{name: a, spec: s}, {name: a, spec: t}]\n")
    with pytest.raises(SpecError, match="listed twice"):
        run_platform(tmp_path / "p.yaml", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_all_ok_exit_code_zero(tmp_path):
    shutil.copy(CSV, tmp_path / "data.csv")
    write_spec(tmp_path)
    (tmp_path / "p.yaml").write_text(
        "platform: {name: one}\ncohorts: [{name: only, spec: study.yaml}]\n")
    code, res = run_platform(tmp_path / "p.yaml", tmp_path / "out")
    assert code == 0 and res["cohorts"][0]["status"] == "ok"


def test_demo_platform_files_are_valid():
    from sample_data.paths import DEMO_PLATFORM
    from synthctl.commands.platform import load_platform
    from synthctl.specfile import load_spec

    platform = load_platform(DEMO_PLATFORM)
    assert [c.name for c in platform.cohorts] == ["mesothelioma_pfs", "gtt_hcg"]
    specs = [load_spec(c.spec).spec for c in platform.cohorts]
    assert specs[0].analysis.primary_endpoint == "PFS"
    assert specs[1].analysis.primary_endpoint == "NORMALISATION"
    assert specs[1].trial.adlb.is_file() and specs[1].registry.mapping.is_file()
    # each cohort has its own registry (the GTT one only through its mapping)
    assert specs[0].registry.url != specs[1].registry.url
    for name in ("demo_study_response.yaml", "demo_study_orr.yaml"):  # single-cohort demos
        assert load_spec(DEMO_PLATFORM.parent / name).spec.analysis.response is not None
