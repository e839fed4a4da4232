"""Design stage: propensity score, matching or weighting, balance: outcome-blind.

Its only input is ``covariates.parquet`` written by extract, which holds no outcome column.
It writes ``design.json`` (PS model, options, balance, ESS), ``cohort.csv`` and the love plot
and PS overlap figures, and records their SHA-256 in the manifest: that is the locked design
``analyze`` checks before it reads any outcome.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from connectors import columns as cn
from synthctl.errors import DesignChangedError
from synthctl.outdir import (
    FIGURES,
    INCLUDED,
    MATCH_ID,
    PS,
    WEIGHT,
    read_json,
    sha256_file,
    write_cohort,
    write_design,
)
from synthctl.spec import DesignBase, StudySpec
from synthctl.stages._context import (
    COHORT,
    COVARIATES,
    DESIGN,
    EXTRACT_INFO,
    LOVE_PLOT,
    PS_OVERLAP,
    StageContext,
    stage_errors,
)
from synthctl.stages._followup import FOLLOW_UP, design_follow_up


def design_kwargs(design: DesignBase, seed: int) -> dict[str, Any]:
    """`matching.match_cohort` keyword arguments for a spec's ``design:`` block.

    The options pass straight through: the spec validated them against the method table.
    """
    return {"treatment_col": cn.ARM, "treated_value": cn.TRIAL, "id_col": cn.PATIENT_ID,
            "method": design.method, "random_state": seed,
            **design.common_options(), **design.method_options()}


def fit_design(frame: pd.DataFrame, spec: StudySpec, design: DesignBase | None = None, *,
               id_col: str | None = cn.PATIENT_ID):
    """Run `match_cohort` on the covariates only (whatever else ``frame`` holds).

    Its warnings (separation, positivity, ...) are kept in ``res.warnings`` and reach the
    manifest and the report; they are not repeated on stderr.
    """
    import warnings

    from matching import MatchingWarning, match_cohort

    design = design or spec.design
    kwargs = design_kwargs(design, spec.study.seed)
    cols = [cn.PATIENT_ID, cn.ARM, *spec.covariates]
    extra = [c for c in (kwargs.get("exact") or []) if c not in cols]
    blind = frame[cols + extra]
    # patient x line rows (index selection "all") repeat the patient id by design
    multi = spec.registry is not None and spec.registry.index.selection == "all"
    kwargs["id_col"] = None if multi else id_col
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MatchingWarning)
        return match_cohort(blind, list(spec.covariates), **kwargs)


def cohort_table(frame: pd.DataFrame, res, *, with_line_id: bool) -> pd.DataFrame:
    """``cohort.csv``: patient_id, arm, ps, weight, match_id, included (one row per frame row)."""
    out = pd.DataFrame({cn.PATIENT_ID: frame[cn.PATIENT_ID].astype(str).to_numpy()})
    if with_line_id:
        out[cn.LINE_ID] = frame[cn.LINE_ID].to_numpy()
    out[cn.ARM] = frame[cn.ARM].to_numpy()
    out[PS] = np.asarray(res.ps, dtype=float)
    out[WEIGHT] = np.asarray(res.weights, dtype=float)
    out[MATCH_ID] = pd.Series(res.match_id).reset_index(drop=True).to_numpy()
    out[INCLUDED] = np.asarray(res.included, dtype=bool)
    return out


def run_design(ctx: StageContext) -> int:
    """Run the design stage in ``ctx.folder`` and lock it; 1 if balance failed, else 0."""
    if "extract" not in ctx.manifest.data.get("stages", {}):
        raise DesignChangedError(f"{ctx.folder}: no extract found (run `synthctl extract` first)")
    if ctx.spec.design.missing == "impute":
        from synthctl.stages.imputed import run_imputed_design

        return run_imputed_design(ctx)
    t0 = ctx.manifest.start_stage("design")
    ctx.manifest.drop_stages("analyze", "report")
    spec = ctx.spec
    frame = pd.read_parquet(ctx.folder / COVARIATES)
    leaked = [c for c in cn.OUTCOME_COLUMNS if c in frame.columns]
    if leaked:
        raise RuntimeError(f"outcome columns in the design input: {leaked}")
    with ctx.progress.step(f"design: {spec.design.method} on the propensity score"), \
            stage_errors("design", ctx.loaded, COVARIATES):
        res = fit_design(frame, spec)
    # the horizons against the kept patients' potential follow-up, before the lock (issue 14)
    follow_up = design_follow_up(spec, read_json(ctx.folder / EXTRACT_INFO), frame, res.included)
    ctx.keep["design"] = res
    with_line = spec.registry is not None and spec.registry.index.selection == "all"
    cohort = cohort_table(frame, res, with_line_id=with_line)
    design = {**res.to_dict(), "spec": spec.design_part(),
              "input_sha256": sha256_file(ctx.folder / COVARIATES)}
    if follow_up is not None:
        design[FOLLOW_UP] = follow_up
    (ctx.folder / FIGURES).mkdir(exist_ok=True)
    figures = _save_figures(ctx, res, frame)
    for w in res.warnings:
        ctx.manifest.warn("design", str(w))
    for ex in res.exclusions:
        ctx.manifest.warn("design", f"{ex['n']} {ex['arm']} patient(s) left out of the design: "
                          f"{ex['reason']}", kind="exclusion")
    if not res.balance_passed:
        ctx.manifest.warn("design", f"balance threshold not met: max |SMD| after "
                          f"{res.max_abs_smd:.3f} > {spec.design.balance_threshold}",
                          kind="check_failed")
    artifacts = {
        DESIGN: write_design(ctx.folder, design),
        COHORT: write_cohort(ctx.folder, cohort),
        **figures,
    }
    ctx.manifest.end_stage("design", t0, artifacts, spec_design_sha256=spec.design_hash(),
                           balance_passed=bool(res.balance_passed),
                           max_abs_smd=float(res.max_abs_smd))
    return ctx.manifest.balance_code()


def _save_figures(ctx: StageContext, res, frame: pd.DataFrame) -> dict[str, str]:
    """Love plot and PS overlap as SVG; returns {artifact: sha256} of those written."""
    # matching.figures builds bare `matplotlib.figure.Figure`s: no pyplot (and its backend
    # machinery, ~0.5 s to import), nothing to close.
    from matching import love_plot, ps_overlap_plot
    from synthctl.methods import balance_term_labels

    treated = (frame[cn.ARM] == cn.TRIAL).to_numpy()
    labels = balance_term_labels(ctx.spec, res.balance.frame["covariate"])
    for name, fig in (
        (LOVE_PLOT, love_plot(res.balance, labels=labels)),
        (PS_OVERLAP, ps_overlap_plot(np.asarray(res.ps, dtype=float), treated,
                                     weights=np.asarray(res.weights, dtype=float))),
    ):
        fig = getattr(fig, "figure", fig)  # helpers may return Axes (house style) or a Figure
        save_svg(fig, ctx.folder / name)
    return {LOVE_PLOT: sha256_file(ctx.folder / LOVE_PLOT),
            PS_OVERLAP: sha256_file(ctx.folder / PS_OVERLAP)}


def save_svg(fig, path) -> None:
    """Save a matplotlib figure as SVG without a date stamp (byte-stable reruns)."""
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "synthctl", "svg.fonttype": "none"}):
        fig.savefig(path, format="svg", metadata={"Date": None})
