"""reports.grid_hazard: the piecewise-exponential model of the harmonised PFS estimate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reports.errors import EstimationError
from reports.grid_hazard import grid_hazard_estimate

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "grid_hazard"
REF = json.loads((FIXTURE / "reference.json").read_text())
# L-BFGS-B stops at a relative change of the log-likelihood of 1e-13 and a projected gradient
# of 1e-9: the hazards are then within ~1e-8 (relative) of the optimum; 1e-6 leaves room for
# the platform's floating point, far below any difference that would matter (a hazard 1e-6
# off moves S(24 weeks) by < 1e-6).
RTOL = 1e-6


def _intervals():
    d = pd.read_csv(FIXTURE / "intervals.csv")
    return d["left"].to_numpy(float), d["right"].to_numpy(float), d["w"].to_numpy(float)


def test_one_piece_is_r_survreg_exponential_interval_censored_weighted():
    lo, hi, w = _intervals()
    fit = grid_hazard_estimate(lo, hi, w, grid_every=1e6)
    assert fit.edges.tolist() == [0.0]
    assert fit.converged
    np.testing.assert_allclose(fit.hazard[0], REF["exponential_rate"], rtol=RTOL)


def test_pieces_are_r_pyears_events_over_exposure_without_interval_censoring():
    d = pd.read_csv(FIXTURE / "right_censored.csv")
    t = d["time"].to_numpy(float)
    lo, hi = t, np.where(d["status"] == 1, t, np.nan)
    fit = grid_hazard_estimate(lo, hi, d["w"].to_numpy(float), grid_every=42.0)
    np.testing.assert_array_equal(fit.edges, REF["pieces_start"][:fit.edges.size])
    events = np.array(REF["events"][:fit.edges.size])
    exposure = np.array(REF["exposure"][:fit.edges.size])
    assert exposure.sum() == pytest.approx(np.sum(REF["exposure"]), rel=1e-12)  # all covered
    np.testing.assert_allclose(fit.hazard, events / exposure, rtol=RTOL)


def test_grid_cell_intervals_give_the_life_table_hazard():
    """Every progression seen in one grid cell, no censoring inside a cell: the MLE is the
    discrete hazard of each cell, -log(1 - d_j / n_j) / g."""
    g = 42.0
    counts = np.array([30, 25, 20, 15])  # progressions in cells 1..4; 10 censored at 4 g
    lo = np.r_[np.repeat(np.arange(4) * g, counts), np.full(10, 4 * g)]
    hi = np.r_[np.repeat(np.arange(1, 5) * g, counts), np.full(10, np.nan)]
    fit = grid_hazard_estimate(lo, hi, grid_every=g)
    at_risk = counts[::-1].cumsum()[::-1] + 10
    np.testing.assert_allclose(fit.hazard[:4], -np.log1p(-counts / at_risk) / g, rtol=RTOL)
    np.testing.assert_allclose(fit.survival_at(np.arange(1, 5) * g),
                               np.cumprod(1 - counts / at_risk), rtol=RTOL)


def test_weights_scale_free_and_zero_weight_rows_ignored():
    lo, hi, w = _intervals()
    a = grid_hazard_estimate(lo, hi, w, grid_every=42.0)
    b = grid_hazard_estimate(lo, hi, 7.5 * w, grid_every=42.0)
    np.testing.assert_allclose(a.hazard, b.hazard, rtol=RTOL)
    extra = grid_hazard_estimate(np.r_[lo, 3.0], np.r_[hi, 5.0], np.r_[w, 0.0], grid_every=42.0)
    np.testing.assert_allclose(extra.hazard, a.hazard, rtol=RTOL)


def test_sample_within_is_the_conditional_distribution():
    lo, hi, w = _intervals()
    fit = grid_hazard_estimate(lo, hi, w, grid_every=42.0)
    left, right = np.full(20_000, 30.0), np.full(20_000, 150.0)
    draws = fit.sample_within(left, right, np.random.default_rng(4))
    assert ((draws > 30.0) & (draws <= 150.0)).all()
    h = fit.cumulative_hazard

    def cdf(x):
        return (np.exp(-h(30.0)) - np.exp(-h(np.asarray(x)))) / (np.exp(-h(30.0))
                                                                 - np.exp(-h(150.0)))

    assert stats.kstest(draws, cdf).pvalue > 0.01  # seeded: deterministic
    again = fit.sample_within(left, right, np.random.default_rng(4))
    np.testing.assert_array_equal(draws, again)


def test_bad_input_names_the_row():
    with pytest.raises(EstimationError, match=r"left end after the right end in .*index 1"):
        grid_hazard_estimate(np.array([0.0, 50.0]), np.array([10.0, 20.0]), grid_every=42.0)
    with pytest.raises(EstimationError, match="weights"):
        grid_hazard_estimate(np.array([0.0]), np.array([10.0]), np.array([-1.0]),
                             grid_every=42.0)
    with pytest.raises(EstimationError, match="grid_every"):
        grid_hazard_estimate(np.array([0.0]), np.array([10.0]), grid_every=0.0)


def test_no_event_is_zero_hazard():
    fit = grid_hazard_estimate(np.array([10.0, 90.0]), np.array([np.nan, np.nan]),
                               grid_every=42.0)
    assert (fit.hazard == 0).all()
    assert fit.survival_at(100.0)[0] == 1.0
