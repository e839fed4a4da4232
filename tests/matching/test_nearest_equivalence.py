"""Equivalence: the fast matcher (sorted controls + union-find) against a literal, step-by-step
transcription of MatchIt 4.7.2's walk (``find_control_vec`` as we read it: alternate one
position left / one right from the treated unit, skip ineligible units, stop a side beyond the
caliper or once ``ratio`` kept candidates are strictly nearer, rounds r > 1 start outside the
unit's earlier matches). Integer-valued distances make exact ties frequent, which is where
the two implementations could disagree (LaLonde's reference pairs never tie left vs right).
"""

from __future__ import annotations

import numpy as np
import pytest

from matching import NearestMatcher
from matching.nearest import _partial_sort_first


def _walk(ti, d, t, eligible, exact, ord_, pos, r, prev, ratio, cal):
    n = len(d)
    ii = pos[ti]
    if r > 1 and prev:
        starts = [pos[p] for p in prev]
        iil, iir = min([*starts, ii]), max([*starts, ii])
        far = [abs(d[ti] - d[ord_[q]]) for q in (iil, iir) if q != ii]
        min_dist = max(far)
    else:
        iil = iir = ii
        min_dist = 0.0
    l_stop = r_stop = left = False
    pot_u, pot_d, n_l, n_r = [], [], 0, 0
    while not (l_stop and r_stop):
        left = False if l_stop else True if r_stop else not left
        if left:
            if iil <= 0 or n_l == ratio:
                l_stop = True
                continue
            iil -= 1
            iz = ord_[iil]
        else:
            if iir >= n - 1 or n_r == ratio:
                r_stop = True
                continue
            iir += 1
            iz = ord_[iir]
        if not eligible[iz] or t[iz] or (r > 1 and iz in prev):
            continue
        dist = abs(d[ti] - d[iz])
        if dist > cal or (len(pot_d) >= ratio and sum(x < dist for x in pot_d) >= ratio):
            l_stop, r_stop = (True, r_stop) if left else (l_stop, True)
            continue
        if dist < min_dist or exact[iz] != exact[ti]:
            continue
        pot_u.append(iz)
        pot_d.append(dist)
        if left:
            n_l += 1
            l_stop = l_stop or n_l == ratio
        else:
            n_r += 1
            r_stop = r_stop or n_r == ratio
    if len(pot_u) <= 1 or (len(pot_u) <= ratio and pot_d == sorted(pot_d)):
        return pot_u
    if len(pot_u) > ratio:
        return [pot_u[j] for j in _partial_sort_first(pot_d, ratio)]
    return [pot_u[j] for j in sorted(range(len(pot_u)), key=pot_d.__getitem__)]


def _literal(d, t, ratio, cal, replace, exact):
    ord_ = np.argsort(d, kind="stable")
    pos = np.empty(len(d), dtype=int)
    pos[ord_] = np.arange(len(d))
    both = set(exact[t]) & set(exact[~t])
    eligible = np.array([e in both for e in exact])
    tr = np.flatnonzero(t)
    order = tr if replace else tr[np.argsort(-d[tr], kind="stable")]
    mm = {int(i): [] for i in tr}
    if replace:
        for ti in order:
            if eligible[ti]:
                mm[ti] = _walk(ti, d, t, eligible, exact, ord_, pos, 1, [], ratio, cal)
        return mm
    n_ctrl = int((eligible & ~t).sum())
    for r in range(1, ratio + 1):
        for ti in order:
            if n_ctrl == 0:
                break
            if not eligible[ti]:
                continue
            k = _walk(ti, d, t, eligible, exact, ord_, pos, r, mm[ti], 1, cal)
            if not k:
                eligible[ti] = False
                continue
            mm[ti].append(k[0])
            eligible[k[0]] = False
            n_ctrl -= 1
            if len(mm[ti]) >= ratio:
                eligible[ti] = False
    return mm


@pytest.mark.parametrize("seed", range(120))
def test_fast_matcher_equals_the_literal_walk(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 40))
    d = rng.integers(0, 8, n).astype(float) / 4.0  # exact ties, exactly representable
    t = rng.random(n) < rng.uniform(0.2, 0.6)
    t[0], t[-1] = True, False
    ratio = int(rng.integers(1, 4))
    replace = bool(rng.random() < 0.4)
    caliper = None if rng.random() < 0.4 else float(rng.choice([0.25, 0.5, 1.0]))
    exact = rng.integers(0, 2, n) if rng.random() < 0.3 else np.zeros(n, dtype=int)
    m = NearestMatcher(ratio, caliper=caliper, std_caliper=False, replace=replace).fit(
        d, t, exact=exact if exact.any() else None)
    cal = np.inf if caliper is None else caliper
    assert m.matches_ == _literal(d, t, ratio, cal, replace, exact)
