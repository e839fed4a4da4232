"""Fixtures for the runner/CLI tests: a flat-file study on the pm_external_control_a data.

The data set (60 trial + 900 registry patients, PFS in weeks) and R's numbers for it live in
tests/fixtures/pm_external_control_a/ (made with MatchIt 4.7.2 / survival 3.5-3).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pm_external_control_a"
CSV = FIXTURE / "pm_external_control_a.csv"
REFERENCE = FIXTURE / "pm_external_control_a_reference.json"

SPEC = """\
study: {{name: "flat demo", seed: 1}}
data: {{path: {csv}, id: patient_id, arm: treated, trial_value: 1,
       time: pfs_weeks, event: pfs_event, time_unit: weeks}}
eligibility: ["ecog <= 1"]
covariates: [age, female, ecog, histology, pci, crs_hipec, pfi_months]
design: {{method: nearest, ratio: 1, caliper: 0.2, caliper_scale: logit,
         balance_threshold: {threshold}}}
analysis: {{landmarks: [24], landmark_unit: weeks, null_rate: 0.35, rmst_tau: 52,
           bootstrap: {bootstrap}}}
"""


def write_spec(folder: Path, *, csv: str = "data.csv", threshold: float = 0.25,
               bootstrap: int = 0, name: str = "study.yaml") -> Path:
    """A flat-file spec in ``folder`` (its data path relative to the spec)."""
    path = folder / name
    path.write_text(SPEC.format(csv=csv, threshold=threshold, bootstrap=bootstrap))
    return path


@pytest.fixture
def flat_study(tmp_path: Path) -> Path:
    """A spec + a copy of the CSV in a fresh folder; returns the spec path."""
    shutil.copy(CSV, tmp_path / "data.csv")
    return write_spec(tmp_path)
