"""The binary (objective response) endpoint of the analyze stage (issue 15).

Computed beside the primary time-to-event endpoint when the spec asks for it:
``analysis.response`` (registry: tumour assessments in SQL; trial: ADaM ADRS) or
``data.response`` (a 0/1 column of the flat file). The rows analysed are the design's
included rows with their weights; matched designs are clustered on the matched set. With
``analysis.simon``, the trial's Simon analysis is added. results.json: ``endpoints.ORR``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from connectors import columns as cn
from connectors.columns import RESPONSE
from synthctl.stages._context import StageContext, stage_errors

ORR = "ORR"
ONSET_DAYS = "response_onset_days"  # first response, days from index (analyze frame)


def wants_response(ctx: StageContext) -> bool:
    """Whether the spec asks for the response endpoint."""
    spec = ctx.spec
    return spec.analysis.response is not None or (
        spec.data is not None and spec.data.response is not None
    )


def _rule(ctx: StageContext):
    from connectors.response import ResponseRule

    settings = ctx.spec.analysis.response
    if settings is None:
        return None
    return ResponseRule(confirmed=settings.confirmed, by=settings.by, unit=settings.unit)


def read_responses(ctx: StageContext, frame: pd.DataFrame) -> pd.DataFrame:
    """`RESPONSE` (0/1) and `ONSET_DAYS` (first response, days from index; NaN when the
    source has no dates) of every row of ``frame``, read with the other outcomes before any
    analysis, so that a bad ADRS or response column stops the stage early."""
    with ctx.progress.step("reading responses"):
        return _responses(ctx, frame, _rule(ctx))


def response_endpoint(
    ctx: StageContext, frame: pd.DataFrame, *, response_col: str, weight_col: str,
    cluster_col: str | None, eligible: pd.DataFrame | None = None, redesign=None,
) -> dict[str, Any]:
    """``{"ORR": {...}}`` for results.json ``endpoints`` (``frame``: included rows;
    ``eligible``: every row before the design, for the bootstrap when ``analysis.bootstrap``
    > 0: the design is re-run in each replicate and the bootstrap SE/limits become primary)."""
    from reports.binary_endpoint import SimonSettings, analyze_binary_endpoint

    spec = ctx.spec
    settings = spec.analysis.response
    rule = _rule(ctx)
    data = frame
    simon = None
    if spec.analysis.simon is not None and spec.analysis.simon.endpoint == ORR:
        s = spec.analysis.simon
        simon = SimonSettings(s.p0, s.p1, s.alpha, s.power, s.design)
    order = cn.INDEX_DATE if cn.INDEX_DATE in data.columns else None
    definition = (rule.describe() if rule is not None
                  else f"flat file column {spec.data.response!r} (1 = responder)")
    with stage_errors("analyze", ctx.loaded):
        res = analyze_binary_endpoint(
            data, response_col=response_col, arm_col=cn.ARM, treated_value=cn.TRIAL,
            weight_col=weight_col, cluster_col=cluster_col, order_col=order,
            null_rate=None if settings is None else settings.null_rate, simon=simon,
            conf_level=spec.analysis.conf_level, name=ORR, definition=definition,
        )
    out = res.to_dict()
    out["duration_of_response"] = _dor(ctx, data, response_col, weight_col)
    if spec.analysis.bootstrap > 0 and eligible is not None and redesign is not None:
        from dataclasses import replace

        from reports.binary_bootstrap import bootstrap_proportions

        def weights_of(replicate: pd.DataFrame) -> pd.DataFrame:
            design = redesign(replicate)  # `reports.analysis.AnalysisDesign`
            w = np.where(design.included, np.asarray(design.weights, dtype=float), 0.0)
            return pd.DataFrame({"weight": w}, index=replicate.index)

        with ctx.progress.step(f"bootstrap of {ORR} ({spec.analysis.bootstrap} replicates)"):
            boot = bootstrap_proportions(
                eligible.reset_index(drop=True), weights_of, response_col=response_col,
                arm_col=cn.ARM, treated_value=cn.TRIAL, n_boot=spec.analysis.bootstrap,
                random_state=spec.study.seed, conf_level=spec.analysis.conf_level,
            )
        dor = out["duration_of_response"]
        out = replace(res, proportion=boot.apply(res.proportion)).to_dict()
        out.update(bootstrap=boot.to_dict(), duration_of_response=dor)
    return {ORR: out}


def _responses(ctx: StageContext, frame: pd.DataFrame, rule) -> pd.DataFrame:
    """Response and onset of every row of ``frame`` (in its order)."""
    spec = ctx.spec
    if spec.data is not None:
        from connectors.flatfile import load_flat_response

        d = spec.data
        with stage_errors("analyze", ctx.loaded, str(d.path)):
            out = load_flat_response(d.path, id_col=d.id, response_col=d.response)
        merged = frame[[cn.PATIENT_ID]].astype(str).merge(out, on=cn.PATIENT_ID, how="left")
        return pd.DataFrame({RESPONSE: merged[RESPONSE].to_numpy(), ONSET_DAYS: float("nan")},
                            index=frame.index)
    from connectors.adrs import read_adrs, trial_response
    from synthctl.stages._registry import registry_connector

    reg, tri = spec.registry, spec.trial
    assert reg is not None and tri is not None and tri.adrs is not None
    is_trial = frame[cn.ARM] == cn.TRIAL
    keys = frame.loc[~is_trial, [cn.PATIENT_ID, cn.LINE_ID, cn.INDEX_DATE]]
    with (
        stage_errors("analyze", ctx.loaded, "registry responses"),
        registry_connector(spec) as conn,
    ):
        ctrl = conn.responses(keys, rule)
    with stage_errors("analyze", ctx.loaded, f"trial file {tri.adrs.name}"):
        adrs = read_adrs(tri.adrs)
        trial = trial_response(adrs, frame.loc[is_trial, [cn.PATIENT_ID, cn.INDEX_DATE]], rule,
                               paramcd=spec.analysis.response.paramcd)
    out = pd.DataFrame({RESPONSE: 0, ONSET_DAYS: float("nan")}, index=frame.index)
    out.loc[~is_trial, RESPONSE] = ctrl[RESPONSE].to_numpy()
    out.loc[is_trial, RESPONSE] = trial[RESPONSE].to_numpy()
    out.loc[~is_trial, ONSET_DAYS] = ctrl["days_to_response"].to_numpy(float)
    if "days_to_response" in trial.columns:  # OVR; a BOR carries no date
        out.loc[is_trial, ONSET_DAYS] = trial["days_to_response"].to_numpy(float)
    n_unassessed = int((~ctrl["assessed"]).sum() + (~trial["assessed"]).sum())
    if n_unassessed:
        ctx.manifest.warn("analyze", f"{n_unassessed} analysed patient(s) have no tumour "
                          "assessment after index: counted as non-responders (NE)")
    return out


def primary_simon(ctx: StageContext, frame: pd.DataFrame, *, time_col: str,
                  event_col: str) -> dict[str, Any] | None:
    """``endpoints.<primary>.simon``: the trial's Simon analysis of "event-free at the first
    landmark" (``analysis.simon.endpoint: primary``); ``frame``: analysed rows, times in the
    landmark unit."""
    from reports.binary_endpoint import SimonSettings, landmark_simon

    a = ctx.spec.analysis
    if a.simon is None or a.simon.endpoint != "primary":
        return None
    s = a.simon
    trial = frame[frame[cn.ARM] == cn.TRIAL]
    with stage_errors("analyze", ctx.loaded):
        res = landmark_simon(
            trial, time_col=time_col, event_col=event_col, landmark=a.landmarks[0],
            simon=SimonSettings(s.p0, s.p1, s.alpha, s.power, s.design), id_col=cn.PATIENT_ID,
            order_col=cn.INDEX_DATE if cn.INDEX_DATE in trial.columns else None,
            unit=a.landmark_unit,
        )
    return res.to_dict()


def _dor(ctx: StageContext, data: pd.DataFrame, response_col: str,
         weight_col: str) -> dict[str, Any]:
    """Duration of response (descriptive) when the primary endpoint is PFS and the response
    source has dates; otherwise the reason it is not reported."""
    from reports.binary_endpoint import duration_of_response
    from reports.errors import EstimationError
    from synthctl.stages.analyze import EVENT, TIME

    a = ctx.spec.analysis
    if a.endpoint != "PFS":
        return {"error": f"needs PFS as the primary endpoint (it is {a.endpoint})"}
    responders = data[response_col] == 1
    if ONSET_DAYS not in data or data.loc[responders, ONSET_DAYS].isna().any():
        return {"error": "the response source has no response dates (flat file or ADRS BOR)"}
    frame = data.assign(**{"__onset": cn.days_to(a.landmark_unit, data[ONSET_DAYS])})
    try:
        return duration_of_response(
            frame, time_col=TIME, event_col=EVENT, onset_col="__onset",
            response_col=response_col, arm_col=cn.ARM, treated_value=cn.TRIAL,
            weight_col=weight_col, time_unit=a.landmark_unit, conf_level=a.conf_level,
        ).to_dict()
    except EstimationError as exc:
        ctx.manifest.warn("analyze", f"duration of response not reported: {exc}")
        return {"error": str(exc)}
