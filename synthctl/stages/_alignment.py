"""Analyze stage, endpoint alignment (spec ``analysis.endpoint_alignment``; issue 13).

Reads each arm's PFS progression interval (registry: `RegistryConnector.progression_intervals`;
trial: the ADRS visits ``trial.adrs``, else the protocol schedule ``trial_schedule_every``;
flat file: ``data.last_progression_free``) as columns of the analysis frame. This module only
gathers those columns and builds the `reports.alignment_block.AlignmentBlock` that
`reports.analysis.analyze_study` runs on the locked design; when an arm's interval is
unknown the block says why and no estimate is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from connectors import columns as cn
from synthctl.stages._context import StageContext, stage_errors

if TYPE_CHECKING:
    from reports.alignment_block import AlignmentBlock

LEFT, EXACT, GAP = "_pfs_left", "_pfs_exact", "_pfs_gap_days"


def _trial_intervals(ctx: StageContext, ids: pd.Series) -> tuple[pd.DataFrame | None, str]:
    """The trial arm's interval from ADRS (``trial.adrs``, preferred: the visits as done) or
    the protocol schedule (``trial_schedule_every``), or (None, why)."""
    from connectors.progression import adrs_progression_interval, schedule_progression_interval
    from connectors.trial import load_trial_arm

    spec = ctx.spec
    al = spec.analysis.endpoint_alignment
    tri = spec.trial
    assert al is not None and tri is not None
    if tri.adrs is None and al.trial_schedule_every is None:
        return None, ("trial arm: no ADRS file (trial.adrs) and no protocol schedule "
                      "(analysis.endpoint_alignment.trial_schedule_every): the trial's "
                      "progression intervals are unknown, so no aligned estimate is made")
    with stage_errors("analyze", ctx.loaded, f"trial file {tri.adtte.name}"):
        arm = load_trial_arm(tri.adsl, tri.adtte, paramcd=tri.paramcd,
                             variable_map=tri.variable_map)
    if cn.OS_DAYS in arm:  # a PFS event on the day of death is a death (exact)
        died = arm[cn.OS_EVENT] == 1
        arm[cn.PFS_DEATH] = (arm[cn.PFS_EVENT] == 1) & died & (arm[cn.OS_DAYS] == arm[cn.PFS_DAYS])
        arm["death_days"] = arm[cn.OS_DAYS].where(died)
    if tri.adrs is not None:
        from connectors.adrs import read_adrs

        with stage_errors("analyze", ctx.loaded, f"trial file {tri.adrs.name}"):
            out = adrs_progression_interval(read_adrs(tri.adrs), arm)
        note = (f"trial arm: progression intervals from the ADRS visits ({tri.adrs.name}, "
                "per-visit overall response OVR with ADT)")
    else:
        every = cn.to_days(al.grid_unit, al.trial_schedule_every)
        out = schedule_progression_interval(arm, every)
        note = (f"trial arm: progression intervals from the protocol schedule (every "
                f"{al.trial_schedule_every:g} {al.grid_unit}), no ADRS file")
    return out[out[cn.PATIENT_ID].isin(ids.astype(str))], note


def interval_columns(ctx: StageContext, frame: pd.DataFrame) -> tuple[pd.DataFrame | None, str]:
    """``frame`` with LEFT (analysis unit), EXACT and GAP columns, or (None, why absent)."""
    spec = ctx.spec
    unit = spec.analysis.landmark_unit
    note = ""
    if spec.data is not None:
        from connectors.flatfile import load_flat_progression_interval

        d = spec.data
        if d.last_progression_free is None:
            return None, ("flat file: no data.last_progression_free column, so the "
                          "progression intervals are unknown")
        with stage_errors("analyze", ctx.loaded, str(d.path)):
            iv = load_flat_progression_interval(
                d.path, id_col=d.id, time_col=d.time, event_col=d.event,
                last_pf_col=d.last_progression_free, time_unit=d.time_unit)
        merged = frame[[cn.PATIENT_ID]].astype(str).merge(iv, on=cn.PATIENT_ID, how="left")
        merged[cn.PFS_MEAN_GAP_DAYS] = np.nan
        note = "flat file: data.last_progression_free; assessment dates not given"
    else:
        from synthctl.stages._registry import registry_connector

        trial_iv, note = _trial_intervals(ctx, frame.loc[frame[cn.ARM] == cn.TRIAL,
                                                         cn.PATIENT_ID])
        if trial_iv is None:
            return None, note
        control = frame.loc[frame[cn.ARM] == cn.CONTROL, [cn.PATIENT_ID, cn.LINE_ID,
                                                         cn.INDEX_DATE]]
        with (stage_errors("analyze", ctx.loaded, "registry progression intervals"),
              registry_connector(spec) as conn):
            ctrl_iv = conn.progression_intervals(control)
        cols = [cn.PATIENT_ID, *cn.ALIGNMENT_COLUMNS]
        parts = [trial_iv[cols].set_index(cn.PATIENT_ID)
                 .reindex(frame.loc[frame[cn.ARM] == cn.TRIAL, cn.PATIENT_ID].astype(str))
                 .set_axis(frame.index[frame[cn.ARM] == cn.TRIAL]),
                 ctrl_iv[cols].drop(columns=cn.PATIENT_ID).set_axis(control.index)]
        merged = pd.concat(parts).reindex(frame.index)
    out = frame.copy()
    out[LEFT] = cn.days_to(unit, merged[cn.PFS_LAST_PF_DAYS].to_numpy(float))
    out[EXACT] = merged[cn.PFS_DEATH].fillna(False).to_numpy(bool)
    out[GAP] = merged[cn.PFS_MEAN_GAP_DAYS].to_numpy(float)
    return out, note


def alignment_block(ctx: StageContext, frame: pd.DataFrame, *, time_col: str, event_col: str
                    ) -> tuple[pd.DataFrame, AlignmentBlock]:
    """``frame`` with the interval columns and the `AlignmentBlock` of ``endpoints.PFS``
    (``time_col``/``event_col``: the frame's PFS time, in the analysis unit, and event).

    When an arm's intervals are unknown, ``frame`` is returned as is and the block carries
    the reason (no estimate; `reports.analysis.analyze_study` warns).
    """
    from reports.alignment_block import AlignmentBlock

    spec = ctx.spec
    a = spec.analysis
    al = a.endpoint_alignment
    assert al is not None
    unit = a.landmark_unit
    with_iv, note = interval_columns(ctx, frame)
    block = AlignmentBlock(
        time_col=time_col, event_col=event_col, left_col=LEFT, exact_col=EXACT, gap_col=GAP,
        grid_every=cn.days_to(unit, cn.to_days(al.grid_unit, al.grid_every)),
        grid_label=(al.grid_every, al.grid_unit), landmarks=tuple(a.landmarks), unit=unit,
        rmst_tau=a.rmst_tau, imputations=al.imputations, random_state=spec.study.seed,
        days_per_unit=cn.DAYS_PER_UNIT[unit], primary=al.primary, grid_window=al.grid_window,
        imputation_model=al.imputation_model, source=note,
        reason=note if with_iv is None else None)
    return (frame if with_iv is None else with_iv), block


def gap_figure(ctx: StageContext, analysed: pd.DataFrame, weight_col: str):
    """The gap ECDF figure of the analysed rows (None when no assessment dates are known)."""
    if GAP not in analysed or not analysed[GAP].notna().any():
        return None
    from reports.alignment_figures import gap_figure as figure

    al = ctx.spec.analysis.endpoint_alignment
    assert al is not None
    trial = (analysed[cn.ARM] == cn.TRIAL).to_numpy()
    return figure(analysed.loc[trial, GAP].to_numpy(float),
                  analysed.loc[~trial, GAP].to_numpy(float),
                  analysed.loc[~trial, weight_col].to_numpy(float),
                  grid_days=cn.to_days(al.grid_unit, al.grid_every))
