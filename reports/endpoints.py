"""Endpoint analyses: what `reports.analysis.analyze_study` runs for each endpoint, by name.

An endpoint analysis (`EndpointAnalysis`) turns a `DesignedFrame` (the analysed rows with the
design's weights and the variance clusters already decided) into an `EndpointResult`. The
result knows its ``results.json`` form (``to_dict``), the scalar statistics that the
bootstrap resamples and that multiple-imputation pooling combines (``statistics``, keyed by
the typed `StatKey`), and how to take replacement intervals for them (``with_intervals``).
`TimeToEvent` (PFS, OS) and `Binary` (response rate, normalisation rate) are the kinds;
`ENDPOINT_KINDS` registers them by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from reports.binary import (
    BinomialTest,
    ProportionComparison,
    binary_array,
    binomial_test,
    compare_proportions,
)
from reports.compare import ArmComparison, compare_arms, evalues_of
from reports.evalue import evalue_rr


@dataclass(frozen=True, slots=True, order=True)
class StatKey:
    """One scalar statistic of an endpoint: ``quantity`` (``"landmark"``, ``"median"``,
    ``"log_hr"``, ``"rmst"``, ``"proportion"``...), the ``arm`` (``"trial"``, ``"control"``,
    ``"difference"``, or ``""`` for a contrast such as the log HR) and the ``time`` of a
    landmark (in the endpoint's unit; ``None`` otherwise). ``label`` is its printed name
    (the ``statistic`` of results.json's bootstrap table); it is never parsed back."""

    endpoint: str
    quantity: str
    arm: str = ""
    time: float | None = None

    @property
    def label(self) -> str:
        """``landmark_24_trial``, ``median_control``, ``log_hr``, ``rmst_difference``."""
        parts = [self.quantity]
        if self.time is not None:
            parts.append(f"{self.time:g}")
        if self.arm:
            parts.append(self.arm)
        return "_".join(parts)


class StatValue(NamedTuple):
    """A statistic's value on its pooling scale (log for ratios): NaN with a reason when the
    data cannot give it (a landmark beyond follow-up, a median not reached)."""

    estimate: float
    se: float = float("nan")
    reason: str | None = None


class Interval(NamedTuple):
    """Replacement SE and limits for a statistic (bootstrap or Rubin's rules), on the
    statistic's scale; NaN with ``reason`` when the interval is refused.

    ``estimate`` (with ``p_value`` for a contrast that has one) is set by multiple-imputation
    pooling (`reports.analysis_mi`): the pooled point estimate then replaces the result's
    own too, and no analytic copy is kept (the replaced numbers are one imputation's, not an
    analytic version of the pooled ones). With ``estimate=None`` (a bootstrap) the point
    estimate stays and the replaced SE/limits move under ``analytic``.
    """

    se: float
    lower: float
    upper: float
    method: str
    reason: str | None = None
    estimate: float | None = None
    p_value: float | None = None


@dataclass(frozen=True, slots=True, eq=False)
class DesignedFrame:
    """The analysed rows with the design applied (input of every endpoint analysis).

    ``weight_col`` holds the design weights (> 0); ``cluster_col`` is the cluster of the
    model-based (sandwich) variances: the matched set for designs yielding sets, the
    patient when patients contribute several rows, else None (robust per row);
    ``patient_col`` is set when patients contribute several rows (KM influence clusters).
    """

    frame: pd.DataFrame
    arm_col: str
    treated_value: object
    weight_col: str | None
    cluster_col: str | None
    patient_col: str | None


class EndpointResult(Protocol):
    """What `analyze_study` needs from an endpoint's result."""

    def to_dict(self) -> dict[str, Any]: ...

    def statistics(self) -> dict[StatKey, StatValue]: ...

    def with_intervals(self, intervals: Mapping[StatKey, Interval]) -> EndpointResult: ...

    def problems(self) -> list[str]: ...


@runtime_checkable
class EndpointAnalysis(Protocol):
    """An endpoint's analysis: ``name`` is its results.json key, ``kind`` its registry key."""

    name: str
    kind: ClassVar[str]

    def estimate(self, data: DesignedFrame, conf_level: float) -> EndpointResult: ...


class BlockResult(Protocol):
    """What an `EndpointBlock` returns: its results.json object (``to_dict``), its warnings
    (``problems``) and ``primary(result)``: the endpoint's primary result, unchanged or with
    the block's numbers in place of some (endpoint alignment with ``primary: true``)."""

    def to_dict(self) -> dict[str, Any]: ...

    def problems(self) -> list[str]: ...

    def primary(self, result: EndpointResult) -> EndpointResult: ...


class EndpointBlock(Protocol):
    """An extra block of an endpoint's results.json object (e.g. ``alignment`` for PFS,
    `reports.alignment_block.AlignmentBlock`): ``estimate`` returns a `BlockResult` stored
    under ``endpoints.<name>.<key>``."""

    key: str

    def estimate(self, data: DesignedFrame, conf_level: float) -> BlockResult: ...


@dataclass(frozen=True, slots=True, eq=False)
class TimeToEventResult:
    """`ArmComparison` of one time-to-event endpoint, as an `EndpointResult`."""

    name: str
    comparison: ArmComparison

    def to_dict(self) -> dict[str, Any]:
        return self.comparison.to_dict()

    def statistics(self) -> dict[StatKey, StatValue]:
        """Landmark rates and difference, medians, log HR, RMST (in this order)."""
        c, n = self.comparison, self.name
        out: dict[StatKey, StatValue] = {}
        for lm in c.landmarks:
            for arm in ("trial", "control", "difference"):
                e = getattr(lm, arm)
                out[StatKey(n, "landmark", arm, lm.time)] = StatValue(e.estimate, e.se, e.reason)
        for arm, q in (("trial", c.median_trial), ("control", c.median_control)):
            out[StatKey(n, "median", arm)] = StatValue(
                q.estimate, q.se, None if q.reached else "median not reached")
        hr = c.hazard_ratio
        out[StatKey(n, "log_hr")] = StatValue(
            hr.log_hr if hr.converged else np.nan, hr.se_log,
            None if hr.converged else "Cox model did not converge")
        if c.rmst is not None:
            for arm in ("trial", "control", "difference"):
                e = getattr(c.rmst, arm)
                out[StatKey(n, "rmst", arm)] = StatValue(e.estimate, e.se, e.reason)
        return out

    def problems(self) -> list[str]:
        """Planned estimates the data cannot give (a landmark or tau beyond follow-up, a Cox
        model that does not converge), one sentence each; a median not reached is not one."""
        c, out = self.comparison, []
        for lm in c.landmarks:
            for arm in ("trial", "control"):
                e = getattr(lm, arm)
                if not e.estimable:
                    out.append(f"{self.name}: the {arm} rate at {lm.time:g} {lm.unit or ''} "
                               f"is not estimable ({e.reason})")
        if c.rmst is not None:
            for arm in ("trial", "control"):
                e = getattr(c.rmst, arm)
                if not e.estimable:
                    out.append(f"{self.name}: the {arm} RMST is not estimable ({e.reason})")
        if not c.hazard_ratio.converged:
            out.append(f"{self.name}: the Cox model did not converge (no hazard ratio)")
        return out

    def with_intervals(self, intervals: Mapping[StatKey, Interval]) -> TimeToEventResult:
        """The comparison with these SEs/limits as primary; analytic ones kept aside."""
        c, n = self.comparison, self.name

        def est(e, key):
            iv = intervals.get(key)
            if iv is not None and iv.estimate is not None:  # pooled over imputations
                return replace(e, estimate=iv.estimate, se=iv.se, lower=iv.lower,
                               upper=iv.upper, method=iv.method, reason=iv.reason,
                               analytic=None)
            if iv is None or not e.estimable:
                return e
            out = e.with_bootstrap(iv.se, iv.lower, iv.upper, iv.method)
            return out if iv.reason is None else replace(out, reason=iv.reason)

        lms = tuple(
            replace(lm, **{arm: est(getattr(lm, arm), StatKey(n, "landmark", arm, lm.time))
                           for arm in ("trial", "control", "difference")})
            for lm in c.landmarks
        )

        def med(q, arm):
            iv = intervals.get(StatKey(n, "median", arm))
            if iv is None:
                return q
            if iv.estimate is not None:
                return replace(q, estimate=iv.estimate, se=iv.se, lower=iv.lower,
                               upper=iv.upper, method=iv.method, analytic=None)
            return replace(q, se=iv.se, lower=iv.lower, upper=iv.upper, method=iv.method,
                           analytic=(q.lower, q.upper))

        hr = c.hazard_ratio
        iv = intervals.get(StatKey(n, "log_hr"))
        if iv is not None and iv.estimate is not None:
            ok = bool(np.isfinite(iv.estimate))
            hr = replace(hr, estimate=float(np.exp(iv.estimate)), log_hr=iv.estimate,
                         se_log=iv.se, lower=float(np.exp(iv.lower)),
                         upper=float(np.exp(iv.upper)), method=iv.method,
                         p_value=np.nan if iv.p_value is None else iv.p_value,
                         se_log_naive=np.nan, converged=ok, analytic=None)
        elif iv is not None and hr.converged:  # no interval around an estimate that does not exist
            hr = replace(hr, se_log=iv.se, lower=float(np.exp(iv.lower)),
                         upper=float(np.exp(iv.upper)), method=iv.method,
                         analytic=(hr.se_log, hr.lower, hr.upper))  # p_value stays the Wald one
        rm = c.rmst
        if rm is not None:
            rm = replace(rm, **{arm: est(getattr(rm, arm), StatKey(n, "rmst", arm))
                                for arm in ("trial", "control", "difference")})
        # the E-values follow the primary limits (one E-value per quantity, never stale)
        comp = replace(c, landmarks=lms, median_trial=med(c.median_trial, "trial"),
                       median_control=med(c.median_control, "control"), hazard_ratio=hr,
                       rmst=rm, evalues=evalues_of(hr, lms, c.conf_level))
        return TimeToEventResult(n, comp)


@dataclass(frozen=True, slots=True)
class TimeToEvent:
    """A time-to-event endpoint (PFS, OS): weighted KM, landmarks, medians, Cox HR, RMST.

    ``time_col``/``event_col`` are columns of the analysis frame, times in ``unit``;
    ``landmarks`` and ``rmst_tau`` are in ``unit``; ``null_rate`` is the Simon H0 rate of
    the landmark tests; ``conf_type`` the scale of the KM limits (`reports.km.CONF_TYPES`).
    """

    name: str
    time_col: str
    event_col: str
    landmarks: Sequence[float] = ()
    unit: str | None = None
    null_rate: float | None = None
    rmst_tau: float | None = None
    conf_type: str = "log"
    kind: ClassVar[str] = "time_to_event"

    def estimate(self, data: DesignedFrame, conf_level: float) -> TimeToEventResult:
        comp = compare_arms(
            data.frame, time_col=self.time_col, event_col=self.event_col,
            arm_col=data.arm_col, treated_value=data.treated_value,
            weight_col=data.weight_col, cluster_col=data.cluster_col,
            km_cluster_col=data.patient_col, landmarks=list(self.landmarks),
            time_unit=self.unit, null_rate=self.null_rate, rmst_tau=self.rmst_tau,
            conf_type=self.conf_type, conf_level=conf_level,
        )
        return TimeToEventResult(self.name, comp)


#: the binary statistics (`StatKey` quantity, arm) and the `ProportionComparison` field they
#: are read from; ratios are resampled and pooled on the log scale
_PROPORTIONS = ("trial", "control", "difference")
_RATIOS = (("log_ratio", "ratio"), ("log_odds_ratio", "odds_ratio"))


@dataclass(frozen=True, slots=True, eq=False)
class BinaryResult:
    """A binary endpoint's comparison (`ProportionComparison`) and the trial arm's exact test
    against the null rate (`BinomialTest`, None without a null rate), as an `EndpointResult`.

    ``to_dict()`` is results.json ``endpoints.<name>``: ``{kind: "binary", definition,
    proportion: {trial, control, difference, ratio, odds_ratio, evalue, n, responders,
    weighted_n, ...}, trial_vs_null, simon}`` (``simon`` and ``duration_of_response`` are
    blocks: `reports.binary_endpoint`).
    """

    name: str
    definition: str
    proportion: ProportionComparison
    trial_vs_null: BinomialTest | None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": Binary.kind, "definition": self.definition,
                "proportion": self.proportion.to_dict(),
                "trial_vs_null": (None if self.trial_vs_null is None
                                  else self.trial_vs_null.to_dict()),
                "simon": None}

    def summary(self) -> pd.DataFrame:
        return self.proportion.summary()

    def statistics(self) -> dict[StatKey, StatValue]:
        """Proportions (trial, control, difference) and the log risk and odds ratios."""
        p, n = self.proportion, self.name
        out = {StatKey(n, "proportion", arm): StatValue(getattr(p, arm).estimate,
                                                        getattr(p, arm).se)
               for arm in _PROPORTIONS}
        for quantity, field in _RATIOS:
            r = getattr(p, field)
            ok = r.reason is None and np.isfinite(r.estimate) and r.estimate > 0
            out[StatKey(n, quantity)] = StatValue(
                float(np.log(r.estimate)) if ok else np.nan, r.se_log,
                None if ok else (r.reason or "not estimable"))
        return out

    def problems(self) -> list[str]:
        """A ratio the data cannot give (no responder, or all responders, in an arm)."""
        return [f"{self.name}: the {field.replace('_', ' ')} is not estimable ({r.reason})"
                for field in ("ratio", "odds_ratio")
                if (r := getattr(self.proportion, field)).reason is not None]

    def with_intervals(self, intervals: Mapping[StatKey, Interval]) -> BinaryResult:
        """The comparison with these SEs/limits as primary (ratios: limits exp() of the
        log-scale ones), analytic ones kept aside; the E-value follows the primary limits."""
        p, n = self.proportion, self.name
        arms = {}
        for arm in _PROPORTIONS:
            e, iv = getattr(p, arm), intervals.get(StatKey(n, "proportion", arm))
            if iv is None or not e.estimable:
                arms[arm] = e
                continue
            out = e.with_bootstrap(iv.se, iv.lower, iv.upper, iv.method)
            arms[arm] = out if iv.reason is None else replace(out, reason=iv.reason)
        ratios = {}
        for quantity, field in _RATIOS:
            r, iv = getattr(p, field), intervals.get(StatKey(n, quantity))
            if iv is None or r.reason is not None:
                ratios[field] = r
                continue
            ratios[field] = replace(r, se_log=iv.se, lower=float(np.exp(iv.lower)),
                                    upper=float(np.exp(iv.upper)),
                                    method=iv.method + " (log scale)", reason=iv.reason,
                                    analytic=(r.se_log, r.lower, r.upper))  # p stays Wald
        rr = ratios["ratio"]
        ev = (evalue_rr(rr.estimate, rr.lower, rr.upper)
              if rr.reason is None and np.isfinite(rr.estimate) else None)
        return replace(self, proportion=replace(p, **arms, **ratios, evalue=ev))


@dataclass(frozen=True, slots=True)
class Binary:
    """A binary endpoint (objective response, biomarker normalisation): 0/1 per row.

    ``response_col`` holds 1 (responder / normalised) or 0 on every analysed row; the
    comparison is `reports.binary.compare_proportions` on the design's weights and clusters
    (weighted proportions, difference, risk and odds ratio with HC0 sandwich SEs, as R
    ``glm`` + ``sandwich``); with ``null_rate`` the trial arm alone is tested against it
    (`reports.binary.binomial_test`, R ``binom.test``). ``definition`` is the sentence that
    defines the endpoint in results.json (e.g. `connectors.response.ResponseRule.describe`).
    """

    name: str
    response_col: str
    null_rate: float | None = None
    definition: str = ""
    kind: ClassVar[str] = "binary"

    def estimate(self, data: DesignedFrame, conf_level: float) -> BinaryResult:
        f = data.frame
        comp = compare_proportions(
            f, response_col=self.response_col, arm_col=data.arm_col,
            treated_value=data.treated_value, weight_col=data.weight_col,
            cluster_col=data.cluster_col, conf_level=conf_level)
        test = None
        if self.null_rate is not None:
            y = binary_array(f.loc[f[data.arm_col] == data.treated_value], self.response_col)
            test = binomial_test(int(y.sum()), len(y), self.null_rate, conf_level)
        return BinaryResult(self.name, self.definition, comp, test)


#: endpoint kinds by name (a new kind: one class with ``kind`` and ``estimate``, one entry)
ENDPOINT_KINDS: dict[str, type] = {TimeToEvent.kind: TimeToEvent, Binary.kind: Binary}
