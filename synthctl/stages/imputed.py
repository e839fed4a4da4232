"""Design and analyze stages for ``design.missing: impute`` (multiple imputation, "within").

Design: the covariates (and ``imputation_model.auxiliary``) are imputed ``design.imputations``
times, outcome-blind, and the design is built within each completed set
(`matching.imputed_design.match_imputed`). ``cohort.csv`` holds one row per patient and
imputation (``imputation`` column, from 1); ``imputed_covariates.parquet`` holds the completed
covariates; both are hashed into the design lock with ``design.json`` (pooled balance, counts
of imputed values per covariate and arm, each imputation's design).

Analyze: `reports.analysis_mi.analyze_imputed` runs every endpoint on each imputed design and
pools them by Rubin's rules into one `reports.StudyAnalysis` (bootstrap then impute with
``bootstrap > 0``); results.json is its ``to_dict()``, as for a single design. Sensitivity
analyses: the alternative design and every eligible index line within each imputation (pooled),
complete cases, missing indicators and, on request, the imputation with the outcome.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pandas as pd

from connectors import columns as cn
from synthctl.errors import DataError, SpecError
from synthctl.outdir import (
    IMPUTATION,
    IMPUTED_COVARIATES,
    INCLUDED,
    MATCH_ID,
    WEIGHT,
    read_cohort,
    read_json,
    sha256_file,
    write_csv,
    write_json,
    write_results,
)
from synthctl.spec import IMPUTATION_KEYS, DesignBase, StudySpec, parse_design
from synthctl.stages._context import (
    COHORT,
    COVARIATES,
    DESIGN,
    EXTRACT_INFO,
    LOVE_PLOT,
    PS_OVERLAP,
    RESULTS,
    StageContext,
    stage_errors,
)
from synthctl.stages._followup import FOLLOW_UP, design_follow_up
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
    # the horizons against the potential follow-up of the patients any imputation's design
    # keeps, before the lock (as the single design stage does)
    kept = np.logical_or.reduce([np.asarray(d.included, dtype=bool) for d in res.designs])
    follow_up = design_follow_up(spec, read_json(ctx.folder / EXTRACT_INFO), frame, kept)
    ctx.keep["design"] = res
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
    if follow_up is not None:
        design[FOLLOW_UP] = follow_up
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
    """Love plot of the pooled balance (mean over imputations); PS overlap of every
    imputation stacked (each row weighted by its design weight / m)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matching import love_plot, ps_overlap_plot
    from synthctl.methods import balance_term_labels

    (ctx.folder / "figures").mkdir(exist_ok=True)
    treated = (frame[cn.ARM] == cn.TRIAL).to_numpy()
    m = len(res.designs)
    ps = np.concatenate([np.asarray(d.ps, dtype=float) for d in res.designs])
    weights = np.concatenate([np.nan_to_num(np.asarray(d.weights, dtype=float)) / m
                              for d in res.designs])
    labels = balance_term_labels(ctx.spec, res.balance.frame["covariate"])
    for name, fig in ((LOVE_PLOT, love_plot(res.balance, labels=labels)),
                      (PS_OVERLAP, ps_overlap_plot(ps, np.tile(treated, m), weights=weights))):
        fig = getattr(fig, "figure", fig)
        save_svg(fig, ctx.folder / name)
        plt.close(fig)
    return {LOVE_PLOT: sha256_file(ctx.folder / LOVE_PLOT),
            PS_OVERLAP: sha256_file(ctx.folder / PS_OVERLAP)}


def run_imputed_analyze(ctx: StageContext, t0: float) -> int:
    """The analyze stage on an imputed design: one `StudyAnalysis` pooled over imputations.

    `reports.analysis_mi.analyze_imputed` estimates every endpoint on each locked imputed
    design and pools them by Rubin's rules (bootstrap then impute with ``bootstrap > 0``);
    results.json is that analysis' ``to_dict()`` beside the counts, the design and the
    ``imputation`` block, as for a single design. Sensitivity analyses: the alternative design
    family and, for a registry, every eligible index line (both within each imputation,
    pooled), complete cases and missing indicators (one design each) and, with
    ``analysis.imputation_with_outcome``, the imputation that uses the outcome (run here,
    after the design lock; the locked files are not touched).
    """
    from reports.analysis import AnalysisDesign
    from reports.analysis_mi import analyze_imputed
    from synthctl.stages import analyze as an

    spec = ctx.spec
    cohort = read_cohort(ctx.folder)
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
    designs, dropped = [], 0
    for part in parts:
        inc = part[INCLUDED].to_numpy(dtype=bool)
        dropped += int((inc & ~keep).sum())
        designs.append(AnalysisDesign(part[WEIGHT].to_numpy(dtype=float)[keep], inc[keep],
                                      part[MATCH_ID].to_numpy()[keep], spec.design.yields))
    if dropped:
        ctx.manifest.warn("analyze", f"selected patient(s) without {spec.analysis.endpoint} "
                          f"follow-up were left out ({dropped} over {m} imputations)")
    with stage_errors("analyze", ctx.loaded):
        completed = _completed_sets(ctx, covs, keep, m)
        sensitivities = [_imputed_alternative(eligible, completed, spec),
                         *_missing_data_sensitivity(eligible, spec)]
        if spec.registry is not None and spec.registry.index.selection == "first":
            with ctx.progress.step("sensitivity: every eligible index line (imputed)"):
                sensitivities.append(an._all_lines(ctx))
        if spec.analysis.imputation_with_outcome:
            with ctx.progress.step("sensitivity: imputation with the outcome"):
                sensitivities.append(_with_outcome(eligible, spec))
        B = spec.analysis.bootstrap
        bar = (ctx.progress.bar(f"bootstrap then impute ({B} replicates x {m} imputations)", B)
               if B else nullcontext(None))
        with bar as advance:
            result = analyze_imputed(eligible, designs, _ImputedRedesign(spec), settings,
                                     sensitivities=sensitivities,
                                     progress=None if advance is None
                                     else (lambda done, total: advance(1)))
        ctx.keep["analysis"] = result
        for message in result.warnings:
            ctx.manifest.warn("analyze", message)
        figures = an._km(ctx, result, spec)
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
            if B == 0 else "bootstrap then impute (Schomaker & Heumann 2018, percentile); "
            "Rubin's rules under 'analytic'"), "figures": FIGURES_NOTE},
        **result.to_dict(),
    }
    digest = write_results(ctx.folder, results)
    ctx.manifest.end_stage("analyze", t0, {RESULTS: digest, **figures},
                           design_sha256_at_analysis=ctx.manifest.data["stages"]["design"]
                           ["artifacts"].get(DESIGN))
    return 0 if results["design"]["balance_passed"] else 1


#: what the figures of an imputed study show (results.json ``imputation.figures``)
FIGURES_NOTE = ("KM: the mean over imputations of the survival curves at each time, pointwise "
                "Rubin limits on log(-log S), numbers at risk the mean over imputations; PS "
                "overlap: the propensity scores of every imputation stacked, each weighted 1/m")


def _completed_sets(ctx: StageContext, covs: pd.DataFrame, keep: np.ndarray,
                    m: int) -> list[pd.DataFrame]:
    """The m locked completed covariate sets (imputed_covariates.parquet) of the analysed
    rows, each aligned with the analysis frame's rows."""
    completed = pd.read_parquet(ctx.folder / IMPUTED_COVARIATES)
    out = []
    for k in range(1, m + 1):
        part = completed[completed[IMPUTATION] == k].reset_index(drop=True)
        if len(part) != len(covs) or (part[cn.PATIENT_ID].astype(str).to_numpy()
                                      != covs[cn.PATIENT_ID].astype(str).to_numpy()).any():
            raise DataError(f"{ctx.folder}: {IMPUTED_COVARIATES} imputation {k} and "
                            f"{COVARIATES} do not describe the same rows")
        out.append(part[keep].reset_index(drop=True))
    return out


def _imputed_alternative(eligible: pd.DataFrame, completed: list[pd.DataFrame],
                         spec: StudySpec):
    """The alternative design family within each locked completed data set (pooled)."""
    from matching import MatchingError
    from reports.analysis import AnalysisDesign, Sensitivity
    from synthctl.stages.analyze import _alternative_design, _describe_design
    from synthctl.stages.design import fit_design

    alt = _alternative_design(spec)
    description = _describe_design(alt) + f", within each of the {len(completed)} imputations"
    alt = parse_design({**alt.model_dump(exclude=set(IMPUTATION_KEYS)), "missing": "error"})
    cols = list(spec.covariates)
    designs, smd = [], []
    try:
        for comp in completed:
            frame = eligible.copy()
            for c in cols:  # column by column: each keeps its type (a block would be object)
                frame[c] = comp[c].to_numpy()
            res = fit_design(frame, spec, alt)
            designs.append(AnalysisDesign.from_result(res))
            smd.append(float(res.max_abs_smd))
    except MatchingError as exc:
        return Sensitivity("alternative_design", description, None, failure=str(exc))
    return Sensitivity("alternative_design", description, None,
                       info={"design": alt.model_dump(mode="json"),
                             "max_abs_smd": float(np.mean(smd))},
                       imputed=tuple(designs))


def _missing_data_sensitivity(eligible: pd.DataFrame, spec: StudySpec) -> list:
    """Complete cases and missing indicators: the designs MI is meant to improve on."""
    from matching import MatchingError
    from reports.analysis import AnalysisDesign, Sensitivity
    from synthctl.stages.design import fit_design

    out = []
    for policy, text in (("complete_case", "complete cases (patients missing a covariate "
                                           "excluded)"),
                         ("indicator", "missing-indicator method")):
        d = parse_design({**spec.design.model_dump(exclude=set(IMPUTATION_KEYS)),
                          "missing": policy})
        try:
            res = fit_design(eligible, spec, d)
        except MatchingError as exc:
            out.append(Sensitivity(policy, text, None, failure=str(exc)))
            continue
        out.append(Sensitivity(policy, text, AnalysisDesign.from_result(res),
                               info={"max_abs_smd": float(res.max_abs_smd),
                                     "exclusions": res.exclusions}))
    return out


#: auxiliary columns of the outcome-including imputation (White & Royston 2009)
_EVENT_AUX, _CUMHAZ_AUX = "__outcome_event", "__outcome_cumulative_hazard"


def _with_outcome(eligible: pd.DataFrame, spec: StudySpec):
    """Sensitivity: the imputation with the outcome as a predictor (the event indicator and
    the Nelson-Aalen cumulative hazard at the patient's time, White & Royston 2009), the
    design re-run within each imputation and pooled. Run in analyze only, after the design
    lock; nothing of the locked design changes."""
    from matching import MatchingError
    from reports.analysis import AnalysisDesign, Sensitivity
    from reports.km import nelson_aalen_at
    from synthctl.stages import analyze as an

    event = eligible[an.EVENT].to_numpy(dtype=float)
    frame = eligible.assign(**{_EVENT_AUX: event, _CUMHAZ_AUX: nelson_aalen_at(
        eligible[an.TIME].to_numpy(dtype=float), event)})
    im = spec.design.imputation_model
    design = spec.design.model_copy(update={"imputation_model": im.model_copy(
        update={"auxiliary": [*im.auxiliary, _EVENT_AUX, _CUMHAZ_AUX]})})
    description = ("multiple imputation with the outcome (event indicator and Nelson-Aalen "
                   "cumulative hazard) as imputation predictors, design re-run within each "
                   "imputation; a sensitivity analysis: the primary design never sees an "
                   "outcome")
    try:
        res = fit_imputed_design(frame, spec, design, id_col=None)
    except MatchingError as exc:
        return Sensitivity("imputation_with_outcome", description, None, failure=str(exc))
    return Sensitivity("imputation_with_outcome", description, None,
                       info={"max_abs_smd": float(res.max_abs_smd), "m": res.m},
                       imputed=tuple(AnalysisDesign.from_result(d) for d in res.designs))


class _ImputedRedesign:
    """Picklable ``redesign(sample, seed)`` for bootstrap then impute: impute the sample m
    times (outcome-blind: `fit_imputed_design` takes the covariates, auxiliary variables and
    arm only) and design each completed set."""

    def __init__(self, spec: StudySpec):
        self.spec = spec

    def __call__(self, sample: pd.DataFrame, seed: int) -> list:
        from reports.analysis import AnalysisDesign

        res = fit_imputed_design(sample, self.spec, seed=seed, id_col=None)
        return [AnalysisDesign.from_result(d) for d in res.designs]
