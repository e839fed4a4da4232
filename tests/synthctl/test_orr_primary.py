"""A binary primary endpoint end to end through the CLI (issue 15): sample_data's
demo_study_orr.yaml (``analysis.primary: ORR``) on the shipped sample registry and ADRS."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthctl.cli import app

cli = CliRunner()


@pytest.fixture(scope="module")
def orr_run(tmp_path_factory) -> Path:
    from sample_data import paths

    tmp = tmp_path_factory.mktemp("orr")
    for name in ("trial_adsl.csv", "trial_adtte.csv", "trial_adrs.csv",
                 "renape_sample.sqlite", "demo_study_orr.yaml"):
        shutil.copy(paths.SAMPLE_DIR / name, tmp / name)
    res = cli.invoke(app, ["run", str(tmp / "demo_study_orr.yaml"), "--out", str(tmp / "out"),
                           "--quiet"])
    assert res.exit_code in (0, 1), res.output  # 1: a balance check failed, still reported
    return tmp / "out"


@pytest.mark.slow
def test_results_json_has_orr_as_primary(orr_run: Path):
    res = json.loads((orr_run / "results.json").read_text())
    assert res["primary_endpoint"] == "ORR"
    assert list(res["endpoints"]) == ["ORR", "PFS"]  # primary first, PFS secondary
    orr = res["endpoints"]["ORR"]
    assert orr["kind"] == "binary" and "unconfirmed" in orr["definition"]
    # Simon "endpoint: primary" is the response's Simon (Simon 1989: 0.05/0.25 optimal 0/9,
    # 2/17), not the PFS rate's
    s = orr["simon"]
    assert (s["r1"], s["n1"], s["r"], s["n"]) == (0, 9, 2, 17)
    assert s["responses"] == orr["proportion"]["responders"]["trial"]
    assert "simon" not in res["endpoints"]["PFS"]
    assert orr["trial_vs_null"]["null_rate"] == 0.05  # response.null_rate defaults to p0
    # the sensitivity analyses are the primary (binary) endpoint's
    for name in ("naive", "alternative_design", "all_lines"):
        assert "proportion" in res["sensitivity"][name], name
    assert res["sensitivity"]["naive"]["proportion"]["n"]["control"] == res["counts"][
        "control_pool"]
    assert "error" not in orr["duration_of_response"]  # OVR records carry response dates


@pytest.mark.slow
def test_report_headline_and_methods_use_the_binary_primary(orr_run: Path):
    html = (orr_run / "report.html").read_text()
    head = html[html.index('id="headline"'):html.index('id="results"')]
    assert "Result: ORR" in head and "Risk ratio" in head and "Hazard ratio" not in head
    assert "Simon:" in head and "one-sided p" in head
    assert 'id="secondary-PFS"' in html
    # the KM figure moves to the secondary (PFS) section
    assert html.index('id="fig-km"') > html.index('id="secondary-PFS"')
    assert "The primary endpoint, ORR (best overall response" in html
    assert "Secondary endpoint: PFS was compared" in html
    sens = html[html.index('id="sensitivity"'):]
    assert "Control proportion" in sens and "Risk ratio" in sens


@pytest.mark.slow
def test_platform_row_uses_the_binary_primary(orr_run: Path):
    from synthctl.commands.platform import summarise

    res = json.loads((orr_run / "results.json").read_text())
    row = summarise(res, res["primary_endpoint"])
    assert row["primary"]["measure"] == "ORR proportion"
    assert row["primary"]["ratio"]["measure"] == "risk ratio"
    assert row["simon_decision"] == res["endpoints"]["ORR"]["simon"]["decision"]


def test_primary_orr_needs_a_response_source(tmp_path):
    from synthctl.errors import SpecError
    from synthctl.specfile import load_spec
    from tests.synthctl.conftest import CSV, SPEC

    text = SPEC.format(csv=CSV, threshold=0.25, bootstrap=0).replace(
        "bootstrap: 0}", "bootstrap: 0, primary: ORR}")
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(SpecError, match=r"analysis\.primary ORR needs the response endpoint"):
        load_spec(tmp_path / "s.yaml")
    (tmp_path / "s.yaml").write_text(text.replace("primary: ORR", "primary: PFS"))
    with pytest.raises(SpecError, match="primary"):
        load_spec(tmp_path / "s.yaml")
