"""Optimal matching: minimum total distance (checked by brute force), caliper, exact strata."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from matching import MatchingError, NearestMatcher, OptimalMatcher


def _brute_force(d, t):
    tr, co = np.flatnonzero(t), np.flatnonzero(~t)
    return min(sum(abs(d[i] - d[j]) for i, j in zip(tr, perm, strict=True))
               for perm in itertools.permutations(co, len(tr)))


@pytest.mark.parametrize("seed", range(5))
def test_total_distance_is_the_minimum(seed):
    rng = np.random.default_rng(seed)
    d = rng.random(9)
    t = np.zeros(9, bool)
    t[:3] = True
    m = OptimalMatcher().fit(d, t)
    assert m.total_distance_ == pytest.approx(_brute_force(d, t), abs=1e-12)
    greedy = NearestMatcher().fit(d, t)
    g_total = sum(abs(d[i] - d[c]) for i, cs in greedy.matches_.items() for c in cs)
    assert m.total_distance_ <= g_total + 1e-12


def test_greedy_is_not_optimal_here():
    # greedy (largest first) takes 0.55 for 0.6, leaving 0.5 with 0.2; optimal pairs crosswise
    d = np.array([0.6, 0.5, 0.55, 0.62, 0.2])
    t = np.array([True, True, False, False, False])
    opt = OptimalMatcher().fit(d, t)
    assert opt.matches_ == {0: [3], 1: [2]}
    assert opt.total_distance_ == pytest.approx(0.07)


def test_ratio_and_caliper():
    d = np.array([0.1, 0.5, 0.11, 0.12, 0.13, 0.9, 0.95])
    t = np.array([True, True, False, False, False, False, False])
    m = OptimalMatcher(ratio=2, caliper=0.05, std_caliper=False).fit(d, t)
    assert sorted(m.matches_[0]) == [2, 3] or sorted(m.matches_[0]) == [2, 4]
    assert m.matches_[1] == []  # nothing within 0.05 of 0.5
    for i, cs in m.matches_.items():
        assert all(abs(d[i] - d[c]) <= 0.05 for c in cs)


def test_exact_strata_and_size_guard():
    d = np.array([0.5, 0.5, 0.49, 0.9])
    t = np.array([True, True, False, False])
    m = OptimalMatcher().fit(d, t, exact=np.array(["a", "b", "b", "a"]))
    assert m.matches_ == {0: [3], 1: [2]}
    with pytest.raises(MatchingError, match="max_cells"):
        OptimalMatcher(max_cells=2).fit(d, t)
