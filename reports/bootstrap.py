"""Bootstrap of a whole study analysis, re-running the design in every replicate.

Each replicate resamples the trial and the registry patients separately (stratified by arm),
hands the resample and its own seed to ``redesign`` (the caller's PS fit + matching or
weighting on the covariates only, returning an `reports.analysis.AnalysisDesign`), and
recomputes every statistic of every endpoint (``estimate``: the typed `StatKey` ->
`StatValue` map of `reports.endpoints`). When ``id_col`` is given, patients (not rows) are
resampled, so a patient who contributes several index lines is drawn with all of them; the
copies of a patient drawn twice get distinct ids (``<id>~<k>``) so the design treats them as
two patients.

Reproducibility: replicate ``b`` draws its resample from child ``b`` of
``SeedSequence(random_state)`` and its redesign's seed from that child's own child
(``spawn_key + (0,)``), so the replicates are identical whatever ``n_jobs`` is (tested).

Intervals: percentile (default) and BCa. BCa's acceleration comes from a grouped jackknife
(``n_jackknife_groups`` groups per arm, each deleted once and the design re-run), a standard
approximation to the delete-one jackknife that would need one design per patient.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.stats import norm

from reports.endpoints import Interval, StatKey, StatValue
from reports.estimate import json_number

if TYPE_CHECKING:
    from reports.analysis import AnalysisDesign

Redesign = Callable[[pd.DataFrame, int], "AnalysisDesign"]
Statistics = Callable[[pd.DataFrame, "AnalysisDesign"], dict[StatKey, StatValue]]
Progress = Callable[[int, int], None]
# what a replicate may raise and still be counted (not retried) as a failed replicate:
# the design cannot be fitted on the resample (separation, an empty caliper match) or a
# statistic cannot be computed. MatchingError and EstimationError are ValueErrors.
_REPLICATE_FAILURES = (ValueError, ArithmeticError, np.linalg.LinAlgError)
#: below this share of replicates giving a statistic, its percentile interval is refused:
#: the replicates that give it are a selected subset (e.g. resamples whose follow-up reaches
#: the RMST's tau), and their quantiles are not the statistic's sampling distribution
MIN_VALID_SHARE = 0.9


@dataclass(frozen=True, slots=True)
class Resampling:
    """How rows are resampled: within arm, by patient when ``id_col`` is given."""

    arm_col: str
    treated_value: object
    id_col: str | None = None

    @property
    def description(self) -> str:
        return "patients (id_col) within arm" if self.id_col else "rows within arm"


@dataclass(frozen=True, slots=True)
class BootstrapStatistic:
    """One statistic's bootstrap summary (on the statistic's scale: log for the HR).

    ``n_valid`` replicates gave it; ``not_estimable`` counts, by reason, the replicates that
    ran but could not give it (e.g. RMST with follow-up shorter than tau).
    """

    key: StatKey
    estimate: float
    se: float
    lower: float
    upper: float
    n_valid: int
    not_estimable: Mapping[str, int]
    n_failed: int = 0
    refused: str | None = None

    @property
    def n_missing(self) -> int:
        """Replicates without this statistic: failed as a whole or not estimable."""
        return self.n_failed + int(sum(self.not_estimable.values()))

    def to_dict(self) -> dict[str, Any]:
        out = {"endpoint": self.key.endpoint, "statistic": self.key.label,
               "estimate": json_number(self.estimate),
               "se": json_number(self.se), "lower": json_number(self.lower),
               "upper": json_number(self.upper), "n_valid": self.n_valid,
               "n_missing": self.n_missing, "not_estimable": dict(self.not_estimable)}
        if self.refused is not None:
            out["refused"] = self.refused
        return out


@dataclass(frozen=True, slots=True, eq=False)
class BootstrapResult:
    """Bootstrap replicates and intervals of every statistic of the analysis.

    ``replicates`` has one row per replicate and one column per `StatKey` (NaN where the
    replicate failed or the statistic was not estimable); ``failures`` counts the replicates
    that failed as a whole, by message.
    """

    statistics: tuple[BootstrapStatistic, ...]
    replicates: pd.DataFrame
    n_boot: int
    failures: Mapping[str, int]
    ci: str
    conf_level: float
    seed: int | None
    resampling: str
    min_valid_share: float = MIN_VALID_SHARE
    scheme: str = "design re-run"

    @property
    def n_failed(self) -> int:
        """Replicates that failed as a whole (design or analysis raised)."""
        return int(sum(self.failures.values()))

    @property
    def method(self) -> str:
        """The ``method`` of every estimate whose interval comes from this bootstrap."""
        return (f"bootstrap {'BCa' if self.ci == 'bca' else 'percentile'} "
                f"{self.conf_level:.0%} ({self.n_boot} replicates, stratified by arm, "
                f"resampling {self.resampling}, {self.scheme})")

    def intervals(self) -> dict[StatKey, Interval]:
        """The replacement SE/limits of each statistic (for ``EndpointResult.with_intervals``);
        a refused interval is NaN with its reason."""
        return {s.key: Interval(s.se, s.lower, s.upper, self.method, s.refused)
                for s in self.statistics}

    def warnings(self) -> list[str]:
        """One sentence per statistic that some replicates could not give."""
        out = []
        for s in self.statistics:
            if s.n_missing == 0 or not np.isfinite(s.estimate):
                continue
            why = "; ".join(f"{n}: {r}" for r, n in {**s.not_estimable,
                                                     **({"replicate failed": s.n_failed}
                                                        if s.n_failed else {})}.items())
            tail = (f"interval refused ({s.refused})" if s.refused
                    else f"interval from the {s.n_valid} others")
            out.append(f"bootstrap: {s.key.label} missing in {s.n_missing} of {self.n_boot} "
                       f"replicates ({why}); {tail}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """results.json ``bootstrap`` block."""
        return {"n_boot": self.n_boot, "n_failed": self.n_failed,
                "failures": dict(self.failures), "ci": self.ci,
                "conf_level": self.conf_level, "seed": self.seed,
                "resampling": self.resampling, "method": self.method,
                "min_valid_share": self.min_valid_share,
                "statistics": [s.to_dict() for s in self.statistics]}

    def summary(self) -> pd.DataFrame:
        """One row per statistic."""
        return pd.DataFrame([s.to_dict() for s in self.statistics])


def run_bootstrap(
    frame: pd.DataFrame,
    redesign: Redesign,
    statistics: Statistics,
    point: Mapping[StatKey, StatValue],
    resampling: Resampling,
    *,
    n_boot: int,
    ci: str = "percentile",
    conf_level: float = 0.95,
    n_jackknife_groups: int = 10,
    random_state: int | np.random.SeedSequence | None = None,
    n_jobs: int = 1,
    min_valid_share: float = MIN_VALID_SHARE,
    progress: Progress | None = None,
    scheme: str = "design re-run",
) -> BootstrapResult:
    """Bootstrap every statistic of ``point``, re-running the design in each replicate.

    Parameters
    ----------
    frame : DataFrame
        Every eligible row of both arms, with the outcome columns and what ``redesign``
        needs (covariates); no design columns.
    redesign : callable
        ``redesign(resample, seed) -> AnalysisDesign``; ``seed`` is the replicate's own.
        Must be picklable when ``n_jobs != 1``.
    statistics : callable
        ``statistics(frame, design) -> {StatKey: StatValue}`` (the analysis of one data set).
    point : mapping
        The statistics of the original analysis (the locked design); their keys and order
        are the table's.
    n_boot : int
        Number of replicates (failed replicates are counted, not retried).
    ci : {"percentile", "bca"}
    random_state : int or SeedSequence
        Seed; replicate ``b`` uses the ``b``-th spawned child, whatever ``n_jobs``.
    n_jobs : int
        joblib workers (``-1`` = all cores).
    min_valid_share : float
        Refuse a statistic's interval (NaN with the reason) when fewer than this share of the
        ``n_boot`` replicates give it (`MIN_VALID_SHARE`).
    progress : callable, optional
        ``progress(done, total)`` called in the main process as replicates complete.
    scheme : str
        What a replicate re-runs, for ``method`` (multiple imputation: "bootstrap then
        impute", `reports.analysis_mi`).
    """
    ss = (random_state if isinstance(random_state, np.random.SeedSequence)
          else np.random.SeedSequence(random_state))
    children = [_child(ss, b) for b in range(n_boot)]
    results: list[dict[StatKey, float | str] | str] = []
    if n_jobs == 1:
        for b, child in enumerate(children):
            results.extend(_replicates(frame, redesign, statistics, resampling, [child]))
            if progress is not None:
                progress(b + 1, n_boot)
    else:
        n_chunks = min(n_boot, 8 * (n_jobs if n_jobs > 0 else 8))
        chunks = [c for c in np.array_split(np.arange(n_boot), n_chunks) if len(c)]
        tasks = (delayed(_replicates)(frame, redesign, statistics, resampling,
                                      [children[i] for i in c]) for c in chunks)
        done = 0
        for chunk_out in Parallel(n_jobs=n_jobs, return_as="generator")(tasks):
            results.extend(chunk_out)
            done += len(chunk_out)
            if progress is not None:
                progress(done, n_boot)
    failures = Counter(r for r in results if isinstance(r, str))
    keys = list(point)
    reps = pd.DataFrame(
        [[_num(r.get(k)) if isinstance(r, dict) else np.nan for k in keys] for r in results],
        columns=pd.Index(keys, tupleize_cols=False), dtype=float)
    reasons = {k: Counter(r[k] for r in results if isinstance(r, dict)
                          and isinstance(r.get(k), str)) for k in keys}
    jack = (_grouped_jackknife(frame, redesign, statistics, resampling, n_jackknife_groups,
                               _child(ss, n_boot)) if ci == "bca" else {})
    stats = []
    for key in keys:
        est = float(point[key].estimate)
        theta = reps[key].to_numpy(dtype=float)
        theta = theta[np.isfinite(theta)]
        se = lo = hi = np.nan
        refused = None
        need = max(2, int(np.ceil(min_valid_share * n_boot - 1e-9)))
        if theta.size < need:
            refused = (f"only {theta.size} of {n_boot} replicates give it, fewer than "
                       f"{min_valid_share:.0%}")
        else:
            lo, hi = _interval(theta, est, conf_level, ci, jack.get(key))
            se = float(np.std(theta, ddof=1))
        stats.append(BootstrapStatistic(key, est, se, lo, hi, int(theta.size),
                                        dict(reasons[key]), sum(failures.values()), refused))
    return BootstrapResult(tuple(stats), reps, n_boot, dict(failures), ci, conf_level,
                           random_state if isinstance(random_state, int) else None,
                           resampling.description, min_valid_share, scheme)


def _child(ss: np.random.SeedSequence, b: int) -> np.random.SeedSequence:
    """The ``b``-th child of ``ss`` (what ``ss.spawn`` gives, independent of spawn state)."""
    return np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, b),
                                  pool_size=ss.pool_size)


def _design_seed(child: np.random.SeedSequence) -> int:
    """The redesign's seed of a replicate: from the replicate's own child stream."""
    return int(_child(child, 0).generate_state(1, dtype=np.uint32)[0])


def _num(v: float | str | None) -> float:
    return float(v) if isinstance(v, int | float) else np.nan


def _one(frame, redesign, statistics, seed) -> dict[StatKey, float | str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # per-replicate warnings are counted, not printed
        stats = statistics(frame, redesign(frame, seed))
    return {k: (float(v.estimate) if np.isfinite(v.estimate)
                else _reason_kind(v.reason)) for k, v in stats.items()}


def _reason_kind(reason: str | None) -> str:
    """A not-estimable reason without the replicate's own numbers in brackets, so that the
    replicates' reasons count together ("beyond the last follow-up time (47.9)" -> "... time")."""
    return re.sub(r" \([^)]*\)", "", reason) if reason else "not estimable"


def _replicates(frame, redesign, statistics, resampling, children):
    out: list[dict[StatKey, float | str] | str] = []
    for child in children:
        sample = _resample(frame, resampling, np.random.default_rng(child))
        try:
            out.append(_one(sample, redesign, statistics, _design_seed(child)))
        except _REPLICATE_FAILURES as exc:
            out.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    return out


def _resample(frame: pd.DataFrame, cfg: Resampling, rng: np.random.Generator) -> pd.DataFrame:
    """Stratified (by arm) resample of rows, or of patients when ``id_col`` is set."""
    parts = []
    is_trial = (frame[cfg.arm_col] == cfg.treated_value).to_numpy()
    for mask in (is_trial, ~is_trial):
        sub = frame[mask]
        if cfg.id_col is None:
            parts.append(sub.iloc[rng.integers(0, len(sub), len(sub))])
            continue
        codes, uniques = pd.factorize(sub[cfg.id_col], sort=True)
        drawn = rng.integers(0, len(uniques), len(uniques))
        order = np.argsort(codes, kind="stable")
        starts = np.searchsorted(codes[order], np.arange(len(uniques)))
        counts = np.bincount(codes, minlength=len(uniques))
        rows = np.concatenate([order[starts[u] : starts[u] + counts[u]] for u in drawn])
        copy_no = np.concatenate([np.full(counts[u], k) for k, u in enumerate(drawn)])
        part = sub.iloc[rows].copy()
        part[cfg.id_col] = part[cfg.id_col].astype(str) + "~" + copy_no.astype(str)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _interval(
    theta: np.ndarray, est: float, level: float, ci: str, jack: np.ndarray | None
) -> tuple[float, float]:
    alpha = (1 - level) / 2
    if ci == "bca" and np.isfinite(est) and jack is not None and np.all(np.isfinite(jack)):
        prop = (np.sum(theta < est) + 0.5 * np.sum(theta == est)) / theta.size
        if 0 < prop < 1:
            z0 = norm.ppf(prop)
            dev = jack.mean() - jack
            den = 6 * np.sum(dev**2) ** 1.5
            acc = np.sum(dev**3) / den if den > 0 else 0.0
            zs = norm.ppf([alpha, 1 - alpha])
            probs = norm.cdf(z0 + (z0 + zs) / (1 - acc * (z0 + zs)))
            lo, hi = np.quantile(theta, probs)
            return float(lo), float(hi)
    lo, hi = np.quantile(theta, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _grouped_jackknife(frame, redesign, statistics, cfg, n_groups, ss) -> dict:
    """Delete-a-group jackknife values of each statistic (groups formed within arm)."""
    rng = np.random.default_rng(ss)  # the child after the n_boot replicates
    is_trial = (frame[cfg.arm_col] == cfg.treated_value).to_numpy()
    group = np.empty(len(frame), dtype=np.int64)
    for k, mask in enumerate((is_trial, ~is_trial)):
        units = frame.loc[mask, cfg.id_col] if cfg.id_col else pd.Series(np.flatnonzero(mask))
        codes, uniq = pd.factorize(units)
        perm = rng.permutation(len(uniq)) % n_groups
        group[np.flatnonzero(mask)] = perm[codes] + k * n_groups
    values: dict[StatKey, list[float]] = {}
    for g in range(2 * n_groups):
        try:
            stats = _one(frame[group != g], redesign, statistics,
                         _design_seed(_child(ss, g)))
        except _REPLICATE_FAILURES:
            continue
        for k, v in stats.items():
            values.setdefault(k, []).append(_num(v))
    return {k: np.asarray(v, dtype=float) for k, v in values.items()}
