"""Propensity-score models: P(trial | covariates).

``logistic`` is the unpenalised maximum-likelihood fit of R's ``glm(treat ~ ., binomial)``.
We run the IRLS iteration ourselves (numpy, one p x p solve per step) because it (a) follows
``glm.fit`` step for step: same start ``mu = (y + 0.5) / 2``, same convergence rule
``|dev - dev_old| / (|dev| + 0.1) < 1e-8``, same 25-iteration cap and the same clamping of the
linear predictor at +-30, so even under separation the scores agree with R's; and (b) is fast
(about 0.1 s per iteration on 1,000,000 x 10). scikit-learn's default ``LogisticRegression`` is
L2-penalised (C=1), which is not R's estimate. ``logistic_l2`` (C by cross-validation) and
``gbm`` (``HistGradientBoostingClassifier``) are offered for users who want them.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pandas as pd

from ._validation import SEED, Interval, check_params, check_random_state
from .base import Estimator
from .errors import MatchingConvergenceWarning, MatchingError, SeparationWarning

_ETA_MAX = 30.0  # R's binomial logit linkinv/mu.eta clamp (THRESH in family.c)
_EPS = np.finfo(float).eps


def _check_xy(X, y) -> tuple[np.ndarray, np.ndarray, list[str]]:
    names = list(X.columns) if isinstance(X, pd.DataFrame) else [f"x{j}" for j in
                                                                   range(np.shape(X)[1])]
    Xa = X.to_numpy(dtype=float) if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=float)
    ya = np.asarray(y)
    if ya.dtype != bool:
        if not np.isin(ya, (0, 1)).all():
            raise MatchingError("The treatment indicator must be boolean or 0/1.")
        ya = ya.astype(bool)
    if Xa.ndim != 2 or Xa.shape[0] != ya.shape[0]:
        raise MatchingError(f"X has shape {Xa.shape} but the treatment has {ya.shape[0]} rows.")
    if not np.isfinite(Xa).all():
        bad = [names[j] for j in np.where(~np.isfinite(Xa).all(axis=0))[0]]
        raise MatchingError(f"Covariates {bad} have missing or infinite values.")
    if ya.all() or not ya.any():
        raise MatchingError("Both arms need at least one patient to fit a propensity score.")
    return Xa, ya.astype(float), names


def _linkinv(eta: np.ndarray) -> np.ndarray:
    t = np.exp(np.clip(eta, -_ETA_MAX, _ETA_MAX))
    t = np.where(eta < -_ETA_MAX, _EPS, np.where(eta > _ETA_MAX, 1 / _EPS, t))
    return t / (1.0 + t)


def _mu_eta(eta: np.ndarray) -> np.ndarray:
    e = np.exp(np.clip(eta, -_ETA_MAX, _ETA_MAX))
    out = e / (1.0 + e) ** 2
    return np.where(np.abs(eta) > _ETA_MAX, _EPS, out)


def _deviance(y: np.ndarray, mu: np.ndarray) -> float:
    with np.errstate(divide="ignore"):
        ll = np.where(y > 0, np.log(mu), np.log1p(-mu))
    return float(-2.0 * ll.sum())


def _aliased_columns(G: np.ndarray, tol: float = 1e-7) -> list[int]:
    """Columns of a Gram matrix ``G`` that are linear combinations of earlier ones.

    R's pivoted QR gives such columns an ``NA`` coefficient; we do the same.
    """
    keep: list[int] = []
    dropped = []
    for j in range(G.shape[0]):
        trial = [*keep, j]
        sub = G[np.ix_(trial, trial)]
        d = np.sqrt(np.diag(sub))
        d[d == 0] = 1.0
        ev = np.linalg.eigvalsh(sub / np.outer(d, d))
        if ev.min() > tol * max(ev.max(), 1.0):
            keep.append(j)
        else:
            dropped.append(j)
    return dropped


def _standardised_transpose(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Zt`` of shape (p + 1, n): a row of ones, then the centred/scaled columns of X.

    Rows are contiguous, which makes the per-iteration products 3-4x faster than on (n, p).
    The scale only conditions X'WX (any positive scale gives the same iterates), so the
    one-pass ``E[x^2] - E[x]^2`` is good enough for it.
    """
    Xt = np.ascontiguousarray(X.T)  # free for a DataFrame's F-ordered float block
    n = Xt.shape[1]
    centre = Xt.mean(axis=1)
    var = np.einsum("ij,ij->i", Xt, Xt) / n - centre**2
    scale = np.sqrt(np.maximum(var, 0.0))
    scale[~(scale > 1e-12 * (np.abs(centre) + 1.0))] = 1.0
    Zt = np.empty((Xt.shape[0] + 1, n))
    Zt[0] = 1.0
    np.subtract(Xt, centre[:, None], out=Zt[1:])
    Zt[1:] /= scale[:, None]
    return Zt, centre, scale


def _linear_predictor(Zt: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """``beta @ Zt`` summed feature by feature with elementwise ufuncs.

    BLAS ``gemv`` may round identical rows differently (vector body vs tail), which would
    break the exact ties between patients with identical covariates that matching relies on.
    """
    eta = beta[0] * Zt[0]
    for j in range(1, len(beta)):
        eta += beta[j] * Zt[j]
    return eta


def _newton(Zt, y, beta, eta, mu, max_iter, tol):
    """IRLS steps of R's ``glm.fit`` from (eta, mu).

    Returns beta, eta, mu, iterations, converged, deviance.
    """
    dev_old = _deviance(y, mu)
    converged, dev, it = False, dev_old, 0
    for it in range(1, max_iter + 1):  # noqa: B007 - n_iter is reported
        me = _mu_eta(eta)
        var = mu * (1.0 - mu)
        z = eta + (y - mu) / me
        sw = me / np.sqrt(var)  # sqrt of the working weight me^2 / var
        S = Zt * sw
        A = S @ S.T
        b = S @ (sw * z)
        try:
            c = np.linalg.cholesky(A)
            beta = np.linalg.solve(c.T, np.linalg.solve(c, b))
        except np.linalg.LinAlgError:
            beta = np.linalg.lstsq(A, b, rcond=None)[0]
        eta = _linear_predictor(Zt, beta)
        mu = _linkinv(eta)
        dev = _deviance(y, mu)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < tol:
            converged = True
            break
        dev_old = dev
    return beta, eta, mu, it, converged, dev


_WARM_START_ROWS = 200_000  # above this many rows, start from a subsample fit
_WARM_SAMPLE_CONTROLS = 50_000  # controls in that subsample (all trial rows are kept)


def _irls(Zt: np.ndarray, centre, scale, y: np.ndarray, max_iter: int, tol: float):
    """R ``glm.fit`` (binomial, logit) on centred/scaled columns; returns beta on the input scale.

    Newton/IRLS is affine-equivariant, so centring and scaling change no iterate (in exact
    arithmetic) and keep X'WX well conditioned (LaLonde's re74 is in the 10,000s).

    Up to 200,000 rows the iteration starts where R's does (``mu = (y + 0.5) / 2``), so
    the scores agree with R's to ~1e-15. Above, it starts from the fit on all trial patients
    and a random 1-in-f sample of 50,000 controls, whose intercept is shifted by ``log f``
    (case-control sampling leaves the slopes unbiased): the same MLE in 2-3 instead of ~9
    passes over a million rows, agreeing with R's iterate to ~1e-9 (R's own stopping error),
    so a control whose two candidate distances differ by less than that may pair differently.
    """
    mu = (y + 0.5) / 2.0
    eta = np.log(mu / (1.0 - mu))
    beta = np.zeros(Zt.shape[0])
    n_ctrl = int((y == 0).sum())
    if len(y) > _WARM_START_ROWS and n_ctrl > 2 * _WARM_SAMPLE_CONTROLS:
        f = _WARM_SAMPLE_CONTROLS / n_ctrl
        rng = np.random.default_rng(0)  # fixed: only the starting point depends on it
        sub = (y > 0) | (rng.random(len(y)) < f)
        ys = y[sub]
        ms = (ys + 0.5) / 2.0
        bs, *_ = _newton(Zt[:, sub], ys, beta, np.log(ms / (1.0 - ms)), ms, max_iter, tol)
        bs[0] += np.log(f)
        if np.isfinite(bs).all() and np.abs(bs).max() < _ETA_MAX:
            beta = bs
            eta = _linear_predictor(Zt, beta)
            mu = _linkinv(eta)
    beta, eta, mu, it, converged, dev = _newton(Zt, y, beta, eta, mu, max_iter, tol)
    slope = beta[1:] / scale
    intercept = beta[0] - float(np.sum(slope * centre))
    return intercept, slope, mu, eta, it, converged, dev


class LogisticPropensity(Estimator):
    """Unpenalised logistic-regression propensity score (R ``glm(binomial)``).

    Parameters
    ----------
    max_iter : int, default=25
        IRLS iteration cap (R's ``glm.control(maxit = 25)``).
    tol : float, default=1e-8
        Relative-deviance convergence tolerance (R's ``epsilon``).

    Attributes
    ----------
    coef_ : pd.Series
        ``(Intercept)`` and one coefficient per column (log-odds per unit); aliased columns
        (exact linear combinations of others) get NaN, as in R.
    ps_ : np.ndarray of shape (n_patients,)
        Fitted probability of being in the trial arm.
    linear_predictor_ : np.ndarray of shape (n_patients,)
        Fitted log-odds (MatchIt's ``link = "linear.logit"`` distance).
    n_iter_, converged_, deviance_ : int, bool, float
    separation_ : list of str
        Columns (levels) that separate the arms, with what that does to the PS.
    """

    _constraints = {  # noqa: RUF012
        "max_iter": [Interval(int, 1, None)],
        "tol": [Interval(float, 0, None, closed="neither")],
    }

    def __init__(self, max_iter: int = 25, *, tol: float = 1e-8):
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, y) -> LogisticPropensity:
        """Fit on covariates ``X`` (n_patients, n_features) and trial indicator ``y``."""
        check_params(self, self._constraints)
        Xa, ya, names = _check_xy(X, y)
        self.separation_ = _separation_report(Xa, ya.astype(bool), names)
        Zt, centre, scale = _standardised_transpose(Xa)
        dropped = [j - 1 for j in _aliased_columns(Zt @ Zt.T) if j > 0]
        keep = [j for j in range(Xa.shape[1]) if j not in dropped]
        self.aliased_ = [names[j] for j in dropped]
        if dropped:
            Zt = Zt[[0, *(j + 1 for j in keep)]]
        a, slope, mu, eta, it, conv, dev = _irls(Zt, centre[keep], scale[keep], ya,
                                                 self.max_iter, self.tol)
        coef = np.full(Xa.shape[1], np.nan)
        coef[keep] = slope
        self.coef_ = pd.Series([a, *coef], index=["(Intercept)", *names], dtype=float)
        self.ps_ = mu
        self.linear_predictor_ = eta
        self.n_iter_, self.converged_, self.deviance_ = it, conv, dev
        self.feature_names_in_ = np.asarray(names, dtype=object)
        if not conv:
            warnings.warn(f"IRLS did not converge in {it} iterations (as R's glm would warn); "
                          "usually a sign of separation.", MatchingConvergenceWarning,
                          stacklevel=2)
        boundary = (mu < 10 * _EPS) | (mu > 1 - 10 * _EPS)
        if boundary.any():
            self.separation_.append(
                f"fitted probabilities numerically 0 or 1 for {int(boundary.sum())} patients")
        for msg in self.separation_:
            warnings.warn(msg, SeparationWarning, stacklevel=2)
        return self


def _separation_report(X: np.ndarray, t: np.ndarray, names: list[str]) -> list[str]:
    """0/1 columns one arm never (or always) has: the MLE of their coefficient is infinite."""
    out = []
    for j, name in enumerate(names):
        x = X[:, j]
        if not np.isin(x, (0.0, 1.0)).all():
            continue
        for val, word in ((1.0, "has"), (0.0, "lacks")):
            in_t, in_c = (x[t] == val).sum(), (x[~t] == val).sum()
            if in_t == 0 and in_c > 0:
                out.append(
                    f"separation: no trial patient {word} {name} ({int(in_c)} registry patients "
                    f"do); its coefficient diverges and those {int(in_c)} registry patients get "
                    "a PS of ~0 (they cannot be matched and get ~0 ATT weight)")
            elif in_c == 0 and in_t > 0:
                out.append(
                    f"separation: no registry patient {word} {name} ({int(in_t)} trial patients "
                    f"do); its coefficient diverges and those {int(in_t)} trial patients get a PS "
                    "of ~1 (no comparable registry patient: they cannot be matched)")
    return out


class L2LogisticPropensity(Estimator):
    """L2-penalised logistic PS on standardised covariates, C chosen by K-fold CV (log loss).

    Parameters
    ----------
    Cs : int, default=10
        Number of inverse-penalty values on a log grid (``LogisticRegressionCV``).
    cv : int, default=5
        Number of folds (stratified).
    random_state : int, Generator or None
        Seeds the fold shuffling.
    """

    _constraints = {  # noqa: RUF012
        "Cs": [Interval(int, 1, None)],
        "cv": [Interval(int, 2, None)],
        "random_state": [SEED],
    }

    def __init__(self, Cs: int = 10, *, cv: int = 5, random_state=None):
        self.Cs = Cs
        self.cv = cv
        self.random_state = random_state

    def fit(self, X, y) -> L2LogisticPropensity:
        check_params(self, self._constraints)
        Xa, ya, names = _check_xy(X, y)
        from sklearn.linear_model import LogisticRegressionCV
        from sklearn.model_selection import StratifiedKFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        seed = int(check_random_state(self.random_state).integers(2**31 - 1))
        folds = StratifiedKFold(n_splits=self.cv, shuffle=True, random_state=seed)
        model = make_pipeline(StandardScaler(), LogisticRegressionCV(
            Cs=self.Cs, cv=folds, scoring="neg_log_loss", max_iter=1000,
            **_l2_kwargs(LogisticRegressionCV)))
        model.fit(Xa, ya.astype(int))
        self.model_ = model
        self.C_ = float(np.ravel(model[-1].C_)[0])
        self.ps_ = model.predict_proba(Xa)[:, 1]
        self.linear_predictor_ = np.log(self.ps_ / (1 - self.ps_))
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.separation_ = []
        return self


def _l2_kwargs(cls) -> dict:
    """Pure-L2 arguments without deprecation warnings across scikit-learn 1.4-1.9+."""
    params = inspect.signature(cls).parameters
    if params["l1_ratios"].default == "warn":  # 1.8+: penalty deprecated, L2 = l1_ratios (0,)
        out = {"l1_ratios": (0.0,)}
        if "use_legacy_attributes" in params:
            out["use_legacy_attributes"] = False
        return out
    return {"penalty": "l2"}


class GBMPropensity(Estimator):
    """Gradient-boosted trees PS (``HistGradientBoostingClassifier``).

    Parameters
    ----------
    max_iter : int, default=200
        Boosting iterations.
    learning_rate : float, default=0.05
    random_state : int, Generator or None
    """

    _constraints = {  # noqa: RUF012
        "max_iter": [Interval(int, 1, None)],
        "learning_rate": [Interval(float, 0, None, closed="neither")],
        "random_state": [SEED],
    }

    def __init__(self, max_iter: int = 200, *, learning_rate: float = 0.05, random_state=None):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.random_state = random_state

    def fit(self, X, y) -> GBMPropensity:
        check_params(self, self._constraints)
        Xa, ya, names = _check_xy(X, y)
        from sklearn.ensemble import HistGradientBoostingClassifier

        seed = int(check_random_state(self.random_state).integers(2**31 - 1))
        model = HistGradientBoostingClassifier(max_iter=self.max_iter,
                                               learning_rate=self.learning_rate,
                                               random_state=seed)
        model.fit(Xa, ya.astype(int))
        self.model_ = model
        ps = model.predict_proba(Xa)[:, 1]
        self.ps_ = np.clip(ps, 1e-12, 1 - 1e-12)  # finite logits for calipers
        self.linear_predictor_ = np.log(self.ps_ / (1 - self.ps_))
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.separation_ = []
        return self


PS_MODELS = {
    "logistic": LogisticPropensity,
    "logistic_l2": L2LogisticPropensity,
    "gbm": GBMPropensity,
}
