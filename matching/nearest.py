"""Greedy nearest-neighbour matching on a 1-D distance, with MatchIt 4.7.2's semantics.

How MatchIt (``matchit2nearest`` -> ``nn_matchC_vec`` -> ``find_control_vec``) matches, and
so how we do (our own implementation, written from reading that code):

- Units are sorted once by distance with a stable sort (R ``order()``), so units with equal
  distance keep their data order. A treated unit's neighbours are found by walking outwards
  from its own sorted position, alternately one position to the LEFT, then one to the RIGHT.
- Treated units are processed in ``m_order``: ``"largest"`` (MatchIt's default with a PS) is
  ``order(distance, decreasing = TRUE)``, ties kept in data order; ``"smallest"`` likewise
  increasing; ``"data"`` the data order; ``"random"`` a permutation from ``random_state`` (it
  cannot reproduce R's RNG). With replacement the order is irrelevant and MatchIt uses data order.
- Ratio k without replacement runs k rounds: every treated unit gets its first match before any
  gets a second. A treated unit that finds no control in some round gets no further matches.
  In round r > 1 the walk starts outside the span of the unit's earlier matches and only
  accepts controls at least as far as the farthest earlier match.
- **Tie rule.** On each side the first eligible control (not used, same ``exact`` stratum, within
  the caliper) is the candidate. The nearer candidate wins. If both are at exactly the same
  distance, the one the alternating walk reaches first wins: with a left candidate ``a``
  positions away and a right one ``b`` positions away (positions in the full sorted order,
  counting treated and used units), the left one wins iff ``a <= b``. LaLonde's tied scores
  depend on this rule.
- Ratio k with replacement collects up to k candidates per side in the order the walk reaches
  them (a side stops once k collected candidates are strictly nearer) and keeps the k nearest
  with C++ ``std::partial_sort``; we reproduce GNU libstdc++'s heap order for exactly tied
  distances (``_partial_sort_first``; R on Linux is built with it, while a macOS build uses
  libc++, whose order among exact ties may differ).
- Caliper: ``caliper * sd(distance)`` (sample SD over all units) when ``std_caliper``; pairs
  with ``|d_t - d_c| > caliper`` are never made, so treated units can go unmatched.
- Weights (MatchIt ``get_weights_from_subclass`` / ``get_weights_from_mm``): matched treated 1;
  each control gets the sum over its treated units of ``1 / (number of controls of that treated
  unit)``, rescaled so the control weights sum to the number of distinct matched controls.

Cost: one O(n log n) sort, then O(log n) amortised per match (union-find "next unused control"
pointers over the sorted controls), never an O(n_trial x n_registry) loop.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ._method import MethodInputs, MethodOutcome, unmatched_trial
from ._validation import BOOL, NONE, SEED, Interval, check_params, check_random_state, options
from .base import Estimator
from .errors import MatchingError

M_ORDERS = ("largest", "smallest", "data", "random")


def _find(par: list, i: int, stop: int) -> int:
    """Union-find root with path compression; ``stop`` is the sentinel (-1 or m)."""
    root = i
    while root != stop and par[root] != root:
        root = par[root]
    while i != stop and par[i] != root:
        par[i], i = root, par[i]
    return root


class _Stratum:
    """Sorted controls of one exact stratum with 'next alive' pointers both ways."""

    __slots__ = ("cpos", "cunit", "left", "m", "right")

    def __init__(self, cpos: np.ndarray, cunit: np.ndarray):
        self.cpos = cpos
        self.cunit = cunit
        self.m = len(cpos)
        self.left = np.arange(self.m)
        self.right = np.arange(self.m)

    def kill(self, k: int) -> None:
        self.left[k] = k - 1
        self.right[k] = k + 1

    def alive_left(self, k: int) -> int:
        return -1 if k < 0 else _find(self.left, k, -1)

    def alive_right(self, k: int) -> int:
        return self.m if k >= self.m else _find(self.right, k, self.m)


def _side_candidate(st, k, step, d, dt, cal, min_dist, stop):
    """Nearest alive control from rank ``k`` going one way, with ``min_dist <= dist <= cal``."""
    find = st.alive_left if step < 0 else st.alive_right
    k = find(k)
    while k != stop:
        dist = abs(dt - float(d[st.cunit[k]]))
        if dist > cal:
            return stop, 0.0
        if dist >= min_dist:
            return k, dist
        k = find(k + step)
    return stop, 0.0


def stable_argsort(d: np.ndarray) -> np.ndarray:
    """``np.argsort(d, kind="stable")`` (R ``order()``: ties in data order), 3-5x faster.

    numpy's default (SIMD quick) sort, then only the runs of equal values are re-sorted by
    row number; ``-0.0`` and ``0.0`` are ties, as in R.
    """
    idx = np.argsort(d)
    ds = d[idx]
    eq = ds[1:] == ds[:-1]
    if not eq.any():
        return idx
    run = np.cumsum(np.r_[True, ~eq]) - 1
    in_run = np.zeros(len(d), dtype=bool)
    in_run[1:] |= eq
    in_run[:-1] |= eq
    pos = np.flatnonzero(in_run)
    key = run[pos] * len(d) + idx[pos]
    idx[pos] = idx[pos][np.argsort(key)]
    return idx


def _prepare(d: np.ndarray, treated: np.ndarray, codes: np.ndarray, eligible: np.ndarray):
    """Stable sort (R ``order``) and, per exact stratum, its controls in sorted order."""
    sort_idx = stable_argsort(d)
    pos = np.empty(len(d), dtype=np.int64)
    pos[sort_idx] = np.arange(len(d))
    strata, rank, bound = {}, np.full(len(d), -1, dtype=np.int64), {}
    ctrl_sorted = sort_idx[~treated[sort_idx] & eligible[sort_idx]]
    code_sorted = codes[ctrl_sorted]
    single = bool((code_sorted == code_sorted[0]).all()) if len(code_sorted) else True
    for s in np.unique(codes[treated & eligible]).tolist():
        units = ctrl_sorted if single and code_sorted[0] == s else ctrl_sorted[code_sorted == s]
        if len(units) == 0:
            continue
        cpos = pos[units]
        rank[units] = np.arange(len(units))
        strata[s] = _Stratum(cpos, units)
        t_s = np.flatnonzero(treated & eligible & (codes == s))
        bound.update(zip(t_s.tolist(), np.searchsorted(cpos, pos[t_s]).tolist(), strict=True))
    return pos, strata, rank, bound


def _choose(kl, dl, a, kr, dr, b, st):
    """MatchIt's pick between the left and right candidates (see the module's tie rule)."""
    has_l, has_r = kl >= 0, kr < st.m
    if has_l and has_r:
        if dl < dr or (dl == dr and a <= b):
            return kl
        return kr
    if has_l:
        return kl
    if has_r:
        return kr
    return None


def _greedy_without_replacement(d, treated, codes, eligible, order, ratio, cal):
    pos, strata, rank, bound = _prepare(d, treated, codes, eligible)
    dl_, posl = d, pos
    matches: dict[int, list[int]] = {int(t): [] for t in order}
    t_ok = {int(t): t in bound for t in order}
    n_alive = sum(st.m for st in strata.values())
    for r in range(1, ratio + 1):
        for t in order.tolist():
            if n_alive == 0:
                break
            if not t_ok[t]:
                continue
            st = strata[codes[t]]
            ii, dt, prev = int(posl[t]), float(dl_[t]), matches[t]
            if r == 1:
                iil = iir = ii
                lk, rk = bound[t] - 1, bound[t]
                min_dist = 0.0
            else:
                ps_ = [int(posl[u]) for u in prev]
                iil, iir = min([*ps_, ii]), max([*ps_, ii])
                ul = prev[ps_.index(iil)] if iil != ii else None
                ur = prev[ps_.index(iir)] if iir != ii else None
                if ul is None:
                    min_dist = abs(dt - float(dl_[ur]))
                elif ur is None:
                    min_dist = abs(dt - float(dl_[ul]))
                else:
                    min_dist = max(abs(dt - float(dl_[ul])), abs(dt - float(dl_[ur])))
                lk = int(rank[ul]) - 1 if ul is not None else bound[t] - 1
                rk = int(rank[ur]) + 1 if ur is not None else bound[t]
            kl, dl = _side_candidate(st, lk, -1, dl_, dt, cal, min_dist, -1)
            kr, dr = _side_candidate(st, rk, +1, dl_, dt, cal, min_dist, st.m)
            a = iil - int(st.cpos[kl]) if kl >= 0 else 0
            b = int(st.cpos[kr]) - iir if kr < st.m else 0
            k = _choose(kl, dl, a, kr, dr, b, st)
            if k is None:
                t_ok[t] = False
                continue
            prev.append(int(st.cunit[k]))
            st.kill(k)
            n_alive -= 1
            if len(prev) >= ratio:
                t_ok[t] = False
    return matches


def _adjust_heap(a, hole, length, value, less):
    top, child = hole, hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if less(a[child], a[child - 1]):
            child -= 1
        a[hole] = a[child]
        hole = child
    if length % 2 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        a[hole] = a[child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and less(a[parent], value):
        a[hole] = a[parent]
        hole = parent
        parent = (hole - 1) // 2
    a[hole] = value


def _partial_sort_first(keys: list, k: int) -> list[int]:
    """Indices of the ``k`` smallest ``keys`` in the order C++ ``std::partial_sort`` gives.

    MatchIt orders candidate controls with ``std::partial_sort``, a heap select + heap sort
    whose order among EQUAL keys is fixed by the heap layout. This is the textbook heap
    algorithm as GNU libstdc++ implements it (``__heap_select``, ``__adjust_heap``,
    ``__sort_heap``), so exactly tied distances come out in MatchIt's order.
    """
    a = list(range(len(keys)))

    def less(i, j):
        return keys[i] < keys[j]

    if k >= 2:  # make_heap on a[:k]
        parent = (k - 2) // 2
        while True:
            _adjust_heap(a, parent, k, a[parent], less)
            if parent == 0:
                break
            parent -= 1
    for i in range(k, len(a)):
        if less(a[i], a[0]):
            value, a[i] = a[i], a[0]
            _adjust_heap(a, 0, k, value, less)
    last = k
    while last > 1:
        last -= 1
        value, a[last] = a[last], a[0]
        _adjust_heap(a, 0, last, value, less)
    return a[:k]


def _with_replacement(d, treated, codes, eligible, order, ratio, cal):
    pos, strata, _, bound = _prepare(d, treated, codes, eligible)
    matches: dict[int, list[int]] = {}
    for t in order.tolist():
        matches[t] = []
        if t not in bound:
            continue
        st, ii, dt = strata[codes[t]], int(pos[t]), float(d[t])
        # (iteration, dist, unit) in the order the alternating walk reaches the candidates
        events = []
        for step, k0 in ((-1, bound[t] - 1), (1, bound[t])):
            k = k0
            for _ in range(ratio):
                if not 0 <= k < st.m:
                    break
                u = int(st.cunit[k])
                dist = abs(dt - float(d[u]))
                if dist > cal:
                    break
                gap = abs(int(st.cpos[k]) - ii)
                events.append((2 * gap - 1 if step < 0 else 2 * gap, dist, u))
                k += step
        events.sort(key=lambda e: e[0])
        kept_d: list[float] = []
        kept_u: list[int] = []
        for _, dist, u in events:  # a side stops once `ratio` kept candidates are nearer
            if sum(1 for dd in kept_d if dd < dist) >= ratio:
                continue
            kept_d.append(dist)
            kept_u.append(u)
        n_kept = len(kept_d)
        if n_kept <= 1 or (n_kept <= ratio and kept_d == sorted(kept_d)):
            sel = list(range(n_kept))
        elif n_kept > ratio:
            sel = _partial_sort_first(kept_d, ratio)
        else:  # std::sort of <= 16 items is an insertion sort: stable
            sel = sorted(range(n_kept), key=kept_d.__getitem__)
        matches[t] = [kept_u[j] for j in sel]
    return matches


def matchit_weights(matches: dict, n: int, replace: bool) -> np.ndarray:
    """MatchIt's ATT matching weights from ``{treated row: [control rows]}`` (module docstring)."""
    w = np.zeros(n)
    for t, cs in matches.items():
        if cs:
            w[t] = 1.0
            for c in cs:
                w[c] += 1.0 / len(cs)
    ctrl = [c for cs in matches.values() for c in cs]
    if ctrl:
        uc = np.unique(ctrl)
        w[uc] *= len(uc) / w[uc].sum()
    return w


class NearestMatcher(Estimator):
    """Greedy nearest-neighbour matching of trial (treated) to control units, MatchIt-style.

    Parameters
    ----------
    ratio : int, default=1
        Controls per treated unit (k:1).
    caliper : float or None, default=None
        Maximum distance, in SDs of ``distance`` if ``std_caliper`` (MatchIt's default).
    std_caliper : bool, default=True
    replace : bool, default=False
        Whether a control may be matched to several treated units.
    m_order : {"largest", "smallest", "data", "random"}, default="largest"
    random_state : int, Generator or None
        Only used by ``m_order="random"``.

    Attributes
    ----------
    matches_ : dict
        Treated row -> list of matched control rows (positions in the input arrays).
    weights_ : np.ndarray of shape (n_units,)
        MatchIt's ATT weights (0 for unmatched units).
    match_id_ : np.ndarray of shape (n_units,)
        Subclass 1..n_pairs for matched units without replacement (numbered in data order of
        the treated units, as MatchIt's ``subclass``); -1 otherwise (always -1 with replacement,
        where a control can belong to several sets).
    caliper_abs_ : float
        Caliper on the distance scale (inf when none).
    n_matched_treated_ : int

    Notes
    -----
    R: ``matchit(f, method = "nearest", ratio =, caliper =, replace =, m.order =, exact =)``
    gives the same sets; ``link = "linear.logit"`` corresponds to a logit-PS distance.
    """

    _constraints = {  # noqa: RUF012
        "ratio": [Interval(int, 1, None)],
        "caliper": [Interval(float, 0, None, closed="neither"), NONE],
        "std_caliper": [BOOL],
        "replace": [BOOL],
        "m_order": [options(*M_ORDERS)],
        "random_state": [SEED],
    }

    def __init__(self, ratio: int = 1, *, caliper: float | None = None, std_caliper: bool = True,
                 replace: bool = False, m_order: str = "largest", random_state=None):
        self.ratio = ratio
        self.caliper = caliper
        self.std_caliper = std_caliper
        self.replace = replace
        self.m_order = m_order
        self.random_state = random_state

    def fit(self, distance, treated, *, exact=None) -> NearestMatcher:
        """Match on ``distance`` (n_units,) for boolean ``treated``; ``exact``: stratum codes."""
        check_params(self, self._constraints)
        d, t, codes = _check_inputs(distance, treated, exact)
        eligible = np.ones(len(d), dtype=bool)
        if exact is not None:  # strata lacking one arm are discarded (MatchIt)
            both = np.intersect1d(codes[t], codes[~t])
            eligible = np.isin(codes, both)
        self.caliper_abs_ = _caliper_abs(d, self.caliper, self.std_caliper)
        order = _treated_order(d, t, eligible, "data" if self.replace else self.m_order,
                               self.random_state)
        run = _with_replacement if self.replace else _greedy_without_replacement
        matches = run(d, t, codes, eligible, order, self.ratio, self.caliper_abs_)
        tr = np.flatnonzero(t)
        self.matches_ = {int(i): matches.get(int(i), []) for i in tr}
        self.weights_ = matchit_weights(self.matches_, len(d), self.replace)
        self.match_id_ = _subclasses(self.matches_, len(d), self.replace)
        self.n_matched_treated_ = sum(1 for v in self.matches_.values() if v)
        return self


def _check_inputs(distance, treated, exact):
    d = np.asarray(distance, dtype=float)
    t = np.asarray(treated)
    if t.dtype != bool:
        if not np.isin(t, (0, 1)).all():
            raise MatchingError("treated must be boolean or 0/1.")
        t = t.astype(bool)
    if d.ndim != 1 or d.shape != t.shape:
        raise MatchingError(f"distance has shape {d.shape} but treated has shape {t.shape}.")
    if not np.isfinite(d).all():
        raise MatchingError(f"distance has {int((~np.isfinite(d)).sum())} non-finite values.")
    if not t.any() or t.all():
        raise MatchingError("Matching needs at least one treated and one control unit.")
    if exact is None:
        codes = np.zeros(len(d), dtype=np.int64)
    else:
        codes = np.unique(np.asarray(exact), return_inverse=True)[1].astype(np.int64).ravel()
        if codes.shape != d.shape:
            raise MatchingError("exact must have one stratum code per unit.")
    return d, t, codes


def _caliper_abs(d, caliper, std_caliper) -> float:
    if caliper is None:
        return float("inf")
    return float(caliper) * (float(np.std(d, ddof=1)) if std_caliper else 1.0)


def _treated_order(d, t, eligible, m_order, random_state) -> np.ndarray:
    tr = np.flatnonzero(t)
    if m_order == "largest":  # R order(decreasing = TRUE) keeps ties in data order
        return tr[np.argsort(-d[tr], kind="stable")]
    if m_order == "smallest":
        return tr[np.argsort(d[tr], kind="stable")]
    tr = tr[eligible[tr]]
    if m_order == "random":
        return check_random_state(random_state).permutation(tr)
    return tr


def _subclasses(matches: dict, n: int, replace: bool) -> np.ndarray:
    out = np.full(n, -1, dtype=np.int64)
    if replace:
        return out
    sub = 0
    for t in sorted(matches):
        if matches[t]:
            sub += 1
            out[t] = sub
            out[matches[t]] = sub
    return out


def run_nearest(inputs: MethodInputs) -> MethodOutcome:
    """``method="nearest"`` of `matching.match_cohort` (options: see ``matching.methods``)."""
    o = inputs.options
    m = NearestMatcher(o["ratio"], caliper=o["caliper"], replace=o["replace"],
                       m_order=o["m_order"], random_state=inputs.random_state)
    m.fit(inputs.distance, inputs.treated, exact=inputs.exact)
    msgs, t = [], inputs.treated
    excl = unmatched_trial(t, m.weights_, "no control within the caliper / exact stratum")
    if excl:
        msgs.append(f"{excl[0]['n']} of {int(t.sum())} trial patients got no match "
                    f"(caliper {o['caliper']} SD of the distance {o['distance']} = "
                    f"{m.caliper_abs_:.4g}); they are excluded and the estimand becomes the "
                    "effect in the matched trial patients")
    short = [i for i, cs in m.matches_.items() if 0 < len(cs) < o["ratio"]]
    if short:
        msgs.append(f"{len(short)} matched trial patients got fewer than {o['ratio']} controls")
    details = {"caliper_abs": m.caliper_abs_, "n_matched_trial": m.n_matched_treated_}
    if o["replace"]:
        uses = Counter(c for cs in m.matches_.values() for c in cs)
        details["n_controls_reused"] = sum(1 for k in uses.values() if k > 1)
    return MethodOutcome(m.weights_, m.match_id_, details, msgs, excl)
