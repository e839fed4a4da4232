"""The Python API (`synthctl.Study`): the CLI's stages, outputs and guarantees from a notebook."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from connectors import columns as cn
from synthctl import DesignChangedError, SpecError, Study, StudyResults
from synthctl.cli import app
from synthctl.outdir import COHORT, DESIGN, RESULTS
from tests.synthctl.conftest import CSV

matplotlib.use("Agg")


@pytest.mark.slow
def test_demo_study_in_a_notebook_is_byte_identical_to_synthctl_run(tmp_path: Path):
    """The notebook flow on the shipped demo spec (200 bootstrap replicates) gives the very
    bytes of ``synthctl run``: results.json, design.json and cohort.csv."""
    from sample_data.paths import DEMO_SPEC

    cli_out = tmp_path / "cli"
    res = CliRunner().invoke(app, ["run", str(DEMO_SPEC), "--out", str(cli_out), "--quiet"])
    assert res.exit_code == 0, res.output

    study = Study.from_spec(DEMO_SPEC)
    cohort = study.extract()
    assert cohort.counts["trial"] == 27 and len(cohort.control) == cohort.counts["control_pool"]
    design = study.design()
    results = study.analyze()
    report = study.report(tmp_path / "report.html")

    for name in (RESULTS, DESIGN, COHORT):
        assert (study.folder / name).read_bytes() == (cli_out / name).read_bytes(), name
    assert results.to_dict() == json.loads((cli_out / RESULTS).read_text())
    assert report.is_file() and "<html" in report.read_text()[:200].lower()
    # the design's weights are those of cohort.csv (12 significant digits), matched by
    # patient id, not by position
    csv = pd.read_csv(cli_out / COHORT, dtype={cn.PATIENT_ID: str}).set_index(cn.PATIENT_ID)
    shuffled = csv.sample(frac=1.0, random_state=3)
    np.testing.assert_allclose(design.weights.loc[shuffled.index].to_numpy(),
                               shuffled["weight"].to_numpy(), rtol=1e-11, atol=0)
    study.close()


@pytest.fixture
def flat_spec(tmp_path: Path) -> dict:
    """The flat-file study of the runner tests, as a dict (analytic, no bootstrap)."""
    return {
        "study": {"name": "flat demo", "seed": 1},
        "data": {"path": str(CSV), "id": "patient_id", "arm": "treated", "trial_value": 1,
                 "time": "pfs_weeks", "event": "pfs_event", "time_unit": "weeks"},
        "eligibility": ["ecog <= 1"],
        "covariates": ["age", "female", "ecog", "histology", "pci", "crs_hipec", "pfi_months"],
        "design": {"method": "nearest", "ratio": 1, "caliper": 0.2, "caliper_scale": "logit",
                   "balance_threshold": 0.25},
        "analysis": {"landmarks": [24], "landmark_unit": "weeks", "null_rate": 0.35,
                     "rmst_tau": 52, "bootstrap": 0},
    }


def test_extract_returns_a_blind_cohort_keyed_by_patient_id(flat_spec):
    with Study.from_dict(flat_spec) as study:
        cohort = study.extract()
        assert not set(cn.OUTCOME_COLUMNS) & set(cohort.frame.columns)
        assert not {"pfs_weeks", "pfs_event"} & set(cohort.frame.columns)
        assert cohort.frame.index.name == cn.PATIENT_ID and cohort.frame.index.is_unique
        assert study.stages_done == ("extract",)
        att = cohort.attrition
        assert att.n_final == cohort.counts["control_pool"] == len(cohort.control)
        html = att._repr_html_()
        assert "<table" in html and "ecog &lt;= 1" in html and "rows" in html


def test_design_series_travel_by_patient_id(flat_spec):
    with Study.from_dict(flat_spec) as study:
        cohort = study.extract()
        design = study.design()
        for name in ("ps", "weights", "match_id", "included", "treated"):
            assert getattr(design, name).index.equals(cohort.frame.index), name
        assert (design.treated == (cohort.frame[cn.ARM] == cn.TRIAL)).all()
        csv = pd.read_csv(study.folder / COHORT, dtype={cn.PATIENT_ID: str},
                          keep_default_na=False).set_index(cn.PATIENT_ID)
        ids = csv.index[::-1]
        assert (design.weights.loc[ids].to_numpy() == csv.loc[ids, "weight"].to_numpy()).all()
        assert "analyze" not in study.stages_done  # no outcome read yet
        html = design._repr_html_()
        assert "<table" in html and "smd_after" in html and "threshold 0.25" in html


def test_analyze_returns_the_typed_results_of_results_json(flat_spec):
    with Study.from_dict(flat_spec) as study:
        res = study.analyze()  # runs extract and design first, like `synthctl run`
        assert study.stages_done == ("extract", "design", "analyze")
        assert isinstance(res, StudyResults)
        assert res.to_dict() == json.loads((study.folder / RESULTS).read_text())
        table = res.summary()
        lm = table[(table["quantity"] == "S(24 weeks)") & (table["arm"] == "trial")]
        expected = res.to_dict()["endpoints"]["PFS"]["landmarks"][0]["trial"]["estimate"]
        assert lm["estimate"].item() == pytest.approx(expected, rel=1e-9)
        assert "<table" in res._repr_html_() and "times in weeks" in res._repr_html_()
        assert res.to_dict()["endpoints"]["PFS"]["median"]["unit"] == "weeks"


def test_from_dict_and_from_spec_give_the_same_results(flat_spec, tmp_path: Path):
    import yaml

    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(flat_spec))
    with Study.from_spec(path) as a, Study.from_dict(flat_spec) as b:
        assert a.analyze().to_dict() == b.analyze().to_dict()


def test_analyze_refuses_a_design_changed_after_it_was_locked(flat_spec):
    with Study.from_dict(flat_spec) as study:
        study.design()
        cohort = study.folder / COHORT
        cohort.write_text(cohort.read_text().replace(",True", ",False", 1))
        with pytest.raises(DesignChangedError, match=re.escape(COHORT)):
            study.analyze()
        assert not (study.folder / RESULTS).exists()


def test_with_design_is_a_new_study_and_leaves_the_locked_one(flat_spec):
    with Study.from_dict(flat_spec) as study:
        first = study.design()
        other = study.with_design(method="weighting", weights="overlap", estimand="ATO")
        assert other.folder != study.folder and other.stages_done == ()
        assert other.spec.design.method == "weighting" and study.spec.design.method == "nearest"
        assert other.design().yields == "weights" and study.design() is first
        other.close()
        with pytest.raises(SpecError, match=r"design.m_order: .*m_order has no effect"):
            study.with_design(replace=True, m_order="random")
        with pytest.raises(SpecError, match=r"design.weights: option 'weights' does not apply"):
            study.with_design(weights="ate")
        # the same method with one option changed (the others kept, impute-only keys unset)
        two = study.with_design(ratio=2)
        assert two.spec.design.ratio == 2 and two.spec.design.caliper == 0.2
        two.close()
        quick = study.with_analysis(rmst_tau=40)
        assert quick.spec.analysis.rmst_tau == 40 and quick.spec.design == study.spec.design
        quick.close()


def test_figures_are_returned_not_shown(flat_spec):
    from matplotlib import pyplot as plt
    from matplotlib.figure import Figure

    with Study.from_dict(flat_spec) as study:
        design, res = study.design(), study.analyze()
        figs = [design.plot(), design.plot("overlap"), res.plot_km()]
        assert all(isinstance(f, Figure) for f in figs)
        assert plt.get_fignums() == []
        with pytest.raises(ValueError, match="kind"):
            design.plot("histogram")


def test_a_bad_dict_spec_names_the_key(flat_spec):
    bad = {**flat_spec, "design": {**flat_spec["design"], "weights": "ate"}}
    with pytest.raises(SpecError, match=r"design.*weights"):
        Study.from_dict(bad)
    with pytest.raises(SpecError, match="covariates"):
        Study.from_dict({**flat_spec, "covariates": ["age", "no_such_column"]})


def test_temporary_folder_is_removed_on_close(flat_spec, tmp_path: Path):
    study = Study.from_dict(flat_spec)
    study.extract()
    folder = study.folder
    assert folder.is_dir()
    study.close()
    assert not folder.exists()
    kept = Study.from_dict(flat_spec, out=tmp_path / "out")
    kept.extract()
    kept.close()
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_an_imputed_design_gives_its_designs_and_the_pooled_analysis(tmp_path: Path):
    """``missing: impute`` is one design per imputed data set: design() returns them (an
    ImputedDesign keyed by patient id), analyze() the pooled typed analysis of results.json."""
    from matching.imputed_design import ImputedDesign
    from tests.synthctl.test_imputed_study import _spec

    with Study.from_spec(_spec(tmp_path)) as study:
        design = study.design()
        assert isinstance(design, ImputedDesign) and design.m == 3
        ids = study.extract().frame.index
        assert all(d.weights.index.equals(ids) for d in design.designs)
        assert all(c.index.equals(ids) for c in design.completed)
        res = study.analyze()
        assert res.to_dict() == json.loads((study.folder / RESULTS).read_text())
        assert res.analysis.primary.m == 3
        assert set(res.summary()["endpoint"]) == {"PFS"}
