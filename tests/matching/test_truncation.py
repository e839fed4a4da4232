"""Truncation of weights: our per-arm rule and WeightIt's trim() rule (issue 14, defect 5).

No R here: WeightIt is not in Debian. WeightIt's ``trim(w, at = q, treat = treat)`` is, from
its source (R/trim.R, ``.trim_weights``): drop the groups whose weights are all the same,
take ``quantile(w[kept groups], probs = q, type = 3)`` of the POOLED remaining weights, and
cap those weights at it. R's type-3 quantile is written out below from R's
``quantile.default`` (Hyndman & Fan 1996, definition 3), independently of numpy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from matching import match_cohort
from matching.weighting import truncate_weights
from tests.matching.test_api import COVS, _frame


def _r_quantile_type3(x: np.ndarray, p: float) -> float:
    """R ``quantile(x, p, type = 3)``: nearest even order statistic (SAS definition 2)."""
    xs = np.sort(x)
    n = len(xs)
    nppm = n * p - 0.5
    j = math.floor(nppm)
    h = (nppm != j) or (j % 2 == 1)
    padded = np.r_[xs[0], xs[0], xs, xs[-1], xs[-1]]  # R: c(x[1], x[1], x, x[n], x[n])
    return float(padded[j + 2] if h else padded[j + 1])  # R: x[j + 3] / x[j + 2], 1-based


def test_type3_quantile_matches_r():
    """R 4.2.2: x <- c(3.2, 0.5, 1.7, 9.1, 2.2, 4.4, 0.9, 6.3, 1.1, 2.8);
    sapply(c(.5, .75, .9, .95, .55, .6), function(p) quantile(x, p, type = 3))."""
    x = np.array([3.2, 0.5, 1.7, 9.1, 2.2, 4.4, 0.9, 6.3, 1.1, 2.8])
    r = [2.2, 4.4, 6.3, 9.1, 2.8, 2.8]
    for p, expected in zip((0.5, 0.75, 0.9, 0.95, 0.55, 0.6), r, strict=True):
        assert _r_quantile_type3(x, p) == expected
        assert np.quantile(x, p, method="closest_observation") == expected  # what we use


@pytest.mark.parametrize("q", [0.9, 0.95, 0.99, 0.75])
def test_weightit_rule_is_one_pooled_type3_quantile(q):
    rng = np.random.default_rng(7)
    t = np.r_[np.ones(60, bool), np.zeros(240, bool)]
    w = np.where(t, rng.lognormal(0.3, 0.8, 300), rng.lognormal(0, 0.6, 300))  # ATE-like
    out, rep = truncate_weights(w, t, q, "weightit")
    cap = _r_quantile_type3(w, q)
    assert rep["arms"]["trial"]["cap"] == rep["arms"]["control"]["cap"] == pytest.approx(cap)
    np.testing.assert_allclose(out, np.minimum(w, cap))
    assert rep["arms"]["trial"]["n_truncated"] + rep["arms"]["control"]["n_truncated"] == int(
        (w > cap).sum())
    # ours: each arm at its own type-7 quantile, so the caps differ
    _, ours = truncate_weights(w, t, q, "per_arm")
    assert ours["arms"]["trial"]["cap"] == pytest.approx(np.quantile(w[t], q))
    assert ours["arms"]["control"]["cap"] == pytest.approx(np.quantile(w[~t], q))
    assert ours["arms"]["trial"]["cap"] != ours["arms"]["control"]["cap"]


def test_att_weights_only_truncate_the_controls_under_both_rules():
    rng = np.random.default_rng(3)
    t = np.r_[np.ones(27, bool), np.zeros(200, bool)]
    w = np.where(t, 1.0, rng.lognormal(-1, 1, 227))
    for rule in ("per_arm", "weightit"):
        out, rep = truncate_weights(w, t, 0.95, rule)
        assert list(rep["arms"]) == ["control"] and (out[t] == 1).all()
    _, wi = truncate_weights(w, t, 0.95, "weightit")
    assert wi["arms"]["control"]["cap"] == pytest.approx(_r_quantile_type3(w[~t], 0.95))


def test_truncation_rule_is_in_design_json():
    res = match_cohort(_frame(), COVS, method="weighting", estimand="ATE", truncate=0.95,
                       truncate_rule="weightit")
    trunc = res.to_dict()["details"]["truncation"]
    assert trunc["rule"] == "weightit" and "trim(" in trunc["note"]
    assert trunc["arms"]["trial"]["cap"] == trunc["arms"]["control"]["cap"]
    default = match_cohort(_frame(), COVS, method="weighting", estimand="ATE", truncate=0.95)
    note = default.to_dict()["details"]["truncation"]["note"]
    assert default.options["truncate_rule"] == "per_arm" and "WeightIt's trim()" in note
