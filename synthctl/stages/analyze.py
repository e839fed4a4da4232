"""Analyze stage: outcomes are read only now, on the locked design.

Before any outcome is read, the design's artifacts and the spec's design part are compared with
the hashes the design stage recorded (`Manifest.check_design_lock`). Then the outcomes are
fetched (registry: `RegistryConnector.outcomes`; trial: ADTTE; flat file: its time and event
columns; binary endpoints from their sources, `synthctl.stages._binary`), converted from days
to the spec's landmark unit, and handed with the locked design to
`reports.analysis.analyze_study`, which owns the whole analysis (endpoints, bootstrap,
sensitivity analyses). This stage only reads, builds the designs (covariates only) and writes.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from connectors import columns as cn
from synthctl import outdir
from synthctl.errors import DataError
from synthctl.outdir import (
    FIGURES,
    INCLUDED,
    MATCH_ID,
    read_cohort,
    read_design,
    read_json,
    write_results,
)
from synthctl.spec import Design, StudySpec
from synthctl.stages._binary import read_binary_outcomes, wanted_sources
from synthctl.stages._context import (
    ALIGNMENT_FIGURE,
    COHORT,
    COVARIATES,
    DESIGN,
    EXTRACT_INFO,
    KM_FIGURE,
    RESULTS,
    StageContext,
    stage_errors,
)
from synthctl.stages.design import fit_design, save_svg

RESULTS_SCHEMA_VERSION = 1
TIME, EVENT = "time", "event"


def run_analyze(ctx: StageContext) -> int:
    """Run the analyze stage; return 1 if a declared check failed (balance), else 0."""
    from reports.analysis import AnalysisDesign, analyze_study

    t0 = ctx.manifest.start_stage("analyze")
    spec = ctx.spec
    if spec.design.missing == "impute":
        from synthctl.stages.imputed import run_imputed_analyze

        return run_imputed_analyze(ctx, t0)
    cohort = read_cohort(ctx.folder)
    covs = pd.read_parquet(ctx.folder / COVARIATES)
    if len(cohort) != len(covs) or (cohort[cn.PATIENT_ID].to_numpy()
                                    != covs[cn.PATIENT_ID].astype(str).to_numpy()).any():
        raise DataError(f"{ctx.folder}: {COHORT} and {COVARIATES} do not describe the same rows")
    design = read_design(ctx.folder)
    with ctx.progress.step("reading outcomes"):
        days, event = _outcomes(ctx, covs)
    frame = read_binary_outcomes(ctx, covs)  # issue 15: binary endpoints' outcomes
    frame[TIME] = cn.days_to(spec.analysis.landmark_unit, days)
    frame[EVENT] = event
    included = cohort[INCLUDED].to_numpy(dtype=bool)
    no_outcome = (frame[TIME].isna() | frame[EVENT].isna()).to_numpy()
    if (no_outcome & included).any():
        n = int((no_outcome & included).sum())
        ctx.manifest.warn("analyze", f"{n} selected patient(s) without {spec.analysis.endpoint} "
                          "follow-up were left out of the outcome analysis")
    keep = ~no_outcome
    locked = AnalysisDesign(cohort[outdir.WEIGHT].to_numpy(dtype=float)[keep], included[keep],
                            cohort[MATCH_ID].to_numpy()[keep], spec.design.yields)
    eligible = frame[keep].reset_index(drop=True)
    settings = analysis_settings(spec, ctx.n_jobs, binary=True)
    if spec.analysis.endpoint_alignment is not None:
        eligible, settings = _with_alignment(ctx, eligible, settings)
    with stage_errors("analyze", ctx.loaded):
        sensitivities = [_alternative(eligible, spec)]
        if spec.registry is not None and spec.registry.index.selection == "first":
            with ctx.progress.step("sensitivity: every eligible index line"):
                sensitivities.append(_all_lines(ctx))
        B = spec.analysis.bootstrap
        bar = ctx.progress.bar(f"bootstrap ({B} replicates)", B) if B else nullcontext(None)
        with bar as advance:
            result = analyze_study(eligible, locked, Redesign(spec, spec.design), settings,
                                   sensitivities=sensitivities,
                                   progress=None if advance is None
                                   else (lambda done, total: advance(1)))
        ctx.keep["analysis"] = result
        for message in result.warnings:
            ctx.manifest.warn("analyze", message)
        figures = _km(ctx, result, spec)
        if spec.analysis.endpoint_alignment is not None:
            figures.update(_alignment_figure(ctx, eligible, locked, settings))
    results = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "study": spec.study.name,
        "counts": _counts(ctx, cohort, design),
        "design": {"method": spec.design.method, "estimand": design.get("estimand"),
                   "balance_passed": bool(design["balance"]["passed"]),
                   "balance_threshold": design["balance"]["threshold"],
                   "max_abs_smd": design["balance"]["max_abs_smd"]},
        "primary_endpoint": spec.analysis.primary_endpoint,
        **result.to_dict(),
    }
    digest = write_results(ctx.folder, results)
    ctx.manifest.end_stage("analyze", t0, {RESULTS: digest, **figures},
                           design_sha256_at_analysis=ctx.manifest.data["stages"]["design"]
                           ["artifacts"].get(DESIGN))
    return 0 if results["design"]["balance_passed"] else 1


def analysis_settings(spec: StudySpec, n_jobs: int = 1, *, binary: bool = False):
    """`reports.analysis.AnalysisSettings` of the spec's ``analysis:`` block.

    The time-to-event endpoint; with ``binary``, also the binary endpoints the spec asks for
    (`synthctl.stages._binary`; their 0/1 columns must be in the frame), the primary one
    first, and the blocks computed on the locked design (Simon, duration of response).
    """
    from dataclasses import replace

    from reports.analysis import time_to_event_settings

    a = spec.analysis
    settings = time_to_event_settings(
        a.endpoint, time_col=TIME, event_col=EVENT, landmarks=a.landmarks,
        unit=a.landmark_unit, null_rate=a.null_rate, rmst_tau=a.rmst_tau,
        conf_type=a.conf_type, arm_col=cn.ARM, treated_value=cn.TRIAL, id_col=cn.PATIENT_ID,
        conf_level=a.conf_level, bootstrap=a.bootstrap, n_jobs=n_jobs,
        random_state=spec.study.seed)
    if not binary:
        return settings
    endpoints, blocks = _binary_endpoints(spec)
    ordered = sorted((*settings.endpoints, *endpoints),
                     key=lambda e: e.name != a.primary_endpoint)  # stable: primary first
    return replace(settings, endpoints=tuple(ordered), blocks=blocks)


def _binary_endpoints(spec: StudySpec) -> tuple[list, dict[str, tuple]]:
    """The spec's binary endpoints (`reports.endpoints.Binary`) and the blocks of every
    endpoint: the Simon analysis on its target, the duration of response."""
    from reports.binary_endpoint import (
        DurationBlock,
        LandmarkSimonBlock,
        ResponseSimonBlock,
        SimonSettings,
    )
    from reports.endpoints import Binary
    from synthctl.stages._binary import onset_col, simon_target, value_col

    a = spec.analysis
    endpoints, blocks = [], {}
    for src in wanted_sources(spec):
        endpoints.append(Binary(src.name, value_col(src.name), src.null_rate(spec),
                                src.definition(spec)))
        if src.has_onset:
            blocks[src.name] = [DurationBlock(
                value_col(src.name), onset_col(src.name), TIME, EVENT, a.landmark_unit,
                unavailable=None if a.endpoint == "PFS" else
                f"needs the PFS endpoint (analysis.endpoint is {a.endpoint})")]
    if a.simon is not None:
        s = a.simon
        target = simon_target(spec)
        settings = SimonSettings(s.p0, s.p1, s.alpha, s.power, s.design)
        if target == a.endpoint:  # the time-to-event rate at the first landmark
            block = LandmarkSimonBlock(
                settings, TIME, EVENT, a.landmarks[0], cn.PATIENT_ID, a.landmark_unit,
                cn.INDEX_DATE, outcome="alive" if a.endpoint == "OS" else "event-free")
        else:
            block = ResponseSimonBlock(settings, value_col(target), cn.INDEX_DATE)
        blocks.setdefault(target, []).append(block)
    return endpoints, {k: tuple(v) for k, v in blocks.items()}


def _as_design(res, design: Design):
    """`reports.analysis.AnalysisDesign` of a `matching.DesignResult` of ``design``."""
    from reports.analysis import AnalysisDesign

    return AnalysisDesign.from_result(res)


@dataclass(frozen=True)
class Redesign:
    """The spec's design re-fitted on a bootstrap resample (covariates only), with its seed."""

    spec: StudySpec
    design: Design

    def __call__(self, replicate: pd.DataFrame, seed: int | None = None):

        spec = self.spec
        if seed is not None:
            spec = spec.model_copy(update={"study": spec.study.model_copy(update={"seed": seed})})
        # resampled patients repeat: the id check of match_cohort does not apply here
        res = fit_design(replicate, spec, self.design, id_col=None)
        return _as_design(res, self.design)


def _with_alignment(ctx: StageContext, eligible: pd.DataFrame, settings):
    """``eligible`` with the progression interval columns and ``settings`` with the
    endpoint's `reports.alignment_block.AlignmentBlock` (``endpoints.PFS.alignment``; with
    ``primary: true`` its result puts the harmonised numbers in the primary result)."""
    from dataclasses import replace

    from synthctl.stages._alignment import alignment_block

    with ctx.progress.step("endpoint alignment: progression intervals"):
        frame, block = alignment_block(ctx, eligible, time_col=TIME, event_col=EVENT)
    endpoint = ctx.spec.analysis.endpoint
    blocks = {**settings.blocks, endpoint: (*settings.blocks.get(endpoint, ()), block)}
    return frame, replace(settings, blocks=blocks)


def _alignment_figure(ctx: StageContext, eligible: pd.DataFrame, locked, settings
                      ) -> dict[str, str]:
    """The gap ECDF figure of the analysed rows as SVG ({artifact: sha256}; {} when no
    assessment dates are known)."""
    from reports.analysis import designed_frame
    from synthctl.stages._alignment import gap_figure

    data = designed_frame(eligible, locked, settings)
    fig = gap_figure(ctx, data.frame, data.weight_col)
    if fig is None:
        return {}
    (ctx.folder / FIGURES).mkdir(exist_ok=True)
    save_svg(fig, ctx.folder / ALIGNMENT_FIGURE)
    return {ALIGNMENT_FIGURE: _sha(ctx, ALIGNMENT_FIGURE)}


def _outcomes(ctx: StageContext, covs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Outcome time (days) and event of every row of ``covs``, in its order."""
    spec = ctx.spec
    time_col, event_col = cn.ENDPOINTS[spec.analysis.endpoint]
    if spec.data is not None:
        from connectors.flatfile import load_flat_outcomes

        d = spec.data
        with stage_errors("analyze", ctx.loaded, str(d.path)):
            out = load_flat_outcomes(d.path, id_col=d.id, time_col=d.time, event_col=d.event,
                                     time_unit=d.time_unit, endpoint=spec.analysis.endpoint)
        merged = covs[[cn.PATIENT_ID]].astype(str).merge(out, on=cn.PATIENT_ID, how="left")
    else:
        merged = _registry_outcomes(ctx, covs)
    return (merged[time_col].to_numpy(dtype=float),
            pd.to_numeric(merged[event_col], errors="coerce").to_numpy(dtype=float))


def _registry_outcomes(ctx: StageContext, covs: pd.DataFrame) -> pd.DataFrame:
    from connectors.trial import load_trial_arm
    from synthctl.stages._registry import registry_connector

    spec = ctx.spec
    reg, tri = spec.registry, spec.trial
    assert reg is not None and tri is not None
    keys = [cn.PATIENT_ID, cn.LINE_ID, cn.INDEX_DATE]
    control = covs.loc[covs[cn.ARM] == cn.CONTROL, keys]
    with stage_errors("analyze", ctx.loaded, "registry outcomes"):
        conn = registry_connector(spec)
        try:
            out_c = conn.outcomes(control)
            from synthctl.stages._quality import run_outcome_checks

            ctx.manifest.data["stages"]["analyze"]["validation"] = run_outcome_checks(
                ctx, conn, out_c)
        finally:
            conn.close()
    with stage_errors("analyze", ctx.loaded, f"trial file {tri.adtte.name}"):
        trial = load_trial_arm(tri.adsl, tri.adtte, paramcd=tri.paramcd,
                               variable_map=tri.variable_map)
    outcome_cols = [c for c in cn.OUTCOME_COLUMNS if c in out_c.columns]
    on = [cn.PATIENT_ID, cn.LINE_ID] if cn.LINE_ID in out_c.columns else [cn.PATIENT_ID]
    ctrl = covs.loc[covs[cn.ARM] == cn.CONTROL, on].merge(
        out_c[on + outcome_cols].drop_duplicates(on), on=on, how="left")
    tri_o = covs.loc[covs[cn.ARM] == cn.TRIAL, [cn.PATIENT_ID]].merge(
        trial[[cn.PATIENT_ID, *[c for c in cn.OUTCOME_COLUMNS if c in trial.columns]]],
        on=cn.PATIENT_ID, how="left")
    merged = pd.concat([tri_o, ctrl], ignore_index=True)
    order = pd.concat([covs.loc[covs[cn.ARM] == cn.TRIAL], covs.loc[covs[cn.ARM] == cn.CONTROL]])
    merged.index = order.index
    return merged.sort_index()


def _alternative(eligible: pd.DataFrame, spec: StudySpec):
    """The alternative design family (weighting for a matched primary design, and back)."""
    from matching import MatchingError
    from reports.analysis import Sensitivity

    alt = _alternative_design(spec)
    description = _describe_design(alt)
    try:
        res = fit_design(eligible, spec, alt)
    except MatchingError as exc:
        return Sensitivity("alternative_design", description, None, failure=str(exc))
    return Sensitivity(
        "alternative_design", description,
        _as_design(res, alt),
        info={"design": alt.model_dump(mode="json"), "max_abs_smd": float(res.max_abs_smd),
              "ess": {k: float(v) for k, v in dict(res.ess).items()}})


def _all_lines(ctx: StageContext):
    """Every eligible index line of a registry patient instead of the first one.

    Same eligibility, covariates and design; a patient may contribute several lines, so the
    Cox and KM variances are clustered on the patient (`reports.analysis.designed_frame`).
    Registry validation exclusions of the primary pool are not re-applied here (the manifest
    lists them).
    """
    from connectors.trial import load_trial_arm
    from matching import MatchingError
    from reports.analysis import Sensitivity
    from synthctl.stages._registry import index_rule, registry_connector

    spec = ctx.spec
    reg, tri = spec.registry, spec.trial
    assert reg is not None and tri is not None
    description = "every eligible index line of each registry patient (not only the first)"
    # a database or file error here fails the run like any other (issue 20: never a silent
    # {"error": ...} in results.json); only a design that cannot be fitted on every line
    # makes this optional analysis "not estimable"
    with registry_connector(spec) as conn:
        pool = conn.candidate_pool(index_rule(spec, selection="all"),
                                   eligibility=list(spec.eligibility),
                                   include_outcomes=True).frame
    trial = load_trial_arm(tri.adsl, tri.adtte, paramcd=tri.paramcd,
                           variable_map=tri.variable_map)
    frame = pd.concat([trial, pool], ignore_index=True)
    time_col, event_col = cn.ENDPOINTS[spec.analysis.endpoint]
    frame = frame[frame[time_col].notna() & frame[event_col].notna()].reset_index(drop=True)
    if spec.analysis.primary is not None:  # the binary primary's outcome of every line
        frame = read_binary_outcomes(ctx, frame, warn=False)
    frame[TIME] = cn.days_to(spec.analysis.landmark_unit, frame[time_col].astype(float))
    frame[EVENT] = frame[event_col].astype(int)
    info = {"n_lines": len(pool), "n_patients": int(pool[cn.PATIENT_ID].nunique())}
    try:
        if spec.design.missing == "impute":  # imputed afresh (outcome-blind), pooled
            from reports.analysis import AnalysisDesign
            from synthctl.stages.imputed import fit_imputed_design

            imp = fit_imputed_design(frame, spec, id_col=None)
            return Sensitivity(
                "all_lines", description + f", imputed {imp.m} times (each line a row of "
                "the imputation model)", None, frame=frame,
                info={**info, "max_abs_smd": float(imp.max_abs_smd)},
                imputed=tuple(AnalysisDesign.from_result(d) for d in imp.designs))
        res = fit_design(frame, spec, id_col=None)
    except MatchingError as exc:
        return Sensitivity("all_lines", description, None, failure=ctx.loaded.scrub(str(exc)))
    return Sensitivity("all_lines", description,
                       _as_design(res, spec.design),
                       frame=frame,
                       info={**info, "max_abs_smd": float(res.max_abs_smd)})


def _sha(ctx: StageContext, name: str) -> str:
    from synthctl.outdir import sha256_file

    return sha256_file(ctx.folder / name)


def _alternative_design(spec: StudySpec):
    d = spec.design
    if d.yields != "weights":
        return d.model_copy(update={"method": "weighting", "weights": None})
    return d.model_copy(update={"method": "nearest", "ratio": 1, "caliper": 0.2,
                                "caliper_scale": "logit", "estimand": "ATT"})


def _describe_design(d) -> str:
    from matching.methods import describe_method

    return describe_method(d.method, d.estimand, d.method_options())


def _counts(ctx: StageContext, cohort: pd.DataFrame, design: dict) -> dict[str, Any]:
    info = read_json(ctx.folder / EXTRACT_INFO)
    included = cohort[INCLUDED]
    is_trial = cohort[cn.ARM] == cn.TRIAL
    ess = design.get("ess") or {}
    return {
        "trial": int(is_trial.sum()),
        "control_pool": int(info["counts"]["control_pool"]),
        "trial_selected": int((included & is_trial).sum()),
        "control_selected": int((included & ~is_trial).sum()),
        "control_ess": ess.get(cn.CONTROL),
    }


def km_plot(result, spec: StudySpec):
    """The study's KM figure (trial, synthetic control, unadjusted registry; numbers at risk)
    of a `reports.StudyAnalysis`, in the spec's time unit; a Figure, never shown."""
    from reports.figures import km_figure
    from synthctl.stages.report import design_kind

    a = spec.analysis
    primary = result.analytic[a.endpoint]
    comp = primary.comparison
    naive = result.naive[a.endpoint].comparison
    m = getattr(primary, "m", None)  # multiple imputation: the curves are pooled
    return km_figure(comp.trial_curve, comp.control_curve,
                     unadjusted_control=naive.control_curve, landmark=a.landmarks[0],
                     null_rate=a.null_rate, time_unit=a.landmark_unit,
                     control_label="Synthetic control" + (
                         " (matched)" if design_kind(spec.design) == "matched" else "") + (
                         f", mean of {m} imputations" if m else ""))


def _km(ctx: StageContext, result, spec: StudySpec) -> dict[str, str]:
    """The KM figure with numbers at risk as SVG; returns {artifact: sha256}."""
    fig = km_plot(result, spec)
    (ctx.folder / FIGURES).mkdir(exist_ok=True)
    save_svg(fig, ctx.folder / KM_FIGURE)
    return {KM_FIGURE: _sha(ctx, KM_FIGURE)}
