"""A flat-file study with ``design.missing: impute`` end to end, and its spec errors.

Data: tests/fixtures/mi_pm_a/mi_pm_a_missing.csv (pm_external_control_a after ecog <= 1, with
ECOG, PCI and histology missing at random in the registry and a few PCI in the trial).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthctl.errors import DesignChangedError, SpecError
from synthctl.runner import run_study
from synthctl.specfile import load_spec

MISSING = Path(__file__).resolve().parents[1] / "fixtures" / "mi_pm_a" / "mi_pm_a_missing.csv"
SPEC = """\
study: {{name: "mi demo", seed: 3}}
data: {{path: data.csv, id: patient_id, arm: treated, trial_value: 1,
       time: pfs_weeks, event: pfs_event, time_unit: weeks}}
covariates: [age, female, ecog, histology, pci, crs_hipec]
design: {{method: {method}, balance_threshold: 0.25, missing: impute,
         imputations: 3, imputation_model: {{max_iter: 3, auxiliary: {aux}}}}}
analysis: {{landmarks: [24], landmark_unit: weeks, rmst_tau: 52, bootstrap: {bootstrap}}}
"""


def _spec(folder: Path, *, method="weighting", aux="[pfi_months]", bootstrap=0) -> Path:
    shutil.copy(MISSING, folder / "data.csv")
    path = folder / "study.yaml"
    path.write_text(SPEC.format(method=method, aux=aux, bootstrap=bootstrap))
    return path


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mi")
    spec = _spec(tmp)
    run_study(spec, tmp / "out")
    return spec, tmp / "out"


def test_outputs(done):
    _, out = done
    n = len(pd.read_csv(MISSING))
    cohort = pd.read_csv(out / "cohort.csv")
    assert cohort.columns[0] == "imputation" and len(cohort) == 3 * n
    design = json.loads((out / "design.json").read_text())
    imp = design["imputation"]
    assert imp["m"] == 3 and imp["auxiliary"] == ["pfi_months"] and imp["approach"] == "within"
    d = pd.read_csv(MISSING)
    t = d["treated"] == 1
    assert imp["imputed"]["pci"] == {"trial": int(d.loc[t, "pci"].isna().sum()),
                                     "control": int(d.loc[~t, "pci"].isna().sum())}
    assert len(design["per_imputation"]) == 3
    completed = pd.read_parquet(out / "imputed_covariates.parquet")
    assert len(completed) == 3 * n and not completed[["ecog", "pci"]].isna().any().any()
    manifest = json.loads((out / "manifest.json").read_text())
    assert "imputed_covariates.parquet" in manifest["stages"]["design"]["artifacts"]
    notes = [w["message"] for w in manifest["warnings"] if w["kind"] == "imputation"]
    assert any(m.startswith("pci: ") for m in notes)
    results = json.loads((out / "results.json").read_text())
    pfs = results["endpoints"]["PFS"]
    rubin = {p["statistic"]: p["rubin"] for p in pfs["pooling"] if "rubin" in p}
    hr = rubin["log_hr"]
    assert hr["m"] == 3 and 0 <= hr["fmi"] <= 1 and hr["df"] > 0 and hr["scale"] == "identity"
    assert pfs["hazard_ratio"]["log_hr"] == pytest.approx(hr["estimate"])
    assert rubin["landmark_24_control"]["scale"] == "cloglog"
    assert rubin["landmark_24_difference"]["scale"] == "identity"
    assert pfs["landmarks"][0]["difference"]["estimate"] == pytest.approx(
        rubin["landmark_24_difference"]["estimate"])
    assert len(pfs["imputation"]["per_imputation"]) == 3
    assert results["imputation"]["imputed"] == imp["imputed"]
    sens = results["sensitivity"]
    assert {"naive", "complete_case", "indicator", "alternative_design"} <= set(sens)
    assert all(sens[k]["status"] == "estimated" for k in sens)
    assert "hazard_ratio" in sens["complete_case"]
    # the alternative design (1:1 matching for a weighting design) within each imputation
    alt = sens["alternative_design"]
    assert alt["imputation"]["m"] == 3 and "within each of the 3" in alt["description"]
    assert "imputation_with_outcome" not in sens  # not asked for
    assert "imputed" in (out / "report.html").read_text()


def test_typed_analysis_is_the_results_json(done, tmp_path):
    """Study.analyze() gives the pooled `StudyAnalysis` whose to_dict() is results.json's
    endpoints and sensitivity; Study.design() the per-imputation designs."""
    from reports.analysis import StudyAnalysis
    from synthctl.outdir import stable_floats
    from synthctl.study import Study

    spec, out = done
    study = Study(load_spec(spec), out=tmp_path / "api")
    designs = study.design()
    assert len(designs.designs) == 3 and designs.m == 3
    res = study.analyze()
    assert isinstance(res.analysis, StudyAnalysis)
    want = json.loads((out / "results.json").read_text())
    got = json.loads(json.dumps(stable_floats(res.analysis.to_dict())))
    assert got["endpoints"] == want["endpoints"]
    assert got["sensitivity"] == want["sensitivity"]
    assert res.summary()["endpoint"].eq("PFS").all()
    assert res.plot_km() is not None


def test_imputation_with_the_outcome_after_the_lock(done, tmp_path):
    """analysis.imputation_with_outcome: a sensitivity analysis run in analyze; the locked
    design files are not rewritten and the primary numbers do not change."""
    spec, out = done
    folder = tmp_path / "copy"
    shutil.copytree(out, folder)
    locked = {n: (folder / n).read_bytes() for n in ("design.json", "cohort.csv",
                                                     "imputed_covariates.parquet")}
    spec.write_text(spec.read_text().replace("bootstrap: 0}",
                                             "bootstrap: 0, imputation_with_outcome: true}"))
    try:
        run_study(load_spec(spec), folder, stages=("analyze", "report"))
    finally:
        spec.write_text(spec.read_text().replace(", imputation_with_outcome: true", ""))
    assert {n: (folder / n).read_bytes() for n in locked} == locked
    results = json.loads((folder / "results.json").read_text())
    before = json.loads((out / "results.json").read_text())
    assert results["endpoints"] == before["endpoints"]
    s = results["sensitivity"]["imputation_with_outcome"]
    assert s["status"] == "estimated" and s["m"] == 3 and s["imputation"]["m"] == 3
    assert "outcome" in s["description"]


def test_outcome_imputation_needs_impute(tmp_path):
    path = _spec(tmp_path)
    path.write_text(path.read_text().replace("missing: impute,\n         imputations: 3, "
                                             "imputation_model: {max_iter: 3, auxiliary: "
                                             "[pfi_months]}", "missing: complete_case")
                    .replace("bootstrap: 0}", "bootstrap: 0, imputation_with_outcome: true}"))
    with pytest.raises(SpecError, match="imputation_with_outcome applies with"):
        load_spec(path)


def test_design_lock_covers_the_imputed_sets(done, tmp_path):
    spec, out = done
    folder = tmp_path / "copy"
    shutil.copytree(out, folder)
    completed = pd.read_parquet(folder / "imputed_covariates.parquet")
    completed.loc[0, "age"] += 1
    completed.to_parquet(folder / "imputed_covariates.parquet", index=False)
    with pytest.raises(DesignChangedError, match=r"imputed_covariates\.parquet"):
        run_study(load_spec(spec), folder, stages=("analyze", "report"))


def test_reruns_are_identical(done, tmp_path):
    spec, out = done
    run_study(spec, tmp_path / "again", stages=("extract", "design"))
    assert (tmp_path / "again" / "cohort.csv").read_bytes() == (out / "cohort.csv").read_bytes()


@pytest.mark.parametrize(("kw", "match"), [
    ({"aux": "[pfs_weeks]"}, r"auxiliary \['pfs_weeks'\] are outcome columns"),
    ({"aux": "[pfs_days]"}, r"auxiliary variables \['pfs_days'\] are outcomes"),
    ({"aux": "[age]"}, r"auxiliary \['age'\] are covariates"),
])
def test_bad_auxiliary_is_a_spec_error(tmp_path, kw, match):
    with pytest.raises(SpecError, match=match):
        load_spec(_spec(tmp_path, **kw))


def test_fewer_than_two_imputations(tmp_path):
    path = _spec(tmp_path)
    path.write_text(path.read_text().replace("imputations: 3", "imputations: 1"))
    with pytest.raises(SpecError, match="imputations"):
        load_spec(path)


def test_covariate_missing_in_a_whole_arm(tmp_path):
    path = _spec(tmp_path)
    d = pd.read_csv(tmp_path / "data.csv")
    d.loc[d["treated"] == 1, "ecog"] = None
    d.to_csv(tmp_path / "data.csv", index=False)
    with pytest.raises(SpecError, match="'ecog' is missing for every trial patient"):
        run_study(path, tmp_path / "out", stages=("extract", "design"))


def test_bootstrap_then_impute_is_primary(tmp_path):
    spec = _spec(tmp_path, bootstrap=3)
    run_study(spec, tmp_path / "out")
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["bootstrap"]["n_boot"] == 3
    assert "bootstrap then impute" in results["bootstrap"]["method"]
    hr = results["endpoints"]["PFS"]["hazard_ratio"]
    assert "bootstrap then impute" in hr["method"] and "analytic" in hr
    rubin = {p["statistic"]: p["rubin"] for p in results["endpoints"]["PFS"]["pooling"]
             if "rubin" in p}
    assert hr["log_hr"] == pytest.approx(rubin["log_hr"]["estimate"])  # pooled estimate stays
    assert results["imputation"]["primary_interval"].startswith("bootstrap then impute")


def test_alternative_design_runs_on_each_locked_completed_set(done):
    """The alternative design of imputation k is the alternative design fitted on the locked
    completed set k with the covariates' own types (numbers stay numbers)."""
    from reports.analysis import AnalysisDesign
    from synthctl.outdir import IMPUTATION
    from synthctl.spec import IMPUTATION_KEYS, parse_design
    from synthctl.stages.analyze import _alternative_design
    from synthctl.stages.design import fit_design
    from synthctl.stages.imputed import _imputed_alternative

    spec_path, out = done
    spec = load_spec(spec_path).spec
    covs = pd.read_parquet(out / "covariates.parquet")
    completed = pd.read_parquet(out / "imputed_covariates.parquet")
    sets = [completed[completed[IMPUTATION] == k].reset_index(drop=True) for k in (1, 2, 3)]
    sens = _imputed_alternative(covs, sets, spec)
    assert sens.failure is None and len(sens.imputed) == 3
    first = covs.copy()
    for c in spec.covariates:
        first[c] = sets[0][c]
    alt = parse_design({**_alternative_design(spec).model_dump(exclude=set(IMPUTATION_KEYS)),
                        "missing": "error"})
    want = AnalysisDesign.from_result(fit_design(first, spec, alt))
    np.testing.assert_array_equal(sens.imputed[0].weights, want.weights)
    assert first["age"].dtype.kind in "iuf"
