"""The response endpoint wired into a study run (flat file + registry/ADRS), issue 15."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from reports.binary import compare_proportions
from synthctl.runner import run_study
from tests.synthctl.conftest import CSV

SPEC = """\
study: {{name: "flat response", seed: 1}}
data: {{path: data.csv, id: patient_id, arm: treated, trial_value: 1,
       time: pfs_weeks, event: pfs_event, time_unit: weeks, response: {response}}}
eligibility: ["ecog <= 1"]
covariates: [age, female, ecog, histology, pci, crs_hipec, pfi_months]
design: {{method: nearest, ratio: 1, caliper: 0.2, caliper_scale: logit,
         balance_threshold: 0.25}}
analysis: {{landmarks: [24], landmark_unit: weeks, null_rate: 0.35, rmst_tau: 52,
           simon: {{p0: 0.35, p1: 0.6}}}}
"""


@pytest.fixture(scope="module")
def flat_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resp")
    data = pd.read_csv(CSV)
    rng = np.random.default_rng(7)
    data["resp"] = rng.binomial(1, np.where(data["treated"] == 1, 0.5, 0.3))
    data.to_csv(tmp / "data.csv", index=False)
    spec = tmp / "study.yaml"
    spec.write_text(SPEC.format(response="resp"))
    result = run_study(spec, tmp / "out")
    assert result.exit_code == 0
    return data, tmp / "out"


def test_flat_file_response_endpoint(flat_run):
    data, out = flat_run
    res = json.loads((out / "results.json").read_text())
    orr = res["endpoints"]["ORR"]
    assert set(orr) >= {"proportion", "trial_vs_null", "simon"}
    assert {"PFS", "ORR"} <= set(res["endpoints"])
    # the same numbers as the estimator on the locked cohort (matched sets as clusters)
    cohort = pd.read_csv(out / "cohort.csv", dtype={"patient_id": str, "match_id": str})
    frame = cohort[cohort["included"]].merge(
        data.assign(patient_id=data["patient_id"].astype(str))[["patient_id", "resp"]],
        on="patient_id")
    direct = compare_proportions(frame, response_col="resp", arm_col="arm",
                                 treated_value="trial", weight_col="weight",
                                 cluster_col="match_id")
    assert orr["proportion"]["difference"]["estimate"] == pytest.approx(
        direct.difference.estimate, abs=1e-12)
    assert orr["proportion"]["difference"]["se"] == pytest.approx(direct.difference.se,
                                                                  rel=1e-9)
    simon = orr["simon"]
    assert (simon["r1"], simon["n1"], simon["r"], simon["n"]) == (3, 9, 13, 27)
    assert simon["n_stage1"] == 9 and simon["responses"] <= simon["n_analysed"]
    assert orr["trial_vs_null"]["null_rate"] == 0.35


def test_bad_response_column_is_named(tmp_path):
    data = pd.read_csv(CSV)
    data["resp"] = 0
    data.loc[5, "resp"] = 2
    data.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "study.yaml").write_text(SPEC.format(response="resp"))
    from synthctl.errors import SynthctlError

    with pytest.raises(SynthctlError, match=r"'resp'.*0 or 1.*row\(s\) 6"):
        run_study(tmp_path / "study.yaml", tmp_path / "out")


def test_spec_requires_adrs_for_registry_response(tmp_path):
    from synthctl.specfile import load_spec

    shutil.copy(CSV, tmp_path / "data.csv")
    text = SPEC.format(response="null").replace(
        "simon:", "response: {confirmed: true}, simon:")
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(Exception, match="data.response"):
        load_spec(tmp_path / "s.yaml")
