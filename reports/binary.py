"""Binary endpoints (response, normalisation): weighted proportions per arm and their contrasts.

Everything is the M-estimation sandwich of the saturated model ``y ~ arm`` with case
weights, as R computes it:

* difference: ``glm(y ~ arm, weights = w, family = quasibinomial(link = "identity"))``;
* ratio: ``glm(y ~ arm, weights = w, family = quasipoisson)`` (log link), limits on the log
  scale;
* odds ratio: ``glm(y ~ arm, weights = w, family = quasibinomial)`` (logit link), limits on
  the log scale;
* per arm: the weighted proportion, SE on the probability scale, limits on the logit scale
  (``plogis(eta +/- z se)``, R's ``predict(type = "link")`` route), so that they stay in
  [0, 1].

The variance is ``sandwich::vcovHC(fit, type = "HC0")`` (each row its own cluster) or, for
matched designs, ``sandwich::vcovCL(fit, cluster = ~subclass, type = "HC0", cadjust =
FALSE)``. In the saturated model the fitted means are the weighted arm proportions ``p_a``
and every link gives the same sandwich for ``(p_1, p_0)``:
``cov(p_a, p_b) = sum_c U_ca U_cb / (W_a W_b)`` with ``U_ca = sum_{i in c, arm a} w_i (y_i -
p_a)`` and ``W_a`` the arm's weight total; the link only enters through the delta method,
which is exact for a reparameterisation of an M-estimator. The dispersion of the quasi
families cancels in the sandwich. Rows of weight 0 (unmatched registry patients) carry
nothing and are left out of ``n``; R is fitted on the rows of positive weight
(``tests/fixtures/binary_weighted/binary_reference.R`` says why).

The trial arm alone is tested against the null rate with the exact binomial test
(`binomial_test`, R ``binom.test``), unweighted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import beta, binom

from reports._inputs import (
    check_conf_level,
    cluster_codes,
    require_columns,
    weight_array,
    zero_one_array,
)
from reports.errors import EstimationError
from reports.estimate import (
    Estimate,
    json_number,
    ratio_dict,
    wald_estimate,
    wald_limits,
    wald_p_value,
    z_quantile,
)
from reports.evalue import EValue, evalue_rr


def binary_array(frame: pd.DataFrame, col: str) -> np.ndarray:
    """The 0/1 outcome as float (booleans allowed); missing or other values are errors."""
    return zero_one_array(frame, col, "binary outcome must be 0 or 1")


@dataclass(frozen=True, slots=True)
class RatioEstimate:
    """A ratio (risk ratio or odds ratio) with its log-scale SE, Wald limits and p-value."""

    estimate: float
    lower: float
    upper: float
    se_log: float
    p_value: float
    conf_level: float
    method: str
    reason: str | None = None
    analytic: tuple[float, float, float] | None = None  # (se_log, lower, upper) if bootstrap

    def to_dict(self) -> dict:
        """results.json ratio object (None for NA)."""
        return ratio_dict(self, reason=self.reason)


@dataclass(frozen=True, slots=True)
class ProportionComparison:
    """Weighted proportions of a binary endpoint in both arms and their contrasts.

    ``to_dict()`` is results.json ``endpoints.<name>.proportion``: ``trial``, ``control``
    (Estimate objects), ``difference`` (trial minus control), ``ratio`` and ``odds_ratio``
    (trial over control), ``evalue`` (of the ratio), ``n`` and ``responders`` per arm
    (unweighted counts of rows of positive weight) and ``weighted_n`` (the weight totals).
    """

    trial: Estimate
    control: Estimate
    difference: Estimate
    ratio: RatioEstimate
    odds_ratio: RatioEstimate
    evalue: EValue | None
    n: dict
    responders: dict
    weighted_n: dict
    conf_level: float
    variance: str

    def to_dict(self) -> dict:
        """results.json ``proportion`` object."""
        return {
            "trial": self.trial.to_dict(),
            "control": self.control.to_dict(),
            "difference": self.difference.to_dict(),
            "ratio": self.ratio.to_dict(),
            "odds_ratio": self.odds_ratio.to_dict(),
            "evalue": None if self.evalue is None else self.evalue.to_dict(),
            "n": dict(self.n),
            "responders": dict(self.responders),
            "weighted_n": {k: json_number(v) for k, v in self.weighted_n.items()},
            "conf_level": self.conf_level,
            "variance": self.variance,
        }

    def summary(self) -> pd.DataFrame:
        """One row per arm and per contrast."""
        rows = [{"what": k, **getattr(self, k).to_dict()} for k in ("trial", "control")]
        rows.append({"what": "difference", **self.difference.to_dict()})
        rows += [{"what": k, **getattr(self, k).to_dict()} for k in ("ratio", "odds_ratio")]
        return pd.DataFrame(rows)


def _arm_covariance(
    y: np.ndarray, arm: np.ndarray, w: np.ndarray, cluster: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted proportions (trial, control) and their HC0 / cluster sandwich covariance."""
    p = np.empty(2)
    scores = np.zeros((cluster.max() + 1, 2))
    for k, a in enumerate((True, False)):
        m = arm == a
        total = w[m].sum()
        p[k] = (w[m] * y[m]).sum() / total
        np.add.at(scores[:, k], cluster[m], w[m] * (y[m] - p[k]) / total)
    return p, scores.T @ scores


def _ratio(
    log_est: float, grad: np.ndarray, cov: np.ndarray, level: float, method: str
) -> RatioEstimate:
    se = float(np.sqrt(grad @ cov @ grad))
    lo, hi = wald_limits(log_est, se, level)
    return RatioEstimate(
        float(np.exp(log_est)), float(np.exp(lo)), float(np.exp(hi)), se,
        wald_p_value(log_est, se), level, method,
    )


def _arm_estimate(p: float, var: float, z: float, level: float, method: str) -> Estimate:
    se = float(np.sqrt(var))
    if not 0 < p < 1:
        return Estimate(
            float(p),
            se,
            float("nan"),
            float("nan"),
            level,
            method,
            reason="all or none of the arm responded: no logit-scale limits "
            "(see trial_vs_null for exact limits)",
        )
    eta, se_eta = np.log(p / (1 - p)), se / (p * (1 - p))
    lo, hi = 1 / (1 + np.exp(-(eta - z * se_eta))), 1 / (1 + np.exp(-(eta + z * se_eta)))
    return Estimate(float(p), se, float(lo), float(hi), level, method)


def compare_proportions(
    frame: pd.DataFrame,
    *,
    response_col: str,
    arm_col: str = "arm",
    treated_value: object = "trial",
    weight_col: str | None = None,
    cluster_col: str | None = None,
    conf_level: float = 0.95,
) -> ProportionComparison:
    """Compare the proportion of a binary endpoint between the trial and the control arm.

    Parameters
    ----------
    frame : DataFrame
        One row per patient of both arms.
    response_col : str
        0/1 (or boolean) outcome, 1 = responder / normalised.
    arm_col, treated_value : str, object
        Column of the arm and the value of the trial arm; every other value is control.
    weight_col : str, optional
        Case weights of the design (None means 1). Rows of weight 0 contribute nothing.
    cluster_col : str, optional
        Matched set (``subclass`` / ``match_id``) of a matched design: the variance is
        ``vcovCL(cluster = ~subclass, type = "HC0", cadjust = FALSE)``. None: ``vcovHC(type =
        "HC0")``. A missing cluster id is allowed on rows of weight 0 only.
    conf_level : float, default=0.95
        Level of the two-sided Wald limits.

    Returns
    -------
    ProportionComparison
        Proportions are fractions in [0, 1]; the difference is trial minus control
        (absolute, in proportion units); ratios are trial over control.
    """
    require_columns(
        frame,
        {
            "response_col": response_col,
            "arm_col": arm_col,
            "weight_col": weight_col,
            "cluster_col": cluster_col,
        },
    )
    level = check_conf_level(conf_level)
    y = binary_array(frame, response_col)
    w = weight_array(frame, weight_col)
    arm = (frame[arm_col] == treated_value).to_numpy()
    codes = cluster_codes(frame, cluster_col, w)
    keep = w > 0
    for name, a in (("trial", True), ("control", False)):
        if not (keep & (arm == a)).any():
            raise EstimationError(
                f"the {name} arm has no row of positive weight ({arm_col}"
                f"{'==' if a else '!='}{treated_value!r}, weight_col={weight_col!r})"
            )
    y, arm, w = y[keep], arm[keep], w[keep]
    cluster = np.arange(int(keep.sum())) if codes is None else pd.factorize(codes[keep])[0]
    variance = (
        "sandwich HC0 (vcovHC)"
        if cluster_col is None
        else f"sandwich HC0 clustered on {cluster_col} (vcovCL, cadjust = FALSE)"
    )
    p, cov = _arm_covariance(y, arm, w, cluster)
    z = z_quantile(level)

    arm_method = f"weighted proportion, {variance}, logit-scale Wald limits"
    trial = _arm_estimate(p[0], cov[0, 0], z, level, arm_method)
    control = _arm_estimate(p[1], cov[1, 1], z, level, arm_method)

    d_se = float(np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]))
    difference = wald_estimate(
        p[0] - p[1], d_se, level, f"quasibinomial identity-link GLM, {variance}, Wald limits"
    )

    rr_method = f"quasipoisson log-link GLM, {variance}, log-scale Wald limits"
    or_method = f"quasibinomial logit GLM, {variance}, log-scale Wald limits"
    if np.all(p > 0):
        ratio = _ratio(
            np.log(p[0] / p[1]), np.array([1 / p[0], -1 / p[1]]), cov, level, rr_method
        )
    else:
        ratio = _not_estimable_ratio(level, rr_method, "no responder in an arm")
    if np.all((p > 0) & (p < 1)):
        lo_odds = np.log(p / (1 - p))
        grad = np.array([1 / (p[0] * (1 - p[0])), -1 / (p[1] * (1 - p[1]))])
        odds_ratio = _ratio(lo_odds[0] - lo_odds[1], grad, cov, level, or_method)
    else:
        odds_ratio = _not_estimable_ratio(
            level, or_method, "no responder or all responders in an arm"
        )
    ev = None
    if np.isfinite(ratio.estimate):
        ev = evalue_rr(ratio.estimate, ratio.lower, ratio.upper)
    return ProportionComparison(
        trial,
        control,
        difference,
        ratio,
        odds_ratio,
        ev,
        n={"trial": int(arm.sum()), "control": int((~arm).sum())},
        responders={"trial": int(y[arm].sum()), "control": int(y[~arm].sum())},
        weighted_n={"trial": float(w[arm].sum()), "control": float(w[~arm].sum())},
        conf_level=level,
        variance=variance,
    )


def _not_estimable_ratio(level: float, method: str, reason: str) -> RatioEstimate:
    nan = float("nan")
    return RatioEstimate(nan, nan, nan, nan, nan, level, method, reason)


@dataclass(frozen=True, slots=True)
class BinomialTest:
    """Exact one-sided binomial test of H0: p <= null_rate and Clopper-Pearson limits.

    ``p_value`` is R's ``binom.test(x, n, null_rate, alternative = "greater")$p.value``;
    ``lower``/``upper`` are the two-sided Clopper-Pearson limits at ``conf_level``
    (``binom.test(x, n)$conf.int``); ``lower_one_sided`` is the one-sided (``conf_level``)
    lower limit of the "greater" test, which exceeds the null rate exactly when
    ``p_value < 1 - conf_level``.
    """

    responders: int
    n: int
    null_rate: float
    estimate: float
    p_value: float
    lower: float
    upper: float
    lower_one_sided: float
    conf_level: float
    alternative: str = "greater"
    method: str = "exact binomial test, Clopper-Pearson limits (R binom.test)"

    def to_dict(self) -> dict:
        """results.json ``trial_vs_null`` object."""
        f = json_number
        return {
            "responders": self.responders,
            "n": self.n,
            "null_rate": self.null_rate,
            "estimate": f(self.estimate),
            "p_value": f(self.p_value),
            "lower": f(self.lower),
            "upper": f(self.upper),
            "lower_one_sided": f(self.lower_one_sided),
            "conf_level": self.conf_level,
            "alternative": self.alternative,
            "method": self.method,
        }


def clopper_pearson(x: int, n: int, conf_level: float = 0.95) -> tuple[float, float]:
    """Two-sided exact (Clopper-Pearson) limits of a binomial proportion."""
    a = 1 - conf_level
    lo = 0.0 if x == 0 else float(beta.ppf(a / 2, x, n - x + 1))
    hi = 1.0 if x == n else float(beta.ppf(1 - a / 2, x + 1, n - x))
    return lo, hi


def binomial_test(
    responders: int, n: int, null_rate: float, conf_level: float = 0.95
) -> BinomialTest:
    """Test the trial arm's response rate against ``null_rate`` (one-sided, exact).

    Parameters
    ----------
    responders, n : int
        Number of responders and of patients (0 <= responders <= n, n >= 1).
    null_rate : float
        Proportion under H0, in (0, 1) (the Simon ``p0``).
    conf_level : float, default=0.95
        Level of the Clopper-Pearson limits.
    """
    level = check_conf_level(conf_level)
    x, n = int(responders), int(n)
    if x != responders or n != n or n < 1 or not 0 <= x <= n:
        raise EstimationError(
            f"responders and n must be integers with 0 <= responders <= n and n >= 1, "
            f"got responders={responders!r}, n={n!r}"
        )
    if not 0 < null_rate < 1:
        raise EstimationError(f"null_rate must be in (0, 1), got {null_rate!r}")
    lo, hi = clopper_pearson(x, n, level)
    lo1 = 0.0 if x == 0 else float(beta.ppf(1 - level, x, n - x + 1))
    return BinomialTest(
        x, n, float(null_rate), x / n, float(binom.sf(x - 1, n, null_rate)), lo, hi, lo1, level
    )
