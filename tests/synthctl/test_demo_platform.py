"""The shipped two-cohort demo platform runs from the installed package files (issue 15):
``synthctl platform --out DIR`` without a platform file runs the mesothelioma PFS-rate cohort
and the GTT hCG-normalisation cohort (its own registry, read through its mapping)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from synthctl.cli import app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_platform(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "platform"
    result = CliRunner().invoke(app, ["platform", "--out", str(out), "--quiet"])
    return out, result


def test_both_cohorts_run(demo_platform):
    out, result = demo_platform
    assert result.exit_code == 0, result.output
    res = json.loads((out / "results.json").read_text())
    rows = {r["name"]: r for r in res["cohorts"]}
    assert list(rows) == ["mesothelioma_pfs", "gtt_hcg"]
    assert all(r["status"] == "ok" for r in rows.values())
    assert rows["mesothelioma_pfs"]["primary_endpoint"] == "PFS"
    assert rows["gtt_hcg"]["primary_endpoint"] == "NORMALISATION"
    page = (out / "report.html").read_text()
    assert "gtt_hcg" in page and "mesothelioma_pfs" in page and "<svg" in page


def test_gtt_cohort_reports_the_normalisation_rate(demo_platform):
    out, _ = demo_platform
    row = next(r for r in json.loads((out / "results.json").read_text())["cohorts"]
               if r["name"] == "gtt_hcg")
    cohort = json.loads((out / "gtt_hcg" / "results.json").read_text())
    assert cohort["primary_endpoint"] == "NORMALISATION"
    norm = cohort["endpoints"]["NORMALISATION"]
    p = norm["proportion"]
    assert row["primary"]["trial"] == p["trial"]["estimate"]
    assert row["primary"]["difference"]["estimate"] == p["difference"]["estimate"]
    assert p["n"] == {"trial": 27, "control": cohort["counts"]["control_selected"]}
    assert "hcg below the upper limit of normal on 2 consecutive" in norm["definition"]
    # the Simon analysis is on the primary (H0 35% vs H1 60%: the optimal 3/9, 13/27)
    simon = norm["simon"]
    assert (simon["r1"], simon["n1"], simon["r"], simon["n"]) == (3, 9, 13, 27)
    assert row["simon_decision"] == simon["decision"]
    assert norm["trial_vs_null"]["null_rate"] == 0.35
    # the secondary time-to-event endpoint is still there
    assert cohort["endpoints"]["PFS"]["landmarks"][0]["time"] == 24
    # seeded sample: the truth (gtt_truth.json) lies within the 95% limits of both arms
    from sample_data.paths import GTT_TRUTH

    truth = json.loads(GTT_TRUTH.read_text())["normalisation_rate"]
    for arm in ("trial", "control"):
        assert p[arm]["lower"] < truth[arm] < p[arm]["upper"], arm
    manifest = json.loads((out / "gtt_hcg" / "manifest.json").read_text())
    assert any("not normalised" in w.get("message", str(w)) for w in manifest.get("warnings",
                                                                                    []))
