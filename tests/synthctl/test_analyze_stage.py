"""The analyze stage on the flat study: options that used to fail after the design lock."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from synthctl.runner import run_study
from tests.synthctl.conftest import CSV, write_spec


def _run(tmp_path: Path, analysis_extra: str = "", design_extra: str = "") -> tuple[int, dict]:
    shutil.copy(CSV, tmp_path / "data.csv")
    spec = write_spec(tmp_path)
    text = spec.read_text()
    if analysis_extra:
        text = text.replace("analysis: {", "analysis: {" + analysis_extra + ", ")
    if design_extra:
        text = text.replace("design: {", "design: {" + design_extra + ", ")
    spec.write_text(text)
    result = run_study(spec, tmp_path / "out")
    return result.exit_code, json.loads((tmp_path / "out" / "results.json").read_text())


def test_plain_conf_type_runs_after_the_lock(tmp_path: Path):
    """Defect 4: ``conf_type: plain`` passed the spec and failed after the design lock."""
    code, res = _run(tmp_path, "conf_type: plain")
    assert code == 0
    trial = res["endpoints"]["PFS"]["landmarks"][0]["trial"]
    assert "plain-scale" in trial["method"]
    half = 1.959963984540054 * trial["se"]
    assert abs(trial["lower"] - max(0.0, trial["estimate"] - half)) < 1e-9


def test_landmark_beyond_follow_up_is_a_warning(tmp_path: Path):
    """Defect 12: a landmark beyond the follow-up of the primary endpoint gave NA silently."""
    shutil.copy(CSV, tmp_path / "data.csv")
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace("landmarks: [24]", "landmarks: [24, 500]"))
    result = run_study(spec, tmp_path / "out")
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    late = res["endpoints"]["PFS"]["landmarks"][1]
    assert late["trial"]["estimate"] is None and "beyond the last follow-up" in \
        late["trial"]["reason"]
    assert any("rate at 500 weeks is not estimable" in w for w in res["warnings"])
    messages = [w["message"] for w in result.manifest["warnings"]]
    assert any("rate at 500 weeks is not estimable" in m for m in messages)


def test_failed_sensitivity_is_reported_not_silent(tmp_path: Path, monkeypatch):
    """Issue 20: a sensitivity analysis that cannot be estimated was a silent ``{"error": ...}``
    in results.json; now ``status: not_estimable`` with the reason, a results.json warning and
    a manifest warning, while the primary analysis stands."""
    from matching import MatchingError
    from synthctl.stages import analyze

    real = analyze.fit_design

    def failing(frame, spec, design=None, **kw):
        if design is not None and design.method != spec.design.method:
            raise MatchingError("the alternative design did not converge")
        return real(frame, spec, design, **kw)

    monkeypatch.setattr(analyze, "fit_design", failing)
    code, res = _run(tmp_path)
    assert code in (0, 1)  # 1 = the flat study's balance threshold, unrelated
    alt = res["sensitivity"]["alternative_design"]
    assert alt["status"] == "not_estimable" and "did not converge" in alt["reason"]
    assert "error" not in alt
    assert res["sensitivity"]["naive"]["status"] == "estimated"
    assert any("alternative_design" in w and "did not converge" in w for w in res["warnings"])
    assert res["endpoints"]["PFS"]["hazard_ratio"]["estimate"] > 0


def test_methods_text_names_missing_data_and_balance_failure():
    """Defect 16: the methods paragraph says how missing covariates were handled and that
    balance failed, with readable covariate names."""
    from synthctl.methods import methods_paragraph
    from synthctl.spec import StudySpec

    spec = StudySpec.model_validate({
        "study": {"name": "m", "seed": 1},
        "data": {"path": str(CSV), "id": "patient_id", "arm": "treated", "trial_value": 1,
                 "time": "pfs_weeks", "event": "pfs_event", "time_unit": "weeks"},
        "covariates": ["age_at_index", "pci"],
        "design": {"method": "nearest", "missing": "indicator"},
    })
    text = methods_paragraph(spec, {"counts": {}, "design": {"balance_passed": False,
                                                             "max_abs_smd": 0.264}})
    assert "missing-value indicators" in text and "age at index" in text
    assert "Balance was not reached" in text and "0.264" in text


def test_missing_indicator_smds_reach_the_baseline_table():
    """Defect 16: the love plot shows the missing indicators' SMDs; the table left them blank."""
    import pandas as pd

    from synthctl.stages.report import with_missing_smds

    base = pd.DataFrame([{"variable": "pci", "smd_before": "0.100", "smd_after": "0.010"},
                         {"variable": "pci: missing", "smd_before": "", "smd_after": ""}])
    out = with_missing_smds(base, {"pci_missing": {"smd_before": -0.31, "smd_after": 0.02}})
    assert out.loc[1, "smd_before"] == "-0.310" and out.loc[1, "smd_after"] == "0.020"
    assert out.loc[0, "smd_before"] == "0.100"
