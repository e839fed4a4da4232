"""The study analysis over multiply imputed designs -> one pooled `StudyAnalysis`.

``analyze_imputed(frame, designs, redesign, settings, ...)`` is `reports.analysis.analyze_study`
for ``design.missing: impute``: every endpoint of ``settings`` is estimated on each of the ``m``
imputed designs (analytic variances, no bootstrap), each statistic of each endpoint
(``EndpointResult.statistics()``) is pooled by Rubin's rules on its pooling scale
(`pooling_scale`), and the pooled estimates and intervals are handed to the first imputation's
result through ``with_intervals`` (`reports.endpoints.Interval` with ``estimate``). The result is
the same typed `StudyAnalysis` as a single design's: ``analytic`` holds the Rubin-pooled
results; ``endpoints`` the primary ones (Rubin's, or with ``settings.bootstrap > 0`` the
bootstrap-then-impute intervals around the pooled estimates, Rubin's under ``analytic``). The
survival curves of a time-to-event result are the pooled ones (`reports.pooling.pool_curves`:
the mean over imputations at each time, pointwise Rubin limits).

Scales (as `reports.pooling` documents and the R reference tests check): S(t) per arm on
log(-log S), the S(t) difference, RMST and the log HR as they are; medians are not pooled by
Rubin's rules (the median over imputations of the estimates and limits).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from reports.analysis import (
    AnalysisDesign,
    AnalysisSettings,
    Sensitivity,
    SensitivityResult,
    StudyAnalysis,
    designed_frame,
    estimate_endpoints,
)
from reports.bootstrap import Resampling, run_bootstrap
from reports.endpoints import EndpointResult, Interval, StatKey, StatValue
from reports.errors import EstimationError
from reports.estimate import json_number
from reports.pooling import RubinPooled, _forward, _inverse, _inverse_slope, rubin_pool

#: results.json ``logrank.method`` of a pooled endpoint
_LOGRANK_NOT_POOLED = ("not pooled over imputations (a score test has no Rubin's-rules "
                       "pooling here); the pooled test is the hazard ratio's p_value (Wald, t "
                       "with Barnard-Rubin df)")
#: the redesign of a bootstrap-then-impute replicate: ``(resample, seed) -> m designs``
RedesignImputed = Callable[[pd.DataFrame, int], Sequence[AnalysisDesign]]


def pooling_scale(key: StatKey) -> str | None:
    """The scale a statistic is pooled on: ``"cloglog"`` for a survival probability per arm,
    ``None`` for a median (median over imputations), else ``"identity"`` on the statistic's
    own scale (the log for ratios)."""
    if key.quantity == "median":
        return None
    if key.quantity == "landmark" and key.arm in ("trial", "control"):
        return "cloglog"
    return "identity"


@dataclass(frozen=True, slots=True)
class PooledStatistic:
    """One statistic pooled over the imputations: the pooled ``interval`` (with its
    ``estimate``) and Rubin's ``record`` (None for a median or a not estimable one)."""

    key: StatKey
    interval: Interval
    record: RubinPooled | None

    def to_dict(self) -> dict[str, Any]:
        """A row of results.json ``endpoints.<name>.pooling``: the statistic, the pooled
        estimate on its natural scale and, for Rubin's rules, the analysis-scale record."""
        out: dict[str, Any] = {"statistic": self.key.label,
                               "estimate": json_number(self.interval.estimate),
                               "method": self.interval.method}
        if self.record is not None:
            out["rubin"] = self.record.to_dict()
        if self.interval.reason is not None:
            out["reason"] = self.interval.reason
        return out


@dataclass(frozen=True, slots=True, eq=False)
class PooledEndpointResult:
    """An endpoint's result pooled over ``m`` imputed designs (an `EndpointResult`).

    ``result`` is the pooled result (the endpoint kind's own type, pooled numbers in it);
    ``pooled`` the per-statistic Rubin records; ``per_imputation`` each imputation's own
    (analytic) result. ``to_dict()`` is the endpoint kind's object plus ``pooling`` (one row
    per statistic) and ``imputation`` (m and each imputation's estimates).
    """

    result: EndpointResult
    pooled: tuple[PooledStatistic, ...]
    per_imputation: tuple[EndpointResult, ...]

    @property
    def m(self) -> int:
        return len(self.per_imputation)

    @property
    def comparison(self) -> Any:
        """The pooled `ArmComparison` of a time-to-event endpoint (report and figures)."""
        return self.result.comparison

    def summary(self) -> pd.DataFrame:
        return (self.result.summary() if hasattr(self.result, "summary")
                else self.result.comparison.summary())

    def to_dict(self) -> dict[str, Any]:
        per = [{"imputation": k, **{key.label: json_number(v.estimate)
                                    for key, v in r.statistics().items()}}
               for k, r in enumerate(self.per_imputation, 1)]
        out = {**self.result.to_dict(), "pooling": [p.to_dict() for p in self.pooled],
               "imputation": {"m": self.m, "per_imputation": per}}
        if "logrank" in out:  # a score test is not one of the pooled statistics
            out["logrank"] = {"chisq": None, "df": None, "p_value": None, "chisq_naive": None,
                              "p_value_naive": None, "method": _LOGRANK_NOT_POOLED}
        return out

    def statistics(self) -> dict[StatKey, StatValue]:
        return self.result.statistics()

    def with_intervals(self, intervals: Mapping[StatKey, Interval]) -> PooledEndpointResult:
        return replace(self, result=self.result.with_intervals(intervals))

    def problems(self) -> list[str]:
        out = list(self.result.problems())
        out += [f"{p.key.endpoint}: {p.key.label} is not estimable ({p.interval.reason})"
                for p in self.pooled if p.interval.reason and p.key.quantity != "median"
                and not any(p.key.label in w for w in out)]
        return out


def pool_statistics(results: Sequence[EndpointResult], conf_level: float
                    ) -> tuple[PooledStatistic, ...]:
    """Pool each statistic of ``results`` (one endpoint, one result per imputation)."""
    m = len(results)
    if m < 2:
        raise EstimationError(f"pooling needs m >= 2 imputed analyses; got {m}")
    stats = [r.statistics() for r in results]
    out = []
    for key in stats[0]:
        values = [s[key] for s in stats]
        out.append(_pool_one(key, values, results, conf_level))
    return tuple(out)


def _pool_one(key: StatKey, values: Sequence[StatValue], results, conf_level: float
              ) -> PooledStatistic:
    m = len(values)
    scale = pooling_scale(key)
    if scale is None:
        return PooledStatistic(key, _median_interval(key, values, results), None)
    on = "log(-log S)" if scale == "cloglog" else ("log" if key.quantity == "log_hr" else
                                                    "natural")
    method = (f"Rubin's rules over {m} imputations on the {on} scale, Barnard-Rubin df, "
              f"t {conf_level:.0%} limits")
    if key.quantity == "log_hr":
        method = f"Cox log HR (per imputation: {_hr_method(results)}) pooled by {method}"
    bad = [k + 1 for k, v in enumerate(values)
           if not (np.isfinite(v.estimate) and np.isfinite(v.se))]
    if bad:
        why = next((v.reason for v in values if v.reason), None) or "not estimable"
        nan = math.nan
        return PooledStatistic(key, Interval(nan, nan, nan, method,
                                             f"not estimable in imputations {bad}: {why}",
                                             estimate=nan), None)
    x = np.array([v.estimate for v in values])
    se = np.array([v.se for v in values])
    g, gse = _forward(scale, x, se)
    if not (np.isfinite(g).all() and np.isfinite(gse).all()):
        nan = math.nan
        return PooledStatistic(key, Interval(
            nan, nan, nan, method, f"an estimate lies on the boundary of the {scale} scale "
            "in some imputation", estimate=nan), None)
    rec = rubin_pool(g, gse**2, dfcom=_dfcom(key, results), conf_level=conf_level,
                     scale=scale)
    lo, hi = sorted((_inverse(scale, rec.lower), _inverse(scale, rec.upper)))
    est = _inverse(scale, rec.estimate)
    p_value = None
    if key.quantity == "log_hr":
        method += f" (df = {rec.df:.4g})"
        p_value = (float(2 * student_t.sf(abs(rec.estimate) / rec.se, rec.df))
                   if rec.se > 0 else math.nan)
    se_nat = abs(_inverse_slope(scale, rec.estimate)) * rec.se
    return PooledStatistic(key, Interval(se_nat, lo, hi, method, estimate=est,
                                         p_value=p_value), rec)


def _hr_method(results) -> str:
    hr = getattr(getattr(results[0], "comparison", None), "hazard_ratio", None)
    return "see the per-imputation analyses" if hr is None else hr.method


def _dfcom(key: StatKey, results) -> float:
    """mice's complete-data df: events - 1 for a Cox model (``mice:::get.dfcom`` on the
    first imputation's fit), infinite otherwise."""
    if key.quantity == "log_hr":
        hr = getattr(getattr(results[0], "comparison", None), "hazard_ratio", None)
        if hr is not None:
            return float(max(hr.events - 1, 1))
    return math.inf


def _median_interval(key: StatKey, values, results) -> Interval:
    """The median over imputations of the per-imputation medians and limits."""
    m = len(values)
    limits = []
    for r in results:
        q = getattr(getattr(r, "comparison", None), f"median_{key.arm}", None)
        limits.append((q.lower, q.upper) if q is not None else (math.nan, math.nan))
    est = np.array([v.estimate for v in values], dtype=float)
    lo, hi = (np.array(v, dtype=float) for v in zip(*limits, strict=True))

    def mid(v: np.ndarray) -> float:
        return float(np.median(v)) if np.isfinite(v).all() else math.nan

    return Interval(math.nan, mid(lo), mid(hi),
                    f"median over {m} imputations of the per-imputation KM {key.quantity}s "
                    "and limits (not Rubin's rules; NA unless reached in every imputation)",
                    estimate=mid(est))


def pool_results(results: Sequence[EndpointResult], conf_level: float) -> PooledEndpointResult:
    """One endpoint's per-imputation results pooled into a `PooledEndpointResult`."""
    from reports.pooling import pool_curves

    pooled = pool_statistics(results, conf_level)
    res = results[0].with_intervals({p.key: p.interval for p in pooled})
    comp = getattr(res, "comparison", None)
    if comp is not None and hasattr(comp, "trial_curve"):  # the KM curves: pooled too
        comps = [r.comparison for r in results]
        res = replace(res, comparison=replace(
            comp, trial_curve=pool_curves([c.trial_curve for c in comps]),
            control_curve=pool_curves([c.control_curve for c in comps])))
    check = res.statistics()
    for p in pooled:  # an endpoint kind that ignores Interval.estimate would pool nothing
        got = check[p.key].estimate
        want = p.interval.estimate
        if not (np.isfinite(want) and np.isfinite(got)) or math.isclose(got, want,
                                                                         rel_tol=1e-12,
                                                                         abs_tol=1e-15):
            continue
        raise EstimationError(f"endpoint {p.key.endpoint}: its result did not take the pooled "
                              f"estimate of {p.key.label} (with_intervals must honour "
                              "Interval.estimate for multiple imputation)")
    return PooledEndpointResult(res, pooled, tuple(results))


@dataclass(frozen=True, slots=True)
class _PooledPoint:
    """``statistics(frame, designs)`` of a bootstrap-then-impute replicate: each statistic
    combined over the replicate's imputations on its pooling scale (point estimates only:
    the mean on that scale, the median over imputations for a median). Picklable."""

    settings: AnalysisSettings

    def __call__(self, frame: pd.DataFrame, designs: Sequence[AnalysisDesign]
                 ) -> dict[StatKey, StatValue]:
        per = [_statistics(frame, d, self.settings) for d in designs]
        out: dict[StatKey, StatValue] = {}
        for key in per[0]:
            vals = np.array([p[key].estimate for p in per], dtype=float)
            if not np.isfinite(vals).all():
                why = next((p[key].reason for p in per if p[key].reason), None)
                out[key] = StatValue(math.nan, reason=why or "not estimable")
                continue
            scale = pooling_scale(key)
            if scale is None:
                out[key] = StatValue(float(np.median(vals)))
                continue
            g, _ = _forward(scale, vals, np.zeros_like(vals))
            out[key] = (StatValue(_inverse(scale, float(np.mean(g)))) if np.isfinite(g).all()
                        else StatValue(float(np.mean(vals))))  # at the boundary: the mean
        return out


def _statistics(frame: pd.DataFrame, design: AnalysisDesign,
                settings: AnalysisSettings) -> dict[StatKey, StatValue]:
    data = designed_frame(frame, design, settings)
    out: dict[StatKey, StatValue] = {}
    for ep in settings.endpoints:
        out.update(ep.estimate(data, settings.conf_level).statistics())
    return out


def analyze_imputed(
    frame: pd.DataFrame,
    designs: Sequence[AnalysisDesign],
    redesign: RedesignImputed | None,
    settings: AnalysisSettings,
    *,
    sensitivities: Sequence[Sensitivity] = (),
    naive: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> StudyAnalysis:
    """Analyse a study on its ``m`` locked imputed designs, pooled by Rubin's rules.

    Parameters
    ----------
    frame : DataFrame
        As for `reports.analysis.analyze_study`, with the *incomplete* covariates (a
        bootstrap replicate re-imputes them through ``redesign``); aligned with every design.
    designs : sequence of AnalysisDesign
        One locked design per imputed data set (m >= 2).
    redesign : callable or None
        ``redesign(resample, seed) -> m designs`` (impute the resample m times, outcome-blind,
        and re-run the design on each); needed when ``settings.bootstrap > 0`` (bootstrap then
        impute, Schomaker & Heumann 2018: the primary intervals are the percentile intervals
        of the replicates' pooled point estimates; Rubin's move under ``analytic``).
    settings : AnalysisSettings
        ``blocks`` are not supported (an extra block runs on one locked design).
    sensitivities : sequence of Sensitivity
        Alternative analyses; one with ``imputed`` designs is pooled the same way.
    naive : bool
        Also the unadjusted comparison (every row, weight 1; no covariate is used).
    """
    designs = tuple(designs)
    if len(designs) < 2:
        raise EstimationError(f"analyze_imputed needs m >= 2 designs; got {len(designs)}")
    if any(settings.blocks.values()):
        raise EstimationError("endpoint blocks (endpoint alignment) are not available with "
                              "multiply imputed designs")
    frame = frame.reset_index(drop=True)
    per = [estimate_endpoints(frame, d, settings) for d in designs]
    analytic = {ep.name: pool_results([p[ep.name] for p in per], settings.conf_level)
                for ep in settings.endpoints}
    endpoints: dict[str, EndpointResult] = dict(analytic)
    boot = None
    if settings.bootstrap > 0:
        if redesign is None:
            raise EstimationError("bootstrap > 0 needs a redesign callable")
        point: dict[StatKey, StatValue] = {}
        for res in analytic.values():
            point.update(res.statistics())
        multi = settings.id_col is not None and bool(frame[settings.id_col].duplicated().any())
        boot = run_bootstrap(
            frame, redesign, _PooledPoint(settings), point,
            Resampling(settings.arm_col, settings.treated_value,
                       settings.id_col if multi else None),
            n_boot=settings.bootstrap, ci=settings.ci, conf_level=settings.conf_level,
            random_state=settings.random_state, n_jobs=settings.n_jobs,
            min_valid_share=settings.min_valid_share, progress=progress,
            scheme=(f"bootstrap then impute (Schomaker & Heumann 2018): each resample imputed "
                    f"{len(designs)} times, outcome-blind, the design re-run on each imputed "
                    "set and the estimates combined on their pooling scale"))
        intervals = boot.intervals()
        endpoints = {k: v.with_intervals(intervals) for k, v in analytic.items()}
    unadjusted = (estimate_endpoints(frame, AnalysisDesign.unweighted(len(frame)), settings)
                  if naive else {})
    sens = tuple(_sensitivity(frame, s, settings) for s in sensitivities)
    warnings = [w for res in analytic.values() for w in res.problems()]
    warnings += boot.warnings() if boot is not None else []
    warnings += [f"sensitivity analysis {s.name} ({s.description}) could not be estimated: "
                 f"{s.failure}" for s in sens if s.failure is not None]
    return StudyAnalysis(settings, endpoints, analytic, unadjusted, {}, sens, boot,
                         tuple(warnings))


def _sensitivity(frame: pd.DataFrame, s: Sensitivity,
                 settings: AnalysisSettings) -> SensitivityResult:
    """A sensitivity analysis' primary endpoint: pooled over its ``imputed`` designs when it
    has them, else on its one design (`reports.analysis`)."""
    from reports.analysis import _sensitivity as single

    if not s.imputed or s.failure is not None:
        return single(frame, s, settings)
    data = frame if s.frame is None else s.frame.reset_index(drop=True)
    primary = settings.endpoints[0]
    try:
        per = [primary.estimate(designed_frame(data, d, settings), settings.conf_level)
               for d in s.imputed]
        res = pool_results(per, settings.conf_level)
    except EstimationError as exc:
        return SensitivityResult(s.name, s.description, s.info, None, str(exc))
    return SensitivityResult(s.name, s.description, s.info, res)
