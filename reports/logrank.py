"""Weighted log-rank test of trial vs control.

``survdiff`` takes no case weights, so the reference is the Cox score test at HR = 1 of
``coxph(Surv(t, e) ~ arm, weights = w, cluster = g)`` (Efron ties): its robust version
(``summary(fit)$robscore``) uses the cluster-robust variance of the score, which is what a
weighted design needs; the model-based one (``sctest``) is reported beside it. For unit
weights without tied event times the model-based statistic is the classical log-rank test.
"""

from __future__ import annotations

import pandas as pd

from reports._inputs import (
    cluster_codes,
    event_array,
    require_columns,
    time_array,
    weight_array,
)
from reports.cox import LogRankTest, cox_hazard_ratio
from reports.errors import EstimationError

__all__ = ["LogRankTest", "weighted_logrank"]


def weighted_logrank(
    frame: pd.DataFrame,
    *,
    time_col: str,
    event_col: str,
    arm_col: str = "arm",
    treated_value: object = "trial",
    weight_col: str | None = None,
    cluster_col: str | None = None,
) -> LogRankTest:
    """Weighted log-rank test (robust Cox score test at HR = 1), 1 degree of freedom."""
    require_columns(
        frame,
        {
            "time_col": time_col,
            "event_col": event_col,
            "arm_col": arm_col,
            "weight_col": weight_col,
            "cluster_col": cluster_col,
        },
    )
    w = weight_array(frame, weight_col)
    treated = (frame[arm_col] == treated_value).to_numpy(dtype=float)
    if treated.min() == treated.max():
        raise EstimationError(f"arm_col={arm_col!r}: need rows of both arms")
    _, test = cox_hazard_ratio(
        time_array(frame, time_col),
        event_array(frame, event_col),
        treated,
        w,
        cluster_codes(frame, cluster_col, w),
        cluster_name=cluster_col,
    )
    return test
