"""Balancing weights from a propensity score, and entropy balancing.

Weights (``e`` = PS, ``T`` = trial indicator), each named with its target population:

- ``att_odds`` (ATT, the trial population): trial 1, control ``e / (1 - e)``.
- ``ate`` (ATE, trial + registry combined): trial ``1 / e``, control ``1 / (1 - e)``;
  stabilised: multiplied by ``P(T = 1)`` and ``P(T = 0)`` respectively.
- ``overlap`` (ATO, the overlap population): trial ``1 - e``, control ``e``.
- ``matching`` (ATM, Li & Greene 2013): ``min(e, 1 - e)`` / (``e`` for trial, ``1 - e``
  for control).
- ``entropy`` (ATT): control weights closest to uniform (Kullback-Leibler) that make the
  weighted control means (and optionally variances) of the covariates equal the trial arm's
  (Hainmueller 2012). Solved through its convex dual with scipy.

Trimming (``trim``) removes patients before weighting and is reported per arm: ``a`` in
(0, 0.5) drops PS outside ``[a, 1 - a]``; ``"common_support"`` drops each arm's patients
outside the other arm's PS range.

Truncation (``truncate=q``) caps large weights (winsorizes them) and reports how many were
capped, by one of two rules (``truncate_rule``):

- ``"per_arm"`` (our default): each arm's positive weights are capped at THAT ARM's ``q``
  quantile (``numpy.quantile``'s linear interpolation, R ``quantile(type = 7)``). An arm whose
  weights are all equal (the trial arm under ATT-type weights) is left unchanged.
- ``"weightit"``: WeightIt's ``trim(w, at = q, treat = treat)``: ONE cap, the ``q`` quantile
  (R ``quantile(type = 3)``, the nearest even order statistic) of the POOLED weights of every
  arm whose weights are not all equal, applied to those arms. Under ATT-type weights only the
  controls are pooled, so the two rules differ only by the quantile type; under ATE or overlap
  weights both arms share one cap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._method import MethodInputs, MethodOutcome
from ._validation import Interval, check_params
from .base import Estimator
from .errors import MatchingError

# each kind of weights, the estimand it targets and its words in the methods text
WEIGHT_ESTIMAND = {"att_odds": "ATT", "entropy": "ATT", "ate": "ATE", "overlap": "ATO",
                   "matching": "ATM"}
WEIGHT_KINDS = tuple(WEIGHT_ESTIMAND)
WEIGHT_DESCRIPTION = {
    "att_odds": "ATT odds weights (trial 1, control e/(1-e))",
    "ate": "inverse-probability (ATE) weights",
    "overlap": "overlap weights",
    "matching": "matching weights",
    "entropy": "entropy-balancing weights",
}
TRUNCATE_RULES = ("per_arm", "weightit")
_TRUNCATE_NOTE = {
    "per_arm": "each arm's weights capped at that arm's own quantile (numpy linear "
               "interpolation = R quantile type 7); WeightIt's trim() instead uses one "
               "quantile (type 3) of the pooled weights of the arms being truncated "
               "(truncate_rule: weightit)",
    "weightit": "WeightIt trim(w, at = q, treat = treat): one cap, the type-3 quantile of the "
                "pooled weights of every arm whose weights are not all equal",
}


def default_weights(estimand: str) -> str:
    """The kind of weights an estimand calls for when ``weights`` is not given."""
    return next(k for k, e in WEIGHT_ESTIMAND.items() if e == estimand)


def ps_weights(ps, treated, kind: str, *, stabilized: bool = False) -> np.ndarray:
    """Balancing weights from a PS (module docstring); shape (n_patients,)."""
    e = np.asarray(ps, dtype=float)
    t = np.asarray(treated, dtype=bool)
    if kind == "att_odds":
        return np.where(t, 1.0, e / (1.0 - e))
    if kind == "ate":
        w = np.where(t, 1.0 / e, 1.0 / (1.0 - e))
        if stabilized:
            p = t.mean()
            w = w * np.where(t, p, 1.0 - p)
        return w
    if kind == "overlap":
        return np.where(t, 1.0 - e, e)
    if kind == "matching":
        return np.minimum(e, 1.0 - e) / np.where(t, e, 1.0 - e)
    raise MatchingError(f"weights must be one of {WEIGHT_KINDS}; got {kind!r}.")


def trim_mask(ps, treated, trim) -> np.ndarray:
    """Which patients are kept by ``trim`` (None, a in (0, 0.5), or "common_support")."""
    e = np.asarray(ps, dtype=float)
    t = np.asarray(treated, dtype=bool)
    if trim is None:
        return np.ones(len(e), dtype=bool)
    if trim == "common_support":
        lo = max(e[t].min(), e[~t].min())
        hi = min(e[t].max(), e[~t].max())
        return (e >= lo) & (e <= hi)
    if isinstance(trim, int | float) and not isinstance(trim, bool) and 0 < trim < 0.5:
        return (e >= trim) & (e <= 1.0 - trim)
    raise MatchingError(
        f"trim must be None, 'common_support' or a number in (0, 0.5); got {trim!r}.")


def truncate_weights(w, treated, q, rule: str = "per_arm") -> tuple[np.ndarray, dict]:
    """Cap large weights at the ``q`` quantile (module docstring); returns weights and a report.

    Parameters
    ----------
    w : np.ndarray of shape (n_patients,)
        Weights; zero weights (patients not in the design) are neither used nor changed.
    treated : np.ndarray of shape (n_patients,)
    q : float or None
        Quantile in (0.5, 1), e.g. 0.99; ``None`` for no truncation.
    rule : {"per_arm", "weightit"}
    """
    if q is None:
        return w, {}
    if not (isinstance(q, float | int) and 0.5 < q < 1):
        raise MatchingError(f"truncate must be a quantile in (0.5, 1), e.g. 0.99; got {q!r}.")
    if rule not in TRUNCATE_RULES:
        raise MatchingError(f"truncate_rule must be one of {TRUNCATE_RULES}; got {rule!r}.")
    w = w.copy()
    t = np.asarray(treated, dtype=bool)
    arms = [(name, arm & (w > 0)) for name, arm in (("trial", t), ("control", ~t))]
    # an arm whose weights are all equal is never truncated (both rules; WeightIt's too)
    arms = [(name, pos) for name, pos in arms if pos.sum() >= 2 and np.ptp(w[pos]) > 0]
    report: dict = {"rule": rule, "quantile": q, "note": _TRUNCATE_NOTE[rule], "arms": {}}
    if rule == "weightit" and arms:
        pooled = np.zeros(len(w), dtype=bool)
        for _, pos in arms:
            pooled |= pos
        cap = float(np.quantile(w[pooled], q, method="closest_observation"))  # R type 3
        caps = dict.fromkeys((name for name, _ in arms), cap)
    else:
        caps = {name: float(np.quantile(w[pos], q)) for name, pos in arms}
    for name, pos in arms:
        n = int((w[pos] > caps[name]).sum())
        w[pos] = np.minimum(w[pos], caps[name])
        report["arms"][name] = {"cap": caps[name], "n_truncated": n}
    return w, report


class EntropyBalancer(Estimator):
    """Entropy balancing of the controls to the trial arm (ATT; Hainmueller 2012).

    Parameters
    ----------
    moments : {1, 2}, default=1
        Balance means (1) or means and variances (2) of every column.
    max_iter : int, default=200
    tol : float, default=1e-6
        Largest allowed |weighted control mean - trial mean| in SD units after the fit
        (1e-6 SD is exact balance for any practical purpose).

    Attributes
    ----------
    weights_ : np.ndarray of shape (n_patients,)
        Trial 1; controls positive, summing to the number of controls.
    converged_ : bool
    n_iter_ : int
    max_imbalance_ : float
        Largest absolute standardised moment difference reached.
    """

    _constraints = {  # noqa: RUF012
        "moments": [Interval(int, 1, 2)],
        "max_iter": [Interval(int, 1, None)],
        "tol": [Interval(float, 0, None, closed="neither")],
    }

    def __init__(self, moments: int = 1, *, max_iter: int = 200, tol: float = 1e-6):
        self.moments = moments
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, treated) -> EntropyBalancer:
        """Fit on covariates ``X`` (n_patients, n_features) and boolean ``treated``."""
        check_params(self, self._constraints)
        from scipy.optimize import minimize

        Xa = np.asarray(X, dtype=float)
        t = np.asarray(treated, dtype=bool)
        sd = Xa.std(axis=0)
        keep = sd > 0
        Z = (Xa[:, keep] - Xa[:, keep].mean(axis=0)) / sd[keep]
        if self.moments == 2:
            cont = [j for j in range(Z.shape[1]) if not np.isin(Xa[:, keep][:, j], (0, 1)).all()]
            Z = np.column_stack([Z, Z[:, cont] ** 2]) if cont else Z
        target = Z[t].mean(axis=0)
        C = Z[~t] - target  # the dual: minimise log sum exp(C @ lam)

        def f(lam):
            a = C @ lam
            m = a.max()
            p = np.exp(a - m)
            s = p.sum()
            p /= s
            return m + np.log(s), C.T @ p, p

        def fun(lam):
            v, g, _ = f(lam)
            return v, g

        def hess(lam):
            _, g, p = f(lam)
            return (C * p[:, None]).T @ C - np.outer(g, g)

        res = minimize(fun, np.zeros(C.shape[1]), jac=True, hess=hess, method="trust-exact",
                       options={"maxiter": self.max_iter, "gtol": self.tol * 1e-3})
        _, g, p = f(res.x)
        self.n_iter_ = int(res.nit)
        self.max_imbalance_ = float(np.abs(g).max()) if len(g) else 0.0
        self.converged_ = bool(self.max_imbalance_ <= self.tol)
        if not self.converged_:
            raise MatchingError(
                "Entropy balancing is infeasible or did not converge: the largest standardised "
                f"imbalance left is {self.max_imbalance_:.3g} after {self.n_iter_} iterations. "
                "The trial arm's covariate means are (nearly) outside the range the registry "
                "can reproduce; drop or coarsen covariates (or balance means only: moments 1).")
        w = np.ones(len(t))
        w[~t] = p * (~t).sum()
        self.weights_ = w
        return self


@dataclass(frozen=True, slots=True)
class WeightingOutcome:
    """Weights with the facts to report (trimming, truncation, convergence)."""

    weights: np.ndarray
    details: dict
    messages: list = field(default_factory=list)
    exclusions: list = field(default_factory=list)


def compute_weights(ps, treated, *, kind: str, stabilized: bool = False, trim=None,
                    truncate=None, truncate_rule: str = "per_arm",
                    X: pd.DataFrame | None = None) -> WeightingOutcome:
    """Trim, weight and truncate; used by :func:`matching.match_cohort` (``method="weighting"``)."""
    e = np.asarray(ps, dtype=float)
    t = np.asarray(treated, dtype=bool)
    keep = trim_mask(e, t, trim)
    exclusions, msgs = [], []
    for name, arm in (("trial", t), ("control", ~t)):
        n = int((arm & ~keep).sum())
        if n:
            exclusions.append({"arm": name, "reason": f"trimmed (trim={trim!r})", "n": n})
    if exclusions:
        msgs.append("trimming excluded " + ", ".join(f"{x['n']} {x['arm']}" for x in exclusions)
                    + " patients; the estimand is then the effect in the trimmed population")
    if not (keep & t).any() or not (keep & ~t).any():
        raise MatchingError(f"trim={trim!r} leaves one arm empty.")
    w = np.zeros(len(e))
    details: dict = {"weights": kind, "stabilized": stabilized, "trim": trim}
    if kind == "entropy":
        if X is None:
            raise MatchingError("entropy balancing needs the covariate matrix X.")
        eb = EntropyBalancer().fit(X.to_numpy()[keep], t[keep])  # MatchingError if infeasible
        w[keep] = eb.weights_
        details["entropy"] = {"converged": eb.converged_, "n_iter": eb.n_iter_,
                              "max_standardized_imbalance": eb.max_imbalance_}
    else:
        w[keep] = ps_weights(e[keep], t[keep], kind, stabilized=stabilized)
    w, trunc = truncate_weights(w, t, truncate, truncate_rule)
    if trunc:
        details["truncation"] = trunc
        msgs.append(f"truncation ({truncate_rule}) capped " + (", ".join(
            f"{v['n_truncated']} {k} weights at {v['cap']:.4g}"
            for k, v in trunc["arms"].items()) or "no weights (all equal within each arm)"))
    if not np.isfinite(w).all() or (w < 0).any():
        raise MatchingError("Weights are not finite and non-negative (PS of exactly 0 or 1?).")
    return WeightingOutcome(weights=w, details=details, messages=msgs, exclusions=exclusions)


def run_weighting(inputs: MethodInputs) -> MethodOutcome:
    """``method="weighting"`` of `matching.match_cohort` (options: see ``matching.methods``)."""
    o = inputs.options
    res = compute_weights(inputs.ps, inputs.treated,
                          kind=o["weights"] or default_weights(inputs.estimand),
                          stabilized=o["stabilized"], trim=o["trim"], truncate=o["truncate"],
                          truncate_rule=o["truncate_rule"], X=inputs.X)
    return MethodOutcome(res.weights, np.full(len(inputs.ps), -1), res.details, res.messages,
                         res.exclusions)
