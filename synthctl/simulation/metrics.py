"""Performance measures of a simulation study, with their Monte Carlo standard errors.

Definitions and Monte Carlo SE formulas follow Morris, White & Crowther (2019), "Using
simulation studies to evaluate statistical methods", Stat Med 38:2074-2102, Table 6. We write
them out (a dozen lines of numpy) because no well-kept Python library implements that table;
R's ``rsimsum`` does, and our tests check the formulas on inputs with known answers.

The estimand may differ between replicates (a sample-specific truth, e.g. the average
counterfactual control curve of the trial patients drawn in that replicate): every measure
that involves the truth uses the per-replicate value ``theta_i``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__ = ["PerformanceMeasures", "binomial_band", "performance_measures", "share_with_mcse"]


@dataclass(frozen=True, slots=True)
class PerformanceMeasures:
    """Performance of one estimator for one estimand over the valid replicates.

    Attributes
    ----------
    n_runs : int
        Replicates attempted.
    n_valid : int
        Replicates with a finite estimate (the others are counted, never dropped silently).
    truth : float
        Mean true value over the valid replicates (constant when the estimand is fixed).
    bias, bias_mcse : float
        ``mean(theta_hat_i - theta_i)`` and ``sd(theta_hat_i - theta_i) / sqrt(n)``.
    emp_se, emp_se_mcse : float
        ``sd(theta_hat_i)`` (ddof=1) and ``emp_se / sqrt(2 (n - 1))``.
    model_se, model_se_mcse : float
        ``sqrt(mean(se_i ** 2))`` and ``sqrt(var(se_i ** 2) / (4 n model_se ** 2))``.
    rmse, rmse_mcse : float
        ``sqrt(mean((theta_hat_i - theta_i) ** 2))``; MC SE of the MSE by Morris et al.,
        carried to the RMSE by the delta method (divide by ``2 rmse``).
    coverage, coverage_mcse : float
        Share of replicates with ``lower_i <= theta_i <= upper_i`` and
        ``sqrt(coverage (1 - coverage) / n)`` (replicates without limits are not valid for it).
    n_ci : int
        Replicates with finite limits (denominator of ``coverage``).
    """

    n_runs: int
    n_valid: int
    truth: float
    bias: float
    bias_mcse: float
    emp_se: float
    emp_se_mcse: float
    model_se: float
    model_se_mcse: float
    rmse: float
    rmse_mcse: float
    coverage: float
    coverage_mcse: float
    n_ci: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def performance_measures(
    estimate: ArrayLike,
    se: ArrayLike,
    lower: ArrayLike,
    upper: ArrayLike,
    truth: ArrayLike | float,
) -> PerformanceMeasures:
    """Bias, empirical SE, model SE, RMSE and CI coverage, each with its Monte Carlo SE.

    Parameters
    ----------
    estimate, se, lower, upper : array-like of shape (n_replicates,)
        Point estimate, its model-based SE and the confidence limits from each replicate,
        on the scale the performance is wanted on (log HR, not HR). NaN marks a replicate
        where the estimator gave nothing; it is excluded from the measures and counted in
        ``n_runs - n_valid``.
    truth : float or array-like of shape (n_replicates,)
        The true value, fixed or per replicate.

    Returns
    -------
    PerformanceMeasures
    """
    est = np.asarray(estimate, dtype=float)
    n_runs = est.size
    se_ = np.broadcast_to(np.asarray(se, dtype=float), est.shape)
    lo = np.broadcast_to(np.asarray(lower, dtype=float), est.shape)
    up = np.broadcast_to(np.asarray(upper, dtype=float), est.shape)
    theta = np.broadcast_to(np.asarray(truth, dtype=float), est.shape)
    ok = np.isfinite(est) & np.isfinite(theta)
    n = int(ok.sum())
    nan = float("nan")
    if n == 0:
        return PerformanceMeasures(n_runs, 0, nan, *([nan] * 10), 0)
    est, theta = est[ok], theta[ok]
    err = est - theta
    bias = float(err.mean())
    bias_mcse = float(err.std(ddof=1) / np.sqrt(n)) if n > 1 else nan
    emp_se = float(est.std(ddof=1)) if n > 1 else nan
    emp_se_mcse = emp_se / np.sqrt(2 * (n - 1)) if n > 1 else nan
    mse = float(np.mean(err**2))
    rmse = float(np.sqrt(mse))
    mse_mcse = float(np.sqrt(np.sum((err**2 - mse) ** 2) / (n * (n - 1)))) if n > 1 else nan
    rmse_mcse = mse_mcse / (2 * rmse) if rmse > 0 else nan

    var_i = se_[ok] ** 2
    var_i = var_i[np.isfinite(var_i)]
    if var_i.size:
        model_se = float(np.sqrt(var_i.mean()))
        model_se_mcse = (
            float(np.sqrt(var_i.var(ddof=1) / (4 * var_i.size * model_se**2)))
            if var_i.size > 1 and model_se > 0
            else nan
        )
    else:
        model_se = model_se_mcse = nan

    has_ci = np.isfinite(lo[ok]) & np.isfinite(up[ok])
    n_ci = int(has_ci.sum())
    if n_ci:
        covered = (lo[ok][has_ci] <= theta[has_ci]) & (theta[has_ci] <= up[ok][has_ci])
        coverage = float(covered.mean())
        coverage_mcse = float(np.sqrt(coverage * (1 - coverage) / n_ci))
    else:
        coverage = coverage_mcse = nan
    return PerformanceMeasures(
        n_runs=n_runs,
        n_valid=n,
        truth=float(theta.mean()),
        bias=bias,
        bias_mcse=bias_mcse,
        emp_se=emp_se,
        emp_se_mcse=float(emp_se_mcse),
        model_se=model_se,
        model_se_mcse=model_se_mcse,
        rmse=rmse,
        rmse_mcse=float(rmse_mcse),
        coverage=coverage,
        coverage_mcse=coverage_mcse,
        n_ci=n_ci,
    )


def share_with_mcse(flags: ArrayLike) -> tuple[float, float]:
    """Share of true values among the non-missing ``flags`` and its binomial MC SE.

    ``sqrt(p (1 - p) / n)`` as in Morris et al. (2019) for coverage and power.
    """
    x = pd.Series(flags, dtype="boolean").dropna().to_numpy(dtype=bool)
    if x.size == 0:
        return float("nan"), float("nan")
    p = float(x.mean())
    return p, float(np.sqrt(p * (1 - p) / x.size))


def binomial_band(n: int, p: float = 0.95, level: float = 0.99) -> tuple[float, float]:
    """Central ``level`` range of the share of successes in ``n`` Bernoulli(``p``) draws.

    Exact binomial quantiles (``scipy.stats.binom.ppf``), so a coverage outside the band is
    evidence, at the ``1 - level`` significance level, that the true coverage differs from
    ``p``.
    """
    from scipy.stats import binom

    alpha = 1.0 - level
    lo = binom.ppf(alpha / 2, n, p) / n
    hi = binom.ppf(1 - alpha / 2, n, p) / n
    return float(lo), float(hi)
