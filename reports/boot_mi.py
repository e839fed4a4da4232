"""Bootstrap then impute (Schomaker & Heumann 2018, "Boot MI") for multiply imputed designs.

Each replicate resamples the patients within arm from the *incomplete* data, hands the sample to
``redesign(sample, seed)`` (the caller imputes it m times, outcome-blind, and builds the design
on each completed set; one design per imputation), analyses every imputed design with the
caller's ``analyse(sample, design) -> ArmComparison`` and combines them into one point estimate per
statistic, on the scale Rubin's rules pool it (`reports.pooling`): mean log HR, mean S(t)
difference and RMST, S(t) per arm averaged on log(-log S), medians by the median over
imputations. The percentile interval of those B point estimates is the Boot MI interval;
Schomaker & Heumann found it valid where Rubin's rules are not (e.g. when the complete-data
variance is misspecified, as for weighting designs whose analytic variance treats the weights
as known).

Reproducibility: replicate ``b`` draws its resample and its imputation seed from
``SeedSequence(random_state).spawn(n_boot)[b]``, so the result does not depend on ``n_jobs``.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from reports.bootstrap import Resampling, _resample
from reports.errors import EstimationError
from reports.estimate import json_number
from reports.pooling import PooledComparison

RedesignImputed = Callable[[pd.DataFrame, int], Sequence[object]]
Analyse = Callable[[pd.DataFrame, object], object]  # (sample, one design) -> ArmComparison
_FAILURES = (ValueError, np.linalg.LinAlgError, ZeroDivisionError, ArithmeticError)


def _cloglog_mean(values: Sequence[float]) -> float:
    v = np.asarray(values, dtype=float)
    if not np.isfinite(v).all() or ((v <= 0) | (v >= 1)).any():
        return float(np.mean(v))  # at the boundary the mean is the only sensible summary
    return float(np.exp(-np.exp(np.mean(np.log(-np.log(v))))))


def mi_point_estimates(comps: Sequence) -> dict[str, float]:
    """One point estimate per statistic from the per-imputation comparisons (Rubin's scale)."""
    out: dict[str, float] = {}
    for j, lm in enumerate(comps[0].landmarks):
        per = [c.landmarks[j] for c in comps]
        out[f"landmark_{lm.time:g}_trial"] = _cloglog_mean([p.trial.estimate for p in per])
        out[f"landmark_{lm.time:g}_control"] = _cloglog_mean([p.control.estimate for p in per])
        out[f"landmark_{lm.time:g}_difference"] = float(np.mean([p.difference.estimate
                                                                 for p in per]))
    out["median_trial"] = float(np.median([c.median_trial.estimate for c in comps]))
    out["median_control"] = float(np.median([c.median_control.estimate for c in comps]))
    out["log_hr"] = float(np.mean([c.hazard_ratio.log_hr if c.hazard_ratio.converged
                                   else np.nan for c in comps]))
    if comps[0].rmst is not None:
        for arm in ("trial", "control", "difference"):
            out[f"rmst_{arm}"] = float(np.mean([getattr(c.rmst, arm).estimate for c in comps]))
    return out


def _replicates(frame, redesign, analyse, cfg, seeds) -> list[dict[str, float] | str]:
    out: list[dict[str, float] | str] = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        sample = _resample(frame, cfg, rng)
        imp_seed = int(seed.generate_state(1)[0])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                comps = [analyse(sample, d) for d in redesign(sample, imp_seed)]
            out.append(mi_point_estimates(comps))
        except _FAILURES as exc:
            out.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    return out


@dataclass(frozen=True, slots=True, eq=False)
class BootMIResult:
    """Boot MI percentile intervals of every pooled statistic.

    ``table``: one row per statistic with ``estimate`` (the pooled estimate of the locked
    design), ``se`` (SD of the replicates' pooled estimates), percentile ``lower``/``upper``
    and ``n_valid``. The HR is on the log scale (``log_hr``).
    """

    replicates: pd.DataFrame
    table: pd.DataFrame
    n_boot: int
    m: int
    n_failed: int
    failures: dict
    conf_level: float
    seed: int | None
    method: str

    def to_dict(self) -> dict:
        """results.json ``bootstrap`` block."""
        return {"n_boot": self.n_boot, "m": self.m, "n_failed": self.n_failed,
                "failures": self.failures, "ci": "percentile", "conf_level": self.conf_level,
                "seed": self.seed, "method": self.method,
                "statistics": self.table.replace({np.nan: None}).to_dict(orient="records")}

    def apply(self, endpoint: dict) -> dict:
        """``PooledComparison.to_dict()`` with the Boot MI SE/limits as primary; the Rubin
        ones move under ``analytic`` (the results.json convention for ``bootstrap > 0``)."""
        tab = self.table.set_index("statistic")
        out = {**endpoint, "landmarks": [dict(lm) for lm in endpoint["landmarks"]]}

        def swap(obj, name, log=False):
            if obj is None or obj.get("estimate") is None or name not in tab.index:
                return obj
            r = tab.loc[name]
            se_key = "se_log" if log else "se"
            f = math.exp if log else float
            return {**obj, se_key: json_number(r["se"]), "lower": json_number(f(r["lower"])),
                    "upper": json_number(f(r["upper"])), "method": self.method,
                    "analytic": {se_key: obj.get(se_key), "lower": obj.get("lower"),
                                 "upper": obj.get("upper"), "method": obj.get("method")}}

        for lm in out["landmarks"]:
            for arm in ("trial", "control", "difference"):
                lm[arm] = swap(lm[arm], f"landmark_{lm['time']:g}_{arm}")
        out["hazard_ratio"] = swap(out["hazard_ratio"], "log_hr", log=True)
        if out.get("rmst"):
            out["rmst"] = {**out["rmst"], **{arm: swap(out["rmst"][arm], f"rmst_{arm}")
                                             for arm in ("trial", "control", "difference")}}
        out["median"] = {**out["median"], **{arm: swap(out["median"][arm], f"median_{arm}")
                                             for arm in ("trial", "control")}}
        return out


def bootstrap_imputed(
    frame: pd.DataFrame,
    redesign: RedesignImputed,
    analyse: Analyse,
    pooled: PooledComparison,
    *,
    arm_col: str = "arm",
    treated_value: object = "trial",
    id_col: str | None = None,
    conf_level: float = 0.95,
    n_boot: int = 200,
    random_state: int | None = None,
    n_jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> BootMIResult:
    """Bootstrap then impute: Boot MI percentile intervals around the pooled estimates.

    Parameters
    ----------
    frame : DataFrame
        Both arms, one row per patient, with the *incomplete* covariates, what ``redesign``
        needs and the outcome columns (read here only, never by ``redesign``'s imputation).
    redesign : callable
        ``redesign(sample, seed) -> list of designs`` (one per imputation), each aligned with
        ``sample``'s rows. Picklable when ``n_jobs != 1``.
    analyse : callable
        ``analyse(sample, design) -> ArmComparison``: the analysis of one imputed design (the
        caller's one analysis, e.g. `reports.analysis.estimate_endpoints`). Picklable.
    id_col : str, optional
        Resample patients (with all their rows) instead of rows.
    pooled : PooledComparison
        The pooled analysis of the locked design (its landmarks and RMST horizon are used).
    n_boot : int
        Number of replicates.
    random_state : int
        Seed of the replicate ``SeedSequence``.

    Returns
    -------
    BootMIResult
    """
    if not isinstance(n_boot, int | np.integer) or n_boot < 2:
        raise EstimationError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    cfg = Resampling(arm_col, treated_value, id_col)
    frame = frame.reset_index(drop=True)
    seeds = np.random.SeedSequence(random_state).spawn(n_boot)
    results: list[dict[str, float] | str] = []
    if n_jobs == 1:
        for b, seed in enumerate(seeds):
            results.extend(_replicates(frame, redesign, analyse, cfg, [seed]))
            if progress is not None:
                progress(b + 1, n_boot)
    else:
        chunks = [list(c) for c in np.array_split(np.arange(n_boot),
                                                  min(n_boot, 4 * max(n_jobs, 1))) if len(c)]
        done = 0
        for part in Parallel(n_jobs=n_jobs, return_as="generator")(
                delayed(_replicates)(frame, redesign, analyse, cfg, [seeds[i] for i in c])
                for c in chunks):
            results.extend(part)
            done += len(part)
            if progress is not None:
                progress(done, n_boot)
    failures = Counter(r for r in results if isinstance(r, str))
    point = mi_point_estimates(pooled.comparisons)
    reps = pd.DataFrame([r if isinstance(r, dict) else {} for r in results]).reindex(
        columns=list(point))
    alpha = (1 - conf_level) / 2
    rows = []
    for name, est in point.items():
        theta = reps[name].to_numpy(dtype=float)
        theta = theta[np.isfinite(theta)]
        lo, hi = (np.quantile(theta, [alpha, 1 - alpha]) if theta.size >= 2
                  else (np.nan, np.nan))
        rows.append({"statistic": name, "estimate": est,
                     "se": float(np.std(theta, ddof=1)) if theta.size >= 2 else np.nan,
                     "lower": float(lo), "upper": float(hi), "n_valid": int(theta.size)})
    method = (f"bootstrap then impute (Schomaker & Heumann 2018), percentile "
              f"{conf_level:.0%}: {n_boot} replicates stratified by arm, each imputed "
              f"{pooled.m} times with the design re-run on every imputed set")
    return BootMIResult(reps, pd.DataFrame(rows), n_boot, pooled.m, sum(failures.values()),
                        dict(failures), conf_level, random_state, method)
