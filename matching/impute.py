"""Multiple imputation of missing covariates by chained equations (MICE), outcome-blind.

:class:`ChainedImputer` fills the missing values of a DataFrame ``m`` times, each completed data
set from its own chain (van Buuren's fully conditional specification, as R's ``mice``): the
incomplete columns are visited left to right, ``max_iter`` times; each visit fits the column on
every other column (current values) over the rows where it is observed, draws the model's
parameters from their approximate posterior and imputes the missing rows from the drawn model.
Types are respected:

========================  =====================================================================
column                    imputation model (R ``mice`` method)
========================  =====================================================================
numeric                   ``"pmm"`` (default): predictive mean matching, 5 donors, type-1 match
                          (observed rows predicted with the estimate, missing rows with the
                          draw), so imputed values are observed ones (integers stay integers);
                          ``"norm"``: Bayesian linear regression with drawn (beta, sigma)
bool / 2 levels           logistic regression with drawn coefficients (``"logreg"``)
string / category, > 2    multinomial logistic regression with drawn coefficients
                          (``"polyreg"``)
========================  =====================================================================

The imputer sees only the columns it is handed. The design stage hands it the design covariates,
the auxiliary variables named in the spec and the arm indicator, never an outcome column
(Rubin's outcome-free design principle); including the outcome is a separate, documented
sensitivity option of the caller, run after the design is locked.

Each chain draws from its own ``numpy.random.SeedSequence`` child of ``random_state``, so the
k-th completed data set does not depend on ``n_imputations`` nor on how the chains are run.
The imputation is validated by simulation (``benchmarks``), not by reproducing ``mice``'s draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from ._validation import SEED, Interval, check_params, options
from .base import Estimator
from .errors import MatchingError

NUMERIC_METHODS = ("pmm", "norm")
_RIDGE = 1e-5  # mice's .norm.fix ridge: xtx + diag(xtx) * 1e-5
_LOGIT_PENALTY = 1e-4  # per-row L2 on standardised slopes: keeps separated fits finite


def _seed_sequence(random_state) -> np.random.SeedSequence:
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    return np.random.SeedSequence(random_state)


def _column_kind(s: pd.Series) -> str:
    if ptypes.is_bool_dtype(s) or (s.dtype == object and s.dropna().map(type).eq(bool).all()
                                   and s.notna().any()):
        return "bool"
    if isinstance(s.dtype, pd.CategoricalDtype) or ptypes.is_object_dtype(s) or (
            ptypes.is_string_dtype(s)):
        return "category"
    if ptypes.is_numeric_dtype(s):
        return "numeric"
    raise MatchingError(f"Column {s.name!r} has dtype {s.dtype}, which is neither numeric, "
                        "boolean nor categorical (string/category); it cannot be imputed.")


def _levels(s: pd.Series) -> list:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return list(s.cat.categories)
    return sorted(pd.unique(s.dropna()), key=lambda v: (str(type(v)), v))


# --------------------------------------------------------------------------- model draws
def _norm_draw(X, y, rng):
    """Bayesian linear regression (mice ``.norm.draw``): estimate, drawn beta, drawn sigma."""
    xtx = X.T @ X
    V = np.linalg.inv(xtx + np.diag(np.diag(xtx)) * _RIDGE)
    coef = V @ (X.T @ y)
    resid = y - X @ coef
    df = max(X.shape[0] - X.shape[1], 1)
    sigma = float(np.sqrt(resid @ resid / rng.chisquare(df)))
    beta = coef + sigma * (np.linalg.cholesky((V + V.T) / 2) @ rng.standard_normal(len(coef)))
    return coef, beta, sigma


def _pmm(X_obs, y_obs, X_mis, rng, n_donors):
    """Predictive mean matching: each missing row takes the value of one of its nearest donors."""
    coef, beta, _ = _norm_draw(X_obs, y_obs, rng)
    yhat_obs, yhat_mis = X_obs @ coef, X_mis @ beta
    k = min(n_donors, len(y_obs))
    out = np.empty(len(yhat_mis))
    order = np.argsort(yhat_obs, kind="stable")
    sorted_hat = yhat_obs[order]
    for i, target in enumerate(yhat_mis):
        # the k nearest predicted means lie in a window of 2k around the insertion point
        pos = int(np.searchsorted(sorted_hat, target))
        lo, hi = max(pos - k, 0), min(pos + k, len(sorted_hat))
        window = order[lo:hi]
        dist = np.abs(yhat_obs[window] - target)
        donors = window[np.argsort(dist, kind="stable")[:k]]
        out[i] = y_obs[donors[rng.integers(len(donors))]]
    return out


def _norm(X_obs, y_obs, X_mis, rng, n_donors):
    _, beta, sigma = _norm_draw(X_obs, y_obs, rng)
    return X_mis @ beta + sigma * rng.standard_normal(X_mis.shape[0])


def _softmax(eta):
    """Class probabilities from (n, K-1) linear predictors, reference class first."""
    full = np.column_stack([np.zeros(eta.shape[0]), eta])
    full -= full.max(axis=1, keepdims=True)
    p = np.exp(full)
    return p / p.sum(axis=1, keepdims=True)


def _multinomial_fit(X, codes, n_classes, max_iter=50, tol=1e-8):
    """Penalised Newton fit of a multinomial logit; returns (coef (p, K-1), covariance)."""
    n, p = X.shape
    k = n_classes - 1
    Y = np.zeros((n, n_classes))
    Y[np.arange(n), codes] = 1.0
    pen = np.full(p, _LOGIT_PENALTY * n)
    pen[0] = 0.0  # no penalty on the intercept
    P = np.kron(np.eye(k), np.diag(pen))
    B = np.zeros((p, k))
    H = P
    for _ in range(max_iter):
        pr = _softmax(X @ B)
        grad = (X.T @ (Y[:, 1:] - pr[:, 1:])).T.reshape(-1) - P @ B.T.reshape(-1)
        H = P.copy()
        for a in range(k):
            for b in range(a, k):
                w = pr[:, a + 1] * ((a == b) - pr[:, b + 1])
                block = (X * w[:, None]).T @ X
                H[a * p:(a + 1) * p, b * p:(b + 1) * p] += block
                if a != b:
                    H[b * p:(b + 1) * p, a * p:(a + 1) * p] += block
        step = np.linalg.solve(H, grad)
        B = B + step.reshape(k, p).T
        if np.max(np.abs(step)) < tol:
            break
    return B, np.linalg.inv(H)


def _categorical_draw(X_obs, codes_obs, X_mis, n_classes, rng):
    """Logistic (2 classes) or multinomial regression with drawn coefficients; sampled codes."""
    B, cov = _multinomial_fit(X_obs, codes_obs, n_classes)
    cov = (cov + cov.T) / 2
    draw = B.T.reshape(-1) + np.linalg.cholesky(cov) @ rng.standard_normal(cov.shape[0])
    pr = _softmax(X_mis @ draw.reshape(n_classes - 1, X_obs.shape[1]).T)
    u = rng.random(X_mis.shape[0])[:, None]
    return np.minimum((u > np.cumsum(pr, axis=1)).sum(axis=1), n_classes - 1)


# --------------------------------------------------------------------------- the estimator
class ChainedImputer(Estimator):
    """Multiple imputation by chained equations (R ``mice``), ``n_imputations`` completed sets.

    Parameters
    ----------
    n_imputations : int, default=20
        Number of completed data sets ``m`` (at least 2: Rubin's rules need a between variance).
    max_iter : int, default=10
        Iterations of each chain (R ``mice(maxit = )``; mice's default is 5).
    numeric : {"pmm", "norm"}, default="pmm"
        Model for numeric columns: predictive mean matching or Bayesian linear regression.
    n_donors : int, default=5
        Donors of predictive mean matching (R ``mice(donors = )``).
    random_state : int, Generator or None
        Seed of the ``SeedSequence`` whose k-th child drives chain k.

    Attributes
    ----------
    completed_ : list of pd.DataFrame
        The ``n_imputations`` completed frames (same index, columns and dtypes as ``X``, with
        integer columns that had missing values returned as float).
    missing_ : pd.DataFrame
        Bool mask of the values that were missing in ``X``.
    n_missing_ : dict
        Column -> number of imputed values (only columns with missing values).
    methods_ : dict
        Column -> imputation model used (``"pmm"``, ``"norm"``, ``"logreg"``, ``"polyreg"``).
    chain_means_ : dict
        Column -> array of shape (n_imputations, max_iter): mean of the imputed values after each
        iteration (the trace ``plot(imp)`` shows in R), for convergence checks.

    Notes
    -----
    The predictors of each conditional model are all other columns: numeric ones standardised,
    categorical ones as non-reference dummies. Chains start from random draws of the observed
    values, as mice does. Logistic and multinomial fits carry a tiny L2 penalty
    (``1e-4 * n`` on standardised slopes) so that separation yields finite draws, where mice
    augments the data with pseudo-observations for the same purpose.

    References
    ----------
    van Buuren S, Groothuis-Oudshoorn K (2011). mice: Multivariate Imputation by Chained
    Equations in R. J Stat Softw 45(3). Rubin DB (1987). Multiple Imputation for Nonresponse in
    Surveys. Wiley.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"age": rng.normal(60, 8, 200), "sex": rng.choice(["f", "m"], 200)})
    >>> df.loc[:30, "age"] = np.nan
    >>> imp = ChainedImputer(3, random_state=1).fit(df)
    >>> [int(c["age"].isna().sum()) for c in imp.completed_], imp.n_missing_
    ([0, 0, 0], {'age': 31})
    """

    _constraints = {  # noqa: RUF012 - class-level table, read only
        "n_imputations": [Interval(int, 2, None)],
        "max_iter": [Interval(int, 1, None)],
        "numeric": [options(*NUMERIC_METHODS)],
        "n_donors": [Interval(int, 1, None)],
        "random_state": [SEED],
    }

    def __init__(self, n_imputations: int = 20, *, max_iter: int = 10, numeric: str = "pmm",
                 n_donors: int = 5, random_state=None):
        self.n_imputations = n_imputations
        self.max_iter = max_iter
        self.numeric = numeric
        self.n_donors = n_donors
        self.random_state = random_state

    def fit(self, X: pd.DataFrame) -> ChainedImputer:
        """Impute every missing value of ``X`` ``n_imputations`` times; ``X`` is not modified.

        Parameters
        ----------
        X : pd.DataFrame of shape (n_patients, n_columns)
            Design covariates, auxiliary variables and the arm indicator. Fully observed
            columns are predictors only.

        Returns
        -------
        self
        """
        check_params(self, self._constraints)
        if not isinstance(X, pd.DataFrame):
            raise MatchingError(f"X must be a pandas DataFrame; got {type(X).__name__}.")
        missing = X.isna()
        empty = [c for c in X.columns if missing[c].all()]
        if empty:
            raise MatchingError(f"Columns {empty} have no observed value; they cannot be imputed.")
        kinds = {c: _column_kind(X[c]) for c in X.columns}
        levels = {c: _levels(X[c]) for c in X.columns if kinds[c] != "numeric"}
        codes = {c: self._encode(X[c], kinds[c], levels.get(c)) for c in X.columns}
        targets = [c for c in X.columns if missing[c].any()]
        self.methods_ = {c: self._method(kinds[c], len(levels.get(c, ()))) for c in targets}
        self.n_missing_ = {c: int(missing[c].sum()) for c in targets}
        self.missing_ = missing
        seeds = _seed_sequence(self.random_state).spawn(self.n_imputations)
        self.chain_means_ = {c: np.zeros((self.n_imputations, self.max_iter)) for c in targets}
        self.completed_ = []
        for i, ss in enumerate(seeds):
            values = self._chain(codes, missing, targets, kinds, levels,
                                 np.random.default_rng(ss), i)
            self.completed_.append(self._decode(X, values, kinds, levels))
        return self

    # --- encoding --------------------------------------------------------------------------
    @staticmethod
    def _encode(s: pd.Series, kind: str, levels) -> np.ndarray:
        if kind == "numeric":
            return s.to_numpy(dtype=float, na_value=np.nan)
        codes = pd.Categorical(s, categories=levels).codes.astype(float)
        codes[codes < 0] = np.nan
        return codes

    def _method(self, kind: str, n_levels: int) -> str:
        if kind == "numeric":
            return self.numeric
        return "logreg" if n_levels <= 2 else "polyreg"

    @staticmethod
    def _decode(X: pd.DataFrame, values: dict, kinds: dict, levels: dict) -> pd.DataFrame:
        out = {}
        for c in X.columns:
            v = values[c]
            if kinds[c] == "numeric":
                s = pd.Series(v, index=X.index, name=c)
                if not X[c].isna().any():
                    s = s.astype(X[c].dtype)
            else:
                lv = np.asarray(levels[c], dtype=object)
                s = pd.Series(lv[v.astype(int)], index=X.index, name=c)
                if isinstance(X[c].dtype, pd.CategoricalDtype):
                    s = s.astype(X[c].dtype)
                elif kinds[c] == "bool":
                    s = s.astype(bool)
            out[c] = s
        return pd.DataFrame(out, index=X.index)[list(X.columns)]

    # --- one chain -------------------------------------------------------------------------
    def _chain(self, codes, missing, targets, kinds, levels, rng, chain) -> dict:
        values = {c: v.copy() for c, v in codes.items()}
        for c in targets:  # start: random draws from the observed values (mice's default)
            obs = values[c][~missing[c].to_numpy()]
            values[c][missing[c].to_numpy()] = rng.choice(obs, int(missing[c].sum()))
        for it in range(self.max_iter):
            for c in targets:
                mis = missing[c].to_numpy()
                Xp = _predictors(values, kinds, levels, exclude=c)
                y = values[c]
                if self.methods_[c] in NUMERIC_METHODS:
                    draw = _pmm if self.methods_[c] == "pmm" else _norm
                    y[mis] = draw(Xp[~mis], y[~mis], Xp[mis], rng, self.n_donors)
                else:
                    n_classes = len(levels[c])
                    obs_codes = y[~mis].astype(int)
                    if len(np.unique(obs_codes)) < 2:
                        y[mis] = obs_codes[0]  # a single observed level: nothing to model
                    else:
                        y[mis] = _categorical_draw(Xp[~mis], obs_codes, Xp[mis], n_classes, rng)
                self.chain_means_[c][chain, it] = float(np.mean(y[mis]))
        return values


def _predictors(values: dict, kinds: dict, levels: dict, exclude: str) -> np.ndarray:
    """Intercept, standardised numeric columns and non-reference dummies of the others."""
    cols = [np.ones(len(next(iter(values.values()))))]
    for c, v in values.items():
        if c == exclude:
            continue
        if kinds[c] == "numeric":
            sd = v.std()
            cols.append((v - v.mean()) / sd if sd > 0 else np.zeros_like(v))
        else:
            cols.extend((v == j).astype(float) for j in range(1, len(levels[c])))
    return np.column_stack(cols)

