"""The blocks of a binary or landmark endpoint computed once on the locked design.

The comparison itself is the `reports.endpoints.Binary` endpoint kind (bootstrapped with the
design re-run like every kind). What is computed once, on the locked design's analysed rows,
is an `reports.endpoints.EndpointBlock` here:

* `ResponseSimonBlock` (``endpoints.<binary>.simon``): the trial's Simon two-stage analysis of
  the binary outcome (`reports.simon`, Koyama & Chen 2008);
* `LandmarkSimonBlock` (``endpoints.PFS.simon`` / ``endpoints.OS.simon``): the same analysis
  of "event-free (PFS) / alive (OS) at the landmark", patients censored before it listed;
* `DurationBlock` (``endpoints.<binary>.duration_of_response``): KM from the first response
  of the responders, per arm, descriptive.

Simon stages: the trial patients are ordered by ``order_col`` (the index date: enrolment
order; ties by the frame's order) and the first ``n1`` form stage 1; the others are stage 2
(their number may differ from the planned ``n - n1``: Koyama & Chen handle it). If the trial
stopped at stage 1 by the rule, the later patients are not part of the design-based analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reports._inputs import require_columns
from reports.binary import binary_array
from reports.endpoints import DesignedFrame, EndpointResult
from reports.errors import EstimationError
from reports.simon import SimonAnalysis, SimonDesign, simon_analysis, simon_design


@dataclass(frozen=True, slots=True)
class SimonSettings:
    """``analysis.simon`` of the spec: the design's rates, error rates and criterion."""

    p0: float
    p1: float
    alpha: float = 0.05
    power: float = 0.8
    design: str = "optimal"


def landmark_status(time, event, landmark: float) -> np.ndarray:
    """Event-free at ``landmark`` as 1/0, NaN when censored before it.

    1: followed to the landmark without an event (time >= landmark and no event at or before
    it); 0: event at or before the landmark; NaN: censored before the landmark (status
    unknown). Times and ``landmark`` in the same unit.
    """
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=float)
    out = np.full(t.shape, np.nan)
    out[(e == 1) & (t <= landmark)] = 0.0
    out[(t > landmark) | ((t >= landmark) & (e == 0))] = 1.0
    return out


@dataclass(frozen=True, slots=True)
class LandmarkSimon:
    """Simon analysis of "event-free at the landmark" on the trial arm (PFS-rate endpoints)."""

    landmark: float
    unit: str | None
    n_evaluable: int
    censored_before_landmark: tuple[str, ...]
    simon: SimonAnalysis | None
    error: str | None
    outcome: str = "event-free"

    def to_dict(self) -> dict:
        """results.json ``endpoints.PFS.simon`` (``endpoints.OS.simon``: ``alive at``)."""
        out = {} if self.simon is None else self.simon.to_dict()
        out.update(
            outcome=f"{self.outcome} at {self.landmark:g} {self.unit or ''}".strip(),
            n_evaluable=self.n_evaluable,
            n_censored_before_landmark=len(self.censored_before_landmark),
            censored_before_landmark=list(self.censored_before_landmark),
            note="patients censored before the landmark have no known status: they are left "
            "out of the stages (the first n1 evaluable patients in enrolment order form stage 1)",
        )
        if self.error is not None:
            out["error"] = self.error
        return out

    def problems(self) -> list[str]:
        return _simon_problems(self.error)

    def primary(self, result: EndpointResult) -> EndpointResult:
        return result


def landmark_simon(
    frame: pd.DataFrame,
    *,
    time_col: str,
    event_col: str,
    landmark: float,
    simon: SimonSettings,
    id_col: str,
    order_col: str | None = None,
    unit: str | None = None,
    outcome: str = "event-free",
) -> LandmarkSimon:
    """Simon analysis of the trial arm's event-free status at ``landmark``.

    ``frame`` holds the trial patients only (one row each). Patients censored before the
    landmark are listed and left out; the others, in ``order_col`` order, form the stages.
    ``outcome`` names the status in results.json: "event-free" (PFS), "alive" (OS: the
    event is death, so 1 = alive at the landmark).
    """
    require_columns(
        frame,
        {"time_col": time_col, "event_col": event_col, "id_col": id_col, "order_col": order_col},
    )
    f = frame.sort_values(order_col, kind="stable") if order_col is not None else frame
    status = landmark_status(f[time_col], f[event_col], landmark)
    unknown = np.isnan(status)
    censored = tuple(f.loc[unknown, id_col].astype(str))
    y = status[~unknown].astype(int)
    d = simon_design(simon.p0, simon.p1, simon.alpha, simon.power, simon.design)
    result, error = _stages(d, y, simon.design)
    return LandmarkSimon(landmark, unit, int(y.size), censored, result, error, outcome)


def _simon_problems(error: str | None) -> list[str]:
    return [] if error is None else [f"the Simon two-stage analysis is not available: {error}"]


def _stages(d: SimonDesign, y: np.ndarray,
            criterion: str) -> tuple[SimonAnalysis | None, str | None]:
    """Split the ordered 0/1 outcomes into the design's stages and analyse them."""
    if len(y) < d.n1:
        return None, (
            f"{len(y)} evaluable trial patients, fewer than the {d.n1} of stage 1 of the "
            f"{criterion} design ({d.r1}/{d.n1}, {d.r}/{d.n})"
        )
    x1 = int(y[: d.n1].sum())
    rest = y[d.n1 :]
    if x1 > d.r1 and rest.size == 0:
        return None, (
            f"stage 1 continued ({x1} > r1 = {d.r1} of {d.n1}) but no stage-2 patient is in "
            "the data"
        )
    return simon_analysis(d, x1, int(rest.sum()), int(rest.size) or None), None


@dataclass(frozen=True, slots=True)
class ResponseSimon:
    """The trial's Simon analysis of a binary endpoint (`BlockResult`), or why there is none."""

    simon: SimonAnalysis | None
    error: str | None

    def to_dict(self) -> dict:
        """results.json ``endpoints.<name>.simon``."""
        return {"error": self.error} if self.simon is None else self.simon.to_dict()

    def problems(self) -> list[str]:
        return _simon_problems(self.error)

    def primary(self, result: EndpointResult) -> EndpointResult:
        return result


def _trial_rows(data: DesignedFrame, order_col: str | None) -> pd.DataFrame:
    """The trial arm's analysed rows in enrolment order (``order_col``; ties keep the order)."""
    f = data.frame
    trial = f.loc[f[data.arm_col] == data.treated_value]
    if order_col is not None and order_col in trial.columns:
        trial = trial.sort_values(order_col, kind="stable")
    return trial


@dataclass(frozen=True, slots=True)
class ResponseSimonBlock:
    """``endpoints.<name>.simon`` of a binary endpoint: the trial patients in enrolment order
    (``order_col``), the first ``n1`` forming stage 1, their 0/1 ``response_col`` analysed
    by `reports.simon.simon_analysis` (unweighted: the trial's own analysis)."""

    settings: SimonSettings
    response_col: str
    order_col: str | None = None
    key: str = "simon"

    def estimate(self, data: DesignedFrame, conf_level: float) -> ResponseSimon:
        s = self.settings
        y = binary_array(_trial_rows(data, self.order_col), self.response_col).astype(int)
        d = simon_design(s.p0, s.p1, s.alpha, s.power, s.design)
        return ResponseSimon(*_stages(d, y, s.design))


@dataclass(frozen=True, slots=True)
class LandmarkSimonBlock:
    """``endpoints.PFS.simon`` / ``endpoints.OS.simon``: `landmark_simon` of the trial's
    analysed rows (``outcome``: "event-free" for PFS, "alive" for OS)."""

    settings: SimonSettings
    time_col: str
    event_col: str
    landmark: float
    id_col: str
    unit: str | None = None
    order_col: str | None = None
    outcome: str = "event-free"
    key: str = "simon"

    def estimate(self, data: DesignedFrame, conf_level: float) -> LandmarkSimon:
        trial = _trial_rows(data, None)
        order = self.order_col if self.order_col in trial.columns else None
        return landmark_simon(trial, time_col=self.time_col, event_col=self.event_col,
                              landmark=self.landmark, simon=self.settings, id_col=self.id_col,
                              order_col=order, unit=self.unit, outcome=self.outcome)


@dataclass(frozen=True, slots=True)
class DurationOfResponse:
    """Descriptive duration of response per arm: weighted KM from the first response."""

    unit: str | None
    n_responders: dict
    median: dict  # arm -> QuantileEstimate
    method: str

    def to_dict(self) -> dict:
        """results.json ``endpoints.ORR.duration_of_response``."""
        return {
            "unit": self.unit,
            "n_responders": dict(self.n_responders),
            "median": {k: v.to_dict() for k, v in self.median.items()},
            "method": self.method,
        }

    def problems(self) -> list[str]:
        return []

    def primary(self, result: EndpointResult) -> EndpointResult:
        return result


@dataclass(frozen=True, slots=True)
class NotReported:
    """A block that cannot be reported: ``{"error": reason}``, a warning when ``warn``."""

    reason: str
    warn: bool = False
    what: str = "duration of response"

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.reason}

    def problems(self) -> list[str]:
        return [f"{self.what} not reported: {self.reason}"] if self.warn else []

    def primary(self, result: EndpointResult) -> EndpointResult:
        return result


@dataclass(frozen=True, slots=True)
class DurationBlock:
    """``endpoints.<name>.duration_of_response``: `duration_of_response` of the analysed
    rows (``time_col``/``event_col``: PFS; ``onset_col``: first response, same unit), or
    ``{"error": reason}`` when ``unavailable`` says why it cannot be (OS endpoint), when the
    source has no response dates, or when the data contradict themselves (a warning)."""

    response_col: str
    onset_col: str
    time_col: str
    event_col: str
    unit: str | None = None
    unavailable: str | None = None
    key: str = "duration_of_response"

    def estimate(self, data: DesignedFrame, conf_level: float
                 ) -> DurationOfResponse | NotReported:
        if self.unavailable is not None:
            return NotReported(self.unavailable)
        f = data.frame
        responders = binary_array(f, self.response_col) == 1
        if self.onset_col not in f or f.loc[responders, self.onset_col].isna().any():
            return NotReported("the response source has no response dates (flat file or "
                               "ADRS BOR)")
        try:
            return duration_of_response(
                f, time_col=self.time_col, event_col=self.event_col, onset_col=self.onset_col,
                response_col=self.response_col, arm_col=data.arm_col,
                treated_value=data.treated_value, weight_col=data.weight_col,
                time_unit=self.unit, conf_level=conf_level)
        except EstimationError as exc:
            return NotReported(str(exc), warn=True)


def duration_of_response(
    frame: pd.DataFrame,
    *,
    time_col: str,
    event_col: str,
    onset_col: str,
    response_col: str,
    arm_col: str = "arm",
    treated_value: object = "trial",
    weight_col: str | None = None,
    time_unit: str | None = None,
    conf_level: float = 0.95,
) -> DurationOfResponse:
    """Duration of response of the responders, per arm (descriptive, no comparison).

    DoR = progression-or-death time minus the time of the first response (both from index,
    in the same unit); censored when the PFS time is censored. Weighted KM per arm (the
    design's weights), median with R ``quantile(survfit)`` limits.
    """
    from reports.km import km_estimate
    from reports.median import median_survival

    require_columns(
        frame,
        {
            "time_col": time_col,
            "event_col": event_col,
            "onset_col": onset_col,
            "response_col": response_col,
            "weight_col": weight_col,
        },
    )
    resp = frame[binary_array(frame, response_col) == 1]
    dur = resp[time_col].to_numpy(float) - resp[onset_col].to_numpy(float)
    if (dur < 0).any():
        raise EstimationError(
            f"{int((dur < 0).sum())} responder(s) with {onset_col} after "
            f"{time_col}: a response after progression"
        )
    ev = resp[event_col].to_numpy(float)
    w = None if weight_col is None else resp[weight_col].to_numpy(float)
    n, med = {}, {}
    for label, is_arm in (("trial", True), ("control", False)):
        m = (resp[arm_col] == treated_value).to_numpy() == is_arm
        if w is not None:
            m &= w > 0
        n[label] = int(m.sum())
        if m.any():
            curve = km_estimate(
                dur[m],
                ev[m],
                None if w is None else w[m],
                conf_level=conf_level,
                time_unit=time_unit,
            )
            med[label] = median_survival(curve)
    return DurationOfResponse(
        time_unit,
        n,
        med,
        "weighted Kaplan-Meier from the first response (responders only, descriptive)",
    )
