"""The response endpoint wired into a study run (flat file + registry/ADRS), issue 15."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

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
           bootstrap: {bootstrap}, simon: {{p0: 0.35, p1: 0.6, endpoint: ORR}}}}
"""


@pytest.fixture(scope="module")
def flat_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resp")
    data = pd.read_csv(CSV)
    rng = np.random.default_rng(7)
    data["resp"] = rng.binomial(1, np.where(data["treated"] == 1, 0.5, 0.3))
    data.to_csv(tmp / "data.csv", index=False)
    spec = tmp / "study.yaml"
    spec.write_text(SPEC.format(response="resp", bootstrap=0))
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
    assert "no response dates" in orr["duration_of_response"]["error"]


def test_bad_response_column_is_named(tmp_path):
    data = pd.read_csv(CSV)
    data["resp"] = 0
    data.loc[5, "resp"] = 2
    data.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "study.yaml").write_text(SPEC.format(response="resp", bootstrap=0))
    from synthctl.errors import SynthctlError

    with pytest.raises(SynthctlError, match=r"'resp'.*0 or 1.*row\(s\) 6"):
        run_study(tmp_path / "study.yaml", tmp_path / "out")


def test_spec_requires_adrs_for_registry_response(tmp_path):
    from synthctl.specfile import load_spec

    shutil.copy(CSV, tmp_path / "data.csv")
    text = SPEC.format(response="null", bootstrap=0).replace(
        "simon:", "response: {confirmed: true}, simon:")
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(Exception, match=r"data\.response"):
        load_spec(tmp_path / "s.yaml")


@pytest.mark.slow
def test_registry_and_adrs_response_on_the_sample_data(tmp_path):
    """Sample registry (tumour assessments in SQL) + a hand-made ADRS for the sample trial."""
    import yaml

    from sample_data import paths

    src = Path(paths.__file__).parent
    for name in ("trial_adsl.csv", "trial_adtte.csv", "renape_sample.sqlite"):
        shutil.copy(src / name, tmp_path / name)
    adsl = pd.read_csv(tmp_path / "trial_adsl.csv")
    rng = np.random.default_rng(3)
    adtte = pd.read_csv(tmp_path / "trial_adtte.csv").query("PARAMCD == 'PFS'")
    pfs_days = dict(zip(adtte["USUBJID"], adtte["AVAL"], strict=True))
    rows = []
    for sid, start in zip(adsl["USUBJID"], pd.to_datetime(adsl["TRTSDT"]), strict=True):
        codes = rng.choice(["PR", "SD", "NE"], size=3, p=[0.45, 0.4, 0.15])
        for week, code in zip((8, 16, 24), codes, strict=True):
            if 7 * week < pfs_days[sid]:  # visits before progression, consistent with ADTTE
                rows.append((sid, "OVR", code, (start + pd.Timedelta(weeks=week)).date()))
    pd.DataFrame(rows, columns=["USUBJID", "PARAMCD", "AVALC", "ADT"]).to_csv(
        tmp_path / "trial_adrs.csv", index=False)
    spec = yaml.safe_load((src / "demo_study.yaml").read_text())
    spec["trial"]["adrs"] = "trial_adrs.csv"
    spec["analysis"].update(bootstrap=0, response={"confirmed": True},
                            simon={"p0": 0.35, "p1": 0.6, "endpoint": "ORR"})
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(spec))
    result = run_study(tmp_path / "study.yaml", tmp_path / "out")
    assert result.exit_code in (0, 1)  # 1: a balance check failed, results still written
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    orr = res["endpoints"]["ORR"]["proportion"]
    assert orr["n"]["trial"] == res["counts"]["trial_selected"]
    assert orr["n"]["control"] <= res["counts"]["control_selected"]
    # the trial's responders recomputed by hand: a PR confirmed >= 28 days later before PD
    expected = 0
    for _sid, g in pd.DataFrame(rows, columns=["id", "p", "code", "adt"]).groupby("id"):
        prs = [c for c in g["code"] if c == "PR"]
        expected += int(len(prs) >= 2)
    assert orr["responders"]["trial"] == expected
    assert res["endpoints"]["ORR"]["simon"]["n"] == 27
    dor = res["endpoints"]["ORR"]["duration_of_response"]
    assert "error" not in dor, dor
    assert dor["n_responders"]["trial"] == expected and dor["unit"] == "weeks"
    assert set(dor["median"]) <= {"trial", "control"} and "trial" in dor["median"]


def test_bootstrap_replaces_the_analytic_limits(tmp_path):
    data = pd.read_csv(CSV)
    data["resp"] = np.random.default_rng(5).binomial(1, 0.4, len(data))
    data.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "study.yaml").write_text(SPEC.format(response="resp", bootstrap=20))
    assert run_study(tmp_path / "study.yaml", tmp_path / "out").exit_code == 0
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    orr = res["endpoints"]["ORR"]
    diff = orr["proportion"]["difference"]
    assert diff["method"].startswith("bootstrap") and "analytic" in diff
    assert orr["proportion"]["ratio"]["analytic"]["se_log"] > 0
    # one bootstrap for every endpoint (analyze_study): the binary statistics are typed
    # StatKeys of the ORR endpoint, resampled in the same replicates as PFS's
    boot = res["bootstrap"]
    assert boot["n_boot"] == 20
    stats = {(s["endpoint"], s["statistic"]): s for s in boot["statistics"]}
    assert {("ORR", "proportion_trial"), ("ORR", "proportion_control"),
            ("ORR", "proportion_difference"), ("ORR", "log_ratio"),
            ("ORR", "log_odds_ratio"), ("PFS", "log_hr")} <= set(stats)
    assert diff["se"] == pytest.approx(stats["ORR", "proportion_difference"]["se"])
    assert orr["proportion"]["ratio"]["lower"] == pytest.approx(
        np.exp(stats["ORR", "log_ratio"]["lower"]))


def test_response_column_never_reaches_the_design_input(flat_run):
    _, out = flat_run
    covs = pd.read_parquet(out / "covariates.parquet")
    assert "resp" not in covs.columns


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda t: t.replace("response: resp", "response: nosuchcol"),
         r"data\.response.*'nosuchcol' not in"),
        (lambda t: t.replace("covariates: [age,", "covariates: [resp, age,"),
         r"unknown covariate 'resp'"),
        (lambda t: t.replace('eligibility: ["ecog <= 1"]', 'eligibility: ["resp == 0"]'),
         r"resp"),
    ],
)
def test_response_column_is_checked_at_spec_load(tmp_path, edit, match):
    from synthctl.errors import SpecError
    from synthctl.specfile import load_spec

    data = pd.read_csv(CSV).assign(resp=0)
    data.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "s.yaml").write_text(edit(SPEC.format(response="resp", bootstrap=0)))
    with pytest.raises(SpecError, match=match):
        load_spec(tmp_path / "s.yaml")


def test_os_primary_simon_is_alive_at_the_landmark(tmp_path):
    """analysis.simon on an OS primary: "alive at the landmark", patients censored before it
    listed and left out (as for the PFS rate)."""
    data = pd.read_csv(CSV)
    data.to_csv(tmp_path / "data.csv", index=False)
    text = SPEC.format(response="null", bootstrap=0).replace(
        "analysis: {", "analysis: {endpoint: OS, ").replace("endpoint: ORR", "endpoint: primary")
    (tmp_path / "study.yaml").write_text(text)
    assert run_study(tmp_path / "study.yaml", tmp_path / "out").exit_code == 0
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["primary_endpoint"] == "OS" and list(res["endpoints"]) == ["OS"]
    simon = res["endpoints"]["OS"]["simon"]
    assert simon["outcome"] == "alive at 24 weeks"
    cohort = pd.read_csv(tmp_path / "out" / "cohort.csv", dtype={"patient_id": str})
    trial = cohort[(cohort["arm"] == "trial") & cohort["included"]].merge(
        data.assign(patient_id=data["patient_id"].astype(str)), on="patient_id")
    censored = (trial["pfs_event"] == 0) & (trial["pfs_weeks"] < 24)
    assert simon["n_censored_before_landmark"] == int(censored.sum())
    assert simon["n_evaluable"] == len(trial) - int(censored.sum())


def test_simon_p0_is_the_null_rate_of_its_own_endpoint_only(tmp_path):
    """With the Simon design on the PFS rate, its p0 (a PFS rate) is not ORR's null rate."""
    data = pd.read_csv(CSV)
    data["resp"] = np.random.default_rng(2).binomial(1, 0.3, len(data))
    data.to_csv(tmp_path / "data.csv", index=False)
    text = SPEC.format(response="resp", bootstrap=0).replace("endpoint: ORR",
                                                             "endpoint: primary")
    (tmp_path / "study.yaml").write_text(text)
    assert run_study(tmp_path / "study.yaml", tmp_path / "out").exit_code == 0
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["endpoints"]["ORR"]["trial_vs_null"] is None
    assert res["endpoints"]["ORR"]["simon"] is None
    assert res["endpoints"]["PFS"]["simon"]["outcome"] == "event-free at 24 weeks"
