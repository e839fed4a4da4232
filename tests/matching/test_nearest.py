"""Nearest-neighbour matching: MatchIt's rules on hand-made cases, and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching import MatchingError, NearestMatcher


def _naive_greedy(d, t, order, cal=np.inf):
    """O(n^2) reference: each treated (in order) takes the nearest unused control; ties go to
    the control nearer in sorted position on the left (only used with tie-free data)."""
    used, out = set(), {}
    for i in order:
        best = None
        for j in np.flatnonzero(~t):
            if j in used or abs(d[i] - d[j]) > cal:
                continue
            if best is None or abs(d[i] - d[j]) < abs(d[i] - d[best]):
                best = j
        out[int(i)] = [] if best is None else [int(best)]
        if best is not None:
            used.add(best)
    return out


def test_equals_naive_greedy_without_ties():
    rng = np.random.default_rng(3)
    d = rng.random(300)
    t = rng.random(300) < 0.25
    m = NearestMatcher(m_order="data", caliper=0.05).fit(d, t)
    cal = 0.05 * np.std(d, ddof=1)
    assert m.matches_ == _naive_greedy(d, t, np.flatnonzero(t), cal)


def test_largest_first_order():
    # two treated compete for one control; the larger score is matched first (MatchIt default)
    d = np.array([0.50, 0.60, 0.55, 0.10])
    t = np.array([True, True, False, False])
    m = NearestMatcher().fit(d, t)
    assert m.matches_ == {0: [3], 1: [2]}
    m = NearestMatcher(m_order="smallest").fit(d, t)
    assert m.matches_ == {0: [2], 1: [3]}


def test_equal_distance_tie_goes_to_the_side_reached_first():
    # exact binary fractions: both candidates are exactly 0.25 away
    d = np.array([0.25, 0.5, 0.75])
    t = np.array([False, True, False])
    assert NearestMatcher().fit(d, t).matches_[1] == [0]  # a = b = 1: left first
    # a treated unit between the left control and the treated: left is 2 positions away,
    # right 1, so the walk (left, right, left, ...) reaches the right control first
    d = np.array([0.25, 0.3, 0.5, 0.75])
    t = np.array([False, True, True, False])
    m = NearestMatcher().fit(d, t)
    assert m.matches_[2] == [3]
    assert m.matches_[1] == [0]


def test_tied_scores_keep_data_order():
    # three controls with the treated unit's exact score: the nearest in sorted position wins,
    # sorted position among ties being data order
    d = np.array([0.4, 0.4, 0.4, 0.4])
    t = np.array([False, False, True, False])
    assert NearestMatcher().fit(d, t).matches_[2] == [1]  # a = 1 <= b = 1
    t = np.array([False, True, False, False])
    assert NearestMatcher().fit(d, t).matches_[1] == [0]


def test_caliper_drops_trial_patients():
    d = np.array([0.1, 0.2, 0.9, 0.11, 0.21, 0.5])
    t = np.array([True, True, True, False, False, False])
    m = NearestMatcher(caliper=0.05, std_caliper=False).fit(d, t)
    assert m.matches_ == {0: [3], 1: [4], 2: []}
    assert m.weights_[2] == 0 and m.weights_[5] == 0
    assert m.n_matched_treated_ == 2
    assert m.caliper_abs_ == 0.05
    m = NearestMatcher(caliper=0.1).fit(d, t)  # SD units
    assert m.caliper_abs_ == pytest.approx(0.1 * np.std(d, ddof=1))


def test_ratio_two_with_too_few_controls():
    # 3 treated, 4 controls, ratio 2: round 1 gives everyone one control, round 2 only one
    d = np.array([0.9, 0.8, 0.7, 0.85, 0.75, 0.65, 0.1])
    t = np.array([True, True, True, False, False, False, False])
    m = NearestMatcher(ratio=2).fit(d, t)
    assert [len(m.matches_[i]) for i in range(3)] == [2, 1, 1]
    assert m.matches_[0] == [3, 6]  # its second match is what is left
    # MatchIt weights: controls of the 1:2 set get 1/2, singles 1, rescaled to sum to 4
    np.testing.assert_allclose(m.weights_[3:], np.array([0.5, 1, 1, 0.5]) * 4 / 3)
    assert m.weights_[:3].tolist() == [1, 1, 1]


def test_every_treated_gets_first_match_before_second():
    d = np.array([0.50, 0.51, 0.49, 0.52, 0.30])
    t = np.array([True, True, False, False, False])
    m = NearestMatcher(ratio=2).fit(d, t)
    # unit 0 (0.50) ... largest first: unit 1 (0.51) takes 0.52 first, then unit 0 takes 0.49
    assert m.matches_[1][0] == 3 and m.matches_[0][0] == 2
    assert sorted(m.matches_[0] + m.matches_[1]) == [2, 3, 4]


def test_replacement_reuses_controls_and_weights():
    d = np.array([0.50, 0.52, 0.51, 0.10])
    t = np.array([True, True, False, False])
    m = NearestMatcher(replace=True).fit(d, t)
    assert m.matches_ == {0: [2], 1: [2]}
    assert m.weights_.tolist() == [1, 1, 1, 0]  # sum of 1/1 + 1/1 = 2, rescaled to 1 control
    assert (m.match_id_ == -1).all()  # no subclasses with replacement


def test_exact_strata():
    d = np.array([0.5, 0.5, 0.49, 0.9, 0.6])
    t = np.array([True, True, False, False, False])
    ex = np.array(["a", "b", "b", "a", "c"])
    m = NearestMatcher().fit(d, t, exact=ex)
    assert m.matches_ == {0: [3], 1: [2]}
    # a stratum without controls: its treated unit stays unmatched
    ex = np.array(["a", "z", "a", "a", "a"])
    m = NearestMatcher().fit(d, t, exact=ex)
    assert m.matches_[1] == []


def test_random_order_is_seeded():
    rng = np.random.default_rng(0)
    d = rng.random(200)
    t = rng.random(200) < 0.4
    a = NearestMatcher(m_order="random", random_state=5).fit(d, t).matches_
    b = NearestMatcher(m_order="random", random_state=5).fit(d, t).matches_
    assert a == b


def test_bad_inputs_name_the_problem():
    with pytest.raises(MatchingError, match="'ratio' parameter of NearestMatcher"):
        NearestMatcher(ratio=0).fit(np.r_[0.1, 0.2], np.r_[True, False])
    with pytest.raises(MatchingError, match="non-finite"):
        NearestMatcher().fit(np.r_[np.nan, 0.2], np.r_[True, False])
    with pytest.raises(MatchingError, match="at least one treated"):
        NearestMatcher().fit(np.r_[0.1, 0.2], np.r_[False, False])


@st.composite
def _designs(draw):
    n = draw(st.integers(4, 60))
    d = np.array(draw(st.lists(st.floats(0, 1, allow_nan=False), min_size=n, max_size=n)))
    t = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    t[0], t[1] = True, False
    ratio = draw(st.integers(1, 3))
    caliper = draw(st.one_of(st.none(), st.floats(0.01, 2)))
    return d, t, ratio, caliper


@settings(max_examples=60, deadline=None)
@given(_designs(), st.booleans())
def test_invariants(design, replace):
    d, t, ratio, caliper = design
    m = NearestMatcher(ratio=ratio, caliper=caliper, replace=replace).fit(d, t)
    used = [c for cs in m.matches_.values() for c in cs]
    if not replace:
        assert len(used) == len(set(used))  # no control used twice
    for i, cs in m.matches_.items():
        assert len(cs) <= ratio
        assert len(set(cs)) == len(cs)
        for c in cs:
            assert not t[c]
            assert abs(d[i] - d[c]) <= m.caliper_abs_  # every pair within the caliper
    assert np.isfinite(m.weights_).all() and (m.weights_ >= 0).all()
    if used:
        assert m.weights_[np.unique(used)].sum() == pytest.approx(len(set(used)))
    if caliper is None and (replace or (~t).sum() >= t.sum()):
        assert m.n_matched_treated_ == t.sum()  # nobody is left out without a caliper


# Outputs of g++ 12 / libstdc++ ``std::partial_sort`` (index vector, comparator on keys),
# recorded with a 10-line C++ harness; ties are the point of these cases.
PARTIAL_SORT_CASES = [
    (6, [2, 2, 1, 2, 2, 0, 0, 0, 0], [7, 6, 8, 5, 2, 3]),
    (8, [0, 1, 2, 0, 2, 0, 1, 2, 0], [3, 8, 0, 5, 1, 6, 7, 4]),
    (2, [2, 0, 2, 1, 1], [1, 3]),
    (3, [1, 1, 2, 2, 2, 2], [0, 1, 2]),
    (3, [2, 1, 0, 2, 0, 2, 1], [2, 4, 1]),
    (1, [1, 0, 0], [1]),
    (5, [1, 2, 2, 2, 1, 1], [4, 5, 0, 1, 3]),
    (2, [1, 1, 0, 2, 0, 0], [4, 2]),
    (3, [2, 2, 0, 2], [2, 0, 1]),
    (2, [0, 1, 2, 1, 0], [4, 0]),
    (2, [2, 2, 0, 1, 2, 2], [2, 3]),
    (4, [0, 2, 1, 0, 0, 1, 2], [0, 3, 4, 2]),
]


@pytest.mark.parametrize(("k", "keys", "expected"), PARTIAL_SORT_CASES)
def test_partial_sort_reproduces_libstdcxx_tie_order(k, keys, expected):
    from matching.nearest import _partial_sort_first

    assert _partial_sort_first([float(x) for x in keys], k) == expected


def test_ratio_two_with_replacement_and_tied_candidates():
    # four controls tied at the treated unit's score: two on each side in sorted order
    d = np.array([0.5, 0.5, 0.5, 0.5, 0.5])
    t = np.array([False, False, True, False, False])
    m = NearestMatcher(ratio=2, replace=True).fit(d, t)
    # walk: left 1, right 3, left 0, right 4 -> candidates (1, 3, 0, 4) all at distance 0;
    # g++'s partial_sort of 4 equal keys with k = 2 returns indices [0, 1] -> controls 1, 3
    assert m.matches_[2] == [1, 3]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from([0.0, -0.0, 0.25, 0.5, 1.0, 2.0, -1.5]), min_size=1,
                max_size=60) | st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60))
def test_stable_argsort_is_r_order(values):
    from matching.nearest import stable_argsort

    d = np.array(values, dtype=float)
    assert stable_argsort(d).tolist() == np.argsort(d, kind="stable").tolist()
