"""Variance clustering of the analyze stage: the patient for several rows, the matched set only
for designs that yield sets (defect 6: nearest with replacement crashed after outcomes)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from connectors import columns as cn
from reports.analysis import AnalysisDesign, estimate_endpoints
from reports.compare import compare_arms
from synthctl.runner import run_study
from synthctl.spec import StudySpec
from synthctl.stages.analyze import EVENT, TIME, analysis_settings
from tests.synthctl.conftest import CSV, write_spec

SPEC = {
    "study": {"name": "clustering", "seed": 1},
    "data": {"path": str(CSV), "id": "patient_id", "arm": "treated", "trial_value": 1,
             "time": "pfs_weeks", "event": "pfs_event", "time_unit": "weeks"},
    "covariates": ["age"],
    "design": {"method": "weighting", "weights": "att_odds"},
    "analysis": {"landmarks": [24], "landmark_unit": "weeks", "rmst_tau": 52, "bootstrap": 0},
}


def _frame() -> tuple[pd.DataFrame, np.ndarray]:
    d = pd.read_csv(CSV)
    frame = pd.DataFrame({
        cn.PATIENT_ID: d["patient_id"].astype(str),
        cn.ARM: d["treated"].map({1: cn.TRIAL, 0: cn.CONTROL}),
        TIME: d["pfs_weeks"], EVENT: d["pfs_event"],
    })
    return frame, (1.0 + (d.index % 3) / 2.0).to_numpy()  # non-integer: the robust variance


def _hr(frame, w, settings):
    design = AnalysisDesign(w, np.ones(len(w), bool), np.full(len(w), np.nan), "weights")
    return estimate_endpoints(frame, design, settings)["PFS"].to_dict()["hazard_ratio"]


def test_duplicated_patients_are_one_cluster_each():
    """Every patient twice: the two copies of a patient have identical score residuals.

    Clustered on the patient, the sandwich's meat is 4x the per-patient meat instead of 2x
    when the copies are taken as independent, so the clustered SE is sqrt(2) times the
    row-level SE (exactly, up to floating-point summation order).
    """
    settings = analysis_settings(StudySpec.model_validate(SPEC))
    frame, w = _frame()
    twice = pd.concat([frame, frame], ignore_index=True)
    clustered = _hr(twice, np.r_[w, w], settings)
    rows = compare_arms(twice.assign(w=np.r_[w, w]), time_col=TIME, event_col=EVENT,
                        arm_col=cn.ARM, treated_value=cn.TRIAL, weight_col="w",
                        landmarks=[24]).to_dict()["hazard_ratio"]
    assert "cluster=patient_id" in clustered["method"]
    assert clustered["estimate"] == pytest.approx(rows["estimate"], rel=1e-12)
    assert clustered["se_log"] == pytest.approx(rows["se_log"] * math.sqrt(2), rel=1e-9)
    # and close to the one-copy SE (Efron's handling of the duplicated ties differs slightly)
    once = _hr(frame, w, settings)
    assert clustered["se_log"] == pytest.approx(once["se_log"], rel=0.02)


def test_nearest_with_replacement_runs_with_robust_rows(tmp_path: Path):
    """Defect 6: ``method: nearest, replace: true`` used to stop in analyze with "missing
    cluster id" (no matched sets with replacement); now robust per row, as R users fit it."""
    shutil.copy(CSV, tmp_path / "data.csv")
    spec = write_spec(tmp_path)
    text = spec.read_text().replace("design: {method: nearest, ratio: 1,",
                                    "design: {method: nearest, replace: true, ratio: 1,")
    assert "replace: true" in text
    spec.write_text(text)
    result = run_study(spec, tmp_path / "out")
    assert result.exit_code in (0, 1)  # 1 = balance threshold missed, still analysed
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    hr = res["endpoints"]["PFS"]["hazard_ratio"]
    assert hr["estimate"] > 0 and "each row its own cluster" in hr["method"]
