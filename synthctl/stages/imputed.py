"""Design and analyze stages for ``design.missing: impute`` (multiple imputation, "within").

Design: the covariates (and ``imputation_model.auxiliary``) are imputed ``design.imputations``
times, outcome-blind, and the design is built within each completed set
(`matching.imputed_design.match_imputed`). ``cohort.csv`` holds one row per patient and
imputation (``imputation`` column, from 1); ``imputed_covariates.parquet`` holds the completed
covariates; both are hashed into the design lock with ``design.json`` (pooled balance, counts
of imputed values per covariate and arm, each imputation's design).

Analyze: the comparison is run on each imputed design and pooled by Rubin's rules
(`reports.pooling.pool_comparisons`). Complete cases and missing indicators are reported beside
it as sensitivity analyses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from connectors import columns as cn
from synthctl.errors import DataError, SpecError
from synthctl.outdir import (
    IMPUTATION,
    IMPUTED_COVARIATES,
    read_json,
    sha256_file,
    write_csv,
    write_json,
)
from synthctl.spec import IMPUTATION_KEYS, DesignBase, StudySpec, parse_design
from synthctl.stages._context import (
    COHORT,
    COVARIATES,
    DESIGN,
    KM_FIGURE,
    LOVE_PLOT,
    PS_OVERLAP,
    RESULTS,
    StageContext,
    stage_errors,
)
from synthctl.stages.design import cohort_table, design_kwargs, save_svg


def fit_imputed_design(frame: pd.DataFrame, spec: StudySpec, design: DesignBase | None = None, *,
                       seed: int | None = None, id_col: str | None = cn.PATIENT_ID):
    """`match_imputed` on the covariates, auxiliary variables and arm only.

    ``seed`` defaults to the study seed (a bootstrap replicate passes its own); ``id_col=None``
    skips the duplicate-id check (bootstrap resamples repeat patients).
    """
    import warnings

    from matching import MatchingWarning
    from matching.imputed_design import check_imputable, match_imputed

    design = design or spec.design
    im = design.imputation_model
    absent = [c for c in im.auxiliary if c not in frame.columns]
    if absent:
        raise SpecError(f"design.imputation_model.auxiliary {absent} are not columns of the "
                        f"extracted covariates ({COVARIATES})")
    kw = design_kwargs(design, spec.study.seed if seed is None else seed)
    kw.pop("missing")
    multi = spec.registry is not None and spec.registry.index.selection == "all"
    kw["id_col"] = None if multi else id_col
    cols = [cn.PATIENT_ID, cn.ARM, *spec.covariates, *im.auxiliary]
    cols += [c for c in (kw.get("exact") or []) if c not in cols]
    treated = (frame[cn.ARM] == cn.TRIAL).to_numpy()
    try:
        check_imputable(frame, spec.covariates, treated)
    except ValueError as exc:
        raise SpecError(f"covariates / design.missing: impute: {exc}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MatchingWarning)
        return match_imputed(frame[cols], list(spec.covariates), auxiliary=im.auxiliary,
                             imputations=design.imputations, numeric=im.numeric,
                             max_iter=im.max_iter, n_donors=im.donors, approach=im.approach,
                             **kw)


def imputed_summary(res) -> list[str]:
    """One line per imputed covariate: how many values, per arm (manifest and report)."""
    return [f"{c}: {n['trial']} trial and {n['control']} control value(s) imputed "
            f"({res.methods[c]}, m = {res.m})" for c, n in res.imputed.items()]


def run_imputed_design(ctx: StageContext) -> int:
    """The design stage with ``missing: impute``; 1 if the pooled balance failed, else 0."""
    t0 = ctx.manifest.start_stage("design")
    ctx.manifest.drop_stages("analyze", "report")
    spec = ctx.spec
    frame = pd.read_parquet(ctx.folder / COVARIATES)
    with ctx.progress.step(f"design: {spec.design.imputations} imputations, "
                           f"{spec.design.method} within each"), \
            stage_errors("design", ctx.loaded, COVARIATES):
        res = fit_imputed_design(frame, spec)
    with_line = spec.registry is not None and spec.registry.index.selection == "all"
    cohort = pd.concat([cohort_table(frame, d, with_line_id=with_line).assign(
        **{IMPUTATION: k}) for k, d in enumerate(res.designs, 1)], ignore_index=True)
    cohort = cohort[[IMPUTATION, *[c for c in cohort.columns if c != IMPUTATION]]]
    keys = [cn.PATIENT_ID, *([cn.LINE_ID] if with_line else [])]
    completed = pd.concat([frame[keys].join(c).assign(**{IMPUTATION: k})
                           for k, c in enumerate(res.completed, 1)], ignore_index=True)
    completed.to_parquet(ctx.folder / IMPUTED_COVARIATES, index=False)
    design = {**res.to_dict(), "spec": spec.design_part(),
              "input_sha256": sha256_file(ctx.folder / COVARIATES)}
    for line in imputed_summary(res):
        ctx.manifest.warn("design", line, kind="imputation")
    for w in design["warnings"]:
        ctx.manifest.warn("design", str(w))
    if not res.balance_passed:
        ctx.manifest.warn("design", f"balance threshold not met: max |SMD| after (mean over "
                          f"imputations) {res.max_abs_smd:.3f} > {spec.design.balance_threshold}",
                          kind="check_failed")
    artifacts = {
        DESIGN: write_json(ctx.folder / DESIGN, design),
        COHORT: write_csv(ctx.folder / COHORT, cohort),
        IMPUTED_COVARIATES: sha256_file(ctx.folder / IMPUTED_COVARIATES),
        **_figures(ctx, res, frame),
    }
    ctx.manifest.end_stage("design", t0, artifacts, spec_design_sha256=spec.design_hash(),
                           balance_passed=bool(res.balance_passed),
                           max_abs_smd=float(res.max_abs_smd))
    return ctx.manifest.balance_code()


def _figures(ctx: StageContext, res, frame: pd.DataFrame) -> dict[str, str]:
    """Love plot of the pooled balance; PS overlap of the first imputation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matching import love_plot, ps_overlap_plot

    (ctx.folder / "figures").mkdir(exist_ok=True)
    treated = (frame[cn.ARM] == cn.TRIAL).to_numpy()
    first = res.designs[0]
    for name, fig in ((LOVE_PLOT, love_plot(res.balance)),
                      (PS_OVERLAP, ps_overlap_plot(np.asarray(first.ps, dtype=float), treated,
                                                   weights=np.asarray(first.weights,
                                                                      dtype=float)))):
        fig = getattr(fig, "figure", fig)
        save_svg(fig, ctx.folder / name)
        plt.close(fig)
    return {LOVE_PLOT: sha256_file(ctx.folder / LOVE_PLOT),
            PS_OVERLAP: sha256_file(ctx.folder / PS_OVERLAP)}


def run_imputed_analyze(ctx: StageContext, t0: float) -> int:
    """The analyze stage on an imputed design: per-imputation analyses pooled by Rubin.

    Each imputed design is analysed by the one analysis (`reports.analysis.estimate_endpoints`,
    its clustering rule included); the comparisons are pooled by `pool_comparisons`.
    """
    from reports.analysis import AnalysisDesign
    from reports.pooling import pool_comparisons
    from synthctl.stages import analyze as an

    spec = ctx.spec
    cohort = pd.read_csv(ctx.folder / COHORT, dtype={cn.PATIENT_ID: str, "match_id": str},
                         keep_default_na=False, na_values={"ps": [""], "weight": [""]})
    covs = pd.read_parquet(ctx.folder / COVARIATES)
    design = read_json(ctx.folder / DESIGN)
    m = int(cohort[IMPUTATION].max())
    parts = [cohort[cohort[IMPUTATION] == k].reset_index(drop=True) for k in range(1, m + 1)]
    for k, part in enumerate(parts, 1):  # checked before any outcome is read
        if (len(part) != len(covs) or (part[cn.PATIENT_ID].to_numpy()
                                       != covs[cn.PATIENT_ID].astype(str).to_numpy()).any()):
            raise DataError(f"{ctx.folder}: {COHORT} imputation {k} and {COVARIATES} do not "
                            "describe the same rows")
    with ctx.progress.step("reading outcomes"):
        days, event = an._outcomes(ctx, covs)
    base = covs.copy()
    base[an.TIME] = cn.days_to(spec.analysis.landmark_unit, days)
    base[an.EVENT] = event
    keep = ~(base[an.TIME].isna() | base[an.EVENT].isna()).to_numpy()
    eligible = base[keep].reset_index(drop=True)
    settings = an.analysis_settings(spec, ctx.n_jobs)
    analyse = _Analyse(settings, spec.analysis.endpoint)
    yields = spec.design.yields
    dropped = 0
    with stage_errors("analyze", ctx.loaded):
        comps = []
        for part in parts:
            inc = part["included"].astype(str).str.lower().eq("true").to_numpy()
            dropped += int((inc & ~keep).sum())
            mid = part["match_id"].where(part["match_id"] != "", np.nan).to_numpy()
            comps.append(analyse(eligible, AnalysisDesign(
                part["weight"].to_numpy(dtype=float)[keep], inc[keep], mid[keep], yields)))
        pooled = pool_comparisons(comps)
        endpoint = pooled.to_dict()
        boot = None
        if spec.analysis.bootstrap > 0:
            boot = _boot_mi(ctx, eligible, analyse, pooled)
            endpoint = boot.apply(endpoint)
        naive = analyse(eligible, AnalysisDesign.unweighted(len(eligible)))
        sensitivity = {"naive": {"description": "unadjusted: every eligible registry patient, "
                                 "unweighted", **naive.to_dict()},
                       **_missing_data_sensitivity(eligible, spec, analyse, ctx)}
    if dropped:
        ctx.manifest.warn("analyze", f"selected patient(s) without {spec.analysis.endpoint} "
                          f"follow-up were left out ({dropped} over {m} imputations)")
    figures = _km(ctx, comps[0], naive, spec)
    counts = an._counts(ctx, parts[0], design)
    counts.update(trial_selected=design["counts"]["trial_selected"],
                  control_selected=design["counts"]["control_selected"])
    results = {
        "schema_version": an.RESULTS_SCHEMA_VERSION,
        "study": spec.study.name,
        "counts": counts,
        "design": {"method": spec.design.method, "estimand": design.get("estimand"),
                   "balance_passed": bool(design["balance"]["passed"]),
                   "balance_threshold": design["balance"]["threshold"],
                   "max_abs_smd": design["balance"]["max_abs_smd"]},
        "imputation": {**design["imputation"], "primary_interval": (
            "Rubin's rules over the m within-imputation analyses (t limits, Barnard-Rubin df)"
            if boot is None else "bootstrap then impute (Boot MI percentile); Rubin's rules "
            "under 'analytic'"), "km_figure": "imputation 1"},
        "endpoints": {spec.analysis.endpoint: endpoint},
        "sensitivity": sensitivity,
    }
    if boot is not None:
        results["bootstrap"] = boot.to_dict()
    digest = write_json(ctx.folder / RESULTS, results)
    ctx.manifest.end_stage("analyze", t0, {RESULTS: digest, **figures},
                           design_sha256_at_analysis=ctx.manifest.data["stages"]["design"]
                           ["artifacts"].get(DESIGN))
    return 0 if results["design"]["balance_passed"] else 1


class _Analyse:
    """Picklable ``analyse(frame, AnalysisDesign) -> ArmComparison`` of the primary endpoint,
    through the one analysis (`reports.analysis.estimate_endpoints`)."""

    def __init__(self, settings, endpoint: str):
        self.settings, self.endpoint = settings, endpoint

    def __call__(self, frame: pd.DataFrame, design):
        from reports.analysis import estimate_endpoints

        return estimate_endpoints(frame, design, self.settings)[self.endpoint].comparison


def _km(ctx: StageContext, comp, naive, spec: StudySpec) -> dict[str, str]:
    """The KM figure of imputation 1 with the unadjusted registry; {artifact: sha256}."""
    from reports.figures import km_figure
    from synthctl.stages.report import design_kind

    a = spec.analysis
    fig = km_figure(comp.trial_curve, comp.control_curve,
                    unadjusted_control=naive.control_curve, landmark=a.landmarks[0],
                    null_rate=a.null_rate, time_unit=a.landmark_unit,
                    control_label="Synthetic control, imputation 1" + (
                        " (matched)" if design_kind(spec.design) == "matched" else ""))
    (ctx.folder / "figures").mkdir(exist_ok=True)
    save_svg(fig, ctx.folder / KM_FIGURE)
    return {KM_FIGURE: sha256_file(ctx.folder / KM_FIGURE)}


def _missing_data_sensitivity(eligible: pd.DataFrame, spec: StudySpec, analyse,
                              ctx) -> dict[str, Any]:
    """Complete cases and missing indicators: the designs MI is meant to improve on."""
    from matching import MatchingError
    from reports.analysis import AnalysisDesign
    from reports.errors import EstimationError
    from synthctl.stages.design import fit_design

    out: dict[str, Any] = {}
    for policy, text in (("complete_case", "complete cases (patients missing a covariate "
                                           "excluded)"),
                         ("indicator", "missing-indicator method")):
        d = parse_design({**spec.design.model_dump(exclude=set(IMPUTATION_KEYS)),
                          "missing": policy})
        try:
            res = fit_design(eligible, spec, d)
            comp = analyse(eligible, AnalysisDesign.from_result(res))
            out[policy] = {"description": text, "max_abs_smd": float(res.max_abs_smd),
                           "exclusions": res.exclusions, **comp.to_dict()}
        except (MatchingError, EstimationError) as exc:
            out[policy] = {"description": text, "error": str(exc)}
            ctx.manifest.warn("analyze", f"sensitivity analysis {text} failed: {exc}")
    return out


class _ImputedRedesign:
    """Picklable ``redesign(sample, seed)`` for Boot MI: impute the sample, design each set."""

    def __init__(self, spec: StudySpec):
        self.spec = spec

    def __call__(self, sample: pd.DataFrame, seed: int) -> list:
        from reports.analysis import AnalysisDesign

        res = fit_imputed_design(sample, self.spec, seed=seed, id_col=None)
        return [AnalysisDesign.from_result(d) for d in res.designs]


def _boot_mi(ctx: StageContext, eligible: pd.DataFrame, analyse, pooled):
    """Bootstrap then impute around the pooled estimates of the locked design."""
    from reports.boot_mi import bootstrap_imputed

    spec = ctx.spec
    B = spec.analysis.bootstrap
    multi = spec.registry is not None and spec.registry.index.selection == "all"
    with ctx.progress.bar(f"bootstrap then impute ({B} replicates x "
                          f"{spec.design.imputations} imputations)", B) as advance:
        return bootstrap_imputed(
            eligible, _ImputedRedesign(spec), analyse, pooled, arm_col=cn.ARM,
            treated_value=cn.TRIAL, id_col=cn.PATIENT_ID if multi else None,
            conf_level=spec.analysis.conf_level, n_boot=B, random_state=spec.study.seed,
            n_jobs=ctx.n_jobs, progress=lambda done, total: advance(1))
