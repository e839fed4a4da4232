"""Landmarks and the RMST horizon checked against each arm's potential follow-up (issue 14,
defect 2): data cut-off minus index date, before the design is locked and before any outcome
is read. The registry is a small simulated one (sample_data's simulator) in SQLite."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from connectors.followup import FollowUpError, horizon_problem, potential_follow_up
from connectors.trial import load_trial_arm
from synthctl.cli import app
from synthctl.spec import StudySpec
from synthctl.stages._followup import design_follow_up, follow_up_record

cli = CliRunner()

SPEC = """\
study: {{name: "follow-up study", seed: 20250601}}
trial: {{adsl: adsl.csv, adtte: adtte.csv, paramcd: PFS{trial_cutoff}}}
registry:
  url: "sqlite:///registry.sqlite"
  index: {{after_regimen: platinum_pemetrexed, selection: first}}
{registry_cutoff}eligibility: ["age_at_index >= 18", "ecog_at_index <= 1"]
covariates: [age_at_index, sex, ecog_at_index, histology, crs_hipec, pfi_months]
design: {{method: weighting, weights: att_odds, estimand: ATT, balance_threshold: 0.5}}
analysis: {{landmarks: {landmarks}, landmark_unit: weeks, rmst_tau: {tau}}}
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    from sample_data.simulator import SimulationConfig, simulate_scenario
    from sample_data.writer import write_registry_sqlite

    sc = simulate_scenario(SimulationConfig(seed=7, n_registry=400, n_trial=27,
                                            truth_pool=2000, truth_draws=2000))
    folder = tmp_path_factory.mktemp("followup")
    write_registry_sqlite(sc.registry_tables, folder / "registry.sqlite")
    sc.trial_adsl.to_csv(folder / "adsl.csv", index=False)
    sc.trial_adtte.to_csv(folder / "adtte.csv", index=False)
    return folder


def _trial_dates(folder: Path) -> pd.Series:
    return pd.to_datetime(pd.read_csv(folder / "adsl.csv")["TRTSDT"])


def _study(source: Path, dest: Path, *, tau: float, landmarks=(24,), trial_cutoff=None,
           registry_cutoff="2024-12-31", blind: bool = True) -> Path:
    """A copy of the study; ``blind``: the registry's outcome tables are dropped, so any
    read of an outcome would fail."""
    for name in ("registry.sqlite", "adsl.csv", "adtte.csv"):
        shutil.copy(source / name, dest / name)
    if blind:
        con = sqlite3.connect(dest / "registry.sqlite")
        con.execute("DROP TABLE tumour_assessments")
        con.execute("DROP TABLE follow_up")
        con.commit()
        con.close()
    spec = dest / "study.yaml"
    spec.write_text(SPEC.format(
        trial_cutoff=f", data_cutoff: {trial_cutoff}" if trial_cutoff else "",
        registry_cutoff=f"  data_cutoff: {registry_cutoff}\n" if registry_cutoff else "",
        landmarks=list(landmarks), tau=tau))
    return spec


def _max_weeks(dates: pd.Series, cutoff: str) -> float:
    return (pd.Timestamp(cutoff) - dates.min()).days / 7


def test_tau_beyond_the_trial_follow_up_fails_at_extract_before_any_outcome(source, tmp_path):
    """The trial's cut-off a week after its last index date: tau a few weeks beyond the
    largest potential follow-up is an exit-2 error at extract, naming tau, the arm and the
    follow-up, on a registry without outcome tables; nothing of the design is written."""
    dates = _trial_dates(source)
    cutoff = (dates.max() + pd.Timedelta(days=7)).date().isoformat()
    longest = _max_weeks(dates, cutoff)
    spec = _study(source, tmp_path, tau=round(longest + 3), trial_cutoff=cutoff)
    res = cli.invoke(app, ["extract", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert f"analysis.rmst_tau = {round(longest + 3)} weeks" in text
    assert f"trial arm, {longest:.1f} weeks" in text
    assert f"data cut-off {cutoff}, from trial.data_cutoff" in text
    assert not (tmp_path / "o" / "design.json").exists()
    assert not (tmp_path / "o" / "covariates.parquet").exists()


def test_tau_within_follow_up_passes_and_the_design_lock_records_it(source, tmp_path):
    """Within follow-up, extract and design run blind; design.json records each arm's cut-off,
    its source and largest potential follow-up, on the patients the design keeps."""
    dates = _trial_dates(source)
    cutoff = (dates.max() + pd.Timedelta(days=7)).date().isoformat()
    longest = _max_weeks(dates, cutoff)
    spec = _study(source, tmp_path, tau=round(longest - 3), trial_cutoff=cutoff)
    for stage in ("extract", "design"):
        res = cli.invoke(app, [stage, str(spec), "--out", str(tmp_path / "o")])
        assert res.exit_code in (0, 1), res.output  # 1: balance, not the horizon
    design = json.loads((tmp_path / "o" / "design.json").read_text())
    fu = design["follow_up"]
    assert fu["population"] == "the patients the design keeps" and fu["unit"] == "weeks"
    trial = fu["arms"]["trial"]
    assert trial["checked"] and trial["cutoff_source"] == "trial.data_cutoff"
    assert trial["data_cutoff"] == cutoff and trial["n"] == len(dates)
    assert trial["max_potential_follow_up"] == pytest.approx(longest, abs=1e-6)
    tau_days = 7 * round(longest - 3)
    reach = int(((pd.Timestamp(cutoff) - dates).dt.days >= tau_days).sum())
    assert trial["n_potentially_followed_to_rmst_tau"] == reach
    assert fu["arms"]["control"]["cutoff_source"] == "registry.data_cutoff"
    extract = json.loads((tmp_path / "o" / "extract.json").read_text())
    assert extract["follow_up"]["population"] == "every extracted patient"


def test_adsl_dcutdt_is_the_trial_cut_off_and_a_landmark_is_checked(source, tmp_path):
    """ADSL DCUTDT gives the trial's cut-off when the spec has none; a landmark beyond it fails."""
    dates = _trial_dates(source)
    cutoff = (dates.max() + pd.Timedelta(days=30)).date()
    spec = _study(source, tmp_path, tau=10, landmarks=(24, 400), registry_cutoff=None)
    adsl = pd.read_csv(tmp_path / "adsl.csv")
    adsl["DCUTDT"] = cutoff.isoformat()
    adsl.to_csv(tmp_path / "adsl.csv", index=False)
    res = cli.invoke(app, ["extract", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "analysis.landmarks[1] = 400 weeks" in text
    assert "trial arm" in text and "from ADSL DCUTDT" in text
    assert load_trial_arm(tmp_path / "adsl.csv", tmp_path / "adtte.csv").attrs[
        "data_cutoff"] == cutoff


def test_dcutdt_must_be_one_date(source, tmp_path):
    from connectors.errors import TrialDataError

    _study(source, tmp_path, tau=10)
    adsl = pd.read_csv(tmp_path / "adsl.csv")
    adsl["DCUTDT"] = "2024-03-31"
    adsl.loc[3, "DCUTDT"] = "2024-04-30"
    adsl.to_csv(tmp_path / "adsl.csv", index=False)
    with pytest.raises(TrialDataError, match=r"row 5, column DCUTDT: 2024-04-30 differs from "
                                             r"2024-03-31"):
        load_trial_arm(tmp_path / "adsl.csv", tmp_path / "adtte.csv")


def test_patients_indexed_after_the_registry_cut_off_are_an_error(source, tmp_path):
    spec = _study(source, tmp_path, tau=10, registry_cutoff="2015-01-01")
    res = cli.invoke(app, ["extract", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "patient(s) of the control arm have an index date after its data cut-off " \
           "2015-01-01 (registry.data_cutoff)" in text


def test_without_a_cut_off_the_record_says_unchecked_and_the_manifest_warns(source, tmp_path):
    spec = _study(source, tmp_path, tau=52, registry_cutoff=None, blind=True)
    res = cli.invoke(app, ["extract", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    info = json.loads((tmp_path / "o" / "extract.json").read_text())["follow_up"]
    assert info["arms"]["trial"] == {"arm": "trial", "data_cutoff": None, "checked": False}
    assert info["cutoffs"] == {"trial": None, "control": None}
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    msgs = [w["message"] for w in manifest["warnings"] if w["kind"] == "follow_up"]
    assert len(msgs) == 1 and "rmst_tau = 52 weeks not checked" in msgs[0]
    assert "trial and control arm(s)" in msgs[0]


def _spec_obj(tau=52.0, landmarks=(24.0,)) -> StudySpec:
    return StudySpec.model_validate(
        {"study": {"name": "x", "seed": 1},
         "trial": {"adsl": "a.csv", "adtte": "b.csv"},
         "registry": {"url": "sqlite:///r.sqlite"},
         "covariates": ["age_at_index"],
         "analysis": {"landmarks": list(landmarks), "rmst_tau": tau}},
        context={"check_files": False})


def test_design_check_uses_only_the_kept_patients():
    """A matched design that keeps only late-indexed controls: the pool passes, the kept
    controls do not (their largest potential follow-up is shorter than tau)."""
    cut = {"trial": {"date": "2024-12-31", "source": "trial.data_cutoff"},
           "control": {"date": "2024-12-31", "source": "registry.data_cutoff"}}
    frame = pd.DataFrame({
        "arm": ["trial"] * 3 + ["control"] * 4,
        "index_date": pd.to_datetime(["2022-01-01", "2022-06-01", "2023-01-01",
                                      "2015-01-01", "2016-01-01", "2024-06-01", "2024-07-01"]),
    })
    spec = _spec_obj(tau=52.0)
    record, _ = follow_up_record(spec, frame, cut, stage="extract", population="all")
    assert record["arms"]["control"]["n"] == 4
    kept = [True, True, True, False, False, True, True]
    from synthctl.errors import DataError

    with pytest.raises(DataError, match=r"design stage \(the patients the design keeps\): "
                                        r"analysis.rmst_tau = 52 weeks is beyond the largest "
                                        r"potential follow-up of the control arm, 30.4 weeks"):
        design_follow_up(spec, {"follow_up": {"cutoffs": cut}}, frame, kept)
    assert design_follow_up(spec, {}, frame, kept) is None  # flat file: nothing recorded


def test_potential_follow_up_and_horizon_problem():
    dates = pd.Series(pd.to_datetime(["2024-01-01", "2024-03-01", "2024-12-01"]))
    fu = potential_follow_up(dates, dt.date(2024, 12, 31), arm="trial", cutoff_source="spec")
    assert fu.max_days == 365 and fu.median_days == 305 and fu.n == 3
    assert fu.n_reaching(305) == 2 and fu.n_reaching(366) == 0
    assert fu.max_in("weeks") == pytest.approx(365 / 7)
    assert horizon_problem("tau", 52, "weeks", fu) is None  # 52 weeks = 364 days <= 365
    assert "tau = 53 weeks is beyond" in horizon_problem("tau", 53, "weeks", fu)
    assert "2024-01-01" not in json.dumps(fu.to_dict("weeks"))  # no patient's date
    with pytest.raises(FollowUpError, match="1 patient"):
        potential_follow_up(dates, dt.date(2024, 11, 1), arm="trial", cutoff_source="spec")
    with pytest.raises(FollowUpError, match="no index date"):
        potential_follow_up(pd.Series([pd.NaT]), dt.date(2024, 11, 1), arm="trial",
                            cutoff_source="spec")


def test_arm_cutoffs_spec_wins_over_dcutdt_with_a_warning():
    from synthctl.stages._followup import arm_cutoffs

    spec = StudySpec.model_validate(
        {"study": {"name": "x", "seed": 1},
         "trial": {"adsl": "a.csv", "adtte": "b.csv", "data_cutoff": "2024-03-31"},
         "registry": {"url": "sqlite:///r.sqlite", "data_cutoff": "2024-12-31"},
         "covariates": ["age_at_index"]},
        context={"check_files": False})
    cuts, warnings = arm_cutoffs(spec, dt.date(2024, 2, 29))
    assert cuts == {"trial": {"date": "2024-03-31", "source": "trial.data_cutoff"},
                    "control": {"date": "2024-12-31", "source": "registry.data_cutoff"}}
    assert warnings == ["trial.data_cutoff 2024-03-31 differs from ADSL DCUTDT 2024-02-29; "
                        "the spec's is used"]
    plain = spec.model_copy(update={"trial": spec.trial.model_copy(update={"data_cutoff": None})})
    cuts, warnings = arm_cutoffs(plain, dt.date(2024, 2, 29))
    assert cuts["trial"] == {"date": "2024-02-29", "source": "ADSL DCUTDT"} and not warnings
