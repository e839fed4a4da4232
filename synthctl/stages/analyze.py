"""Analyze stage: outcomes are read only now, on the locked design.

Before any outcome is read, the design's artifacts and the spec's design part are compared with
the hashes the design stage recorded (`Manifest.check_design_lock`). Then the outcomes are
fetched (registry: `RegistryConnector.outcomes`; trial: ADTTE; flat file: its time and event
columns), converted from days to the spec's landmark unit, and compared with
`reports.compare_arms` (and `reports.bootstrap.bootstrap_comparison` when ``bootstrap > 0``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from connectors import columns as cn
from synthctl.errors import DataError
from synthctl.outdir import read_json, write_json
from synthctl.spec import StudySpec
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
from synthctl.stages.design import MATCHING_METHODS, fit_design, save_svg

RESULTS_SCHEMA_VERSION = 1
TIME, EVENT, WEIGHT, CLUSTER = "time", "event", "weight", "cluster"


def run_analyze(ctx: StageContext) -> int:
    """Run the analyze stage; return 1 if a declared check failed (balance), else 0."""
    t0 = ctx.manifest.start_stage("analyze")
    spec = ctx.spec
    cohort = pd.read_csv(ctx.folder / COHORT, dtype={cn.PATIENT_ID: str, "match_id": str},
                         keep_default_na=False, na_values={"ps": [""], "weight": [""]})
    covs = pd.read_parquet(ctx.folder / COVARIATES)
    if len(cohort) != len(covs) or (cohort[cn.PATIENT_ID].to_numpy()
                                    != covs[cn.PATIENT_ID].astype(str).to_numpy()).any():
        raise DataError(f"{ctx.folder}: {COHORT} and {COVARIATES} do not describe the same rows")
    design = read_json(ctx.folder / DESIGN)
    with ctx.progress.step("reading outcomes"):
        days, event = _outcomes(ctx, covs)
    unit = spec.analysis.landmark_unit
    frame = covs.copy()
    frame[TIME] = cn.days_to(unit, days)
    frame[EVENT] = event
    frame[WEIGHT] = cohort["weight"].to_numpy(dtype=float)
    frame[CLUSTER] = cohort["match_id"].where(cohort["match_id"] != "", np.nan).to_numpy()
    frame["included"] = cohort["included"].astype(str).str.lower().eq("true").to_numpy()
    no_outcome = frame[TIME].isna() | frame[EVENT].isna()
    if (no_outcome & frame["included"]).any():
        n = int((no_outcome & frame["included"]).sum())
        ctx.manifest.warn("analyze", f"{n} selected patient(s) without {spec.analysis.endpoint} "
                          "follow-up were left out of the outcome analysis")
    analysed = frame[frame["included"] & ~no_outcome].copy()
    cluster = spec.design.method in MATCHING_METHODS
    with stage_errors("analyze", ctx.loaded):
        comp = _compare(analysed, spec, cluster=cluster)
        primary = comp.to_dict()
        boot = None
        if spec.analysis.bootstrap > 0:
            boot = _bootstrap(ctx, frame[~no_outcome], spec)
            primary = boot.apply().to_dict()
        if spec.analysis.endpoint_alignment is not None:
            primary, alignment_figure = _with_alignment(ctx, analysed, spec, primary,
                                                        cluster=cluster)
        naive = _compare(frame[~no_outcome].assign(**{WEIGHT: 1.0}), spec, cluster=False)
        sensitivity = _sensitivity(frame[~no_outcome], spec, primary, naive, ctx.manifest)
        if spec.registry is not None and spec.registry.index.selection == "first":
            with ctx.progress.step("sensitivity: every eligible index line"):
                sensitivity["all_lines"] = _all_lines(ctx)
        figures = _km(ctx, comp, naive, spec)
        if spec.analysis.endpoint_alignment is not None:
            figures.update(alignment_figure)
    counts = _counts(ctx, cohort, design)
    results = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "study": spec.study.name,
        "counts": counts,
        "design": {"method": spec.design.method, "estimand": design.get("estimand"),
                   "balance_passed": bool(design["balance"]["passed"]),
                   "balance_threshold": design["balance"]["threshold"],
                   "max_abs_smd": design["balance"]["max_abs_smd"]},
        "endpoints": {spec.analysis.endpoint: primary},
        "sensitivity": sensitivity,
    }
    if boot is not None:
        results["bootstrap"] = boot.to_dict()
    digest = write_json(ctx.folder / RESULTS, results)
    ctx.manifest.end_stage("analyze", t0, {RESULTS: digest, **figures},
                           design_sha256_at_analysis=ctx.manifest.data["stages"]["design"]
                           ["artifacts"].get(DESIGN))
    return 0 if results["design"]["balance_passed"] else 1


def _sha(ctx: StageContext, name: str) -> str:
    from synthctl.outdir import sha256_file

    return sha256_file(ctx.folder / name)


def _compare_kwargs(spec: StudySpec) -> dict[str, Any]:
    a = spec.analysis
    return dict(time_col=TIME, event_col=EVENT, arm_col=cn.ARM, treated_value=cn.TRIAL,
                landmarks=list(a.landmarks), time_unit=a.landmark_unit, null_rate=a.null_rate,
                rmst_tau=a.rmst_tau, conf_type=a.conf_type, conf_level=a.conf_level)


def _compare(frame: pd.DataFrame, spec: StudySpec, *, cluster: bool, weighted: bool = True):
    from reports.compare import compare_arms

    # a patient with several index lines is one cluster (KM, and Cox unless matched sets are)
    by_patient = cn.PATIENT_ID if frame[cn.PATIENT_ID].duplicated().any() else None
    return compare_arms(frame, weight_col=WEIGHT if weighted else None,
                        cluster_col=CLUSTER if cluster else by_patient, km_cluster_col=by_patient,
                        **_compare_kwargs(spec))


def _with_alignment(ctx: StageContext, analysed: pd.DataFrame, spec: StudySpec,
                    primary: dict[str, Any], *, cluster: bool
                    ) -> tuple[dict[str, Any], dict[str, str]]:
    """``primary`` with the ``alignment`` block (and {figure: sha256}); with ``primary: true``
    the harmonised landmarks / HR / RMST replace the primary ones (the standard ones stay
    under ``alignment.estimates.right_point``)."""
    from synthctl.stages._alignment import alignment_block

    by_patient = cn.PATIENT_ID if analysed[cn.PATIENT_ID].duplicated().any() else None
    with ctx.progress.step("endpoint alignment"):
        block, figure = alignment_block(
            ctx, analysed, _compare_kwargs(spec),
            {"weight_col": WEIGHT, "cluster_col": CLUSTER if cluster else by_patient,
             "km_cluster_col": by_patient})
    out = {**primary, "alignment": block}
    al = spec.analysis.endpoint_alignment
    if al is not None and al.primary and block.get("estimates"):
        harmonised = block["estimates"]["harmonised"]
        out.update({k: harmonised[k] for k in ("landmarks", "hazard_ratio", "rmst")})
    figures = {}
    if figure is not None:
        (ctx.folder / "figures").mkdir(exist_ok=True)
        save_svg(figure, ctx.folder / ALIGNMENT_FIGURE)
        figures[ALIGNMENT_FIGURE] = _sha(ctx, ALIGNMENT_FIGURE)
    return out, figures


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
    from connectors.registry import RegistryConnector
    from connectors.trial import load_trial_arm

    spec = ctx.spec
    reg, tri = spec.registry, spec.trial
    assert reg is not None and tri is not None
    keys = [cn.PATIENT_ID, cn.LINE_ID, cn.INDEX_DATE]
    control = covs.loc[covs[cn.ARM] == cn.CONTROL, keys]
    with stage_errors("analyze", ctx.loaded, "registry outcomes"):
        conn = RegistryConnector(reg.url, mapping=reg.mapping, schema=reg.schema_)
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


def _bootstrap(ctx: StageContext, eligible: pd.DataFrame, spec: StudySpec):
    """Bootstrap the whole design + comparison; the design is re-run on covariates only.

    Returns the `BootstrapResult`; ``.apply()`` is the comparison with bootstrap SE/limits
    as primary (the analytic ones kept under ``analytic``), as results.json specifies.
    """
    from reports.bootstrap import bootstrap_comparison

    design = spec.design

    def redesign(replicate: pd.DataFrame) -> pd.DataFrame:
        # resampled patients repeat: the id check of match_cohort does not apply here
        res = fit_design(replicate, spec, design, id_col=None)
        match_id = pd.Series(res.match_id).astype("Float64")
        return pd.DataFrame({"weight": np.asarray(res.weights, dtype=float),
                             "cluster": match_id.to_numpy(dtype=float, na_value=np.nan)},
                            index=replicate.index)

    B = spec.analysis.bootstrap
    multi_rows = bool(eligible[cn.PATIENT_ID].duplicated().any())
    blind_cols = [c for c in eligible.columns if c not in (WEIGHT, CLUSTER, "included")]
    with ctx.progress.bar(f"bootstrap ({B} replicates)", B) as advance:
        return bootstrap_comparison(
            eligible[blind_cols].reset_index(drop=True), redesign, n_boot=B,
            random_state=spec.study.seed, n_jobs=ctx.n_jobs,
            id_col=cn.PATIENT_ID if multi_rows else None,
            progress=lambda done, total: advance(1), **_compare_kwargs(spec),
        )


def _sensitivity(eligible: pd.DataFrame, spec: StudySpec, primary: dict[str, Any],
                 naive, manifest) -> dict[str, Any]:
    """Naive comparison, the alternative design family, and the E-value of the HR.

    A sensitivity analysis that cannot be estimated (e.g. the alternative design does not
    converge) is recorded with its error and a warning; it never stops the primary analysis.
    """
    from matching import MatchingError
    from reports.errors import EstimationError

    out: dict[str, Any] = {}
    out["naive"] = {"description": "unadjusted: every eligible registry patient, unweighted",
                    **naive.to_dict()}
    alt_design = _alternative_design(spec)
    try:
        out["alternative_design"] = _alternative(eligible, spec, alt_design)
    except (MatchingError, EstimationError) as exc:
        out["alternative_design"] = {"description": _describe_design(alt_design),
                                     "error": str(exc)}
        manifest.warn("analyze", f"sensitivity analysis {_describe_design(alt_design)} "
                      f"failed: {exc}")
    hr = primary.get("hazard_ratio") or {}
    if hr.get("estimate") is not None:
        from reports.evalue import evalue_hr

        ev = evalue_hr(*(float("nan") if hr.get(k) is None else float(hr[k])
                         for k in ("estimate", "lower", "upper")))
        out["evalue"] = ev.to_dict() if hasattr(ev, "to_dict") else ev
    return out


def _alternative(eligible: pd.DataFrame, spec: StudySpec, alt_design) -> dict[str, Any]:
    res = fit_design(eligible.reset_index(drop=True), spec, alt_design)
    alt = eligible.reset_index(drop=True).assign(
        **{WEIGHT: np.asarray(res.weights, dtype=float),
           CLUSTER: pd.Series(res.match_id).to_numpy()})
    alt = alt[np.asarray(res.included, dtype=bool)]
    is_matching = alt_design.method in MATCHING_METHODS
    return {
        "description": _describe_design(alt_design),
        "design": alt_design.model_dump(mode="json"),
        "max_abs_smd": float(res.max_abs_smd),
        "ess": {k: float(v) for k, v in dict(res.ess).items()},
        **_compare(alt, spec, cluster=is_matching).to_dict(),
    }


def _all_lines(ctx: StageContext) -> dict[str, Any]:
    """Every eligible index line of a registry patient instead of the first one.

    Same eligibility, covariates and design; a patient may contribute several lines, so the
    Cox and KM variances are clustered on the patient. Registry validation exclusions of the
    primary pool are not re-applied here (the manifest lists them).
    """
    from connectors.errors import ConnectorError
    from connectors.registry import IndexRule, RegistryConnector
    from connectors.trial import load_trial_arm
    from matching import MatchingError
    from reports.compare import compare_arms
    from reports.errors import EstimationError

    spec = ctx.spec
    reg, tri = spec.registry, spec.trial
    assert reg is not None and tri is not None
    description = "every eligible index line of each registry patient (not only the first)"
    try:
        with RegistryConnector(reg.url, mapping=reg.mapping, schema=reg.schema_) as conn:
            pool = conn.candidate_pool(
                IndexRule(after_regimen=reg.index.after_regimen, selection="all"),
                eligibility=list(spec.eligibility), include_outcomes=True,
            ).frame
        trial = load_trial_arm(tri.adsl, tri.adtte, paramcd=tri.paramcd,
                               variable_map=tri.variable_map)
        frame = pd.concat([trial, pool], ignore_index=True)
        time_col, event_col = cn.ENDPOINTS[spec.analysis.endpoint]
        frame = frame[frame[time_col].notna() & frame[event_col].notna()].reset_index(drop=True)
        frame[TIME] = cn.days_to(spec.analysis.landmark_unit, frame[time_col].astype(float))
        frame[EVENT] = frame[event_col].astype(int)
        res = fit_design(frame, spec, id_col=None)
        frame[WEIGHT] = np.asarray(res.weights, dtype=float)
        frame = frame[np.asarray(res.included, dtype=bool)]
        comp = compare_arms(frame, weight_col=WEIGHT, cluster_col=cn.PATIENT_ID,
                            km_cluster_col=cn.PATIENT_ID, **_compare_kwargs(spec))
    except (ConnectorError, MatchingError, EstimationError) as exc:
        ctx.manifest.warn("analyze", f"sensitivity analysis (all index lines) failed: "
                          f"{ctx.loaded.scrub(str(exc))}")
        return {"description": description, "error": ctx.loaded.scrub(str(exc))}
    return {"description": description, "n_lines": len(pool),
            "n_patients": int(pool[cn.PATIENT_ID].nunique()),
            "max_abs_smd": float(res.max_abs_smd), **comp.to_dict()}


def _alternative_design(spec: StudySpec):
    d = spec.design
    if d.method in MATCHING_METHODS:
        return d.model_copy(update={"method": "weighting", "weights": None})
    return d.model_copy(update={"method": "nearest", "ratio": 1, "caliper": 0.2,
                                "caliper_scale": "logit", "estimand": "ATT"})


def _describe_design(d) -> str:
    if d.method in MATCHING_METHODS:
        cal = f", caliper {d.caliper} SD of the {d.caliper_scale} PS" if d.caliper else ""
        return f"{d.method} 1:{d.ratio} matching{cal}"
    return f"weighting ({d.weights or 'att_odds'}, estimand {d.estimand})"


def _counts(ctx: StageContext, cohort: pd.DataFrame, design: dict) -> dict[str, Any]:
    info = read_json(ctx.folder / EXTRACT_INFO)
    included = cohort["included"].astype(str).str.lower().eq("true")
    is_trial = cohort[cn.ARM] == cn.TRIAL
    ess = design.get("ess") or {}
    return {
        "trial": int(is_trial.sum()),
        "control_pool": int(info["counts"]["control_pool"]),
        "trial_selected": int((included & is_trial).sum()),
        "control_selected": int((included & ~is_trial).sum()),
        "control_ess": ess.get(cn.CONTROL),
    }


def _km(ctx: StageContext, comp, naive, spec: StudySpec) -> dict[str, str]:
    """The KM figure with numbers at risk as SVG; returns {artifact: sha256}."""
    from reports.figures import km_figure

    a = spec.analysis
    fig = km_figure(comp.trial_curve, comp.control_curve,
                    unadjusted_control=naive.control_curve, landmark=a.landmarks[0],
                    null_rate=a.null_rate, time_unit=a.landmark_unit)
    (ctx.folder / "figures").mkdir(exist_ok=True)
    save_svg(fig, ctx.folder / KM_FIGURE)
    return {KM_FIGURE: _sha(ctx, KM_FIGURE)}
