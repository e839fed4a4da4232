"""Bootstrap of the whole comparison, re-running the design in every replicate.

Each replicate resamples the trial and the registry patients separately (stratified by arm),
hands the resampled frame to ``redesign`` (the caller's PS fit + matching or weighting, which
returns ``weight`` and ``cluster`` columns), and recomputes every estimate of
`reports.compare.compare_arms`. When ``id_col`` is given, patients (not rows) are resampled,
so a patient who contributes several index lines is drawn with all of them; the copies of
a patient drawn twice get distinct ids (``<id>~<k>``) so the design treats them as two
patients.

Reproducibility: replicate ``b`` draws from ``SeedSequence(random_state).spawn(n_boot)[b]``,
so the replicates are identical whatever ``n_jobs`` is (tested).

Intervals: percentile (default) and BCa. BCa's acceleration comes from a grouped jackknife
(``n_jackknife_groups`` groups per arm, each deleted once and the design re-run), a standard
approximation to the delete-one jackknife that would need one design per patient.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.stats import norm

from reports._inputs import check_conf_level, check_option, require_columns
from reports.compare import ArmComparison, compare_arms
from reports.errors import EstimationError, SurvivalWarning

Redesign = Callable[[pd.DataFrame], pd.DataFrame]
Progress = Callable[[int, int], None]
_W, _CL = "__boot_weight", "__boot_cluster"


@dataclass(frozen=True, slots=True)
class _Config:
    time_col: str
    event_col: str
    arm_col: str
    treated_value: object
    id_col: str | None
    weight_name: str
    cluster_name: str
    landmarks: tuple[float, ...]
    time_unit: str | None
    rmst_tau: float | None
    conf_type: str


def _statistics(comp: ArmComparison) -> dict[str, float]:
    """The bootstrapped quantities of one comparison (log scale for the HR)."""
    out: dict[str, float] = {}
    for lm in comp.landmarks:
        for arm in ("trial", "control", "difference"):
            out[f"landmark_{lm.time:g}_{arm}"] = getattr(lm, arm).estimate
    out["median_trial"] = comp.median_trial.estimate
    out["median_control"] = comp.median_control.estimate
    out["log_hr"] = comp.hazard_ratio.log_hr if comp.hazard_ratio.converged else np.nan
    if comp.rmst is not None:
        for arm in ("trial", "control", "difference"):
            out[f"rmst_{arm}"] = getattr(comp.rmst, arm).estimate
    return out


def _analyse(
    frame: pd.DataFrame,
    design: pd.DataFrame,
    cfg: _Config,
    null_rate: float | None = None,
    conf_level: float = 0.95,
) -> ArmComparison:
    data = _analysis_frame(frame, design, cfg)
    # a patient with several rows (index lines) is one cluster: for the KM always, for the
    # Cox model unless the design gives its own cluster (the match pair)
    multi = cfg.id_col is not None and bool(data[cfg.id_col].duplicated().any())
    cox_cluster = _CL if _CL in data.columns else (cfg.id_col if multi else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SurvivalWarning)
        return compare_arms(
            data,
            time_col=cfg.time_col,
            event_col=cfg.event_col,
            arm_col=cfg.arm_col,
            treated_value=cfg.treated_value,
            weight_col=_W,
            cluster_col=cox_cluster,
            km_cluster_col=cfg.id_col if multi else None,
            landmarks=cfg.landmarks,
            time_unit=cfg.time_unit,
            null_rate=null_rate,
            rmst_tau=cfg.rmst_tau,
            conf_type=cfg.conf_type,
            conf_level=conf_level,
        )


def _analysis_frame(frame: pd.DataFrame, design: pd.DataFrame, cfg: _Config) -> pd.DataFrame:
    """The frame with the design's weight (and cluster), rows of weight 0 left out."""
    if not isinstance(design, pd.DataFrame) or cfg.weight_name not in design.columns:
        raise EstimationError(
            f"redesign must return a DataFrame with a {cfg.weight_name!r} column "
            f"(and optionally {cfg.cluster_name!r}), got {type(design).__name__}"
        )
    if len(design) != len(frame) or not design.index.equals(frame.index):
        raise EstimationError(
            "redesign must return one row per row of the frame it was given (same index)"
        )
    data = frame.assign(**{_W: design[cfg.weight_name].to_numpy(dtype=float)})
    if cfg.cluster_name in design.columns and design[cfg.cluster_name].notna().any():
        data[_CL] = design[cfg.cluster_name].to_numpy()
    return data[data[_W] > 0]  # as match.data(): unmatched / discarded rows leave


def _resample(frame: pd.DataFrame, cfg: _Config, rng: np.random.Generator) -> pd.DataFrame:
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


def _replicates(frame, redesign, cfg, seeds) -> list[dict[str, float] | str]:
    out: list[dict[str, float] | str] = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        sample = _resample(frame, cfg, rng)
        try:
            out.append(_statistics(_analyse(sample, redesign(sample), cfg)))
        except (ValueError, np.linalg.LinAlgError, ZeroDivisionError) as exc:
            out.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    return out


@dataclass(frozen=True, slots=True, eq=False)
class BootstrapResult:
    """Bootstrap replicates and intervals of every estimate of the comparison.

    ``table`` has one row per statistic: ``estimate`` (the original analysis), ``se``
    (SD of the replicates), ``lower``/``upper`` (percentile or BCa), ``n_valid`` (replicates
    where the statistic exists, e.g. the median is reached). The HR is bootstrapped on the
    log scale (``log_hr``).
    """

    comparison: ArmComparison
    replicates: pd.DataFrame
    table: pd.DataFrame
    n_boot: int
    n_failed: int
    failures: dict[str, int]
    ci: str
    conf_level: float
    seed: int | None
    resampling: str
    method: str = field(default="")

    def to_dict(self) -> dict:
        """JSON-ready summary (results.json ``bootstrap`` block)."""
        tab = self.table.replace({np.nan: None})
        return {
            "n_boot": self.n_boot,
            "n_failed": self.n_failed,
            "failures": self.failures,
            "ci": self.ci,
            "conf_level": self.conf_level,
            "seed": self.seed,
            "resampling": self.resampling,
            "method": self.method,
            "statistics": tab.to_dict(orient="records"),
        }

    def summary(self) -> pd.DataFrame:
        """The interval table."""
        return self.table.copy()

    def apply(self) -> ArmComparison:
        """The comparison with bootstrap SE/limits as primary, analytic ones under ``analytic``."""
        return _apply(self)


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


def bootstrap_comparison(
    frame: pd.DataFrame,
    redesign: Redesign,
    *,
    time_col: str,
    event_col: str,
    arm_col: str = "arm",
    treated_value: object = "trial",
    id_col: str | None = None,
    weight_name: str = "weight",
    cluster_name: str = "cluster",
    landmarks: Sequence[float] = (),
    time_unit: str | None = None,
    null_rate: float | None = None,
    rmst_tau: float | None = None,
    conf_type: str = "log",
    conf_level: float = 0.95,
    n_boot: int = 1000,
    ci: str = "percentile",
    n_jackknife_groups: int = 10,
    random_state: int | np.random.SeedSequence | None = None,
    n_jobs: int = 1,
    progress: Progress | None = None,
) -> BootstrapResult:
    """Bootstrap every estimate of `compare_arms`, re-running the design in each replicate.

    Parameters
    ----------
    frame : DataFrame
        Both arms, with the outcome columns and whatever ``redesign`` needs (covariates).
    redesign : callable
        ``redesign(frame) -> DataFrame`` with column ``weight_name`` (0 = not in the analysis)
        and optionally ``cluster_name`` (match pair; NaN for unmatched rows), same index as
        its input. It is also applied to ``frame`` itself for the point estimates. Must be
        picklable when ``n_jobs != 1``.
    id_col : str, optional
        Patient id: resample patients (with all their rows) instead of rows.
    n_boot : int
        Number of replicates (failed replicates are counted, not retried).
    ci : {"percentile", "bca"}
        Interval type; "bca" uses a grouped-jackknife acceleration (module docstring).
    random_state : int or SeedSequence
        Seed; replicate ``b`` uses the ``b``-th spawned child, whatever ``n_jobs``.
    n_jobs : int
        joblib workers (``-1`` = all cores).
    progress : callable, optional
        ``progress(done, total)`` called in the main process as replicates complete.

    Returns
    -------
    BootstrapResult
        Intervals per statistic; ``.apply()`` gives the bootstrap-primary `ArmComparison`.
    """
    check_option("ci", ci, ("percentile", "bca"))
    level = check_conf_level(conf_level)
    if not isinstance(n_boot, int | np.integer) or n_boot < 2:
        raise EstimationError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    require_columns(
        frame, {"time_col": time_col, "event_col": event_col, "arm_col": arm_col, "id_col": id_col}
    )
    cfg = _Config(
        time_col,
        event_col,
        arm_col,
        treated_value,
        id_col,
        weight_name,
        cluster_name,
        tuple(float(x) for x in landmarks),
        time_unit,
        None if rmst_tau is None else float(rmst_tau),
        conf_type,
    )
    frame = frame.reset_index(drop=True)
    original = _analyse(frame, redesign(frame), cfg, null_rate, level)
    ss = (
        random_state
        if isinstance(random_state, np.random.SeedSequence)
        else np.random.SeedSequence(random_state)
    )
    seeds = ss.spawn(n_boot)
    results: list[dict[str, float] | str] = []
    if n_jobs == 1:
        for b, seed in enumerate(seeds):
            results.extend(_replicates(frame, redesign, cfg, [seed]))
            if progress is not None:
                progress(b + 1, n_boot)
    else:
        n_chunks = min(n_boot, 8 * (n_jobs if n_jobs > 0 else 8))
        chunks = [list(c) for c in np.array_split(np.arange(n_boot), n_chunks) if len(c)]
        tasks = (delayed(_replicates)(frame, redesign, cfg, [seeds[i] for i in c]) for c in chunks)
        done = 0
        for chunk_out in Parallel(n_jobs=n_jobs, return_as="generator")(tasks):
            results.extend(chunk_out)
            done += len(chunk_out)
            if progress is not None:
                progress(done, n_boot)
    failures = Counter(r for r in results if isinstance(r, str))
    reps = pd.DataFrame([r if isinstance(r, dict) else {} for r in results])
    point = _statistics(original)
    reps = reps.reindex(columns=list(point))
    jack = _grouped_jackknife(frame, redesign, cfg, n_jackknife_groups, ss) if ci == "bca" else {}
    rows = []
    for name, est in point.items():
        theta = reps[name].to_numpy(dtype=float)
        theta = theta[np.isfinite(theta)]
        if theta.size < 2:
            rows.append(
                {
                    "statistic": name,
                    "estimate": est,
                    "se": np.nan,
                    "lower": np.nan,
                    "upper": np.nan,
                    "n_valid": int(theta.size),
                }
            )
            continue
        lo, hi = _interval(theta, est, level, ci, jack.get(name))
        rows.append(
            {
                "statistic": name,
                "estimate": est,
                "se": float(np.std(theta, ddof=1)),
                "lower": lo,
                "upper": hi,
                "n_valid": int(theta.size),
            }
        )
    resampling = "patients (id_col) within arm" if id_col else "rows within arm"
    method = (
        f"bootstrap {'BCa' if ci == 'bca' else 'percentile'} {level:.0%} ({n_boot} "
        f"replicates, stratified by arm, resampling {resampling}, design re-run)"
    )
    return BootstrapResult(
        original,
        reps,
        pd.DataFrame(rows),
        n_boot,
        sum(failures.values()),
        dict(failures),
        ci,
        level,
        random_state if isinstance(random_state, int) else None,
        resampling,
        method,
    )


def _grouped_jackknife(frame, redesign, cfg, n_groups, ss) -> dict[str, np.ndarray]:
    """Delete-a-group jackknife values of each statistic (groups formed within arm)."""
    rng = np.random.default_rng(ss.spawn(1)[0])  # the child after the n_boot replicates
    is_trial = (frame[cfg.arm_col] == cfg.treated_value).to_numpy()
    group = np.empty(len(frame), dtype=np.int64)
    for k, mask in enumerate((is_trial, ~is_trial)):
        units = frame.loc[mask, cfg.id_col] if cfg.id_col else pd.Series(np.flatnonzero(mask))
        codes, uniq = pd.factorize(units)
        perm = rng.permutation(len(uniq)) % n_groups
        group[np.flatnonzero(mask)] = perm[codes] + k * n_groups
    values: dict[str, list[float]] = {}
    for g in range(2 * n_groups):
        sub = frame[group != g]
        try:
            stats = _statistics(_analyse(sub, redesign(sub), cfg))
        except (ValueError, np.linalg.LinAlgError):
            continue
        for k, v in stats.items():
            values.setdefault(k, []).append(v)
    return {k: np.asarray(v, dtype=float) for k, v in values.items()}


def _apply(res: BootstrapResult) -> ArmComparison:
    comp = res.comparison
    tab = res.table.set_index("statistic")
    m = res.method

    def est(e, name):
        if name not in tab.index or not e.estimable:
            return e
        r = tab.loc[name]
        return e.with_bootstrap(float(r["se"]), float(r["lower"]), float(r["upper"]), m)

    lms = tuple(
        replace(
            lm,
            trial=est(lm.trial, f"landmark_{lm.time:g}_trial"),
            control=est(lm.control, f"landmark_{lm.time:g}_control"),
            difference=est(lm.difference, f"landmark_{lm.time:g}_difference"),
        )
        for lm in comp.landmarks
    )

    def med(q, name):
        r = tab.loc[name]
        return replace(
            q,
            se=float(r["se"]),
            lower=float(r["lower"]),
            upper=float(r["upper"]),
            method=m,
            analytic=(q.lower, q.upper),
        )

    hr = comp.hazard_ratio
    r = tab.loc["log_hr"]
    if hr.converged:  # no interval around an estimate that does not exist
        hr = replace(
            hr,
            se_log=float(r["se"]),
            lower=float(np.exp(r["lower"])),
            upper=float(np.exp(r["upper"])),
            method=m,
            analytic=(hr.se_log, hr.lower, hr.upper),
        )  # p_value stays the robust Wald
    rm = comp.rmst
    if rm is not None:
        rm = replace(
            rm,
            trial=est(rm.trial, "rmst_trial"),
            control=est(rm.control, "rmst_control"),
            difference=est(rm.difference, "rmst_difference"),
        )
    return replace(
        comp,
        landmarks=lms,
        median_trial=med(comp.median_trial, "median_trial"),
        median_control=med(comp.median_control, "median_control"),
        hazard_ratio=hr,
        rmst=rm,
    )
