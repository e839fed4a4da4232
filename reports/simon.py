"""Simon's two-stage phase II design (Simon 1989) and inference that respects it.

Design: stage 1 treats ``n1`` patients and stops for futility when at most ``r1`` respond;
otherwise ``n - n1`` more are treated and H0 (``p <= p0``) is rejected when more than ``r``
of the ``n`` respond. `simon_design` finds, by exact enumeration over ``n <= nmax``, ``n1 <
n``, ``r1 < n1`` and the smallest ``r`` whose type I error is at most ``alpha``, the designs
with power at least ``power`` at ``p1``: the *optimal* one minimises the expected sample size
under H0 (``EN0``; ties: smaller ``n``), the *minimax* one minimises ``n`` (ties: smaller
``EN0``), as in Simon (1989) and R ``clinfun::ph2simon``.

Inference after the trial (`simon_analysis`): the p-value, confidence interval and
median-unbiased estimate of Koyama & Chen (2008, Statistics in Medicine 27:3145-3154).
When the trial stopped at stage 1 with ``x1 <= r1`` responses, the outcomes at least as
extreme are those with ``X1 >= x1`` (every stage-2 outcome is more extreme), so the p-value
is ``P(X1 >= x1 | p0)`` and the limits are the stage-1 Clopper-Pearson limits. After stage 2
(``x1`` stage-1 and ``x2`` stage-2 responses among ``m2`` stage-2 patients, ``m2`` possibly
different from the planned ``n2``), the conditional p-value ``P(X2 >= x2 | m2, p)`` is
mapped to the planned stage 2 through ``pi*`` with ``P(Bin(n2, pi*) >= r + 1 - x1) =
P(Bin(m2, p) >= x2)``, and

    p-value(p) = sum_{k = r1 + 1}^{n1} P(X1 = k | p) P(Bin(n2, pi*) >= r + 1 - k).

At ``p = p0`` this is the p-value; the confidence limits solve ``p-value(p) = (1 - level) /
2`` (lower) and ``1 - (1 - level) / 2`` (upper), and the median-unbiased estimate solves
``p-value(p) = 1/2``. With the planned ``m2 = n2`` the p-value is at most ``alpha`` exactly
when the design rejects H0, and at ``x1 + x2 = r + 1`` it equals the design's type I error.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq
from scipy.stats import beta as beta_dist
from scipy.stats import binom

from reports.binary import clopper_pearson
from reports.errors import EstimationError
from reports.estimate import json_number

DESIGNS = ("optimal", "minimax")


@dataclass(frozen=True, slots=True)
class SimonDesign:
    """A two-stage design: stop if ``<= r1`` of ``n1`` respond; reject H0 if ``> r`` of ``n``.

    ``alpha``/``power`` are the design's actual type I error at ``p0`` and power at ``p1``
    (the requested levels are ``alpha_target``/``power_target``); ``en0`` is the expected
    sample size and ``pet0`` the probability of early termination under H0.
    """

    p0: float
    p1: float
    r1: int
    n1: int
    r: int
    n: int
    en0: float
    pet0: float
    alpha: float
    power: float
    alpha_target: float
    power_target: float
    criterion: str

    def to_dict(self) -> dict:
        """JSON-ready dict (results.json ``simon`` design keys)."""
        return {
            "design": self.criterion,
            "p0": self.p0,
            "p1": self.p1,
            "n1": self.n1,
            "r1": self.r1,
            "n": self.n,
            "r": self.r,
            "en0": self.en0,
            "pet0": self.pet0,
            "alpha": self.alpha,
            "power": self.power,
            "alpha_target": self.alpha_target,
            "power_target": self.power_target,
        }


def rejection_probability(r1: int, n1: int, r: int, n: int, p: float) -> float:
    """P(continue to stage 2 and more than ``r`` responses in total | response rate ``p``)."""
    k = np.arange(r1 + 1, n1 + 1)
    return float((binom.pmf(k, n1, p) * binom.sf(r - k, n - n1, p)).sum())


class _Binomials:
    """pmf of X1 ~ Bin(n1, p) and P(X2 > j) of X2 ~ Bin(n2, p) for j = -nmax..nmax, cached."""

    def __init__(self, p: float, nmax: int) -> None:
        self.p, self.nmax = p, nmax
        self._pmf: dict[int, np.ndarray] = {}
        self._sf: dict[int, np.ndarray] = {}

    def pmf(self, n1: int) -> np.ndarray:
        if n1 not in self._pmf:
            self._pmf[n1] = binom.pmf(np.arange(n1 + 1), n1, self.p)
        return self._pmf[n1]

    def sf(self, n2: int) -> np.ndarray:
        if n2 not in self._sf:
            self._sf[n2] = binom.sf(np.arange(-self.nmax, self.nmax + 1), n2, self.p)
        return self._sf[n2]


def _rejection_table(b: _Binomials, n1: int, n: int) -> np.ndarray:
    """Matrix R[r1, r] of rejection probabilities for all r1 < n1 and r <= n."""
    k = np.arange(n1 + 1)
    r = np.arange(n + 1)
    # M[k, r] = P(X1 = k) P(X2 > r - k)
    m = b.pmf(n1)[:, None] * b.sf(n - n1)[r[None, :] - k[:, None] + b.nmax]
    tail = np.cumsum(m[::-1], axis=0)[::-1]  # tail[j] = sum_{k >= j} M[k]
    return tail[1:]  # row r1 = sum over k >= r1 + 1


def _rejection_at(b: _Binomials, n1: int, n: int, r1: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Rejection probabilities of the designs (r1[j], n1, r[j], n)."""
    k = np.arange(n1 + 1)
    terms = b.pmf(n1)[None, :] * b.sf(n - n1)[r[:, None] - k[None, :] + b.nmax]
    return np.where(k[None, :] > r1[:, None], terms, 0.0).sum(axis=1)


@lru_cache(maxsize=64)  # pure and deterministic; the result is a frozen dataclass
def simon_design(
    p0: float,
    p1: float,
    alpha: float = 0.05,
    power: float = 0.8,
    design: str = "optimal",
    nmax: int = 100,
) -> SimonDesign:
    """Simon's optimal or minimax two-stage design by exact enumeration.

    Parameters
    ----------
    p0, p1 : float
        Uninteresting (H0) and target (H1) response rates, 0 < p0 < p1 < 1.
    alpha : float, default=0.05
        Maximum one-sided type I error at ``p0``.
    power : float, default=0.8
        Minimum power at ``p1``.
    design : {"optimal", "minimax"}
        Minimise the expected sample size under H0, or the maximum sample size.
    nmax : int, default=100
        Largest total sample size searched.
    """
    if not 0 < p0 < p1 < 1:
        raise EstimationError(f"Simon design needs 0 < p0 < p1 < 1, got p0={p0!r}, p1={p1!r}")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise EstimationError(f"alpha and power must be in (0, 1), got {alpha!r}, {power!r}")
    if design not in DESIGNS:
        raise EstimationError(f"design must be one of {list(DESIGNS)}, got {design!r}")
    best: tuple | None = None
    eps = 1e-12
    b0, b1 = _Binomials(p0, int(nmax)), _Binomials(p1, int(nmax))
    for n in range(2, int(nmax) + 1):
        for n1 in range(1, n):
            a = _rejection_table(b0, n1, n)  # (n1, n + 1), decreasing in r
            ok = a <= alpha + eps
            r1s = np.arange(n1)
            valid = ok.any(axis=1)
            r_min = np.where(valid, ok.argmax(axis=1), n)
            r_min = np.maximum(r_min, r1s)
            if not valid.any():
                continue
            pw = _rejection_at(b1, n1, n, r1s, r_min)
            feas = valid & (pw >= power - eps)
            if not feas.any():
                continue
            pet = np.cumsum(b0.pmf(n1))[:n1]  # P(X1 <= r1), r1 = 0..n1-1
            en0 = n1 + (1 - pet) * (n - n1)
            for j in np.flatnonzero(feas):
                key = (en0[j], n) if design == "optimal" else (n, en0[j])
                if best is None or key < best[0]:
                    best = (
                        key,
                        int(r1s[j]),
                        n1,
                        int(r_min[j]),
                        n,
                        float(en0[j]),
                        float(pet[j]),
                        float(a[j, r_min[j]]),
                        float(pw[j]),
                    )
        if design == "minimax" and best is not None:
            break
    if best is None:
        raise EstimationError(
            f"no two-stage design with n <= {nmax} reaches alpha <= {alpha} and power >= "
            f"{power} for p0={p0}, p1={p1}: raise nmax"
        )
    _, r1, n1, r, n, en0, pet0, a_act, pw_act = best
    return SimonDesign(p0, p1, r1, n1, r, n, en0, pet0, a_act, pw_act, alpha, power, design)


@dataclass(frozen=True, slots=True)
class SimonAnalysis:
    """The trial's Simon analysis: counts, decision, design-respecting p-value and CI."""

    design: SimonDesign
    n_stage1: int
    responses_stage1: int
    n_stage2: int
    responses_stage2: int
    stopped_at_stage1: bool
    decision: str
    p_value: float
    lower: float
    upper: float
    median_unbiased: float
    conf_level: float
    method: str

    @property
    def responses(self) -> int:
        """Responses in both stages."""
        return self.responses_stage1 + self.responses_stage2

    def to_dict(self) -> dict:
        """results.json ``endpoints.<name>.simon`` object."""
        f = json_number
        return {
            **self.design.to_dict(),
            "n_stage1": self.n_stage1,
            "responses_stage1": self.responses_stage1,
            "n_stage2": self.n_stage2,
            "responses_stage2": self.responses_stage2,
            "responses": self.responses,
            "n_analysed": self.n_stage1 + self.n_stage2,
            "stopped_at_stage1": self.stopped_at_stage1,
            "decision": self.decision,
            "p_value": f(self.p_value),
            "lower": f(self.lower),
            "upper": f(self.upper),
            "median_unbiased": f(self.median_unbiased),
            "conf_level": self.conf_level,
            "method": self.method,
        }


def koyama_chen_pvalue(d: SimonDesign, x1: int, x2: int, m2: int, p: float) -> float:
    """Koyama & Chen (2008) stage-2 p-value function at response rate ``p``."""
    n2 = d.n - d.n1
    big_r2 = d.r + 1 - x1  # stage-2 responses the planned design needed to reject
    cond = float(binom.sf(x2 - 1, m2, p))
    if big_r2 <= 0:
        pi_star = 0.0 if cond < 1 else 1.0
    elif big_r2 > n2:
        pi_star = 1.0
    else:
        pi_star = float(beta_dist.ppf(cond, big_r2, n2 - big_r2 + 1))
    k = np.arange(d.r1 + 1, d.n1 + 1)
    return float((binom.pmf(k, d.n1, p) * binom.sf(d.r - k, n2, pi_star)).sum())


def _solve(fun, target: float) -> float:
    lo, hi = 1e-12, 1 - 1e-12
    flo, fhi = fun(lo) - target, fun(hi) - target
    if flo >= 0:
        return 0.0
    if fhi <= 0:
        return 1.0
    return float(brentq(lambda p: fun(p) - target, lo, hi, xtol=1e-12, rtol=1e-12))


def simon_analysis(
    design: SimonDesign,
    responses_stage1: int,
    responses_stage2: int = 0,
    n_stage2: int | None = None,
    conf_level: float | None = None,
) -> SimonAnalysis:
    """Analyse a trial run under ``design``.

    Parameters
    ----------
    design : SimonDesign
    responses_stage1 : int
        Responses among the first ``design.n1`` evaluable patients.
    responses_stage2 : int, default=0
        Responses among the stage-2 patients (ignored when the trial stopped at stage 1).
    n_stage2 : int, optional
        Actual stage-2 sample size (default: the planned ``n - n1``; 0 when stopped).
    conf_level : float, optional
        Two-sided level; default ``1 - 2 alpha_target`` (each one-sided limit at the
        design's alpha, as Koyama & Chen).
    """
    d = design
    level = 1 - 2 * d.alpha_target if conf_level is None else float(conf_level)
    if not 0 < level < 1:
        raise EstimationError(f"conf_level must be in (0, 1), got {conf_level!r}")
    x1 = int(responses_stage1)
    if not 0 <= x1 <= d.n1:
        raise EstimationError(f"responses_stage1 must be in 0..{d.n1}, got {responses_stage1!r}")
    tail = (1 - level) / 2
    method = "Koyama & Chen (2008)"
    if x1 <= d.r1:
        lo, hi = clopper_pearson(x1, d.n1, level)
        p_value = float(binom.sf(x1 - 1, d.n1, d.p0))
        med = _solve(lambda p: float(binom.sf(x1 - 1, d.n1, p)), 0.5) if x1 > 0 else 0.0
        return SimonAnalysis(
            d,
            d.n1,
            x1,
            0,
            0,
            True,
            f"stopped at stage 1 for futility ({x1} <= r1 = {d.r1} responses of {d.n1}): "
            "H0 not rejected",
            p_value,
            lo,
            hi,
            med,
            level,
            f"{method}, stage 1 only: P(X1 >= x1 | p0), Clopper-Pearson limits on stage 1",
        )
    m2 = d.n - d.n1 if n_stage2 is None else int(n_stage2)
    x2 = int(responses_stage2)
    if m2 < 1 or not 0 <= x2 <= m2:
        raise EstimationError(
            f"stage 2 needs n_stage2 >= 1 and 0 <= responses_stage2 <= n_stage2, got "
            f"n_stage2={n_stage2!r}, responses_stage2={responses_stage2!r}"
        )
    pfun = lambda p: koyama_chen_pvalue(d, x1, x2, m2, p)  # noqa: E731
    p_value = pfun(d.p0)
    if m2 == d.n - d.n1:
        reject = x1 + x2 > d.r
        decision = (
            f"H0 rejected ({x1 + x2} > r = {d.r} responses of {d.n})"
            if reject
            else f"H0 not rejected ({x1 + x2} <= r = {d.r} responses of {d.n})"
        )
    else:
        reject = p_value <= d.alpha_target
        decision = (
            f"stage 2 enrolled {m2} instead of {d.n - d.n1}: H0 "
            f"{'rejected' if reject else 'not rejected'} by the Koyama-Chen p-value "
            f"{'<=' if reject else '>'} alpha = {d.alpha_target}"
        )
    return SimonAnalysis(
        d,
        d.n1,
        x1,
        m2,
        x2,
        False,
        decision,
        p_value,
        _solve(pfun, tail),
        _solve(pfun, 1 - tail),
        _solve(pfun, 0.5),
        level,
        f"{method}: conditional-p-value ordering, limits and median-unbiased estimate by "
        "inverting the p-value function",
    )
