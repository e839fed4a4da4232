"""Optimal 1:k matching on a 1-D distance: minimum total |d_trial - d_control|.

The assignment problem is solved with :func:`scipy.optimize.linear_sum_assignment` (each trial
unit's row repeated k times). Pairs beyond the caliper get a prohibitive cost, so the solution
first maximises the number of within-caliper pairs and then minimises their total distance;
trial units left with only prohibited pairs are unmatched. Pairs never pair across ``exact``
strata (each stratum is solved on its own).

Only the ``k * n_trial`` nearest controls of each trial unit can appear in an optimal solution
(with fewer rows than that, some nearer control is always free to swap in), so the cost matrix
is built on the union of those windows in the sorted distance. A matrix above ``max_cells``
raises :class:`MatchingError` (use ``method="nearest"`` for very large registries).
"""

from __future__ import annotations

import numpy as np

from ._method import MethodInputs, MethodOutcome, unmatched_trial
from ._validation import BOOL, NONE, Interval, check_params
from .base import Estimator
from .errors import MatchingError
from .nearest import _caliper_abs, _check_inputs, _subclasses, matchit_weights


def _candidate_controls(dt: np.ndarray, dc: np.ndarray, n_keep: int) -> np.ndarray:
    """Indices into ``dc`` of the ``n_keep`` nearest controls of any treated unit."""
    order = np.argsort(dc)
    s = dc[order]
    at = np.searchsorted(s, dt)
    lo = np.clip(at - n_keep, 0, len(s))
    hi = np.clip(at + n_keep, 0, len(s))
    mark = np.zeros(len(s) + 1, dtype=np.int64)
    np.add.at(mark, lo, 1)
    np.add.at(mark, hi, -1)
    return np.sort(order[np.cumsum(mark)[:-1] > 0])


class OptimalMatcher(Estimator):
    """Optimal k:1 matching without replacement (minimum total distance).

    Parameters
    ----------
    ratio : int, default=1
    caliper : float or None, default=None
        Maximum distance, in SDs of the distance if ``std_caliper``.
    std_caliper : bool, default=True
    max_cells : int, default=30_000_000
        Largest cost matrix (rows x candidate controls) accepted.

    Attributes
    ----------
    matches_, weights_, match_id_, caliper_abs_, n_matched_treated_
        As :class:`~matching.nearest.NearestMatcher`.
    total_distance_ : float
        Sum of |d_trial - d_control| over all matched pairs.
    """

    _constraints = {  # noqa: RUF012
        "ratio": [Interval(int, 1, None)],
        "caliper": [Interval(float, 0, None, closed="neither"), NONE],
        "std_caliper": [BOOL],
        "max_cells": [Interval(int, 1, None)],
    }

    def __init__(self, ratio: int = 1, *, caliper: float | None = None, std_caliper: bool = True,
                 max_cells: int = 30_000_000):
        self.ratio = ratio
        self.caliper = caliper
        self.std_caliper = std_caliper
        self.max_cells = max_cells

    def fit(self, distance, treated, *, exact=None) -> OptimalMatcher:
        """Match on ``distance`` (n_units,) for boolean ``treated``; ``exact``: stratum codes."""
        check_params(self, self._constraints)
        d, t, codes = _check_inputs(distance, treated, exact)
        self.caliper_abs_ = _caliper_abs(d, self.caliper, self.std_caliper)
        matches: dict[int, list[int]] = {int(i): [] for i in np.flatnonzero(t)}
        total = 0.0
        for s in np.unique(codes[t]):
            tr = np.flatnonzero(t & (codes == s))
            co = np.flatnonzero(~t & (codes == s))
            if len(co) == 0:
                continue
            total += self._solve(d, tr, co, matches)
        self.matches_ = matches
        self.total_distance_ = float(total)
        self.weights_ = matchit_weights(matches, len(d), replace=False)
        self.match_id_ = _subclasses(matches, len(d), replace=False)
        self.n_matched_treated_ = sum(1 for v in matches.values() if v)
        return self

    def _solve(self, d, tr, co, matches) -> float:
        from scipy.optimize import linear_sum_assignment

        k = self.ratio
        co = co[_candidate_controls(d[tr], d[co], k * len(tr))]
        if np.isfinite(self.caliper_abs_):  # controls beyond every trial unit's caliper
            st = np.sort(d[tr])
            j = np.clip(np.searchsorted(st, d[co]), 1, len(st) - 1) if len(st) > 1 else 0
            near = np.minimum(np.abs(d[co] - st[j - 1 if len(st) > 1 else 0]),
                              np.abs(d[co] - st[j]))
            co = co[near <= self.caliper_abs_]
            if len(co) == 0:
                return 0.0
        rows = np.repeat(tr, k)
        if len(rows) * len(co) > self.max_cells:
            raise MatchingError(
                f"Optimal matching would need a {len(rows)} x {len(co)} cost matrix, above "
                f"max_cells={self.max_cells}; use method nearest for a registry this large.")
        cost = np.abs(d[rows][:, None] - d[co][None, :])
        allowed = cost <= self.caliper_abs_
        big = (float(cost[allowed].sum()) + 1.0) if allowed.any() else 1.0
        cost = np.where(allowed, cost, big)
        r, c = linear_sum_assignment(cost)
        ok = allowed[r, c]
        total = 0.0
        for i, j in zip(r[ok], c[ok], strict=True):
            matches[int(rows[i])].append(int(co[j]))
            total += abs(d[rows[i]] - d[co[j]])
        return total


def run_optimal(inputs: MethodInputs) -> MethodOutcome:
    """``method="optimal"`` of `matching.match_cohort` (options: see ``matching.methods``)."""
    o = inputs.options
    m = OptimalMatcher(o["ratio"], caliper=o["caliper"]).fit(inputs.distance, inputs.treated,
                                                              exact=inputs.exact)
    excl = unmatched_trial(inputs.treated, m.weights_, "no control within the caliper")
    msgs = [f"{excl[0]['n']} trial patients got no match within the caliper"] if excl else []
    return MethodOutcome(m.weights_, m.match_id_, {"caliper_abs": m.caliper_abs_,
                                                   "total_distance": m.total_distance_,
                                                   "n_matched_trial": m.n_matched_treated_},
                         msgs, excl)
