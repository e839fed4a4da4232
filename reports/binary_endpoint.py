"""A binary endpoint (response rate, normalisation rate) in one call: results.json shape.

`analyze_binary_endpoint` composes the weighted comparison of the two arms
(`reports.binary.compare_proportions`), the trial arm's exact test against the null rate
(`reports.binary.binomial_test`) and, with a Simon design, the trial's two-stage analysis
(`reports.simon`). Its result's ``to_dict()`` is ``results.json["endpoints"]["ORR"]``:
``{definition, proportion: {...}, trial_vs_null: {...}, simon: {...}}``.

Simon stages: the trial patients are ordered by ``order_col`` (the index date: enrolment
order; ties by the frame's order) and the first ``n1`` form stage 1; the others are stage 2
(their number may differ from the planned ``n - n1``: Koyama & Chen handle it). If the trial
stopped at stage 1 by the rule, the later patients are not part of the design-based analysis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports._inputs import require_columns
from reports.binary import (
    BinomialTest,
    ProportionComparison,
    binary_array,
    binomial_test,
    compare_proportions,
)
from reports.errors import EstimationError
from reports.simon import SimonAnalysis, simon_analysis, simon_design


@dataclass(frozen=True, slots=True)
class SimonSettings:
    """``analysis.simon`` of the spec: the design's rates, error rates and criterion."""

    p0: float
    p1: float
    alpha: float = 0.05
    power: float = 0.8
    design: str = "optimal"


@dataclass(frozen=True, slots=True)
class BinaryEndpoint:
    """Everything results.json reports for one binary endpoint."""

    name: str
    definition: str
    proportion: ProportionComparison
    trial_vs_null: BinomialTest | None
    simon: SimonAnalysis | None
    simon_error: str | None = None

    def to_dict(self) -> dict:
        """results.json ``endpoints.<name>``."""
        simon: dict | None = None if self.simon is None else self.simon.to_dict()
        if self.simon_error is not None:
            simon = {"error": self.simon_error}
        return {
            "kind": "binary",
            "definition": self.definition,
            "proportion": self.proportion.to_dict(),
            "trial_vs_null": None if self.trial_vs_null is None else self.trial_vs_null.to_dict(),
            "simon": simon,
        }


def analyze_binary_endpoint(
    frame: pd.DataFrame,
    *,
    response_col: str,
    arm_col: str = "arm",
    treated_value: object = "trial",
    weight_col: str | None = None,
    cluster_col: str | None = None,
    order_col: str | None = None,
    null_rate: float | None = None,
    simon: SimonSettings | None = None,
    conf_level: float = 0.95,
    name: str = "ORR",
    definition: str = "",
) -> BinaryEndpoint:
    """Compare the arms on a 0/1 endpoint; test the trial arm; run its Simon analysis.

    Parameters
    ----------
    frame : DataFrame
        Both arms' analysed rows (the design's included patients).
    response_col, arm_col, treated_value, weight_col, cluster_col, conf_level
        As `reports.binary.compare_proportions`.
    order_col : str, optional
        Enrolment order of the trial patients (index date) for the Simon stages.
    null_rate : float, optional
        H0 rate of the exact test (default: ``simon.p0`` when a Simon design is given).
    simon : SimonSettings, optional
    name, definition : str
        The endpoint's name and a sentence defining it (e.g. `ResponseRule.describe`).
    """
    require_columns(
        frame, {"response_col": response_col, "arm_col": arm_col, "order_col": order_col}
    )
    proportion = compare_proportions(
        frame,
        response_col=response_col,
        arm_col=arm_col,
        treated_value=treated_value,
        weight_col=weight_col,
        cluster_col=cluster_col,
        conf_level=conf_level,
    )
    trial = frame.loc[frame[arm_col] == treated_value]
    if order_col is not None:
        trial = trial.sort_values(order_col, kind="stable")
    y = binary_array(trial, response_col).astype(int)
    h0 = null_rate if null_rate is not None else (simon.p0 if simon is not None else None)
    test = None if h0 is None else binomial_test(int(y.sum()), len(y), h0, conf_level)
    result, error = None, None
    if simon is not None:
        d = simon_design(simon.p0, simon.p1, simon.alpha, simon.power, simon.design)
        result, error = _stages(d, y, simon.design)
    return BinaryEndpoint(name, definition, proportion, test, result, error)


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

    def to_dict(self) -> dict:
        """results.json ``endpoints.PFS.simon``."""
        out = {} if self.simon is None else self.simon.to_dict()
        out.update(
            outcome=f"event-free at {self.landmark:g} {self.unit or ''}".strip(),
            n_evaluable=self.n_evaluable,
            n_censored_before_landmark=len(self.censored_before_landmark),
            censored_before_landmark=list(self.censored_before_landmark),
            note="patients censored before the landmark have no known status: they are left "
            "out of the stages (the first n1 evaluable patients in enrolment order form stage 1)",
        )
        if self.error is not None:
            out["error"] = self.error
        return out


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
) -> LandmarkSimon:
    """Simon analysis of the trial arm's event-free status at ``landmark``.

    ``frame`` holds the trial patients only (one row each). Patients censored before the
    landmark are listed and left out; the others, in ``order_col`` order, form the stages.
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
    return LandmarkSimon(landmark, unit, int(y.size), censored, result, error)


def _stages(d, y: np.ndarray, criterion: str) -> tuple[SimonAnalysis | None, str | None]:
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
