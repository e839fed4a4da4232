"""The analysed study as CDISC ADaM (ADSL + ADTTE, SAS XPORT v5 and CSV) with a define table.

`export_adam(run_dir)` writes, inside the run folder (its data perimeter), ``adam/adsl.xpt``,
``adam/adtte.xpt``, their CSV twins, ``adam/define.csv`` (variable, label, type, origin,
derivation: `synthctl.adam_metadata`) and ``reanalysis.R`` (`synthctl.reanalysis`), through the
folder's ownership/atomic machinery (`synthctl.atomic.atomic_output`); ``manifest.json`` lists
them with their SHA-256 under the stage ``export_adam``.

Outcome-blind order kept: the folder must be analysed (``results.json`` present, its hash as
the analyze stage recorded it) and its design lock intact (`Manifest.check_design_lock`, the
registry pool re-queried blind) before any outcome is read. The outcomes are then re-read
through the analyze stage's own path (registry: ``RegistryConnector.outcomes``, trial: ADTTE;
flat file: its time/event columns), and the analytic analysis is recomputed on them
(`reports.analysis.estimate_endpoints`): the export refuses when it does not reproduce
``results.json`` (an outcome table that changed since the analysis), before writing anything.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from connectors import columns as cn
from synthctl import adam_metadata as am
from synthctl import outdir
from synthctl.errors import DataError, DesignChangedError, OutputFolderError, SpecError
from synthctl.manifest import Manifest
from synthctl.specfile import LoadedSpec, load_spec

STAGE = "export_adam"


@dataclass(frozen=True, slots=True, eq=False)
class AdamData:
    """ADSL and ADTTE as written, and the metadata of their variables (file order)."""

    adsl: pd.DataFrame
    adtte: pd.DataFrame
    variables: tuple[am.AdamVariable, ...]

    def define(self) -> pd.DataFrame:
        """The define-style metadata table (``define.csv``): one row per variable."""
        return pd.DataFrame([v.to_dict() for v in self.variables])

    def of(self, dataset: str) -> tuple[am.AdamVariable, ...]:
        return tuple(v for v in self.variables if v.dataset == dataset)


# --- building --------------------------------------------------------------------------------
def _covariate_variables(frame: pd.DataFrame, covariates: list[str], *,
                         flat: bool) -> dict[str, tuple[str, am.SasType, str]]:
    """Analysis column -> (ADSL name, type, label): the trial loader's names for the registry
    covariates it knows, a derived 8-character name (label: the column) for any other."""
    from connectors.trial import DEFAULT_VARIABLE_MAP

    known = {} if flat else {c: DEFAULT_VARIABLE_MAP[c] for c in covariates
                             if c in DEFAULT_VARIABLE_MAP and c in am.COVARIATE_LABELS}
    derived = am.flat_variable_names([c for c in covariates if c not in known],
                                     taken=known.values())
    out: dict[str, tuple[str, am.SasType, str]] = {}
    for col in covariates:
        s = frame[col]
        numeric = (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s))
        out[col] = (known.get(col) or derived[col], "Num" if numeric else "Char",
                    am.COVARIATE_LABELS.get(col, col) if col in known else col[:am.MAX_LABEL])
    return out


def _char(values: pd.Series) -> pd.Series:
    """Text as ADaM holds it: booleans as Y/N, missing as blank."""
    if pd.api.types.is_bool_dtype(values):
        return values.map(lambda v: "" if pd.isna(v) else (am.YES if v else am.NO)).astype(object)
    return values.map(lambda v: "" if pd.isna(v) else str(v)).astype(object)


def _dates(values: pd.Series) -> pd.Series:
    ts = pd.to_datetime(values)
    return pd.Series([None if pd.isna(x) else x.date() for x in ts], index=values.index,
                     dtype=object)


def build_adam(frame: pd.DataFrame, cohort: pd.DataFrame, *, study: str,
               covariates: list[str], flat: bool) -> AdamData:
    """ADSL (one row per patient of both arms) and ADTTE (one record per patient and endpoint
    with a follow-up) from the analysis inputs.

    Parameters
    ----------
    frame : DataFrame
        ``covariates.parquet`` rows (both arms at index) with the outcome columns of
        `connectors.columns.ENDPOINTS` that the source has (days, event 1/0), in
        ``cohort.csv`` order.
    cohort : DataFrame
        ``cohort.csv`` (`synthctl.outdir.read_cohort`).
    """
    ids = frame[cn.PATIENT_ID].astype(str)
    if ids.duplicated().any():
        dup = ids[ids.duplicated()].iloc[0]
        raise DataError(f"{outdir.COVARIATES}: patient {dup!r} has several rows (index lines); "
                        "ADSL holds one record per subject: export a study with "
                        "registry.index.selection: first")
    with_dates = cn.INDEX_DATE in frame.columns and not flat
    cov_vars = _covariate_variables(frame, covariates, flat=flat)
    adsl_vars = am.adsl_variables(cov_vars, with_dates=with_dates, flat=flat)
    is_control = (frame[cn.ARM] == cn.CONTROL).to_numpy()
    weight = cohort[outdir.WEIGHT].to_numpy(dtype=float)
    analysed = cohort[outdir.INCLUDED].to_numpy(dtype=bool) & (weight > 0)
    cols: dict[str, Any] = {
        am.STUDYID: study, am.USUBJID: ids.to_numpy(),
        am.ARM: frame[cn.ARM].astype(str).to_numpy(),
        am.EXTCTLFL: np.where(is_control, am.YES, am.NO),
    }
    if with_dates:
        cols[am.TRTSDT] = _dates(frame[cn.INDEX_DATE]).to_numpy()
    for col, (name, sas_type, _label) in cov_vars.items():
        cols[name] = (pd.to_numeric(frame[col]).astype("float64").to_numpy()
                      if sas_type == "Num" else _char(frame[col]).to_numpy())
    cols[am.PSCORE] = cohort[outdir.PS].to_numpy(dtype=float)
    cols[am.ANLWT] = weight
    cols[am.MATCHSET] = _char(cohort[outdir.MATCH_ID]).to_numpy()
    cols[am.ANL01FL] = np.where(analysed, am.YES, am.NO)
    adsl = pd.DataFrame(cols, columns=[v.name for v in adsl_vars])
    adtte_vars = am.adtte_variables(with_dates=with_dates)
    adtte = _adtte(frame, ids, study, with_dates=with_dates, flat=flat)
    adtte = adtte[[v.name for v in adtte_vars]]
    return AdamData(adsl, adtte, (*adsl_vars, *adtte_vars))


def _adtte(frame: pd.DataFrame, ids: pd.Series, study: str, *, with_dates: bool,
           flat: bool) -> pd.DataFrame:
    parts = []
    for endpoint, (time_col, event_col) in cn.ENDPOINTS.items():
        if time_col not in frame.columns or event_col not in frame.columns:
            continue
        days = pd.to_numeric(frame[time_col], errors="coerce").to_numpy(dtype=float)
        event = pd.to_numeric(frame[event_col], errors="coerce").to_numpy(dtype=float)
        has = ~(np.isnan(days) | np.isnan(event))
        text = am.endpoint_text(endpoint, flat=flat)
        cnsr = 1.0 - event[has]
        aval = days[has]
        evntdesc = np.where(cnsr == 0, text.event,
                            np.where(aval == 0, text.censored_day0, text.censored))
        part = pd.DataFrame({
            am.STUDYID: study, am.USUBJID: ids.to_numpy()[has], am.PARAMCD: endpoint,
            am.PARAM: text.param, am.AVAL: aval, am.AVALU: am.AVAL_UNIT, am.CNSR: cnsr,
            am.EVNTDESC: evntdesc,
            am.CNSDTDSC: np.where(cnsr == 0, "", evntdesc),
        })
        if with_dates:
            start = _dates(frame[cn.INDEX_DATE]).to_numpy()[has]
            part[am.STARTDT] = start
            part[am.ADT] = [None if s is None else s + dt.timedelta(days=round(a))
                            for s, a in zip(start, aval, strict=True)]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


# --- writing ---------------------------------------------------------------------------------
def write_adam(folder: Path, adam: AdamData) -> dict[str, str]:
    """Write the XPT and CSV files and ``define.csv`` under ``folder``; {artifact: sha256}."""
    import pyreadstat

    (folder / outdir.ADAM).mkdir(exist_ok=True)
    digests: dict[str, str] = {}
    for dataset, frame, xpt, csv, label in (
            ("ADSL", adam.adsl, outdir.ADSL_XPT, outdir.ADSL_CSV, "Subject-Level Analysis"),
            ("ADTTE", adam.adtte, outdir.ADTTE_XPT, outdir.ADTTE_CSV, "Time-to-Event Analysis")):
        variables = adam.of(dataset)
        pyreadstat.write_xport(
            frame, str(folder / xpt), file_label=label, table_name=dataset,
            column_labels={v.name: v.label for v in variables}, file_format_version=5,
            variable_format={v.name: am.DATE_FORMAT for v in variables if v.is_date})
        digests[xpt] = outdir.sha256_file(folder / xpt)
        text = frame.copy()
        for v in variables:
            if v.is_date:
                text[v.name] = [("" if d is None else d.isoformat()) for d in text[v.name]]
        digests[csv] = outdir.write_csv(folder / csv, text)
    digests[outdir.ADAM_DEFINE] = outdir.write_csv(folder / outdir.ADAM_DEFINE, adam.define())
    return digests


# --- the run folder --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ExportResult:
    """What `export_adam` wrote: the run folder and {artifact: SHA-256}."""

    folder: Path
    artifacts: dict[str, str]
    n_adsl: int
    n_adtte: int

    def to_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "artifacts": dict(self.artifacts),
                "adsl_records": self.n_adsl, "adtte_records": self.n_adtte}


def export_adam(run_dir: str | Path, *, spec: str | Path | None = None,
                notify: Callable[[str], None] | None = None) -> ExportResult:
    """Export an analysed run folder as ADaM with its re-analysis program (see module doc).

    Parameters
    ----------
    run_dir : str or Path
        A folder written by ``synthctl run`` / ``analyze`` (design locked, outcomes analysed).
    spec : str or Path, optional
        The study spec; default the one ``manifest.json`` records. Its SHA-256 must be the
        recorded one.

    Raises
    ------
    SynthctlError
        Not an analysed synthctl folder, a spec that is not the analysed one, a changed
        design (`DesignChangedError`), outcomes that no longer reproduce ``results.json``
        (`DataError`); the folder is then left as it was.
    """
    from synthctl.atomic import atomic_output, resolve_out

    target = resolve_out(run_dir, option="RUN_DIR")
    if not (target / outdir.MANIFEST).is_file():
        raise OutputFolderError(f"RUN_DIR {run_dir}: no {outdir.MANIFEST}; not a synthctl run "
                                "folder (run `synthctl run SPEC --out DIR` first)")
    with atomic_output(target, command="export-adam", start_from_existing=True,
                       notify=notify) as work:
        manifest = Manifest.load_or_new(work)
        loaded = _recorded_spec(manifest, spec, target)
        artifacts, n = write_export(work, loaded, manifest, check_lock=True)
        manifest.save(work)
    return ExportResult(target, artifacts, *n)


def _recorded_spec(manifest: Manifest, spec: str | Path | None, folder: Path) -> LoadedSpec:
    recorded = manifest.data.get("spec", {})
    path = Path(spec) if spec is not None else Path(recorded.get("path", ""))
    if not path.is_file():
        raise SpecError(f"{folder}: the study spec {path} is not there; pass --spec PATH "
                        "(the spec this folder was analysed with)")
    loaded = load_spec(path)
    if recorded.get("sha256") and loaded.sha256 != recorded["sha256"]:
        raise SpecError(f"{path}: not the spec {folder} was analysed with (its SHA-256 differs "
                        f"from manifest.json's); export the folder with that spec")
    return loaded


def write_export(work: Path, loaded: LoadedSpec, manifest: Manifest, *,
                 check_lock: bool) -> tuple[dict[str, str], tuple[int, int]]:
    """Re-read the outcomes on the locked design, check they reproduce ``results.json``,
    write the ADaM files and ``reanalysis.R`` into ``work`` and record the stage."""
    from synthctl.reanalysis import checks_for, render_reanalysis, verify_checks

    stages = manifest.data.get("stages", {})
    results = outdir.read_results(work)
    if "analyze" not in stages or results is None:
        raise OutputFolderError(f"{work}: not analysed yet (no {outdir.RESULTS}); "
                                "run `synthctl analyze` first")
    if loaded.spec.design.missing == "impute":
        raise SpecError(
            "export-adam: this study's design imputes missing covariates (design.missing: "
            "impute): its results pool several imputed designs by Rubin's rules, which one "
            "ADSL and reanalysis.R cannot reproduce; not supported yet")
    recorded = stages["analyze"].get("artifacts", {}).get(outdir.RESULTS)
    if recorded != outdir.sha256_file(work / outdir.RESULTS):
        raise DesignChangedError(f"{outdir.RESULTS} changed since the analyze stage wrote it "
                                 "(SHA-256 differs): run `synthctl analyze` again")
    t0 = manifest.start_stage(STAGE)
    ctx = _context(loaded, work, manifest)
    if check_lock:
        _check_lock(ctx)
    frame, cohort = analysis_inputs(ctx)
    spec = loaded.spec
    typed, design = analytic_result(frame, cohort, spec)
    checks = checks_for(typed, design, results, spec.analysis.endpoint)
    verify_checks(checks, typed, results)  # before anything is written
    adam = build_adam(frame, cohort, study=spec.study.name, covariates=list(spec.covariates),
                      flat=spec.source_kind == "flat")
    artifacts = write_adam(work, adam)
    script = render_reanalysis(typed, design, checks, spec)
    (work / outdir.REANALYSIS_R).write_text(script, encoding="utf-8")
    artifacts[outdir.REANALYSIS_R] = outdir.sha256_file(work / outdir.REANALYSIS_R)
    manifest.end_stage(STAGE, t0, artifacts, results_sha256=recorded,
                       records={"ADSL": len(adam.adsl), "ADTTE": len(adam.adtte)})
    return artifacts, (len(adam.adsl), len(adam.adtte))


def drop_export(work: Path, manifest: Manifest) -> bool:
    """Remove an earlier export (its files and stage) from a folder whose design or analysis
    is being re-run: it would describe another analysis. True when there was one."""
    stage = manifest.data.get("stages", {}).get(STAGE)
    if stage is None:
        return False
    for name in stage.get("artifacts", {}):
        (work / name).unlink(missing_ok=True)
    adam_dir = work / outdir.ADAM
    if adam_dir.is_dir() and not any(adam_dir.iterdir()):
        adam_dir.rmdir()
    manifest.drop_stages(STAGE)
    return True


def _context(loaded: LoadedSpec, work: Path, manifest: Manifest):
    """A stage context on a copy of the manifest: the analyze stage's outcome readers record
    validation findings into it, which must not overwrite the analysis' own."""
    from synthctl.stages._context import StageContext

    return StageContext(loaded, work, Manifest(copy.deepcopy(manifest.data)))


def _check_lock(ctx) -> None:
    from synthctl.stages.extract import registry_pool_changes

    changes = ctx.manifest.check_design_lock(ctx.folder, ctx.spec.design_hash())
    changes += registry_pool_changes(ctx)
    if changes:
        raise DesignChangedError("export-adam refused: the design changed since it was locked "
                                 f"({'; '.join(changes)}); run `synthctl analyze` again first")


def analysis_inputs(ctx) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``covariates.parquet`` with the outcomes (days, event) the analyze stage reads, and
    ``cohort.csv``, row-aligned."""
    from synthctl.stages.analyze import _outcomes, _registry_outcomes

    cohort = outdir.read_cohort(ctx.folder)
    covs = pd.read_parquet(ctx.folder / outdir.COVARIATES)
    if len(cohort) != len(covs) or (cohort[cn.PATIENT_ID].to_numpy()
                                    != covs[cn.PATIENT_ID].astype(str).to_numpy()).any():
        raise DataError(f"{ctx.folder}: {outdir.COHORT} and {outdir.COVARIATES} do not describe "
                        "the same rows")
    frame = covs.copy()
    if ctx.spec.source_kind == "registry":
        merged = _registry_outcomes(ctx, covs)
        for col in cn.OUTCOME_COLUMNS:
            if col in merged.columns:
                frame[col] = merged[col].to_numpy()
    else:
        days, event = _outcomes(ctx, covs)
        time_col, event_col = cn.ENDPOINTS[ctx.spec.analysis.endpoint]
        frame[time_col], frame[event_col] = days, event
    return frame, cohort


def analytic_result(frame: pd.DataFrame, cohort: pd.DataFrame, spec):
    """The analytic analysis (bootstrap 0) of the analyze stage on these inputs: the typed
    `reports.endpoints.TimeToEventResult` of the spec's endpoint and its `DesignedFrame`."""
    from reports.analysis import AnalysisDesign, designed_frame, estimate_endpoints
    from synthctl.stages.analyze import EVENT, TIME, analysis_settings

    a = spec.analysis
    time_col, event_col = cn.ENDPOINTS[a.endpoint]
    data = frame.copy()
    data[TIME] = cn.days_to(a.landmark_unit, pd.to_numeric(data[time_col]).astype(float))
    data[EVENT] = pd.to_numeric(data[event_col]).astype(float)
    keep = ~(data[TIME].isna() | data[EVENT].isna()).to_numpy()
    design = AnalysisDesign(cohort[outdir.WEIGHT].to_numpy(dtype=float)[keep],
                            cohort[outdir.INCLUDED].to_numpy(dtype=bool)[keep],
                            cohort[outdir.MATCH_ID].to_numpy()[keep], spec.design.yields)
    settings = analysis_settings(spec)
    eligible = data[keep].reset_index(drop=True)
    typed = estimate_endpoints(eligible, design, settings)[a.endpoint]
    return typed, designed_frame(eligible, design, settings)
