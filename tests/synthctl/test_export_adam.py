"""``synthctl export-adam``: ADSL/ADTTE (XPT v5 + CSV), define table, manifest, round trip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from typer.testing import CliRunner

from connectors import columns as cn
from connectors.registry import RegistryConnector
from connectors.trial import DEFAULT_VARIABLE_MAP, load_trial_arm
from synthctl import adam_metadata as am
from synthctl import outdir
from synthctl.adam_export import STAGE, analytic_result, export_adam
from synthctl.atomic import read_marker
from synthctl.cli import app
from synthctl.errors import DataError, DesignChangedError, OutputFolderError
from synthctl.reanalysis import checks_for, verify_checks
from synthctl.runner import run_study
from synthctl.specfile import load_spec
from tests.synthctl.adam_runs import (
    alignment_run,
    copy_run,
    demo_run,
    imputed_run,
    matched_run,
    matched_spec,
    multi_line_run,
    response_run,
)

pytestmark = pytest.mark.slow
cli = CliRunner()
FILES = (outdir.ADSL_XPT, outdir.ADTTE_XPT, outdir.ADSL_CSV, outdir.ADTTE_CSV,
         outdir.ADAM_DEFINE, outdir.REANALYSIS_R)


def _manifest(run: Path) -> dict:
    return json.loads((run / outdir.MANIFEST).read_text())


def test_files_are_listed_with_their_hash_in_the_manifest_and_the_marker():
    run = demo_run()
    stage = _manifest(run)["stages"][STAGE]
    assert sorted(stage["artifacts"]) == sorted(FILES)
    for name, digest in stage["artifacts"].items():
        assert outdir.sha256_file(run / name) == digest, name
    assert stage["results_sha256"] == outdir.sha256_file(run / outdir.RESULTS)
    assert set(FILES) <= set(read_marker(run)["files"])  # synthctl owns them


def test_xpt_is_version_5_with_the_define_tables_labels():
    run = demo_run()
    define = pd.read_csv(run / outdir.ADAM_DEFINE, keep_default_na=False)
    for dataset, name in (("ADSL", outdir.ADSL_XPT), ("ADTTE", outdir.ADTTE_XPT)):
        assert (run / name).read_bytes()[:80].startswith(b"HEADER RECORD*******LIBRARY HEADER")
        frame, meta = pyreadstat.read_xport(run / name)
        rows = define[define["dataset"] == dataset]
        assert list(frame.columns) == rows["variable"].tolist()
        assert meta.column_names_to_labels == dict(zip(rows["variable"], rows["label"],
                                                       strict=True))
        assert all(len(v) <= 8 for v in frame.columns)
    assert set(define.columns) == {"dataset", "variable", "label", "type", "format", "origin",
                                   "derivation"}
    assert (define["derivation"].str.len() > 0).all()


def test_adsl_holds_the_design_and_only_pseudonymous_ids():
    run = demo_run()
    adsl = pd.read_sas(run / outdir.ADSL_XPT, format="xport", encoding="utf-8")
    cohort = outdir.read_cohort(run)
    assert adsl[am.USUBJID].tolist() == cohort[cn.PATIENT_ID].tolist()
    assert (adsl[am.ARM] == cohort[cn.ARM]).all()
    assert ((adsl[am.EXTCTLFL] == "Y") == (cohort[cn.ARM] == cn.CONTROL)).all()
    np.testing.assert_array_equal(adsl[am.ANLWT], cohort[outdir.WEIGHT])
    np.testing.assert_array_equal(adsl[am.PSCORE], cohort[outdir.PS])
    analysed = cohort[outdir.INCLUDED] & (cohort[outdir.WEIGHT] > 0)
    assert ((adsl[am.ANL01FL] == "Y") == analysed).all()
    spec = load_spec(_manifest(run)["spec"]["path"]).spec
    assert [DEFAULT_VARIABLE_MAP[c] for c in spec.covariates] == [
        v for v in adsl.columns
        if v in DEFAULT_VARIABLE_MAP.values() and v not in ("TRTSDT", "USUBJID")]
    # no registry line, centre or other key: USUBJID is the only identifier
    assert not {"LINE_ID", "SITEID", "CENTRE_ID"} & set(adsl.columns)


def _reference_frame(run: Path) -> tuple[pd.DataFrame, object]:
    """Covariates at index (covariates.parquet) with outcomes read independently of the export:
    the trial's own ADTTE and the registry connector."""
    loaded = load_spec(_manifest(run)["spec"]["path"])
    spec = loaded.spec
    covs = pd.read_parquet(run / outdir.COVARIATES)
    trial = load_trial_arm(spec.trial.adsl, spec.trial.adtte, paramcd="PFS")
    keys = covs.loc[covs[cn.ARM] == cn.CONTROL, [cn.PATIENT_ID, cn.LINE_ID, cn.INDEX_DATE]]
    with RegistryConnector(spec.registry.url) as conn:
        ctrl = conn.outcomes(keys)
    out = pd.concat([trial.set_index(cn.PATIENT_ID)[list(cn.OUTCOME_COLUMNS)],
                     ctrl.set_index(cn.PATIENT_ID)[list(cn.OUTCOME_COLUMNS)]])
    ref = covs.join(out, on=cn.PATIENT_ID)
    return ref, spec


@pytest.mark.parametrize("kind", ["xpt", "csv"])
def test_round_trip_through_the_trial_adam_loader(kind: str):
    """connectors.trial reads the export back into the analysis frame: same patients, index
    dates, design covariates and PFS/OS (days, events); XPT exactly, CSV to its 12 digits."""
    run = demo_run()
    ref, spec = _reference_frame(run)
    adsl = run / (outdir.ADSL_XPT if kind == "xpt" else outdir.ADSL_CSV)
    adtte = run / (outdir.ADTTE_XPT if kind == "xpt" else outdir.ADTTE_CSV)
    back = load_trial_arm(adsl, adtte, paramcd=spec.analysis.endpoint)
    assert back[cn.PATIENT_ID].tolist() == ref[cn.PATIENT_ID].tolist()
    arm = pd.read_csv(run / outdir.ADSL_CSV, usecols=[am.ARM])[am.ARM]
    assert arm.tolist() == ref[cn.ARM].tolist()
    assert (back[cn.INDEX_DATE].to_numpy() == pd.to_datetime(ref[cn.INDEX_DATE]).to_numpy()).all()
    rtol = 0 if kind == "xpt" else 1e-11
    for col in [*spec.covariates, *cn.OUTCOME_COLUMNS]:
        a, b = back[col], ref[col]
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            np.testing.assert_allclose(pd.to_numeric(a).astype(float),
                                       pd.to_numeric(b).astype(float), rtol=rtol, atol=0,
                                       err_msg=col)
        else:
            assert a.astype(object).tolist() == b.astype(object).tolist(), col
    assert ref[cn.OS_DAYS].notna().all() and ref[cn.PFS_DAYS].notna().all()


def test_the_round_tripped_frame_reproduces_results_json():
    """The analysis of the frame read back (trial loader) gives results.json's numbers."""
    run = demo_run()
    spec = load_spec(_manifest(run)["spec"]["path"]).spec
    back = load_trial_arm(run / outdir.ADSL_XPT, run / outdir.ADTTE_XPT)
    back[cn.ARM] = pd.read_csv(run / outdir.ADSL_CSV, usecols=[am.ARM])[am.ARM]
    typed, design = analytic_result(back, outdir.read_cohort(run), spec)
    results = outdir.read_results(run)
    checks = checks_for(typed, design, results, spec.analysis.endpoint)
    assert len(checks) == 36
    verify_checks(checks, typed, results)  # raises on any difference


def test_adtte_records_and_dates():
    run = demo_run()
    adtte = pd.read_csv(run / outdir.ADTTE_CSV, keep_default_na=False)
    assert set(adtte[am.PARAMCD]) == {"PFS", "OS"}
    days = (pd.to_datetime(adtte[am.ADT]) - pd.to_datetime(adtte[am.STARTDT])).dt.days
    assert (days == adtte[am.AVAL].round()).all()
    ev = adtte[am.CNSR] == 0
    assert (adtte.loc[ev, am.CNSDTDSC] == "").all() and (adtte.loc[~ev, am.CNSDTDSC] != "").all()
    assert set(adtte.loc[ev & (adtte[am.PARAMCD] == "OS"), am.EVNTDESC]) == {"DEATH"}
    assert (adtte[am.AVALU] == am.AVAL_UNIT).all()


def test_a_tampered_result_is_refused_before_anything_is_written():
    """verify_checks: numbers the outcomes read now do not give are an error naming them."""
    run = demo_run()
    spec = load_spec(_manifest(run)["spec"]["path"]).spec
    back = load_trial_arm(run / outdir.ADSL_XPT, run / outdir.ADTTE_XPT)
    back[cn.ARM] = pd.read_csv(run / outdir.ADSL_CSV, usecols=[am.ARM])[am.ARM]
    typed, design = analytic_result(back, outdir.read_cohort(run), spec)
    results = outdir.read_results(run)
    results["endpoints"]["PFS"]["hazard_ratio"]["estimate"] *= 1.001
    with pytest.raises(DataError, match="hazard ratio estimate"):
        verify_checks(checks_for(typed, design, results, "PFS"), typed, results)


def test_matched_design_flat_file(tmp_path: Path):
    run = matched_run()
    adsl = pd.read_csv(run / outdir.ADSL_CSV, keep_default_na=False)
    analysed = adsl[adsl[am.ANL01FL] == "Y"]
    assert (analysed[am.MATCHSET] != "").all()
    assert am.TRTSDT not in adsl.columns  # a flat file has no index date
    define = pd.read_csv(run / outdir.ADAM_DEFINE)
    assert "PFI_MONT" in define["variable"].tolist()
    adtte = pd.read_csv(run / outdir.ADTTE_CSV)
    assert set(adtte[am.PARAMCD]) == {"PFS"}


def test_refuses_a_folder_not_analysed(tmp_path: Path):
    spec = matched_spec(tmp_path)
    run_study(spec, tmp_path / "out", stages=("extract", "design"))
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    with pytest.raises(OutputFolderError, match="not analysed"):
        export_adam(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before
    res = cli.invoke(app, ["export-adam", str(tmp_path / "out")])
    assert res.exit_code == 2 and "not analysed" in res.output


def test_refuses_a_changed_design(tmp_path: Path):
    run = copy_run(matched_run(), tmp_path / "run")
    cohort = run / outdir.COHORT
    cohort.write_text(cohort.read_text().replace(",True\n", ",False\n", 1))
    with pytest.raises(DesignChangedError, match=r"cohort\.csv changed"):
        export_adam(run)


def test_refuses_another_spec(tmp_path: Path):
    run = copy_run(matched_run(), tmp_path / "run")
    other = matched_spec(tmp_path)
    other.write_text(other.read_text().replace("seed: 1", "seed: 2"))
    from synthctl.errors import SpecError

    with pytest.raises(SpecError, match="SHA-256 differs"):
        export_adam(run, spec=other)


def test_a_rerun_analysis_removes_the_stale_export(tmp_path: Path):
    spec = matched_spec(tmp_path)
    out = tmp_path / "out"
    run_study(spec, out)
    export_adam(out)
    assert (out / outdir.REANALYSIS_R).is_file()
    result = run_study(spec, out, stages=("analyze", "report"))
    assert not (out / outdir.ADAM).exists() and not (out / outdir.REANALYSIS_R).exists()
    assert STAGE not in result.manifest["stages"]
    assert any(w["stage"] == STAGE for w in result.manifest["warnings"])


def test_run_option_and_cli_json(tmp_path: Path):
    spec = matched_spec(tmp_path)
    out = tmp_path / "out"
    res = cli.invoke(app, ["run", str(spec), "--out", str(out), "--quiet", "--export-adam"])
    assert res.exit_code == 0, res.output
    stage = _manifest(out)["stages"][STAGE]
    assert sorted(stage["artifacts"]) == sorted(FILES)
    res = cli.invoke(app, ["export-adam", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["artifacts"] == _manifest(out)["stages"][STAGE]["artifacts"]
    assert summary["adsl_records"] == len(pd.read_csv(out / outdir.ADSL_CSV))
    shutil.rmtree(out)


def test_an_imputed_design_has_one_adsl_record_per_subject_and_imputation():
    run = imputed_run()
    adsl = pyreadstat.read_xport(run / outdir.ADSL_XPT)[0]
    cohort = outdir.read_cohort(run)
    assert len(adsl) == len(cohort)
    assert adsl[am.IMPNUM].tolist() == cohort[outdir.IMPUTATION].astype(float).tolist()
    assert adsl[am.USUBJID].tolist() == cohort[cn.PATIENT_ID].tolist()
    np.testing.assert_array_equal(adsl[am.ANLWT], cohort[outdir.WEIGHT])
    completed = pd.read_parquet(run / outdir.IMPUTED_COVARIATES)
    assert not adsl["PCI"].isna().any()  # the completed covariates of each imputation
    np.testing.assert_array_equal(adsl["PCI"], completed["pci"].astype(float))
    adtte = pyreadstat.read_xport(run / outdir.ADTTE_XPT)[0]
    assert not adtte.duplicated([am.USUBJID, am.PARAMCD]).any()  # outcomes are not imputed
    define = pd.read_csv(run / outdir.ADAM_DEFINE, keep_default_na=False)
    assert "Rubin" in define.loc[define["variable"] == am.IMPNUM, "derivation"].item()


# --- issue 18 round 2: ADRS, AVALLB, multi-line --------------------------------------------
def _xpt(path: Path) -> pd.DataFrame:
    """An XPT file through pyreadstat (pandas' read_sas returns 5.4e-79 for an exact 0 in
    pandas 2.x; haven, foreign and pyreadstat read 0)."""
    return pyreadstat.read_xport(path)[0]

def test_response_study_exports_adrs_with_bor_and_the_responder_flag():
    run = response_run(False)
    stage = _manifest(run)["stages"][STAGE]
    assert {outdir.ADRS_XPT, outdir.ADRS_CSV} <= set(stage["artifacts"])
    assert stage["records"]["ADRS"] == 2 * stage["records"]["ADSL"]
    adsl = pd.read_csv(run / outdir.ADSL_CSV, keep_default_na=False)
    adrs = _xpt(run / outdir.ADRS_XPT)
    bor = adrs[adrs[am.PARAMCD] == am.BOR_PARAMCD].reset_index(drop=True)
    orr = adrs[adrs[am.PARAMCD] == "ORR"].reset_index(drop=True)
    assert bor[am.USUBJID].tolist() == orr[am.USUBJID].tolist() == adsl[am.USUBJID].tolist()
    assert set(bor[am.AVALC]) <= set(am.BOR_CODES)
    assert (bor[am.AVAL] == bor[am.AVALC].map(am.BOR_CODES)).all()
    assert ((orr[am.AVALC] == "Y") == bor[am.AVALC].isin(["CR", "PR"])).all()
    assert ((orr[am.AVAL] == 1) == (orr[am.AVALC] == "Y")).all()
    # the responders among the analysed rows are results.json's
    res = outdir.read_results(run)["endpoints"]["ORR"]["proportion"]
    analysed = (adsl[am.ANL01FL] == "Y").to_numpy()
    for arm in ("trial", "control"):
        m = analysed & (adsl[am.ARM] == arm).to_numpy()
        assert int(orr.loc[m, am.AVAL].sum()) == res["responders"][arm]
        assert int(m.sum()) == res["n"][arm]
    define = pd.read_csv(run / outdir.ADAM_DEFINE, keep_default_na=False)
    rows = define[define["dataset"] == "ADRS"]
    assert rows["variable"].tolist() == list(adrs.columns)
    assert "confirmed by a CR/PR assessment" in " ".join(rows["derivation"])


def test_adrs_round_trip_through_the_adrs_loader():
    """connectors.adrs reads the exported ADRS back: its BOR rule gives the ORR flags."""
    from connectors.adrs import read_adrs, trial_response

    run = response_run(False)
    back = read_adrs(run / outdir.ADRS_CSV)
    subjects = pd.read_csv(run / outdir.ADSL_CSV, usecols=[am.USUBJID, am.TRTSDT])
    subjects = subjects.rename(columns={am.USUBJID: cn.PATIENT_ID, am.TRTSDT: cn.INDEX_DATE})
    got = trial_response(back, subjects, paramcd=am.BOR_PARAMCD)
    orr = back[back["PARAMCD"] == "ORR"]
    assert got[cn.RESPONSE].tolist() == (orr["AVALC"] == "Y").astype(int).tolist()


def test_a_changed_response_outcome_is_refused(tmp_path: Path):
    """A results.json whose ORR the responses read now do not give (as if the registry's
    tumour assessments changed): refused, naming the number, nothing written."""
    run = copy_run(response_run(False), tmp_path / "run")
    shutil.rmtree(run / outdir.ADAM)
    (run / outdir.REANALYSIS_R).unlink()
    res = outdir.read_results(run)
    res["endpoints"]["ORR"]["proportion"]["ratio"]["estimate"] *= 1.001
    (run / outdir.RESULTS).write_text(json.dumps(res))
    man = _manifest(run)
    man["stages"]["analyze"]["artifacts"][outdir.RESULTS] = outdir.sha256_file(run / outdir.RESULTS)
    (run / outdir.MANIFEST).write_text(json.dumps(man))
    with pytest.raises(DataError, match="ORR ratio estimate"):
        export_adam(run)
    assert not (run / outdir.ADAM).exists()


def test_alignment_study_exports_the_left_bound():
    run = alignment_run()
    adtte = _xpt(run / outdir.ADTTE_XPT)
    pfs = adtte[adtte[am.PARAMCD] == "PFS"]
    ev = pfs[am.CNSR] == 0
    lb = pfs.loc[ev, am.AVALLB]
    assert lb.notna().all() and (lb >= 0).all() and (lb <= pfs.loc[ev, am.AVAL]).all()
    assert (lb < pfs.loc[ev, am.AVAL]).mean() > 0.5  # most progressions are intervals
    assert pfs.loc[~ev, am.AVALLB].isna().all()
    assert adtte.loc[adtte[am.PARAMCD] == "OS", am.AVALLB].isna().all()
    define = pd.read_csv(run / outdir.ADAM_DEFINE, keep_default_na=False)
    assert "interval2" in define.loc[define["variable"] == am.AVALLB, "derivation"].item()
    assert am.AVALLB not in pd.read_csv(demo_run() / outdir.ADTTE_CSV, nrows=1).columns


def test_multi_line_study_is_keyed_by_subject_and_line():
    run = multi_line_run()
    adsl = _xpt(run / outdir.ADSL_XPT)
    cohort = outdir.read_cohort(run)
    assert len(adsl) == len(cohort) and adsl[am.USUBJID].tolist() == cohort[cn.PATIENT_ID].tolist()
    assert adsl[am.USUBJID].duplicated().any()
    assert not adsl.duplicated([am.USUBJID, am.LINESEQ]).any()
    assert (adsl.loc[adsl[am.ARM] == cn.TRIAL, am.LINESEQ] == 1).all()
    for _, g in adsl.groupby(am.USUBJID):
        g = g.sort_values(am.LINESEQ)
        assert g[am.LINESEQ].tolist() == list(range(1, len(g) + 1))
        assert g[am.TRTSDT].is_monotonic_increasing
    adtte = _xpt(run / outdir.ADTTE_XPT)
    keys = adtte[adtte[am.PARAMCD] == "PFS"][[am.USUBJID, am.LINESEQ]]
    assert not keys.duplicated().any()
    assert set(map(tuple, keys.to_numpy())) <= set(map(tuple, adsl[[am.USUBJID, am.LINESEQ]]
                                                        .to_numpy()))
    assert "LINE_ID" not in adsl.columns  # the registry's line key is not exported
