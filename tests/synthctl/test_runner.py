"""The study runner on a flat file: R agreement, audit trail, design lock, atomic output."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from synthctl.cli import app
from synthctl.errors import DesignChangedError
from synthctl.runner import run_study
from tests.synthctl.conftest import CSV, REFERENCE, write_spec

cli = CliRunner()


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> tuple[Path, Path]:
    """One full run of the flat study: (spec, output folder). Tests copy, never modify it."""
    tmp = tmp_path_factory.mktemp("flat")
    shutil.copy(CSV, tmp / "data.csv")
    spec = write_spec(tmp)
    result = run_study(spec, tmp / "out")
    assert result.exit_code == 0
    return spec, tmp / "out"


def test_flat_study_agrees_with_r(done):
    """MatchIt 4.7.2 nearest 1:1, caliper 0.2 SD of the logit PS, then survfit/coxph on the
    matched set (tests/fixtures/pm_external_control_a). Tolerance 1e-8 relative: the same
    estimators on the same pairs; results.json keeps 12 significant digits."""
    ref = json.loads(REFERENCE.read_text())["nearest_1to1_caliper02_logit"]
    res = json.loads((done[1] / "results.json").read_text())
    assert res["schema_version"] == 1
    assert res["counts"]["trial_selected"] == ref["n_matched_treated"] == 60
    assert res["counts"]["control_selected"] == ref["n_matched_control"]
    assert res["counts"]["control_pool"] == 694  # 900 registry rows, 206 with ECOG >= 2
    lm = res["endpoints"]["PFS"]["landmarks"][0]
    assert (lm["time"], lm["unit"]) == (24, "weeks")
    km = {r["strata"]: r for r in ref["km_landmark"]}
    for arm, strata in (("trial", "treated=1"), ("control", "treated=0")):
        for key, rkey in (("estimate", "surv"), ("se", "std_err"), ("lower", "lower"),
                          ("upper", "upper")):
            assert lm[arm][key] == pytest.approx(km[strata][rkey], rel=1e-8)
    hr = res["endpoints"]["PFS"]["hazard_ratio"]
    cox = ref["cox_cluster_pair"]
    assert hr["estimate"] == pytest.approx(cox["hr"], rel=1e-8)
    assert hr["se_log"] == pytest.approx(cox["robust_se"], rel=1e-8)
    assert set(res["sensitivity"]) == {"naive", "alternative_design"}


def test_output_folder_contract(done):
    out = done[1]
    names = {p.name for p in out.iterdir()}
    assert {"manifest.json", "attrition.csv", "cohort.csv", "design.json", "results.json",
            "report.html"} <= names
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".out.")]
    cohort = pd.read_csv(out / "cohort.csv", keep_default_na=False)
    assert list(cohort.columns) == ["patient_id", "arm", "ps", "weight", "match_id", "included"]
    assert set(cohort["arm"]) == {"trial", "control"}
    # match_id empty exactly for the unmatched
    assert ((cohort["match_id"] == "") == (cohort["included"].astype(str) == "False")).all()
    attrition = pd.read_csv(out / "attrition.csv")
    assert list(attrition.columns)[:4] == ["step", "criterion", "n_remaining", "n_excluded"]
    design = json.loads((out / "design.json").read_text())
    assert design["method"] == "nearest" and "balance" in design and "ps_model" in design


def test_manifest_hashes_inputs_and_artifacts(done):
    spec, out = done
    m = json.loads((out / "manifest.json").read_text())
    assert m["spec"]["sha256"] == hashlib.sha256(spec.read_bytes()).hexdigest()
    assert m["inputs"]["data"]["sha256"] == hashlib.sha256(CSV.read_bytes()).hexdigest()
    assert m["seed"] == 1 and m["allow_redesign"] is False
    assert {"numpy", "pandas", "lifelines", "python"} <= set(m["packages"])
    for stage in ("extract", "design", "analyze", "report"):
        entry = m["stages"][stage]
        assert entry["seconds"] >= 0 and entry["started"] <= entry["finished"]
        for name, digest in entry["artifacts"].items():
            assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name


def test_report_has_no_patient_identifier(done):
    out = done[1]
    html = (out / "report.html").read_text()
    ids = pd.read_csv(out / "cohort.csv", dtype=str)["patient_id"]
    leaked = [i for i in ids if i in html]
    assert not leaked, leaked[:5]
    assert "<h2>Attrition</h2>" in html and "data:image/svg+xml;base64," in html


def test_reruns_are_byte_identical(done, tmp_path):
    spec, out = done
    again = run_study(spec, tmp_path / "again")
    for name in ("results.json", "cohort.csv", "design.json", "attrition.csv"):
        assert (again.folder / name).read_bytes() == (out / name).read_bytes(), name


def test_outcome_blind_design_without_outcome_columns(done, tmp_path):
    """extract + design on a copy of the file with the outcome columns removed: identical
    design; analyze then stops with a clear error (exit 2) naming the missing columns."""
    out = done[1]
    pd.read_csv(CSV).drop(columns=["pfs_weeks", "pfs_event"]).to_csv(tmp_path / "data.csv",
                                                                      index=False)
    shutil.copy(CSV, tmp_path / "full.csv")
    blind = write_spec(tmp_path, csv="data.csv")
    # the spec's own check of the file needs the columns it names: point it at the full
    # file for loading, then swap in the blind file for the stages
    from synthctl.specfile import load_spec

    loaded = load_spec(write_spec(tmp_path, csv="full.csv", name="full.yaml"))
    loaded_blind = type(loaded)(loaded.spec.model_copy(update={"data": loaded.spec.data
                                .model_copy(update={"path": tmp_path / "data.csv"})}),
                                blind, loaded.sha256)
    res = run_study(loaded_blind, tmp_path / "o", stages=("extract", "design"))
    assert res.stages == ("extract", "design")
    assert (tmp_path / "o" / "cohort.csv").read_bytes() == (out / "cohort.csv").read_bytes()
    assert (tmp_path / "o" / "design.json").read_bytes() == (out / "design.json").read_bytes()
    with pytest.raises(Exception, match=r"data.csv: missing column\(s\) pfs_weeks, pfs_event"):
        run_study(loaded_blind, tmp_path / "o", stages=("analyze", "report"))
    assert not (tmp_path / "o" / "results.json").exists()


def test_analyze_refuses_a_changed_design(done, tmp_path):
    spec, out = done
    folder = tmp_path / "out"
    shutil.copytree(out, folder)
    before = _hashes(folder)
    changed = spec.read_text().replace("caliper: 0.2", "caliper: 0.1")
    spec2 = tmp_path / "study.yaml"
    spec2.write_text(changed)
    shutil.copy(CSV, tmp_path / "data.csv")
    for command in ("analyze", "design", "run"):
        res = cli.invoke(app, [command, str(spec2), "--out", str(folder)])
        assert res.exit_code == 2, (command, res.output)
        assert "--allow-redesign" in res.output and "Traceback" not in res.output
    assert _hashes(folder) == before
    # allowed explicitly: re-run, recorded in the manifest and shown in the report
    res = cli.invoke(app, ["analyze", str(spec2), "--out", str(folder), "--allow-redesign"])
    assert res.exit_code == 0, res.output
    m = json.loads((folder / "manifest.json").read_text())
    assert m["allow_redesign"] is True and m["redesigns"]
    assert 'id="redesign"' in (folder / "report.html").read_text()


def test_analyze_refuses_a_tampered_design_json(done, tmp_path):
    spec, out = done
    folder = tmp_path / "out"
    shutil.copytree(out, folder)
    design = folder / "design.json"
    design.write_text(design.read_text().replace('"nearest"', '"nearest" '))
    with pytest.raises(DesignChangedError, match=r"design\.json changed since the design stage"):
        run_study(spec, folder, stages=("analyze", "report"))


def test_failed_run_leaves_previous_folder_untouched(done, tmp_path):
    out = done[1]
    folder = tmp_path / "out"
    shutil.copytree(out, folder)
    before = _hashes(folder)
    bad = pd.read_csv(CSV)
    bad.loc[5, "pfs_event"] = 7  # breaks analyze, after extract and design succeeded
    bad.to_csv(tmp_path / "data.csv", index=False)
    spec2 = write_spec(tmp_path)
    res = cli.invoke(app, ["run", str(spec2), "--out", str(folder)])
    assert res.exit_code == 2, res.output
    assert "analyze stage" in res.output and "pfs_event" in res.output and "row(s) 6" in res.output
    assert _hashes(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "out", "study.yaml"]
    # a fresh target is not created at all
    res = cli.invoke(app, ["run", str(spec2), "--out", str(tmp_path / "fresh")])
    assert res.exit_code == 2 and not (tmp_path / "fresh").exists()


def test_refuses_to_replace_a_foreign_folder(flat_study):
    foreign = flat_study.parent / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    res = cli.invoke(app, ["run", str(flat_study), "--out", str(foreign)])
    assert res.exit_code == 2 and "synthctl did not write (thesis.tex)" in res.output
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_json_output_equals_library_result(done, tmp_path):
    spec, out = done
    res = cli.invoke(app, ["run", str(spec), "--out", str(tmp_path / "cli"), "--json"])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout)
    assert printed["results"] == json.loads((out / "results.json").read_text())
    lib = run_study(spec, tmp_path / "lib")
    assert printed["results"] == lib.results
    assert printed["exit_code"] == lib.exit_code == 0


def test_balance_failure_exits_1_and_report_says_so(tmp_path):
    shutil.copy(CSV, tmp_path / "data.csv")
    spec = write_spec(tmp_path, threshold=0.1)  # max |SMD| after matching is 0.195
    res = cli.invoke(app, ["run", str(spec), "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 1, res.output
    html = (tmp_path / "o" / "report.html").read_text()
    assert 'id="balance-failed"' in html and "balance threshold not met" in html
    assert json.loads((tmp_path / "o" / "results.json").read_text())["design"][
        "balance_passed"] is False


def test_analyze_refuses_when_an_input_file_changed(tmp_path):
    """The covariates were extracted from one file; analyze must not join outcomes from
    another version of it."""
    shutil.copy(CSV, tmp_path / "data.csv")
    spec = write_spec(tmp_path)
    run_study(spec, tmp_path / "o", stages=("extract", "design"))
    with open(tmp_path / "data.csv", "a") as fh:
        fh.write("X9999,60,0,0,epithelioid,10,0,3.0,0,20.0,1\n")
    with pytest.raises(DesignChangedError, match=r"input file data\.csv changed since"):
        run_study(spec, tmp_path / "o", stages=("analyze", "report"))


@pytest.mark.slow
def test_bootstrap_results_do_not_depend_on_the_number_of_workers(tmp_path):
    shutil.copy(CSV, tmp_path / "data.csv")
    spec = write_spec(tmp_path, bootstrap=12)
    one = run_study(spec, tmp_path / "one", n_jobs=1)
    two = run_study(spec, tmp_path / "two", n_jobs=2)
    results = (one.folder / "results.json").read_bytes()
    assert results == (two.folder / "results.json").read_bytes()
    assert b"bootstrap percentile 95% (12 replicates" in results  # the replicates ran
