"""Several rows per patient (all index lines): the comparison clusters on the patient."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from connectors import columns as cn
from reports.compare import compare_arms
from synthctl.spec import StudySpec
from synthctl.stages.analyze import CLUSTER, EVENT, TIME, WEIGHT, _compare, _compare_kwargs
from tests.synthctl.conftest import CSV

SPEC = {
    "study": {"name": "clustering", "seed": 1},
    "data": {"path": str(CSV), "id": "patient_id", "arm": "treated", "trial_value": 1,
             "time": "pfs_weeks", "event": "pfs_event", "time_unit": "weeks"},
    "covariates": ["age"],
    "design": {"method": "weighting", "weights": "att_odds"},
    "analysis": {"landmarks": [24], "landmark_unit": "weeks", "rmst_tau": 52, "bootstrap": 0},
}


def _frame() -> pd.DataFrame:
    d = pd.read_csv(CSV)
    return pd.DataFrame({
        cn.PATIENT_ID: d["patient_id"].astype(str),
        cn.ARM: d["treated"].map({1: cn.TRIAL, 0: cn.CONTROL}),
        TIME: d["pfs_weeks"], EVENT: d["pfs_event"],
        WEIGHT: 1.0 + (d.index % 3) / 2.0,  # non-integer weights: the robust variance
        CLUSTER: float("nan"),
    })


def test_duplicated_patients_are_one_cluster_each():
    """Every patient twice: the two copies of a patient have identical score residuals.

    Clustered on the patient, the sandwich's meat is 4x the per-patient meat instead of 2x
    when the copies are taken as independent, so the clustered SE is sqrt(2) times the
    row-level SE (exactly, up to floating-point summation order).
    """
    spec = StudySpec.model_validate(SPEC)
    frame = _frame()
    twice = pd.concat([frame, frame], ignore_index=True)
    clustered = _compare(twice, spec, cluster=False).to_dict()["hazard_ratio"]
    rows = compare_arms(twice, weight_col=WEIGHT, cluster_col=None,
                        **_compare_kwargs(spec)).to_dict()["hazard_ratio"]
    assert clustered["estimate"] == pytest.approx(rows["estimate"], rel=1e-12)
    assert clustered["se_log"] == pytest.approx(rows["se_log"] * math.sqrt(2), rel=1e-9)
    # and close to the one-copy SE (Efron's handling of the duplicated ties differs slightly)
    once = _compare(frame, spec, cluster=False).to_dict()["hazard_ratio"]
    assert clustered["se_log"] == pytest.approx(once["se_log"], rel=0.02)
