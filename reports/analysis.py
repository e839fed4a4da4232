"""The study analysis in one call: the locked design + outcomes -> `StudyAnalysis` (results.json).

``analyze_study(frame, design, redesign, settings, sensitivities=...)`` runs every endpoint
of ``settings.endpoints`` on the design, the design-re-running bootstrap when
``settings.bootstrap > 0``, the naive (unadjusted) comparison and the sensitivity analyses it
is handed, and returns a frozen `StudyAnalysis` whose ``to_dict()`` is results.json's
``endpoints``/``sensitivity``/``bootstrap`` part. The analyze stage and the simulation study
both call it; neither assembles an analysis itself.

Endpoint kinds: `reports.endpoints.TimeToEvent` (PFS, OS) and `reports.endpoints.Binary`
(response or normalisation rate: ``proportion``, ``trial_vs_null``). Adding a kind:
1. write a frozen dataclass with ``name``, ``kind`` (ClassVar) and
   ``estimate(data: DesignedFrame, conf_level) -> result`` (see `reports.endpoints`);
2. its result implements ``to_dict()`` (the ``endpoints.<name>`` object), ``statistics()``
   (typed `StatKey` -> `StatValue`, on the scale to resample/pool: log for ratios),
   ``with_intervals({StatKey: Interval})`` (bootstrap or Rubin's-rules limits as primary)
   and ``problems()`` (planned estimates the data cannot give: reported as warnings);
3. register the class in ``reports.endpoints.ENDPOINT_KINDS`` and list an instance in
   ``AnalysisSettings.endpoints``. The bootstrap then covers it with no other change.
An extra block of an existing endpoint (``endpoints.PFS.alignment``, ``endpoints.<name>.simon``,
``endpoints.ORR.duration_of_response``): an `EndpointBlock` in
``AnalysisSettings.blocks[name]``, computed on the locked design (not per bootstrap replicate);
its `BlockResult` gives the block's object, its warnings and, through ``primary(result)``,
may replace numbers of the endpoint's primary result (the analytic and naive ones stay).
Multiple imputation (`reports.analysis_mi.analyze_imputed`): every endpoint is estimated on
each imputed design, each endpoint's ``statistics()`` are pooled by Rubin's rules and the
pooled `Interval`s (with their ``estimate``) go to ``with_intervals``; the result is this same
`StudyAnalysis`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reports.bootstrap import MIN_VALID_SHARE, BootstrapResult, Resampling, run_bootstrap
from reports.endpoints import (
    BlockResult,
    DesignedFrame,
    EndpointAnalysis,
    EndpointBlock,
    EndpointResult,
    StatKey,
    StatValue,
    TimeToEvent,
)
from reports.errors import EstimationError

#: how a design's variance must be clustered (the design's ``yields``): on the matched set
#: for "sets"; robust per row otherwise (per patient when a patient has several rows)
YIELDS: tuple[str, ...] = ("sets", "pairs_with_replacement", "weights")
# design columns of the designed frame; SET is named in the sandwich's method text
WEIGHT, SET = "__weight", "cluster"


@dataclass(frozen=True, slots=True, eq=False)
class AnalysisDesign:
    """A design as the analysis needs it, aligned with the analysis frame's rows.

    ``weights`` (>= 0; 0 = not analysed), ``included`` (bool), ``match_id`` (matched-set id,
    NaN/None where none) and ``yields`` (one of `YIELDS`: how the variance is clustered).
    """

    weights: np.ndarray
    included: np.ndarray
    match_id: np.ndarray
    yields: str

    def __post_init__(self) -> None:
        if self.yields not in YIELDS:
            raise EstimationError(f"design yields {self.yields!r}; expected one of {YIELDS}")
        n = len(self.weights)
        if len(self.included) != n or len(self.match_id) != n:
            raise EstimationError("design: weights, included and match_id differ in length")

    @classmethod
    def from_result(cls, result: Any, yields: str | None = None) -> AnalysisDesign:
        """From `matching.DesignResult` (its ``yields`` when it has one, else ``yields``)."""
        ylds = getattr(result, "yields", None) or yields
        if ylds is None:
            raise EstimationError("design result does not say how it yields (sets/weights)")
        mid = pd.Series(result.match_id).astype("object")
        return cls(np.asarray(result.weights, dtype=float),
                   np.asarray(result.included, dtype=bool),
                   mid.where(mid.notna(), np.nan).to_numpy(), ylds)

    @classmethod
    def unweighted(cls, n: int) -> AnalysisDesign:
        """Every row, weight 1 (the naive comparison)."""
        return cls(np.ones(n), np.ones(n, dtype=bool), np.full(n, np.nan), "weights")


@dataclass(frozen=True, slots=True)
class AnalysisSettings:
    """What to estimate and how (everything but the data and the design).

    ``endpoints`` by name (the first is the primary one); ``blocks`` extra per-endpoint
    blocks; ``arm_col``/``treated_value`` the arm; ``id_col`` the patient (a patient with
    several rows is one cluster); ``bootstrap`` replicates (0 = analytic only), ``ci``,
    ``min_valid_share`` (a statistic given by fewer replicates gets no interval),
    ``n_jobs``, ``random_state``; ``conf_level`` of every interval.
    """

    endpoints: tuple[EndpointAnalysis, ...]
    arm_col: str = "arm"
    treated_value: object = "trial"
    id_col: str | None = None
    conf_level: float = 0.95
    bootstrap: int = 0
    ci: str = "percentile"
    min_valid_share: float = MIN_VALID_SHARE
    n_jobs: int = 1
    random_state: int | None = None
    blocks: Mapping[str, tuple[EndpointBlock, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [e.name for e in self.endpoints]
        if not names or len(set(names)) != len(names):
            raise EstimationError(f"endpoints must be non-empty with distinct names: {names}")
        if self.bootstrap == 1 or self.bootstrap < 0:
            raise EstimationError(f"bootstrap must be 0 or >= 2, got {self.bootstrap}")

    @property
    def primary(self) -> str:
        return self.endpoints[0].name


@dataclass(frozen=True, slots=True)
class Sensitivity:
    """A sensitivity analysis handed to `analyze_study`: ``design`` on ``frame`` (None: the
    main frame); ``info`` goes into its results.json object before the estimates. A
    sensitivity design that could not be built carries ``failure`` instead of a design.
    ``imputed``: one design per imputed data set instead of ``design`` (pooled by Rubin's
    rules; `reports.analysis_mi.analyze_imputed`)."""

    name: str
    description: str
    design: AnalysisDesign | None
    frame: pd.DataFrame | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    failure: str | None = None
    imputed: tuple[AnalysisDesign, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class SensitivityResult:
    """A sensitivity analysis' primary-endpoint result, or why it could not be estimated.

    Sensitivity analyses are optional: one whose design or estimates cannot be computed
    (`matching.MatchingError`, `EstimationError`: e.g. the alternative design does not
    converge) is reported as not estimable with its reason and a warning, and the primary
    analysis stands. Any other error (a database that stops answering) fails the run.
    """

    name: str
    description: str
    info: Mapping[str, Any]
    result: EndpointResult | None
    failure: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{description, ..., status: "estimated", <estimates>}`` or, when the analysis
        could not be estimated, ``{description, status: "not_estimable", reason}`` (and a
        warning in results.json ``warnings``, the manifest and the report)."""
        out = {"description": self.description, **self.info}
        if self.result is None:
            return {**out, "status": "not_estimable", "reason": self.failure}
        return {**out, "status": "estimated", **self.result.to_dict()}


@dataclass(frozen=True, slots=True, eq=False)
class StudyAnalysis:
    """The typed analysis: per endpoint the primary result (bootstrap limits when bootstrapped),
    the analytic one, the naive one; the sensitivity analyses; the bootstrap; warnings."""

    settings: AnalysisSettings
    endpoints: Mapping[str, EndpointResult]
    analytic: Mapping[str, EndpointResult]
    naive: Mapping[str, EndpointResult]
    blocks: Mapping[str, Mapping[str, BlockResult]]
    sensitivity: tuple[SensitivityResult, ...]
    bootstrap: BootstrapResult | None
    warnings: tuple[str, ...] = ()

    @property
    def primary(self) -> EndpointResult:
        return self.endpoints[self.settings.primary]

    def to_dict(self) -> dict[str, Any]:
        """results.json's ``endpoints``, ``sensitivity`` and (bootstrap > 0) ``bootstrap``."""
        endpoints = {}
        for name, res in self.endpoints.items():
            d = res.to_dict()
            for key, block in self.blocks.get(name, {}).items():
                d[key] = block.to_dict()
            endpoints[name] = d
        primary = self.settings.primary
        sens: dict[str, Any] = {}
        if primary in self.naive:
            sens["naive"] = {
                "description": "unadjusted: every eligible registry patient, unweighted",
                "status": "estimated", **self.naive[primary].to_dict()}
        for s in self.sensitivity:
            sens[s.name] = s.to_dict()
        out: dict[str, Any] = {"endpoints": endpoints, "sensitivity": sens,
                               "warnings": list(self.warnings)}
        if self.bootstrap is not None:
            out["bootstrap"] = self.bootstrap.to_dict()
        return out

    def _repr_html_(self) -> str:
        """Each endpoint's summary table as HTML (Jupyter), primary limits first."""
        from html import escape

        parts = []
        for name, res in self.endpoints.items():
            table = res.summary() if hasattr(res, "summary") else res.comparison.summary()
            parts.append(f"<p><b>{escape(name)}</b></p>" + table.to_html(
                index=False, float_format=lambda v: f"{v:.4g}", na_rep=""))
        parts += [f"<p>warning: {escape(w)}</p>" for w in self.warnings]
        return "".join(parts)


def designed_frame(frame: pd.DataFrame, design: AnalysisDesign,
                   settings: AnalysisSettings) -> DesignedFrame:
    """The analysed rows (included, weight > 0) with the design's weight and variance cluster.

    The one clustering rule: the patient when patients contribute several rows (a patient
    may then sit in several matched sets: the patient is the coarser cluster); else the
    matched set when the design yields sets; else each row (robust).
    """
    if len(design.weights) != len(frame):
        raise EstimationError(f"the design has {len(design.weights)} rows, the analysis frame "
                              f"{len(frame)}: they must be aligned row by row")
    keep = design.included & (design.weights > 0)  # as match.data(): unmatched rows leave
    data = frame.assign(**{WEIGHT: design.weights, SET: design.match_id})[keep]
    idc = settings.id_col
    by_patient = idc if idc is not None and bool(data[idc].duplicated().any()) else None
    cluster = by_patient or (SET if design.yields == "sets" else None)
    return DesignedFrame(data, settings.arm_col, settings.treated_value, WEIGHT, cluster,
                         by_patient)


@dataclass(frozen=True, slots=True)
class _Statistics:
    """``statistics(frame, design)`` of every endpoint (picklable for the bootstrap workers)."""

    settings: AnalysisSettings

    def __call__(self, frame: pd.DataFrame, design: AnalysisDesign) -> dict[StatKey, StatValue]:
        data = designed_frame(frame, design, self.settings)
        out: dict[StatKey, StatValue] = {}
        for ep in self.settings.endpoints:
            out.update(ep.estimate(data, self.settings.conf_level).statistics())
        return out


def estimate_endpoints(frame: pd.DataFrame, design: AnalysisDesign,
                       settings: AnalysisSettings) -> dict[str, EndpointResult]:
    """Every endpoint on one design (analytic variances)."""
    data = designed_frame(frame, design, settings)
    return {ep.name: ep.estimate(data, settings.conf_level) for ep in settings.endpoints}


def analyze_study(
    frame: pd.DataFrame,
    design: AnalysisDesign,
    redesign: Callable[[pd.DataFrame, int], AnalysisDesign] | None,
    settings: AnalysisSettings,
    *,
    sensitivities: Sequence[Sensitivity] = (),
    naive: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> StudyAnalysis:
    """Analyse a study on its locked design.

    Parameters
    ----------
    frame : DataFrame
        Every eligible row of both arms with outcomes (the endpoints' columns), the arm, the
        patient id and the covariates ``redesign`` needs; aligned with ``design``.
    design : AnalysisDesign
        The locked design (weights, included, matched sets, ``yields``).
    redesign : callable or None
        ``redesign(resample, seed) -> AnalysisDesign``: the same design re-fitted on a
        bootstrap resample (covariates only) with the replicate's own seed. Needed when
        ``settings.bootstrap > 0``.
    settings : AnalysisSettings
    sensitivities : sequence of Sensitivity
        Alternative designs (or frames) whose primary-endpoint result is reported.
    naive : bool
        Also run the unadjusted comparison (every row, weight 1); the simulation study,
        which runs the naive comparison as a design of its own, turns it off.
    progress : callable, optional
        ``progress(done, total)`` of the bootstrap replicates.
    """
    frame = frame.reset_index(drop=True)
    analytic = estimate_endpoints(frame, design, settings)
    data = designed_frame(frame, design, settings)
    blocks = {name: {b.key: b.estimate(data, settings.conf_level) for b in bl}
              for name, bl in settings.blocks.items()}
    endpoints: dict[str, EndpointResult] = dict(analytic)
    boot = None
    if settings.bootstrap > 0:
        if redesign is None:
            raise EstimationError("bootstrap > 0 needs a redesign callable")
        point: dict[StatKey, StatValue] = {}
        for res in analytic.values():
            point.update(res.statistics())
        boot = run_bootstrap(
            frame, redesign, _Statistics(settings), point,
            Resampling(settings.arm_col, settings.treated_value,
                       settings.id_col if _multi_rows(frame, settings) else None),
            n_boot=settings.bootstrap, ci=settings.ci, conf_level=settings.conf_level,
            random_state=settings.random_state, n_jobs=settings.n_jobs,
            min_valid_share=settings.min_valid_share, progress=progress)
        intervals = boot.intervals()
        endpoints = {k: v.with_intervals(intervals) for k, v in analytic.items()}
    # a block may put its numbers in place of the primary ones (alignment, primary: true)
    for name, results in blocks.items():
        for res in results.values():
            endpoints[name] = res.primary(endpoints[name])
    unadjusted = (estimate_endpoints(frame, AnalysisDesign.unweighted(len(frame)), settings)
                  if naive else {})
    sens = tuple(_sensitivity(frame, s, settings) for s in sensitivities)
    # planned estimates the data cannot give are warnings, never a silent NA (defect 12)
    warnings = [w for res in analytic.values() for w in res.problems()]
    warnings += [w for results in blocks.values() for res in results.values()
                 for w in res.problems()]
    warnings += boot.warnings() if boot is not None else []
    warnings += [f"sensitivity analysis {s.name} ({s.description}) could not be estimated: "
                 f"{s.failure}" for s in sens if s.failure is not None]
    return StudyAnalysis(settings, endpoints, analytic, unadjusted, blocks, sens, boot,
                         tuple(warnings))


def _multi_rows(frame: pd.DataFrame, settings: AnalysisSettings) -> bool:
    return settings.id_col is not None and bool(frame[settings.id_col].duplicated().any())


def _sensitivity(frame: pd.DataFrame, s: Sensitivity,
                 settings: AnalysisSettings) -> SensitivityResult:
    if s.failure is not None or s.design is None:
        return SensitivityResult(s.name, s.description, s.info, None,
                                 s.failure or "no design")
    data = frame if s.frame is None else s.frame.reset_index(drop=True)
    primary = settings.endpoints[0]
    try:
        res = primary.estimate(designed_frame(data, s.design, settings), settings.conf_level)
    except EstimationError as exc:
        return SensitivityResult(s.name, s.description, s.info, None, str(exc))
    return SensitivityResult(s.name, s.description, s.info, res)


def time_to_event_settings(endpoint: str, *, time_col: str, event_col: str,
                           landmarks: Sequence[float], unit: str | None,
                           null_rate: float | None = None, rmst_tau: float | None = None,
                           conf_type: str = "log", **kwargs: Any) -> AnalysisSettings:
    """`AnalysisSettings` for one time-to-event endpoint (the PFS/OS study of today)."""
    ep = TimeToEvent(endpoint, time_col, event_col, tuple(float(x) for x in landmarks), unit,
                     null_rate, rmst_tau, conf_type)
    return AnalysisSettings(endpoints=(ep,), **kwargs)
