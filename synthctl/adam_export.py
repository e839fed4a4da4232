"""The analysed study as CDISC ADaM (ADSL + ADTTE, SAS XPORT v5 and CSV) with a define table.

`export_adam(run_dir)` writes, inside the run folder (its data perimeter), ``adam/adsl.xpt``,
``adam/adtte.xpt`` (with ``AVALLB`` when the endpoint alignment ran), ``adam/adrs.xpt`` with a
response endpoint (BOR and the responder flag per subject), their CSV twins,
``adam/define.csv`` (variable, label, type, origin, derivation: `synthctl.adam_metadata`) and
``reanalysis.R`` (`synthctl.reanalysis`), through the
folder's ownership/atomic machinery (`synthctl.atomic.atomic_output`); ``manifest.json`` lists
them with their SHA-256 under the stage ``export_adam``.

Outcome-blind order kept: the folder must be analysed (``results.json`` present, its hash as
the analyze stage recorded it) and its design lock intact (`Manifest.check_design_lock`, the
registry pool re-queried blind) before any outcome is read. The outcomes are then re-read
through the analyze stage's own path (registry: ``RegistryConnector.outcomes``, trial: ADTTE;
flat file: its time/event columns), and the analytic analysis is recomputed on them
(`reports.analysis.estimate_endpoints`): the export refuses when it does not reproduce
``results.json`` (an outcome table that changed since the analysis), before writing anything.
The response endpoint, the Turnbull landmarks and an imputed design's pooled numbers are
checked the same way (`extra_checks`, `_write_imputed`). Multi-line studies key the datasets
by USUBJID + LINESEQ, imputed designs ADSL by USUBJID + IMPNUM (`synthctl.adam_metadata`).
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
    adrs: pd.DataFrame | None = None

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


def _line_seq(frame: pd.DataFrame) -> np.ndarray:
    """The index line's number within its patient (1, 2, ... by index date, then registry
    line order; trial rows 1): `adam_metadata.LINESEQ` of a multi-line study."""
    keys = pd.DataFrame({
        "id": frame[cn.PATIENT_ID].astype(str).to_numpy(),
        "date": pd.to_datetime(frame[cn.INDEX_DATE]).to_numpy(),
        "line": (pd.to_numeric(frame[cn.LINE_ID], errors="coerce").to_numpy(dtype=float)
                 if cn.LINE_ID in frame.columns else np.zeros(len(frame))),
        "row": np.arange(len(frame)),
    })
    keys = keys.sort_values(["id", "date", "line", "row"], kind="stable")
    seq = keys.groupby("id", sort=False).cumcount().to_numpy() + 1
    out = np.empty(len(frame), dtype=float)
    out[keys["row"].to_numpy()] = seq
    return out


def build_adam(frame: pd.DataFrame, cohort: pd.DataFrame, *, study: str,
               covariates: list[str], flat: bool, responses: pd.DataFrame | None = None,
               response_name: str = "ORR", response_definition: str = "",
               left_days: np.ndarray | None = None, imputation: int | None = None) -> AdamData:
    """ADSL (one row per patient of both arms; per patient and index line in a multi-line
    study), ADTTE (one record per patient and endpoint with a follow-up) and, with a
    response endpoint, the ADRS-derived dataset from the analysis inputs.

    Parameters
    ----------
    frame : DataFrame
        ``covariates.parquet`` rows (both arms at index) with the outcome columns of
        `connectors.columns.ENDPOINTS` that the source has (days, event 1/0), in
        ``cohort.csv`` order.
    cohort : DataFrame
        ``cohort.csv`` (`synthctl.outdir.read_cohort`).
    responses : DataFrame, optional
        Row-aligned with ``frame``: `connectors.columns.RESPONSE` (0/1) and
        ``best_response`` (CR/PR/SD/PD/NE; absent for a flat file).
    left_days : array, optional
        Row-aligned PFS interval left bounds (days; NaN for censored rows) when the endpoint
        alignment ran: ADTTE ``AVALLB``.
    imputation : int, optional
        An imputed design's number (1..m): ADSL gets ``IMPNUM`` (``frame`` holds that
        imputation's completed covariates, ``cohort`` its design).
    """
    ids = frame[cn.PATIENT_ID].astype(str)
    multi_line = bool(ids.duplicated().any())
    if multi_line and (flat or cn.INDEX_DATE not in frame.columns):
        dup = ids[ids.duplicated()].iloc[0]
        raise DataError(f"{outdir.COVARIATES}: patient {dup!r} has several rows and the source "
                        "has no index date to order them by")
    lineseq = _line_seq(frame) if multi_line else None
    with_dates = cn.INDEX_DATE in frame.columns and not flat
    cov_vars = _covariate_variables(frame, covariates, flat=flat)
    adsl_vars = am.adsl_variables(cov_vars, with_dates=with_dates, flat=flat,
                                  multi_line=multi_line, imputed=imputation is not None)
    is_control = (frame[cn.ARM] == cn.CONTROL).to_numpy()
    weight = cohort[outdir.WEIGHT].to_numpy(dtype=float)
    analysed = cohort[outdir.INCLUDED].to_numpy(dtype=bool) & (weight > 0)
    cols: dict[str, Any] = {
        am.STUDYID: study, am.USUBJID: ids.to_numpy(),
        am.ARM: frame[cn.ARM].astype(str).to_numpy(),
        am.EXTCTLFL: np.where(is_control, am.YES, am.NO),
    }
    if lineseq is not None:
        cols[am.LINESEQ] = lineseq
    if imputation is not None:
        cols[am.IMPNUM] = float(imputation)
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
    adtte_vars = am.adtte_variables(with_dates=with_dates, multi_line=multi_line,
                                    left_bound=left_days is not None)
    adtte = _adtte(frame, ids, study, with_dates=with_dates, flat=flat, lineseq=lineseq,
                   left_days=left_days)
    adtte = adtte[[v.name for v in adtte_vars]]
    variables: tuple[am.AdamVariable, ...] = (*adsl_vars, *adtte_vars)
    adrs = None
    if responses is not None:
        with_bor = "best_response" in responses.columns
        adrs_vars = am.adrs_variables(responder=response_name, definition=response_definition,
                                      with_bor=with_bor, multi_line=multi_line)
        adrs = _adrs(responses, ids, study, lineseq=lineseq, name=response_name,
                     definition=response_definition)[[v.name for v in adrs_vars]]
        variables = (*variables, *adrs_vars)
    return AdamData(adsl, adtte, variables, adrs)


def _adrs(responses: pd.DataFrame, ids: pd.Series, study: str, *, lineseq: np.ndarray | None,
          name: str, definition: str) -> pd.DataFrame:
    """Two records per subject (BOR when known, then the responder flag), subject order."""
    y = pd.to_numeric(responses[cn.RESPONSE], errors="raise").to_numpy(dtype=float)
    n = len(ids)
    parts = []
    if "best_response" in responses.columns:
        bor = responses["best_response"].fillna("NE").astype(str).to_numpy()
        unknown = sorted(set(bor) - set(am.BOR_CODES))
        if unknown:
            raise DataError(f"best overall response codes {unknown} are not one of "
                            f"{list(am.BOR_CODES)}")
        parts.append(pd.DataFrame({
            "_row": np.arange(n), "_k": 0, am.PARAMCD: am.BOR_PARAMCD,
            am.PARAM: "Best Overall Response (RECIST 1.1)", am.AVALC: bor,
            am.AVAL: [am.BOR_CODES[b] for b in bor]}))
    parts.append(pd.DataFrame({
        "_row": np.arange(n), "_k": 1, am.PARAMCD: name,
        am.PARAM: f"{name}: {definition}"[:200], am.AVALC: np.where(y == 1, am.YES, am.NO),
        am.AVAL: y}))
    out = pd.concat(parts, ignore_index=True).sort_values(["_row", "_k"], kind="stable")
    out.insert(0, am.STUDYID, study)
    out.insert(1, am.USUBJID, ids.to_numpy()[out["_row"].to_numpy()])
    if lineseq is not None:
        out.insert(2, am.LINESEQ, lineseq[out["_row"].to_numpy()])
    return out.drop(columns=["_row", "_k"]).reset_index(drop=True)


def _adtte(frame: pd.DataFrame, ids: pd.Series, study: str, *, with_dates: bool,
           flat: bool, lineseq: np.ndarray | None = None,
           left_days: np.ndarray | None = None) -> pd.DataFrame:
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
        if lineseq is not None:
            part[am.LINESEQ] = lineseq[has]
        if left_days is not None:
            part[am.AVALLB] = (np.where(cnsr == 0, left_days[has], np.nan)
                               if endpoint == "PFS" else np.nan)
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
    datasets = [
        ("ADSL", adam.adsl, outdir.ADSL_XPT, outdir.ADSL_CSV, "Subject-Level Analysis"),
        ("ADTTE", adam.adtte, outdir.ADTTE_XPT, outdir.ADTTE_CSV, "Time-to-Event Analysis")]
    if adam.adrs is not None:
        datasets.append(("ADRS", adam.adrs, outdir.ADRS_XPT, outdir.ADRS_CSV,
                         "Response Analysis (subject level)"))
    for dataset, frame, xpt, csv, label in datasets:
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
    recorded = stages["analyze"].get("artifacts", {}).get(outdir.RESULTS)
    if recorded != outdir.sha256_file(work / outdir.RESULTS):
        raise DesignChangedError(f"{outdir.RESULTS} changed since the analyze stage wrote it "
                                 "(SHA-256 differs): run `synthctl analyze` again")
    t0 = manifest.start_stage(STAGE)
    ctx = _context(loaded, work, manifest)
    if check_lock:
        _check_lock(ctx)
    if loaded.spec.design.missing == "impute":
        return _write_imputed(work, ctx, manifest, results, recorded, t0)
    frame, cohort = analysis_inputs(ctx)
    spec = loaded.spec
    typed, design = analytic_result(frame, cohort, spec)
    endpoint = spec.analysis.endpoint
    checks = checks_for(typed, design, results, endpoint)
    binary = binary_endpoint_name(results)
    responses = response_records(ctx, frame) if binary is not None else None
    left_days = (alignment_left_days(ctx, frame, endpoint)
                 if turnbull_results(results, endpoint) is not None else None)
    extra, mine = extra_checks(frame, cohort, spec, results, design, responses=responses,
                               binary=binary, left_days=left_days)
    checks = [*checks, *extra]
    verify_checks(checks, typed, results, extra=mine)  # before anything is written
    definition = (results["endpoints"][binary].get("definition") or ""
                  if binary is not None else "")
    adam = build_adam(frame, cohort, study=spec.study.name, covariates=list(spec.covariates),
                      flat=spec.source_kind == "flat", responses=responses,
                      response_name=binary or "ORR", response_definition=definition,
                      left_days=left_days)
    artifacts = write_adam(work, adam)
    null = (results["endpoints"][binary].get("trial_vs_null") or {}) if binary else {}
    script = render_reanalysis(typed, design, checks, spec, binary=binary,
                               null_rate=null.get("null_rate"), turnbull=left_days is not None,
                               multi_line=am.LINESEQ in adam.adsl.columns)
    (work / outdir.REANALYSIS_R).write_text(script, encoding="utf-8")
    artifacts[outdir.REANALYSIS_R] = outdir.sha256_file(work / outdir.REANALYSIS_R)
    records = {"ADSL": len(adam.adsl), "ADTTE": len(adam.adtte)}
    if adam.adrs is not None:
        records["ADRS"] = len(adam.adrs)
    manifest.end_stage(STAGE, t0, artifacts, results_sha256=recorded, records=records)
    return artifacts, (len(adam.adsl), len(adam.adtte))


# --- multiple imputation (design.missing: impute) -------------------------------------------
def _write_imputed(work: Path, ctx, manifest: Manifest, results: dict, recorded: str,
                   t0: float) -> tuple[dict[str, str], tuple[int, int]]:
    """The export of an imputed design: ADSL one record per subject and imputation (``IMPNUM``;
    the completed covariates, PS, weight, matched set and analysis flag of that imputation's
    design), ADTTE one record per subject and endpoint (outcomes are not imputed), and an R
    program that analyses each imputation and pools by Rubin's rules (no mice). Checked first:
    the per-imputation analyses pooled here (`reports.analysis_mi.pool_results`, as the
    analyze stage does) give results.json."""
    from reports.analysis_mi import pool_results
    from synthctl.reanalysis import checks_for, imputation_checks, render_reanalysis

    spec = ctx.spec
    a = spec.analysis
    if binary_endpoint_name(results) is not None:
        raise SpecError("export-adam: a response endpoint with design.missing: impute is not "
                        "supported (results.json pools only the time-to-event endpoint)")
    if a.bootstrap > 0:
        raise SpecError("export-adam: design.missing: impute with analysis.bootstrap > 0: the "
                        "primary limits are Boot-MI percentiles, which reanalysis.R cannot "
                        "re-derive; export a run with bootstrap: 0")
    cohort = outdir.read_cohort(work)
    covs = pd.read_parquet(work / outdir.COVARIATES)
    completed = pd.read_parquet(work / outdir.IMPUTED_COVARIATES)
    m = int(cohort[outdir.IMPUTATION].max())
    ids = covs[cn.PATIENT_ID].astype(str).to_numpy()
    parts, sets = [], []
    for k in range(1, m + 1):
        part = cohort[cohort[outdir.IMPUTATION] == k].reset_index(drop=True)
        done = completed[completed[outdir.IMPUTATION] == k].reset_index(drop=True)
        for what, frame in ((outdir.COHORT, part), (outdir.IMPUTED_COVARIATES, done)):
            if len(frame) != len(ids) or (frame[cn.PATIENT_ID].astype(str).to_numpy()
                                          != ids).any():
                raise DataError(f"{work}: {what} imputation {k} and {outdir.COVARIATES} do not "
                                "describe the same rows")
        parts.append(part)
        sets.append(done)
    frame = with_outcomes(ctx, covs)
    typed_all = [analytic_result(frame, part, spec) for part in parts]
    pooled = pool_results([typed for typed, _ in typed_all], a.conf_level).to_dict()
    typed, design = typed_all[0]
    checks = [*checks_for(typed, design, results, a.endpoint),
              *imputation_checks(results, a.endpoint)]
    verify_checks_imputed(checks, typed, results, pooled, a.endpoint)
    adsl_parts = []
    adam = None
    for k, (part, done) in enumerate(zip(parts, sets, strict=True), 1):
        full = done.drop(columns=[outdir.IMPUTATION]).copy()
        for col in frame.columns:
            if col not in full.columns:
                full[col] = frame[col].to_numpy()
        adam = build_adam(full, part, study=spec.study.name, covariates=list(spec.covariates),
                          flat=spec.source_kind == "flat", imputation=k)
        adsl_parts.append(adam.adsl)
    assert adam is not None
    adam = AdamData(pd.concat(adsl_parts, ignore_index=True), adam.adtte, adam.variables)
    artifacts = write_adam(work, adam)
    script = render_reanalysis(typed, design, checks, spec, imputations=m)
    (work / outdir.REANALYSIS_R).write_text(script, encoding="utf-8")
    artifacts[outdir.REANALYSIS_R] = outdir.sha256_file(work / outdir.REANALYSIS_R)
    manifest.end_stage(STAGE, t0, artifacts, results_sha256=recorded,
                       records={"ADSL": len(adam.adsl), "ADTTE": len(adam.adtte)})
    return artifacts, (len(adam.adsl), len(adam.adtte))


def verify_checks_imputed(checks, typed, results: dict, pooled: dict, endpoint: str) -> None:
    """`verify_checks` against the pooled analysis (results.json shape) of the imputations."""
    from synthctl.reanalysis import verify_checks

    verify_checks(checks, typed, results, extra={"endpoints": {endpoint: pooled}})


# --- the response endpoint and the alignment's interval bounds -------------------------------
def binary_endpoint_name(results: dict) -> str | None:
    """The binary endpoint results.json reports (``kind: binary``, e.g. ORR), or None."""
    names = [k for k, v in (results.get("endpoints") or {}).items()
             if isinstance(v, dict) and v.get("kind") == "binary"
             and isinstance(v.get("proportion"), dict)]
    if len(names) > 1:
        raise DataError(f"{outdir.RESULTS}: several binary endpoints ({names}); the export "
                        "holds one responder parameter")
    return names[0] if names else None


def turnbull_results(results: dict, endpoint: str) -> dict | None:
    """``endpoints.<endpoint>.alignment.estimates.turnbull`` when the alignment ran."""
    al = ((results.get("endpoints") or {}).get(endpoint) or {}).get("alignment")
    est = (al or {}).get("estimates") if isinstance(al, dict) else None
    return est.get("turnbull") if isinstance(est, dict) else None


def response_records(ctx, frame: pd.DataFrame) -> pd.DataFrame:
    """Per row of ``frame``: `connectors.columns.RESPONSE` (0/1) and, for a registry study,
    ``best_response`` (CR/PR/SD/PD/NE), read by the analyze stage's own response source
    (`synthctl.stages._binary`: registry tumour assessments, trial ADRS, or the flat file's
    response column, with the spec's response rule). The numbers they give are checked
    against results.json before anything is written (`extra_checks`)."""
    from synthctl.stages._binary import BINARY_SOURCES, ORR

    spec = ctx.spec
    if spec.data is None and (spec.analysis.response is None or spec.trial is None
                              or spec.trial.adrs is None):
        raise SpecError("export-adam: results.json has a response endpoint but the spec has "
                        "no analysis.response with trial.adrs")
    got = BINARY_SOURCES[ORR].read(ctx, frame, stage="export-adam")
    out = pd.DataFrame({cn.RESPONSE: got.value.to_numpy()}, index=frame.index)
    if got.detail is not None:
        out["best_response"] = got.detail.to_numpy()
    return out


def alignment_left_days(ctx, frame: pd.DataFrame, endpoint: str) -> np.ndarray:
    """The PFS interval left bound of every row (days; NaN when censored), as the analyze
    stage's alignment reads it (`synthctl.stages._alignment.interval_columns`): exact events
    (deaths, or a left bound equal to the time) carry their event time.

    The analysis holds the bound in the analysis unit (days / days-per-unit); the day value
    exported is chosen so that R's ``AVALLB / days_per_unit`` is that very double.
    """
    from synthctl.stages._alignment import EXACT, LEFT, interval_columns

    if endpoint != "PFS":
        raise DataError(f"export-adam: the endpoint alignment is a PFS analysis, the primary "
                        f"endpoint is {endpoint}")
    with_iv, why = interval_columns(ctx, frame)
    if with_iv is None:
        raise DataError(f"export-adam: results.json has Turnbull estimates but the progression "
                        f"intervals cannot be read now ({why})")
    unit = ctx.spec.analysis.landmark_unit
    dpu = float(cn.DAYS_PER_UNIT[unit])
    time_col, event_col = cn.ENDPOINTS[endpoint]
    days = pd.to_numeric(frame[time_col], errors="coerce").to_numpy(dtype=float)
    event = pd.to_numeric(frame[event_col], errors="coerce").to_numpy(dtype=float) == 1
    left = with_iv[LEFT].to_numpy(dtype=float)
    exact = with_iv[EXACT].to_numpy(dtype=bool) | (left == cn.days_to(unit, days))
    out = np.full(len(frame), np.nan)
    for i in np.flatnonzero(event & np.isfinite(left)):
        out[i] = days[i] if exact[i] else _days_of(left[i], dpu)
    return out


def _days_of(value: float, dpu: float) -> float:
    """A day count ``d`` with ``d / dpu == value`` exactly (the whole day when one works)."""
    guess = value * dpu
    for d in (round(guess), guess, np.nextafter(guess, np.inf), np.nextafter(guess, -np.inf)):
        if d / dpu == value:
            return float(d)
    return float(guess)


def extra_checks(frame: pd.DataFrame, cohort: pd.DataFrame, spec, results: dict, design, *,
                 responses: pd.DataFrame | None, binary: str | None,
                 left_days: np.ndarray | None) -> tuple[list, dict]:
    """The checks of the binary endpoint and the Turnbull landmarks (from results.json), and
    the export's own re-computation of them on the exported data (results.json shape)."""
    from synthctl.reanalysis import binary_checks, turnbull_checks

    a = spec.analysis
    time_col, event_col = cn.ENDPOINTS[a.endpoint]
    keep = ~(pd.to_numeric(frame[time_col], errors="coerce").isna()
             | pd.to_numeric(frame[event_col], errors="coerce").isna()).to_numpy()
    weight = cohort[outdir.WEIGHT].to_numpy(dtype=float)
    rows = keep & cohort[outdir.INCLUDED].to_numpy(dtype=bool) & (weight > 0)
    checks: list = []
    mine: dict = {"endpoints": {}}
    if binary is not None and responses is not None:
        from reports.binary import binomial_test, compare_proportions

        res = results["endpoints"][binary]
        checks += binary_checks(results, binary)
        data = pd.DataFrame({"y": responses[cn.RESPONSE].to_numpy(dtype=float)[rows],
                             "arm": frame[cn.ARM].to_numpy()[rows], "w": weight[rows]})
        # the analysis's own cluster (reports.analysis.designed_frame: the patient when
        # patients contribute several rows, else the matched set), on the same analysed rows
        if design.cluster_col is not None:
            if len(design.frame) != len(data):
                raise DataError("export-adam: the analysed rows of the response endpoint and "
                                "of the time-to-event endpoint differ")
            data["cluster"] = design.frame[design.cluster_col].to_numpy()
        comp = compare_proportions(data, response_col="y", arm_col="arm",
                                   treated_value=cn.TRIAL, weight_col="w",
                                   cluster_col="cluster" if "cluster" in data else None,
                                   conf_level=a.conf_level)
        ours: dict = {"proportion": comp.to_dict()}
        null = res.get("trial_vs_null")
        if isinstance(null, dict) and null.get("null_rate") is not None:
            y = data.loc[data["arm"] == cn.TRIAL, "y"].to_numpy(dtype=int)
            ours["trial_vs_null"] = binomial_test(int(y.sum()), len(y), null["null_rate"],
                                                  a.conf_level).to_dict()
        mine["endpoints"][binary] = ours
    if left_days is not None:
        from reports.turnbull import turnbull_estimate

        tb = turnbull_results(results, a.endpoint)
        checks += turnbull_checks(results, a.endpoint)
        unit = a.landmark_unit
        days = pd.to_numeric(frame[time_col]).to_numpy(dtype=float)[rows]
        event = pd.to_numeric(frame[event_col]).to_numpy(dtype=float)[rows] == 1
        lo = cn.days_to(unit, np.where(event, left_days[rows], days))
        hi = np.where(event, cn.days_to(unit, days), np.nan)
        trial = frame[cn.ARM].to_numpy()[rows] == cn.TRIAL
        lms = []
        for lm in tb["landmarks"]:
            est = {}
            for name, m in (("trial", trial), ("control", ~trial)):
                curve = turnbull_estimate(lo[m], hi[m], weight[rows][m], time_unit=unit)
                est[name] = (float(curve.survival_at(lm["time"])[0])
                             if lm["time"] <= curve.max_time else None)
            diff = (None if None in est.values() else est["trial"] - est["control"])
            lms.append({k: {"estimate": v} for k, v in (*est.items(), ("difference", diff))})
        mine["endpoints"][a.endpoint] = {"alignment": {"estimates": {"turnbull": {
            "landmarks": lms}}}}
    return checks, mine


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
    cohort = outdir.read_cohort(ctx.folder)
    covs = pd.read_parquet(ctx.folder / outdir.COVARIATES)
    if len(cohort) != len(covs) or (cohort[cn.PATIENT_ID].to_numpy()
                                    != covs[cn.PATIENT_ID].astype(str).to_numpy()).any():
        raise DataError(f"{ctx.folder}: {outdir.COHORT} and {outdir.COVARIATES} do not describe "
                        "the same rows")
    return with_outcomes(ctx, covs), cohort


def with_outcomes(ctx, covs: pd.DataFrame) -> pd.DataFrame:
    """``covs`` with the outcome columns (days, event) the analyze stage reads."""
    from synthctl.stages.analyze import _outcomes, _registry_outcomes

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
    return frame


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
