"""Piecewise-constant hazard on a visit grid, fitted to interval-censored data.

The model of the harmonised PFS estimate (`reports.alignment_versions`) for where in its
interval a progression lies. The harmonised estimand reads every progression at the first grid
visit on or after it, so only the probability of each grid cell matters; this model leaves
those free (one hazard per grid cell, a nonparametric discrete-time model on the grid) and
makes one stated assumption: **the hazard is constant within a grid cell**, which decides how
an interval that straddles a grid visit is shared between the cells it overlaps.

Why not the Turnbull NPMLE (`reports.turnbull`): when the registry's first scan comes after
the first grid visit (8-16 weeks against 6), the arm's distribution inside ``(0, first scan]``
is not identified by the data; the NPMLE then puts the mass of those intervals on the few
support points inside them, the exact times of early deaths and clinical progressions (a
frailer group), and over-states early progression (benchmarks/README.md, "Endpoint
alignment", `benchmarks/alignment_identification.py`: F(6 weeks) 0.152 against the truth
0.113, log HR bias of the control side -0.018; this model: 0.139 and -0.006).

Data as R's ``Surv(left, right, type = "interval2")``: ``left == right`` exact (a death),
``right`` NaN right-censored at ``left``, ``left < right`` an event in ``(left, right]``.
Fitted by weighted maximum likelihood (L-BFGS-B on the log hazards, analytic gradient). With
one piece (a grid wider than the data) it is R ``survreg(Surv(left, right, type =
"interval2") ~ 1, weights = w, dist = "exponential")`` (tests/fixtures/grid_hazard).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from reports.errors import EstimationError
from reports.turnbull import interval_arrays

_LOG_HAZARD_FLOOR = -30.0  # a cell with no event: hazard e^-30 per unit time, i.e. zero


@dataclass(frozen=True, slots=True, eq=False)
class GridHazardCurve:
    """A fitted piecewise-constant hazard (one arm).

    Attributes
    ----------
    edges : ndarray of shape (n_pieces,)
        Left end of each piece (0, g, 2g, ...), in the unit of the input; the last piece is
        open to the right.
    hazard : ndarray of shape (n_pieces,)
        Hazard per unit time in each piece.
    converged : bool
        Whether L-BFGS-B met its convergence test.
    """

    edges: np.ndarray
    hazard: np.ndarray
    n_rows: int
    sum_weights: float
    n_iter: int
    converged: bool
    time_unit: str | None = None
    label: str | None = None

    @property
    def method(self) -> str:
        return ("weighted piecewise-exponential model, hazard constant within each grid cell "
                "(interval-censored maximum likelihood)")

    def cumulative_hazard(self, times: np.ndarray | list[float] | float) -> np.ndarray:
        """H(t), t in the unit of the input."""
        return _exposure(np.atleast_1d(np.asarray(times, dtype=float)), self.edges) @ self.hazard

    def survival_at(self, times: np.ndarray | list[float] | float) -> np.ndarray:
        """S(t) = exp(-H(t))."""
        return np.exp(-self.cumulative_hazard(times))

    def sample_within(
        self, left: np.ndarray, right: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """One event time per row drawn from the model conditional on ``(left, right]``
        (inverse cumulative hazard of a uniform draw between S(left) and S(right))."""
        left = np.asarray(left, dtype=float)
        right = np.asarray(right, dtype=float)
        h_lo = self.cumulative_hazard(left)
        span = self.cumulative_hazard(right) - h_lo
        u = rng.random(left.size)
        target = h_lo - np.log1p(-u * -np.expm1(-span))
        h_edges = self.cumulative_hazard(self.edges)
        j = np.clip(np.searchsorted(h_edges, target, side="right") - 1, 0, self.edges.size - 1)
        t = self.edges[j] + (target - h_edges[j]) / self.hazard[j]
        return np.clip(t, left, right)

    def __repr__(self) -> str:
        return (f"GridHazardCurve(label={self.label!r}, n={self.n_rows}, "
                f"pieces={self.edges.size}, converged={self.converged})")


def _exposure(t: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Time spent in each piece up to ``t``: (n, n_pieces)."""
    widths = np.r_[np.diff(edges), np.inf]
    return np.clip(t[:, None] - edges[None, :], 0.0, widths[None, :])


def grid_hazard_estimate(
    left: np.ndarray,
    right: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    grid_every: float,
    time_unit: str | None = None,
    label: str | None = None,
) -> GridHazardCurve:
    """Fit a hazard constant on ``[k g, (k + 1) g)``, k = 0, 1, ..., to interval-censored data.

    Pieces run from 0 to the last grid visit before the largest finite endpoint, the last one
    open. ``weights`` (e.g. ATT weights) multiply each row's log-likelihood; their scale does
    not matter. Raises `EstimationError` for bad intervals (`reports.turnbull.interval_arrays`)
    or weights, or when the fit fails.
    """
    lo, hi = interval_arrays(left, right)
    n = lo.size
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise EstimationError("weights must be finite, non-negative and one per row")
    if not (np.isfinite(grid_every) and grid_every > 0):
        raise EstimationError(f"grid_every must be positive, got {grid_every!r}")
    censored = ~np.isfinite(hi)
    exact = ~censored & (hi == lo)
    interval = ~censored & (hi > lo)
    top = float(np.max(np.where(censored, lo, hi))) if n else 0.0
    edges = np.arange(0.0, max(top, grid_every), grid_every)
    if not (w[~censored] > 0).any():
        return GridHazardCurve(edges, np.zeros(edges.size), n, float(w.sum()), 0, True,
                               time_unit, label)

    x_end = _exposure(lo, edges)  # H(left) of every row
    x_hi = _exposure(np.where(interval, hi, lo), edges)
    piece = np.clip(np.searchsorted(edges, lo, side="left") - 1, 0, edges.size - 1)
    w_exact_piece = np.bincount(piece[exact], w[exact], minlength=edges.size)
    # sum of w X(left) over every row: the -H(left) term of each kind of row
    exposure_all = w @ x_end
    wi, xd = w[interval], (x_hi - x_end)[interval]

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        lam = np.exp(theta)
        d = np.maximum(xd @ lam, 1e-300)
        p = -np.expm1(-d)
        ll = (w_exact_piece @ theta - exposure_all @ lam + wi @ np.log(p))
        ratio = wi * np.exp(-d) / p
        grad = (w_exact_piece - exposure_all * lam + (ratio @ xd) * lam)
        return -float(ll), -grad

    events = float(w[~censored].sum())
    time_at_risk = float(w @ np.where(censored, lo, hi))
    theta0 = np.full(edges.size, np.log(events / max(time_at_risk, 1e-300)))
    res = minimize(nll, theta0, jac=True, method="L-BFGS-B",
                   bounds=[(_LOG_HAZARD_FLOOR, 20.0)] * edges.size,
                   options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9})
    if not np.all(np.isfinite(res.x)):
        raise EstimationError(f"piecewise-exponential fit failed: {res.message}")
    return GridHazardCurve(edges, np.exp(res.x), n, float(w.sum()), int(res.nit),
                           bool(res.success), time_unit, label)
