"""analysis.endpoint_alignment through the runner: registry + ADaM (protocol schedule, or the
ADRS visits), neither (block says why), flat file with data.last_progression_free; bad ADRS."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sample_data.paths import SAMPLE_DIR, SAMPLE_REGISTRY, TRIAL_ADSL, TRIAL_ADTTE
from synthctl.runner import run_study

from .conftest import CSV, write_spec

REGISTRY_SPEC = """\
study: {{name: "alignment demo", seed: 20250601}}
trial: {{adsl: {adsl}, adtte: {adtte}, paramcd: PFS{adrs}}}
registry: {{url: "sqlite:///{registry}",
           index: {{after_regimen: platinum_pemetrexed, selection: first}}}}
eligibility: ["age_at_index >= 18", "age_at_index <= 80", "ecog_at_index <= 1",
              "not prior_immunotherapy", "histology in ['epithelioid', 'biphasic']"]
covariates: [age_at_index, sex, ecog_at_index, histology, crs_hipec, pfi_months]
design: {{method: weighting, weights: att_odds, estimand: ATT, balance_threshold: 0.1}}
analysis: {{landmarks: [24], landmark_unit: weeks, rmst_tau: 52,
           endpoint_alignment: {{grid_every: 6, grid_unit: weeks, imputations: 5{extra}}}}}
"""


def _registry_spec(folder: Path, extra: str, adrs: Path | None = None) -> Path:
    path = folder / "s.yaml"
    path.write_text(REGISTRY_SPEC.format(adsl=TRIAL_ADSL, adtte=TRIAL_ADTTE,
                                         registry=SAMPLE_REGISTRY, extra=extra,
                                         adrs="" if adrs is None else f", adrs: {adrs}"))
    return path


def _results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())["endpoints"]["PFS"]


@pytest.mark.parametrize("primary", [False, True])
def test_registry_and_trial_schedule(tmp_path, primary):
    spec = _registry_spec(tmp_path, f", trial_schedule_every: 6, primary: {str(primary).lower()}")
    run_study(spec, tmp_path / "out")
    pfs = _results(tmp_path / "out")
    al = pfs["alignment"]
    assert set(al["estimates"]) == {"right_point", "midpoint", "left_point", "turnbull",
                                    "harmonised"}
    assert al["assessment_gaps"]["trial"]["median"] == 42
    assert al["assessment_gaps"]["control"]["median"] > 70
    assert "not assessed alike" in al["warning"]
    est = al["estimates"]
    s = {k: est[k]["landmarks"][0]["control"]["estimate"] for k in est}
    assert s["harmonised"] < s["right_point"] - 0.05  # the sparse registry imaging is undone
    chosen = "harmonised" if primary else "right_point"
    assert pfs["landmarks"] == est[chosen]["landmarks"]
    assert pfs["hazard_ratio"] == est[chosen]["hazard_ratio"]
    assert al["tipping_point"]["landmarks"][0]["limit"] in ("lower", "upper")
    assert "report.html" in {p.name for p in (tmp_path / "out").iterdir()}
    assert "Endpoint alignment" in (tmp_path / "out" / "report.html").read_text()


def test_no_adrs_no_schedule_says_why(tmp_path):
    spec = _registry_spec(tmp_path, "")
    run_study(spec, tmp_path / "out")
    al = _results(tmp_path / "out")["alignment"]
    assert al["estimates"] is None
    assert "no ADRS file" in al["reason"] and "trial_schedule_every" in al["reason"]


def test_registry_and_adrs(tmp_path):
    """With trial.adrs the trial arm's intervals are its visits (no protocol schedule
    needed); the block says so and the trial's gaps are the visits' (about 42 days). The
    spec's imputation model and visit window reach the estimate."""
    spec = _registry_spec(tmp_path, ", imputation_model: turnbull, grid_window: 0",
                          adrs=SAMPLE_DIR / "trial_adrs.csv")
    run_study(spec, tmp_path / "out")
    al = _results(tmp_path / "out")["alignment"]
    assert "ADRS visits" in al["source"] and "trial_adrs.csv" in al["source"]
    assert set(al["estimates"]) == {"right_point", "midpoint", "left_point", "turnbull",
                                    "harmonised"}
    assert 38 <= al["assessment_gaps"]["trial"]["median"] <= 46
    assert al["estimates"]["harmonised"]["hazard_ratio"]["estimate"] > 0
    method = al["estimates"]["harmonised"]["method"]
    assert "Turnbull NPMLE" in method and "within a 0% visit window" in method


def test_adrs_unknown_subject_is_a_data_error_naming_file_row_column(tmp_path):
    from synthctl.errors import DataError

    adrs = pd.read_csv(SAMPLE_DIR / "trial_adrs.csv")
    extra = adrs.iloc[[0]].assign(USUBJID="NOT-IN-ADSL")
    bad = tmp_path / "bad_adrs.csv"
    pd.concat([adrs, extra]).to_csv(bad, index=False)
    spec = _registry_spec(tmp_path, "", adrs=bad)
    with pytest.raises(DataError) as info:
        run_study(spec, tmp_path / "out")
    msg = str(info.value)
    assert f"bad_adrs.csv, row {len(adrs) + 2}, column USUBJID" in msg
    assert "not in the trial arm" in msg


def test_flat_file_last_progression_free(tmp_path):
    d = pd.read_csv(CSV)
    ev = d["pfs_event"] == 1
    d["lpf"] = np.where(ev, np.maximum(np.ceil(d["pfs_weeks"] / 9) * 9 - 9, 0), d["pfs_weeks"])
    d["lpf"] = np.minimum(d["lpf"], d["pfs_weeks"])
    d.to_csv(tmp_path / "data.csv", index=False)
    spec = write_spec(tmp_path)
    text = spec.read_text().replace("time_unit: weeks}", "time_unit: weeks,\n"
                                    "       last_progression_free: lpf}")
    text = text.replace("bootstrap: 0}", "bootstrap: 0,\n  endpoint_alignment: "
                        "{grid_every: 6, imputations: 3}}")
    spec.write_text(text)
    run_study(spec, tmp_path / "out")
    al = _results(tmp_path / "out")["alignment"]
    assert al["estimates"]["harmonised"]["hazard_ratio"]["estimate"] > 0
    assert al["assessment_gaps"]["trial"]["reason"]


def test_flat_file_without_column_says_why(tmp_path):
    shutil.copy(CSV, tmp_path / "data.csv")
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace(
        "bootstrap: 0}", "bootstrap: 0,\n  endpoint_alignment: {grid_every: 6}}"))
    run_study(spec, tmp_path / "out")
    al = _results(tmp_path / "out")["alignment"]
    assert al["estimates"] is None and "last_progression_free" in al["reason"]


def test_alignment_with_imputed_covariates_is_a_spec_error(tmp_path):
    """The imputed analysis does not run the alignment block: refused when the spec is
    loaded, never silently left out of results.json."""
    from synthctl.errors import SpecError
    from synthctl.specfile import load_spec

    path = _registry_spec(tmp_path, ", trial_schedule_every: 6")
    text = path.read_text().replace("balance_threshold: 0.1}", "balance_threshold: 0.1, "
                                    "missing: impute}")
    path.write_text(text)
    with pytest.raises(SpecError, match="endpoint_alignment is not available"):
        load_spec(path)
