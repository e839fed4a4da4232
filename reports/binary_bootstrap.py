"""Bootstrap of a binary-endpoint comparison, re-running the design in every replicate.

As `reports.bootstrap` does for the survival comparison: each replicate resamples the trial
and the registry rows separately (stratified by arm), hands the resampled frame to
``redesign`` (the caller's PS fit + matching or weighting; it returns ``weight`` and
``cluster`` columns on the replicate's index) and recomputes the weighted proportions, their
difference, log risk ratio and log odds ratio. Replicate ``b`` draws from
``SeedSequence(random_state).spawn(n_boot)[b]``. A replicate whose design fails, or whose
ratio is not estimable (no responder in an arm), is counted with its reason and left out of
that statistic. Intervals are percentile intervals (log scale for the ratios); the SE is the
replicates' standard deviation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from reports._inputs import check_conf_level, require_columns
from reports.binary import ProportionComparison, RatioEstimate, binary_array
from reports.errors import EstimationError

Redesign = Callable[[pd.DataFrame], pd.DataFrame]
STATISTICS = ("trial", "control", "difference", "log_ratio", "log_odds_ratio")


@dataclass(frozen=True, slots=True)
class ProportionBootstrap:
    """Bootstrap replicates of the binary comparison and their summaries."""

    n_boot: int
    conf_level: float
    replicates: dict[str, np.ndarray] = field(repr=False)
    failures: dict[str, int]

    def se(self, name: str) -> float:
        """Standard deviation of the finite replicates of ``name``."""
        v = self.replicates[name]
        v = v[np.isfinite(v)]
        return float(np.std(v, ddof=1)) if v.size > 1 else float("nan")

    def interval(self, name: str) -> tuple[float, float]:
        """Percentile interval of ``name`` at ``conf_level``."""
        v = self.replicates[name]
        v = v[np.isfinite(v)]
        if v.size < 2:
            return float("nan"), float("nan")
        a = (1 - self.conf_level) / 2
        lo, hi = np.quantile(v, [a, 1 - a])
        return float(lo), float(hi)

    def method(self) -> str:
        """The method string of the bootstrapped estimates."""
        return (
            f"bootstrap (design re-run, {self.n_boot} replicates, stratified by arm), "
            "percentile interval"
        )

    def apply(self, comp: ProportionComparison) -> ProportionComparison:
        """``comp`` with bootstrap SE/limits as primary and the analytic ones kept aside."""
        m = self.method()
        arms = {}
        for name in ("trial", "control", "difference"):
            est = getattr(comp, name)
            arms[name] = est.with_bootstrap(self.se(name), *self.interval(name), m)
        ratios = {}
        for name, key in (("ratio", "log_ratio"), ("odds_ratio", "log_odds_ratio")):
            r: RatioEstimate = getattr(comp, name)
            lo, hi = self.interval(key)
            ratios[name] = replace(
                r,
                lower=float(np.exp(lo)),
                upper=float(np.exp(hi)),
                se_log=self.se(key),
                method=m + " (log scale)",
                analytic=(r.se_log, r.lower, r.upper),
            )
        return replace(comp, **arms, **ratios)

    def to_dict(self) -> dict:
        """results.json ``bootstrap`` summary of the endpoint."""
        return {
            "n_boot": self.n_boot,
            "conf_level": self.conf_level,
            "failed_replicates": dict(self.failures),
            "n_finite": {k: int(np.isfinite(v).sum()) for k, v in self.replicates.items()},
        }


def _stats(y: np.ndarray, arm: np.ndarray, w: np.ndarray) -> dict[str, float]:
    p = []
    for a in (True, False):
        m = (arm == a) & (w > 0)
        total = w[m].sum()
        if total <= 0:
            raise EstimationError(f"no {'trial' if a else 'control'} row of positive weight")
        p.append((w[m] * y[m]).sum() / total)
    p1, p0 = p
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.log(p1 / p0) if p1 > 0 and p0 > 0 else np.nan
        lor = np.log(p1 / (1 - p1)) - np.log(p0 / (1 - p0)) if 0 < p1 < 1 and 0 < p0 < 1 else np.nan
    return {
        "trial": p1,
        "control": p0,
        "difference": p1 - p0,
        "log_ratio": lr,
        "log_odds_ratio": lor,
    }


def bootstrap_proportions(
    frame: pd.DataFrame,
    redesign: Redesign,
    *,
    response_col: str,
    arm_col: str = "arm",
    treated_value: object = "trial",
    weight_name: str = "weight",
    n_boot: int = 1000,
    random_state: int | None = None,
    conf_level: float = 0.95,
) -> ProportionBootstrap:
    """Bootstrap the binary comparison with the design re-run in each replicate.

    Parameters
    ----------
    frame : DataFrame
        Every eligible row of both arms (before the design), with the covariates the
        design needs and the 0/1 ``response_col``.
    redesign : callable
        ``redesign(replicate_frame) -> DataFrame`` with a ``weight_name`` column on the same
        index (0 for rows the design leaves out).
    n_boot : int, default=1000
    random_state : int, optional
    conf_level : float, default=0.95
    """
    require_columns(frame, {"response_col": response_col, "arm_col": arm_col})
    level = check_conf_level(conf_level)
    if int(n_boot) < 2:
        raise EstimationError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    binary_array(frame, response_col)  # validate once, at entry
    is_trial = (frame[arm_col] == treated_value).to_numpy()
    rows = {True: np.flatnonzero(is_trial), False: np.flatnonzero(~is_trial)}
    seeds = np.random.SeedSequence(random_state).spawn(int(n_boot))
    out = {k: np.full(int(n_boot), np.nan) for k in STATISTICS}
    failures: Counter = Counter()
    for b, seed in enumerate(seeds):
        rng = np.random.default_rng(seed)
        take = np.concatenate(
            [rng.choice(rows[a], size=rows[a].size, replace=True) for a in (True, False)]
        )
        rep = frame.iloc[take].reset_index(drop=True)
        try:
            design = redesign(rep)
            w = design.loc[rep.index, weight_name].to_numpy(dtype=float)
            s = _stats(
                binary_array(rep, response_col), (rep[arm_col] == treated_value).to_numpy(), w
            )
        except (EstimationError, ValueError, ArithmeticError) as exc:
            failures[f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"] += 1
            continue
        for k, v in s.items():
            out[k][b] = v
        if not np.isfinite(s["log_ratio"]):
            failures["ratio not estimable (no responder in an arm)"] += 1
    return ProportionBootstrap(int(n_boot), level, out, dict(failures))
