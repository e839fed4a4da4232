"""``endpoints.PFS.alignment``: endpoint alignment as an `EndpointBlock` of `analyze_study`.

`AlignmentBlock` is handed to `reports.analysis.analyze_study` in
``AnalysisSettings.blocks["PFS"]``; it runs `reports.alignment.align_endpoint` on the analysed
rows of the locked design (the design's weights and the one clustering rule of
`reports.analysis.designed_frame`) and returns an `AlignmentBlockResult`. With
``primary=True`` the result's `AlignmentBlockResult.primary` puts the harmonised landmark
rates, HR and RMST in place of the standard ones in the endpoint's primary result (the
standard ones stay under ``alignment.estimates.right_point``; medians and the log-rank test
stay the standard ones). When an arm's progression intervals are unknown, the caller builds
the block with ``reason`` and no estimate is made (the block says why, and a warning).

Bootstrap: the block is computed on the locked design only, with Rubin's-rules limits; the
design-re-running bootstrap (``bootstrap > 0``) covers the standard estimates, so with
``primary: true`` the harmonised landmarks/HR/RMST carry Rubin's limits, not bootstrap ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from reports.alignment import (
    DEFAULT_IMPUTATION_MODEL,
    GRID_WINDOW,
    AlignmentResult,
    align_endpoint,
)
from reports.compare import evalues_of
from reports.endpoints import DesignedFrame, EndpointResult, TimeToEventResult


@dataclass(frozen=True, slots=True, eq=False)
class AlignmentBlockResult:
    """The alignment block of one analysis: the `AlignmentResult`, or why none was made."""

    grid: dict[str, Any]
    result: AlignmentResult | None
    source: str | None = None
    reason: str | None = None
    replaces_primary: bool = False

    def to_dict(self) -> dict[str, Any]:
        """results.json ``endpoints.PFS.alignment``."""
        if self.result is None:
            out: dict[str, Any] = {"grid": self.grid, "reason": self.reason, "estimates": None}
        else:
            out = self.result.to_dict()
        out["primary"] = self.replaces_primary and self.result is not None
        if self.source is not None:
            out["source"] = self.source
        return out

    def problems(self) -> list[str]:
        """The gap warning (arms assessed > 25% apart), or why no estimate was made."""
        if self.result is None:
            return [f"endpoint alignment not estimated: {self.reason}"]
        return [self.result.gap_warning] if self.result.gap_warning else []

    def primary(self, result: EndpointResult) -> EndpointResult:
        """``result`` with the harmonised landmarks, HR and RMST when the block is primary."""
        if not self.replaces_primary or self.result is None:
            return result
        if not isinstance(result, TimeToEventResult):
            raise TypeError(f"endpoint alignment applies to a time-to-event endpoint, "
                            f"not {type(result).__name__}")
        harm = self.result.versions["harmonised"]
        c = result.comparison
        comp = replace(c, landmarks=harm.landmarks, hazard_ratio=harm.hazard_ratio,
                       rmst=harm.rmst, evalues=evalues_of(harm.hazard_ratio, harm.landmarks,
                                                          c.conf_level))
        return TimeToEventResult(result.name, comp)


@dataclass(frozen=True, slots=True)
class AlignmentBlock:
    """Endpoint alignment of a time-to-event endpoint (an `EndpointBlock`).

    Parameters
    ----------
    time_col, event_col : str
        The endpoint's time (``unit``) and event columns of the analysis frame.
    left_col : str
        Last progression-free assessment (``unit``; 0 when none) of each row.
    exact_col, gap_col : str, optional
        Exact events (deaths) and per-patient mean days between assessments.
    grid_every : float
        The common visit grid's spacing, in ``unit``.
    grid_label : (float, str), optional
        The grid as the spec gives it (e.g. ``(6, "weeks")``).
    landmarks, unit, rmst_tau
        As the endpoint (`reports.endpoints.TimeToEvent`).
    imputations : int, default=20
        Imputed data sets of the harmonised estimate.
    random_state : int, optional
        Seed of the imputations.
    days_per_unit : float, default=1
        Days in one ``unit`` (the tipping point is in days).
    primary : bool, default=False
        The harmonised landmarks/HR/RMST replace the primary ones.
    tipping : bool, default=True
        Compute the tipping point (a simulation turns it off).
    impute_trial : bool, default=True
        Impute the trial arm's progressions too (False: control-only harmonisation).
    grid_window : float, default=0.1
        The grid's visit window, a fraction of ``grid_every`` (`reports.alignment.grid_cell`).
    imputation_model : str, default="grid_hazard"
        What a progression's time within its interval is drawn from
        (`reports.alignment_versions.IMPUTATION_MODELS`).
    source : str, optional
        Where the intervals came from (copied into the block).
    reason : str, optional
        Why the intervals are unknown: no estimate is made, the block says why.
    """

    time_col: str
    event_col: str
    left_col: str
    grid_every: float
    exact_col: str | None = None
    gap_col: str | None = None
    grid_label: tuple[float, str] | None = None
    landmarks: Sequence[float] = ()
    unit: str | None = None
    rmst_tau: float | None = None
    imputations: int = 20
    random_state: int | None = 0
    days_per_unit: float = 1.0
    primary: bool = False
    tipping: bool = True
    impute_trial: bool = True
    grid_window: float = GRID_WINDOW
    imputation_model: str = DEFAULT_IMPUTATION_MODEL
    source: str | None = None
    reason: str | None = None
    key: ClassVar[str] = "alignment"

    def estimate(self, data: DesignedFrame, conf_level: float) -> AlignmentBlockResult:
        every, unit = (self.grid_label if self.grid_label is not None
                       else (float(self.grid_every), self.unit))
        grid = {"every": every, "unit": unit}
        if self.reason is not None:
            return AlignmentBlockResult(grid, None, self.source, self.reason, self.primary)
        res = align_endpoint(
            data.frame, time_col=self.time_col, event_col=self.event_col,
            left_col=self.left_col, grid_every=self.grid_every, arm_col=data.arm_col,
            treated_value=data.treated_value, weight_col=data.weight_col,
            cluster_col=data.cluster_col, km_cluster_col=data.patient_col,
            exact_col=self.exact_col, gap_col=self.gap_col, landmarks=self.landmarks,
            time_unit=self.unit, rmst_tau=self.rmst_tau, imputations=self.imputations,
            random_state=self.random_state, days_per_unit=self.days_per_unit,
            grid_label=self.grid_label, tipping=self.tipping, conf_level=conf_level,
            impute_trial=self.impute_trial, grid_window=self.grid_window,
            imputation_model=self.imputation_model)
        return AlignmentBlockResult(grid, res, self.source, None, self.primary)
